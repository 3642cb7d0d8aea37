"""Checks a table written by `h5batch import` against pandas read_csv (the reference):
the types pandas infers, every value bit for bit, times through pandas' own time-zone
localization (DST gaps shifted forward, repeats taken as their first occurrence).

Usage: import_ref.py CASE OUT.h5 CSV... [-- CASE OUT.h5 CSV...]... (CASE: mixed, quotes,
fmt, skip, water, monthly: the aggregate job of jobs/water-import.ini)"""
import sys

import h5py
import numpy as np
import pandas as pd



def gz(path):
    with open(path, "rb") as f:
        return f.read(2) == b"\x1f\x8b"


def read(**kw):
    frames = [pd.read_csv(f, compression="gzip" if gz(f) else None, encoding="utf-8-sig", keep_default_na=False,
                          float_precision="round_trip", **kw) for f in files]
    return pd.concat(frames, ignore_index=True)


def epoch(text, fmt=None):
    ts = pd.to_datetime(pd.Series(text), format=fmt) if fmt else pd.Series([pd.Timestamp(t) for t in text])
    res = []
    for t in ts:
        t = pd.Timestamp(t)
        if t.tzinfo is None:
            t = pd.Series([t]).dt.tz_localize(TZ, ambiguous=np.array([True]), nonexistent="shift_forward")[0]
        res.append(t.value // 10**9)  # whole seconds, floor
    return np.array(res, dtype=np.int64)


def same_float(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return a.shape == b.shape and np.array_equal(a.view(np.int64), b.view(np.int64))


def check(col, got, exp, kind):
    if kind == "string":
        exp = [("" if isinstance(x, float) and np.isnan(x) else str(x)).encode() for x in exp]
        assert got.dtype.kind == "S", (col, got.dtype)
        assert list(got) == exp, (col, [(g, e) for g, e in zip(got, exp) if g != e][:5])
    elif kind == "float":
        assert got.dtype == np.float64, (col, got.dtype)
        assert same_float(got, exp), (col, got[:5], np.asarray(exp)[:5])
    else:
        assert got.dtype == np.int64, (col, got.dtype)
        assert np.array_equal(got, np.asarray(exp, np.int64)), (col, got[:5], np.asarray(exp)[:5])


def check_case(case, out):
    global TZ
    TZ = {"mixed": "Europe/Berlin", "water": "Europe/Berlin", "monthly": "Europe/Berlin"}.get(case, "UTC")
    if case == "monthly":
        # the aggregate job of jobs/water-import.ini on the imported table, from the CSV alone:
        # local months of the naive dates, exact (fsum) sums of the valid consumptions
        import math
        df = read(na_values=[""])
        df["month"] = pd.to_datetime(df["date"]).dt.year * 100 + pd.to_datetime(df["date"]).dt.month
        v = df[df["consumption_m3"].between(0, 100)]
        g = h5py.File(out, "r")["aggregate"]
        meters, months = g["meter"][:], g["month"][:]
        assert list(meters) == sorted(df["meter"].unique()) and list(months) == sorted(df["month"].unique())
        for (m, mo), grp in v.groupby(["meter", "month"]):
            i, j = list(meters).index(m), list(months).index(mo)
            assert g["consumption_m3_count"][i, j] == len(grp)
            assert g["consumption_m3_sum"][i, j] == math.fsum(grp["consumption_m3"]), (m, mo)
            assert g["consumption_m3_max"][i, j] == grp["consumption_m3"].max()
        assert g.attrs["rows_invalid_consumption_m3"] == len(df) - len(v)
        d = h5py.File(out.replace("-monthly.h5", "-districts.h5"), "r")["aggregate"]
        got = {(k.decode(), mo): (n, x) for k, mo, n, x in
               zip(d["district"][:], d["month"][:], d["consumption_m3_count"][:], d["consumption_m3_sum"][:])}
        exp = {(k, mo): (len(grp), math.fsum(grp["consumption_m3"])) for (k, mo), grp in v.groupby(["district", "month"])}
        assert got == exp and ("Hafen, Nord", 202402) in got and ("Süd", 202412) in got, set(got) ^ set(exp)
        print("ok monthly", len(v), "valid rows")
        return
    t = h5py.File(out, "r")["table"]
    if case in ("mixed", "quotes"):
        df = read(na_values=[""])
        raw = read(dtype=str, na_values=[])
        # the types pandas infers for the numeric columns are the ones import writes
        want = {"id": "int", "value": "float", "gappy": "float" if case == "mixed" else "int", "name": "string"}
        for c, k in want.items():
            assert {"int": "i", "float": "f", "string": "O"}[k] == df[c].dtype.kind, (c, df[c].dtype)
            check(c, t[c][:], df[c].to_numpy(), k)
        for c in ("when", "day"):
            check(c, t[c][:], epoch(raw[c].tolist()), "time")
            assert t[c].attrs["units"] == "seconds since 1970-01-01"
        assert list(t) == list(df.columns), list(t)
        assert t["id"].chunks and t["id"].compression == "gzip"
    elif case == "fmt":
        df = read(sep=";", na_values=["NA"])
        raw = read(sep=";", dtype=str, na_values=[])
        check("date", t["date"][:], epoch(raw["date"], "%Y/%m/%d"), "time")
        check("stamp", t["stamp"][:], epoch(raw["stamp"], "%d.%m.%Y %H:%M"), "time")
        check("day", t["day"][:], epoch(raw["day"], "%b %d %Y"), "time")
        check("meter", t["meter"][:], df["meter"].to_numpy(), "int")
        check("reading", t["reading"][:], df["reading"].to_numpy(), "float")
        check("note", t["note"][:], df["note"].to_numpy(), "string")
        assert df["code"].dtype.kind == "i"
        check("code", t["code"][:], df["code"].to_numpy(), "int")
    elif case == "skip":
        # by hand: lines 3 (2 fields), 4 (a quote in an unquoted field), 5 (text after a closing
        # quote) and 7 (4 fields) are malformed
        check("k", t["k"][:], [1, 5, 7], "int")
        check("v", t["v"][:], [1.5, 5.5, 7.5], "float")
        check("s", t["s"][:], ["a", "e", "h"], "string")
        assert int(t.attrs["rows_skipped"]) == 4, t.attrs["rows_skipped"]
    elif case == "water":
        df = read(na_values=[""])
        raw = read(dtype=str, na_values=[])
        check("date", t["date"][:], epoch(raw["date"].tolist()), "time")
        check("meter", t["meter"][:], df["meter"].to_numpy(), "int")
        check("reading_m3", t["reading_m3"][:], df["reading_m3"].to_numpy(), "float")
        check("consumption_m3", t["consumption_m3"][:], df["consumption_m3"].to_numpy(), "float")
        check("district", t["district"][:], df["district"].to_numpy(), "string")
    else:
        raise SystemExit("unknown case " + case)
    print("ok", case, len(t[list(t)[0]]), "rows")


args = sys.argv[1:]
while args:
    k = args.index("--") if "--" in args else len(args)
    case, out, files = args[0], args[1], args[2:k]
    check_case(case, out)
    args = args[k + 1:]
