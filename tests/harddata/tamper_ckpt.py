"""tamper_ckpt.py RUN_DIR ATTR|sizes VALUE: rewrites every checkpoint listed in
RUN_DIR/manifest (the dataset /sizes' first value, or an attribute of the root, made an
array of two) and puts each file's true size and xxh64 back in the manifest, so that
the run trusts the file and reads what was changed: the checks of the contents are
reached, not the checksum's."""
import ctypes
import os
import sys

import h5py
import numpy as np

run, what, value = sys.argv[1], sys.argv[2], int(sys.argv[3])
xxh = ctypes.CDLL("libxxhash.so.0")
xxh.XXH64.restype = ctypes.c_uint64
xxh.XXH64.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint64]
lines = open(os.path.join(run, "manifest")).read().splitlines()
out = []
for line in lines:
    f = line.split()
    if line.startswith("#") or len(f) < 6:
        out.append(line)
        continue
    path = os.path.join(run, f[2])
    with h5py.File(path, "r+") as h:
        if what == "sizes":
            s = h["sizes"][...]
            s[0] = value
            h["sizes"][...] = s
        else:
            del h.attrs[what]
            h.attrs[what] = np.array([value, value], np.int64)
    data = open(path, "rb").read()
    f[3], f[4] = str(len(data)), "%016x" % xxh.XXH64(data, len(data), 0)
    out.append(" ".join(f))
open(os.path.join(run, "manifest"), "w").write("\n".join(out) + "\n")
