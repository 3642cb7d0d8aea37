#!/usr/bin/env bash
# Benchmark of the risk kernel beside a straightforward numpy implementation of the same
# math, run in the same session on the same cores (not part of make check):
#   Monte Carlo:           10^6 scenarios x 500 assets x 100 portfolios (VaR 95/99, ES 97.5)
#   historical + backtest: 1,000 portfolios x 500 assets x 2,500 days (window 500,
#                          backtest 1,999 days: every day of the file is used)
# each at 1 and 2 ranks (1 thread each; numpy gets as many OpenBLAS threads). Prints a
# Markdown table, and how fast the scenario x exposure products run against a plain
# OpenBLAS DGEMM on one core. Smaller runs:
#   RISK_BENCH_SCENARIOS=100k RISK_BENCH_PORTFOLIOS=200 bash bench/risk.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PY=/usr/bin/python3
HB=$ROOT/bin/h5batch
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
SCEN=${RISK_BENCH_SCENARIOS:-1M}
ASSETS=${RISK_BENCH_ASSETS:-500}
DAYS=${RISK_BENCH_DAYS:-2500}
PORTS=${RISK_BENCH_PORTFOLIOS:-1000}
MC_PORTS=${RISK_BENCH_MC_PORTFOLIOS:-100}
RANKS=${RISK_BENCH_RANKS:-1 2}
D=${RISK_BENCH_DIR:-bench/data/risk}
mkdir -p "$D"
BT=$((DAYS - 1 - 500))

[ -x "$HB" ] || make all >/dev/null
if [ ! -f "$D/hist-$ASSETS-$DAYS-$PORTS.h5" ]; then
    echo "generating $D/hist-$ASSETS-$DAYS-$PORTS.h5 and $D/mc-$ASSETS-$DAYS-$MC_PORTS.h5" >&2
    mpirun -n 2 "$HB" gen market -o "$D/hist-$ASSETS-$DAYS-$PORTS.h5" --assets "$ASSETS" --days "$DAYS" \
        --portfolios "$PORTS" -q --force
    mpirun -n 2 "$HB" gen market -o "$D/mc-$ASSETS-$DAYS-$MC_PORTS.h5" --assets "$ASSETS" --days "$DAYS" \
        --portfolios "$MC_PORTS" -q --force
fi
HIST_IN=$D/hist-$ASSETS-$DAYS-$PORTS.h5
MC_IN=$D/mc-$ASSETS-$DAYS-$MC_PORTS.h5

cat >"$D/mc.ini" <<EOF
[job]
run_dir = $D/mc.run
threads = 1
[step mc]
kernel = risk
input = $MC_IN
output = $D/mc-out.h5
methods = montecarlo
backtest_days = 0
mc_scenarios = $SCEN
EOF
cat >"$D/hist.ini" <<EOF
[job]
run_dir = $D/hist.run
threads = 1
[step hist]
kernel = risk
input = $HIST_IN
output = $D/hist-out.h5
methods = historical, parametric
backtest_days = $BT
EOF

# The straightforward numpy implementation: whole arrays, np.partition for order
# statistics, numpy's own normal generator, OpenBLAS (numpy's BLAS) for the products.
cat >"$D/numpy_risk.py" <<'PYEOF'
import sys, time
import h5py
import numpy as np
from scipy import special, stats

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

def montecarlo(path, scenarios, window=500, conf=(0.95, 0.99), es_conf=(0.975,), block=50000):
    R, E = load(path, window)
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
    return var_es(losses, conf, es_conf)

def backtest(path, window, days, conf=(0.95, 0.99), es_conf=(0.975,), c=0.99):
    R, E = load(path, window + days)
    pnl = E @ R.T
    win = pnl[:, days:]
    out = dict(zip(("var", "es"), var_es(-win, conf, es_conf)))
    mu, sd = win.mean(axis=1), win.std(axis=1, ddof=1)
    out["var_p"] = stats.norm.ppf(conf)[None, :] * sd[:, None] - mu[:, None]
    k = k_of(window, c)
    exc = np.empty((pnl.shape[0], days), dtype=bool)
    for t in range(days):
        v = np.partition(-pnl[:, t:t + window], window - k, axis=1)[:, window - k]
        exc[:, t] = -pnl[:, window + t] > v
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
    out["kupiec"], out["chr"] = stats.chi2.sf(lr, 1), stats.chi2.sf(-2 * (l0 - l1), 1)
    f = stats.binom.cdf(x, days, p)
    out["zone"] = np.where(f >= 0.9999, 2, np.where(f >= 0.95, 1, 0))
    out["exceptions"] = x
    return out

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

if __name__ == "__main__":
    what = sys.argv[1]
    t0 = time.perf_counter()
    if what == "mc":
        var, es = montecarlo(sys.argv[2], int(float(sys.argv[3])))
        res = {"var_montecarlo": var, "es_montecarlo": es}
    elif what == "hist":
        o = backtest(sys.argv[2], 500, int(sys.argv[3]))
        res = {"var_historical": o["var"], "es_historical": o["es"], "var_parametric": o["var_p"],
               "backtest_exceptions": o["exceptions"], "traffic_light": o["zone"]}
    else:
        assets, portfolios = int(sys.argv[2]), int(sys.argv[3])
        print(f"{dgemm_gflops(2000, 2000, 2000, 1):.1f} {dgemm_gflops(50000, assets, portfolios, 2):.1f}")
        sys.exit(0)
    dt = time.perf_counter() - t0
    with h5py.File(sys.argv[4], "r") as f:
        r = f["risk"]
        diffs = []
        for k, v in res.items():
            got = r[k][...]
            if k in ("backtest_exceptions", "traffic_light"):
                diffs.append(f"{k} {'equal' if np.array_equal(got, v) else 'DIFFER'}")
            else:
                diffs.append(f"{k} {np.max(np.abs(got / v - 1)):.1e}")
    print(f"{dt:.2f}\t{'; '.join(diffs)}")
PYEOF

num_scen=$($PY -c "
s='$SCEN'; f={'k':1e3,'M':1e6,'G':1e9}
print(int(float(s[:-1]) * f[s[-1]]) if s[-1] in f else int(s))")

# run LABEL RANKS INI STEP OUT: seconds of the whole h5batch run, and its -v log in $D/LABEL.log
run_hb() {
    local label=$1 n=$2 ini=$3 step=$4 out=$5 t0 t1
    t0=$(date +%s.%N)
    if [ "$n" = 1 ]; then
        OMP_NUM_THREADS=1 "$HB" run "$ini" --force -v --set "$step.output=$out" >"$D/$label.log" 2>&1
    else
        # not pinned: on a shared machine a pinned rank cannot move off a core another job is using
        mpirun -n "$n" --bind-to none -x OMP_NUM_THREADS=1 "$HB" run "$ini" --force -v --set "$step.output=$out" \
            >"$D/$label.log" 2>&1
    fi
    t1=$(date +%s.%N)
    $PY -c "print(f'{$t1 - $t0:.2f}')"
}

echo "# risk benchmark on $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs))"
echo
echo "| path | size | cores | h5batch (s) | numpy (s) | speed-up | h5batch vs numpy |"
echo "|---|---|---|---|---|---|---|"
notes=()
for n in $RANKS; do
    t_hb=$(run_hb "mc-$n" "$n" "$D/mc.ini" mc "$D/mc-out-$n.h5")
    read -r t_np agree < <(OPENBLAS_NUM_THREADS=$n $PY "$D/numpy_risk.py" mc "$MC_IN" "$num_scen" "$D/mc-out-$n.h5")
    echo "| Monte Carlo VaR/ES | $num_scen scen x $ASSETS assets x $MC_PORTS portfolios | $n | $t_hb | $t_np |" \
        "$($PY -c "print(f'{$t_np / $t_hb:.1f}x')") | ${agree//montecarlo/MC} (different random streams) |"
    notes+=("$(grep -o 'products .*' "$D/mc-$n.log" | head -1) at $n rank(s)")
done
for n in $RANKS; do
    t_hb=$(run_hb "hist-$n" "$n" "$D/hist.ini" hist "$D/hist-out-$n.h5")
    read -r t_np agree < <(OPENBLAS_NUM_THREADS=$n $PY "$D/numpy_risk.py" hist "$HIST_IN" "$BT" "$D/hist-out-$n.h5")
    echo "| historical + parametric + backtest | $PORTS portfolios x $ASSETS assets x $DAYS days ($BT backtest days) |" \
        "$n | $t_hb | $t_np | $($PY -c "print(f'{$t_np / $t_hb:.1f}x')") | $agree |"
done
read -r dg_square dg_shape < <(OPENBLAS_NUM_THREADS=1 $PY "$D/numpy_risk.py" dgemm "$ASSETS" "$MC_PORTS")
echo
echo "OpenBLAS DGEMM on one core (numpy, median of 5): $dg_square GFLOP/s for 2000^3,"
echo "$dg_shape GFLOP/s for the Monte Carlo product shape (50000 x $ASSETS) @ ($ASSETS x $MC_PORTS)."
for s in "${notes[@]}"; do
    g=$(echo "$s" | grep -o '[0-9.]* GFLOP/s per thread' | cut -d' ' -f1)
    echo "Scenario x exposure ${s#products } = $($PY -c "print(f'{100 * $g / $dg_shape:.0f}% of the same shape, {100 * $g / $dg_square:.0f}% of 2000^3')")."
done
echo
echo "Times are wall-clock seconds of the whole run (reading the input, computing, and for"
echo "h5batch writing the output); h5batch runs 1 thread per rank, numpy as many OpenBLAS threads."
