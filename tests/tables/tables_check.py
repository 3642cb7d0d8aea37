#!/usr/bin/env python3
"""tables_check.py traffic|aggregate INPUT.h5 OUTPUT.h5: a kernel's output against pandas,
computed from the plain layout of the input that make_tables.py wrote (the other layouts
must give the same bits, which the suite checks with h5diff).

traffic: count and mean speed per segment x UTC day of week x hour (DESIGN.md 4.1).
aggregate: count, sum, mean of value and value2 per meter x district x UTC month.
cf: count, sum, mean, min, max of temp, flow, level per station x UTC month of tb-cf.h5,
decoded by hand as CF says (fills missing, packed numbers stored * scale_factor +
add_offset, _Unsigned bytes unsigned); cfnc: the same of tb-cf.nc as xarray decodes it."""
import sys

import h5py
import numpy as np
import pandas as pd


def close(a, b):
    return np.allclose(a, b, rtol=1e-12, atol=1e-12, equal_nan=True)


def traffic(inp, out):
    with h5py.File(inp, "r") as f:
        g = f["observations"]
        df = pd.DataFrame({"time": g["time"][...], "segment": g["segment"][...], "speed": g["speed"][...]})
    S = int(df.segment.max()) + 1
    ok = df.speed.between(0, 250)  # NaN is not between
    d = df[ok]
    when = pd.to_datetime(d.time, unit="s")
    grp = d.groupby([d.segment, when.dt.dayofweek, when.dt.hour]).speed
    count = np.zeros((S, 7, 24), np.uint64)
    mean = np.full((S, 7, 24), np.nan)
    for (s, w, h), v in grp.count().items():
        count[s, w, h] = v
    for (s, w, h), v in grp.mean().items():
        mean[s, w, h] = v
    with h5py.File(out, "r") as f:
        o = f["traffic"]
        got_c, got_m = o["count"][...], o["mean_speed"][...]
        valid = int(o.attrs["rows_valid"])
    assert valid == len(d), (valid, len(d))
    assert (got_c == count).all(), "count differs from pandas"
    assert close(got_m, mean), "mean_speed differs from pandas"


def aggregate(inp, out):
    with h5py.File(inp, "r") as f:
        g = f["table"]
        df = pd.DataFrame({"meter": [s.decode() for s in g["meter"][...]],
                           "district": [s.decode() for s in g["district"][...]],
                           "time": g["time"][...], "value": g["value"][...], "value2": g["value2"][...]})
    when = pd.to_datetime(df.time, unit="s")
    df["month"] = when.dt.year * 100 + when.dt.month
    keys = ["meter", "district", "month"]
    with h5py.File(out, "r") as f:
        o = f["aggregate"]
        coords = [[c.decode() if isinstance(c, bytes) else c for c in o[k][...]] for k in keys]
        for k, c in zip(keys[:2], coords[:2]):
            assert c == sorted(c, key=lambda s: s.encode()), f"{k} not sorted by bytes"
        for v in ("value", "value2"):
            ref = df.groupby(keys)[v].agg(["count", "sum", "mean"])
            for stat in ("count", "sum", "mean"):
                got = o[f"{v}_{stat}"][...]
                want = np.full(got.shape, 0 if stat == "count" else np.nan)
                for (m, d, mo), row in ref.iterrows():
                    if row["count"] == 0:
                        continue
                    want[coords[0].index(m), coords[1].index(d), coords[2].index(mo)] = row[stat]
                assert close(got, want), f"{v}_{stat} differs from pandas"


def grouped(df, out, values, rtol=1e-12):
    """out's aggregate (layout = table) per station x month against pandas on df."""
    df = df[df.time.notna() & df.station.notna()].copy()
    df["month"] = df.time.dt.year * 100 + df.time.dt.month
    df["station"] = df.station.astype(np.int64)
    with h5py.File(out, "r") as f:
        o = f["aggregate"]
        got = pd.DataFrame({k: o[k][...] for k in o}).set_index(["station", "month"])
    for v in values:
        ref = df.groupby(["station", "month"])[v].agg(["count", "sum", "mean", "min", "max"])
        ref = ref.reindex(got.index)
        assert len(got) == len(df.groupby(["station", "month"])), "groups differ from pandas"
        for stat in ("count", "sum", "mean", "min", "max"):
            g, r = got[f"{v}_{stat}"].to_numpy(), ref[stat].to_numpy().astype(float)
            assert np.allclose(g, r, rtol=rtol, atol=0, equal_nan=True), f"{v}_{stat} differs"


def cf(inp, out):
    with h5py.File(inp, "r") as f:
        t, st, temp, flow = f["time"][...], f["station"][...], f["temp"][...], f["flow"][...]
        level = f["level"][...].view(np.uint8)
        a = f["temp"].attrs
        temp = np.where(np.isin(temp, [a["_FillValue"], a["missing_value"]]), np.nan,
                        temp * a["scale_factor"] + a["add_offset"])
        # the fills in the column's own type, as xarray casts them (-1e30 given as a double is -1e30f)
        bad = np.concatenate([[f["flow"].attrs["_FillValue"]], f["flow"].attrs["missing_value"]]).astype(flow.dtype)
        flow = np.where(np.isin(flow, bad), np.nan, flow.astype(np.float64))
    time = pd.to_datetime(np.where(t == np.iinfo(np.int64).min, np.datetime64("NaT"), t.astype("datetime64[s]")))
    df = pd.DataFrame({"time": time, "station": np.where(st == -1, np.nan, st), "temp": temp, "flow": flow,
                       "level": level.astype(np.float64)})
    grouped(df, out, ("temp", "flow", "level"))


def cfnc(inp, out):
    import xarray as xr
    df = xr.open_dataset(inp, engine="h5netcdf").to_dataframe()
    grouped(df, out, ("temp", "flow"), 1e-6)  # xarray decodes int16 * 0.01 to float32; h5batch in double


if __name__ == "__main__":
    {"traffic": traffic, "aggregate": aggregate, "cf": cf, "cfnc": cfnc}[sys.argv[1]](sys.argv[2], sys.argv[3])
    print("ok")
