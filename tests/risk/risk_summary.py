#!/usr/bin/python3
"""Short summary of an h5batch risk output: the riskiest portfolios and their Basel zones.

  risk_summary.py RISK.h5 [--top 5]
"""
import argparse

import h5py
import numpy as np

ZONES = ["green", "yellow", "red"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("output")
    ap.add_argument("--top", type=int, default=5)
    a = ap.parse_args()
    with h5py.File(a.output, "r") as f:
        r = f["risk"]
        conf = list(r["confidence"][:])
        i99 = conf.index(0.99) if 0.99 in conf else len(conf) - 1
        methods = [m for m in ("historical", "parametric", "montecarlo") if f"var_{m}" in r]
        var = {m: r[f"var_{m}"][:, i99] for m in methods}
        es = r["es_historical"][:, 0] if "es_historical" in r else None
        exceptions, zone = r["backtest_exceptions"][:], r["traffic_light"][:]
        print(f"as of {r.attrs['as_of']}, the {a.top} riskiest of {r.attrs['n_portfolios']} portfolios "
              f"by {conf[i99]:g} VaR ({r.attrs['backtest_days']}-day backtest):")
        head = "".join(f" {'VaR ' + m[:5]:>12}" for m in methods)
        print(f"{'rank':>4} {'portfolio':>9}{head} {'ES hist':>12} {'exceptions':>10}  zone")
        key = var.get("historical", next(iter(var.values())))
        for rank, p in enumerate(np.argsort(-key, kind="stable")[:a.top], 1):
            vals = "".join(f" {var[m][p]:>12,.0f}" for m in methods)
            e = f"{es[p]:>12,.0f}" if es is not None else f"{'-':>12}"
            print(f"{rank:>4} {p:>9}{vals} {e} {exceptions[p]:>10}  {ZONES[zone[p]]}")
        counts = np.bincount(zone, minlength=3)
        print("Basel zones of all portfolios:", ", ".join(f"{n} {z}" for n, z in zip(counts, ZONES)))


if __name__ == "__main__":
    main()
