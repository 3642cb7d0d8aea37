#!/usr/bin/env bash
# Episodes benchmark (part of make bench; bench/run.sh runs it): h5batch's episodes
# kernel finding harsh braking (jobs/braking.ini: derive = rate, rule = below:-3,
# max_gap = 5s) in per-second speeds of VEHICLES vehicles (`h5batch gen fleet`, one trip
# of about MINUTES minutes a vehicle: VEHICLES x MINUTES x 60 readings; the defaults give
# about 10^8 readings of 10^5 vehicles), at 1 and 2 ranks from a page-cached file;
# beside the peers installed in BENCH_PYTHON (DuckDB with LAG and a running sum, Polars
# with shift over the vehicle and a cumulative sum), each on 2 threads, answering the
# same question from Parquet converted once outside the timings; each answer is checked
# against h5batch's. Records go to $BENCH_RESULTS/results.jsonl.
#   VEHICLES=10k MINUTES=17 bash bench/episodes.sh     # about 10^7 readings
#   PEERS=duckdb bash bench/episodes.sh
set -euo pipefail
KERNEL=episodes
source "$(dirname "$0")/lib.sh"
case ${SCALE:-full} in
small) : "${VEHICLES:=10k}" ;;
tiny) : "${VEHICLES:=50}" ;;
esac
VEHICLES=${VEHICLES:-100k}
MINUTES=${MINUTES:-17}
RANKS=${RANKS:-1 2}
data=$BENCH_DATA

in=$data/episodes-$VEHICLES-$MINUTES.h5
if [ ! -f "$in" ]; then
    echo "== generating $in" >&2
    mpirun -n 2 "$HB" gen fleet -o "$in.tmp" --vehicles "$VEHICLES" --days 1 --trips 1 --minutes "$MINUTES" \
        --start 20240304 -q --force
    mv "$in.tmp" "$in"
fi
rows=$(h5ls "$in/table/time" | sed -E 's/.*\{([0-9]+).*/\1/')
bytes=$(stat -L -c %s "$in")
cat "$in" >/dev/null # page-cache the input: the benchmark measures the tools, not the disk
cat >"$data/episodes-bench.ini" <<INI
[job]
name = bench-episodes
run_dir = $data/episodes-bench.run
threads = 1
[step braking]
kernel = episodes
input = $in
output = $data/episodes-out.h5
columns = device:vehicle, value:speed
derive = rate
rule = below:-3
max_gap = 5s
period = day
timezone = UTC
max_memory = 16G
INI

echo "== episodes: $rows readings of $VEHICLES vehicles ($bytes bytes)" >&2
for n in $RANKS; do
    rm -f "$data/episodes-out.h5"
    run=$(hb_run "$data/episodes-run-$n.log" "$n" "$data/episodes-bench.ini")
    record_hb episodes "$n" "$rows" readings "$run" bytes="$bytes"
done
cp "$data/episodes-out.h5" "$data/episodes-answer.h5"
eps=$(/usr/bin/python3 -c "import h5py; print(h5py.File('$data/episodes-answer.h5')['episodes'].attrs['n_episodes'])")
echo "   $eps episodes" >&2

pq=$data/episodes-$VEHICLES-$MINUTES.parquet
status=0
for peer in duckdb polars; do
    has_peer "$peer" || continue
    if [ ! -f "$pq" ]; then
        echo "   converting the input to Parquet (not timed)" >&2
        "$BENCH_PYTHON" bench/peers_episodes.py convert "$in" "$pq.tmp"
        mv "$pq.tmp" "$pq"
    fi
    read -r st rss json < <(peer_run "$data/episodes-$peer.log" "$BENCH_PYTHON" bench/peers_episodes.py run "$peer" \
        "$pq" "$data/episodes-answer.h5" --threads 2)
    record_peer episodes "$peer" "2 threads" "$rows" readings "$st" "$rss" "$json" cores=2
    case $st in differs | failed) status=1 ;; esac
done
exit $status
