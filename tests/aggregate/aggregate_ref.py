#!/usr/bin/python3
"""Independent reference for h5batch's aggregate kernel (DESIGN.md 4.4).

Reads the step's options from the job file (its own INI parsing), the input table with
h5py, computes every statistic with pandas (groupby with dropna, quantile with linear
interpolation, std/var with ddof=1, local time through zoneinfo) and checks the output
value by value. Where pandas itself is not exact, the exact answer is computed too and
the output must match it to the bit (percentiles: numpy's; counts, min, max, first,
last) or within an ulp or two (sums from math.fsum, variances from fractions):

    aggregate_ref.py JOB.ini STEP [--input IN.h5] [--output OUT.h5]

Exits 0 and prints one OK line, or prints what differs and exits 1.
"""

import argparse
import configparser
import math
import sys
import zoneinfo
from fractions import Fraction

import h5py
import numpy as np
import pandas as pd

CALENDAR = ("hour", "day_of_week", "date", "week", "month", "quarter", "year")
UNITS = {"s": 1, "ms": 1000, "us": 1000000, "ns": 1000000000}


def step_options(job, step):
    cp = configparser.ConfigParser(inline_comment_prefixes=(";", "#"), interpolation=None)
    cp.read(job)
    o = dict(cp[f"step {step}"])
    o.setdefault("table", "/table")
    o.setdefault("stats", "count, mean")
    o.setdefault("timezone", "UTC")
    o.setdefault("time_unit", "s")
    o.setdefault("layout", "dense")
    return o


def listing(s):
    return [x.strip() for x in (s or "").split(",") if x.strip()]


def read_column(g, name):
    d = g[name]
    if h5py.check_string_dtype(d.dtype) is not None or d.dtype.kind == "S":
        raw = d[...]
        return np.array([x.decode("utf-8") if isinstance(x, bytes) else str(x) for x in raw], dtype=object)
    return d[...]


def load(o):
    mapping = dict(x.split(":", 1) for x in listing(o.get("columns")))
    mapping = {k.strip(): v.strip() for k, v in mapping.items()}
    col = lambda name: mapping.get(name, name)
    keys, values = listing(o["by"]), listing(o["values"])
    # a calendar name mapped by `columns` is a column (DESIGN.md 4.4 as documented)
    calendar = {k for k in keys if k in CALENDAR and k not in mapping}
    with h5py.File(o["input"], "r") as f:
        g = f[o["table"]]
        data = {k: read_column(g, col(k)) for k in keys if k not in calendar}
        for v in values:
            data[v] = g[col(v)][...].astype(np.float64)
        t = g[col(o["time"])][...] if "time" in o else None
    n = len(data[values[0]])
    ok = np.ones(n, bool)
    df = pd.DataFrame(index=np.arange(n))
    for k in keys:
        if k in calendar:
            continue
        x = data[k]
        if x.dtype.kind == "f":
            ok &= ~np.isnan(x)
            x = np.where(np.isnan(x), 0, x)
            assert (x == np.floor(x)).all(), f"key {k} has non-integers"
            x = x.astype(np.int64)
        elif x.dtype.kind in "iu":
            x = x.astype(np.int64)
        df[k] = x
    if t is not None:
        if t.dtype.kind == "f":
            ok &= ~np.isnan(t)
            t = np.floor(np.where(np.isnan(t), 0, t)).astype(np.int64)
        t = t.astype(np.int64)
        df["_t"] = t
        sec = t // UNITS[o["time_unit"]]
        local = pd.to_datetime(sec, unit="s", utc=True).tz_convert(zoneinfo.ZoneInfo(o["timezone"]))
        local = pd.Series(local)
        iso = local.dt.isocalendar()
        y, m, d = local.dt.year.to_numpy(np.int64), local.dt.month.to_numpy(np.int64), local.dt.day.to_numpy(np.int64)
        cal = {
            "hour": local.dt.hour.to_numpy(np.int64),
            "day_of_week": local.dt.dayofweek.to_numpy(np.int64),
            "date": y * 10000 + m * 100 + d,
            "week": iso["year"].to_numpy(np.int64) * 100 + iso["week"].to_numpy(np.int64),
            "month": y * 100 + m,
            "quarter": y * 10 + local.dt.quarter.to_numpy(np.int64),
            "year": y,
        }
        for k in keys:
            if k in calendar:
                df[k] = cal[k]
    for v in values:
        df[v] = data[v]
    rows_total = n
    df = df[ok].reset_index(drop=True)
    lo, hi = {}, {}
    for item in listing(o.get("valid")):
        name, a, b = item.split(":")
        lo[name] = float(a) if a.strip() else -math.inf
        hi[name] = float(b) if b.strip() else math.inf
    for v in values:
        x = df[v].to_numpy()
        good = np.isfinite(x) & (x >= lo.get(v, -math.inf)) & (x <= hi.get(v, math.inf))
        df[v] = np.where(good, x + 0.0, np.nan)
    return df, keys, values, rows_total, n - int(ok.sum())


def parse_stat(s):
    if s.startswith("p") and s not in ("p",):
        try:
            return "pct", float(s[1:]), "p%g" % float(s[1:])
        except ValueError:
            pass
    for kind in ("above", "below"):
        if s.startswith(kind + ":"):
            x = float(s.split(":", 1)[1])
            return kind, x, "%s%g" % (kind, x)
    return s, None, s


def ulps(a, b):
    """Distance in ulps of b (NaN == NaN)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    both = np.isnan(a) & np.isnan(b)
    d = np.abs(a - b) / np.spacing(np.maximum(np.abs(b), np.finfo(float).tiny))
    return np.where(both, 0, np.where(np.isnan(a) | np.isnan(b), np.inf, d))


def expected(df, keys, values, stats):
    """pandas' answers, plus the exact ones where pandas rounds on its own."""
    gb = df.groupby(keys, sort=True, dropna=True)
    index = gb.size().index
    codes = gb.ngroup().to_numpy()
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(len(index) + 1))
    pandas_, exact = {}, {}
    for v in values:
        s = gb[v]
        x = df[v].to_numpy()[order]
        groups = [x[bounds[i]:bounds[i + 1]] for i in range(len(index))]
        groups = [g[~np.isnan(g)] for g in groups]
        ordered = df.sort_values(["_t", v]) if "_t" in df else None
        for st in stats:
            kind, arg, name = parse_stat(st)
            key = f"{v}_{name}"
            if kind == "count":
                pandas_[key] = s.count().to_numpy(np.uint64)
            elif kind == "sum":
                pandas_[key] = s.sum(min_count=1).to_numpy()
                exact[key] = np.array([math.fsum(g) if len(g) else np.nan for g in groups])
            elif kind == "mean":
                pandas_[key] = s.mean().to_numpy()
                exact[key] = np.array([math.fsum(g) / len(g) if len(g) else np.nan for g in groups])
            elif kind in ("min", "max"):
                pandas_[key] = getattr(s, kind)().to_numpy()
            elif kind in ("std", "var"):
                pandas_[key] = getattr(s, kind)(ddof=1).to_numpy()
                ex = []
                for g in groups:
                    if len(g) < 2:
                        ex.append(np.nan)
                        continue
                    fr = [Fraction(float(y)) for y in g]
                    s1, s2, nn = sum(fr), sum(y * y for y in fr), len(fr)
                    var = (nn * s2 - s1 * s1) / (nn * (nn - 1))
                    ex.append(float(var) if kind == "var" else math.sqrt(float(var)))
                exact[key] = np.array(ex)
            elif kind in ("first", "last"):
                pandas_[key] = getattr(ordered.groupby(keys, sort=True, dropna=True)[v], kind)().reindex(index).to_numpy()
            elif kind == "pct":
                pandas_[key] = s.quantile(arg / 100, interpolation="linear").to_numpy()
                exact[key] = np.array([np.percentile(g, arg) if len(g) else np.nan for g in groups])
            elif kind in ("above", "below"):
                hit = df[v] > arg if kind == "above" else df[v] < arg
                pandas_[key] = hit.groupby([df[k] for k in keys], sort=True, dropna=True).sum().to_numpy(np.uint64)
    return index, pandas_, exact


def check(ours, want, key, kind, problems, exact=None):
    if kind in ("count", "above", "below", "min", "max", "first", "last"):
        if not np.array_equal(ours, want, equal_nan=kind not in ("count", "above", "below")):
            bad = np.flatnonzero(~((ours == want) | (np.isnan(ours.astype(float)) & np.isnan(want.astype(float)))))
            problems.append(f"{key}: {len(bad)} cells differ, first at {bad[:3]}: {ours[bad[:3]]} vs {want[bad[:3]]}")
        return
    tol = {"pct": 1e-12, "sum": 1e-12, "mean": 1e-12, "std": 1e-6, "var": 1e-6}[kind]
    if not np.allclose(ours, want, rtol=tol, atol=0, equal_nan=True):
        bad = np.flatnonzero(~np.isclose(ours, want, rtol=tol, atol=0, equal_nan=True))
        problems.append(f"{key}: {len(bad)} cells differ from pandas, first {ours[bad[:3]]} vs {want[bad[:3]]}")
    if exact is not None:
        limit = {"pct": 0, "sum": 1, "mean": 2, "std": 4, "var": 4}[kind]
        d = ulps(ours, exact)
        if (d > limit).any():
            bad = np.flatnonzero(d > limit)
            problems.append(f"{key}: {len(bad)} cells more than {limit} ulp from the exact value, first "
                            f"{ours[bad[:3]]!r} vs {exact[bad[:3]]!r}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("job")
    ap.add_argument("step")
    ap.add_argument("--input")
    ap.add_argument("--output")
    a = ap.parse_args()
    o = step_options(a.job, a.step)
    if a.input:
        o["input"] = a.input
    if a.output:
        o["output"] = a.output
    df, keys, values, rows_total, missing = load(o)
    stats = listing(o["stats"])
    index, pandas_, exact = expected(df, keys, values, stats)
    problems = []
    with h5py.File(o["output"], "r") as f:
        g = f["aggregate"]
        at = g.attrs
        if at["rows_total"] != rows_total or at["rows_missing_key"] != missing:
            problems.append(f"rows_total/rows_missing_key {at['rows_total']}/{at['rows_missing_key']}, "
                            f"want {rows_total}/{missing}")
        for v in values:
            nv = int(df[v].notna().sum())
            if at[f"rows_valid_{v}"] != nv or at[f"rows_invalid_{v}"] != len(df) - nv:
                problems.append(f"rows_valid/invalid_{v}: {at[f'rows_valid_{v}']}/{at[f'rows_invalid_{v}']}, "
                                f"want {nv}/{len(df) - nv}")
        if at["by"] != ", ".join(keys) or at["timezone"] != o["timezone"] or at["groups"] != len(index):
            problems.append(f"attributes by/timezone/groups: {at['by']}/{at['timezone']}/{at['groups']}")
        levels = [index.get_level_values(i) for i in range(len(keys))] if len(keys) > 1 else [index]

        def coords(k):
            c = g[k][...]
            if c.dtype.kind == "S":
                c = np.array([x.decode("utf-8") for x in c], dtype=object)
            return c

        if o["layout"] == "table":
            for k, lev in zip(keys, levels):
                c = coords(k)
                if len(c) != len(index) or list(c) != list(lev):
                    problems.append(f"key column {k} differs from the sorted groups")
        else:
            cs = [coords(k) for k in keys]
            for k, c, lev in zip(keys, cs, levels):
                want = sorted(set(lev))
                if list(c) != want:
                    problems.append(f"coordinate {k}: {list(c)[:5]}... differs from the observed values {want[:5]}...")
            shape = tuple(len(c) for c in cs)
            pos = [pd.Index(list(c)).get_indexer(list(lev)) for c, lev in zip(cs, levels)]
            flat = np.ravel_multi_index(pos, shape) if len(index) else np.array([], int)
        for v in values:
            for st in stats:
                kind, arg, name = parse_stat(st)
                key = f"{v}_{name}"
                if key not in g:
                    problems.append(f"missing dataset {key}")
                    continue
                ours = g[key][...]
                counts = kind in ("count", "above", "below")
                if counts and ours.dtype != np.uint64:
                    problems.append(f"{key} is {ours.dtype}, want uint64")
                if o["layout"] == "dense":
                    if ours.shape != shape:
                        problems.append(f"{key} has shape {ours.shape}, want {shape}")
                        continue
                    full = np.zeros(shape, np.uint64) if counts else np.full(shape, np.nan)
                    ex = np.full(shape, np.nan)
                    full.flat[flat] = pandas_[key]
                    if key in exact:
                        ex.flat[flat] = exact[key]
                    want, wex = full.ravel(), ex.ravel() if key in exact else None
                    ours = ours.ravel()
                else:
                    want, wex = pandas_[key], exact.get(key)
                check(ours, want, key, kind, problems, wex)
    if problems:
        print("aggregate_ref: output differs from the reference:")
        for p in problems[:30]:
            print("  " + p)
        sys.exit(1)
    print(f"aggregate_ref: OK: {len(index)} groups, {len(values) * len(stats)} datasets, layout {o['layout']}")


if __name__ == "__main__":
    main()
