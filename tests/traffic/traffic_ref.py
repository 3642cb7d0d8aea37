#!/usr/bin/python3
"""Independent numpy reference for h5batch's traffic aggregation.

Recomputes every value of the `/traffic` output group from the input table
and compares it with an h5batch OUTPUT.h5: exact for counts, attributes,
shapes, dtypes, percentiles and free-flow speeds; rtol 1e-12 for means and
travel-time indices (their summation order is implementation-defined).
`--write-expected` writes the reference itself in the output schema.

Exit status: 0 OK, 1 mismatch (or unreadable output), 2 the input cannot be
processed (missing/unequal/non-numeric columns, times out of range, ...).
"""

import argparse
import datetime
import sys
import zoneinfo

import h5py
import numpy as np

HOUR = 3600
DAY = 86400
DAYS = 7
HOURS = 24
# datetime only represents years 1..9999; the offset lookup needs it.
MIN_TIME = -62135596800 + DAY   # 0001-01-02T00:00:00Z
MAX_TIME = 253402300799 - DAY   # 9999-12-30T23:59:59Z
MAX_SHOWN = 10                  # mismatch lines printed per dataset

U64 = np.dtype("<u8")
F64 = np.dtype("<f8")


class InputError(Exception):
    """The input cannot be aggregated (the C tool should reject it too)."""


def percentile_name(p):
    """Dataset name for percentile p, formatted like C's %g."""
    return "speed_p%g" % p


def parse_percentiles(text):
    try:
        values = [float(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"bad percentile list {text!r}")
    if any(not 0 <= p <= 100 for p in values):
        raise argparse.ArgumentTypeError("percentiles must lie in [0, 100]")
    if len({percentile_name(p) for p in values}) != len(values):
        raise argparse.ArgumentTypeError("percentiles must be distinct")
    return values


# ---------------------------------------------------------------- input

def _numeric(dset, what):
    if not isinstance(dset, h5py.Dataset):
        raise InputError(f"{what} is not a dataset")
    kind = dset.dtype.kind
    if kind not in "iuf":
        raise InputError(f"{what} has non-numeric type {dset.dtype}")
    return dset[()]


def _scalar_int(value, what):
    arr = np.asarray(value)
    if arr.size != 1 or arr.dtype.kind not in "iu":
        raise InputError(f"{what} must be a single integer, got {value!r}")
    n = int(arr.reshape(()))
    if n < 0:
        raise InputError(f"{what} must be >= 0, got {n}")
    return n


def load_input(path, table, segments):
    """Read the columns and optional tables; resolve the segment count S."""
    with h5py.File(path, "r") as f:
        group = f.get(table)
        if not isinstance(group, h5py.Group):
            raise InputError(f"no table group {table}")
        cols = {}
        for name in ("time", "segment", "speed"):
            if name not in group:
                raise InputError(f"{table} has no column {name!r}")
            cols[name] = _numeric(group[name], f"{table}/{name}")
            if cols[name].ndim != 1:
                raise InputError(f"{table}/{name} is not 1-D")
        lengths = {len(c) for c in cols.values()}
        if len(lengths) != 1:
            raise InputError(f"columns of {table} have unequal lengths "
                             f"{ {k: len(v) for k, v in cols.items()} }")

        seg = cols["segment"].astype(np.float64)
        if segments is not None:
            n_seg = segments
        elif "n_segments" in group.attrs:
            n_seg = _scalar_int(group.attrs["n_segments"],
                                f"{table} attribute n_segments")
        else:
            # Derived from the segment column alone: a row that is invalid
            # for another reason still names a segment that exists.
            with np.errstate(invalid="ignore"):
                ok = np.isfinite(seg) & (seg == np.floor(seg)) & (seg >= 0)
            n_seg = int(seg[ok].max()) + 1 if ok.any() else 0

        free_flow = None
        if "segments/free_flow_speed" in f:
            free_flow = _numeric(f["segments/free_flow_speed"],
                                 "/segments/free_flow_speed")
            if free_flow.shape != (n_seg,):
                raise InputError(f"/segments/free_flow_speed has shape "
                                 f"{free_flow.shape}, expected ({n_seg},)")
            free_flow = free_flow.astype(np.float64)

        event_days = None
        if "calendar/event_days" in f:
            event_days = _numeric(f["calendar/event_days"],
                                  "/calendar/event_days")
            if event_days.dtype.kind not in "iu":
                raise InputError("/calendar/event_days must be integers")
            event_days = event_days.astype(np.int64).ravel()

    return dict(time=cols["time"].astype(np.float64), segment=seg,
                speed=cols["speed"].astype(np.float64), n_seg=n_seg,
                free_flow=free_flow, event_days=event_days)


# ------------------------------------------------------------ local time

def _utc_offset(ts, tz):
    try:
        local = datetime.datetime.fromtimestamp(ts, tz)
    except (OverflowError, ValueError, OSError) as exc:
        raise InputError(f"time {ts} cannot be converted: {exc}")
    return local.utcoffset() // datetime.timedelta(seconds=1)


def utc_offsets(t, tz):
    """UTC offset in seconds for each int64 time t, DST-correct.

    One zoneinfo lookup per distinct UTC hour keeps this fast.  Transitions
    normally fall on a whole hour; when the offsets at the first and last
    second of an hour differ (LMT and other odd historical transitions),
    that hour's rows are looked up one by one.
    """
    hours, inverse = np.unique(t // HOUR, return_inverse=True)
    first = np.array([_utc_offset(h * HOUR, tz) for h in hours.tolist()],
                     dtype=np.int64)
    last = np.array([_utc_offset(h * HOUR + HOUR - 1, tz)
                     for h in hours.tolist()], dtype=np.int64)
    offsets = first[inverse]
    for i in np.nonzero((first != last)[inverse])[0]:
        offsets[i] = _utc_offset(int(t[i]), tz)
    return offsets


def civil_date(days):
    """yyyymmdd of each day number since 1970-01-01 (proleptic Gregorian).

    Howard Hinnant's days_from_civil inverse, vectorised; numpy's // and %
    floor, as the algorithm requires.
    """
    z = days + 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = np.where(mp < 10, mp + 3, mp - 9)
    year = yoe + era * 400 + (month <= 2)
    return year * 10000 + month * 100 + day


# ----------------------------------------------------------- aggregation

def group_stats(cell, values, n_cells, percentiles):
    """Count, mean and np.percentile of `values` per cell index.

    Cells holding the same number of values are stacked into one 2-D block
    so that np.percentile/np.mean run once per distinct count instead of
    once per cell; per row the arithmetic is the same as a 1-D call.
    """
    count = np.bincount(cell, minlength=n_cells)
    mean = np.full(n_cells, np.nan)
    pct = np.full((len(percentiles), n_cells), np.nan)
    order = np.lexsort((values, cell))
    ordered = values[order]
    start = np.concatenate(([0], np.cumsum(count)[:-1]))
    for n in np.unique(count[count > 0]):
        cells = np.nonzero(count == n)[0]
        block = ordered[start[cells][:, None] + np.arange(n)]
        mean[cells] = block.mean(axis=1)
        pct[:, cells] = np.percentile(block, percentiles, axis=1)
    return count.astype(np.uint64), mean, pct


def compute_reference(inp, timezone, percentiles, max_speed):
    """Return (datasets, attrs): dataset paths under /traffic -> arrays."""
    t, seg, speed, n_seg = inp["time"], inp["segment"], inp["speed"], inp["n_seg"]
    with np.errstate(invalid="ignore"):
        time_ok = np.isfinite(t)
        seg_ok = (np.isfinite(seg) & (seg == np.floor(seg))
                  & (seg >= 0) & (seg < n_seg))
        speed_ok = np.isfinite(speed) & (speed >= 0) & (speed <= max_speed)
    valid = time_ok & seg_ok & speed_ok
    attrs = {
        "rows_total": len(t),
        "rows_valid": int(valid.sum()),
        "rows_invalid_speed": int((time_ok & seg_ok & ~speed_ok).sum()),
        "rows_invalid_segment": int((time_ok & ~seg_ok).sum()),
        "rows_invalid_time": int((~time_ok).sum()),
        "timezone": timezone,
        "percentiles": np.array(percentiles, dtype=np.float64),
        "format_version": 1,             # the layout of /traffic described here
    }

    vt = np.floor(t[valid])
    if vt.size and (vt.min() < MIN_TIME or vt.max() > MAX_TIME):
        raise InputError("valid rows have times outside years 1..9999 "
                         f"(min {vt.min()}, max {vt.max()})")
    vt = vt.astype(np.int64)
    vseg = seg[valid].astype(np.int64)
    vspeed = speed[valid] + 0.0          # -0.0 + 0.0 == +0.0
    local = vt + utc_offsets(vt, zoneinfo.ZoneInfo(timezone))
    days = local // DAY
    hour = (local % DAY) // HOUR
    dow = (days + 3) % DAYS              # 1970-01-01 was a Thursday
    if inp["event_days"] is not None:
        event = np.isin(civil_date(days), inp["event_days"])
    else:
        event = np.zeros(len(vt), dtype=bool)
    week = ~event

    shape = (n_seg, DAYS, HOURS)
    cell = (vseg * DAYS + dow) * HOURS + hour
    count, mean, pct = group_stats(cell[week], vspeed[week],
                                   n_seg * DAYS * HOURS, percentiles)
    data = {"count": count.reshape(shape), "mean_speed": mean.reshape(shape)}
    for p, values in zip(percentiles, pct):
        data[percentile_name(p)] = values.reshape(shape)

    if inp["free_flow"] is not None:
        free_flow = inp["free_flow"]
    else:
        free_flow = group_stats(vseg[week], vspeed[week], n_seg, [85.0])[2][0]
    data["free_flow_speed"] = free_flow
    data["segment_count"] = np.bincount(vseg, minlength=n_seg).astype(np.uint64)

    ff = np.broadcast_to(free_flow[:, None, None], shape)
    usable = (count.reshape(shape) > 0) & ~np.isnan(ff) & (data["mean_speed"] > 0)
    tti = np.full(shape, np.nan)
    tti[usable] = ff[usable] / data["mean_speed"][usable]
    data["travel_time_index"] = tti

    # coordinate variables, written as HDF5 dimension scales
    data["segment"] = np.arange(n_seg, dtype=np.uint32)
    data["day_of_week"] = np.arange(DAYS, dtype=np.uint32)
    data["hour"] = np.arange(HOURS, dtype=np.uint32)

    if inp["event_days"] is not None:
        shape = (n_seg, HOURS)
        count, mean, pct = group_stats((vseg * HOURS + hour)[event],
                                       vspeed[event], n_seg * HOURS, percentiles)
        data["events/count"] = count.reshape(shape)
        data["events/mean_speed"] = mean.reshape(shape)
        for p, values in zip(percentiles, pct):
            data["events/" + percentile_name(p)] = values.reshape(shape)
    return data, attrs


def write_expected(path, data, attrs):
    with h5py.File(path, "w") as f:
        group = f.create_group("traffic")
        for name, values in data.items():
            dtype = U64 if values.dtype.kind == "u" else F64
            group.create_dataset(name, data=values, dtype=dtype)
        for name, value in attrs.items():
            group.attrs[name] = value


# ------------------------------------------------------------ comparison

class Report:
    """Collects mismatches; each mismatching element counts as a problem."""

    def __init__(self):
        self.problems = 0

    def add(self, message):
        print(message)
        self.problems += 1

    def elements(self, name, exp, got, mismatch):
        bad = np.argwhere(mismatch)
        for idx in bad[:MAX_SHOWN]:
            idx = tuple(int(i) for i in idx)
            print(f"{name}{list(idx)}: expected {exp[idx]!r}, got {got[idx]!r}")
        if len(bad) > MAX_SHOWN:
            print(f"{name}: {len(bad)} mismatching elements in total")
        self.problems += len(bad)


def _kind(name):
    leaf = name.rsplit("/", 1)[-1]
    if leaf in ("count", "segment_count", "segment", "day_of_week", "hour"):
        return "exact"
    if leaf in ("mean_speed", "travel_time_index"):
        return "close"
    return "bitwise"                      # percentiles and free_flow_speed


def _compare_values(report, name, exp, got):
    if _kind(name) == "exact":
        report.elements(name, exp, got, got != exp)
        return
    got = got.astype(np.float64)
    exp_nan, got_nan = np.isnan(exp), np.isnan(got)
    if _kind(name) == "close":
        with np.errstate(invalid="ignore"):
            far = np.abs(got - exp) > 1e-12 * np.abs(exp)
        mismatch = (exp_nan != got_nan) | (~exp_nan & ~got_nan & far)
    else:
        # Bitwise so that -0.0 vs +0.0 and last-bit lerp differences show;
        # any NaN matches any NaN (C's 0/0 may carry the sign bit).
        same_bits = exp.view(np.uint64) == np.ascontiguousarray(got).view(np.uint64)
        mismatch = ~(same_bits | (exp_nan & got_nan))
    report.elements(name, exp, got, mismatch)


def _compare_attrs(report, group, attrs):
    for name in sorted(set(group.attrs) - set(attrs)):
        report.add(f"@{name}: unexpected attribute")
    for name, exp in attrs.items():
        if name not in group.attrs:
            report.add(f"@{name}: missing attribute")
            continue
        got = group.attrs[name]
        arr = np.asarray(got)
        if name == "timezone":
            if isinstance(got, bytes):
                got = got.decode("utf-8", "replace")
            if not isinstance(got, str) or got != exp:
                report.add(f"@timezone: expected {exp!r}, got {got!r}")
        elif name == "percentiles":
            if arr.dtype != F64 or arr.shape != exp.shape or \
                    not np.array_equal(arr, exp):
                report.add(f"@percentiles: expected {exp!r} float64, "
                           f"got {got!r} {arr.dtype}")
        elif arr.shape != () or arr.dtype.kind not in "iu" or int(arr) != exp:
            report.add(f"@{name}: expected integer {exp}, got {got!r} {arr.dtype}")


def _compare_dims(report, name, dset):
    """Every grid must carry its dimension scales, so xarray sees named dimensions."""
    names = {3: ("segment", "day_of_week", "hour"), 2: ("segment", "hour"),
             1: ("segment",)}[dset.ndim]
    if name in ("segment", "day_of_week", "hour"):
        if not h5py.h5ds.is_scale(dset.id):
            report.add(f"{name}: is not a dimension scale")
        return
    for axis, want in enumerate(names):
        got = [s.name for s in dset.dims[axis].values()]
        if got != ["/traffic/" + want]:
            report.add(f"{name}: dimension {axis} has scales {got}, expected /traffic/{want}")


def compare(path, data, attrs):
    """Compare OUTPUT.h5 with the reference; return the number of problems."""
    report = Report()
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        report.add(f"{path}: cannot open: {exc}")
        return report.problems
    with f:
        group = f.get("traffic")
        if not isinstance(group, h5py.Group):
            report.add("/traffic: missing group")
            return report.problems
        _compare_attrs(report, group, attrs)

        present = {}

        def collect(name, obj):
            present[name] = obj          # returning non-None would stop the walk
        group.visititems(collect)
        expected = set(data) | {n.rsplit("/", 1)[0] for n in data if "/" in n}
        for name in sorted(set(present) - expected):
            report.add(f"{name}: unexpected object in /traffic")
        for name in sorted(expected - set(present)):
            report.add(f"{name}: missing")

        for name in sorted(set(data) & set(present)):
            exp, dset = data[name], present[name]
            if not isinstance(dset, h5py.Dataset):
                report.add(f"{name}: is not a dataset")
                continue
            want = exp.dtype.newbyteorder("<") if exp.dtype.kind == "u" else F64
            if dset.dtype != want:
                report.add(f"{name}: dtype {dset.dtype.str}, expected {want.str}")
            if dset.shape != exp.shape:
                report.add(f"{name}: shape {dset.shape}, expected {exp.shape}")
                continue
            _compare_dims(report, name, dset)
            got = dset[()]
            if dset.dtype.kind not in "iuf":
                continue                  # already reported as a dtype problem
            _compare_values(report, name, exp, got)
    return report.problems


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("input", help="h5batch input HDF5 file")
    parser.add_argument("output", nargs="?",
                        help="h5batch output HDF5 file to check")
    parser.add_argument("--timezone", default="UTC", help="IANA zone (UTC)")
    parser.add_argument("--percentiles", type=parse_percentiles,
                        default=parse_percentiles("50,85,95"),
                        help="comma-separated list (50,85,95)")
    parser.add_argument("--max-speed", type=float, default=250.0,
                        help="largest valid speed in km/h (250)")
    parser.add_argument("--segments", type=int,
                        help="segment count S (default: n_segments attribute, "
                             "else max segment + 1)")
    parser.add_argument("--table", default="/observations",
                        help="table group (/observations)")
    parser.add_argument("--write-expected", metavar="PATH",
                        help="write the reference output to PATH")
    # Intermixed: with an optional OUTPUT, plain parse_args() would bind
    # OUTPUT to nothing when options sit between INPUT and OUTPUT.
    args = parser.parse_intermixed_args()
    if args.output is None and args.write_expected is None:
        parser.error("give OUTPUT and/or --write-expected")
    if args.segments is not None and args.segments < 0:
        parser.error("--segments must be >= 0")
    try:
        zoneinfo.ZoneInfo(args.timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        parser.error(f"unknown time zone {args.timezone!r}")

    try:
        inp = load_input(args.input, args.table, args.segments)
        data, attrs = compute_reference(inp, args.timezone, args.percentiles,
                                        args.max_speed)
    except (InputError, OSError) as exc:
        print(f"traffic_ref: ERROR: {exc}")
        return 2
    if args.write_expected:
        write_expected(args.write_expected, data, attrs)
    if args.output is None:
        print(f"traffic_ref: wrote {args.write_expected}")
        return 0
    problems = compare(args.output, data, attrs)
    if problems:
        print(f"traffic_ref: FAIL ({problems} problems)")
        return 1
    print(f"traffic_ref: OK ({attrs['rows_total']} rows, {inp['n_seg']} segments)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
