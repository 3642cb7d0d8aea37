"""A short summary of the vitals and fitness jobs' outputs (make demo prints it).

  vitals_summary.py vitals PRESSURE.h5 HEART.h5 [--top K]
  vitals_summary.py fitness MONTHLY.h5 [--top K]
"""
import argparse

import h5py
import pandas as pd


def table(path):
    """A table-layout output of kernel aggregate as a DataFrame indexed by its keys."""
    with h5py.File(path, "r") as f:
        g = f["aggregate"]
        keys = [k.strip() for k in g.attrs["by"].split(",")]
        attrs = dict(g.attrs)
        df = pd.DataFrame({n: g[n][...] for n in g}).set_index(keys)
    return df, attrs


def vitals(pressure, heart, top):
    p, pa = table(pressure)
    h, ha = table(heart)
    n_pat = p.index.get_level_values("patient").nunique()
    weeks = sorted(p.index.get_level_values("week").unique())
    print(f"vitals: {n_pat} patients, ISO weeks {weeks[0]}..{weeks[-1]}, {pa['rows_total']} readings; "
          f"artefacts left out: systolic {pa['rows_invalid_systolic']}, diastolic {pa['rows_invalid_diastolic']}, "
          f"heart rate {ha['rows_invalid_heart_rate']}")
    share = p["systolic_above140"].sum() / p["systolic_count"].sum()
    share_d = p["diastolic_above90"].sum() / p["diastolic_count"].sum()
    share_h = h["heart_rate_above100"].sum() / h["heart_rate_count"].sum()
    print(f"readings above 140 systolic: {100 * share:.1f}%, above 90 diastolic: {100 * share_d:.1f}%, "
          f"heart rate above 100: {100 * share_h:.2f}%")
    worst = p.assign(frac=p["systolic_above140"] / p["systolic_count"]).sort_values("frac", ascending=False)
    print(f"patient-weeks with the largest share of readings above 140 mmHg systolic (top {top}):")
    print(worst[["systolic_count", "systolic_mean", "systolic_p95", "systolic_above140",
                 "diastolic_mean", "diastolic_above90"]].head(top).round(1).to_string())
    tachy = h.groupby("patient")["heart_rate_above100"].sum().sort_values(ascending=False)
    print("patients with the most readings above 100 bpm: "
          + ", ".join(f"{i} ({n})" for i, n in tachy.head(top).items()))


def fitness(monthly, top):
    m, a = table(monthly)
    km = m["distance_m_sum_mean"] / 1000
    print(f"fitness: {m.index.get_level_values('band').nunique()} bands, "
          f"{a['rows_total']} band-days; mean daily distance per month over all bands (km):")
    per_month = pd.DataFrame({"km_per_day": km.groupby("month").mean().round(2),
                              "band_days": m["distance_m_sum_count"].groupby("month").sum()})
    print(per_month.to_string())
    best = km.sort_values(ascending=False).head(top)
    print(f"most active band-months (top {top}, km per day): "
          + ", ".join(f"{b}/{mo} {v:.1f}" for (b, mo), v in best.items()))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("what", choices=["vitals", "fitness"])
    ap.add_argument("files", nargs="+")
    ap.add_argument("--top", type=int, default=5)
    a = ap.parse_args()
    if a.what == "vitals":
        vitals(*a.files, a.top)
    else:
        fitness(*a.files, a.top)


if __name__ == "__main__":
    main()
