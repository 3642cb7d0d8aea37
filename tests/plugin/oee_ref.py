#!/usr/bin/env python3
"""Independent numpy reference of the oee plugin kernel (examples/plugins/oee/README.md).

oee_ref.py INPUT.h5 OUTPUT.h5 [--table /intervals] [--target 0.85]

Recomputes every batch's sums and figures from the input table with numpy, following
the README's rules (validity in order, quantities to the millisecond and microsecond,
integer sums, the ratios in float64), and requires the output to hold exactly the same
values: the sums are integers, so the ratios agree bit for bit.
"""
import argparse
import sys

import h5py
import numpy as np


def as_id(x):
    """An identifier column: whole numbers, else -1 (as h5batch reads identifiers)."""
    if np.issubdtype(x.dtype, np.integer):
        return x.astype(np.int64)
    b = x.astype(np.float64)
    with np.errstate(invalid="ignore"):
        ok = np.isfinite(b) & (b == np.floor(b)) & (np.abs(b) < 2.0**63)
    return np.where(ok, b, -1).astype(np.int64)


def as_i64(x):
    """An integer column: floats floored, non-finite or out of range the smallest int64."""
    if np.issubdtype(x.dtype, np.integer):
        return x.astype(np.int64)
    b = np.floor(x.astype(np.float64))
    with np.errstate(invalid="ignore"):
        ok = np.isfinite(b) & (b >= -(2.0**63)) & (b < 2.0**63)
    return np.where(ok, b, np.iinfo(np.int64).min).astype(np.int64)


def reference(table, target, names):
    col = {k: table[names.get(k, k)][:] for k in COLUMNS}
    n = len(col["batch"])
    batch = as_id(col["batch"])
    time = as_i64(col["time"])
    planned = col["planned_s"].astype(np.float64)
    stop = col["stop_s"].astype(np.float64)
    total = as_i64(col["total"])
    good = as_i64(col["good"])
    cycle = col["ideal_cycle_s"].astype(np.float64)

    imin = np.iinfo(np.int64).min
    why = np.full(n, -1)  # -1 valid, else the first failing test
    bad_batch = batch < 0
    with np.errstate(invalid="ignore"):
        bad_time = (time == imin) | ~np.isfinite(planned) | ~np.isfinite(stop) | (planned < 0) | (planned > 1e9) | (stop < 0)
        pm = np.where(bad_time, 0, np.rint(planned * 1000.0)).astype(np.int64)
        sm = np.where(bad_time, 0, np.rint(stop * 1000.0)).astype(np.int64)
        bad_time |= sm > pm
        bad_count = (total == imin) | (good == imin) | (total < 0) | (total > 1e15) | (good < 0) | (good > total)
        bad_cycle = ~np.isfinite(cycle) | (cycle <= 0) | (cycle > 3600)
        cu = np.where(bad_cycle, 0, np.rint(cycle * 1e6)).astype(np.int64)
    bad_cycle |= cu < 1
    # cycle (us) x total must fit in int64: exact integers where a float product says it may not
    near = ~bad_cycle & ~bad_count & (cu.astype(float) * total.astype(float) > 9e18)
    bad_cycle[near] = [int(c) * int(t) > 2**63 - 1 for c, t in zip(cu[near], total[near])]
    for k, b in reversed(list(enumerate([bad_batch, bad_time, bad_count, bad_cycle]))):
        why[b] = k
    valid = why < 0
    counts = {name: int((why == k).sum()) for k, name in
              enumerate(["rows_invalid_batch", "rows_invalid_time", "rows_invalid_count", "rows_invalid_cycle"])}

    ids, inv = np.unique(batch[valid], return_inverse=True)
    B = len(ids)

    def sums(x):
        s = np.zeros(B, dtype=np.int64)
        np.add.at(s, inv, x[valid])
        return s

    planned_ms, stop_ms = sums(pm), sums(sm)
    tot, gd, ideal_us = sums(total), sums(good), sums(cu * total)
    intervals = np.bincount(inv, minlength=B).astype(np.uint64)
    start = np.full(B, np.iinfo(np.int64).max)
    end = np.full(B, np.iinfo(np.int64).min)
    np.minimum.at(start, inv, time[valid])
    np.maximum.at(end, inv, time[valid])
    run_ms = planned_ms - stop_ms
    with np.errstate(invalid="ignore", divide="ignore"):
        avail = np.where(planned_ms > 0, run_ms.astype(float) / planned_ms.astype(float), np.nan)
        perf = np.where(run_ms > 0, ideal_us.astype(float) / (1000.0 * run_ms.astype(float)), np.nan)
        qual = np.where(tot > 0, gd.astype(float) / tot.astype(float), np.nan)
    oee = avail * perf * qual
    with np.errstate(invalid="ignore"):
        meets = (oee >= target).astype(np.uint8)
    out = {
        "batch": ids, "intervals": intervals, "start": start, "end": end,
        "planned_time": planned_ms / 1000.0, "stop_time": stop_ms / 1000.0, "run_time": run_ms / 1000.0,
        "ideal_time": ideal_us / 1e6, "total_count": tot.astype(np.uint64), "good_count": gd.astype(np.uint64),
        "availability": avail, "performance": perf, "quality": qual, "oee": oee, "meets_target": meets,
    }
    attrs = {"rows_total": n, "rows_valid": int(valid.sum()), "n_batches": B, **counts}
    return out, attrs


COLUMNS = ["batch", "time", "planned_s", "stop_s", "total", "good", "ideal_cycle_s"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("input")
    ap.add_argument("output")
    ap.add_argument("--table", default="/intervals")
    ap.add_argument("--target", type=float, default=0.85)
    ap.add_argument("--columns", default="", help="the kernel's columns option: 'batch:lot, total:filled'")
    a = ap.parse_args()
    names = dict(tuple(x.strip() for x in p.split(":", 1)) for p in a.columns.split(",") if p.strip())
    with h5py.File(a.input, "r") as f:
        want, attrs = reference(f[a.table], a.target, names)
    problems = []
    with h5py.File(a.output, "r") as f:
        g = f["oee"]
        for name, ref in want.items():
            got = g[name][...]
            if got.shape != ref.shape or got.dtype != ref.dtype:
                problems.append(f"{name}: shape/type {got.shape} {got.dtype}, expected {ref.shape} {ref.dtype}")
            elif not np.array_equal(got, ref, equal_nan=got.dtype.kind == "f"):
                i = np.flatnonzero(~((got == ref) | (np.isnan(got) & np.isnan(ref)) if got.dtype.kind == "f"
                                     else (got == ref)))[0]
                problems.append(f"{name}[{i}] (batch {want['batch'][i]}): {got[i]!r}, expected {ref[i]!r}")
            if "units" not in g[name].attrs or "description" not in g[name].attrs:
                problems.append(f"{name}: no units or description")
        for name, ref in attrs.items():
            if int(g.attrs[name]) != ref:
                problems.append(f"attribute {name}: {g.attrs[name]}, expected {ref}")
        if g["batch"].attrs.get("CLASS") != b"DIMENSION_SCALE":
            problems.append("/oee/batch is not a dimension scale")
        if g["oee"].dims[0].keys() != ["batch"]:
            problems.append("/oee/oee has no batch dimension")
        if abs(float(g.attrs["oee_target"]) - a.target) > 0:
            problems.append("oee_target attribute differs")
    for p in problems:
        print("oee_ref: " + p, file=sys.stderr)
    if not problems:
        print(f"oee_ref: {attrs['n_batches']} batches from {attrs['rows_valid']} of {attrs['rows_total']} records agree")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
