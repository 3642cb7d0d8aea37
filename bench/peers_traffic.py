"""Traffic question answered by the peers, for the side-by-side benchmark (make bench).

Per segment x local day of week x local hour (Europe/Berlin by default), over the valid
rows on non-event days: count, mean and exact linear (type 7) percentiles of speed; the
same question h5batch's traffic kernel answers into /traffic. Each peer reads the input
once converted, outside the timing, to its preferred format (Parquet). The results are
compared with h5batch's output: counts exactly, means and percentiles within a stated
relative tolerance (summation order and interpolation arithmetic differ); a disagreement
exits 1.

  python peers_traffic.py convert INPUT.h5 OUT.parquet
  python peers_traffic.py run PEER INPUT.parquet EVENTS.json H5BATCH_OUTPUT.h5 [--tz ZONE]
      PEER: duckdb | polars | chdb | spark; prints one JSON line with wall seconds and the check
"""
import argparse
import json
import sys
import time

import h5py
import numpy as np
from peer_result import finish, table_to_parquet

PCTS = (50.0, 85.0, 95.0)
RTOL = 1e-9


def convert(src, dst, events_out):
    with h5py.File(src, "r") as f:
        obs = f["observations"]
        segments = int(obs.attrs["n_segments"])
        events = [int(d) for d in f["calendar/event_days"][:]] if "calendar/event_days" in f else []
        table_to_parquet(obs, dst, {"time": "time", "segment": "segment", "speed": "speed"})
    with open(events_out, "w") as fh:
        json.dump({"event_days": events, "segments": segments}, fh)


def run_duckdb(path, meta, tz, threads):
    import duckdb
    con = duckdb.connect()
    con.execute(f"SET threads={threads}")
    con.execute(f"SET TimeZone='{tz}'")
    days = ",".join(str(d) for d in meta["event_days"]) or "NULL"
    q = f"""
    WITH v AS (
      SELECT segment, CAST(speed AS DOUBLE) AS speed, to_timestamp(time) AS ts
      FROM read_parquet('{path}')
      WHERE NOT isnan(speed) AND speed >= 0 AND speed <= 250 AND segment < {meta['segments']}
    ), l AS (
      SELECT segment, speed, isodow(ts) - 1 AS dow, hour(ts) AS hour,
             year(ts) * 10000 + month(ts) * 100 + day(ts) AS ymd
      FROM v
    )
    SELECT segment, dow, hour, count(*) AS n, avg(speed) AS mean,
           quantile_cont(speed, [{','.join(str(p / 100) for p in PCTS)}]) AS q
    FROM l WHERE ymd NOT IN ({days})
    GROUP BY ALL
    """
    rows = con.execute(q).fetchall()
    return [(r[0], r[1], r[2], r[3], r[4], list(r[5])) for r in rows]


def run_polars(path, meta, tz, threads):
    import os
    os.environ.setdefault("POLARS_MAX_THREADS", str(threads))
    import polars as pl
    lf = (pl.scan_parquet(path)
          .filter(pl.col("speed").is_not_nan() & (pl.col("speed") >= 0) & (pl.col("speed") <= 250)
                  & (pl.col("segment") < meta["segments"]))
          .with_columns(pl.from_epoch("time", time_unit="s").dt.replace_time_zone("UTC")
                        .dt.convert_time_zone(tz).alias("ts"),
                        pl.col("speed").cast(pl.Float64))
          .with_columns((pl.col("ts").dt.weekday() - 1).alias("dow"), pl.col("ts").dt.hour().alias("hour"),
                        (pl.col("ts").dt.year().cast(pl.Int64) * 10000
                         + pl.col("ts").dt.month().cast(pl.Int64) * 100
                         + pl.col("ts").dt.day().cast(pl.Int64)).alias("ymd"))
          .filter(~pl.col("ymd").is_in(meta["event_days"]))
          .group_by(["segment", "dow", "hour"])
          .agg([pl.len().alias("n"), pl.col("speed").mean().alias("mean")]
               + [pl.col("speed").quantile(p / 100, interpolation="linear").alias(f"q{i}")
                  for i, p in enumerate(PCTS)]))
    df = lf.collect()
    return [(r[0], r[1], r[2], r[3], r[4], list(r[5:])) for r in df.iter_rows()]


def run_chdb(path, meta, tz, threads):
    """ClickHouse in process: quantilesExactInclusive is the exact type-7 percentile."""
    import io
    import os
    import chdb
    import pyarrow.parquet as pq
    days = ",".join(str(d) for d in meta["event_days"]) or "0"
    pcts = ", ".join(str(p / 100) for p in PCTS)
    q = f"""
    SELECT segment, toDayOfWeek(ts) - 1 AS dow, toHour(ts) AS hour, count() AS n, avg(v) AS mean,
           quantilesExactInclusive({pcts})(v) AS q
    FROM (SELECT segment, toFloat64(speed) AS v, toDateTime(time, '{tz}') AS ts
          FROM file('{os.path.abspath(path)}', Parquet)
          WHERE NOT isNaN(speed) AND speed >= 0 AND speed <= 250 AND segment < {meta['segments']})
    WHERE toYYYYMMDD(ts) NOT IN ({days})
    GROUP BY segment, dow, hour
    SETTINGS max_threads = {threads}
    """
    t = pq.read_table(io.BytesIO(chdb.query(q, "Parquet").bytes()))
    cols = [t.column(k).to_pylist() for k in ("segment", "dow", "hour", "n", "mean", "q")]
    return list(zip(*cols))


def run_spark(path, meta, tz, threads):
    from pyspark.sql import SparkSession
    spark = (SparkSession.builder.master(f"local[{threads}]").appName("h5batch-bench")
             .config("spark.sql.session.timeZone", tz).config("spark.driver.memory", "8g")
             .config("spark.ui.enabled", "false").getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    spark.read.parquet(path).createOrReplaceTempView("obs")
    days = ",".join(str(d) for d in meta["event_days"]) or "NULL"
    pcts = ",".join(str(p / 100) for p in PCTS)
    q = f"""
    SELECT segment, dow, hour, count(*) AS n, avg(speed) AS mean, percentile(speed, array({pcts})) AS q
    FROM (SELECT segment, CAST(speed AS DOUBLE) AS speed,
                 (dayofweek(ts) + 5) % 7 AS dow, hour(ts) AS hour,
                 year(ts) * 10000 + month(ts) * 100 + day(ts) AS ymd
          FROM (SELECT segment, speed, timestamp_seconds(time) AS ts FROM obs
                WHERE NOT isnan(speed) AND speed >= 0 AND speed <= 250 AND segment < {meta['segments']}))
    WHERE ymd NOT IN ({days})
    GROUP BY segment, dow, hour
    """
    rows = spark.sql(q).collect()
    spark.stop()
    return [(r[0], r[1], r[2], r[3], r[4], list(r[5])) for r in rows]


def compare(rows, out_path):
    """Problems between a peer's rows and h5batch's /traffic (empty list: they agree)."""
    with h5py.File(out_path, "r") as f:
        t = f["traffic"]
        count = t["count"][...]
        mean = t["mean_speed"][...]
        pct = [t[f"speed_p{p:g}"][...] for p in PCTS]
    seen = np.zeros(count.shape, dtype=bool)
    problems = []
    for s, d, h, n, m, q in rows:
        seen[s, d, h] = True
        if n != count[s, d, h]:
            problems.append(f"count[{s},{d},{h}] peer {n} h5batch {count[s, d, h]}")
            continue
        if not np.isclose(m, mean[s, d, h], rtol=RTOL, atol=0):
            problems.append(f"mean[{s},{d},{h}] peer {m!r} h5batch {mean[s, d, h]!r}")
        for p, qv, arr in zip(PCTS, q, pct):
            if not np.isclose(qv, arr[s, d, h], rtol=RTOL, atol=0):
                problems.append(f"p{p:g}[{s},{d},{h}] peer {qv!r} h5batch {arr[s, d, h]!r}")
    missing = np.argwhere(~seen & (count > 0))
    problems += [f"cell {tuple(c)} missing in the peer's result" for c in missing[:10]]
    return problems


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("convert")
    c.add_argument("input")
    c.add_argument("parquet")
    c.add_argument("events")
    r = sub.add_parser("run")
    r.add_argument("peer", choices=["duckdb", "polars", "chdb", "spark"])
    r.add_argument("parquet")
    r.add_argument("events")
    r.add_argument("h5batch_output")
    r.add_argument("--tz", default="Europe/Berlin")
    r.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    if a.cmd == "convert":
        convert(a.input, a.parquet, a.events)
        return 0
    meta = json.load(open(a.events))
    runner = {"duckdb": run_duckdb, "polars": run_polars, "chdb": run_chdb, "spark": run_spark}[a.peer]
    t0 = time.perf_counter()
    rows = runner(a.parquet, meta, a.tz, a.threads)
    wall = time.perf_counter() - t0
    return finish(a.peer, wall, compare(rows, a.h5batch_output), cells=len(rows))


if __name__ == "__main__":
    sys.exit(main())
