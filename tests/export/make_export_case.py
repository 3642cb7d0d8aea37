#!/usr/bin/python3
"""A small HDF5 file, written with h5py, of what export must render that the kernels'
outputs do not all have: string labels as a dimension scale (with a comma, a quote, a
line break, UTF-8), calendar integers by units, epoch seconds across a DST change in a
group with a timezone attribute, NaN, infinities, extreme floats and uint64, a table of
fixed-length strings, and a group with nothing to export.

    make_export_case.py OUT.h5
"""
import sys

import h5py
import numpy as np

out = sys.argv[1]
with h5py.File(out, "w") as f:
    g = f.create_group("labels")
    g.attrs["timezone"] = "Europe/Berlin"
    st = g.create_dataset("station", data=["Zürich HB", "Bern, Bahnhof", 'say "hi"', "multi\nline"],
                          dtype=h5py.string_dtype())
    st.make_scale("station")
    day = g.create_dataset("day", data=np.array([20240330, 20240331], dtype=np.int64))
    day.attrs["units"] = "yyyymmdd"
    day.make_scale("day")
    temp = np.array([[0.1, np.nan], [1 / 3, -0.0], [1e-300, 1e22], [np.inf, -np.inf]])
    count = np.array([[0, 1], [2**64 - 1, 2**63], [7, 8], [9, 10]], dtype=np.uint64)
    # 2024-03-31 01:00 UTC is 03:00 CEST: the offset changes from +01:00 to +02:00
    t0 = 1711846800
    time = np.array([[t0 - 1, t0], [t0 - 3600, t0 + 3600], [0, -1], [1704067200, 1719792000]], dtype=np.int64)
    for name, data, units in [("temp", temp, "degC"), ("count", count, "1"),
                              ("time", time, "seconds since 1970-01-01 00:00:00")]:
        d = g.create_dataset(name, data=data)
        d.attrs["units"] = units
        d.dims[0].attach_scale(st)
        d.dims[1].attach_scale(day)
    note = g.create_dataset("note", data=["plain", "a, b", "", "ünï"], dtype=h5py.string_dtype())
    note.dims[0].attach_scale(st)
    g.create_dataset("other", data=np.arange(3.0))  # a dimension of its own: left out

    t = f.create_group("table")
    t.create_dataset("key", data=np.array([b"a", b"bb", b"c,d", b""], dtype="S4"))
    t.create_dataset("n", data=np.array([-5, 0, 2**62, 3], dtype=np.int64))
    t.create_dataset("x", data=np.array([1.5, np.nan, -2.25e-5, 123456789.125]))

    e = f.create_group("nothing")
    e.create_dataset("records", data=np.zeros(2, dtype=[("a", "i4"), ("b", "f8")]))
