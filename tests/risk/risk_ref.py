#!/usr/bin/python3
"""Independent numpy/scipy reference of the risk kernel (DESIGN.md 4.2), written from
the contract, not from the C code.

  risk_ref.py INPUT.h5 OUTPUT.h5 [options]   compares OUTPUT's /risk with the reference
  risk_ref.py INPUT.h5 --print [options]     prints the reference values (for benches)

Historical, parametric, mean and volatility, exposure (also from transactions), pnl and
every backtest statistic are compared to rtol 1e-9; exceptions and traffic lights
exactly. Monte Carlo: with --mc-exact (normal shocks), the reference draws the same
stream (Philox4x32-10 at (seed, scenario), Box-Muller as docs/risk.md defines it) and
compares VaR and ES to rtol 1e-8; with --mc-tol X it checks that every Monte Carlo VaR
and ES is within relative X of the parametric value.
"""
import argparse
import sys
import time

import h5py
import numpy as np
from scipy import special, stats


def k_of(n, c):
    return max(1, int(np.ceil(n * (1 - c) - 1e-9)))


def tail(losses, conf):
    """VaR (k-th largest) and ES (mean of the k largest) of each row of losses."""
    s = -np.sort(-losses, axis=-1)  # descending
    n = losses.shape[-1]
    var = np.stack([s[..., k_of(n, c) - 1] for c in conf], axis=-1)
    return var, s


def es_of(s, conf):
    n = s.shape[-1]
    return np.stack([s[..., : k_of(n, c)].mean(axis=-1) for c in conf], axis=-1)


def kupiec(x, n, p):
    ph = x / n
    l0 = special.xlogy(n - x, 1 - p) + special.xlogy(x, p)
    l1 = special.xlogy(n - x, 1 - ph) + special.xlogy(x, ph)
    return max(0.0, -2 * (l0 - l1))


def christoffersen(exc):
    e = exc.astype(int)
    if len(e) < 2:
        return 0.0
    a, b = e[:-1], e[1:]
    n00 = np.sum((a == 0) & (b == 0))
    n01 = np.sum((a == 0) & (b == 1))
    n10 = np.sum((a == 1) & (b == 0))
    n11 = np.sum((a == 1) & (b == 1))
    tot = n00 + n01 + n10 + n11
    pi01 = n01 / (n00 + n01) if n00 + n01 else 0.0
    pi11 = n11 / (n10 + n11) if n10 + n11 else 0.0
    pi = (n01 + n11) / tot
    l0 = special.xlogy(n00 + n10, 1 - pi) + special.xlogy(n01 + n11, pi)
    l1 = (special.xlogy(n00, 1 - pi01) + special.xlogy(n01, pi01) + special.xlogy(n10, 1 - pi11)
          + special.xlogy(n11, pi11))
    return max(0.0, -2 * (l0 - l1))


def zone(x, n, p):
    f = stats.binom.cdf(x, n, p)
    return 2 if f >= 0.9999 else 1 if f >= 0.95 else 0


def philox4x32(c0, c1, c2, c3, k0, k1):
    """Philox4x32-10 (Salmon et al. 2011) on uint64 arrays holding 32-bit words."""
    m = np.uint64(0xFFFFFFFF)
    k0, k1 = np.uint64(k0), np.uint64(k1)
    for _ in range(10):
        p0 = np.uint64(0xD2511F53) * c0
        p1 = np.uint64(0xCD9E8D57) * c2
        c0, c1, c2, c3 = (p1 >> np.uint64(32)) ^ c1 ^ k0, p1 & m, (p0 >> np.uint64(32)) ^ c3 ^ k1, p0 & m
        k0 = (k0 + np.uint64(0x9E3779B9)) & m
        k1 = (k1 + np.uint64(0xBB67AE85)) & m
    return c0, c1, c2, c3


def normals(seed, first, count, assets):
    """z [count x assets] of scenarios first.. by the documented stream."""
    nq = (assets + 3) // 4
    s = np.arange(first, first + count, dtype=np.uint64)[:, None]
    j = np.arange(nq, dtype=np.uint64)[None, :]
    m = np.uint64(0xFFFFFFFF)
    w = philox4x32(s & m, s >> np.uint64(32), j + 0 * s, np.zeros_like(j + s), seed & 0xFFFFFFFF, seed >> 32)
    z = np.empty((count, 4 * nq))
    for pair, (wu, wt) in enumerate([(w[0], w[1]), (w[2], w[3])]):
        r = np.sqrt(-2 * np.log((wu.astype(np.float64) + 0.5) * 2.0**-32))
        th = 2 * np.pi * (wt.astype(np.float64) + 0.5) * 2.0**-32
        z[:, 2 * pair * nq:(2 * pair + 1) * nq] = r * np.cos(th)
        z[:, (2 * pair + 1) * nq:(2 * pair + 2) * nq] = r * np.sin(th)
    return z[:, :assets]


class Reference:
    def __init__(self, path, a):
        with h5py.File(path, "r") as f:
            self.dates = f["market/dates"][:].astype(np.int64)
            if "market/prices" in f:
                p = f["market/prices"][:].astype(np.float64)
                ret = p[1:] / p[:-1] - 1
                first = 1  # return t is dated t for t >= 1
            else:
                p = None
                ret = f["market/returns"][:].astype(np.float64)
                first = 0
            ia = len(self.dates) - 1 if a.as_of is None else int(np.nonzero(self.dates == a.as_of)[0][0])
            self.ia = ia
            use_tx = a.positions == "transactions" or (a.positions == "auto" and "portfolios/exposure" not in f)
            if use_tx:
                t = f["transactions"]
                d, port = t["date"][:], t["portfolio"][:].astype(np.int64)
                asset, q = t["asset"][:].astype(np.int64), t["quantity"][:].astype(np.float64)
                n_p = int(t.attrs["n_portfolios"]) if "n_portfolios" in t.attrs else int(port.max()) + 1
                pos = np.zeros((n_p, ret.shape[1]))
                keep = d <= self.dates[ia]
                np.add.at(pos, (port[keep], asset[keep]), q[keep])  # in row order
                self.E = pos * p[ia]
            else:
                self.E = f["portfolios/exposure"][:].astype(np.float64)
        n, b = a.window, a.backtest_days
        # return-days ia-n-b+1 .. ia, as rows of ret (row i is return-day i + first)
        lo = ia - n - b + 1 - first
        if lo < 0:
            raise SystemExit(f"reference: too little history ({ia + 1 - first} return days, need {n + b})")
        self.R = ret[lo:ia + 1 - first]
        self.a = a
        self.pnl = self.E @ self.R.T  # [P x (n + b)]

    def compute(self):
        a, n, b = self.a, self.a.window, self.a.backtest_days
        out = {}
        win = self.pnl[:, b:]
        losses = -win
        var, s = tail(losses, a.confidence)
        out["var_historical"] = var
        out["es_historical"] = es_of(s, a.es_confidence)
        mu, sd = win.mean(axis=1), win.std(axis=1, ddof=1)
        z = stats.norm.ppf(a.confidence)
        out["var_parametric"] = z[None, :] * sd[:, None] - mu[:, None]
        ze = stats.norm.ppf(a.es_confidence)
        out["es_parametric"] = sd[:, None] * stats.norm.pdf(ze)[None, :] / (1 - np.array(a.es_confidence)) - mu[:, None]
        out["mean_pnl"], out["volatility"] = mu, sd
        out["exposure"] = self.E
        if a.write_pnl:
            out["pnl"] = win
        if b > 0:
            c, p = a.backtest_confidence, 1 - a.backtest_confidence
            P = self.pnl.shape[0]
            exc = np.zeros((P, b), dtype=bool)
            for t in range(b):
                window_losses = -self.pnl[:, t:t + n]
                v, _ = tail(window_losses, [c])
                exc[:, t] = -self.pnl[:, n + t] > v[:, 0]
            x = exc.sum(axis=1)
            out["backtest_exceptions"] = x
            out["kupiec_lr"] = np.array([kupiec(xi, b, p) for xi in x])
            out["kupiec_pvalue"] = stats.chi2.sf(out["kupiec_lr"], 1)
            out["christoffersen_lr"] = np.array([christoffersen(e) for e in exc])
            out["christoffersen_pvalue"] = stats.chi2.sf(out["christoffersen_lr"], 1)
            out["traffic_light"] = np.array([zone(xi, b, p) for xi in x])
        return out

    def montecarlo(self, scenarios, seed):
        """Normal Monte Carlo VaR and ES by the documented random stream."""
        a, n = self.a, self.a.window
        X = self.R[-n:]
        m = X.mean(axis=0)
        L = np.linalg.cholesky(np.atleast_2d(np.cov(X, rowvar=False, ddof=1)))
        B = L.T @ self.E.T  # [A x P]
        mu = self.E @ m
        losses = np.empty((self.E.shape[0], scenarios))
        step = 65536
        for s in range(0, scenarios, step):
            c = min(step, scenarios - s)
            losses[:, s:s + c] = -(mu[:, None] + (normals(seed, s, c, X.shape[1]) @ B).T)
        var, srt = tail(losses, a.confidence)
        return var, es_of(srt, a.es_confidence)


def close(name, got, want, rtol, failures):
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    if got.shape != want.shape:
        failures.append(f"{name}: shape {got.shape}, reference {want.shape}")
        return
    scale = np.max(np.abs(want)) if want.size else 0.0
    bad = ~np.isclose(got, want, rtol=rtol, atol=rtol * scale + 1e-300)
    if bad.any():
        i = np.argwhere(bad)[0]
        failures.append(f"{name}: {bad.sum()} of {bad.size} differ, first at {tuple(i)}: "
                        f"{got[tuple(i)]!r} vs reference {want[tuple(i)]!r}")


def parse_list(s):
    return [float(x) for x in s.split(",")]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("input")
    ap.add_argument("output", nargs="?")
    ap.add_argument("--print", action="store_true", help="print the reference instead of comparing")
    ap.add_argument("--as-of", type=int)
    ap.add_argument("--window", type=int, default=500)
    ap.add_argument("--backtest-days", type=int, default=250)
    ap.add_argument("--backtest-confidence", type=float, default=0.99)
    ap.add_argument("--confidence", type=parse_list, default=[0.95, 0.99])
    ap.add_argument("--es-confidence", type=parse_list, default=[0.975])
    ap.add_argument("--positions", default="auto")
    ap.add_argument("--write-pnl", action="store_true")
    ap.add_argument("--mc-exact", action="store_true")
    ap.add_argument("--mc-tol", type=float)
    ap.add_argument("--mc-scenarios", type=int, default=100000)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()

    t0 = time.perf_counter()
    ref = Reference(a.input, a)
    want = ref.compute()
    if a.print:
        if a.mc_exact:
            want["var_montecarlo"], want["es_montecarlo"] = ref.montecarlo(a.mc_scenarios, a.seed)
        np.set_printoptions(precision=6, linewidth=150, threshold=60)
        for k, v in want.items():
            print(k, v)
        print(f"reference time {time.perf_counter() - t0:.2f}s", file=sys.stderr)
        return 0

    failures = []
    with h5py.File(a.output, "r") as f:
        r = f["risk"]
        if int(r.attrs["as_of"]) != int(ref.dates[ref.ia]):
            failures.append(f"as_of {r.attrs['as_of']} vs reference {ref.dates[ref.ia]}")
        for name, v in want.items():
            if name not in r:
                if name.startswith(("var_", "es_")):
                    continue  # a method that was not enabled
                failures.append(f"{name}: missing from the output")
                continue
            got = r[name][...]
            if name in ("backtest_exceptions", "traffic_light"):
                if not np.array_equal(got, v):
                    failures.append(f"{name}: {got.tolist()} vs reference {np.asarray(v).tolist()}")
            else:
                close(name, got, v, 1e-7 if name.endswith("pvalue") else 1e-9, failures)
        for name in ("var_historical", "var_parametric", "var_montecarlo"):
            if name in r and not np.allclose(r[name].attrs["confidence"], a.confidence):
                failures.append(f"{name}: attribute confidence {r[name].attrs['confidence']}")
        if a.mc_exact:
            var, es = ref.montecarlo(int(r.attrs["mc_scenarios"]), int(r.attrs["seed"]))
            close("var_montecarlo (exact stream)", r["var_montecarlo"][...], var, 1e-8, failures)
            close("es_montecarlo (exact stream)", r["es_montecarlo"][...], es, 1e-8, failures)
        if a.mc_tol is not None:
            for m in ("var", "es"):
                got, par = r[f"{m}_montecarlo"][...], want[f"{m}_parametric"]
                rel = np.abs(got / par - 1)
                if rel.max() > a.mc_tol:
                    i = np.unravel_index(np.argmax(rel), rel.shape)
                    failures.append(f"{m}_montecarlo is {rel.max():.4f} away from parametric at {i} "
                                    f"({got[i]} vs {par[i]}), more than {a.mc_tol}")
    for msg in failures:
        print("risk_ref: " + msg, file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
