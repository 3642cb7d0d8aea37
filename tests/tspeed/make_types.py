#!/usr/bin/python3
"""One traffic input written with the columns in several stored types, for the tspeed
suite: the native-type reads (segment and speed converted in traffic's map loop) and the
conversions they replace must give the same bits, and the float32 reduction (cells
sorted on 4-byte keys) must equal the float64 one (selection on doubles) on the same
values. The data: 6 segments, 60k rows over 5 weeks of Europe/Berlin time across the
2024 spring DST change, so that busy cells hold hundreds of values (the radix path) and
quiet ones a few (insertion); event days; speeds quantized to 0.1, some repeated exactly,
zeros and -0.0, in one cell values 3e-14 beside 200 (an exponent span that a double sum
does not hold exactly), and invalid rows of every kind.

  make_types.py DIR     writes DIR/u32f32.h5 (time int64, segment uint32, speed float32),
                        i32f64.h5 (int32, float64), i64f32.h5 (int64, float32),
                        f64f32.h5 (segment float64: read converted), compound.h5 (the
                        u32f32 columns as one compound dataset)
"""
import sys

import h5py
import numpy as np

d = sys.argv[1]
rng = np.random.default_rng(17)
n, S = 60000, 6
t0 = 1710720000  # 2024-03-18T00:00:00Z, two weeks before the spring change
time = np.sort(t0 + rng.integers(0, 35 * 86400, n)).astype(np.int64)
seg = (S * rng.random(n) ** 2).astype(np.int64)  # segment 0 busy, 5 quiet
speed = np.round(rng.normal(70, 15, n), 1).astype(np.float32)
speed[rng.random(n) < 0.02] = 0.0
speed[rng.random(n) < 0.01] = -0.0
# one weekly cell of segment 2 (Monday 2024-03-18, 05:00 local) with tiny values beside
# large ones, whose exact sum a double sum in ascending order misses by an ulp
odd = np.array([3e-14] * 20 + [200] * 20 + [70.1, 70.3, 55.5, 0.1, 0.7, 33.3], dtype=np.float32)
time = np.concatenate([time, t0 + 4 * 3600 + np.arange(odd.size, dtype=np.int64)])
seg = np.concatenate([seg, np.full(odd.size, 2, dtype=np.int64)])
speed = np.concatenate([speed, odd])
n = time.size
bad = rng.random(n)
bad[-odd.size:] = 1.0  # the odd cell stays whole
speed[bad < 0.003] = np.nan
speed[(bad >= 0.003) & (bad < 0.006)] = -5
speed[(bad >= 0.006) & (bad < 0.009)] = 400
seg[(bad >= 0.009) & (bad < 0.012)] = S + 3
events = np.array([20240329, 20240401], dtype=np.int32)  # Good Friday, Easter Monday


def write(name, seg_t, speed_t):
    with h5py.File(f"{d}/{name}.h5", "w") as f:
        g = f.create_group("observations")
        g.attrs["n_segments"] = S
        g["time"] = time
        g["segment"] = seg.astype(seg_t)
        g["speed"] = speed.astype(speed_t)
        f["calendar/event_days"] = events


write("u32f32", np.uint32, np.float32)
write("i32f64", np.int32, np.float64)
write("i64f32", np.int64, np.float32)
write("f64f32", np.float64, np.float32)
rec = np.zeros(n, dtype=[("time", "<i8"), ("segment", "<u4"), ("speed", "<f4")])
rec["time"], rec["segment"], rec["speed"] = time, seg, speed
with h5py.File(f"{d}/compound.h5", "w") as f:
    f["observations"] = rec
    f["observations"].attrs["n_segments"] = S
    f["calendar/event_days"] = events
