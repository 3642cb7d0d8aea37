"""Harsh braking episodes answered by the peers, for the side-by-side benchmark (make bench).

The question h5batch's episodes kernel answers in bench/episodes.sh (jobs/braking.ini on
gen fleet): per vehicle, readings ordered by (time, speed); the rate at a reading is
(speed - previous speed) / (time - previous time) where 0 < dt <= 5 s; an episode is a
maximal run of consecutive rates below -3 m/s^2 with no gap above 5 s between them;
per episode its vehicle, start, end, readings, peak (the lowest rate) and mean rate.
The peers do it with window functions: LAG (DuckDB) or shift over the vehicle (Polars),
and a running sum of run breaks for the islands. Each reads the input converted once,
outside the timing, to Parquet. The answers are compared with h5batch's table: vehicle,
start, end and readings exactly, peak and mean within a relative 1e-9; a disagreement
exits 1.

  python peers_episodes.py convert INPUT.h5 OUT.parquet
  python peers_episodes.py run PEER INPUT.parquet H5BATCH_OUTPUT.h5 [--threads N]
      PEER: duckdb | polars; prints one JSON line with wall seconds and the check
"""
import argparse
import os
import sys
import time

import h5py
import numpy as np
from peer_result import finish, table_to_parquet

RTOL = 1e-9
GAP, LIMIT = 5, -3.0


def convert(src, dst):
    with h5py.File(src, "r") as f:
        table_to_parquet(f["table"], dst, {"vehicle": "vehicle", "time": "time", "speed": "speed"})


def run_duckdb(path, threads):
    import duckdb
    con = duckdb.connect()
    con.execute(f"SET threads={threads}")
    con.execute("SET preserve_insertion_order=false")
    q = f"""
    WITH r AS (
        SELECT vehicle, time,
               time - LAG(time) OVER w AS dt,
               (CAST(speed AS DOUBLE) - CAST(LAG(speed) OVER w AS DOUBLE)) AS dv
        FROM read_parquet('{path}')
        WINDOW w AS (PARTITION BY vehicle ORDER BY time, speed)),
    s AS (
        SELECT vehicle, time, dv / dt AS rate FROM r WHERE dt > 0 AND dt <= {GAP}),
    b AS (
        SELECT vehicle, time, rate, rate < {LIMIT} AS brk,
               time - LAG(time) OVER v AS gap, LAG(rate < {LIMIT}) OVER v AS prev
        FROM s WINDOW v AS (PARTITION BY vehicle ORDER BY time)),
    i AS (
        SELECT vehicle, time, rate,
               SUM(CASE WHEN prev IS NULL OR NOT prev OR gap > {GAP} THEN 1 ELSE 0 END)
                   OVER (PARTITION BY vehicle ORDER BY time ROWS UNBOUNDED PRECEDING) AS island
        FROM b WHERE brk)
    SELECT vehicle, min(time) AS start, max(time) AS "end", count(*) AS readings, min(rate) AS peak,
           avg(rate) AS mean
    FROM i GROUP BY vehicle, island
    """
    t = con.execute(q).fetchnumpy()
    return {k: np.asarray(t[k]) for k in ("vehicle", "start", "end", "readings", "peak", "mean")}


def run_polars(path, threads):
    os.environ.setdefault("POLARS_MAX_THREADS", str(threads))
    import polars as pl
    v = pl.col("vehicle")
    df = (pl.scan_parquet(path)
          .sort(["vehicle", "time", "speed"])
          .with_columns((pl.col("time") - pl.col("time").shift(1).over("vehicle")).alias("dt"),
                        (pl.col("speed").cast(pl.Float64) - pl.col("speed").cast(pl.Float64).shift(1).over("vehicle"))
                        .alias("dv"))
          .filter((pl.col("dt") > 0) & (pl.col("dt") <= GAP))
          .with_columns((pl.col("dv") / pl.col("dt")).alias("rate"))
          .with_columns((pl.col("rate") < LIMIT).alias("brk"))
          .with_columns((pl.col("time") - pl.col("time").shift(1).over("vehicle")).alias("gap"),
                        pl.col("brk").shift(1).over("vehicle").alias("prev"))
          .filter(pl.col("brk"))
          .with_columns((pl.col("prev").is_null() | ~pl.col("prev").fill_null(False) | (pl.col("gap") > GAP))
                        .cast(pl.Int64).cum_sum().over("vehicle").alias("island"))
          .group_by([v, pl.col("island")])
          .agg(pl.col("time").min().alias("start"), pl.col("time").max().alias("end"), pl.len().alias("readings"),
               pl.col("rate").min().alias("peak"), pl.col("rate").mean().alias("mean"))
          .collect())
    return {k: df[k].to_numpy() for k in ("vehicle", "start", "end", "readings", "peak", "mean")}


def compare(res, out_path):
    """Problems between a peer's episodes and h5batch's table (empty list: they agree)."""
    with h5py.File(out_path, "r") as f:
        e = f["episodes"]
        hb = {"vehicle": e["device"][...], "start": e["start"][...], "end": e["end"][...],
              "readings": e["readings"][...], "peak": e["peak"][...], "mean": e["mean"][...]}
    order = np.lexsort((res["start"].astype(np.int64), res["vehicle"].astype(np.int64)))
    res = {k: np.asarray(v)[order] for k, v in res.items()}
    if len(res["vehicle"]) != len(hb["vehicle"]):
        return [f"{len(res['vehicle'])} episodes, h5batch has {len(hb['vehicle'])}"]
    problems = []
    for k in ("vehicle", "start", "end", "readings"):
        bad = np.flatnonzero(res[k].astype(np.int64) != hb[k].astype(np.int64))
        problems += [f"{k} of episode {i}: peer {res[k][i]} h5batch {hb[k][i]}" for i in bad[:5]]
    if problems:
        return problems
    for k in ("peak", "mean"):
        bad = np.flatnonzero(~np.isclose(res[k].astype(float), hb[k], rtol=RTOL, atol=0))
        problems += [f"{k} of episode {i} peer {res[k][i]!r} h5batch {hb[k][i]!r}" for i in bad[:5]]
    return problems


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("convert")
    c.add_argument("input")
    c.add_argument("output")
    r = sub.add_parser("run")
    r.add_argument("peer", choices=["duckdb", "polars"])
    r.add_argument("parquet")
    r.add_argument("answer")
    r.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    if a.cmd == "convert":
        convert(a.input, a.output)
        return 0
    t0 = time.perf_counter()
    res = {"duckdb": run_duckdb, "polars": run_polars}[a.peer](a.parquet, a.threads)
    wall = time.perf_counter() - t0
    return finish(a.peer, wall, compare(res, a.answer), episodes=int(len(res["vehicle"])))


if __name__ == "__main__":
    sys.exit(main())
