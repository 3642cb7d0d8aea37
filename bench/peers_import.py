"""CSV import by the peers, for the side-by-side benchmark (make bench, bench/import.sh).

The question: read one CSV file (a header line, an ISO time, an integer, two reals and a
short string per record) into an in-memory table with typed columns, times parsed, as
`h5batch import` reads it into an HDF5 table. Each peer's table is checked against
h5batch's output (the row count, the exact sum of the integers and of the times in
seconds, the sum of one real column to 1e-9): a disagreement exits 1.

  python peers_import.py gen OUT.csv BYTES          # the input (not timed)
  python peers_import.py run PEER INPUT.csv H5BATCH_OUTPUT.h5 [--threads N]
      PEER: duckdb | pyarrow | pandas; prints one JSON line with wall seconds and the check
"""
import argparse
import os
import sys
import time

import numpy as np
from peer_result import finish


def gen(path, nbytes):
    nbytes = int(nbytes)
    """About nbytes of CSV, 1M rows at a time (about 50 bytes a row), deterministic."""
    import pandas as pd
    rng = np.random.default_rng(7)
    t0 = np.datetime64("2024-01-01T00:00:00")
    status = np.array(["ok", "estimated", "missing reading", "leak, checked"])
    with open(path + ".tmp", "w") as f:
        f.write("time,meter,reading,temperature,status\n")
        done, start = 0, 0
        while done < nbytes:
            n = min(1_000_000, (nbytes - done) // 45 + 1000)  # about 50 bytes a row
            df = pd.DataFrame({
                "time": (t0 + (start + np.arange(n)) * np.timedelta64(7, "s")).astype("datetime64[s]").astype(str),
                "meter": rng.integers(100000, 999999, n),
                "reading": np.round(rng.uniform(0, 10000, n), 3),
                "temperature": np.round(rng.normal(12, 8, n), 2),
                "status": status[rng.integers(0, 4, n)],
            })
            df["time"] = df["time"].str.replace("T", " ")
            text = df.to_csv(index=False, header=False)
            if done + len(text) > nbytes:
                text = text[: text.rfind("\n", 0, max(nbytes - done, 1)) + 1] or text[: text.find("\n") + 1]
            f.write(text)
            done += len(text)
            start += n
    os.replace(path + ".tmp", path)


def check(rows, meter_sum, time_sum, reading_sum, ref):
    import h5py
    with h5py.File(ref, "r") as f:
        t = f["table"]
        want = (t["meter"].shape[0], int(t["meter"][:].sum()), int(t["time"][:].sum()), float(np.sum(t["reading"][:])))
    problems = []
    if rows != want[0]:
        problems.append(f"rows {rows} != {want[0]}")
    if meter_sum != want[1]:
        problems.append(f"sum(meter) {meter_sum} != {want[1]}")
    if time_sum != want[2]:
        problems.append(f"sum(time) {time_sum} != {want[2]}")
    if abs(reading_sum - want[3]) > 1e-9 * max(1.0, abs(want[3])):
        problems.append(f"sum(reading) {reading_sum} != {want[3]}")
    return problems


def run(peer, path, ref, threads):
    t0 = time.perf_counter()
    if peer == "duckdb":
        import duckdb
        con = duckdb.connect()
        con.execute(f"SET threads = {threads}")
        con.execute(f"CREATE TABLE t AS SELECT * FROM read_csv('{path}', header = true)")
        wall = time.perf_counter() - t0
        rows, ms, ts, rs = con.execute(
            # epoch() is a double: each one exact, their sum (past 2^53) not, so summed as integers
            "SELECT count(*), sum(meter)::HUGEINT, sum(epoch(time)::BIGINT)::HUGEINT, sum(reading) FROM t").fetchone()
        rows, ms, ts, rs = int(rows), int(ms), int(ts), float(rs)
    elif peer == "pyarrow":
        import pyarrow as pa
        import pyarrow.csv as pcsv
        pa.set_cpu_count(threads)
        tbl = pcsv.read_csv(path)
        wall = time.perf_counter() - t0
        rows = tbl.num_rows
        ms = int(np.sum(tbl["meter"].to_numpy(), dtype=np.int64))
        ts = int(np.sum(tbl["time"].to_numpy().astype("datetime64[s]").astype(np.int64)))
        rs = float(np.sum(tbl["reading"].to_numpy()))
    elif peer == "pandas":
        import pandas as pd
        df = pd.read_csv(path, parse_dates=["time"])
        wall = time.perf_counter() - t0
        rows = len(df)
        ms = int(df["meter"].sum())
        ts = int((df["time"].to_numpy().astype("datetime64[s]").astype(np.int64)).sum())
        rs = float(np.sum(df["reading"].to_numpy()))
    else:
        sys.exit(f"unknown peer {peer}")
    return finish(peer, wall, check(rows, ms, ts, rs, ref), threads=threads if peer != "pandas" else 1)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("gen")
    g.add_argument("out")
    g.add_argument("bytes", type=float)
    r = sub.add_parser("run")
    r.add_argument("peer")
    r.add_argument("input")
    r.add_argument("ref")
    r.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    if a.cmd == "gen":
        gen(a.out, int(a.bytes))
    else:
        sys.exit(run(a.peer, a.input, a.ref, a.threads))
