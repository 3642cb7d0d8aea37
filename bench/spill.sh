#!/usr/bin/env bash
# Spill benchmark (docs/spill.md): the traffic job on ROWS generated rows at 1 rank x 1
# thread, in memory and with [job] max_memory = MAX_MEMORY (default 512M), REPEAT times
# each, interleaved; for each run the wall and CPU time (user + sys), the peak RSS
# (/usr/bin/time), the runs written and their bytes; and that both outputs are
# bit-identical (h5diff --exclude-path /provenance). The spilled runs are bounded with
# ulimit -v (VMEM_KB, default 4 GB of address space: Open MPI maps more than it touches).
# Records go to $BENCH_RESULTS/results.jsonl like the other benchmarks'.
#   ROWS=30M bash bench/spill.sh
#   ROWS=100M MAX_MEMORY=512M REPEAT=3 bash bench/spill.sh
set -euo pipefail
KERNEL=spill
source "$(dirname "$0")/lib.sh"
ROWS=${ROWS:-30M}
SEGMENTS=${SEGMENTS:-2000}
MAX_MEMORY=${MAX_MEMORY:-512M}
REPEAT=${REPEAT:-3}
VMEM_KB=${VMEM_KB:-4000000}
data=$BENCH_DATA

in=$(traffic_input "$ROWS" "$SEGMENTS")
cat "$in" >/dev/null # page-cached: the benchmark measures the run, not the disk
for kind in mem spill; do
    {
        printf '[job]\nname = bench-spill-%s\nrun_dir = %s/spill-%s.run\nthreads = 1\n' "$kind" "$data" "$kind"
        [ "$kind" = spill ] && printf 'max_memory = %s\nscratch_dir = %s\n' "$MAX_MEMORY" "$data"
        printf '[step aggregate]\nkernel = traffic\ninput = %s\noutput = %s/spill-%s.h5\ntimezone = Europe/Berlin\n' \
            "$in" "$data" "$kind"
    } >"$data/spill-$kind.ini"
done

echo "== spill: $ROWS rows, $SEGMENTS segments, max_memory = $MAX_MEMORY, load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
printf '%-6s %3s %8s %8s %9s %5s %9s\n' kind rep wall_s cpu_s rss_MB runs runs_MB >&2
for rep in $(seq 1 "$REPEAT"); do
    for kind in mem spill; do
        log=$data/spill-$kind.log
        (
            [ "$kind" = spill ] && ulimit -v "$VMEM_KB"
            /usr/bin/time -f '%e %U %S %M' -o "$log.time" "$HB" run "$data/spill-$kind.ini" --fresh --force -v >"$log" 2>&1
        )
        read -r wall user sys rss <"$log.time"
        cpu=$(awk -v u="$user" -v s="$sys" 'BEGIN { printf "%.2f", u + s }')
        runs=$(grep -c 'rank 0 spilled' "$log" || true)
        rmb=$(awk '/rank 0 spilled/ { gsub(/[(]/, "", $8); s += $8 } END { printf "%.0f", s }' "$log")
        printf '%-6s %3d %8.2f %8.2f %9.0f %5d %9s\n' "$kind" "$rep" "$wall" "$cpu" "$((rss / 1000))" "$runs" "$rmb" >&2
        emit kernel=traffic what=spill kind="$kind" rows="$ROWS" max_memory="$MAX_MEMORY" rep="$rep" wall_s="$wall" \
            cpu_s="$cpu" rss_kb="$rss" runs="$runs" runs_mb="$rmb" load="$(cut -d' ' -f1 /proc/loadavg)"
    done
done
if h5diff --exclude-path /provenance "$data/spill-mem.h5" "$data/spill-spill.h5"; then
    echo "== spill: outputs bit-identical (h5diff --exclude-path /provenance)" >&2
    emit kernel=traffic what=spill_identical rows="$ROWS" identical=1
else
    echo "== spill: OUTPUTS DIFFER" >&2
    emit kernel=traffic what=spill_identical rows="$ROWS" identical=0
    exit 1
fi
