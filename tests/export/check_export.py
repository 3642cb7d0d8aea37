#!/usr/bin/python3
"""Checks CSVs written by `h5batch export` against xarray's reading of the same group
(`xr.open_dataset(f, group=G, engine="h5netcdf").to_dataframe()`) and pandas' reading of
the CSV: the same rows in the same order, the same labels and values. Expected texts
are made here, independently: ISO dates from the integers' units or the calendar key
names, ISO date-times from xarray's own CF time decoding, in the group's timezone.

    check_export.py OUT.h5:GROUP:FILE.csv[:TIME,...]...   (one Python for all: xarray loads slowly)

TIME columns are integer seconds since 1970-01-01 UTC that xarray does not decode (their
units are "s"; the kernel's docs say what they are): expected as ISO date-times.
"""
import csv
import math
import sys

import h5py
import numpy as np
import pandas as pd
import xarray as xr

CAL = {"date": "yyyymmdd", "month": "yyyymm", "week": "yyyyww", "quarter": "yyyyq"}


def calendar(grp, name):
    """The calendar layout of an integer column: its units, else its name."""
    units = grp[name].attrs.get("units") if name in grp else None
    if isinstance(units, bytes):
        units = units.decode()
    if units:
        return units if units in CAL.values() else None
    return CAL.get(name)


def scale_of(grp, name):
    """Digits after the point of an integer amount: its attribute scale = 10^k (bill's cents)."""
    sc = grp[name].attrs.get("scale") if name in grp else None
    return next((k for k in range(1, 10) if sc is not None and int(sc) == 10**k), 0)


def expected_int(v, cal, dec=0):
    v = int(v)
    if dec:  # exact: 7550 cents at scale 100 is 75.50
        return f"{'-' if v < 0 else ''}{abs(v) // 10**dec}.{abs(v) % 10**dec:0{dec}d}"
    if cal == "yyyymmdd":
        return f"{v // 10000:04d}-{v // 100 % 100:02d}-{v % 100:02d}"
    if cal == "yyyymm":
        return f"{v // 100:04d}-{v % 100:02d}"
    if cal == "yyyyww":
        return f"{v // 100:04d}-W{v % 100:02d}"
    if cal == "yyyyq":
        return f"{v // 10:04d}-Q{v % 10}"
    return str(v)


def check_cell(where, want, got, cal, tz, is_time=False, dec=0):
    if is_time:
        want = pd.Timestamp(int(want), unit="s")
    if isinstance(want, (bytes, np.bytes_)):
        want = want.decode()
    if isinstance(want, str):
        assert got == want, (where, got, want)
    elif isinstance(want, (pd.Timestamp, np.datetime64)):
        ts = pd.Timestamp(want).tz_localize("UTC")
        text = ts.tz_convert(tz).isoformat() if tz else ts.isoformat().replace("+00:00", "Z")
        assert got == text, (where, got, text)
    elif isinstance(want, (float, np.floating)):
        if math.isnan(want):
            assert got == "", (where, got, "empty for NaN")
        else:
            assert float(got) == float(want), (where, got, repr(want))
    else:
        assert got == expected_int(want, cal, dec), (where, got, want)


def check(h5name, group, csvname, times=""):
    """Asserts that csvname is the export of group of h5name."""
    ds = xr.open_dataset(h5name, group=group, engine="h5netcdf", phony_dims="sort", decode_timedelta=False)
    with open(csvname, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    header, body = rows[0], rows[1:]
    dims = [c for c in header if c in ds.dims]
    data = [c for c in header if c not in ds.dims]
    assert data, (csvname, "no data column")
    sub = ds[data]
    df = (sub.to_dataframe(dim_order=dims) if dims else sub.to_dataframe()).reset_index()
    assert len(df) == len(body), (csvname, "rows", len(df), len(body))
    assert all(len(r) == len(header) for r in body), (csvname, "ragged CSV")
    with h5py.File(h5name, "r") as h5:
        grp = h5[group]
        tz = grp.attrs.get("timezone")
        tz = tz.decode() if isinstance(tz, bytes) else tz
        cals = {c: calendar(grp, c) for c in header}
        decs = {c: scale_of(grp, c) for c in header}
    for j, col in enumerate(header):
        for i, (want, r) in enumerate(zip(df[col].tolist(), body)):
            check_cell(f"{csvname}: row {i + 2}, column {col}", want, r[j], cals[col], tz, col in times.split(","),
                       decs[col])
    # pandas reads the same table: shape, empty fields as NaN
    p = pd.read_csv(csvname, keep_default_na=False, na_values=[""])
    assert list(p.columns) == header and len(p) == len(body), (csvname, "pandas", list(p.columns), len(p))
    for col in data:
        if np.issubdtype(df[col].dtype, np.floating):
            assert p[col].isna().tolist() == df[col].isna().tolist(), (csvname, "NaN", col)
    print(f"ok: {h5name} {group}: {len(body)} rows, columns {header}")


for arg in sys.argv[1:]:
    check(*arg.split(":"))
