#!/usr/bin/env bash
# Index benchmark (not part of make check): h5batch gen corpus makes DOCS documents of
# about MEAN_BYTES bytes (default 1.7M x 600 B, about 1 GB of text); the index kernel
# runs on the page-cached corpus at 1 and 2 ranks (1 thread each): wall time, MB of text
# per second per core, documents per second, peak memory per rank; then the latency of
# h5batch query on the index (words, rare words and phrases). Writes
# bench/results/index.md. Nothing here passes or fails on speed.
#   DOCS=200k bench/index.sh      # a smaller corpus
set -euo pipefail
cd "$(dirname "$0")/.."
DOCS=${DOCS:-1.7M}
MEAN_BYTES=${MEAN_BYTES:-600}
RANKS=${RANKS:-1 2}
POSITIONS=${POSITIONS:-true}
data=bench/data
res=bench/results
mkdir -p "$data" "$res"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
in=$data/corpus-$DOCS.h5
if [ ! -f "$in" ]; then
    echo "== generating $in"
    /usr/bin/time -f "gen corpus: %e s at 2 ranks" mpirun -n 2 bin/h5batch gen corpus -o "$in" --docs "$DOCS" \
        --mean-bytes "$MEAN_BYTES" -q
fi
read -r docs bytes < <(/usr/bin/python3 -c "
import h5py
f = h5py.File('$in')['corpus']
print(len(f['offsets']) - 1, f['text'].shape[0])")
cat "$in" >/dev/null # page-cache the input: the benchmark measures h5batch, not the disk
cat >"$data/index-bench.ini" <<INI
[job]
name = bench-index
run_dir = $data/index-bench.run
threads = 1
checkpoint_interval = 0
[step index]
kernel = index
input = $in
output = $data/index.h5
positions = $POSITIONS
INI
{
    echo "# Index benchmark, $(date -u +%Y-%m-%d), $(nproc) cores, $(uname -m)"
    echo
    echo "$docs documents, $((bytes / 1000000)) MB of UTF-8 text (h5batch gen corpus), page-cached;"
    echo "positions = $POSITIONS, no stemmer, no stop words, 1 thread per rank."
    echo
    echo "| ranks | wall s | MB/s | MB/s per core | docs/s | peak RSS per rank MB | map s | finalize s |"
    echo "|---|---|---|---|---|---|---|---|"
} >"$res/index.md"
for n in $RANKS; do
    rm -f "$data/index.h5"
    log=$data/index-run-$n.log
    # GNU time around each rank reports that rank's own peak resident memory
    mpirun -n "$n" /usr/bin/time -f "rss_kb %M" bin/h5batch run "$data/index-bench.ini" --force >"$log" 2>&1
    wall=$(grep -o 'in [0-9.]*s (setup' "$log" | grep -o '[0-9.]*')
    map=$(grep -o 'map [0-9.]*' "$log" | grep -o '[0-9.]*')
    fin=$(grep -o 'finalize [0-9.]*' "$log" | grep -o '[0-9.]*')
    rss=$(grep -o 'rss_kb [0-9]*' "$log" | awk '{ if ($2 > m) m = $2 } END { printf "%.0f", m / 1024 }')
    read -r rate per dps < <(awk -v b="$bytes" -v d="$docs" -v w="$wall" -v n="$n" \
        'BEGIN { printf "%.1f %.1f %.0f\n", b / w / 1e6, b / w / n / 1e6, d / w }')
    echo "| $n | $wall | $rate | $per | $dps | $rss | $map | $fin |" >>"$res/index.md"
    echo "ranks=$n wall=${wall}s MB/s=$rate per core=$per docs/s=$dps peak RSS/rank=${rss}MB"
done

# Query latency: the in-process time (open excluded) and the whole command, per query.
mapfile -t words < <(/usr/bin/python3 -c "
import h5py, numpy as np
ix = h5py.File('$data/index.h5')['index']
t, o, df = ix['terms'][:].tobytes(), ix['term_offsets'][:], ix['df'][:]
order = np.argsort(-df, kind='stable')
pick = [order[i] for i in (0, 1, 5, 20, 100, 1000, 5000)]
print('\n'.join(t[o[i]:o[i + 1]].decode() for i in pick))")
queries=("${words[0]}" "${words[1]} ${words[2]}" "${words[3]} ${words[4]} ${words[5]}" "${words[6]}"
    "\"${words[0]} ${words[1]}\"" "\"${words[2]} ${words[3]}\" ${words[4]}")
[ "$POSITIONS" = true ] || queries=("${queries[@]:0:4}")
{
    echo
    echo "Query latency (\`h5batch query --top 10\`, median of 5 runs; in-process time from --json, whole command with process start):"
    echo
    echo "| query | hits of the first term (df) | in-process ms | command ms |"
    echo "|---|---|---|---|"
} >>"$res/index.md"
for q in "${queries[@]}"; do
    ins=() cmd=()
    for _ in 1 2 3 4 5; do
        t0=$(date +%s.%N)
        ms=$(eval "bin/h5batch query '$data/index.h5' --json --top 10 $(printf '%q ' $q)" | grep -o '"time_ms": [0-9.]*' |
            grep -o '[0-9.]*$')
        t1=$(date +%s.%N)
        ins+=("$ms")
        cmd+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", (b - a) * 1000 }')")
    done
    med_in=$(printf '%s\n' "${ins[@]}" | sort -n | sed -n 3p)
    med_cmd=$(printf '%s\n' "${cmd[@]}" | sort -n | sed -n 3p)
    first=$(echo "$q" | tr -d '"' | awk '{ print $1 }')
    df=$(/usr/bin/python3 -c "
import h5py
ix = h5py.File('$data/index.h5')['index']
t, o = ix['terms'][:].tobytes(), ix['term_offsets'][:]
print(ix['df'][[t[o[i]:o[i + 1]] for i in range(len(o) - 1)].index('$first'.encode())])")
    echo "| \`$q\` | $df | $med_in | $med_cmd |" >>"$res/index.md"
done
echo
cat "$res/index.md"
