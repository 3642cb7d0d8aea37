"""Index question answered by the peers, for the side-by-side index benchmark.

Every distinct term of a UTF-8 corpus with its document frequency (tantivy) or its
document and collection frequencies (Spark): what h5batch's index kernel writes into
/index (terms, df, cf) with no stemmer, no stop words and max_token_bytes = 64. The
corpus is converted once, outside the timing, to Parquet (doc int64, text string) with
the text already normalized the way h5batch's tokenizer does it (docs/index.md,
Tokenizer 1-2): each stretch between invalid UTF-8 bytes goes through NFKC_Casefold
(tests/index/index_ref.py), and the stretches are joined with U+FFFD, which is not a letter,
mark or number. A peer then only has to cut maximal runs of \\p{L}\\p{M}\\p{N} and drop
tokens over 64 bytes. Normalizing is a large part of h5batch's work, and the peers do
it untimed, which favours them. tantivy builds an index (frequencies, no positions,
nothing stored) in a temporary directory under $TMPDIR, timed from reading the Parquet
to the committed, merged and reloaded index (its term list is read afterwards); Spark
groups by term and doc, then by term, timed with its session start (as in
peers_traffic.py) up to the collected result. Both are compared exactly with h5batch's
index (documents, every term's df, and cf for Spark); a disagreement exits 1.

  python peers_index.py convert CORPUS.h5 OUT.parquet
  python peers_index.py run PEER INPUT.parquet H5BATCH_INDEX.h5 [--threads N]
      PEER: tantivy | spark; prints one JSON line with wall seconds and the check
"""
import argparse
import collections
import multiprocessing as mp
import os
import sys
import time

import h5py
import numpy as np
from peer_result import finish

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "index"))
from index_ref import INVALID_RE, nfkc_casefold  # noqa: E402  the tokenizer's reference

TOKEN = r"[\p{L}\p{M}\p{N}]+"    # a token; Rust regex and Java Pattern read it alike
SEPARATOR = r"[^\p{L}\p{M}\p{N}]+"
MAX_BYTES = 64                   # h5batch's default max_token_bytes
CHUNK = 16384                    # documents per conversion task
ROW_GROUP = 8 * CHUNK            # documents per Parquet row group

_corpus = None                   # the corpus, opened once in each conversion worker


def _open(src):
    global _corpus
    _corpus = h5py.File(src, "r")


def _normalize(a, b):
    """Documents a..b-1 as one Arrow string array, normalized as h5batch tokenizes."""
    import pyarrow as pa
    off = _corpus["corpus/offsets"][a:b + 1].astype(np.int64)
    text = _corpus["corpus/text"][off[0]:off[-1]].tobytes()
    off -= off[0]
    out = []
    for i in range(b - a):
        s = text[off[i]:off[i + 1]].decode("utf-8", "surrogateescape")  # invalid byte: \udcXX
        out.append("\ufffd".join(nfkc_casefold(seg) for seg in INVALID_RE.split(s)))
    return pa.array(out, pa.string())


def convert(src, dst, workers=2):
    import pyarrow as pa
    import pyarrow.parquet as pq
    with h5py.File(src, "r") as f:
        n = f["corpus/offsets"].shape[0] - 1
    schema = pa.schema([("doc", pa.int64()), ("text", pa.string())])
    writer = pq.ParquetWriter(dst, schema, compression="snappy")
    parts, start = [], 0  # normalized chunks waiting for their row group, its first doc

    def take():
        nonlocal parts, start
        parts.append(pending.popleft().get())
        rows = sum(len(p) for p in parts)
        if rows >= ROW_GROUP or start + rows == n:
            writer.write_table(pa.table({"doc": np.arange(start, start + rows, dtype=np.int64),
                                         "text": pa.chunked_array(parts, pa.string())}, schema=schema),
                               row_group_size=rows)
            parts, start = [], start + rows

    # A few tasks in flight at a time, written in order: memory stays bounded.
    with mp.get_context("spawn").Pool(workers, initializer=_open, initargs=(src,)) as pool:
        pending = collections.deque()
        for a in range(0, n, CHUNK):
            pending.append(pool.apply_async(_normalize, (a, min(n, a + CHUNK))))
            if len(pending) > 2 * workers:
                take()
        while pending:
            take()
    writer.close()
    return n


def run_tantivy(path, threads):
    """Index the text with tantivy; (time done, documents, {term: (df, None)})."""
    import shutil
    import tempfile

    import pyarrow.parquet as pq
    import tantivy
    sb = tantivy.SchemaBuilder()
    sb.add_text_field("text", stored=False, tokenizer_name="h5batch", index_option="freq")
    tmp = tempfile.mkdtemp(prefix="peers-index-")
    try:
        index = tantivy.Index(sb.build(), path=tmp)
        # remove_long(L) keeps tokens of fewer than L bytes (not characters): <= 64 here.
        index.register_tokenizer("h5batch", tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.regex(TOKEN))
                                 .filter(tantivy.Filter.remove_long(MAX_BYTES + 1)).build())
        writer = index.writer(heap_size=256_000_000 * threads, num_threads=threads)
        for batch in pq.ParquetFile(path).iter_batches(batch_size=CHUNK, columns=["text"]):
            for text in batch.column(0).to_pylist():
                writer.add_document(tantivy.Document(text=text))
        writer.commit()
        writer.wait_merging_threads()
        index.reload()
        searcher = index.searcher()
        done = time.perf_counter()  # the index is finished; reading its term list is not timed
        terms = {t.encode(): (df, None) for t, df in searcher.terms_with_prefix("text", "")}
        return done, searcher.num_docs, terms
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run_spark(path, threads):
    """Terms with df and cf by a Spark group-by; (time done, None, {term: (df, cf)})."""
    from pyspark.sql import SparkSession
    from pyspark.sql import functions as F
    spark = (SparkSession.builder.master(f"local[{threads}]").appName("h5batch-bench")
             .config("spark.driver.memory", "8g").config("spark.ui.enabled", "false")
             .config("spark.ui.showConsoleProgress", "false").getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    tokens = (spark.read.parquet(path)
              .select("doc", F.explode(F.split("text", SEPARATOR)).alias("term"))
              .where((F.length("term") > 0) & (F.octet_length("term") <= MAX_BYTES)))
    rows = (tokens.groupBy("term", "doc").agg(F.count("*").alias("tf"))
            .groupBy("term").agg(F.count("*").alias("df"), F.sum("tf").alias("cf")).collect())
    done = time.perf_counter()
    spark.stop()
    return done, None, {r[0].encode(): (r[1], r[2]) for r in rows}


def _attr(ix, name):
    v = ix.attrs.get(name)
    return v.decode() if isinstance(v, bytes) else v


def compare(n_docs, terms, index_path):
    """Problems between a peer's terms and h5batch's /index (empty list: they agree)."""
    with h5py.File(index_path, "r") as f:
        ix = f["index"]
        blob = ix["terms"][...].tobytes()
        off = ix["term_offsets"][...]
        df, cf = ix["df"][...], ix["cf"][...]
        settings = (_attr(ix, "stemmer"), _attr(ix, "stopwords"), int(ix.attrs["max_token_bytes"]))
        n = int(ix.attrs["n_docs"])
    problems = []
    if settings != ("none", "none", MAX_BYTES):
        problems.append("h5batch's index has stemmer %s, stopwords %s, max_token_bytes %d; the peers "
                        "answer none, none, %d" % (*settings, MAX_BYTES))
    if n_docs is not None and n_docs != n:
        problems.append(f"documents: peer {n_docs} h5batch {n}")
    ours = set()
    for i in range(len(df)):
        t = blob[off[i]:off[i + 1]]
        ours.add(t)
        got = terms.get(t)
        if got is None:
            problems.append(f"term {t.decode()!r} (df {df[i]}) missing in the peer's result")
        elif got[1] is None and got[0] != df[i]:
            problems.append(f"term {t.decode()!r}: df peer {got[0]} h5batch {df[i]}")
        elif got[1] is not None and got != (df[i], cf[i]):
            problems.append(f"term {t.decode()!r}: df, cf peer {got[0]}, {got[1]} h5batch {df[i]}, {cf[i]}")
    extra = [t for t in terms if t not in ours]
    problems += [f"term {t.decode()!r} (df {terms[t][0]}) not in h5batch's index" for t in sorted(extra)]
    return problems


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("convert")
    c.add_argument("input")
    c.add_argument("parquet")
    r = sub.add_parser("run")
    r.add_argument("peer", choices=["tantivy", "spark"])
    r.add_argument("parquet")
    r.add_argument("h5batch_output")
    r.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    if a.cmd == "convert":
        convert(a.input, a.parquet)
        return 0
    runner = {"tantivy": run_tantivy, "spark": run_spark}[a.peer]
    t0 = time.perf_counter()
    done, n_docs, terms = runner(a.parquet, a.threads)
    wall = done - t0
    return finish(a.peer, wall, compare(n_docs, terms, a.h5batch_output), terms=len(terms))


if __name__ == "__main__":
    sys.exit(main())
