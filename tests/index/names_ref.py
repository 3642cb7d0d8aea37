#!/usr/bin/python3
"""Independent reference for the names the index keeps and `h5batch query` shows
(docs/index.md "Names, titles and snippets"), written from the documentation with h5py,
xarray and Python's own UTF-8 decoder, not from the C code.

  names_ref.py make DIR              corpora of the edge documents in both layouts, with
                                     string ids and titles, and two bad ones
  names_ref.py index CORPUS INDEX    /docs/doc_id and /docs/title against the corpus; named
                                     dimensions, no phony_dim in xarray
  names_ref.py query CORPUS INDEX RESULT.json   each hit's doc, title and snippet
  names_ref.py corrupt INDEX PREFIX  corrupted copies of INDEX, PREFIX-CASE.h5 (see CASES)
"""
import json
import os
import re
import shutil
import sys

import h5py
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from index_ref import Tokenizer  # noqa: E402  the reference tokenizer
import make_corpus_case  # noqa: E402

BEFORE, AFTER, SNIP_BYTES, SCAN, NAME_BYTES = 8, 16, 320, 1 << 20, 511
TABLE = "/library"  # the layouts' group, read through `table` and `columns`


def fail(msg):
    print("MISMATCH: " + msg)
    sys.exit(1)


def docs():
    """The edge documents, NUL bytes made spaces (variable-length strings cannot hold them)."""
    return [d.replace(b"\0", b" ") for d in make_corpus_case.EDGE]


def cmd_make(out):
    d = docs()
    ids = ["bk-%03d" % (7 * i) for i in range(len(d))]
    titles = ["Título %d: «%s»" % (i, "x" * (i % 5)) for i in range(len(d))]
    titles[3] = ""  # an empty title
    titles[5] = "tab\tand \x1b[31mescape"  # terminal escapes are not printed as they are
    # bytes with offsets, vlen string ids, fixed-length UTF-8 titles
    with h5py.File(os.path.join(out, "ix-nb.h5"), "w") as f:
        g = f.create_group(TABLE)
        g["text"] = np.frombuffer(b"".join(d), dtype=np.uint8)
        g["offsets"] = np.concatenate([[0], np.cumsum([len(x) for x in d])]).astype(np.uint64)
        g.create_dataset("doc_id", data=np.array(ids, dtype=object), dtype=h5py.string_dtype())
        g["title"] = np.array([t.encode() for t in titles], dtype="S64")
    # one vlen string per document under another name, fixed ASCII ids, vlen titles
    with h5py.File(os.path.join(out, "ix-ns.h5"), "w") as f:
        g = f.create_group(TABLE)
        g.create_dataset("body", data=np.array(d, dtype=object), dtype=h5py.string_dtype())
        g["key"] = np.array([i.encode() for i in ids], dtype="S6")
        g.create_dataset("headline", data=np.array(titles, dtype=object), dtype=h5py.string_dtype())
        g["text_bytes"] = np.zeros(3, dtype=np.uint8)  # not read: columns maps text to body
    # a title that is not a string, a title column of the wrong length
    for name, title in [("ix-nbad-num", np.arange(len(d))), ("ix-nbad-len", np.array([b"a"] * 3))]:
        with h5py.File(os.path.join(out, name + ".h5"), "w") as f:
            g = f.create_group(TABLE)
            g.create_dataset("body", data=np.array(d, dtype=object), dtype=h5py.string_dtype())
            g["title"] = title


def corpus_of(path):
    """Each document's bytes, its id and title strings (None when absent)."""
    with h5py.File(path, "r") as f:
        g = f[TABLE]
        if "offsets" in g:
            t, o = g["text"][:].tobytes(), g["offsets"][:]
            text = [t[o[i]:o[i + 1]] for i in range(len(o) - 1)]
            ids, titles = g["doc_id"].asstr()[:], g["title"][:]
        else:
            text = list(g["body"].asstr(encoding="utf-8", errors="surrogateescape")[:])
            text = [x.encode("utf-8", "surrogateescape") for x in text]
            ids, titles = g["key"][:], g["headline"].asstr()[:]
    b = lambda x: x if isinstance(x, bytes) else x.encode()  # noqa: E731
    return text, [b(x) for x in ids], [b(x) for x in titles]


def clean(s, cap):
    """Displayable UTF-8 as documented: an invalid byte is U+FFFD, controls and white space
    one space, none at the ends; at most cap bytes, cut before a character; (text, cut)."""
    out, i, pending = [], 0, False
    size = 0
    while i < len(s):
        lead = s[i]
        k = 1 if lead < 0x80 else 2 if 0xC2 <= lead < 0xE0 else 3 if 0xE0 <= lead < 0xF0 else 4 if 0xF0 <= lead < 0xF5 else 0
        try:
            c = s[i:i + k].decode("utf-8") if k and i + k <= len(s) else None
        except UnicodeDecodeError:
            c = None
        if c is None:
            c, k = "\ufffd", 1
        i += k
        o = ord(c)
        if o <= 0x20 or o == 0x7F or 0x80 <= o < 0xA0 or o in (0x2028, 0x2029):
            pending = size > 0
            continue
        e = len(c.encode())
        if size + e + pending > cap:
            return "".join(out), True
        if pending:
            out.append(" ")
            size += 1
            pending = False
        out.append(c)
        size += e
    return "".join(out), False


def snippet(text, terms, tok):
    """The documented snippet of a document for the query's terms (None: an empty document)."""
    text = text[:SCAN]
    if not text:
        return None
    words = [(m.start(), m.end()) for m in re.finditer(rb"[^ \t\n\v\f\r]+", text)]
    at = next((i for i, (s, e) in enumerate(words) if any(t in terms for t in tok.terms(text[s:e])[0] if t)), None)
    if at is None:
        first, last = 0, min(len(words), BEFORE + AFTER + 1)
        start = 0
    else:
        first, last = max(0, at - BEFORE), min(len(words), at + 1 + AFTER)
        start = words[first][0]
    end = words[last - 1][1] if last else len(text)
    prefix = "\u2026 " if first > 0 else ""
    body, cut = clean(text[start:end], SNIP_BYTES - len(prefix.encode()))
    return prefix + body + (" \u2026" if cut or last < len(words) else "")


def no_phony(path, groups):
    import xarray as xr
    for g in groups:
        ds = xr.open_dataset(path, group=g, engine="h5netcdf")
        phony = [d for d in ds.dims if str(d).startswith("phony_dim")]
        if phony:
            fail("%s:/%s has unnamed dimensions %s" % (path, g, phony))
        ds.close()


def cmd_index(corpus, index):
    text, ids, titles = corpus_of(corpus)
    with h5py.File(index, "r") as f:
        g = f["docs"]
        got_ids, got_titles = list(g["doc_id"][:]), list(g["title"][:])
        if got_ids != ids:
            fail("/docs/doc_id %r..., expected %r..." % (got_ids[:3], ids[:3]))
        if got_titles != titles:
            fail("/docs/title %r..., expected %r..." % (got_titles[:3], titles[:3]))
        for name in ("doc_id", "title"):
            ds = g[name]
            if ds.dtype.kind != "S" or h5py.check_string_dtype(ds.dtype).encoding != "utf-8":
                fail("/docs/%s is %s, expected fixed-length UTF-8" % (name, ds.dtype))
            if ds.dims[0][0].name != "/docs/doc" or g["doc"].id.get_storage_size() != 0:
                fail("/docs/%s is not on the storage-free dimension /docs/doc" % name)
        if "doc_id" in f["index"]:
            fail("string ids are in /docs, not in /index/doc_id")
        if g.attrs["corpus_file"] != os.path.realpath(corpus):
            fail("corpus_file = %r, expected %r" % (g.attrs["corpus_file"], os.path.realpath(corpus)))
        if int(f["index"].attrs["n_docs"]) != len(text):
            fail("n_docs")
    no_phony(index, ["index", "docs"])
    print("ok: %d documents' ids and titles, named dimensions" % len(text))


def cmd_query(corpus, index, result):
    text, ids, titles = corpus_of(corpus)
    with h5py.File(index, "r") as f:
        at = f["index"].attrs
        stops = [w for w in f["index/stopwords"][:].tobytes().split(b"\n") if w] if "index/stopwords" in f else []
        stemmer = at["stemmer"]
        tok = Tokenizer(stemmer.decode() if isinstance(stemmer, bytes) else stemmer, stops, int(at["max_token_bytes"]))
    got = json.load(open(result))
    terms = {t.encode() for t in got["terms"]} | {t.encode() for p in got["phrases"] for t in p}
    if not got["hits"] or got["n_hits"] != len(got["hits"]):
        fail("no hits, or n_hits %r is not their number" % got.get("n_hits"))
    for h in got["hits"]:
        d = h["doc_number"]
        want_id = clean(ids[d], NAME_BYTES)[0]
        if h["doc"] != want_id or h["doc_id"] != want_id:
            fail("rank %d: doc %r, doc_id %r, expected %r" % (h["rank"], h["doc"], h["doc_id"], want_id))
        if h["title"] != clean(titles[d], NAME_BYTES)[0]:
            fail("rank %d: title %r, expected %r" % (h["rank"], h["title"], clean(titles[d], NAME_BYTES)[0]))
        want = snippet(text[d], terms, tok)
        if h["snippet"] != want:
            fail("rank %d (doc %d): snippet %r, expected %r" % (h["rank"], d, h["snippet"], want))
    print("ok: %d hits' ids, titles and snippets" % len(got["hits"]))


def setarr(name, fn):
    def edit(g):
        a = g[name][:]
        fn(a)
        g[name][...] = a
    return edit


def setattr_(name, v):
    def edit(g):
        g.attrs[name] = v
    return edit


CASES = {
    "positions_inner": setarr("positions_offsets", lambda a: a.__setitem__(len(a) // 2, 10 ** 6)),
    "term_offsets_zero": setarr("term_offsets", lambda a: a.fill(0)),
    "term_offsets_past": setarr("term_offsets", lambda a: a.__setitem__(len(a) - 1, a[-1] + 5)),
    "postings_decrease": setarr("postings_offsets", lambda a: a.__setitem__(2, 0)),
    "n_docs_negative": setattr_("n_docs", np.int64(-5)),
    "n_docs_huge": setattr_("n_docs", np.int64(2 ** 62)),
    "n_terms_wrong": setattr_("n_terms", np.int64(3)),
    "positions_array": setattr_("positions", np.array([1, 0, 1], dtype=np.int64)),
    "n_docs_array": setattr_("n_docs", np.arange(40, dtype=np.int64)),
    "stemmer_unknown": setattr_("stemmer", "klingon"),
}


def cmd_corrupt(index, prefix):
    for case, edit in CASES.items():
        out = "%s-%s.h5" % (prefix, case)
        shutil.copy(index, out)
        with h5py.File(out, "a") as f:
            edit(f["index"])


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    {"make": cmd_make, "index": cmd_index, "query": cmd_query, "corrupt": cmd_corrupt}[cmd](*args)


if __name__ == "__main__":
    main()
