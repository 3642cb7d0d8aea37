"""Grouped aggregation answered by the peers, for the side-by-side benchmark (make bench).

Per meter x month (of UTC time), over the valid values (finite, 40 to 260): count, sum,
mean and exact linear (type 7) p50 and p95 of one value; the question h5batch's
aggregate kernel answers into /aggregate (table layout) in bench/aggregate.sh. Each
peer reads the input once converted, outside the timing, to Parquet. The answers are
compared with h5batch's: counts exactly, sums, means and percentiles within a relative
tolerance (the values are whole numbers, so they should agree to the bit); a
disagreement exits 1.

  python peers_aggregate.py convert INPUT.h5 OUT.parquet
  python peers_aggregate.py run PEER INPUT.parquet H5BATCH_OUTPUT.h5 [--threads N] [--question dense]
      PEER: duckdb | polars | chdb; prints one JSON line with wall seconds and the check

--question dense: per segment x local day of week x local hour (Europe/Berlin) of the
traffic input (converted by peers_traffic.py), count, sum, mean, p50 and p95 of the valid
speeds (0-250), compared with h5batch's dense layout (every cell with a count).
"""
import argparse
import os
import sys
import time

import h5py
import numpy as np
from peer_result import finish, table_to_parquet

RTOL = 1e-9
LO, HI = 40, 260


def convert(src, dst):
    with h5py.File(src, "r") as f:
        table_to_parquet(f["table"], dst, {"meter": "patient", "time": "time", "value": "systolic"})


def run_duckdb(path, threads):
    import duckdb
    con = duckdb.connect()
    con.execute(f"SET threads={threads}")
    q = f"""
    SELECT meter, year(ts) * 100 + month(ts) AS month, count(*) AS n, sum(v) AS s, avg(v) AS m,
           quantile_cont(v, 0.5) AS p50, quantile_cont(v, 0.95) AS p95
    FROM (SELECT meter, make_timestamp(time * 1000000) AS ts, CAST(value AS DOUBLE) AS v
          FROM read_parquet('{path}') WHERE NOT isnan(value) AND value >= {LO} AND value <= {HI})
    GROUP BY ALL
    """
    t = con.execute(q).fetchnumpy()
    return {"meter": t["meter"], "month": t["month"], "n": t["n"], "sum": t["s"], "mean": t["m"], "p50": t["p50"],
            "p95": t["p95"]}


def run_polars(path, threads):
    os.environ.setdefault("POLARS_MAX_THREADS", str(threads))
    import polars as pl
    df = (pl.scan_parquet(path)
          .filter(pl.col("value").is_not_nan() & (pl.col("value") >= LO) & (pl.col("value") <= HI))
          .with_columns(pl.from_epoch("time", time_unit="s").alias("ts"), pl.col("value").cast(pl.Float64))
          .with_columns((pl.col("ts").dt.year().cast(pl.Int64) * 100 + pl.col("ts").dt.month().cast(pl.Int64))
                        .alias("month"))
          .group_by(["meter", "month"])
          .agg(pl.len().alias("n"), pl.col("value").sum().alias("sum"), pl.col("value").mean().alias("mean"),
               pl.col("value").quantile(0.5, interpolation="linear").alias("p50"),
               pl.col("value").quantile(0.95, interpolation="linear").alias("p95"))
          .collect())
    return {k: df[k].to_numpy() for k in ("meter", "month", "n", "sum", "mean", "p50", "p95")}


def run_chdb(path, threads):
    import io
    import chdb
    import pyarrow.parquet as pq
    q = f"""
    SELECT meter, toYYYYMM(toDateTime(time, 'UTC')) AS month, count() AS n, sum(v) AS s, avg(v) AS m,
           quantilesExactInclusive(0.5, 0.95)(v) AS q
    FROM (SELECT meter, time, toFloat64(value) AS v FROM file('{os.path.abspath(path)}', Parquet)
          WHERE NOT isNaN(value) AND value >= {LO} AND value <= {HI})
    GROUP BY meter, month
    SETTINGS max_threads = {threads}
    """
    t = pq.read_table(io.BytesIO(chdb.query(q, "Parquet").bytes()))
    q = np.array(t.column("q").to_pylist())
    return {"meter": t.column("meter").to_numpy(), "month": t.column("month").to_numpy(),
            "n": t.column("n").to_numpy(), "sum": t.column("s").to_numpy(), "mean": t.column("m").to_numpy(),
            "p50": q[:, 0], "p95": q[:, 1]}


TZ = "Europe/Berlin"
SPEED_LO, SPEED_HI = 0, 250


def dense_duckdb(path, threads):
    import duckdb
    con = duckdb.connect()
    con.execute(f"SET threads={threads}")
    con.execute(f"SET TimeZone='{TZ}'")
    q = f"""
    SELECT segment, isodow(ts) - 1 AS dow, hour(ts) AS hour, count(*) AS n, sum(v) AS s, avg(v) AS m,
           quantile_cont(v, 0.5) AS p50, quantile_cont(v, 0.95) AS p95
    FROM (SELECT segment, to_timestamp(time) AS ts, CAST(speed AS DOUBLE) AS v FROM read_parquet('{path}')
          WHERE NOT isnan(speed) AND speed >= {SPEED_LO} AND speed <= {SPEED_HI})
    GROUP BY ALL
    """
    t = con.execute(q).fetchnumpy()
    return {"segment": t["segment"], "dow": t["dow"], "hour": t["hour"], "n": t["n"], "sum": t["s"],
            "mean": t["m"], "p50": t["p50"], "p95": t["p95"]}


def dense_polars(path, threads):
    os.environ.setdefault("POLARS_MAX_THREADS", str(threads))
    import polars as pl
    df = (pl.scan_parquet(path)
          .filter(pl.col("speed").is_not_nan() & (pl.col("speed") >= SPEED_LO) & (pl.col("speed") <= SPEED_HI))
          .with_columns(pl.from_epoch("time", time_unit="s").dt.replace_time_zone("UTC")
                        .dt.convert_time_zone(TZ).alias("ts"), pl.col("speed").cast(pl.Float64))
          .with_columns((pl.col("ts").dt.weekday() - 1).alias("dow"), pl.col("ts").dt.hour().alias("hour"))
          .group_by(["segment", "dow", "hour"])
          .agg(pl.len().alias("n"), pl.col("speed").sum().alias("sum"), pl.col("speed").mean().alias("mean"),
               pl.col("speed").quantile(0.5, interpolation="linear").alias("p50"),
               pl.col("speed").quantile(0.95, interpolation="linear").alias("p95"))
          .collect())
    return {k: df[k].to_numpy() for k in ("segment", "dow", "hour", "n", "sum", "mean", "p50", "p95")}


def dense_chdb(path, threads):
    import io
    import chdb
    import pyarrow.parquet as pq
    q = f"""
    SELECT segment, toDayOfWeek(ts) - 1 AS dow, toHour(ts) AS hour, count() AS n, sum(v) AS s, avg(v) AS m,
           quantilesExactInclusive(0.5, 0.95)(v) AS q
    FROM (SELECT segment, toDateTime(time, '{TZ}') AS ts, toFloat64(speed) AS v
          FROM file('{os.path.abspath(path)}', Parquet)
          WHERE NOT isNaN(speed) AND speed >= {SPEED_LO} AND speed <= {SPEED_HI})
    GROUP BY segment, dow, hour
    SETTINGS max_threads = {threads}
    """
    t = pq.read_table(io.BytesIO(chdb.query(q, "Parquet").bytes()))
    q = np.array(t.column("q").to_pylist())
    return {"segment": t.column("segment").to_numpy(), "dow": t.column("dow").to_numpy(),
            "hour": t.column("hour").to_numpy(), "n": t.column("n").to_numpy(), "sum": t.column("s").to_numpy(),
            "mean": t.column("m").to_numpy(), "p50": q[:, 0], "p95": q[:, 1]}


def compare_groups(res, hb, keys):
    """Problems between a peer's groups res and h5batch's hb (columns by name; hb in key
    order, keys outermost first): keys and counts exactly, the rest within RTOL."""
    order = np.lexsort(tuple(np.asarray(res[k]).astype(np.int64) for k in reversed(keys)))
    res = {k: np.asarray(v)[order] for k, v in res.items()}
    if len(res["n"]) != len(hb["n"]):
        return [f"{len(res['n'])} groups, h5batch has {len(hb['n'])}"]
    problems = []
    for k in keys + ["n"]:
        bad = np.flatnonzero(res[k].astype(np.int64) != hb[k].astype(np.int64))
        problems += [f"{k} of group {i}: peer {res[k][i]} h5batch {hb[k][i]}" for i in bad[:5]]
    if problems:
        return problems
    for k in ("sum", "mean", "p50", "p95"):
        bad = np.flatnonzero(~np.isclose(res[k].astype(float), hb[k], rtol=RTOL, atol=0))
        problems += [f"{k}[{','.join(str(hb[c][i]) for c in keys)}] peer {res[k][i]!r} h5batch {hb[k][i]!r}"
                     for i in bad[:5]]
    return problems


def dense_compare(res, out_path):
    """Problems between a peer's cells and h5batch's dense arrays (every cell with a count)."""
    with h5py.File(out_path, "r") as f:
        g = f["aggregate"]
        n = g["speed_count"][...]
        cells = np.nonzero(n > 0)  # in C order: segment, then day, then hour ascending
        hb = {"segment": g["segment"][...][cells[0]], "dow": g["day_of_week"][...][cells[1]],
              "hour": g["hour"][...][cells[2]], "n": n[cells]}
        for k in ("sum", "mean", "p50", "p95"):
            hb[k] = g[f"speed_{k}"][...][cells]
    return compare_groups(res, hb, ["segment", "dow", "hour"])


def compare(res, out_path):
    """Problems between a peer's groups and h5batch's table (empty list: they agree)."""
    with h5py.File(out_path, "r") as f:
        g = f["aggregate"]
        hb = {"meter": g["meter"][...], "month": g["month"][...], "n": g["value_count"][...],
              "sum": g["value_sum"][...], "mean": g["value_mean"][...], "p50": g["value_p50"][...],
              "p95": g["value_p95"][...]}
    keep = hb["n"] > 0  # h5batch also lists the groups whose values are all invalid
    return compare_groups(res, {k: v[keep] for k, v in hb.items()}, ["meter", "month"])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("convert")
    c.add_argument("input")
    c.add_argument("output")
    r = sub.add_parser("run")
    r.add_argument("peer", choices=["duckdb", "polars", "chdb"])
    r.add_argument("parquet")
    r.add_argument("answer")
    r.add_argument("--threads", type=int, default=2)
    r.add_argument("--question", choices=["sparse", "dense"], default="sparse")
    a = ap.parse_args()
    if a.cmd == "convert":
        convert(a.input, a.output)
        return 0
    t0 = time.perf_counter()
    if a.question == "dense":
        res = {"duckdb": dense_duckdb, "polars": dense_polars, "chdb": dense_chdb}[a.peer](a.parquet, a.threads)
        wall = time.perf_counter() - t0
        return finish(a.peer, wall, dense_compare(res, a.answer), groups=int(len(res["n"])))
    res = {"duckdb": run_duckdb, "polars": run_polars, "chdb": run_chdb}[a.peer](a.parquet, a.threads)
    wall = time.perf_counter() - t0
    return finish(a.peer, wall, compare(res, a.answer), groups=int(len(res["meter"])))


if __name__ == "__main__":
    sys.exit(main())
