#!/usr/bin/env bash
# Risk benchmark (part of make bench; bench/run.sh runs it): h5batch's risk kernel beside
# numpy (bench/peers_risk.py: the same math with OpenBLAS), same session, same cores:
#   Monte Carlo:           SCENARIOS x ASSETS assets x MC_PORTFOLIOS portfolios (VaR 95/99, ES 97.5)
#   historical + backtest: PORTFOLIOS x ASSETS assets x DAYS days (window 500; every day
#                          of the file is used: DAYS - 501 backtest days)
# each at 1 and 2 ranks (1 thread each), numpy with as many OpenBLAS threads; numpy's
# answers are checked against h5batch's. Records go to $BENCH_RESULTS/results.jsonl.
#   SCENARIOS=100k PORTFOLIOS=200 bash bench/risk.sh
set -euo pipefail
KERNEL=risk
source "$(dirname "$0")/lib.sh"
SCEN=$(size_of "${SCENARIOS:-1M}")
ASSETS=${ASSETS:-500}
DAYS=${DAYS:-2500}
PORTS=${PORTFOLIOS:-1000}
MC_PORTS=${MC_PORTFOLIOS:-100}
RANKS=${RANKS:-1 2}
D=$BENCH_DATA/risk
mkdir -p "$D"
BT=$((DAYS - 1 - 500))
HIST_IN=$D/hist-$ASSETS-$DAYS-$PORTS.h5
MC_IN=$D/mc-$ASSETS-$DAYS-$MC_PORTS.h5
for f in "$HIST_IN:$PORTS" "$MC_IN:$MC_PORTS"; do
    [ -f "${f%:*}" ] && continue
    echo "== generating ${f%:*}" >&2
    mpirun -n 2 "$HB" gen market -o "${f%:*}" --assets "$ASSETS" --days "$DAYS" --portfolios "${f#*:}" -q --force
done
cat "$HIST_IN" "$MC_IN" >/dev/null # page-cached, as for every tool

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

echo "== risk: Monte Carlo $SCEN scenarios x $ASSETS assets x $MC_PORTS portfolios;" \
    "historical + backtest $PORTS portfolios x $DAYS days ($BT backtest days)" >&2
numpy=0
has_peer numpy scipy && numpy=1 # scipy: the peer needs both
for path in mc hist; do
    if [ $path = mc ]; then
        work=$((SCEN * MC_PORTS)) unit="scenario-portfolios" size=$SCEN in=$MC_IN
        label="Monte Carlo"
    else
        work=$((PORTS * BT)) unit="portfolio-backtest-days" size=$BT in=$HIST_IN
        label="historical + parametric + backtest"
    fi
    echo "   $label:" >&2
    for n in $RANKS; do
        run=$(hb_run "$D/$path-$n.log" "$n" "$D/$path.ini" -v --set "$path.output=$D/$path-out-$n.h5")
        record_hb risk "$n" "$work" "$unit" "$run" part="$label"
        [ $numpy = 1 ] || continue
        read -r st rss json < <(OPENBLAS_NUM_THREADS=$n peer_run "$D/numpy-$path-$n.log" \
            "$BENCH_PYTHON" bench/peers_risk.py "$path" "$in" "$size" "$D/$path-out-$n.h5")
        record_peer risk numpy "$n thread$([ "$n" = 1 ] || echo s)" "$work" "$unit" "$st" "$rss" "$json" \
            part="$label" cores="$n"
    done
done
# How close the scenario x exposure products come to OpenBLAS's DGEMM on one core
if [ $numpy = 1 ]; then
    g=$(grep -o '[0-9.]* GFLOP/s per thread' "$D/mc-1.log" | head -1 | cut -d' ' -f1)
    dg=$(OPENBLAS_NUM_THREADS=1 "$BENCH_PYTHON" bench/peers_risk.py dgemm "$ASSETS" "$MC_PORTS")
    emit kernel=risk what=dgemm h5batch_gflops="${g:-null}" \
        openblas_square_gflops="$(echo "$dg" | sed -E 's/.*"square_gflops": ([0-9.]+).*/\1/')" \
        openblas_shape_gflops="$(echo "$dg" | sed -E 's/.*"mc_shape_gflops": ([0-9.]+).*/\1/')"
fi
