"""A short summary of an episodes output for make demo: episodes_summary.py OUT.h5 [--top K]
[--what NAME]. Reads /episodes and /episodes/periods with h5py alone."""
import argparse

import h5py
import numpy as np

ap = argparse.ArgumentParser()
ap.add_argument("out")
ap.add_argument("--top", type=int, default=5)
ap.add_argument("--what", default="episodes")
a = ap.parse_args()
with h5py.File(a.out, "r") as f:
    E, P = f["episodes"], f["episodes/periods"]
    dev = E["device"][:]
    n, D = len(dev), int(E.attrs["n_devices"])
    ne, sec = P["episodes"][:], P["seconds_in_episode"][:]
    rd, vm = P["readings"][:], P["value_mean"][:]
    pdev, per = P["device"][:], P["period"][:]
    print(f"{a.what}: {n} episodes of rule {E.attrs['rule']} (derive = {E.attrs['derive']}) in "
          f"{int((ne.sum(axis=1) > 0).sum())} of {D} devices, {E.attrs['rows_valid']} of {E.attrs['rows_total']} "
          f"readings valid, {len(per)} {E.attrs['period']}s")
    if n:
        d = E["duration_s"][:]
        print(f"  duration: median {np.median(d):.0f} s, longest {d.max():.0f} s; "
              f"peak: most extreme {E['peak'][:][np.argmax(np.abs(E['peak'][:]))]:.2f}")
    tot = ne.sum(axis=1)
    order = np.argsort(-tot.astype(np.int64), kind="stable")[: a.top]
    print(f"  {'device':>8} {'episodes':>8} {'s in ep':>8}  mean on days with / without episodes")
    for i in order:
        w = (ne[i] > 0) & (rd[i] > 0)
        wo = (ne[i] == 0) & (rd[i] > 0)
        mw = np.average(vm[i][w], weights=rd[i][w]) if w.any() else float("nan")
        mo = np.average(vm[i][wo], weights=rd[i][wo]) if wo.any() else float("nan")
        name = pdev[i].decode() if isinstance(pdev[i], bytes) else pdev[i]
        print(f"  {name:>8} {tot[i]:8d} {sec[i].sum():8.0f}  {mw:8.2f} / {mo:.2f}")
