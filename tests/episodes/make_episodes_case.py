"""Writes the episodes kernel's test input: one table whose rows are built to be hard
(tests/episodes/suite.sh): devices read at irregular intervals with runs above and below
the thresholds, an episode that crosses the boundary of two chunks (and of two ranks, as
neighbouring chunks go to different ranks), gaps of exactly max_gap and one second more,
hysteresis re-entries, duplicate timestamps, a device with one reading, a device only in
the last chunk, missing values and missing ids, over a DST change and a month end.

The same rows under several column types: dev (int32), devf (float64 with NaN = missing),
sdev (variable-length UTF-8 strings), time (s), time_ms (ms), time_ns (ns), value (float64 with NaN)."""
import sys

import h5py
import numpy as np

out = sys.argv[1]
rng = np.random.default_rng(14)
T0 = 1711749600  # 2024-03-29T22:00:00Z, 23:00 in Berlin; DST starts on the 31st
rows = []  # (device, time, value)

# random devices: a walk around 80 with bursts beyond 100, irregular steps, some ties
for d in range(10, 40):
    t = T0 + int(rng.integers(0, 3600))
    v = 80.0
    for _ in range(int(rng.integers(20, 90))):
        t += int(rng.choice([0, 1, 5, 30, 59, 60, 61, 120, 900, 3600]))
        v = float(np.clip(v + rng.choice([-6, -2.5, -0.5, 0, 0.5, 2.5, 6]), 40, 160))
        if rng.random() < 0.05:
            v += 30
        rows.append((d, t, v))

# gaps: 60 s (max_gap) goes on, 61 s ends the episode
for dt, v in zip([0, 60, 120, 181, 241, 301], [110, 111, 112, 113, 90, 115]):
    rows.append((2, T0 + 7200 + dt, float(v)))
# hysteresis 5 around 100: 101 starts, 97 goes on, 94 ends, 99 does not start, 103 starts again
for i, v in enumerate([90, 101, 97, 102, 94, 99, 103, 96, 95.0, 101]):
    rows.append((3, T0 + 10000 + 10 * i, v))
# one reading
rows.append((4, T0 + 86400 * 2 + 5, 150.0))
# duplicate timestamps, equal and different values
for t, v in [(10, 120), (10, 90), (10, 120), (20, 101), (20, 101), (30, 99), (30, 130), (40, 80)]:
    rows.append((6, T0 + 50000 + t, float(v)))
# a month end and the DST change in one device: 23:59 local on the 31st, readings each 30 s
for i in range(200):
    rows.append((7, 1711922400 - 3000 + 30 * i, 105.0 + (i % 7) - (20 if i % 50 == 49 else 0)))
# a long device with negative values (rate and outside rules), mostly calm
for i in range(300):
    rows.append((8, T0 + 3 * i, float(np.round(50 + 12 * np.sin(i / 9.0) + rng.normal(0, 1), 1))))

rng.shuffle(rows)
# the chunk boundary: device 5's episode runs contiguous across rows 1000/1001 (chunk_rows 50, 100, 1000)
block = [(5, T0 + 20000 + 15 * i, 100.5 + i % 3) for i in range(40)]
cut = 1000 - 20
rows = rows[:cut] + block + rows[cut:]
# missing values and ids
for i in range(0, len(rows), 97):
    d, t, v = rows[i]
    rows[i] = (d, t, float("nan"))
missing_id = set(range(13, len(rows), 211))
# device 9 only in the last chunk (the last 20 rows; the suite's chunk sizes leave it alone there)
tail = [(9, T0 + 40000 + 7 * i, 100.0 + (i % 4) * 3 - 4) for i in range(20)]
n_body = len(rows)
pad = (-n_body) % 50  # so that the tail starts a chunk of 50 (and of 10)
rows = rows + [(8, T0 + 3 * 300 + 5 * i, 50.0) for i in range(pad)]
rows = rows + tail

dev = np.array([r[0] for r in rows], dtype=np.int32)
devf = dev.astype(np.float64)
devf[list(missing_id)] = np.nan
names = {d: f"dev-{d:02d}" for d in set(dev.tolist())}
names[3] = "Zürich-3"
names[4] = "z"  # a short label and one that sorts first by bytes
names[6] = "A-6"
sdev = np.array([names[d] for d in dev], dtype=object)
t = np.array([r[1] for r in rows], dtype=np.int64)
val = np.array([r[2] for r in rows], dtype=np.float64)
with h5py.File(out, "w") as f:
    g = f.create_group("table")
    g["dev"] = dev
    g["devf"] = devf
    g.create_dataset("sdev", data=sdev, dtype=h5py.string_dtype())
    g["time"] = t
    g["time_ms"] = t * 1000 + 250
    g["time_ns"] = t * 1000000000 + 7  # 64-bit time steps in the kernel's columns (readings > 2 s apart)
    g["value"] = val
    g["value"].attrs["units"] = "1/min"
    g["tstr"] = np.array([str(x) for x in t], dtype="S12")
    g["badtime"] = t * 1000  # ms in a seconds column
    g["devbad"] = devf + 0.5  # ids that are not integers
print(f"{out}: {len(rows)} rows, tail device 9 at rows {len(rows) - 20}..{len(rows) - 1}")
