#!/usr/bin/python3
"""Splits an h5batch input table into three site files by a key, for the partial tests of
kernels whose output does not depend on the order of rows (traffic, bill, oee).

    split_key.py IN.h5 TABLE COLUMN VALUE OUT_PREFIX

OUT_PREFIX-0.h5 holds every row whose COLUMN equals VALUE (all of one key), -1 and -2 the
other rows, the first third and the rest (in input order). Every other dataset and
attribute of IN is copied to every site unchanged, as tests/partial/split.py does: the
three sites together hold IN's rows, in another order.
"""
import sys

import h5py
import numpy as np


def main():
    inp, table, column, value, prefix = sys.argv[1:6]
    with h5py.File(inp, "r") as f:
        tab = f[table]
        key = tab[column][...]
        n = key.shape[0]
        hit = np.flatnonzero(key == type(key[0])(value)) if n else np.zeros(0, np.int64)
        rest = np.setdiff1d(np.arange(n), hit)
        third = len(rest) // 3
        sites = [hit, rest[:third], rest[third:]]
        for i, rows in enumerate(sites):
            out = f"{prefix}-{i}.h5"
            with h5py.File(out, "w") as g:
                for k, v in f.attrs.items():
                    g.attrs[k] = v
                for k in f:
                    if f[k].name != tab.name and not tab.name.startswith(f[k].name + "/"):
                        f.copy(f[k], g, name=k)
                parent = g.require_group(tab.name)
                for k, v in tab.attrs.items():
                    parent.attrs[k] = v
                for k, v in tab.items():
                    if isinstance(v, h5py.Dataset) and v.ndim >= 1 and v.shape[0] == n:
                        d = parent.create_dataset(k, data=v[...][rows], dtype=v.dtype)
                        for a, b in v.attrs.items():
                            d.attrs[a] = b
                    else:
                        f.copy(v, parent, name=k)
            print(out)


if __name__ == "__main__":
    main()
