"""Independent reference for jobs/vitals.ini and jobs/fitness.ini: pandas on the input
table that `h5batch gen vitals` wrote, local time through pandas' time zones, numpy's
linear (type 7) percentiles; compared with the outputs of kernel aggregate.

  vitals_ref.py vitals INPUT.h5 PRESSURE.h5 HEART.h5 [--tz ZONE]
  vitals_ref.py fitness INPUT.h5 DAILY.h5 MONTHLY.h5 [--tz ZONE]

Exit status 0 when every value agrees (counts and percentiles exactly, means within
1e-13 relative: the readings are whole numbers, so sums are exact either way)."""
import argparse
import sys

import h5py
import numpy as np
import pandas as pd

problems = []


def read_input(path):
    with h5py.File(path, "r") as f:
        g = f["table"]
        return pd.DataFrame({n: g[n][...] for n in g})


def read_output(path):
    with h5py.File(path, "r") as f:
        g = f["aggregate"]
        keys = [k.strip() for k in g.attrs["by"].split(",")]
        return pd.DataFrame({n: g[n][...] for n in g}).set_index(keys), dict(g.attrs)


def local(df, tz):
    return pd.to_datetime(df["time"], unit="s", utc=True).dt.tz_convert(tz)


def same(name, ref, got, exact=True):
    """ref and got are Series on the same index (the output's groups)."""
    if not ref.index.equals(got.index):
        problems.append(f"{name}: groups differ ({len(ref)} in the reference, {len(got)} in the output)")
        return
    a, b = ref.to_numpy(dtype=float), got.to_numpy(dtype=float)
    ok = (np.isnan(a) & np.isnan(b)) | ((a == b) if exact else np.isclose(a, b, rtol=1e-13, atol=0))
    if not ok.all():
        i = np.flatnonzero(~ok)[0]
        problems.append(f"{name}: {(~ok).sum()} values differ, first at {ref.index[i]}: reference {a[i]!r}, "
                        f"output {b[i]!r}")


def grouped(df, keys, value, lo, hi, stats, out, attrs):
    """Checks out's <value>_<stat> columns for the groups of keys over the valid values."""
    v = df[value].astype(float)
    ok = np.isfinite(v) & (v >= lo) & (v <= hi)
    if attrs[f"rows_valid_{value}"] != ok.sum() or attrs[f"rows_invalid_{value}"] != (~ok).sum():
        problems.append(f"{value}: valid/invalid row counts differ")
    groups = df.groupby(keys).size().index.rename(out.index.names)
    valid = df.assign(**{value: v})[ok].groupby(keys)[value]
    ref = {"count": valid.size(), "mean": valid.mean(), "sum": valid.sum()}
    for s in stats:
        if s.startswith("p"):
            q = float(s[1:])
            ref[s] = valid.apply(lambda x: np.percentile(x.to_numpy(dtype=float), q))
        elif s.startswith("above"):
            x = float(s[5:])
            ref[s] = valid.apply(lambda y: int((y > x).sum()))
    for s in stats:
        r = ref[s]
        r.index = r.index.rename(out.index.names)
        r = r.reindex(groups)
        if s in ("count",) or s.startswith("above"):
            r = r.fillna(0)
        same(f"{value}_{s}", r, out[f"{value}_{s}"], exact=s not in ("mean", "sum"))


def vitals(a):
    df = read_input(a.input)
    iso = local(df, a.tz).dt.isocalendar()
    df["week"] = iso["year"].astype(np.int64) * 100 + iso["week"].astype(np.int64)
    pres, pa = read_output(a.outputs[0])
    heart, ha = read_output(a.outputs[1])
    for name, lo, hi in (("systolic", 40, 260), ("diastolic", 20, 160)):
        grouped(df, ["patient", "week"], name, lo, hi, ["count", "mean", "p95", "above140", "above90"], pres, pa)
    grouped(df, ["patient", "week"], "heart_rate", 20, 230, ["count", "mean", "p95", "above100"], heart, ha)
    print(f"vitals: {len(pres)} patient-weeks checked")


def fitness(a):
    df = read_input(a.input)
    t = local(df, a.tz)
    df["date"] = (t.dt.year * 10000 + t.dt.month * 100 + t.dt.day).astype(np.int64)
    df["month"] = (t.dt.year * 100 + t.dt.month).astype(np.int64)
    daily, da = read_output(a.outputs[0])
    grouped(df, ["band", "date", "month"], "distance_m", 0, 20000, ["count"], daily, da)
    v = df["distance_m"].astype(float)
    ok = np.isfinite(v) & (v >= 0) & (v <= 20000)
    sums = df.assign(d=v.where(ok)).groupby(["band", "date", "month"])["d"].sum(min_count=1)
    same("distance_m_sum", sums.rename_axis(daily.index.names), daily["distance_m_sum"])
    monthly, ma = read_output(a.outputs[1])
    d = sums.reset_index()
    fin = d[np.isfinite(d["d"])].groupby(["band", "month"])["d"]
    groups = d.groupby(["band", "month"]).size().index
    for s, r in (("count", fin.size()), ("mean", fin.mean()), ("min", fin.min()), ("max", fin.max())):
        r = r.reindex(groups)
        if s == "count":
            r = r.fillna(0)
        same(f"distance_m_sum_{s}", r, monthly[f"distance_m_sum_{s}"], exact=s != "mean")
    print(f"fitness: {len(daily)} band-days and {len(monthly)} band-months checked")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("what", choices=["vitals", "fitness"])
    ap.add_argument("input")
    ap.add_argument("outputs", nargs=2)
    ap.add_argument("--tz", default="Europe/Zurich")
    a = ap.parse_args()
    (vitals if a.what == "vitals" else fitness)(a)
    for p in problems[:10]:
        print("vitals_ref:", p, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
