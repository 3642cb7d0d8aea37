#!/usr/bin/env bash
# make bench: h5batch side by side with the tools users would otherwise pick, on the
# same questions, in one session on the same cores, every peer's answer checked against
# h5batch's. Generates the inputs with `h5batch gen` (kept in BENCH_DATA for the next
# run), converts them once, outside the timings, to each peer's format, runs
# bench/traffic.sh, bench/index.sh, bench/risk.sh, bench/aggregate.sh, bench/episodes.sh, bench/import.sh and
# bench/partial.sh (partial states: sizes, merge time), and writes
# bench/results/report.md (tables, ratios, the goals) and bench/results/bench.png.
#
#   make bench                       # SCALE=full: about 30-40 minutes on 2 cores
#   make bench SCALE=small           # a few minutes
#   make bench SCALE=tiny            # seconds; make check runs this one
#   KERNELS="traffic risk" PEERS="duckdb numpy" make bench
#   bash bench/setup.sh              # installs the peers into bench/venv (PyPI)
#
# Exit status: 0, or 1 when a peer's answer differs from h5batch's or a tool fails.
# Nothing here passes or fails on speed.
set -euo pipefail
cd "$(dirname "$0")/.."
SCALE=${SCALE:-full}
case $SCALE in
full) : "${IMPORT_BYTES:=1G}" "${ROWS:=100M}" "${SEGMENTS:=2000}" "${DOCS:=1.7M}" "${MEAN_BYTES:=600}" "${ASSETS:=500}" "${DAYS:=2500}" \
    "${PORTFOLIOS:=1000}" "${MC_PORTFOLIOS:=100}" "${SCENARIOS:=1M}" "${METERS:=1M}" ;;
small) : "${IMPORT_BYTES:=200M}" "${ROWS:=10M}" "${SEGMENTS:=500}" "${DOCS:=200k}" "${MEAN_BYTES:=600}" "${ASSETS:=200}" "${DAYS:=1500}" \
    "${PORTFOLIOS:=300}" "${MC_PORTFOLIOS:=50}" "${SCENARIOS:=200k}" "${METERS:=100k}" ;;
tiny) : "${IMPORT_BYTES:=4M}" "${REPEAT:=1}" "${ROWS:=100k}" "${SEGMENTS:=20}" "${DOCS:=2000}" "${MEAN_BYTES:=300}" "${ASSETS:=10}" "${DAYS:=560}" \
    "${PORTFOLIOS:=12}" "${MC_PORTFOLIOS:=6}" "${SCENARIOS:=20k}" "${METERS:=1000}" ;;
*) echo "bench: SCALE must be full, small or tiny, got '$SCALE'" >&2; exit 2 ;;
esac
# A peer still running after PEER_TIMEOUT seconds is stopped and recorded as taking
# longer than that (PySpark's exact percentile on 10^8 rows does, on 2 cores).
: "${PEER_TIMEOUT:=900}" "${REPEAT:=3}"
export IMPORT_BYTES ROWS METERS SEGMENTS DOCS MEAN_BYTES ASSETS DAYS PORTFOLIOS MC_PORTFOLIOS SCENARIOS SCALE PEER_TIMEOUT REPEAT
export BENCH_DATA=${BENCH_DATA:-bench/data} BENCH_RESULTS=${BENCH_RESULTS:-bench/results}
KERNELS=${KERNELS:-traffic index risk aggregate episodes import partial}
mkdir -p "$BENCH_RESULTS"
rm -f "$BENCH_RESULTS/results.jsonl"
[ -x bin/h5batch ] || make -s all
status=0
start=$(date +%s)
for k in $KERNELS; do
    case $k in traffic | index | risk | aggregate | episodes | import | partial) ;; *) echo "bench: unknown kernel '$k' in KERNELS" >&2; exit 2 ;; esac
    bash "bench/$k.sh" || status=1
done
py=/usr/bin/python3
[ -x bench/venv/bin/python ] && py=bench/venv/bin/python # has matplotlib for the chart
"$py" bench/report.py "$BENCH_RESULTS" --scale "$SCALE" --seconds $(($(date +%s) - start)) || status=1
exit $status
