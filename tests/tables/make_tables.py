#!/usr/bin/env python3
"""make_tables.py DIR: the inputs of tests/tables/suite.sh, one small data set per kernel
written in the plain layout (a group of columns, seconds since the epoch) and again as
users write it: pandas to_hdf(format="table") with and without data_columns, pandas
format="fixed", h5py compound datasets with variable-length strings, times in ms, us and
ns (pandas datetime64), compressed with gzip and with the HDF5 filter plugins that this
machine's h5py can write. Prints the plugin filters it could not write ("nofilter NAME").

The same rows in every layout: a kernel must give the same bits from each (h5diff), and
the pandas references of tables_check.py are computed from the plain layout."""
import os
import sys
import warnings

import h5py
import numpy as np
import pandas as pd

warnings.simplefilter("ignore")  # PyTables' NaturalNameWarning and performance notes
D = sys.argv[1]
rng = np.random.default_rng(12)
P = lambda name: os.path.join(D, name)


def group(f, name, cols, **kw):
    g = f.require_group(name)
    for k, v in cols.items():
        g.create_dataset(k, data=v, **kw)
    return g


def zstd_from_pypi(f, t, seg, spd):
    """Zstd, which Debian has no HDF5 plugin for, through PyPI's hdf5plugin when it is
    importable with its plugins: prints "pluginpath DIR" for h5batch's HDF5_PLUGIN_PATH."""
    try:
        import hdf5plugin
        if not os.path.isfile(os.path.join(hdf5plugin.PLUGIN_PATH, "libh5zstd.so")):
            return False
        group(f, "zstd", {"time": t, "segment": seg, "speed": spd}, chunks=(512,), **hdf5plugin.Zstd())
        print("pluginpath", hdf5plugin.PLUGIN_PATH)
        return True
    except Exception:
        if "zstd" in f:
            del f["zstd"]
        return False


# ---- traffic: time (s), segment, speed; some times before 1970 (floor division matters)
n = 3000
t = rng.integers(1704067200, 1704067200 + 14 * 86400, n)
t[:40] = rng.integers(-86400 * 3, 0, 40)  # late December 1969
sub_ns = rng.integers(0, 10**9, n)  # sub-second parts the coarser columns floor away
seg = rng.integers(0, 20, n)
spd = np.round(rng.uniform(0, 150, n), 3)
spd[::97] = np.nan
spd[5::101] = -1.0
with h5py.File(P("tb-traffic.h5"), "w") as f:
    group(f, "observations", {"time": t, "segment": seg, "speed": spd})
    group(f, "ms", {"timestamp": t * 1000 + sub_ns // 10**6, "seg": seg.astype(np.int16), "v": spd})
    # vectors stored as matrices: numpy's column vector (N x 1), MATLAB's (1 x N, as a v7.3
    # .mat file holds an N x 1 variable)
    group(f, "vec", {"time": t.reshape(-1, 1), "segment": seg.reshape(1, -1), "speed": spd})
    # speed's NaN stored as a _FillValue, the numbers packed as x * 2 + 0 (exact)
    g = group(f, "cf", {"time": t, "segment": seg, "speed": np.where(np.isnan(spd), -9999.0, spd / 2)})
    g["speed"].attrs.update({"_FillValue": -9999.0, "scale_factor": np.float32(2), "add_offset": 0.0})
    # the edges of the accepted years in ns, from Python's calendar, and NaT (missing); one past them
    import datetime as dt
    lo = int(dt.datetime(1900, 1, 1, tzinfo=dt.timezone.utc).timestamp()) * 10**9
    hi = int(dt.datetime(2201, 1, 1, tzinfo=dt.timezone.utc).timestamp()) * 10**9
    edge = np.array([lo, hi - 1, np.iinfo(np.int64).min, 0])
    group(f, "edges", {"time": edge, "segment": np.zeros(4, int), "speed": np.full(4, 50.0)})
    group(f, "past", {"time": np.array([0, hi]), "segment": np.zeros(2, int), "speed": np.full(2, 50.0)})
    for name, fid, opts in [("lz4", 32004, None), ("blosc", 32001, None),
                            ("bitshuffle", 32008, (0, 2)), ("zstd", 32015, None)]:
        try:
            group(f, name, {"time": t, "segment": seg, "speed": spd}, compression=fid, compression_opts=opts,
                  chunks=(512,))
            f[name]["time"][:4]  # written and readable back
        except Exception:
            if name in f:
                del f[name]
            if name == "zstd" and zstd_from_pypi(f, t, seg, spd):
                continue
            print("nofilter", name)
# a compound dataset of h5py at /obs: time in us, segment int16
ct = np.dtype([("time", "<i8"), ("segment", "<i2"), ("speed", "<f8")])
c = np.zeros(n, ct)
c["time"], c["segment"], c["speed"] = t * 10**6 + sub_ns // 1000, seg, spd
with h5py.File(P("tb-traffic-h5c.h5"), "w") as f:
    f.create_dataset("obs", data=c, chunks=(256,), compression="gzip")
ts = pd.to_datetime(t * 10**9 + sub_ns, unit="ns")
pd.DataFrame({"time": ts, "segment": seg, "speed": spd}).to_hdf(P("tb-traffic-pd.h5"), key="obs", format="table")
pd.DataFrame({"timestamp": (t * 1000 + sub_ns // 10**6), "seg": seg, "v": spd}).to_hdf(
    P("tb-traffic-pdc.h5"), key="obs", format="table", data_columns=True, complevel=5, complib="zlib")
pd.DataFrame({"time": ts, "segment": seg, "speed": spd}).to_hdf(P("tb-traffic-fixed.h5"), key="obs", format="fixed")
# pandas with data_columns: the time column's own dtype attribute (time_dtype = "datetime64")
pd.DataFrame({"time": ts, "segment": seg, "speed": spd}).to_hdf(
    P("tb-traffic-pdt.h5"), key="obs", format="table", data_columns=True)
# units that state the time unit (a unit alone, CF's "UNIT since EPOCH" as xarray writes
# it: hours, minutes, another epoch, an offset; times floored to the minute or the hour
# keep their hour of the week, so the traffic output is the plain one's), and ones that
# count otherwise (months, a date that is none) or a pandas unit h5batch does not read
with h5py.File(P("tb-traffic-units.h5"), "w") as f:
    for name, col, units in [("cf_ms", t * 1000 + sub_ns // 10**6, "milliseconds since 1970-01-01 00:00:00"),
                             ("cf_s", t, "seconds since 1970-01-01T00:00:00Z"),
                             ("us", t * 10**6 + sub_ns // 1000, "us"),
                             ("hours", (t - 1704067200) // 3600, "hours since 2024-01-01"),
                             ("hours_f", (t - 1704067200) // 3600 + 0.5, "hours since 2024-01-01 00:00:00"),
                             ("min_tz", (t - 1704063600) // 60, "minutes since 2024-01-01 00:00:00+01:00"),
                             ("epoch2000", t - 946684800, "seconds since 2000-01-01 00:00:00"),
                             ("months", (t - 1704067200) // (30 * 86400), "months since 2024-01-01"),
                             ("badepoch", t, "seconds since 2024-13-01")]:
        group(f, name, {"time": col, "segment": seg, "speed": spd})
        f[name]["time"].attrs["units"] = units
    src = h5py.File(P("tb-traffic-pdt.h5"), "r")
    src.copy(src["obs/table"], f, "days")
    f["days"].attrs["time_dtype"] = "datetime64[D]"
    src.close()
# format="fixed" pickles string columns: refused with the remedy
pd.DataFrame({"speed": [1.0, 2.0], "name": ["a", "b"]}).to_hdf(P("tb-fixed-str.h5"), key="obs", format="fixed")

# ---- aggregate: string keys (UTF-8, fixed and variable length), two values in one pandas block
m = 2000
meters = np.array(["m-01", "m-02", "wärme-3", "日本-4", "m-05"])
dists = np.array(["north", "south", "ost"])
at = rng.integers(1704067200, 1704067200 + 120 * 86400, m)
meter = meters[rng.integers(0, len(meters), m)]
dist = dists[rng.integers(0, len(dists), m)]
val = np.round(rng.gamma(2.0, 3.0, m), 4)
val2 = np.round(rng.normal(20, 5, m), 4)
val[::53] = np.nan
with h5py.File(P("tb-agg.h5"), "w") as f:
    g = f.create_group("table")
    g["time"] = at
    g.create_dataset("meter", data=meter.astype(object), dtype=h5py.string_dtype())
    g["district"] = np.array([s.encode() for s in dist], dtype="S8")
    g["value"], g["value2"] = val, val2
ca = np.dtype([("time", "<i8"), ("meter", h5py.string_dtype()), ("district", "S8"), ("value", "<f8"),
               ("value2", "<f8")])
c = np.zeros(m, ca)
c["time"] = at * 10**9 + rng.integers(0, 10**9, m)
c["meter"], c["district"], c["value"], c["value2"] = meter.astype(object), [s.encode() for s in dist], val, val2
with h5py.File(P("tb-agg-h5c.h5"), "w") as f:
    f["readings"] = c
pd.DataFrame({"time": pd.to_datetime(at, unit="s"), "meter": meter, "district": dist, "value": val,
              "value2": val2}).to_hdf(P("tb-agg-pd.h5"), key="readings", format="table")

# ---- a DataFrame indexed by its times (df.set_index("time")): pandas keeps the index as
# the field "index" (format="table") or as axis1 (format="fixed"), named "time" in its
# metadata; the plain layout holds the same rows in seconds
k = 2500
i_time = pd.date_range("2024-03-20", periods=k, freq="17min")
i_df = pd.DataFrame({"time": i_time, "sensor": rng.integers(0, 4, k), "value": rng.normal(10, 3, k)})
with h5py.File(P("tb-idx.h5"), "w") as f:
    group(f, "plain", {"time": i_time.values.astype("datetime64[s]").astype(np.int64),
                       "sensor": i_df.sensor.values, "value": i_df.value.values})
i_df.set_index("time").to_hdf(P("tb-idx.h5"), key="table", format="table")
i_df.set_index("time").to_hdf(P("tb-idx.h5"), key="fixed", format="fixed")
i_df.set_index("time").rename_axis(None).to_hdf(P("tb-idx.h5"), key="unnamed", format="fixed")

# ---- CF's mask and scale (docs/tables.md "Missing and packed values"), as netCDF and
# xarray write them: a root group of columns (table = /); a time with NaT as _FillValue,
# an int32 key with _FillValue -1, an int16 packed with scale_factor/add_offset and two
# fills (_FillValue, missing_value), a float32 with _FillValue and a missing_value
# array, an int8 holding unsigned bytes (_Unsigned); tables_check.py cf decodes them by hand
k = 3000
c_time = rng.integers(1704067200, 1704067200 + 200 * 86400, k)
c_time[::211] = np.iinfo(np.int64).min
c_st = rng.integers(0, 6, k).astype(np.int32)
c_st[7::157] = -1
c_temp = np.round(rng.normal(5, 8, k) / 0.01).astype(np.int16)
c_temp[3::41] = -32768
c_temp[5::67] = -32767
c_flow = rng.gamma(2.0, 3.0, k).astype(np.float32)
c_flow[::29] = -9999.0
c_flow[2::31] = -999.0
c_flow[4::37] = -1e30
c_level = rng.integers(0, 256, k).astype(np.uint8).view(np.int8)
with h5py.File(P("tb-cf.h5"), "w") as f:
    f["time"], f["station"], f["temp"], f["flow"], f["level"] = c_time, c_st, c_temp, c_flow, c_level
    f["time"].attrs["units"] = "seconds since 1970-01-01"
    f["time"].attrs["calendar"] = "proleptic_gregorian"
    f["time"].attrs["_FillValue"] = np.iinfo(np.int64).min
    f["station"].attrs["_FillValue"] = np.int32(-1)
    f["temp"].attrs.update({"scale_factor": 0.01, "add_offset": 10.0, "_FillValue": np.int16(-32768),
                            "missing_value": np.int16(-32767)})
    f["flow"].attrs.create("_FillValue", -9999.0, dtype=np.float64)  # a double on a float32, as h5py users write it
    f["flow"].attrs.create("missing_value", [-999.0, -1e30], dtype=np.float64)  # -1e30 is float32's -1e30f
    f["level"].attrs["_Unsigned"] = "true"
    # what a packed column cannot be, and a fill that its type cannot hold (uint8: -9999)
    f["bad_time"] = c_time
    f["bad_time"].attrs.update({"units": "seconds since 1970-01-01", "scale_factor": 2.0})
    f["bad_scale"] = c_temp
    f["bad_scale"].attrs["scale_factor"] = "0.01"
    f["noleap"] = c_time
    f["noleap"].attrs.update({"units": "seconds since 1970-01-01", "calendar": "noleap"})
    f["u8"] = np.arange(k, dtype=np.uint8)
    f["u8"].attrs["_FillValue"] = np.int32(-9999)
try:  # the same data through xarray's own encoding (netCDF-4 by h5netcdf), when installed
    import xarray as xr
    dec_temp = np.where((c_temp == -32768) | (c_temp == -32767), np.nan, c_temp * 0.01 + 10.0)
    # (no NaT: xarray writes it as int64's least value without a _FillValue and reads that back as 1970)
    ds = xr.Dataset({"time": ("obs", np.where(c_time == np.iinfo(np.int64).min, 1704067200, c_time).astype("datetime64[s]")),
                     "station": ("obs", np.where(c_st < 0, np.nan, c_st)), "temp": ("obs", dec_temp),
                     "flow": ("obs", np.where(np.isin(c_flow, [-9999.0, -999.0, np.float32(-1e30)]), np.nan, c_flow))})
    ds.to_netcdf(P("tb-cf.nc"), engine="h5netcdf", encoding={
        "time": {"units": "seconds since 1970-01-01", "dtype": "int64"},
        "station": {"dtype": "int32", "_FillValue": -1},
        "temp": {"dtype": "int16", "scale_factor": 0.01, "add_offset": 10.0, "_FillValue": -32768}})
    # xarray's default encoding of hourly times: int64 "hours since 2024-01-01 00:00:00"
    ds.assign(time=ds.time.dt.floor("h")).to_netcdf(
        P("tb-cf-default.nc"), engine="h5netcdf")
except Exception as e:
    print("noxarray", type(e).__name__)

# ---- bill: one row per meter and month; month as yyyymm and as a pandas datetime64
b_meter = np.repeat(np.arange(12), 6)
b_month = np.tile(np.array([202401, 202402, 202403, 202410, 202411, 202412]), 12)
b_dist = b_meter % 3
b_cons = np.round(rng.uniform(0, 40, len(b_meter)), 3)
b_cons[7] = np.nan
with h5py.File(P("tb-bill.h5"), "w") as f:
    group(f, "aggregate", {"meter": b_meter, "district": b_dist, "month": b_month, "consumption": b_cons})
first = pd.to_datetime([f"{v // 100}-{v % 100:02d}-01" for v in b_month]) + pd.to_timedelta(
    rng.integers(0, 20 * 86400, len(b_month)), unit="s")
pd.DataFrame({"meter": b_meter, "district": b_dist, "month": first, "used": b_cons}).to_hdf(
    P("tb-bill-pd.h5"), key="bills", format="table", data_columns=True)

# ---- risk: the transactions of a market file (made by gen market), again as a pandas table
if os.path.exists(P("tb-market.h5")):
    with h5py.File(P("tb-market.h5"), "r") as f:
        tx = {k: f["transactions"][k][...] for k in ("date", "portfolio", "asset", "quantity")}
        nport = f["transactions"].attrs.get("n_portfolios")
    with h5py.File(P("tb-market.h5"), "r") as src, h5py.File(P("tb-market-pd.h5"), "w") as dst:
        for k in src:
            if k != "transactions":
                src.copy(src[k], dst, k)
    days = pd.to_datetime(tx["date"].astype(str), format="%Y%m%d")
    pd.DataFrame({"trade_date": days + pd.to_timedelta(rng.integers(0, 86400, len(days)), unit="s"),
                  "book": tx["portfolio"], "instrument": tx["asset"], "qty": tx["quantity"]}).to_hdf(
        P("tb-market-pd.h5"), key="transactions", format="table", mode="a")
    if nport is not None:
        with h5py.File(P("tb-market-pd.h5"), "a") as f:
            f["transactions"].attrs["n_portfolios"] = nport
    # assets named: /market/assets, and transactions naming their assets by ticker (UTF-8,
    # of unequal lengths, not in column order) or by place; pandas' string column too
    with h5py.File(P("tb-market.h5"), "r") as src:
        na = src["market/prices"].shape[1]
        tick = ["T%d%s" % (a, "x" * (a * 7 % 5)) for a in range(na)][::-1]
        tick[0] = "Zürich-Ä"
        for name, by_tick in (("tb-market-names.h5", False), ("tb-market-tick.h5", True)):
            with h5py.File(P(name), "w") as dst:
                for k in src:
                    src.copy(src[k], dst, k)
                dst.create_dataset("market/assets", data=tick, dtype=h5py.string_dtype())
                if by_tick:
                    del dst["transactions/asset"]
                    dst["transactions/asset"] = np.array([tick[a].encode() for a in tx["asset"]])
        with h5py.File(P("tb-market-tick.h5"), "a") as f:
            g = f.create_group("bad")
            for k in ("date", "portfolio", "quantity"):
                g[k] = tx[k]
            bad = np.array([tick[a].encode() for a in tx["asset"]])
            bad[5] = b"NOPE"
            g["asset"] = bad

    # portfolios named, as trade files name their books: by /portfolios/names (plook;
    # n_portfolios agrees), and by their names alone (pderive: the distinct names in sorted
    # order are the portfolios 0..P-1); the references hold the same trades by integer id
    # with the names beside them (pref, pderive-ref). UTF-8, unequal lengths, a sorted order
    # that is not the ids' order.
    pn = ["Zürich desk", "alpha", "Beta", "a", "Ωmega", "b"][:int(nport)] if nport else []
    pn += ["book-%d" % i for i in range(len(pn), int(tx["portfolio"].max()) + 1)]
    rank = {name: i for i, name in enumerate(sorted(set(pn[p] for p in tx["portfolio"])))}
    with h5py.File(P("tb-market.h5"), "r") as src:
        for name in ("tb-market-plook.h5", "tb-market-pref.h5", "tb-market-pderive.h5", "tb-market-pderive-ref.h5"):
            with h5py.File(P(name), "w") as dst:
                for k in src:
                    src.copy(src[k], dst, k)
                t = dst["transactions"]
                if name in ("tb-market-plook.h5", "tb-market-pref.h5"):
                    dst.create_dataset("portfolios/names", data=pn, dtype=h5py.string_dtype())
                else:
                    if "n_portfolios" in t.attrs:
                        del t.attrs["n_portfolios"]
                    if "portfolios/exposure" in dst:  # of the old numbering: not read (positions = transactions)
                        del dst["portfolios/exposure"]
                if name == "tb-market-plook.h5":  # fixed-length bytes, as numpy S arrays are
                    del t["portfolio"]
                    t["portfolio"] = np.array([pn[p].encode() for p in tx["portfolio"]])
                    g = dst.create_group("badp")
                    for k in ("date", "asset", "quantity"):
                        g[k] = tx[k]
                    bad = [pn[p] for p in tx["portfolio"]]
                    bad[5] = "NOPE"
                    g.create_dataset("portfolio", data=bad, dtype=h5py.string_dtype())
                elif name == "tb-market-pderive.h5":  # variable-length, as h5py's string_dtype
                    del t["portfolio"]
                    t.create_dataset("portfolio", data=[pn[p] for p in tx["portfolio"]], dtype=h5py.string_dtype())
                elif name == "tb-market-pderive-ref.h5":
                    del t["portfolio"]
                    t["portfolio"] = np.array([rank[pn[p]] for p in tx["portfolio"]], dtype=np.int32)
                    dst.create_dataset("portfolios/names", data=sorted(rank), dtype=h5py.string_dtype())

# ---- oee: the intervals of a plant (made by gen bottling), again as a pandas table
if os.path.exists(P("tb-plant.h5")):
    with h5py.File(P("tb-plant.h5"), "r") as f:
        iv = {k: f["intervals"][k][...] for k in f["intervals"]}
    df = pd.DataFrame(iv)
    df["time"] = pd.to_datetime(df["time"], unit="s") + pd.to_timedelta(rng.integers(0, 1000, len(df)), unit="ms")
    df.rename(columns={"batch": "lot"}).to_hdf(P("tb-plant-pd.h5"), key="intervals", format="table")

# ---- pandas categoricals: string labels (with NaN) read as their labels, numeric ones refused;
# a plain string column with missing values (pandas' nan_rep)
ck = 1200
cdf = pd.DataFrame({"site": pd.Categorical(np.array(["north", "süd", "east", None], dtype=object)[rng.integers(0, 4, ck)]),
                    "num": pd.Categorical(rng.integers(0, 3, ck) * 10), "value": np.round(rng.uniform(0, 10, ck), 3)})
cdf["name"] = np.array(["ann", "bo", None, "cy"], dtype=object)[rng.integers(0, 4, ck)]  # None: pandas writes "nan"
cdf.to_hdf(P("tb-cat-pd.h5"), key="columns", format="table", data_columns=True)
cdf.to_hdf(P("tb-cat-pd.h5"), key="blocks", format="table", mode="a")

# ---- booleans: h5py writes numpy bool as an enum of int8 (FALSE = 0, TRUE = 1), pandas and
# PyTables as an 8-bit bitfield; each is read as the integers 0 and 1 (the plain layout's int8)
k = 1500
flag = rng.random(k) < 0.3
bval = np.round(rng.uniform(0, 10, k), 3)
bkey = rng.integers(0, 4, k)
with h5py.File(P("tb-bool.h5"), "w") as f:
    group(f, "table", {"flag": flag.astype(np.int8), "key": bkey, "value": bval})
    group(f, "h5py", {"flag": flag, "key": bkey, "value": bval})
    cb = np.zeros(k, np.dtype([("flag", "?"), ("key", "<i8"), ("value", "<f8")]))
    cb["flag"], cb["key"], cb["value"] = flag, bkey, bval
    f["compound"] = cb
bdf = pd.DataFrame({"flag": flag, "key": bkey, "value": bval})
bdf.to_hdf(P("tb-bool-pd.h5"), key="blocks", format="table")
bdf.to_hdf(P("tb-bool-pd.h5"), key="columns", format="table", data_columns=True, mode="a")
bdf.to_hdf(P("tb-bool-pd.h5"), key="fixed", format="fixed", mode="a")
