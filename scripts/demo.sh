#!/usr/bin/env bash
# make demo: sample data (about 10^7 rows), the traffic job under mpirun, a summary.
set -euo pipefail
dir=${1:-demo}
np=${2:-2}
cd "$(dirname "$0")/.."
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
mkdir -p "$dir"
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
/usr/bin/python3 tests/traffic_summary.py "$dir/traffic-summary.h5" --top 5
echo
echo "output:  $(pwd)/$dir/traffic-summary.h5"
echo "status:  bin/h5batch status $dir/traffic.run"
