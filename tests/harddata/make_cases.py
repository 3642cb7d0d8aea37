"""Writes the tiny inputs of the harddata suite (tests/harddata/suite.sh) into the current
folder: traffic tables with sparse, too large or mostly invalid segment ids, hostile
n_segments attributes (an array, inf, 2^63, a string), extreme times; a risk input
with a huge n_portfolios; aggregate and bill tables whose values are mostly invalid.
Each file is small (at most a few thousand rows); the expected outcomes are stated in
the suite from how the files are made here, not from the program's output."""
import sys

import h5py
import numpy as np

T0 = 1_700_000_000  # 2023-11-14, a time every kernel accepts


def traffic(path, seg, time=None, attrs=None):
    n = len(seg)
    with h5py.File(path, "w") as f:
        g = f.create_group("observations")
        g["time"] = np.arange(n, dtype=np.int64) * 60 + T0 if time is None else np.asarray(time, np.int64)
        g["segment"] = np.asarray(seg, np.int64)
        g["speed"] = np.full(n, 50.0)
        for k, v in (attrs or {}).items():
            g.attrs[k] = v


def main():
    n = 1000
    # ids 0, 5, ..., 4990 and one 5,000,000: S = 5,000,001 from max+1 (sparse); with
    # segments = 1000, the 800 rows with ids >= 1000 are invalid (80%)
    seg = np.arange(n, dtype=np.int64) * 5
    seg[-1] = 5_000_000
    traffic("hd-sparse.h5", seg)
    traffic("hd-toobig.h5", np.arange(n, dtype=np.int64) + 20_000_000)  # every id >= the limit
    small = np.arange(n, dtype=np.int64) % 10
    traffic("hd-attr-array.h5", small, attrs={"n_segments": np.array([10, 20], np.int64)})
    traffic("hd-attr-inf.h5", small, attrs={"n_segments": np.float64("inf")})
    traffic("hd-attr-2p63.h5", small, attrs={"n_segments": np.uint64(2**63)})
    traffic("hd-attr-str.h5", small, attrs={"n_segments": "ten"})
    traffic("hd-attr-huge.h5", small, attrs={"n_segments": np.int64(10**12)})
    lo = np.iinfo(np.int64).min
    traffic("hd-times.h5", small, time=np.arange(n, dtype=np.int64) + lo + 1)  # near INT64_MIN

    # risk: 30 days x 3 assets of prices, transactions of 2 portfolios, n_portfolios 2^62
    with h5py.File("hd-risk.h5", "w") as f:
        days = np.array([20240101 + i for i in range(1, 31)], np.int64)
        f["market/dates"] = days
        rng = np.random.default_rng(1)
        f["market/prices"] = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, (30, 3)), axis=0))
        t = f.create_group("transactions")
        t["date"] = np.full(4, days[0], np.int64)
        t["portfolio"] = np.array([0, 1, 0, 1], np.int64)
        t["asset"] = np.array([0, 1, 2, 0], np.int64)
        t["quantity"] = np.array([10.0, 5.0, -3.0, 1.0])
        t.attrs["n_portfolios"] = np.int64(2**62)

    # risk: prices 1e-320 (row 20, positive and finite) then 1: the return of row 21
    # overflows to inf, which made every figure of the window NaN or garbage
    with h5py.File("hd-risk-ratio.h5", "w") as f:
        f["market/dates"] = days
        p = np.ones((30, 3))
        p[20, 1] = 1e-320
        f["market/prices"] = p
        f["portfolios/exposure"] = np.ones((2, 3))
    # traffic: a free-flow speed of -1 km/h (segment 1) gave a negative travel time index
    traffic("hd-ffs.h5", small)
    with h5py.File("hd-ffs.h5", "a") as f:
        f["segments/free_flow_speed"] = np.array([60.0, -1.0] + [np.nan] * 8)

    # aggregate: 1000 rows, value = row number; valid = value:0:99 keeps 100 (90% invalid);
    # by meter, value, code: 91,000 dense cells, 1.5 MB for two stats
    with h5py.File("hd-agg.h5", "w") as f:
        f["table/meter"] = np.arange(n, dtype=np.int64) % 7
        f["table/value"] = np.arange(n, dtype=np.float64)
        f["table/code"] = np.arange(n, dtype=np.int64) * 7 % 13  # 7 x 1000 x 13 dense cells

    # string keys a foreign file may hold: Latin-1 bytes (row 1), a NUL inside a NUL-padded
    # string (row 1: 'a\0b' beside 'a\0c', which a cut at the NUL made one group), a
    # variable-length string that is not UTF-8 (row 2)
    keys = {"latin1": [b"ok", b"caf\xe9", b"ok", b"x"], "nul": [b"x", b"a\x00b", b"a\x00c", b"x"]}
    for name, k in keys.items():
        with h5py.File(f"hd-str-{name}.h5", "w") as f:
            f["table/k"] = np.array(k)
            f["table/v"] = np.arange(4, dtype=np.float64)
            f["table/time"] = np.arange(4, dtype=np.int64) * 60 + T0
    with h5py.File("hd-str-vlen.h5", "w") as f:
        d = f.create_dataset("table/k", (4,), dtype=h5py.string_dtype())
        d[0], d[1], d[2], d[3] = b"ok", b"ok", b"\xc3\x28", b"ok"
        f["table/v"] = np.arange(4, dtype=np.float64)
        f["table/time"] = np.arange(4, dtype=np.int64) * 60 + T0

    # aggregate: no row has a key: uint64 ids all of 2^63 and more (read as missing), or
    # times all INT64_MIN (pandas' NaT)
    with h5py.File("hd-agg-nokey.h5", "w") as f:
        f["table/meter"] = np.arange(n, dtype=np.uint64) + np.uint64(2**63)
        f["table/value"] = np.arange(n, dtype=np.float64)
        f["table/time"] = np.full(n, np.iinfo(np.int64).min, np.int64)

    # index: a title of Latin-1 bytes (row 1); the text beside it is not checked
    with h5py.File("hd-ix-title.h5", "w") as f:
        f["corpus/text"] = np.frombuffer(b"hello world caf\xe9 bar", np.uint8)
        f["corpus/offsets"] = np.array([0, 11, 20], np.uint64)
        f["corpus/title"] = np.array([b"ok", b"caf\xe9"])

    # string attributes that are arrays (units and timezone of four names): they were read
    # into room for one string (a stack and a heap overflow); now they are not a units
    with h5py.File("hd-attr-strarr.h5", "w") as f:
        f["table/k"] = np.arange(4) % 2
        f["table/v"] = np.arange(4, dtype=np.float64)
        f["table/v"].attrs["units"] = np.array(["km/h", "m/s", "x", "y"], dtype=h5py.string_dtype())
        f["table/k"].attrs["units"] = np.array([b"km/h", b"m/s", b"abcd", b"efgh"])
        f["table"].attrs["timezone"] = np.array(["Europe/Berlin", "UTC"], dtype=h5py.string_dtype())

    # bill: 100 accounts x month, 70 without a valid reading (NaN)
    with h5py.File("hd-bill.h5", "w") as f:
        m = 100
        f["aggregate/meter"] = np.arange(m, dtype=np.int64)
        f["aggregate/district"] = np.zeros(m, np.int64)
        f["aggregate/month"] = np.full(m, 202401, np.int64)
        c = np.full(m, np.nan)
        c[:30] = 12.5
        f["aggregate/consumption"] = c


if __name__ == "__main__":
    sys.exit(main())
