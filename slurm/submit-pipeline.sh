#!/usr/bin/env bash
# Submits job files as a chain of Slurm jobs: each starts only when the one before
# completed successfully (--dependency=afterok), and each survives its time limit by
# checkpoint + requeue (slurm/h5batch.sbatch). Prints the job ids, first to last.
#
#   slurm/submit-pipeline.sh jobs/traffic.ini jobs/risk.ini
#   SBATCH_ARGS="--ntasks=4 --time=00:30:00" slurm/submit-pipeline.sh a.ini b.ini
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: slurm/submit-pipeline.sh JOB.ini [JOB.ini]..." >&2; exit 64; }
here=$(cd "$(dirname "$0")" && pwd)
prev=
for job in "$@"; do
    dep=()
    [ -n "$prev" ] && dep=(--dependency="afterok:$prev" --kill-on-invalid-dep=yes)
    # shellcheck disable=SC2086 # SBATCH_ARGS holds several options
    prev=$(sbatch --parsable ${SBATCH_ARGS:-} "${dep[@]}" --job-name="$(basename "$job" .ini)" \
        "$here/h5batch.sbatch" "$job")
    prev=${prev%%;*} # --parsable may add ";cluster"
    echo "$prev"
done
