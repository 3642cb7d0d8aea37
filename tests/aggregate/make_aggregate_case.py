#!/usr/bin/python3
"""Write small inputs for the aggregate kernel's tests (deterministic).

Cases:
  edge     ~60k rows in /table: times clustered at the 2024 DST changes of
           Europe/Berlin and America/New_York and at ISO week-53 year ends,
           sparse meter ids in the millions (and single-reading meters, a
           meter with only invalid readings, one whose 'wide' values span 1e-30..1e30),
           keys of every integer width, a float key with NaN, variable- and
           fixed-length UTF-8 strings (empty, non-ASCII), values with NaN,
           inf, -0.0 and out-of-range readings, a float32 value, and the
           times again in milliseconds and as float seconds with NaN.
  ms       the edge times in milliseconds only (for time_unit errors).
  strval   a table whose value column is a string.
  many     rows that each form their own group (memory limits).
  empty    rows whose keys are all missing: no group at all.
  ordered  the edge case's rows ordered by meter (stably: each meter's readings in their
           order), as a file written meter after meter is: every rank owns the meters
           of its block of chunks (the owners by ranges of the first key).
  spread   readings of 3,000 meters (ids far apart) in time order over a year, so that a
           chunk of 1k rows meets most of its meter-months once (rows forwarded to
           their owners rather than staged): a float32 value (kept as floats, exact
           plain sums) and a float64 one with NaN, inf, magnitudes 1e-30..1e10 for
           some meters, and a meter with no valid reading of either.
  grow     an integer key whose observed range grows chunk by chunk (sorted ids), then
           leaves the dense path's box (random ids over a wider range), then comes back
           into it (a few ids): the dense path's box rebuilt, left and re-entered.
"""

import argparse
import datetime

import h5py
import numpy as np

DAY = 86400


def utc(text):
    return int(datetime.datetime.fromisoformat(text + "+00:00").timestamp())


def edge_times(rng, n):
    """Times near the interesting instants, plus a spread over 2020-2025."""
    centers = [
        utc("2024-03-31T01:00:00"),  # Berlin spring forward
        utc("2024-10-27T01:00:00"),  # Berlin fall back (the 02:00 hour twice)
        utc("2024-03-10T07:00:00"),  # New York spring forward
        utc("2024-11-03T06:00:00"),  # New York fall back
        utc("2020-12-31T12:00:00"),  # 2020 has an ISO week 53
        utc("2021-01-03T12:00:00"),
        utc("2024-12-30T12:00:00"),  # ISO week 1 of 2025
        utc("2026-01-01T00:00:00"),
        utc("2024-06-30T23:30:00"),  # quarter end
    ]
    k = n // 2
    near = rng.choice(centers, k) + rng.integers(-2 * DAY, 2 * DAY, k)
    spread = rng.integers(utc("2020-01-01T00:00:00"), utc("2026-01-01T00:00:00"), n - k)
    t = np.concatenate([near, spread])
    rng.shuffle(t)
    return t.astype(np.int64)


def edge(path, n=60000, seed=7):
    rng = np.random.default_rng(seed)
    t = edge_times(rng, n)
    meters = 3_000_000 + 7919 * np.arange(400, dtype=np.int64)
    meter = rng.choice(meters, n)
    meter[:60] = 9_000_000 + np.arange(60)      # single-reading meters
    meter[60:80] = -42                          # a negative id, all readings invalid below
    meter[80:200] = 12_345_678                  # the meter whose sum spills
    districts = np.array(["Zürich", "Åre", "東京", "", "a", "ab", "b", "Ω"], dtype=object)
    district = districts[rng.integers(0, len(districts), n)]
    codes = np.array([b"", b"A", b"AB", b"B\xc3\xa9", b"ZZZZZZ"], dtype="S6")
    code = codes[rng.integers(0, len(codes), n)]
    consumption = np.round(rng.gamma(2.0, 40.0, n), 3)
    consumption[rng.random(n) < 0.02] = np.nan
    consumption[rng.random(n) < 0.01] = -5.0    # below the valid range
    consumption[rng.random(n) < 0.005] = 2e6    # above it
    consumption[rng.random(n) < 0.003] = np.inf
    consumption[rng.random(n) < 0.003] = -0.0
    consumption[60:80] = np.nan
    wide = np.full(n, np.nan)                   # only the spilling meter has these
    wide[80:200] = 10.0 ** rng.integers(-30, 31, 120) * rng.choice([1, -1], 120) * (1 + rng.random(120))
    temp = (rng.normal(8, 12, n)).astype(np.float32)
    temp[rng.random(n) < 0.01] = np.float32(np.nan)
    temp[rng.random(n) < 0.01] = np.float32(-99.0)
    small = rng.integers(-3, 3, n).astype(np.int8)
    u16 = rng.choice([0, 7, 65535], n).astype(np.uint16)
    u32 = rng.choice([1, 4_000_000_000], n).astype(np.uint32)
    fkey = rng.choice([1.0, 2.0, 10.0, np.nan], n)
    tfloat = t.astype(np.float64) + 0.25
    tfloat[rng.random(n) < 0.01] = np.nan
    with h5py.File(path, "w") as f:
        g = f.create_group("table")
        g["timestamp"] = t
        g["timestamp_ms"] = t * 1000 + rng.integers(0, 1000, n)
        g["tfloat"] = tfloat
        g["meter_id"] = meter
        g.create_dataset("district", data=district, dtype=h5py.string_dtype("utf-8"))
        g["code"] = code
        g["small"] = small
        g["u16"] = u16
        g["u32"] = u32
        g["fkey"] = fkey
        g["consumption"] = consumption
        g["consumption"].attrs["units"] = "m3"
        g["temp"] = temp
        g["wide"] = wide
        g["temp"].attrs["units"] = "degC"
        g["label"] = np.array(["x"] * n, dtype=object).astype(h5py.string_dtype())


def ms(path):
    edge(path)
    with h5py.File(path, "a") as f:
        g = f["table"]
        t = g["timestamp_ms"][:]
        del g["timestamp"]
        g["timestamp"] = t


def strval(path):
    with h5py.File(path, "w") as f:
        g = f.create_group("table")
        g["meter"] = np.arange(10)
        g.create_dataset("reading", data=np.array([str(i) for i in range(10)], dtype=object),
                         dtype=h5py.string_dtype())


def many(path, n=60000):
    with h5py.File(path, "w") as f:
        g = f.create_group("table")
        g["meter"] = np.arange(n, dtype=np.int64) * 1000
        g["hourly"] = np.arange(n, dtype=np.int64) % 24
        g["value"] = np.arange(n, dtype=np.float64)


def grow(path, seed=11):
    rng = np.random.default_rng(seed)
    cell = np.concatenate([np.arange(200_000, dtype=np.int64) // 2,
                           rng.integers(0, 100_000, 60_000),
                           rng.integers(0, 1_000, 40_000)])
    n = len(cell)
    value = np.round(rng.normal(100.0, 20.0, n), 1)
    value[rng.integers(0, n, 500)] = np.nan
    with h5py.File(path, "w") as f:
        g = f.create_group("table")
        g["cell"] = cell
        g["time"] = 1_700_000_000 + np.arange(n, dtype=np.int64) * 60
        g["value"] = value


def spread(path, n=60000, seed=5):
    rng = np.random.default_rng(seed)
    ids = 1_000_003 + np.arange(3000, dtype=np.int64) * 7919
    meter = rng.choice(ids, n)
    t = np.sort(rng.integers(utc("2024-01-01T00:00:00"), utc("2025-01-01T00:00:00"), n))
    sys = np.round(rng.normal(130.0, 25.0, n)).astype(np.float32)
    wide = rng.normal(10.0, 3.0, n)
    huge = np.isin(meter, ids[:40])
    wide[huge] = rng.choice([1e-30, 2.5e-7, 1e10, 3.5, 1.0 / 3.0], huge.sum())
    wide[rng.integers(0, n, 300)] = np.nan
    wide[rng.integers(0, n, 300)] = np.inf
    dead = meter == ids[-1]
    sys[dead] = 999.0
    wide[dead] = np.nan
    with h5py.File(path, "w") as f:
        g = f.create_group("table")
        g["meter"] = meter
        g["time"] = t
        g["sys"] = sys
        g["wide"] = wide


def empty(path):
    with h5py.File(path, "w") as f:
        g = f.create_group("table")
        g["meter"] = np.full(10, np.nan)
        g["value"] = np.arange(10.0)


def ordered(path):
    edge(path)
    with h5py.File(path, "a") as f:
        g = f["table"]
        order = np.argsort(g["meter_id"][:], kind="stable")
        for k in list(g):
            d = g[k]
            x, attrs, dt = d[:][order], dict(d.attrs), d.dtype
            del g[k]
            g.create_dataset(k, data=x, dtype=dt)
            g[k].attrs.update(attrs)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("path")
    ap.add_argument("--case", default="edge", choices=["edge", "ms", "strval", "many", "empty", "grow", "spread", "ordered"])
    a = ap.parse_args()
    {"edge": edge, "ms": ms, "strval": strval, "many": many, "empty": empty, "grow": grow,
     "spread": spread, "ordered": ordered}[a.case](a.path)


if __name__ == "__main__":
    main()
