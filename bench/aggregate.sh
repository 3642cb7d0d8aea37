#!/usr/bin/env bash
# Grouped aggregation benchmark (part of make bench; bench/run.sh runs it): h5batch's
# aggregate kernel on ROWS readings of METERS devices over a year (`h5batch gen vitals`,
# the systolic column as the value), per meter x month (UTC): count, sum, mean and exact
# p50/p95 of the valid values, at 1 and 2 ranks from a page-cached file; beside the
# peers installed in BENCH_PYTHON (DuckDB quantile_cont, ClickHouse in process through
# chdb with quantilesExactInclusive, Polars), each on 2 threads, answering the same
# question from Parquet converted once outside the timings; each answer is checked
# against h5batch's. Records go to $BENCH_RESULTS/results.jsonl.
#   ROWS=1M METERS=10k bash bench/aggregate.sh     # smaller
#   PEERS="duckdb chdb" bash bench/aggregate.sh
set -euo pipefail
KERNEL=aggregate
source "$(dirname "$0")/lib.sh"
ROWS=${ROWS:-100M}
METERS=${METERS:-1M}
RANKS=${RANKS:-1 2}
data=$BENCH_DATA

in=$data/aggregate-$ROWS-$METERS.h5
if [ ! -f "$in" ]; then
    echo "== generating $in" >&2
    mpirun -n 2 "$HB" gen vitals -o "$in.tmp" --rows "$ROWS" --devices "$METERS" --days 366 --start 20240101 \
        --timezone UTC -q --force
    mv "$in.tmp" "$in"
fi
rows=$(h5ls "$in/table/time" | sed -E 's/.*\{([0-9]+).*/\1/')
bytes=$(stat -L -c %s "$in")
cat "$in" >/dev/null # page-cache the input: the benchmark measures the tools, not the disk
cat >"$data/aggregate-bench.ini" <<INI
[job]
name = bench-aggregate
run_dir = $data/aggregate-bench.run
threads = 1
[step agg]
kernel = aggregate
input = $in
output = $data/aggregate-out.h5
columns = meter:patient, value:systolic
by = meter, month
time = time
values = value
valid = value:40:260
stats = count, sum, mean, p50, p95
layout = table
INI

echo "== aggregate: $rows rows, $METERS meters x 12 months ($bytes bytes)" >&2
for n in $RANKS; do
    rm -f "$data/aggregate-out.h5"
    run=$(hb_run "$data/aggregate-run-$n.log" "$n" "$data/aggregate-bench.ini")
    record_hb aggregate "$n" "$rows" rows "$run" bytes="$bytes"
done
cp "$data/aggregate-out.h5" "$data/aggregate-answer.h5"
groups=$(/usr/bin/python3 -c "import h5py; print(h5py.File('$data/aggregate-answer.h5')['aggregate'].attrs['groups'])")
echo "   $groups groups" >&2

pq=$data/aggregate-$ROWS-$METERS.parquet
status=0
for peer in duckdb polars chdb; do
    has_peer "$peer" || continue
    if [ ! -f "$pq" ]; then
        echo "   converting the input to Parquet (not timed)" >&2
        "$BENCH_PYTHON" bench/peers_aggregate.py convert "$in" "$pq.tmp"
        mv "$pq.tmp" "$pq"
    fi
    read -r st rss json < <(peer_run "$data/aggregate-$peer.log" "$BENCH_PYTHON" bench/peers_aggregate.py run "$peer" \
        "$pq" "$data/aggregate-answer.h5" --threads 2)
    record_peer aggregate "$peer" "2 threads" "$rows" rows "$st" "$rss" "$json" cores=2
    case $st in differs | failed) status=1 ;; esac
done
exit $status
