#!/usr/bin/python3
"""Write small synthetic h5batch traffic inputs for the tests.

Cases (all deterministic):
  edge            ~200k rows, Europe/Berlin, both 2024 DST changes, event
                  days, invalid rows of every kind; run h5batch with
                  --timezone Europe/Berlin.
  types           ~20k rows, UTC, float64 times (fractional, pre-1970, NaN),
                  uint16 segments, int16 speeds, given free_flow_speed.
  tiny            18 hand-checkable rows in UTC (answers in tiny()).
  missing_column, unequal, string_column, no_table
                  inputs h5batch must reject.
"""

import argparse
import datetime
import zoneinfo

import h5py
import numpy as np

HOUR = 3600
DAY = 86400
BERLIN = zoneinfo.ZoneInfo("Europe/Berlin")
SPRING_DST = 1711846800          # 2024-03-31T01:00:00Z, 02:00 CET -> 03:00 CEST
AUTUMN_DST = 1729990800          # 2024-10-27T01:00:00Z, 03:00 CEST -> 02:00 CET


def utc(text):
    """Epoch seconds of an ISO 8601 UTC time."""
    return int(datetime.datetime.fromisoformat(text + "+00:00").timestamp())


def write(path, columns, attrs=None, free_flow=None, event_days=None):
    """Write /observations (+ optional tables); columns keep their dtypes."""
    with h5py.File(path, "w") as f:
        table = f.create_group("observations")
        for name, values in columns.items():
            table.create_dataset(name, data=values)
        for name, value in (attrs or {}).items():
            table.attrs[name] = value
        if free_flow is not None:
            f.create_dataset("segments/free_flow_speed", data=free_flow)
        if event_days is not None:
            f.create_dataset("calendar/event_days", data=event_days)
    summary = ", ".join(f"{name} {len(v)} x {v.dtype}" for name, v in columns.items())
    extras = [f"{k}={v}" for k, v in (attrs or {}).items()]
    if free_flow is not None:
        extras.append(f"free_flow_speed={free_flow.tolist()}")
    if event_days is not None:
        extras.append(f"event_days={event_days.tolist()}")
    print(f"wrote {path}: {'; '.join([summary] + extras)}")


def typical_speed(rng, seg, t):
    """Plausible speeds: free flow per segment, rush-hour dips (approximate
    local hour is fine here; exact bucketing is the reference's job)."""
    hour = (t // HOUR + 1) % 24
    rush = np.isin(hour, [7, 8, 16, 17, 18])
    base = 50.0 + 10.0 * seg
    return base * np.where(rush, 0.55, 1.0) * rng.lognormal(0.0, 0.15, len(t))


def edge(path):
    rng = np.random.default_rng(20240331)
    parts = []                   # (time, segment, speed) triples

    def add(t, seg, speed=None):
        t = np.asarray(t, dtype=np.int64)
        seg = np.broadcast_to(np.asarray(seg, dtype=np.int64), t.shape)
        if speed is None:
            speed = np.minimum(typical_speed(rng, seg, t), 240.0)
        parts.append((t, seg, np.broadcast_to(speed, t.shape)))

    # Background: segments 0..7 from mid-March to mid-November.
    start, stop = utc("2024-03-18T00:00:00"), utc("2024-11-10T00:00:00")
    n = 150_000
    add(rng.integers(start, stop, n), rng.integers(0, 8, n))

    # Dense rows within 3 h of each DST change, including the repeated
    # 02:00-03:00 local hour in October.
    for moment in (SPRING_DST, AUTUMN_DST):
        n = 20_000
        add(rng.integers(moment - 3 * HOUR, moment + 3 * HOUR, n),
            rng.integers(0, 8, n))
        # Instants at and around the transition, on every busy segment.
        for delta in (-3601, -3600, -3599, -1, 0, 1, 3599, 3600, 3601):
            add(np.full(8, moment + delta), np.arange(8))

    # Local midnights that open and close each event day.
    event_days = np.array([20240501, 20241003, 20241027], dtype=np.int32)
    for day in event_days.tolist():
        date = datetime.date(day // 10000, day // 100 % 100, day % 100)
        for d in (date, date + datetime.timedelta(days=1)):
            midnight = int(datetime.datetime.combine(
                d, datetime.time(), BERLIN).timestamp())
            for delta in (-1, 0, 1):
                add(np.full(4, midnight + delta), np.arange(4))

    # Segment 8: 40 scattered rows, so most of its cells hold 0, 1 or 2 values.
    add(rng.integers(start, stop, 40), 8)
    # Segment 9: never on a local Sunday (06..20 UTC keeps the local date).
    t = rng.integers(start, stop, 6000)
    t = t[(((t // DAY) + 3) % 7 != 6) & np.isin(t // HOUR % 24, np.arange(6, 21))]
    add(t[:3000], 9)
    # Segment 10: only 08..15 UTC, i.e. local hours 9..17 ...
    t = rng.integers(start, stop, 10000)
    add(t[np.isin(t // HOUR % 24, np.arange(8, 16))][:3000], 10)
    # ... plus a cell (Tuesday 03:00 CEST) whose speeds are all zero: its
    # mean is 0 so its travel_time_index must be NaN.
    add([utc("2024-06-04T01:10:00"), utc("2024-06-04T01:50:00")], 10, 0.0)
    # Segment 11 gets no rows at all.

    # Boundary speeds that are valid: 0, -0.0 (counts as 0) and max 250.
    for speed in (0.0, -0.0, 250.0):
        add(rng.integers(start, stop, 200), rng.integers(0, 11, 200), speed)

    # Invalid speeds (in precedence order: after time and segment).
    just_above = float(np.nextafter(np.float32(250), np.float32(300)))
    for speed in (np.nan, -5.0, -1e-3, 300.0, just_above, np.inf, -np.inf):
        add(rng.integers(start, stop, 150), rng.integers(0, 11, 150), speed)
    # Invalid segments, some with an invalid speed too (segment wins).
    for seg in (12, -1, 1000):
        add(rng.integers(start, stop, 300), seg)
        add(rng.integers(start, stop, 20), seg, np.nan)

    order = rng.permutation(sum(len(p[0]) for p in parts))
    time, seg, speed = (np.concatenate([p[i] for p in parts])[order]
                        for i in range(3))
    write(path, {"time": time.astype(np.int64), "segment": seg.astype(np.int64),
                 "speed": speed.astype(np.float32)},
          attrs={"n_segments": np.int64(12)}, event_days=event_days)


def types(path):
    rng = np.random.default_rng(1969)
    n = 20_000
    # 1965..2025 in UTC, with fractional seconds.
    time = rng.uniform(utc("1965-01-01T00:00:00"), utc("2025-01-01T00:00:00"), n)
    seg = rng.integers(0, 6, n)
    speed = np.clip(rng.normal(70, 25, n), -20, 400).round()
    # Floors across the epoch and across hour/day starts before 1970.
    special = [-0.5, -1.0, -1.5, -3599.75, -3600.0, -3600.5, -86400.0,
               -86400.25, -1e9 + 0.7, 0.0, 0.25, 1e9, 1e9 + 0.999999]
    time[:len(special)] = special
    # Invalid times take precedence over everything else.
    k = len(special)
    time[k:k + 30] = np.tile([np.nan, np.inf, -np.inf], 10)
    speed[k:k + 10] = -7
    # Boundary and invalid speeds.
    speed[100:150] = 0
    speed[150:200] = 250
    speed[200:230] = 251
    speed[230:260] = -1
    speed[260:270] = 32767
    # Segment 6 (the largest, so S = 7) has one all-zero cell: TTI is NaN.
    seg[300:305] = 6
    time[300:305] = utc("2001-09-09T01:00:00") + np.arange(5) * 60.5
    speed[300:305] = 0
    # Segment 3's free-flow speed is NaN, so its TTI is NaN everywhere.
    free_flow = np.array([80, 90.5, 100, np.nan, 60, 70.25, 50], dtype=np.float32)
    write(path, {"time": time, "segment": seg.astype(np.uint16),
                 "speed": speed.astype(np.int16)}, free_flow=free_flow)


def tiny(path):
    """18 rows, 2 segments, UTC; 2024-01-01 is a Monday.

    Expected (numpy linear percentiles p50/p85; values are rounded here):
      seg 0 Mon 08h: 10,20,30,40 -> count 4, mean 25, p50 25, p85 35.5
      seg 0 Mon 09h: 50          -> count 1, all 50
      seg 1 Tue 17h: 30,60       -> count 2, mean 45, p50 45, p85 55.5
      seg 1 Sat 00h: 0,-0.0,250  -> count 3, mean 83.33, p50 +0.0, p85 175
      seg 1 Sun 23h: 100         -> count 1
      event day Wed 2024-01-03, seg 0 12h: 5,15 -> events count 2, mean 10
      free_flow_speed (p85 of non-event values): seg 0 44, seg 1 137.5
      TTI seg 0 Mon 08h = 44/25 = 1.76; seg 1 Sat 00h = 137.5/83.33 = 1.65
      rows_total 18, valid 13, invalid speed 2 (NaN, 251), invalid segment 2
      (2, 0.5), invalid time 1 (NaN time with a bad speed: time wins).
    """
    rows = [
        ("2024-01-01T08:00:00", 0, 10), ("2024-01-01T08:15:00", 0, 40),
        ("2024-01-01T08:30:00", 0, 30), ("2024-01-01T08:59:59", 0, 20),
        ("2024-01-01T09:00:00", 0, 50),
        ("2024-01-02T17:05:00", 1, 60), ("2024-01-02T17:55:00", 1, 30),
        ("2024-01-06T00:00:00", 1, 0.0), ("2024-01-06T00:00:01", 1, -0.0),
        ("2024-01-06T00:59:59", 1, 250),
        ("2024-01-07T23:59:59", 1, 100),
        ("2024-01-03T12:00:00", 0, 5), ("2024-01-03T12:30:00", 0, 15),
        ("2024-01-01T08:10:00", 0, np.nan), ("2024-01-01T08:20:00", 0, 251),
        ("2024-01-01T08:40:00", 2, 30), ("2024-01-01T08:50:00", 0.5, 30),
    ]
    time = [float(utc(t)) for t, _, _ in rows] + [np.nan]
    seg = [s for _, s, _ in rows] + [0]
    speed = [v for _, _, v in rows] + [-1.0]
    write(path, {"time": np.array(time), "segment": np.array(seg, dtype=np.float64),
                 "speed": np.array(speed, dtype=np.float64)},
          attrs={"n_segments": np.int32(2)},
          event_days=np.array([20240103], dtype=np.int64))


def _small_columns():
    t = utc("2024-05-06T10:00:00") + np.arange(10, dtype=np.int64) * 600
    return {"time": t, "segment": np.arange(10, dtype=np.int32) % 3,
            "speed": np.linspace(30, 90, 10)}


def missing_column(path):
    cols = _small_columns()
    del cols["speed"]
    write(path, cols)


def unequal(path):
    cols = _small_columns()
    cols["speed"] = cols["speed"][:-1]
    write(path, cols)


def string_column(path):
    cols = _small_columns()
    cols["speed"] = np.array([b"%.1f" % v for v in cols["speed"]], dtype="S8")
    write(path, cols)


def no_table(path):
    with h5py.File(path, "w") as f:
        f.create_group("metadata").attrs["note"] = "no observations here"
    print(f"wrote {path}: only /metadata")


CASES = {f.__name__: f for f in (edge, types, tiny, missing_column, unequal,
                                  string_column, no_table)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("output", help="HDF5 file to write")
    parser.add_argument("--case", required=True, choices=sorted(CASES))
    args = parser.parse_args()
    CASES[args.case](args.output)


if __name__ == "__main__":
    main()
