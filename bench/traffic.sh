#!/usr/bin/env bash
# Traffic benchmark (make bench): h5batch on ROWS generated observations (default 10^8)
# from a page-cached file at 1 and 2 ranks (1 thread each): wall time, rows/s per core
# and peak memory per rank. Writes bench/results/traffic.md. Not a test: nothing here
# passes or fails on speed.
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS=${ROWS:-100M}
SEGMENTS=${SEGMENTS:-2000}
RANKS=${RANKS:-1 2}
data=bench/data
res=bench/results
mkdir -p "$data" "$res"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
in=$data/traffic-$ROWS.h5
if [ ! -f "$in" ]; then
    echo "== generating $in"
    /usr/bin/time -f "gen: %e s" mpirun -n 2 bin/h5batch gen traffic -o "$in" --rows "$ROWS" --segments "$SEGMENTS" -q
fi
rows=$(h5ls "$in/observations/time" | sed -E 's/.*\{([0-9]+).*/\1/')
cat "$in" >/dev/null # page-cache the input: the benchmark measures h5batch, not the disk
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
{
    echo "# Traffic benchmark, $(date -u +%Y-%m-%d), $(nproc) cores, $(uname -m)"
    echo
    echo "$rows rows ($(stat -c %s "$in") bytes), $SEGMENTS segments, page-cached, 1 thread per rank."
    echo
    echo "| ranks | wall s | rows/s | rows/s per core | peak RSS per rank MB | map s | exchange s | finalize s |"
    echo "|---|---|---|---|---|---|---|---|"
} >"$res/traffic.md"
for n in $RANKS; do
    rm -f "$data/out.h5"
    log=$data/run-$n.log
    # GNU time around each rank reports that rank's own peak resident memory
    mpirun -n "$n" /usr/bin/time -f "rss_kb %M" bin/h5batch run "$data/bench.ini" --force >"$log" 2>&1
    wall=$(grep -o 'in [0-9.]*s (setup' "$log" | grep -o '[0-9.]*')
    map=$(grep -o 'map [0-9.]*' "$log" | grep -o '[0-9.]*')
    exch=$(grep -o 'exchange [0-9.]*' "$log" | grep -o '[0-9.]*')
    fin=$(grep -o 'finalize [0-9.]*' "$log" | grep -o '[0-9.]*')
    rss=$(grep -o 'rss_kb [0-9]*' "$log" | awk '{ if ($2 > m) m = $2 } END { printf "%.0f", m / 1024 }')
    rate=$(awk -v r="$rows" -v w="$wall" 'BEGIN { printf "%.1fM", r / w / 1e6 }')
    per=$(awk -v r="$rows" -v w="$wall" -v n="$n" 'BEGIN { printf "%.1fM", r / w / n / 1e6 }')
    echo "| $n | $wall | $rate | $per | $rss | $map | $exch | $fin |" >>"$res/traffic.md"
    echo "ranks=$n wall=${wall}s rows/s=$rate per core=$per peak RSS/rank=${rss}MB"
done
echo
cat "$res/traffic.md"
