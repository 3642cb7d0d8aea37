"""A short summary of a bill output (docs/bill.md): the largest bills of the last month,
district totals per month, and the district-months whose demand exceeds the same month
of the year before.

usage: bill_summary.py BILLS.h5 [--top K]
"""
import argparse

import h5py
import pandas as pd

ap = argparse.ArgumentParser()
ap.add_argument("bills")
ap.add_argument("--top", type=int, default=5)
a = ap.parse_args()

with h5py.File(a.bills, "r") as f:
    b, cur, scale = f["bill"], f["bill"].attrs["currency"], int(f["bill"].attrs["scale"])
    bills = pd.DataFrame({k: b[k][:] for k in ("meter", "district", "month", "consumption", "total")})
    d = b["districts"]
    dist = pd.DataFrame({k: d[k][:] for k in ("district", "month", "accounts", "consumption", "total")})


def money(cents):
    return f"{cents // scale:,}.{cents % scale:02d} {cur}"


last = bills.month.max()
print(f"bills: {len(bills)} ({bills.meter.nunique()} accounts x {bills.month.nunique()} months), "
      f"billed in total {money(int(bills.total.sum()))}")
print(f"largest bills of {last}:")
for r in bills[bills.month == last].sort_values(["total", "meter"], ascending=[False, True]).head(a.top).itertuples():
    print(f"  meter {r.meter} (district {r.district}): {r.consumption:9.3f} m3  {money(int(r.total)):>14}")

print("district totals per month (EUR):")
pt = dist.pivot(index="month", columns="district", values="total").fillna(0).astype("int64")
print((pt // scale).tail(6).to_string())

dist["year"], dist["mon"] = dist.month // 100, dist.month % 100
prev = dist.set_index(["district", "year", "mon"]).consumption
up = [(r.district, r.month, r.consumption, prev[(r.district, r.year - 1, r.mon)])
      for r in dist.itertuples() if (r.district, r.year - 1, r.mon) in prev.index
      and r.consumption > prev[(r.district, r.year - 1, r.mon)]]
if dist.year.nunique() < 2:
    print("demand against the year before: the data span less than two years")
else:
    print(f"district-months whose demand exceeds the same month a year before: {len(up)}")
    for dd, m, c, p in up[: a.top]:
        print(f"  district {dd}, {m}: {c:,.1f} m3 against {p:,.1f} m3 (+{100 * (c / p - 1):.1f}%)")
