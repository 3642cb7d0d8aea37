"""The episodes kernel's output checked against pandas, written from DESIGN.md 4.5 alone:
episodes_ref.py JOB.ini STEP [JOB.ini STEP]...

Episodes are found the "gaps and islands" way, without a loop over readings: readings
sorted by (device, time, value); with derive = rate the series is diff(value) /
diff(time) over consecutive readings 0 < dt <= max_gap; a reading "holds" when it lies
beyond the threshold moved back by the hysteresis; islands are maximal runs of holding
readings with no gap above max_gap (a cumulative sum of run breaks); an episode is an
island's stretch from its first reading that breaks the rule to its end. Periods come
from zoneinfo through pandas' tz_convert. Integers and times must match exactly,
floats to 1e-12 relative (sums in another order)."""
import configparser
import sys

import h5py
import numpy as np
import pandas as pd


def duration(s):
    s = s.strip()
    m = {"s": 1, "m": 60, "h": 3600}
    return float(s[:-1]) * m[s[-1]] if s[-1] in m else float(s)


def check(ini, step, out=None):
    """Asserts that step STEP of job INI wrote what pandas computes."""
    cp = configparser.ConfigParser(inline_comment_prefixes=(";", "#"), interpolation=None)
    cp.read(ini)
    o = dict(cp[f"step {step}"])
    out = out or o["output"]
    cols = dict(kv.split(":") for kv in o.get("columns", "").replace(" ", "").split(",") if kv)
    name = lambda k: cols.get(o.get(k, k), o.get(k, k))
    unit = {"s": 1, "ms": 1000, "us": 10**6, "ns": 10**9}[o.get("time_unit", "s")]
    gap = duration(o.get("max_gap", "5m"))
    min_dur = duration(o.get("min_duration", "0"))
    h = float(o.get("hysteresis", "0"))
    rule = o["rule"].split(":")
    rate = o.get("derive", "none") == "rate"
    tz = o.get("timezone", "UTC")
    period = o.get("period", "day")

    with h5py.File(o["input"]) as f:
        g = f[o.get("table", "/table")]
        dev = g[name("device")][:]
        df = pd.DataFrame({"device": dev, "time": g[name("time")][:].astype(np.int64),
                           "value": g[name("value")][:].astype(np.float64)})
    strings = df["device"].dtype == object
    if strings:
        df["device"] = [x.decode() if isinstance(x, bytes) else x for x in df["device"]]
    else:
        df = df[~pd.isna(df["device"])]
        df["device"] = df["device"].astype(np.int64)
    total = len(dev)
    df = df[np.isfinite(df["value"])]
    if strings:  # sort by the UTF-8 bytes, as the contract says
        df["key"] = [s.encode() for s in df["device"]]
    else:
        df["key"] = df["device"]
    df = df.sort_values(["key", "time", "value"], kind="stable").reset_index(drop=True)

    # the periodic figures, from the readings as they are
    loc = pd.to_datetime(df["time"] // unit, unit="s", utc=True).dt.tz_convert(tz)
    if period == "day":
        code = loc.dt.year * 10000 + loc.dt.month * 100 + loc.dt.day
    elif period == "week":
        iso = loc.dt.isocalendar()
        code = iso["year"].astype(np.int64) * 100 + iso["week"].astype(np.int64)
    else:
        code = loc.dt.year * 100 + loc.dt.month
    df["period"] = code.astype(np.int64).values

    # the series
    if rate:
        prev = df.groupby("key", sort=False)[["time", "value"]].shift(1)
        dt = df["time"] - prev["time"]
        s = df[(dt > 0) & (dt <= gap * unit)].copy()
        s["x"] = (df["value"] - prev["value"])[s.index] / (dt[s.index] / unit)
        s = s.reset_index(drop=True)
    else:
        s = df.copy()
        s["x"] = s["value"]
    x = s["x"]
    if rule[0] == "above":
        b = x - float(rule[1])
    elif rule[0] == "below":
        b = float(rule[1]) - x
    elif rule[0] == "outside":
        lo, hi = float(rule[1]), float(rule[2])
        b = np.maximum(lo - x, x - hi)
    else:
        med = s.groupby("key", sort=False)["x"].transform("median")
        mad = (x - med).abs().groupby(s["key"], sort=False).transform("median")
        b = (x - med).abs() - float(rule[1]) * mad
    s["b"] = b
    brk, hold = b > 0, b > -h
    newdev = s["key"] != s["key"].shift(1)
    gapped = (s["time"] - s["time"].shift(1)) > gap * unit
    island = (newdev | gapped | ~hold | ~hold.shift(1, fill_value=False)).cumsum()
    s["island"] = island
    s = s[hold]
    # within an island, the episode runs from its first breaking reading to the island's end
    started = brk[s.index].groupby(s["island"]).cummax()
    e = s[started]
    agg = e.groupby("island").agg(device=("device", "first"), key=("key", "first"), start=("time", "first"),
                                  end=("time", "last"), readings=("x", "size"), mean=("x", "mean"))
    agg["peak"] = e.loc[e.groupby("island")["b"].idxmax(), "x"].values
    agg["duration_s"] = (agg["end"] - agg["start"]) / unit
    agg = agg[agg["duration_s"] >= min_dur].sort_values(["key", "start"]).reset_index(drop=True)
    agg["period"] = df.set_index(["key", "time"])["period"].groupby(level=[0, 1]).first().loc[
        list(zip(agg["key"], agg["start"]))].values if len(agg) else []

    with h5py.File(out) as f:
        E = f["episodes"]
        got_dev = E["device"][:]
        if strings and len(got_dev):
            got_dev = [x.decode() for x in got_dev]
        assert len(got_dev) == len(agg), (len(got_dev), len(agg))
        assert list(got_dev) == list(agg["device"]), "devices differ"
        for c in ["start", "end", "readings"]:
            assert (E[c][:] == agg[c].values).all(), c
        assert (E["duration_s"][:] == agg["duration_s"].values).all(), "duration_s"
        assert (E["peak"][:] == agg["peak"].values).all(), "peak"
        assert np.allclose(E["mean"][:], agg["mean"].values, rtol=1e-12, atol=0), "mean"
        P = E["periods"]
        devs = sorted(df["key"].unique())
        pers = sorted(df["period"].unique())
        pdev = P["device"][:]
        want_dev = [d.decode() if isinstance(d, bytes) else d for d in devs] if strings else devs
        got_pdev = [x.decode() for x in pdev] if strings else list(pdev)
        assert got_pdev == list(want_dev), (got_pdev, want_dev)
        assert list(P["period"][:]) == list(pers), (P["period"][:], pers)
        di = {d: i for i, d in enumerate(devs)}
        pi = {p: i for i, p in enumerate(pers)}
        rd = np.zeros((len(devs), len(pers)), np.uint64)
        vm = np.full((len(devs), len(pers)), np.nan)
        ne = np.zeros_like(rd)
        sec = np.zeros((len(devs), len(pers)))
        for (k, p), grp in df.groupby(["key", "period"]):
            rd[di[k], pi[p]] = len(grp)
            vm[di[k], pi[p]] = grp["value"].mean()
        for (k, p), grp in agg.groupby(["key", "period"]):
            ne[di[k], pi[p]] = len(grp)
            sec[di[k], pi[p]] = grp["duration_s"].sum()
        assert (P["readings"][:] == rd).all(), "readings"
        assert (P["episodes"][:] == ne).all(), "episodes"
        assert np.allclose(P["seconds_in_episode"][:], sec, rtol=1e-12, atol=0), "seconds_in_episode"
        assert np.allclose(P["value_mean"][:], vm, rtol=1e-12, atol=0, equal_nan=True), "value_mean"
        assert P["value_mean"].dims[0][0].name == "/episodes/periods/device"
        assert E.attrs["rows_total"] == total and E.attrs["rows_valid"] == len(df), dict(E.attrs)
        assert E.attrs["n_episodes"] == len(agg)
    print(f"{out}: {len(agg)} episodes of {len(devs)} devices over {len(pers)} periods equal the pandas reference")


args = sys.argv[1:]
for i in range(0, len(args), 2):
    check(args[i], args[i + 1])
