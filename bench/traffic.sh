#!/usr/bin/env bash
# Traffic benchmark (make bench): h5batch on ROWS generated observations (default 10^8)
# from a page-cached file at 1 and 2 ranks, side by side with the peers installed in
# bench/venv (DuckDB, Polars, PySpark local[2]) answering the same question from
# Parquet, each checked against h5batch's answer; plus the machine's memory bandwidth
# (a STREAM-style copy) and the raw read speed of the input. Writes
# bench/results/traffic.md. Not a test: nothing here passes or fails on speed, but a
# peer whose answer differs fails the benchmark.
#   ROWS=1M bash bench/traffic.sh          # smaller
#   PEERS="duckdb polars" bash bench/traffic.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS=${ROWS:-100M}
SEGMENTS=${SEGMENTS:-2000}
RANKS=${RANKS:-1 2}
PEERS=${PEERS:-duckdb polars spark}
data=${BENCH_DATA:-bench/data}
res=${BENCH_RESULTS:-bench/results}
VPY=bench/venv/bin/python
mkdir -p "$data" "$res"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
in=$data/traffic-$ROWS.h5
if [ ! -f "$in" ]; then
    echo "== generating $in"
    mpirun -n 2 bin/h5batch gen traffic -o "$in" --rows "$ROWS" --segments "$SEGMENTS" -q
fi
rows=$(h5ls "$in/observations/time" | sed -E 's/.*\{([0-9]+).*/\1/')
bytes=$(stat -c %s "$in")
cat "$in" >/dev/null # page-cache the input: the benchmark measures the tools, not the disk
cat >"$data/bench.ini" <<INI
[job]
name = bench-traffic
run_dir = $data/bench.run
threads = 1
[step aggregate]
kernel = traffic
input = $in
output = $data/out.h5
timezone = Europe/Berlin
INI

# memory bandwidth (copy of 1 GiB arrays, best of 3) and raw read of the input from cache
bw=$(/usr/bin/python3 -c "
import numpy as np, time
a = np.ones(1 << 27); b = np.empty_like(a); best = 1e9
for _ in range(3):
    t = time.perf_counter(); np.copyto(b, a); best = min(best, time.perf_counter() - t)
print(f'{2 * a.nbytes / best / 1e9:.1f}')")
rd=$(dd if="$in" of=/dev/null bs=16M 2>&1 | sed -nE 's/.*, ([0-9.]+ [GM]B\/s)$/\1/p')

table=$res/traffic.md
{
    echo "# Traffic: h5batch and peers, $(date -u +%Y-%m-%d), $(nproc) cores, $(uname -m)"
    echo
    echo "$rows rows ($bytes bytes of HDF5), $SEGMENTS segments, Europe/Berlin, page-cached."
    echo "Memory bandwidth (copy): $bw GB/s. Raw read of the input from cache: $rd."
    echo
    echo "| tool | ranks/threads | wall s | rows/s | rows/s per core | peak RSS MB | ratio to h5batch (2 ranks) | same answer |"
    echo "|---|---|---|---|---|---|---|---|"
} >"$table"

hb2=""
for n in $RANKS; do
    rm -f "$data/out.h5"
    log=$data/run-$n.log
    # GNU time around each rank reports that rank's own peak resident memory
    mpirun -n "$n" /usr/bin/time -f "rss_kb %M" bin/h5batch run "$data/bench.ini" --force >"$log" 2>&1
    wall=$(grep -o 'in [0-9.]*s (setup' "$log" | grep -o '[0-9.]*')
    rss=$(grep -o 'rss_kb [0-9]*' "$log" | awk '{ if ($2 > m) m = $2 } END { printf "%.0f per rank", m / 1024 }')
    rate=$(awk -v r="$rows" -v w="$wall" 'BEGIN { printf "%.1fM", r / w / 1e6 }')
    per=$(awk -v r="$rows" -v w="$wall" -v n="$n" 'BEGIN { printf "%.1fM", r / w / n / 1e6 }')
    scan=$(awk -v b="$bytes" -v w="$wall" 'BEGIN { printf "%.2f", b / w / 1e9 }')
    [ "$n" = 2 ] && hb2=$wall
    echo "| h5batch | $n x 1 | $wall | $rate | $per | $rss | | reference |" >>"$table"
    echo "h5batch ranks=$n wall=${wall}s rows/s=$rate per core=$per input scan ${scan} GB/s"
done
cp "$data/out.h5" "$data/h5batch-answer.h5"
[ -n "$hb2" ] || hb2=$wall

status=0
if [ -x "$VPY" ]; then
    pq=$data/traffic-$ROWS.parquet
    [ -f "$pq" ] || $VPY bench/peers_traffic.py convert "$in" "$pq" "$data/traffic-$ROWS.json"
    for peer in $PEERS; do
        out=$(/usr/bin/time -f "rss_kb %M" $VPY bench/peers_traffic.py run "$peer" "$pq" "$data/traffic-$ROWS.json" \
            "$data/h5batch-answer.h5" --threads 2 2>"$data/$peer.err") || status=1
        json=$(echo "$out" | tail -1)
        wall=$(echo "$json" | sed -E 's/.*"wall_s": ([0-9.]+).*/\1/')
        agrees=$(echo "$json" | grep -q '"agrees": true' && echo yes || echo NO)
        rss=$(grep -o 'rss_kb [0-9]*' "$data/$peer.err" | awk '{ printf "%.0f", $2 / 1024 }')
        rate=$(awk -v r="$rows" -v w="$wall" 'BEGIN { printf "%.1fM", r / w / 1e6 }')
        per=$(awk -v r="$rows" -v w="$wall" 'BEGIN { printf "%.1fM", r / w / 2 / 1e6 }')
        ratio=$(awk -v h="$hb2" -v w="$wall" 'BEGIN { printf "%.2fx", w / h }')
        echo "| $peer | 2 threads | $wall | $rate | $per | $rss | h5batch $ratio faster | $agrees |" >>"$table"
        echo "$peer wall=${wall}s same answer: $agrees"
    done
else
    echo "(no bench/venv: peers skipped; bash bench/setup.sh installs them)" | tee -a "$table"
fi
echo
cat "$table"
exit $status
