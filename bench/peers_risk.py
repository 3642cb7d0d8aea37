"""Risk questions answered by numpy, for the side-by-side benchmark (make bench).

The straightforward numpy implementation of docs/risk.md's math: whole arrays,
np.partition for order statistics, numpy's own normal generator and OpenBLAS (numpy's
BLAS, OPENBLAS_NUM_THREADS threads) for the products. It reads the same HDF5 input as
h5batch (numpy's preferred format is its arrays; h5py reads them straight into numpy).
Only the computation is timed, from reading the input to having every number.

Then its answers are compared with h5batch's /risk (a disagreement exits 1):
  - historical and parametric VaR/ES, and the backtest's VaR: within 1e-9 relative
    (the P&L products sum in a different order);
  - backtest exceptions and traffic lights: exactly;
  - Monte Carlo: numpy draws other normals than h5batch's Philox stream, so the check is
    statistical: h5batch's VaR must lie between numpy's order statistics at ranks
    k -/+ 6 sqrt(n c (1 - c)) (a distribution-free interval for the true quantile), and
    its ES within 6 sqrt(2) standard errors of numpy's. (tests/risk/risk_ref.py checks the
    exact stream to 1e-8.)

  python peers_risk.py mc INPUT.h5 SCENARIOS H5BATCH_OUTPUT.h5
  python peers_risk.py hist INPUT.h5 BACKTEST_DAYS H5BATCH_OUTPUT.h5
  python peers_risk.py dgemm ASSETS PORTFOLIOS       # OpenBLAS GFLOP/s for reference
"""
import json
import sys
import time

import h5py
import numpy as np
from scipy import special, stats

from peer_result import finish

WINDOW = 500
CONF, ES_CONF = (0.95, 0.99), (0.975,)
RTOL = 1e-9


def k_of(n, c):
    return max(1, int(np.ceil(n * (1 - c) - 1e-9)))


def var_es(losses, conf, es_conf):
    n = losses.shape[1]
    var = [np.partition(losses, n - k_of(n, c), axis=1)[:, n - k_of(n, c)] for c in conf]
    es = [np.partition(losses, n - k_of(n, c), axis=1)[:, n - k_of(n, c):].mean(axis=1) for c in es_conf]
    return np.array(var).T, np.array(es).T


def load(path, days):
    with h5py.File(path, "r") as f:
        p = f["market/prices"][-(days + 1):]
        e = f["portfolios/exposure"][:]
    return p[1:] / p[:-1] - 1, e


def montecarlo(path, scenarios, block=50000):
    R, E = load(path, WINDOW)
    m = R.mean(axis=0)
    S = np.cov(R, rowvar=False)
    try:
        L = np.linalg.cholesky(S)
    except np.linalg.LinAlgError:
        w, V = np.linalg.eigh(S)
        L = V * np.sqrt(np.clip(w, 0, None))
    B, mu = L.T @ E.T, E @ m
    rng = np.random.default_rng(1)
    losses = np.empty((E.shape[0], scenarios))
    for s in range(0, scenarios, block):
        n = min(block, scenarios - s)
        losses[:, s:s + n] = -(mu[:, None] + (rng.standard_normal((n, R.shape[1])) @ B).T)
    var, es = var_es(losses, CONF, ES_CONF)
    return {"var_montecarlo": var, "es_montecarlo": es}, losses


def backtest(path, days, c=0.99):
    R, E = load(path, WINDOW + days)
    pnl = E @ R.T
    win = pnl[:, days:]
    var, es = var_es(-win, CONF, ES_CONF)
    mu, sd = win.mean(axis=1), win.std(axis=1, ddof=1)
    z = stats.norm.ppf(CONF)
    out = {"var_historical": var, "es_historical": es, "var_parametric": z[None, :] * sd[:, None] - mu[:, None]}
    k = k_of(WINDOW, c)
    exc = np.empty((pnl.shape[0], days), dtype=bool)
    for t in range(days):
        v = np.partition(-pnl[:, t:t + WINDOW], WINDOW - k, axis=1)[:, WINDOW - k]
        exc[:, t] = -pnl[:, WINDOW + t] > v
    x, p = exc.sum(axis=1), 1 - c
    ph = x / days
    lr = -2 * (special.xlogy(days - x, 1 - p) + special.xlogy(x, p)
               - special.xlogy(days - x, 1 - ph) - special.xlogy(x, ph))
    a, b = exc[:, :-1], exc[:, 1:]
    n = [np.sum((a == i) & (b == j), axis=1) for i in (0, 1) for j in (0, 1)]
    with np.errstate(divide="ignore", invalid="ignore"):
        p01 = np.where(n[0] + n[1] > 0, n[1] / (n[0] + n[1]), 0)
        p11 = np.where(n[2] + n[3] > 0, n[3] / (n[2] + n[3]), 0)
        pi = (n[1] + n[3]) / (days - 1)
    l0 = special.xlogy(n[0] + n[2], 1 - pi) + special.xlogy(n[1] + n[3], pi)
    l1 = (special.xlogy(n[0], 1 - p01) + special.xlogy(n[1], p01) + special.xlogy(n[2], 1 - p11)
          + special.xlogy(n[3], p11))
    out["kupiec_pvalue"], out["christoffersen_pvalue"] = stats.chi2.sf(lr, 1), stats.chi2.sf(-2 * (l0 - l1), 1)
    f = stats.binom.cdf(x, days, p)
    out["traffic_light"] = np.where(f >= 0.9999, 2, np.where(f >= 0.95, 1, 0))
    out["backtest_exceptions"] = x
    return out


def check_exact(res, risk):
    problems = []
    for name, want in res.items():
        if name not in risk:
            continue
        got = risk[name][...]
        if name in ("backtest_exceptions", "traffic_light"):
            bad = np.argwhere(got != want)
        else:
            bad = np.argwhere(~np.isclose(got, want, rtol=RTOL, atol=1e-12))
        problems += [f"{name}{tuple(int(i) for i in b)}: numpy {want[tuple(b)]!r} h5batch {got[tuple(b)]!r}"
                     for b in bad[:5]]
    return problems


def check_mc(losses, risk):
    """The statistical check of the module's docstring."""
    problems = []
    n = losses.shape[1]
    for j, c in enumerate(CONF):
        k = n - k_of(n, c)  # numpy's VaR is the order statistic of rank k (0-based)
        h = int(np.ceil(6 * np.sqrt(n * c * (1 - c))))
        lo, hi = max(0, k - h), min(n - 1, k + h)
        part = np.partition(losses, [lo, hi], axis=1)
        got = risk["var_montecarlo"][:, j]
        for p in np.flatnonzero((got < part[:, lo]) | (got > part[:, hi]))[:5]:
            problems.append(f"var_montecarlo[{p},{j}] = {got[p]!r} outside numpy's [{part[p, lo]!r}, {part[p, hi]!r}]")
    for j, c in enumerate(ES_CONF):
        k = k_of(n, c)
        tail = np.partition(losses, n - k, axis=1)[:, n - k:]
        es, var = tail.mean(axis=1), tail.min(axis=1)
        se = np.sqrt((tail.var(axis=1) + c * (es - var) ** 2) / k)
        got = risk["es_montecarlo"][:, j]
        for p in np.flatnonzero(np.abs(got - es) > 6 * np.sqrt(2) * se)[:5]:
            problems.append(f"es_montecarlo[{p},{j}] = {got[p]!r}, numpy {es[p]!r} +- {se[p]!r}")
    return problems


def dgemm_gflops(m, k, n, reps):
    """Median GFLOP/s of (m x k) @ (k x n) over 5 timings of reps products each."""
    a, b = np.random.rand(m, k), np.random.rand(k, n)
    a @ b
    rates = []
    for _ in range(5):
        t = time.perf_counter()
        for _ in range(reps):
            a @ b
        rates.append(2.0 * m * k * n * reps / (time.perf_counter() - t) / 1e9)
    return sorted(rates)[2]


def main():
    what = sys.argv[1]
    if what == "dgemm":
        assets, portfolios = int(sys.argv[2]), int(sys.argv[3])
        print(json.dumps({"square_gflops": round(dgemm_gflops(2000, 2000, 2000, 1), 2),
                          "mc_shape_gflops": round(dgemm_gflops(50000, assets, portfolios, 2), 2)}))
        return 0
    path, size, out = sys.argv[2], int(sys.argv[3]), sys.argv[4]
    t0 = time.perf_counter()
    if what == "mc":
        res, losses = montecarlo(path, size)
    else:
        res = backtest(path, size)
    wall = time.perf_counter() - t0
    with h5py.File(out, "r") as f:
        problems = check_mc(losses, f["risk"]) if what == "mc" else check_exact(res, f["risk"])
    return finish(f"numpy {what}", wall, problems)


if __name__ == "__main__":
    sys.exit(main())
