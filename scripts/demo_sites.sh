#!/usr/bin/env bash
# make demo, the edge part (README "Edge sites and merge", docs/partial.md): one road
# network's observations cut into three road authorities' sites (north, east, south),
# each site's mini-batch run on its own with --partial (jobs/sites/SITE.ini), the
# partial states merged at the centre, the merge checked against one run over the whole
# network (identical bits), and the partials' sizes against the raw inputs'.
#   bash scripts/demo_sites.sh [DIR [RANKS]]      (make demo runs it with DIR = demo)
set -euo pipefail
dir=${1:-demo}
np=${2:-2}
cd "$(dirname "$0")/.."
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
s=$dir/sites
sites="north east south"
mkdir -p "$s"
if [ ! -f "$s/network.h5" ]; then
    echo "== generating $s/network.h5 (6M observations, 600 segments, half of 2024 in Europe/Berlin)"
    mpirun -n "$np" bin/h5batch gen traffic -o "$s/network.h5" --rows 6M --segments 600 --days 182 \
        --start 20240101 --timezone Europe/Berlin --events 4 -q
fi
if [ ! -f "$s/south.h5" ]; then
    echo "== cutting it into three sites by segment"
    # shellcheck disable=SC2086 # the site names
    /usr/bin/python3 scripts/split_sites.py "$s/network.h5" "$s" $sites
fi
for site in $sites; do
    echo "== site $site: mpirun -n $np bin/h5batch run jobs/sites/$site.ini --partial"
    mpirun -n "$np" bin/h5batch run "jobs/sites/$site.ini" --partial -q --set "traffic.input=$s/$site.h5" \
        --set "traffic.output=$s/$site.part.h5" --set "job.run_dir=$s/$site.run"
done
echo "== centre: mpirun -n $np bin/h5batch merge $s/{north,east,south}.part.h5 -o $s/centre.h5"
t0=$(date +%s.%N)
mpirun -n "$np" bin/h5batch merge "$s/north.part.h5" "$s/east.part.h5" "$s/south.part.h5" -o "$s/centre.h5" \
    --run-dir "$s/centre.run" --force -q
t1=$(date +%s.%N)
echo "== for comparison: one run over the whole network"
mpirun -n "$np" bin/h5batch run jobs/sites/north.ini -q --set "traffic.input=$s/network.h5" \
    --set "traffic.output=$s/network-summary.h5" --set "job.run_dir=$s/network.run"
if h5diff --exclude-path /provenance "$s/network-summary.h5" "$s/centre.h5" >/dev/null; then
    echo "the centre's merge and the one run over every site's data: identical (h5diff --exclude-path /provenance)"
else
    echo "the centre's merge DIFFERS from the one run over the whole network" >&2
    exit 1
fi
echo
printf '%-8s %14s %14s %8s\n' site "raw input (B)" "partial (B)" ratio
raw_all=0 part_all=0
for site in $sites; do
    raw=$(du -b "$s/$site.h5" | cut -f1)
    part=$(du -b "$s/$site.part.h5" | cut -f1)
    raw_all=$((raw_all + raw)) part_all=$((part_all + part))
    awk -v n="$site" -v r="$raw" -v p="$part" 'BEGIN { printf "%-8s %14d %14d %7.1f%%\n", n, r, p, 100 * p / r }'
done
awk -v r="$raw_all" -v p="$part_all" -v a="$t0" -v b="$t1" \
    'BEGIN { printf "%-8s %14d %14d %7.1f%%   (merge at the centre: %.2f s)\n", "all", r, p, 100 * p / r, b - a }'
echo
/usr/bin/python3 tests/traffic/traffic_summary.py "$s/centre.h5" --top 3
echo "outputs: $(cd "$s" && pwd)/centre.h5 (merged), $(cd "$s" && pwd)/SITE.part.h5 (the sites' partial states)"
