"""What the peer scripts share: table columns to Parquet, and the ending (problems on
stderr, one JSON line on stdout)."""
import json
import sys


def finish(peer, wall, problems, **extra):
    """Prints up to 10 problems and the result line bench/lib.sh reads; the exit status."""
    for p in problems[:10]:
        print(f"{peer}: {p}", file=sys.stderr)
    print(json.dumps({"peer": peer, "wall_s": round(wall, 3), **extra, "agrees": not problems,
                      "problems": len(problems)}))
    return 1 if problems else 0


def table_to_parquet(group, dst, columns, step=10_000_000):
    """Writes columns of an HDF5 table group to Parquet in blocks of step rows (memory
    bounded), snappy, row groups of 1M; columns maps each Parquet name to the group's."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    n = group[next(iter(columns.values()))].shape[0]
    writer = None
    for a in range(0, n, step):
        b = min(n, a + step)
        table = pa.table({out: group[src][a:b] for out, src in columns.items()})
        if writer is None:
            writer = pq.ParquetWriter(dst, table.schema, compression="snappy")
        writer.write_table(table, row_group_size=1_000_000)
    if writer is not None:
        writer.close()
