#!/usr/bin/python3
"""Print a short human summary of an h5batch traffic output file.

Shows the row counts by validity (from the /traffic attributes), the number
of segments, and the N most congested (segment, weekday, hour) cells ranked
by travel_time_index (NaN cells skipped).
"""

import argparse
import sys

import h5py
import numpy as np

DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday",
             "Saturday", "Sunday")


def table(header, rows):
    """Format rows as text columns: first column left-aligned, others right."""
    widths = [max(len(str(r[i])) for r in [header] + rows)
              for i in range(len(header))]
    lines = []
    for row in [header] + rows:
        cells = [str(v).ljust(w) if i == 0 else str(v).rjust(w)
                 for i, (v, w) in enumerate(zip(row, widths))]
        lines.append("  ".join(cells))
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def text(value):
    return value.decode() if isinstance(value, bytes) else str(value)


def summarize(path, top):
    with h5py.File(path, "r") as f:
        g = f["traffic"]
        attrs = g.attrs
        tti = g["travel_time_index"][()]
        count = g["count"][()]
        mean = g["mean_speed"][()]
        free_flow = g["free_flow_speed"][()]
        event_rows = int(g["events/count"][()].sum()) if "events" in g else None

        total = int(attrs["rows_total"])
        print(f"{path}: timezone {text(attrs['timezone'])}, percentiles "
              + ",".join("%g" % p for p in attrs["percentiles"]))
        print(f"rows: {total} total, {int(attrs['rows_valid'])} valid"
              + (f" ({event_rows} on event days)" if event_rows is not None else ""))
        print(f"invalid: {int(attrs['rows_invalid_speed'])} speed, "
              f"{int(attrs['rows_invalid_segment'])} segment, "
              f"{int(attrs['rows_invalid_time'])} time")
        print(f"segments: {tti.shape[0]} "
              f"({int((g['segment_count'][()] > 0).sum())} with data)")

    flat = tti.ravel()
    cells = np.nonzero(~np.isnan(flat))[0]
    # Stable sort on the negated index: ties stay in (segment, day, hour) order.
    ranked = cells[np.argsort(-flat[cells], kind="stable")][:top]
    if not len(ranked):
        print("no cell has a travel time index")
        return
    rows = []
    for rank, i in enumerate(ranked, 1):
        seg, day, hour = np.unravel_index(i, tti.shape)
        rows.append((rank, seg, DAY_NAMES[day], f"{hour:02d}:00",
                     f"{flat[i]:.3f}", count[seg, day, hour],
                     f"{mean[seg, day, hour]:.1f}", f"{free_flow[seg]:.1f}"))
    print(f"\ntop {len(ranked)} congested cells by travel time index:")
    print(table(("#", "segment", "day", "hour", "TTI", "count",
                 "mean km/h", "free-flow km/h"), rows))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("output", help="h5batch output HDF5 file")
    parser.add_argument("--top", type=int, default=5,
                        help="number of congested cells to list (5)")
    args = parser.parse_args()
    if args.top < 0:
        parser.error("--top must be >= 0")
    try:
        summarize(args.output, args.top)
    except (OSError, KeyError) as exc:
        print(f"traffic_summary: {args.output}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
