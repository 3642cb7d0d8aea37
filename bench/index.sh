#!/usr/bin/env bash
# Index benchmark (part of make bench; bench/run.sh runs it): h5batch gen corpus makes
# DOCS documents of about MEAN_BYTES bytes (default 1.7M x 600 B, about 1 GB of text);
# the index kernel runs on the page-cached corpus at 1 and 2 ranks (1 thread each,
# frequencies only, as the peers), then the peers installed in BENCH_PYTHON index the
# same documents from Parquet (bench/peers_index.py: tantivy with 2 indexing threads, no
# stored fields; PySpark local[2], explode + group by) and their document frequencies are
# checked against h5batch's. Records go to $BENCH_RESULTS/results.jsonl.
#   DOCS=200k bash bench/index.sh         # a smaller corpus
set -euo pipefail
KERNEL=index
source "$(dirname "$0")/lib.sh"
DOCS=${DOCS:-1.7M}
MEAN_BYTES=${MEAN_BYTES:-600}
RANKS=${RANKS:-1 2}
data=$BENCH_DATA
in=$data/corpus-$DOCS-$MEAN_BYTES.h5
if [ ! -f "$in" ]; then
    echo "== generating $in" >&2
    mpirun -n 2 "$HB" gen corpus -o "$in.tmp" --docs "$DOCS" --mean-bytes "$MEAN_BYTES" -q --force
    mv "$in.tmp" "$in"
fi
read -r docs bytes < <(/usr/bin/python3 -c "
import h5py
f = h5py.File('$in')['corpus']
print(len(f['offsets']) - 1, f['text'].shape[0])")
cat "$in" >/dev/null # page-cache the input: the benchmark measures the tools, not the disk
cat >"$data/index-bench.ini" <<INI
[job]
name = bench-index
run_dir = $data/index-bench.run
threads = 1
checkpoint_interval = 0
[step index]
kernel = index
input = $in
output = $data/index-out.h5
positions = false
INI

echo "== index: $docs documents, $bytes bytes of text" >&2
for n in $RANKS; do
    rm -f "$data/index-out.h5"
    run=$(hb_run "$data/index-run-$n.log" "$n" "$data/index-bench.ini")
    record_hb index "$n" "$bytes" bytes "$run" docs="$docs"
done
mv "$data/index-out.h5" "$data/index-answer.h5"

pq=$data/corpus-$DOCS-$MEAN_BYTES.parquet
for peer in tantivy spark; do
    has_peer "$peer" || continue
    if [ ! -f "$pq" ]; then
        echo "   converting the corpus to normalized Parquet (not timed)" >&2
        "$BENCH_PYTHON" bench/peers_index.py convert "$in" "$pq.tmp"
        mv "$pq.tmp" "$pq"
    fi
    read -r st rss json < <(peer_run "$data/index-$peer.log" "$BENCH_PYTHON" bench/peers_index.py run "$peer" \
        "$pq" "$data/index-answer.h5" --threads 2)
    record_peer index "$peer" "2 threads" "$bytes" bytes "$st" "$rss" "$json" cores=2 docs="$docs"
done
