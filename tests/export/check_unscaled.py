#!/usr/bin/python3
"""Export of arrays whose dimensions have no dimension scale (h5py's default): a 3-D
array, two 2-D arrays of the same shape, and a 2-D array with a scale on its first
dimension only. Every CSV row must be the cell of its index columns, in C order; the
expected rows are built with numpy's ndindex, not from an earlier export.

    check_unscaled.py H5BATCH PREFIX
"""
import subprocess
import sys

import h5py
import numpy as np

hb, prefix = sys.argv[1], sys.argv[2]
path = prefix + "-unscaled.h5"
x3 = np.arange(24.0).reshape(2, 3, 4) * 1.5
a2 = np.arange(6, dtype=np.int64).reshape(2, 3) - 2
b2 = np.arange(6.0).reshape(2, 3) ** 2
with h5py.File(path, "w") as f:
    f.create_group("cube").create_dataset("x", data=x3)
    g = f.create_group("pair")
    g["a"], g["b"] = a2, b2
    h = f.create_group("half")
    h["lab"] = np.array([10, 20], dtype=np.int64)
    h["lab"].make_scale("lab")
    h["z"] = b2
    h["z"].dims[0].attach_scale(h["lab"])


def fmt(v):
    return "%d" % v if float(v).is_integer() else repr(float(v))


def export(group):
    r = subprocess.run([hb, "export", path, "--group", group, "-q"], capture_output=True, text=True)
    assert r.returncode == 0, (group, r.returncode, r.stderr)
    return r.stdout.splitlines()


want = ["dim_0,dim_1,dim_2,x"] + ["%d,%d,%d,%s" % (i, j, k, fmt(x3[i, j, k])) for i, j, k in np.ndindex(x3.shape)]
assert export("cube") == want, export("cube")[:6]
want = ["dim_0,dim_1,a,b"] + ["%d,%d,%d,%s" % (i, j, a2[i, j], fmt(b2[i, j])) for i, j in np.ndindex(a2.shape)]
assert export("pair") == want, export("pair")[:6]
want = ["lab,dim_1,z"] + ["%d,%d,%s" % ((10, 20)[i], j, fmt(b2[i, j])) for i, j in np.ndindex(b2.shape)]
assert export("half") == want, export("half")[:6]
