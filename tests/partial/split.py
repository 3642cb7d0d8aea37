#!/usr/bin/python3
"""Splits an h5batch input table into site files, for the partial-state tests.

    split.py IN.h5 TABLE CUTS OUT_PREFIX [--order perm]

TABLE is the group (or compound dataset) whose rows are split; CUTS is a comma-separated
list of row numbers where a new site starts ("0,100,100,250": sites [0,100) [100,100)
[100,250) [250,n); a repeated cut makes a site with no rows). Every dataset of TABLE whose
first dimension is the table's row count is cut (string and vlen columns too); everything
else in the file (side tables, attributes, dimension scales) is copied to every site
unchanged, so that the concatenation of the sites' rows, in order, is IN's table.
Writes OUT_PREFIX-0.h5 ... OUT_PREFIX-(K-1).h5 and prints their names.
"""
import sys

import h5py
import numpy as np


def rows_of(tab):
    if isinstance(tab, h5py.Dataset):
        return tab.shape[0]
    n = None
    for v in tab.values():
        if isinstance(v, h5py.Dataset) and v.ndim >= 1:
            n = v.shape[0] if n is None else max(n, v.shape[0])
    return n or 0


def copy_attrs(src, dst):
    for k, v in src.attrs.items():
        dst.attrs[k] = v


def cut_dataset(src, parent, name, a, b):
    data = src[a:b]
    kw = {}
    if src.chunks and b > a:
        kw["chunks"] = (min(src.chunks[0], b - a),) + tuple(src.chunks[1:])
        if src.compression:
            kw["compression"] = src.compression
    d = parent.create_dataset(name, data=data, dtype=src.dtype, **kw)
    copy_attrs(src, d)


def main():
    inp, table, cuts, prefix = sys.argv[1:5]
    with h5py.File(inp, "r") as f:
        tab = f[table]
        n = rows_of(tab)
        starts = [int(c) for c in cuts.split(",")] if cuts else [0]
        if starts[0] != 0:
            starts = [0] + starts
        bounds = starts + [n]
        for i in range(len(starts)):
            a, b = bounds[i], bounds[i + 1]
            out = f"{prefix}-{i}.h5"
            with h5py.File(out, "w") as g:
                copy_attrs(f, g)
                for key in f:
                    if f[key].name == tab.name or (isinstance(tab, h5py.Group) and key == tab.name.strip("/")):
                        continue
                    if tab.name.startswith(f[key].name + "/"):
                        continue
                    f.copy(f[key], g, name=key)
                # the table (and the groups above it)
                if isinstance(tab, h5py.Dataset):
                    parent = g.require_group(tab.parent.name)
                    for key in tab.parent:
                        if key != tab.name.split("/")[-1] and key not in parent:
                            f.copy(tab.parent[key], parent, name=key)
                    cut_dataset(tab, parent, tab.name.split("/")[-1], a, b)
                else:
                    parent = g.require_group(tab.name)
                    copy_attrs(tab, parent)
                    for key, v in tab.items():
                        if isinstance(v, h5py.Dataset) and v.ndim >= 1 and v.shape[0] == n:
                            cut_dataset(v, parent, key, a, b)
                        else:
                            f.copy(v, parent, name=key)
            print(out)


if __name__ == "__main__":
    main()
