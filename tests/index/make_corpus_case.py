#!/usr/bin/python3
"""Hand-made corpora for the index kernel's tests (DESIGN.md 4.3 input layout).

  make_corpus_case.py OUT.h5 --case edge     every tokenizer edge case, one per document
  make_corpus_case.py OUT.h5 --case every    a term in every document, for df = N
  make_corpus_case.py OUT.h5 --case empty    no documents at all
  make_corpus_case.py OUT.h5 --case bad_order | bad_last | bad_first | missing_text | float_text

Text uses only code points whose properties agree between Python's Unicode database
(the reference's) and utf8proc's newer one: nothing assigned after Unicode 6.
"""
import argparse

import h5py
import numpy as np

# One document per entry: bytes, so that invalid UTF-8 can be written as it is.
EDGE = [
    b"",  # empty
    "  ...,;!? --- \u00bf\u00a1 \u2014 \u00ab\u00bb ".encode(),  # punctuation only
    "Hello, World! hello WORLD hElLo".encode(),  # case folding
    ("a" * 64 + " " + "b" * 65 + " " + "\u00e9" * 32 + " " + "\u00e9" * 33 + " end").encode(),  # length limit
    b"abc\xffdef \xe2\x82 ghi \xc0\xaf jkl \xed\xa0\x80 mno \xf4\x90\x80\x80 pqr\xe2\x82\xac stu",  # invalid
    b"xyz\xe2\x82",  # a truncated sequence at the end of a document
    b"\x80\x80lead \xc3",  # continuation bytes first, a lone lead byte last
    "\u1f08\u03b8\u1fc6\u03bd\u03b1\u03b9 \u0391\u03b8\u03ae\u03bd\u03b1 \u03a3\u038a\u03a3\u03a5\u03a6\u039f\u03a3 "
    "\u03c3\u03af\u03c3\u03c5\u03c6\u03bf\u03c2 \u039f\u0394\u039f\u03a3 \u03bf\u03b4\u03bf\u03c2".encode(),  # Greek
    "caf\u00e9 CAF\u00c9 cafe\u0301 na\u00efve NAI\u0308VE Stra\u00dfe STRASSE \u1e9e".encode(),  # Latin
    "\u6771\u4eac\u30bf\u30ef\u30fc \u6771\u4eac \u3072\u3089\u304c\u306a \u30ab\u30bf\u30ab\u30ca "
    "\uff76\uff80\uff76\uff85".encode(),  # CJK, kana, half-width kana
    "\U0001f600\U0001f44d \U0001f468\u200d\U0001f469\u200d\U0001f467 \u2764\ufe0f smile\U0001f600face".encode(),
    "\u0939\u093f\u0928\u094d\u0926\u0940 \u0928\u092e\u0938\u094d\u0924\u0947 \u0915\u093f\u0924\u093e\u092c\u0947\u0902 "
    "\u0915\u094d\u200d\u0937 \u0915\u094d\u200c\u0937".encode(),  # Devanagari: vowel signs, virama, ZWJ, ZWNJ
    "co\u00adoperate cooperate in\u00adter\u00adna\u00adtion\u00adal \u00adlead trail\u00ad".encode(),  # soft hyphens
    "\ufb01nance \uff46\uff55\uff4c\uff4c\uff57\uff49\uff44\uff54\uff48 \u2460\u2461 \u216b \u00bd "
    "\u338f \u212a\u212b \u0130stanbul \ufb00 \u2075\u00b2".encode(),  # compatibility forms
    "2024 3.14 1,000 \u0661\u0662\u0663 \u0968\u0966\u0968\u0967 abc123def abc_def don't".encode(),  # numbers
    " \u0301 <\u0338 =\u0338 e\u0301\u0327 e\u0327\u0301 a\u0308\u0304".encode(),  # marks: alone, composed, reordered
    "\ud55c\uad6d\uc5b4 \u1112\u1161\u11ab\u1100\u1173\u11af".encode(),  # Hangul syllables and jamo
    "\u0627\u0644\u0639\u0631\u0628\u064a\u0629 \u0634\u0644\u0648\u0645 \u05e9\u05dc\u05d5\u05dd "
    "\u0645\u0640\u0640\u0631".encode(),  # Arabic, Hebrew, tatweel
    b"tab\there\nnew\x00line\r\nend\x7f",  # control characters
    ("\u041c\u043e\u0441\u043a\u0432\u0430 \u041c\u041e\u0421\u041a\u0412\u0410 " * 3).encode(),  # Cyrillic, tf 6
    ("alpha beta " * 200 + "gamma").encode(),  # high tf, many positions
    "zero\u200bwidth word\u2060joiner bom\ufeffmark vs\ufe0fsel".encode(),  # default-ignorables join
    "priv\ue000ate \U000e0041tag".encode(),  # private use separates; a tag character is ignorable
    "\u00c5ngstr\u00f6m A\u030angstro\u0308m \u00d8re".encode(),
    "the and of running runs ran runner easily fairly generously".encode(),  # stop words and stems
]


def write(path, docs, doc_id=True, offsets=None, text=True, text_dtype=np.uint8):
    blob = b"".join(docs)
    off = np.zeros(len(docs) + 1, dtype=np.uint64)
    np.cumsum([len(d) for d in docs], out=off[1:])
    if offsets is not None:
        off = np.asarray(offsets, dtype=np.int64)
    with h5py.File(path, "w") as f:
        g = f.create_group("corpus")
        if text:
            g["text"] = np.frombuffer(blob, dtype=np.uint8).astype(text_dtype)
        g["offsets"] = off
        if doc_id:
            n = len(docs) if offsets is None else len(offsets) - 1
            g["doc_id"] = (np.arange(n, dtype=np.int64) * 7919 - 5000) * 3


def every(n=3000):
    """A term in every document, among words of a small vocabulary."""
    rng = np.random.default_rng(7)
    vocab = ["omnia"] + ["w%d" % i for i in range(200)]
    docs = []
    for i in range(n):
        k = int(rng.integers(1, 30))
        words = [vocab[int(j)] for j in rng.integers(1, len(vocab), size=k)]
        words.insert(int(rng.integers(0, k + 1)), "Omnia" if i % 3 else "OMNIA")
        docs.append(" ".join(words).encode())
    return docs


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--case", required=True)
    a = ap.parse_args()
    docs = [b"one two", b"three", b"four five six"]
    total = sum(len(d) for d in docs)
    if a.case == "edge":
        write(a.out, EDGE)
    elif a.case == "empty":
        write(a.out, [])
    elif a.case == "every":
        write(a.out, every(), doc_id=False)
    elif a.case == "bad_order":
        write(a.out, docs, offsets=[0, 7, 12, 5, total], doc_id=False)
    elif a.case == "bad_last":
        write(a.out, docs, offsets=[0, 7, 12, total - 1], doc_id=False)
    elif a.case == "bad_first":
        write(a.out, docs, offsets=[-3, 7, 12, total], doc_id=False)
    elif a.case == "missing_text":
        write(a.out, docs, text=False, doc_id=False)
    elif a.case == "float_text":
        write(a.out, docs, text_dtype=np.float32, doc_id=False)
    else:
        raise SystemExit("unknown case " + a.case)


if __name__ == "__main__":
    main()
