#!/usr/bin/env bash
# Traffic benchmark (part of make bench; bench/run.sh runs it): h5batch on ROWS generated
# observations from a page-cached file at 1 and 2 ranks, and the peers installed in
# BENCH_PYTHON (ClickHouse in process (chdb), DuckDB, Polars, PySpark local[2]) answering
# the same question from Parquet, converted once outside the timings; each peer's answer
# is checked against h5batch's. Also measures, in the same run, the machine's memory
# bandwidth (a STREAM-style copy), the raw read speed of the input, and two floors no
# run can beat: reading the three columns in their stored types at 1 and 2 ranks
# (bench/traffic_floor.c) and moving those bytes once at the copy bandwidth. The report
# gives h5batch's ns per row per core in each phase and its distance to each floor.
# Records go to $BENCH_RESULTS/results.jsonl.
#   ROWS=1M bash bench/traffic.sh         # smaller
#   PEERS="duckdb polars" bash bench/traffic.sh
set -euo pipefail
KERNEL=traffic
source "$(dirname "$0")/lib.sh"
ROWS=${ROWS:-100M}
SEGMENTS=${SEGMENTS:-2000}
RANKS=${RANKS:-1 2}
data=$BENCH_DATA

in=$(traffic_input "$ROWS" "$SEGMENTS")
rows=$(h5ls "$in/observations/time" | sed -E 's/.*\{([0-9]+).*/\1/')
bytes=$(stat -c %s "$in")
cat "$in" >/dev/null # page-cache the input: the benchmark measures the tools, not the disk
cat >"$data/traffic-bench.ini" <<INI
[job]
name = bench-traffic
run_dir = $data/traffic-bench.run
threads = 1
[step aggregate]
kernel = traffic
input = $in
output = $data/traffic-out.h5
timezone = Europe/Berlin
INI

echo "== traffic: $rows rows, $SEGMENTS segments ($bytes bytes)" >&2
# Memory bandwidth: a copy of two 1 GiB arrays (read + write counted), best of 3, one
# core; and the raw read of the input from the page cache.
bw=$(/usr/bin/python3 -c "
import numpy as np, time
a = np.ones(1 << 27); b = np.empty_like(a); best = 1e9
for _ in range(3):
    t = time.perf_counter(); np.copyto(b, a); best = min(best, time.perf_counter() - t)
print(f'{2 * a.nbytes / best / 1e9:.2f}')")
rd=$(/usr/bin/python3 -c "
import time
t = time.perf_counter(); n = 0
with open('$in', 'rb', buffering=0) as f:
    b = bytearray(16 << 20)
    while (k := f.readinto(b)): n += k
print(f'{n / (time.perf_counter() - t) / 1e9:.2f}')")
emit kernel=machine what=memory_bandwidth gb_s="$bw" method="numpy copy of 1 GiB, read+write, best of 3, 1 core"
emit kernel=traffic what=raw_read gb_s="$rd" bytes="$bytes" method="read() of the page-cached input in 16 MiB blocks"
echo "   memory bandwidth (copy) $bw GB/s, raw read of the input $rd GB/s" >&2

# The read-only floor: the columns read as stored, every byte touched, nothing computed.
floor=$data/traffic_floor
if [ ! -x "$floor" ] || [ bench/traffic_floor.c -nt "$floor" ] || [ bin/h5batch -nt "$floor" ]; then
    # the objects of today's sources only: a build folder may keep those of removed files
    objs=$(for f in src/core/*.c io/*.c; do echo "build/${f%.c}.o"; done)
    mpicc -O2 -std=c17 -D_GNU_SOURCE -Iinclude -Isrc -I. $(pkg-config --cflags hdf5-openmpi) -fopenmp -o "$floor" \
        bench/traffic_floor.c $objs \
        $(pkg-config --libs hdf5-openmpi libxxhash libdeflate libisal libutf8proc) -lhdf5_hl -lz -lm -ldl
fi
for n in $RANKS; do
    read -r fs fbytes _ < <(mpirun -n "$n" --bind-to none "$floor" "$in")
    emit kernel=traffic what=read_floor ranks="$n" wall_s="$fs" bytes="$fbytes" rows="$rows" \
        method="the three columns read as stored (hb_table_read_raw), chunks of 2^20 rows, best of 3"
    echo "   read-only floor at $n rank(s): ${fs}s for $fbytes bytes of columns" >&2
done
emit kernel=traffic what=bandwidth_floor wall_s="$(/usr/bin/python3 -c "print(round($fbytes / ($bw * 1e9), 4))")" \
    bytes="$fbytes" rows="$rows" method="the columns' bytes moved once at the 1-core copy bandwidth"

for n in $RANKS; do
    rm -f "$data/traffic-out.h5"
    run=$(hb_run "$data/traffic-run-$n.log" "$n" "$data/traffic-bench.ini")
    record_hb traffic "$n" "$rows" rows "$run" bytes="$bytes"
done
cp "$data/traffic-out.h5" "$data/traffic-answer.h5"

# Start-up (issue 17): a whole command on a small input against `mpirun -n 2 /bin/true`,
# alternated, the median of 7 of each: what a job costs beyond the MPI launch itself.
small=$(traffic_input 1M "$SEGMENTS")
cat >"$data/traffic-small.ini" <<INI
[job]
name = bench-traffic-small
run_dir = $data/traffic-small.run
threads = 1
[step aggregate]
kernel = traffic
input = $small
output = $data/traffic-small-out.h5
INI
cat "$small" >/dev/null
read -r job_s true_s < <(/usr/bin/python3 - "$HB" "$data/traffic-small.ini" <<'PY'
import statistics, subprocess, sys, time
hb, ini = sys.argv[1:]
def wall(cmd):
    t = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t
mpi = ["mpirun", "-n", "2", "--bind-to", "none"]
job, true = [], []
for _ in range(7):
    true.append(wall(mpi + ["/bin/true"]))
    job.append(wall(mpi + [hb, "run", ini, "--force", "-q"]))
print(f"{statistics.median(job):.3f} {statistics.median(true):.3f}")
PY
)
emit kernel=traffic what=startup rows=1000000 job_s="$job_s" true_s="$true_s" \
    method="whole command at 2 ranks, median of 7, alternated with mpirun -n 2 /bin/true"
echo "   start-up: a 10^6-row job ${job_s}s, mpirun -n 2 /bin/true ${true_s}s" >&2

pq=$data/traffic-$ROWS-$SEGMENTS.parquet
meta=$data/traffic-$ROWS-$SEGMENTS.json
for peer in chdb duckdb polars spark; do
    has_peer "$peer" || continue
    if [ ! -f "$pq" ]; then
        echo "   converting the input to Parquet (not timed)" >&2
        "$BENCH_PYTHON" bench/peers_traffic.py convert "$in" "$pq.tmp" "$meta"
        mv "$pq.tmp" "$pq"
    fi
    read -r st rss json < <(peer_run "$data/traffic-$peer.log" "$BENCH_PYTHON" bench/peers_traffic.py run "$peer" \
        "$pq" "$meta" "$data/traffic-answer.h5" --threads 2)
    record_peer traffic "$peer" "2 threads" "$rows" rows "$st" "$rss" "$json" cores=2
done
