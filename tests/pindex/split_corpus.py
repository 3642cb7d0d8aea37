#!/usr/bin/python3
"""Splits a corpus (DESIGN.md 4.3) into site files by document, for the index's partial tests.

    split_corpus.py IN.h5 CUTS OUT_PREFIX [--table /corpus] [--text text] [--order 2,0,1 --concat OUT.h5]

CUTS is a comma-separated list of document numbers where a new site starts ("0,10,10":
sites [0,10) [10,10) [10,n); a repeated cut makes a site with no documents). The table's
text as bytes is cut with its offsets (rebased to 0); every other column of the table
(text as strings, named by --text, doc_id, title) is cut by row; everything else in the
file is copied.
--order writes the sites' concatenation in that order of sites to --concat (what one run
over "B then A" reads). Writes OUT_PREFIX-0.h5 ... and prints their names.
"""
import argparse

import h5py
import numpy as np


def copy_attrs(src, dst):
    for k, v in src.attrs.items():
        dst.attrs[k] = v


def pieces(tab, n, bounds, text):
    """Per site, {column: data} for the rows [a, b) of each site."""
    out = []
    for a, b in bounds:
        cols = {}
        for key, v in tab.items():
            if key == "offsets" and "text" in tab and tab["text"].dtype == np.uint8:
                o = v[:].astype(np.int64)
                cols["offsets"] = (o[a:b + 1] - o[a]).astype(v.dtype)
                cols["text"] = tab["text"][o[a]:o[b]]
            elif key == "text" and tab["text"].dtype == np.uint8:
                continue
            elif isinstance(v, h5py.Dataset) and v.ndim == 1 and v.shape[0] == n and (key != "text" or text == "text"):
                cols[key] = v[a:b]
        out.append(cols)
    return out


def write(path, f, tab, cols):
    with h5py.File(path, "w") as g:
        copy_attrs(f, g)
        for key in f:
            if f[key].name != tab.name and not tab.name.startswith(f[key].name + "/"):
                f.copy(f[key], g, name=key)
        grp = g.require_group(tab.name)
        copy_attrs(tab, grp)
        for key, v in tab.items():
            if key in cols:
                d = grp.create_dataset(key, data=cols[key], dtype=v.dtype)
                copy_attrs(v, d)
            elif key not in cols:
                f.copy(v, grp, name=key)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("inp")
    ap.add_argument("cuts")
    ap.add_argument("prefix")
    ap.add_argument("--table", default="/corpus")
    ap.add_argument("--text", default="text")
    ap.add_argument("--order")
    ap.add_argument("--concat")
    a = ap.parse_args()
    with h5py.File(a.inp, "r") as f:
        tab = f[a.table]
        n = tab["offsets"].shape[0] - 1 if "offsets" in tab else tab[a.text].shape[0]
        starts = [int(c) for c in a.cuts.split(",")] if a.cuts else [0]
        if starts[0] != 0:
            starts = [0] + starts
        ends = starts[1:] + [n]
        bounds = list(zip(starts, ends))
        parts = pieces(tab, n, bounds, a.text)
        for i, cols in enumerate(parts):
            out = f"{a.prefix}-{i}.h5"
            write(out, f, tab, cols)
            print(out)
        if a.concat:
            order = [int(x) for x in a.order.split(",")]
            cat = {}
            for key in parts[0]:
                if key == "offsets":
                    o, base = [np.zeros(1, dtype=np.int64)], 0
                    for i in order:
                        o.append(parts[i]["offsets"][1:].astype(np.int64) + base)
                        base += int(parts[i]["offsets"][-1])
                    cat[key] = np.concatenate(o).astype(tab["offsets"].dtype)
                else:
                    cat[key] = np.concatenate([parts[i][key] for i in order])
            write(a.concat, f, tab, cat)


if __name__ == "__main__":
    main()
