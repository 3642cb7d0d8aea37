#!/usr/bin/python3
"""numpy reference of the psum test kernel (tests/partial/psum.c) over the concatenation
of input files, in order: ref.py OUT.h5 SCALE IN.h5... writes /psum/count, /psum/sum and
/psum/first_row as the kernel does (dense over 0..max(key); -1 where a key never occurs),
then compares with the file CHECK given as $PSUM_CHECK: exit 1 on any difference."""
import os
import sys

import h5py
import numpy as np

scale = int(sys.argv[1])
keys, vals = [], []
for path in sys.argv[2:]:
    with h5py.File(path, "r") as f:
        keys.append(f["t/key"][:].astype(np.int64))
        vals.append(f["t/value"][:].astype(np.int64))
key = np.concatenate(keys)
val = np.concatenate(vals)
K = max(int(key.max()) + 1 if key.size else 0, 1)
count = np.bincount(key, minlength=K)
total = np.bincount(key, weights=val * scale, minlength=K).astype(np.int64)
first = np.full(K, -1, np.int64)
for i in range(key.size - 1, -1, -1):
    first[key[i]] = i
with h5py.File(os.environ["PSUM_CHECK"], "r") as f:
    got = {n: f["psum/" + n][:] for n in ("count", "sum", "first_row")}
ok = (np.array_equal(got["count"], count) and np.array_equal(got["sum"], total)
      and np.array_equal(got["first_row"], first))
if not ok:
    print("expected", count, total, first, "got", got)
sys.exit(0 if ok else 1)
