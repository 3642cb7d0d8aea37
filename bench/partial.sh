#!/usr/bin/env bash
# Partial states (part of make bench; bench/run.sh runs it; docs/partial.md): the size of
# a site's partial state against its raw input's (du -b) for traffic and bill, and the
# time of a merge of PARTS partials (the traffic input cut by rows into PARTS sites, each
# run --partial) against one run over all the data, at 1 and 2 ranks; every merge's
# output must be the one run's, bit for bit (h5diff --exclude-path /provenance), else the
# record says agrees = false and make bench fails. Records go to results.jsonl.
#   PARTS=20 bash bench/partial.sh
set -euo pipefail
KERNEL=partial
source "$(dirname "$0")/lib.sh"
ROWS=${ROWS:-100M}
SEGMENTS=${SEGMENTS:-2000}
METERS=${METERS:-1M}
RANKS=${RANKS:-1 2}
if [ "${SCALE:-}" = tiny ]; then PARTS=${PARTS:-4}; else PARTS=${PARTS:-100}; fi
data=$BENCH_DATA
d=$data/partial
mkdir -p "$d"

# seconds CMD...: runs CMD (quiet), prints its wall seconds
seconds() {
    local t0 t1
    t0=$(date +%s.%N)
    "$@" >"$d/last.log" 2>&1 || { echo "bench/partial: failed: $*" >&2; tail -5 "$d/last.log" >&2; return 1; }
    t1=$(date +%s.%N)
    awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f\n", b - a }'
}
# median_seconds CMD...: seconds of CMD, the median of REPEAT runs
median_seconds() {
    local i runs=()
    for ((i = 0; i < REPEAT; i++)); do runs+=("$(seconds "$@")") || return 1; done
    printf '%s\n' "${runs[@]}" | sort -n | awk '{ w[NR] = $1 } END { print w[int((NR + 1) / 2)] }'
}
bytes() { du -b "$1" | cut -f1; }

in=$data/traffic-$ROWS-$SEGMENTS.h5 # bench/traffic.sh's input
if [ ! -f "$in" ]; then
    echo "== generating $in" >&2
    mpirun -n 2 "$HB" gen traffic -o "$in.tmp" --rows "$ROWS" --segments "$SEGMENTS" -q --force
    mv "$in.tmp" "$in"
fi
job() { # job NAME INPUT OUTPUT KERNEL [LINE]...: a one-step job file of step s
    local name=$1 input=$2 output=$3 kernel=$4
    shift 4
    printf '[job]\nname = %s\nrun_dir = %s.run\nthreads = 1\n[step s]\nkernel = %s\ninput = %s\noutput = %s\n' \
        "$name" "$d/$name" "$kernel" "$input" "$output" >"$d/$name.ini"
    printf '%s\n' "$@" >>"$d/$name.ini"
}

# --- traffic: the whole input as one site, then PARTS sites and their merge
job traffic "$in" "$d/traffic-one.h5" traffic "timezone = Europe/Berlin"
echo "== partial: traffic, $ROWS rows, $SEGMENTS segments: one run and one partial at 2 ranks" >&2
mpirun -n 2 "$HB" run "$d/traffic.ini" -q --force --fresh
mpirun -n 2 "$HB" run "$d/traffic.ini" -q --force --fresh --partial --set "s.output=$d/traffic-one.part.h5"
raw=$(bytes "$in") part=$(bytes "$d/traffic-one.part.h5")
emit kernel=partial what=partial_size of=traffic rows="$ROWS" segments="$SEGMENTS" raw_bytes="$raw" partial_bytes="$part"
echo "   traffic partial: $part bytes for $raw raw ($(awk -v a="$part" -v b="$raw" 'BEGIN { printf "%.1f%%", 100 * a / b }'))" >&2

if [ ! -f "$d/site-$PARTS-$((PARTS - 1)).part.h5" ]; then
    echo "== partial: cutting the traffic input into $PARTS sites, each run --partial" >&2
    rm -f "$d"/site-"$PARTS"-*.h5
    rows=$(h5ls "$in/observations/time" | sed -E 's/.*\{([0-9]+).*/\1/')
    cuts=$(awk -v n="$rows" -v k="$PARTS" 'BEGIN { for (i = 0; i < k; i++) printf "%s%d", i ? "," : "", int(n * i / k) }')
    /usr/bin/python3 tests/partial/split.py "$in" /observations "$cuts" "$d/site-$PARTS" >/dev/null
    for ((i = 0; i < PARTS; i++)); do
        "$HB" run "$d/traffic.ini" -q --fresh --partial --set "s.input=$d/site-$PARTS-$i.h5" \
            --set "s.output=$d/site-$PARTS-$i.part.h5" --set "job.run_dir=$d/site.run"
        rm -f "$d/site-$PARTS-$i.h5" # the sites' raw copies are the input's bytes again
    done
fi
parts=()
for ((i = 0; i < PARTS; i++)); do parts+=("$d/site-$PARTS-$i.part.h5"); done
sum=$(du -cb "${parts[@]}" | tail -1 | cut -f1)
emit kernel=partial what=partial_size of="traffic in $PARTS sites" rows="$ROWS" segments="$SEGMENTS" raw_bytes="$raw" \
    partial_bytes="$sum"
for n in $RANKS; do
    echo "== partial: merge of $PARTS traffic partials at $n rank(s) vs one run" >&2
    run_s=$(median_seconds mpirun -n "$n" --bind-to none -x OMP_NUM_THREADS=1 "$HB" run "$d/traffic.ini" -q --force --fresh \
        --set "s.output=$d/traffic-run-$n.h5")
    merge_s=$(median_seconds mpirun -n "$n" --bind-to none -x OMP_NUM_THREADS=1 "$HB" merge "${parts[@]}" \
        -o "$d/traffic-merge-$n.h5" --run-dir "$d/merge.run" --force --fresh -q)
    agrees=false
    h5diff -q --exclude-path /provenance "$d/traffic-run-$n.h5" "$d/traffic-merge-$n.h5" && agrees=true
    emit kernel=partial tool="h5batch merge" what=merge of=traffic config="$PARTS partials, $n rank$([ "$n" = 1 ] || echo s)" \
        cores="$n" parts="$PARTS" rows="$ROWS" merge_s="$merge_s" run_s="$run_s" agrees="$agrees"
    echo "   $n rank(s): merge ${merge_s}s, one run ${run_s}s, identical: $agrees" >&2
done

# --- bill: the monthly table of METERS meters (aggregate), billed as one site
meters=$data/meters-$METERS.h5
if [ ! -f "$meters" ]; then
    echo "== generating $meters" >&2
    mpirun -n 2 "$HB" gen meters -o "$meters.tmp" --meters "$METERS" --days 365 --start 20240101 -q --force
    mv "$meters.tmp" "$meters"
fi
job monthly "$meters" "$d/monthly.h5" aggregate "table = /table" "by = meter, district, month" "time = time" \
    "timezone = Europe/Berlin" "values = consumption" "valid = consumption:0:1e6" "stats = count, sum" "layout = table"
job bill "$d/monthly.h5" "$d/bill-one.part.h5" bill "table = /aggregate" "columns = consumption:consumption_sum" \
    "tiers = 0:1.20, 10:1.80, 30:2.50" "fixed_charge = 8.50"
echo "== partial: bill, $METERS meters: the monthly table, then its bills as a partial" >&2
mpirun -n 2 "$HB" run "$d/monthly.ini" -q --force --fresh
mpirun -n 2 "$HB" run "$d/bill.ini" -q --force --fresh --partial
raw=$(bytes "$d/monthly.h5") part=$(bytes "$d/bill-one.part.h5")
emit kernel=partial what=partial_size of=bill meters="$METERS" raw_bytes="$raw" partial_bytes="$part" \
    readings_bytes="$(bytes "$meters")"
echo "   bill partial: $part bytes for a monthly table of $raw ($(bytes "$meters") of daily readings)" >&2
