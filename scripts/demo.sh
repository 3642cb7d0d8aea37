#!/usr/bin/env bash
# make demo: sample data, the traffic, risk, index and water-billing jobs under mpirun,
# their summaries and two sample queries.
set -euo pipefail
dir=${1:-demo}
np=${2:-2}
cd "$(dirname "$0")/.."
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
mkdir -p "$dir"
out=$(cd "$dir" && pwd) # where the outputs are, for the closing lines
if [ ! -f "$dir/traffic.h5" ]; then
    echo "== generating $dir/traffic.h5 (10M observations, 2,000 segments, 2024 in Europe/Berlin)"
    mpirun -n "$np" bin/h5batch gen traffic -o "$dir/traffic.h5" --rows 10M --segments 2000 --days 366 \
        --start 20240101 --timezone Europe/Berlin --events 8
fi
echo "== running jobs/traffic.ini on $np ranks"
mpirun -n "$np" bin/h5batch run jobs/traffic.ini \
    --set "aggregate.input=$dir/traffic.h5" --set "aggregate.output=$dir/traffic-summary.h5" \
    --set "job.run_dir=$dir/traffic.run"
echo
/usr/bin/python3 tests/traffic/traffic_summary.py "$dir/traffic-summary.h5" --top 5

if [ ! -f "$dir/market.h5" ]; then
    echo
    echo "== generating $dir/market.h5 (200 assets x 1,500 days, 200 portfolios, 200k transactions)"
    mpirun -n "$np" bin/h5batch gen market -o "$dir/market.h5" --assets 200 --days 1500 --portfolios 200 \
        --transactions 200k --seed 3
fi
echo
echo "== running jobs/risk.ini on $np ranks"
mpirun -n "$np" bin/h5batch run jobs/risk.ini \
    --set "risk.input=$dir/market.h5" --set "risk.output=$dir/risk.h5" --set "job.run_dir=$dir/risk.run"
echo
/usr/bin/python3 tests/risk/risk_summary.py "$dir/risk.h5" --top 5
echo
echo "== running jobs/risk-from-transactions.ini on $np ranks (the book, then positions rebuilt from trades)"
mpirun -n "$np" bin/h5batch run jobs/risk-from-transactions.ini \
    --set "book.input=$dir/market.h5" --set "book.output=$dir/risk-book.h5" \
    --set "rebuilt.input=$dir/market.h5" --set "rebuilt.output=$dir/risk-rebuilt.h5" \
    --set "job.run_dir=$dir/risk-from-transactions.run"
/usr/bin/python3 tests/risk/risk_summary.py "$dir/risk-rebuilt.h5" --top 5
/usr/bin/python3 - "$dir/risk-book.h5" "$dir/risk-rebuilt.h5" <<'PYEOF'
import sys, h5py, numpy as np
book, rebuilt = (h5py.File(p, "r")["risk"] for p in sys.argv[1:])
same = all(np.array_equal(book[k][...], rebuilt[k][...]) for k in book)
print("reconciliation: reported exposures vs positions rebuilt from transactions:", "identical" if same else "DIFFERENT")
PYEOF

if [ ! -f "$dir/corpus.h5" ]; then
    echo
    echo "== generating $dir/corpus.h5 (200k documents, about 120 MB of text in several scripts)"
    mpirun -n "$np" bin/h5batch gen corpus -o "$dir/corpus.h5" --docs 200k
fi
echo
echo "== running jobs/index.ini on $np ranks"
mpirun -n "$np" bin/h5batch run jobs/index.ini --set "index.input=$dir/corpus.h5" \
    --set "index.output=$dir/index.h5" --set "job.run_dir=$dir/index.run"
echo "== bin/h5batch query $dir/index.h5 --top 5 kelmek vobro"
bin/h5batch query "$dir/index.h5" --top 5 kelmek vobro
echo "== bin/h5batch query $dir/index.h5 --top 5 '\"gifif bryd\"' grozi"
bin/h5batch query "$dir/index.h5" --top 5 '"gifif bryd"' grozi

if [ ! -f "$dir/meters.h5" ]; then
    echo
    echo "== generating $dir/meters.h5 (daily readings of 2,000 water meters in 8 districts, 2024-2025)"
    mpirun -n "$np" bin/h5batch gen meters -o "$dir/meters.h5" --meters 2000 --districts 8 --days 731 \
        --start 20240101
fi
echo
echo "== running jobs/water-billing.ini on $np ranks (monthly consumption per meter, then the bills)"
mpirun -n "$np" bin/h5batch run jobs/water-billing.ini \
    --set "monthly.input=$dir/meters.h5" --set "monthly.output=$dir/water-monthly.h5" \
    --set "bill.input=$dir/water-monthly.h5" --set "bill.output=$dir/water-bills.h5" \
    --set "job.run_dir=$dir/water-billing.run"
echo
/usr/bin/python3 tests/bill/bill_summary.py "$dir/water-bills.h5" --top 5

echo
echo "outputs: $out/traffic-summary.h5"
echo "         $out/risk.h5, $out/risk-book.h5, $out/risk-rebuilt.h5"
echo "         $out/index.h5"
echo "         $out/water-monthly.h5, $out/water-bills.h5"
echo "status:  bin/h5batch status $dir/traffic.run (and $dir/risk.run, $dir/risk-from-transactions.run)"

# vitals and fitness (kernel aggregate, generator `gen vitals`)
if [ ! -f "$dir/vitals.h5" ]; then
    echo
    echo "== generating $dir/vitals.h5 (2M readings of 500 patients over 8 weeks)"
    mpirun -n "$np" bin/h5batch gen vitals -o "$dir/vitals.h5" --rows 2M --devices 500 --days 56 --start 20240101
fi
echo
echo "== running jobs/vitals.ini on $np ranks"
mpirun -n "$np" bin/h5batch run jobs/vitals.ini --set "pressure.input=$dir/vitals.h5" \
    --set "pressure.output=$dir/vitals-pressure.h5" --set "heart.input=$dir/vitals.h5" \
    --set "heart.output=$dir/vitals-heart.h5" --set "job.run_dir=$dir/vitals.run"
/usr/bin/python3 tests/vitals/vitals_summary.py vitals "$dir/vitals-pressure.h5" "$dir/vitals-heart.h5" --top 5
if [ ! -f "$dir/bands.h5" ]; then
    echo
    echo "== generating $dir/bands.h5 (1M readings of 300 fitness bands over half a year)"
    mpirun -n "$np" bin/h5batch gen vitals --kind bands -o "$dir/bands.h5" --rows 1M --devices 300 --days 181 \
        --start 20240101 --seed 2
fi
echo
echo "== running jobs/fitness.ini on $np ranks (daily sums per band, then their monthly mean)"
mpirun -n "$np" bin/h5batch run jobs/fitness.ini --set "daily.input=$dir/bands.h5" \
    --set "daily.output=$dir/fitness-daily.h5" --set "monthly.input=$dir/fitness-daily.h5" \
    --set "monthly.output=$dir/fitness-monthly.h5" --set "job.run_dir=$dir/fitness.run"
/usr/bin/python3 tests/vitals/vitals_summary.py fitness "$dir/fitness-monthly.h5" --top 5
echo "outputs: $out/vitals-pressure.h5, $out/vitals-heart.h5, $out/fitness-monthly.h5"

# episodes (kernel episodes, generators `gen vitals` and `gen fleet`)
if [ ! -f "$dir/bedside.h5" ]; then
    echo
    echo "== generating $dir/bedside.h5 (2M bedside readings of 50 patients over a week, every ~15 s)"
    mpirun -n "$np" bin/h5batch gen vitals -o "$dir/bedside.h5" --rows 2M --devices 50 --days 7 --start 20240304 \
        --seed 4
fi
echo
echo "== running jobs/tachycardia.ini on $np ranks (heart rate above 100 bpm for at least 30 s)"
mpirun -n "$np" bin/h5batch run jobs/tachycardia.ini --set "tachycardia.input=$dir/bedside.h5" \
    --set "tachycardia.output=$dir/tachycardia.h5" --set "job.run_dir=$dir/tachycardia.run"
/usr/bin/python3 tests/episodes/episodes_summary.py "$dir/tachycardia.h5" --what tachycardia --top 5
if [ ! -f "$dir/fleet.h5" ]; then
    echo
    echo "== generating $dir/fleet.h5 (per-second speed of 100 vehicles over 3 days)"
    mpirun -n "$np" bin/h5batch gen fleet -o "$dir/fleet.h5" --vehicles 100 --days 3 --start 20240304
fi
echo
echo "== running jobs/braking.ini on $np ranks (deceleration beyond 3 m/s^2, per vehicle per day)"
mpirun -n "$np" bin/h5batch run jobs/braking.ini --set "braking.input=$dir/fleet.h5" \
    --set "braking.output=$dir/braking.h5" --set "job.run_dir=$dir/braking.run"
/usr/bin/python3 tests/episodes/episodes_summary.py "$dir/braking.h5" --what "harsh braking" --top 5
echo "outputs: $out/tachycardia.h5, $out/braking.h5"
# your own CSV (h5batch import, README "Your own CSV data"): the water meters of
# data/water-meters.csv imported, then summed per meter and month (jobs/water-import.ini)
echo
echo "== bin/h5batch import data/water-meters.csv -o $dir/water-meters.h5 --timezone Europe/Berlin"
mpirun -n "$np" bin/h5batch import data/water-meters.csv -o "$dir/water-meters.h5" --timezone Europe/Berlin --force
echo "== running jobs/water-import.ini on $np ranks (count, sum, mean, max per meter x month)"
mpirun -n "$np" bin/h5batch run jobs/water-import.ini --set "monthly.input=$dir/water-meters.h5" \
    --set "monthly.output=$dir/water-monthly-usage.h5" --set "districts.input=$dir/water-meters.h5" \
    --set "districts.output=$dir/water-districts.h5" --set "job.run_dir=$dir/water-import.run" --force
/usr/bin/python3 - "$dir/water-monthly-usage.h5" <<'PYEOF'
import sys, h5py, numpy as np
g = h5py.File(sys.argv[1], "r")["aggregate"]
s, months = g["consumption_m3_sum"][...], g["month"][...]
i = int(np.nanargmax(np.nansum(s, axis=1)))
print(f"meter {g['meter'][i]} used most: {np.nansum(s[i]):.1f} m3 in 2024; its highest month {months[np.nanargmax(s[i])]}")
PYEOF
echo "== bin/h5batch export $dir/water-monthly-usage.h5 --group /aggregate -o $dir/water-monthly-usage.csv (a tidy CSV for BI tools)"
bin/h5batch export "$dir/water-monthly-usage.h5" --group /aggregate -o "$dir/water-monthly-usage.csv" --force
head -3 "$dir/water-monthly-usage.csv"
echo "outputs: $out/water-meters.h5, $out/water-monthly-usage.h5, $out/water-districts.h5, $out/water-monthly-usage.csv"

# edge sites and a merge at the centre (README "Edge sites and merge", docs/partial.md)
echo
bash scripts/demo_sites.sh "$dir" "$np"
