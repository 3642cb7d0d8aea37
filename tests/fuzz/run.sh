#!/usr/bin/env bash
# Runs each libFuzzer harness of bin/fuzz for SECONDS (default 60) from its committed seed
# corpus (tests/fuzz/corpus/NAME); new inputs go to $FUZZ_OUT/corpus/NAME, crashes to
# $FUZZ_OUT/NAME-crash-* (FUZZ_OUT: default build-fuzz). Prints each harness's executions;
# exits 1 when one fails.
#   tests/fuzz/run.sh [SECONDS] [NAME...]
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
secs=${1:-60}
shift $(($# > 0 ? 1 : 0))
names=("$@")
[ ${#names[@]} = 0 ] && names=(job query ckpt)
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:verify_asan_link_order=0:allocator_may_return_null=1
export LSAN_OPTIONS=suppressions=$ROOT/tests/fuzz/lsan.supp:print_suppressions=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
# Open MPI's components stay mapped (tests/lsan_keep_modules.c, as in make check's ASan
# pass), so that what they keep for the process's lifetime matches tests/lsan.supp
keep=${FUZZ_OUT:-$ROOT/build-fuzz}/lsan_keep_modules.so
mkdir -p "$(dirname "$keep")"
[ -f "$keep" ] || cc -shared -fPIC -o "$keep" "$ROOT/tests/lsan_keep_modules.c" || exit 1
export LD_PRELOAD=$keep
out_dir=${FUZZ_OUT:-$ROOT/build-fuzz}
status=0
for n in "${names[@]}"; do
    bin=$ROOT/bin/fuzz/fuzz_$n
    out=$out_dir/corpus/$n
    mkdir -p "$out"
    log=$out_dir/fuzz_$n.log
    # -rss_limit_mb bounds each harness (the machine is shared); -timeout catches a hang
    "$bin" -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
        -artifact_prefix="$out_dir/$n-" "$out" "$ROOT/tests/fuzz/corpus/$n" >"$log" 2>&1
    rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1)
    echo "fuzz_$n: ${execs:-?} executions in ${secs}s, ${cov:-cov: ?}, exit $rc"
    if [ $rc != 0 ]; then
        status=1
        grep -m3 -E 'ERROR|runtime error|SUMMARY' "$log"
    fi
done
exit $status
