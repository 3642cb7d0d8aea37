#!/usr/bin/env bash
# Grouped aggregation benchmark (part of make bench; bench/run.sh runs it): h5batch's
# aggregate kernel on ROWS readings of METERS devices over a year (`h5batch gen vitals`,
# the systolic column as the value), per meter x month (UTC): count, sum, mean and exact
# p50/p95 of the valid values, at 1 and 2 ranks from a page-cached file; beside the
# peers installed in BENCH_PYTHON (DuckDB quantile_cont, ClickHouse in process through
# chdb with quantilesExactInclusive, Polars), each on 2 threads, answering the same
# question from Parquet converted once outside the timings; each answer is checked
# against h5batch's. Records go to $BENCH_RESULTS/results.jsonl.
# A second question, the dense case (QUESTIONS="sparse dense", the default): per segment x
# local day of week x local hour (Europe/Berlin) of `h5batch gen traffic` (ROWS rows,
# SEGMENTS segments: 2,000 x 7 x 24 cells), count, sum, mean, p50, p95 of the valid
# speeds (0-250) into the dense layout, beside the same peers; records as kernel
# aggregate-dense.
#   ROWS=1M METERS=10k bash bench/aggregate.sh     # smaller
#   PEERS="duckdb chdb" bash bench/aggregate.sh
#   QUESTIONS=dense bash bench/aggregate.sh
set -euo pipefail
KERNEL=aggregate
source "$(dirname "$0")/lib.sh"
ROWS=${ROWS:-100M}
METERS=${METERS:-1M}
RANKS=${RANKS:-1 2}
data=$BENCH_DATA

QUESTIONS=${QUESTIONS:-sparse dense}
SEGMENTS=${SEGMENTS:-2000}
status=0

# ---- the sparse case: meter x month
sparse() {
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
}

# ---- the dense case: segment x day of week x hour, the traffic kernel's grid
dense() {
local in out=$data/aggregate-dense-out.h5 n run peer st rss json
in=$(traffic_input "$ROWS" "$SEGMENTS") # the traffic benchmark's input, when it ran first
local rows bytes
rows=$(h5ls "$in/observations/time" | sed -E 's/.*\{([0-9]+).*/\1/')
bytes=$(stat -c %s "$in")
cat "$in" >/dev/null
cat >"$data/aggregate-dense.ini" <<INI
[job]
name = bench-aggregate-dense
run_dir = $data/aggregate-dense.run
threads = 1
[step grid]
kernel = aggregate
input = $in
output = $out
table = /observations
by = segment, day_of_week, hour
time = time
timezone = Europe/Berlin
values = speed
valid = speed:0:250
stats = count, sum, mean, p50, p95
layout = dense
INI
echo "== aggregate, dense: $rows rows, $SEGMENTS segments x 7 days x 24 hours ($bytes bytes)" >&2
for n in $RANKS; do
    rm -f "$out"
    run=$(hb_run "$data/aggregate-dense-run-$n.log" "$n" "$data/aggregate-dense.ini")
    record_hb aggregate-dense "$n" "$rows" rows "$run" bytes="$bytes"
done
cp "$out" "$data/aggregate-dense-answer.h5"
local pq=$data/traffic-$ROWS-$SEGMENTS.parquet meta=$data/traffic-$ROWS-$SEGMENTS.json
for peer in duckdb polars chdb; do
    has_peer "$peer" || continue
    if [ ! -f "$pq" ]; then # the traffic benchmark's conversion
        echo "   converting the input to Parquet (not timed)" >&2
        "$BENCH_PYTHON" bench/peers_traffic.py convert "$in" "$pq.tmp" "$meta"
        mv "$pq.tmp" "$pq"
    fi
    read -r st rss json < <(peer_run "$data/aggregate-dense-$peer.log" "$BENCH_PYTHON" bench/peers_aggregate.py \
        run "$peer" "$pq" "$data/aggregate-dense-answer.h5" --threads 2 --question dense)
    record_peer aggregate-dense "$peer" "2 threads" "$rows" rows "$st" "$rss" "$json" cores=2
    case $st in differs | failed) status=1 ;; esac
done
}

for q in $QUESTIONS; do
    case $q in
    sparse | dense) $q ;;
    *) echo "bench/aggregate.sh: QUESTIONS holds sparse and dense, not '$q'" >&2; exit 2 ;;
    esac
done
exit $status
