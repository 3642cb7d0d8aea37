"""Inputs of the bill kernel's tests: an aggregate-like table /aggregate with meter,
district, month and consumption_sum.

  --case hand    the hand-computed cases of tests/bill/suite.sh (tier boundaries, ties)
  --case random  many accounts and months, for the pandas reference and rank counts
  --case empty   no row at all
"""
import argparse

import h5py
import numpy as np

ap = argparse.ArgumentParser()
ap.add_argument("out")
ap.add_argument("--case", choices=["hand", "random", "empty"], required=True)
a = ap.parse_args()

if a.case == "hand":
    # one account per case; consumption values chosen for boundaries and ties
    cons = [0.0, 10.0, 10.001, 30.0, 45.5, 1.0, 2.0, 3.0, 1.0625, 1.1875, 0.5, 2.5, float("nan")]
    meter = np.arange(len(cons), dtype=np.int64) + 100
    district = np.array([1, 1, 1, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3], dtype=np.int64)
    month = np.full(len(cons), 202401, dtype=np.int64)
elif a.case == "empty":
    meter = district = month = np.zeros(0, dtype=np.int64)
    cons = np.zeros(0)
else:
    rng = np.random.default_rng(7)
    meters, months = 300, [202301, 202302, 202303, 202311, 202312, 202401, 202402]
    meter = np.repeat(np.arange(meters, dtype=np.int64) * 37 + 5000, len(months))
    district = (meter // 37) % 6
    month = np.tile(np.array(months, dtype=np.int64), meters)
    cons = np.round(rng.gamma(2.0, 9.0, meter.size), 4)
    cons[::97] = 10.0  # exactly on a boundary
    order = rng.permutation(meter.size)  # rows in no particular order
    meter, district, month, cons = meter[order], district[order], month[order], cons[order]

with h5py.File(a.out, "w") as f:
    g = f.create_group("aggregate")
    g["meter"] = meter
    g["district"] = district.astype(np.int32)
    g["month"] = month
    g["consumption_sum"] = np.asarray(cons, dtype=np.float64)
