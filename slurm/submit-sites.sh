#!/usr/bin/env bash
# Submits the sites-and-centre workflow (docs/partial.md): the sites' job files as one
# job array, each task running its job with --partial (slurm/h5batch-sites.sbatch), then
# the centre's merge of their partial states (slurm/h5batch-merge.sbatch), which starts
# only when every task of the array completed successfully
# (--dependency=afterok:ARRAY_ID; a failed site cancels it: --kill-on-invalid-dep).
# A site's partial is its job's output (the `output =` of its one step). Prints the
# array's job id, then the merge's.
#
#   slurm/submit-sites.sh demo/sites/centre.h5 jobs/sites/north.ini jobs/sites/east.ini jobs/sites/south.ini
#   SBATCH_ARGS="--time=00:30:00" MERGE_ARGS="--ntasks=4" slurm/submit-sites.sh OUT.h5 SITE.ini...
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: slurm/submit-sites.sh OUT.h5 SITE.ini..." >&2; exit 64; }
here=$(cd "$(dirname "$0")" && pwd)
out=$1
shift
list=${SITES_LIST:-$(dirname "$out")/sites.txt}
mkdir -p "$(dirname "$list")"
printf '%s\n' "$@" >"$list"
parts=()
for job in "$@"; do
    part=$(sed -n 's/^[[:space:]]*output[[:space:]]*=[[:space:]]*\([^;#]*[^;#[:space:]]\).*/\1/p' "$job" | head -1)
    [ -n "$part" ] || { echo "submit-sites: $job has no output = line" >&2; exit 78; }
    parts+=("$part")
done
# shellcheck disable=SC2086 # SBATCH_ARGS holds several options
array=$(sbatch --parsable ${SBATCH_ARGS:-} --array=0-$(($# - 1)) "$here/h5batch-sites.sbatch" "$list")
array=${array%%;*} # --parsable may add ";cluster"
echo "$array"
# shellcheck disable=SC2086 # MERGE_ARGS holds several options
merge=$(sbatch --parsable ${MERGE_ARGS:-} --dependency="afterok:$array" --kill-on-invalid-dep=yes \
    "$here/h5batch-merge.sbatch" -o "$out" --run-dir "${out%.h5}.run" "${parts[@]}")
echo "${merge%%;*}"
