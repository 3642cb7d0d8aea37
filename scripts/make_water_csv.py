"""Writes data/water-meters.csv, the worked example of `h5batch import` (README "Your own
CSV data", docs/import.md): a year of daily readings of 14 household water meters in
three districts, as a utility's export would have them: an ISO date, the meter number,
the cumulative register reading, the day's consumption (empty when the reading is
missing), the district (one name with a comma, one with a non-ASCII letter) and a free
text note. Deterministic (seeded); run from the repository root:
    python3 scripts/make_water_csv.py [data/water-meters.csv]"""
import csv
import datetime
import random
import sys

path = sys.argv[1] if len(sys.argv) > 1 else "data/water-meters.csv"
rng = random.Random(2024)
districts = ["Altstadt", "Süd", "Hafen, Nord"]
meters = [(100000 + 37 * i, districts[i % 3], rng.uniform(0.15, 0.6)) for i in range(14)]
notes = ["", "", "", "", "estimated", 'reading by "smart" meter', "leak suspected, checked"]
with open(path, "w", newline="") as f:
    w = csv.writer(f, lineterminator="\n")
    w.writerow(["date", "meter", "reading_m3", "consumption_m3", "district", "note"])
    for meter, district, mean in meters:
        reading = rng.uniform(100, 5000)
        day = datetime.date(2024, 1, 1)
        while day.year == 2024:
            use = max(0.0, rng.gauss(mean * (1.3 if day.month in (6, 7, 8) else 1.0), mean / 3))
            reading += use
            missing = rng.random() < 0.02
            w.writerow([day.isoformat(), meter, "" if missing else "%.3f" % reading,
                        "" if missing else "%.3f" % use, district, rng.choice(notes)])
            day += datetime.timedelta(days=1)
