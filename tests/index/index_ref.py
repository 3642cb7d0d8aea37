#!/usr/bin/python3
"""Independent reference for the index kernel and `h5batch query` (DESIGN.md 4.3).

Written from the contract with Python's own Unicode database, not from the C code:
UTF-8 decoding with one invalid byte at a time (surrogateescape), NFKC with full case
folding and default-ignorable code points removed (iterated to a fixed point, as the
NFKC_Casefold closure is defined), tokens as maximal runs of general categories L*, M*
and N*, stop words from the same list text, stems from the pure-Python Snowball port
(snowballstemmer), BM25 from the contract's formulas.

  index_ref.py index CORPUS.h5 INDEX.h5 [--stemmer L] [--stopwords none|english|FILE]
                     [--max-token-bytes N] [--positions]
      builds the index in Python and checks every array, type and attribute of INDEX.h5.
  index_ref.py query INDEX.h5 RESULT.json [--top K] [--k1 X] [--b Y] WORDS...
      ranks the documents of INDEX.h5 by BM25 in Python and checks h5batch query --json.
"""
import argparse
import json
import math
import re
import sys
import unicodedata

import h5py
import numpy as np

# DerivedCoreProperties.txt, Default_Ignorable_Code_Point (the same in Unicode 14 and 15).
DEFAULT_IGNORABLE = [
    (0x00AD, 0x00AD), (0x034F, 0x034F), (0x061C, 0x061C), (0x115F, 0x1160), (0x17B4, 0x17B5),
    (0x180B, 0x180F), (0x200B, 0x200F), (0x202A, 0x202E), (0x2060, 0x206F), (0x3164, 0x3164),
    (0xFE00, 0xFE0F), (0xFEFF, 0xFEFF), (0xFFA0, 0xFFA0), (0xFFF0, 0xFFF8), (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A), (0xE0000, 0xE0FFF),
]
IGNORABLE_RE = re.compile("[" + "".join("%s-%s" % (re.escape(chr(a)), re.escape(chr(b)))
                                        for a, b in DEFAULT_IGNORABLE) + "]")

# The English list as documented: Snowball's, without its contractions.
ENGLISH = """i me my myself we our ours ourselves you your yours yourself yourselves
he him his himself she her hers herself it its itself they them their theirs themselves
what which who whom this that these those am is are was were be been being
have has had having do does did doing would should could ought cannot
a an the and but if or because as until while of at by for with about against
between into through during before after above below to from up down in out on off
over under again further then once here there when where why how all any both each
few more most other some such no nor not only own same so than too very"""


def _token_class():
    """A regex class of every code point whose general category is L*, M* or N*."""
    ranges, start = [], None
    for cp in range(0x110000):
        ok = 0xD800 > cp or cp > 0xDFFF
        ok = ok and unicodedata.category(chr(cp))[0] in "LMN"
        if ok and start is None:
            start = cp
        elif not ok and start is not None:
            ranges.append((start, cp - 1))
            start = None
    if start is not None:
        ranges.append((start, 0x10FFFF))
    return re.compile("[" + "".join("%s-%s" % (re.escape(chr(a)), re.escape(chr(b))) for a, b in ranges) + "]+")


TOKEN_RE = _token_class()
INVALID_RE = re.compile("[\udc80-\udcff]")


def nfkc_casefold(s):
    s = IGNORABLE_RE.sub("", s)
    while True:
        t = IGNORABLE_RE.sub("", unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", s).casefold()))
        if t == s:
            return s
        s = t


class Tokenizer:
    def __init__(self, stemmer="none", stopwords=(), max_bytes=64):
        self.max_bytes = max_bytes
        self.stop = set(stopwords)
        self.stem = None
        if stemmer != "none":
            import snowballstemmer
            self.stem = snowballstemmer.stemmer(stemmer).stemWord
        self.cache = {}
        self.invalid = 0

    def raw_tokens(self, data):
        """Normalized tokens of bytes data, as str (before length limit and stop words)."""
        s = data.decode("utf-8", "surrogateescape")
        out = []
        for seg in INVALID_RE.split(s):
            out.extend(TOKEN_RE.findall(nfkc_casefold(seg)))
        self.invalid += len(INVALID_RE.findall(s))
        return out

    def terms(self, data):
        """One entry per token: a term (bytes), or None when dropped; and the drop counts."""
        out, long_, stop = [], 0, 0
        for t in self.raw_tokens(data):
            b = t.encode()
            if len(b) > self.max_bytes:
                out.append(None)
                long_ += 1
            elif b in self.stop:
                out.append(None)
                stop += 1
            else:
                if self.stem:
                    if t not in self.cache:
                        st = self.stem(t)
                        self.cache[t] = (st if st else t).encode()
                    b = self.cache[t]
                out.append(b)
        return out, long_, stop


def stopword_list(spec):
    if spec == "none":
        return []
    text = ENGLISH if spec == "english" else open(spec, "rb").read().decode("utf-8", "surrogateescape")
    text = "\n".join(re.split(r"[|#]", line, maxsplit=1)[0] for line in text.split("\n"))
    words = set(t.encode() for t in Tokenizer(max_bytes=1 << 20).raw_tokens(text.encode("utf-8", "surrogateescape")))
    return sorted(words)


def fail(msg):
    print("MISMATCH:", msg)
    sys.exit(1)


def same(name, got, want):
    got, want = np.asarray(got), np.asarray(want)
    if got.shape != want.shape:
        fail("%s: shape %s, expected %s" % (name, got.shape, want.shape))
    bad = np.nonzero(got != want)[0]
    if len(bad):
        i = bad[0]
        fail("%s[%d] = %r, expected %r (%d differences)" % (name, i, got[i], want[i], len(bad)))


def cmd_index(a):
    stops = stopword_list(a.stopwords)
    tok = Tokenizer(a.stemmer, stops, a.max_token_bytes)
    with h5py.File(a.corpus, "r") as f:
        text = f["corpus/text"][:].tobytes()
        off = f["corpus/offsets"][:].astype(np.int64)
        doc_id = f["corpus/doc_id"][:] if "doc_id" in f["corpus"] else None
    n = len(off) - 1
    post = {}  # term -> {doc: [positions]}
    doc_length = np.zeros(n, dtype=np.uint32)
    seen = long_ = stop = empty = 0
    for d in range(n):
        terms, l, s = tok.terms(text[off[d]:off[d + 1]])
        seen += len(terms)
        long_ += l
        stop += s
        kept = 0
        for p, t in enumerate(terms):
            if t is None:
                continue
            kept += 1
            post.setdefault(t, {}).setdefault(d, []).append(p)
        doc_length[d] = kept
        empty += kept == 0
    terms = sorted(post)
    with h5py.File(a.index, "r") as f:
        g = f["index"]
        tb = b"".join(terms)
        want_toff = np.zeros(len(terms) + 1, dtype=np.uint64)
        np.cumsum([len(t) for t in terms], out=want_toff[1:])
        df = np.array([len(post[t]) for t in terms], dtype=np.uint32)
        cf = np.array([sum(len(p) for p in post[t].values()) for t in terms], dtype=np.uint64)
        poff = np.zeros(len(terms) + 1, dtype=np.uint64)
        np.cumsum(df, out=poff[1:])
        docs = [d for t in terms for d in sorted(post[t])]
        tfs = [len(post[t][d]) for t in terms for d in sorted(post[t])]
        want_types = {"terms": np.uint8, "term_offsets": np.uint64, "df": np.uint32, "cf": np.uint64,
                      "postings_offsets": np.uint64, "postings_doc": np.uint32 if n < 2**32 else np.uint64,
                      "postings_tf": np.uint32, "doc_length": np.uint32}
        if a.positions:
            # uint32 while the positions fit, as postings_doc is while the documents do
            want_types.update(positions_offsets=np.uint32 if int(doc_length.sum()) < 2**32 else np.uint64,
                              positions=np.uint32)
        if doc_id is not None:
            want_types["doc_id"] = np.int64
        for name, t in want_types.items():
            if name not in g:
                fail("missing /index/%s" % name)
            if g[name].dtype != np.dtype(t) or g[name].dtype.byteorder == ">":
                fail("/index/%s has type %s, expected little-endian %s" % (name, g[name].dtype, np.dtype(t)))
        # named dimensions (DESIGN.md 4): storage-free netCDF dimension scales, one per length
        want_dims = {"doc_length": "doc", "doc_id": "doc", "df": "term", "cf": "term", "term_offsets": "term_bound",
                     "postings_offsets": "term_bound", "terms": "term_byte", "postings_doc": "posting",
                     "postings_tf": "posting", "positions_offsets": "posting_bound", "positions": "position",
                     "stopwords": "stopword_byte"}
        dims = set()
        for name in list(want_types) + (["stopwords"] if "stopwords" in g else []):
            ds = g[name]
            if len(ds.dims[0]) != 1:
                fail("/index/%s has %d dimension scales, expected 1" % (name, len(ds.dims[0])))
            sc = ds.dims[0][0]
            dim = sc.name.rsplit("/", 1)[1]
            if dim != want_dims[name] or sc.shape != ds.shape or sc.id.get_storage_size() != 0:
                fail("/index/%s is on dimension %s %s (storage %d), expected %s %s" % (
                    name, dim, sc.shape, sc.id.get_storage_size(), want_dims[name], ds.shape))
            if not sc.attrs["NAME"].startswith(b"This is a netCDF dimension but not a netCDF variable."):
                fail("dimension %s is not marked as a netCDF dimension without values" % dim)
            dims.add(dim)
        extra = set(g) - set(want_types) - {"stopwords"} - dims
        if extra or (("stopwords" in g) != (a.stopwords != "none")) or (not a.positions and "positions" in g):
            fail("unexpected datasets in /index: %s" % sorted(set(g)))
        same("terms", g["terms"][:], np.frombuffer(tb, dtype=np.uint8))
        same("term_offsets", g["term_offsets"][:], want_toff)
        same("df", g["df"][:], df)
        same("cf", g["cf"][:], cf)
        same("postings_offsets", g["postings_offsets"][:], poff)
        same("postings_doc", g["postings_doc"][:], np.array(docs, dtype=np.uint64))
        same("postings_tf", g["postings_tf"][:], np.array(tfs, dtype=np.uint32))
        same("doc_length", g["doc_length"][:], doc_length)
        if doc_id is not None:
            same("doc_id", g["doc_id"][:], doc_id)
        if a.positions:
            pos = [p for t in terms for d in sorted(post[t]) for p in post[t][d]]
            xoff = np.zeros(len(docs) + 1, dtype=np.uint64)
            np.cumsum(tfs, out=xoff[1:])
            same("positions_offsets", g["positions_offsets"][:], xoff)
            same("positions", g["positions"][:], np.array(pos, dtype=np.uint32))
        if a.stopwords != "none":
            same("stopwords", g["stopwords"][:], np.frombuffer(b"".join(w + b"\n" for w in stops), dtype=np.uint8))
        total = int(doc_length.sum())
        want_attrs = {"n_docs": n, "n_terms": len(terms), "n_postings": len(docs), "total_tokens": total,
                      "tokens_seen": seen, "tokens_too_long": long_, "tokens_stopwords": stop,
                      "invalid_bytes": tok.invalid, "empty_docs": empty, "max_token_bytes": a.max_token_bytes,
                      "positions": int(a.positions), "stemmer": a.stemmer, "stopwords": a.stopwords,
                      "normalization": "NFKC_Casefold", "format_version": 1}
        for k, v in want_attrs.items():
            got = g.attrs.get(k)
            if isinstance(got, bytes):
                got = got.decode()
            if got is None or got != v:
                fail("attribute %s = %r, expected %r" % (k, got, v))
        avg = g.attrs["avg_doc_length"]
        if avg != (total / n if n else 0.0):
            fail("avg_doc_length = %r, expected %r" % (avg, total / n))
    print("ok: %d documents, %d terms, %d postings, %d tokens kept, %d invalid bytes equal the reference"
          % (n, len(terms), len(docs), total, tok.invalid))


def parse_query(q):
    """Words outside double quotes are terms, quoted ones phrases: [(kind, text)]."""
    parts = q.split('"')
    return [("phrase" if i % 2 else "words", p) for i, p in enumerate(parts) if p.strip()]


def cmd_query(a):
    with h5py.File(a.index, "r") as f:
        g = f["index"]
        at = g.attrs
        stops = [w for w in g["stopwords"][:].tobytes().split(b"\n") if w] if "stopwords" in g else []
        stemmer = at["stemmer"]
        stemmer = stemmer.decode() if isinstance(stemmer, bytes) else stemmer
        tok = Tokenizer(stemmer, stops, int(at["max_token_bytes"]))
        terms_blob = g["terms"][:].tobytes()
        toff = g["term_offsets"][:]
        index = {terms_blob[toff[i]:toff[i + 1]]: i for i in range(len(toff) - 1)}
        poff, pdoc, ptf = g["postings_offsets"][:], g["postings_doc"][:], g["postings_tf"][:]
        dl = g["doc_length"][:]
        doc_id = g["doc_id"][:] if "doc_id" in g else None
        has_pos = int(at["positions"])
        xoff = g["positions_offsets"][:] if has_pos else None
        pos = g["positions"][:] if has_pos else None
        n = int(at["n_docs"])
        avgdl = int(at["total_tokens"]) / n if n else 0.0
    words, phrases = set(), []
    for kind, text in parse_query(" ".join(a.words)):
        ts = tok.terms(text.encode())[0]
        kept = [(p, t) for p, t in enumerate(ts) if t is not None]
        if kind == "words" or len(kept) < 2:
            words.update(t for _, t in kept)
        else:
            ph = [(p - kept[0][0], t) for p, t in kept]
            if ph not in phrases:
                phrases.append(ph)
    clauses = []  # each: {doc: tf}
    for t in sorted(words):
        i = index.get(t)
        clauses.append({} if i is None else {int(pdoc[j]): int(ptf[j]) for j in range(poff[i], poff[i + 1])})
    for ph in phrases:
        if not has_pos:
            fail("phrase query on an index without positions")
        lists = []
        for delta, t in ph:
            i = index.get(t)
            lists.append((delta, {} if i is None else
                          {int(pdoc[j]): set(int(p) for p in pos[xoff[j]:xoff[j + 1]]) for j in range(poff[i], poff[i + 1])}))
        hits = {}
        for d, p0 in lists[0][1].items():
            c = sum(1 for p in p0 if all(d in l and p + delta in l[d] for delta, l in lists[1:]))
            if c:
                hits[d] = c
        clauses.append(hits)
    k1, b = a.k1, a.b
    scores = {}
    for c in clauses:
        df = len(c)
        idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
        for d in sorted(c):
            tf = c[d]
            s = idf * (tf * (k1 + 1)) / (tf + k1 * (1 - b + b * dl[d] / avgdl))
            scores[d] = scores[d] + s if d in scores else s
    ranked = sorted(scores.items(), key=lambda ds: (-ds[1], ds[0]))[:a.top]
    got = json.load(open(a.result))
    hits = got["hits"]
    if len(hits) != len(ranked):
        fail("%d hits, expected %d" % (len(hits), len(ranked)))
    if len(ranked) < a.min_hits:
        fail("only %d hits; the test wants at least %d" % (len(ranked), a.min_hits))
    for r, (h, (d, s)) in enumerate(zip(hits, ranked), 1):
        want_doc = int(doc_id[d]) if doc_id is not None else d
        if h["rank"] != r or h["doc_number"] != d or h["doc"] != want_doc:
            fail("rank %d: doc %r (number %r), expected doc %r (number %d)" % (r, h["doc"], h["doc_number"], want_doc, d))
        if abs(h["score"] - s) > 1e-12 * max(1.0, abs(s)):
            fail("rank %d: score %r, expected %r" % (r, h["score"], s))
    print("ok: %d hits over %d clauses equal the reference" % (len(ranked), len(clauses)))


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("index")
    p.add_argument("corpus")
    p.add_argument("index")
    p.add_argument("--stemmer", default="none")
    p.add_argument("--stopwords", default="none")
    p.add_argument("--max-token-bytes", type=int, default=64)
    p.add_argument("--positions", action="store_true")
    q = sub.add_parser("query")
    q.add_argument("index")
    q.add_argument("result")
    q.add_argument("--top", type=int, default=10)
    q.add_argument("--k1", type=float, default=1.2)
    q.add_argument("--b", type=float, default=0.75)
    q.add_argument("--min-hits", type=int, default=0, help="fail with fewer hits (a test that could not fail)")
    q.add_argument("words", nargs="+")
    a = ap.parse_args()
    cmd_index(a) if a.cmd == "index" else cmd_query(a)


if __name__ == "__main__":
    main()
