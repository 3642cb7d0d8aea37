"""Independent reference of the bill kernel (docs/bill.md), from the contract: reads the
input table and the job's tariff, prices every bill with Python's exact rationals
(Fraction, round() is half to even) and sums districts with pandas groupby, then
compares every column of /bill and /bill/districts exactly.

usage: bill_ref.py JOB.ini STEP
"""
import configparser
import sys
from fractions import Fraction

import h5py
import numpy as np
import pandas as pd

ini, step = sys.argv[1], sys.argv[2]
cp = configparser.ConfigParser(inline_comment_prefixes=(";", "#"))
cp.read(ini)
s = cp["step " + step]
cols = dict(kv.split(":") for kv in s.get("columns", "").replace(" ", "").split(",") if kv)
name = lambda c: cols.get(c, c)
tiers = [(Fraction(t.split(":")[0]), Fraction(t.split(":")[1])) for t in s["tiers"].split(",")]
fixed = int(Fraction(s.get("fixed_charge", "0")) * 100)

with h5py.File(s["input"]) as f:
    g = f[s.get("table", "/aggregate")]
    # string accounts and districts (bytes in h5py) compare as text, sorted by their bytes
    txt = lambda a: np.array([x.decode() for x in a], dtype=object) if a.dtype.kind in "SO" else a
    # without a district column every account is in one district, and none is written
    nodist = name("district") not in g
    df = pd.DataFrame({c: txt(g[name(c)][:]) if not (c == "district" and nodist) else 0
                       for c in ["meter", "district", "month", "consumption"]})
df = df[df.consumption.notna()]
df["q"] = [round(Fraction(float(c)) * 1000) for c in df.consumption]  # exact, half to even
df = df.groupby(["meter", "month", "district"], as_index=False)["q"].sum().sort_values(["meter", "month"])


def price(q):
    q = Fraction(q, 1000)
    out = []
    for k, (lo, p) in enumerate(tiers):
        hi = tiers[k + 1][0] if k + 1 < len(tiers) else None
        amount = max(Fraction(0), (q if hi is None else min(q, hi)) - lo)
        out.append(round(amount * p * 100))  # cents, half to even
    return out


t = np.array([price(q) for q in df.q], dtype=np.int64).reshape(len(df), len(tiers))
for k in range(len(tiers)):
    df[f"tier_{k + 1}"] = t[:, k]
df["fixed_charge"] = fixed
df["total"] = t.sum(axis=1) + fixed
df["accounts"] = 1
dist = df.groupby(["district", "month"], as_index=False).sum(numeric_only=True)

with h5py.File(s["output"]) as f:
    b = f["bill"]
    assert b.attrs["scale"] == 100 and b.attrs["currency"] == s.get("currency", "EUR")
    assert ("district" in b) != nodist and ("district" in b["districts"]) != nodist
    keys = ["meter", "month"] + ([] if nodist else ["district"])
    for c in keys + ["fixed_charge", "total"] + [f"tier_{k + 1}" for k in range(len(tiers))]:
        assert b[c].dtype == np.int64 or (c in ("meter", "district") and b[c].dtype.kind == "S"), c
        assert list(txt(b[c][:])) == list(df[c].to_numpy()), (c, b[c][:20], df[c].to_numpy()[:20])
    assert np.array_equal(b["consumption_milli"][:], df.q.to_numpy())
    assert np.array_equal(b["consumption"][:], df.q.to_numpy() / 1000)
    d = b["districts"]
    for c in keys[1:] + ["accounts", "fixed_charge", "total"] + [f"tier_{k + 1}" for k in range(len(tiers))]:
        assert list(txt(d[c][:])) == list(dist[c].to_numpy()), (c, d[c][:], dist[c].to_numpy())
    assert np.array_equal(d["consumption_milli"][:], dist.q.to_numpy())
    assert d["total"][:].sum() == b["total"][:].sum()
print(f"bill reference: {len(df)} bills, {len(dist)} district-months equal")
