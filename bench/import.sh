#!/usr/bin/env bash
# CSV import benchmark (part of make bench; bench/run.sh runs it): `h5batch import` of
# one CSV file of IMPORT_BYTES (a header, then an ISO time, an integer, two reals and a
# short string per record; bench/peers_import.py gen) into an HDF5 table, at 1 and 2
# ranks (one thread each) and at 1 rank of 2 threads, from the page-cached file, beside
# the peers installed in BENCH_PYTHON reading the same file into a typed in-memory
# table on the same cores: DuckDB read_csv into a
# table (2 threads), pyarrow's CSV reader (2 threads), pandas read_csv (1 thread, times
# parsed). Each peer's table is checked against h5batch's. Also measured: the page-cache
# read speed of the file (cat after warming), the bound an importer cannot beat.
# Records go to $BENCH_RESULTS/results.jsonl.
#   IMPORT_BYTES=300M bash bench/import.sh
#   PEERS="duckdb pyarrow" bash bench/import.sh
#   CONFIGS="1:1 2:1 1:2" bash bench/import.sh   (RANKS:THREADS, the default)
set -euo pipefail
KERNEL=import
source "$(dirname "$0")/lib.sh"
IMPORT_BYTES=${IMPORT_BYTES:-1G}
CONFIGS=${CONFIGS:-1:1 2:1 1:2}
data=$BENCH_DATA
bytes_want=$(size_of "$IMPORT_BYTES")

in=$data/import-$IMPORT_BYTES.csv
if [ ! -f "$in" ]; then
    echo "== generating $in" >&2
    /usr/bin/python3 bench/peers_import.py gen "$in" "$bytes_want"
fi
bytes=$(stat -c %s "$in")
rows=$(($(wc -l <"$in") - 1))
cat "$in" >/dev/null # page-cache the input: the benchmark measures the tools, not the disk
t0=$(date +%s.%N)
cat "$in" >/dev/null
t1=$(date +%s.%N)
read_s=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
emit kernel=import what=raw_read wall_s="$read_s" bytes="$bytes" \
    gb_s="$(awk -v s="$read_s" -v b="$bytes" 'BEGIN { printf "%.2f", b / 1e9 / (s > 0 ? s : 1e-9) }')"
echo "== import: $rows rows, $bytes bytes; page-cache read (cat) ${read_s}s" >&2

# import_once LOG N T: one import on N ranks of T threads under GNU time: "WALL RSS_MB INNER"
import_once() {
    local log=$1 n=$2 t=$3 t0 t1 inner
    rm -f "$log.rss" "$data/import-out.h5"
    t0=$(date +%s.%N)
    mpirun -n "$n" --bind-to none -x OMP_NUM_THREADS="$t" /usr/bin/time -a -o "$log.rss" -f "rss_kb %M" "$HB" import \
        "$in" -o "$data/import-out.h5" --force >"$log" 2>&1 || { echo "h5batch failed, see $log:" >&2; tail -5 "$log" >&2; return 1; }
    t1=$(date +%s.%N)
    inner=$(grep -o ') in [0-9.]* s' "$log" | grep -o '[0-9.]*' | tail -1 || true)
    grep -o 'rss_kb [0-9]*' "$log.rss" | awk -v a="$t0" -v b="$t1" -v i="${inner:-null}" \
        '{ if ($2 > m) m = $2 } END { printf "%.2f %.0f %s\n", b - a, m / 1024, i }'
}

for nt in $CONFIGS; do
    n=${nt%:*} t=${nt#*:}
    runs=()
    for ((i = 0; i < REPEAT; i++)); do runs+=("$(import_once "$data/import-run-$n-$t.log" "$n" "$t")"); done
    read -r wall rss inner wmin wmax < <(printf '%s\n' "${runs[@]}" | sort -n |
        awk '{ w[NR] = $1; l[NR] = $0 } END { m = int((NR + 1) / 2); print l[m], w[1], w[NR] }')
    emit kernel=import tool=h5batch config="$n rank$([ "$n" = 1 ] || echo s), $t thread$([ "$t" = 1 ] || echo s)" \
        cores="$((n * t))" wall_s="$wall" \
        inner_s="$inner" wall_min="$wmin" wall_max="$wmax" repeat="$REPEAT" work="$bytes" unit=bytes rss_mb="$rss" \
        rss_per=rank rows="$rows" mb_s="$(awk -v s="$wall" -v b="$bytes" 'BEGIN { printf "%.1f", b / 1e6 / s }')"
    echo "   h5batch $n rank(s) x $t thread(s): ${wall}s (import ${inner}s), $(awk -v s="$wall" -v b="$bytes" 'BEGIN { printf "%.0f", b / 1e6 / s }') MB/s, ${rss} MB per rank" >&2
done
cp "$data/import-out.h5" "$data/import-answer.h5"

status=0
for peer in duckdb pyarrow pandas; do
    has_peer "$peer" || continue
    threads=2
    [ "$peer" = pandas ] && threads=1
    read -r st rss json < <(peer_run "$data/import-$peer.log" "$BENCH_PYTHON" bench/peers_import.py run "$peer" \
        "$in" "$data/import-answer.h5" --threads "$threads")
    record_peer import "$peer" "$threads thread$([ "$threads" = 1 ] || echo s)" "$bytes" bytes "$st" "$rss" "$json" \
        cores="$threads" rows="$rows"
    case $st in differs | failed) status=1 ;; esac
done
exit $status
