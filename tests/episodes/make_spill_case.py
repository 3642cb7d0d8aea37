"""The spill case of tests/episodes: N readings of 200 devices, interleaved row by row
(every chunk holds every device), one every 2 s, 1% of them 400 s late (out of order, and
gaps); int32 ids, int64 seconds, float32 values around 50."""
import sys

import h5py
import numpy as np

n, D = int(sys.argv[2]), 200
rng = np.random.default_rng(7)
i = np.arange(n)
dev = (i % D).astype(np.int32)
t = 1711749600 + (i // D).astype(np.int64) * 2 + (rng.random(n) < 0.01) * 400
v = (50 + rng.normal(0, 4, n)).astype(np.float32)
with h5py.File(sys.argv[1], "w") as f:
    f["table/device"], f["table/time"], f["table/value"] = dev, t, v
