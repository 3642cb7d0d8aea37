#!/usr/bin/env bash
# The h5batch test suite (`make check`): unit tests; the traffic job against the
# independent numpy reference (tests/traffic/traffic_ref.py) on edge-case and generated data;
# bit-identical outputs at 1-4 ranks and 1-2 threads; bad input with its exit codes and
# nothing left behind; then the same correctness and bad-input tests under ASan+UBSan.
# Every MPI command runs under a timeout: a hang is a failure.
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY=/usr/bin/python3 # Debian's, which has h5py and numpy
HB=$ROOT/bin/h5batch
HB_ASAN=$ROOT/bin/h5batch-asan
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1 OMPI_MCA_btl_vader_single_copy_mechanism=none
export ASAN_OPTIONS=detect_leaks=0:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export H5BATCH_NO_COLOR=1
ONLY="$*"
W=$(mktemp -d /tmp/h5batch-test.XXXXXX)
trap 'rm -rf "$W"' EXIT
cd "$W" || exit 1
pass=0
fail=0
LIMIT=${H5BATCH_TEST_TIMEOUT:-180}

ok() { pass=$((pass + 1)); echo "ok - $1"; }
not_ok() {
    fail=$((fail + 1))
    echo "FAIL - $1"
    [ -f "$W/log" ] && sed 's/^/    | /' "$W/log" | tail -25
}
# check NAME CMD...: passes when CMD exits 0; its output goes to $W/log.
check() {
    local name=$1
    shift
    if "$@" >"$W/log" 2>&1; then ok "$name"; else not_ok "$name"; fi
}

# mpi N THREADS BIN ARGS...: h5batch under mpirun with a timeout (plain process at N=1).
mpi() {
    local n=$1 th=$2 bin=$3
    shift 3
    if [ "$n" = 1 ]; then
        OMP_NUM_THREADS=$th timeout -k 5 "$LIMIT" "$bin" "$@"
    else
        timeout -k 5 "$LIMIT" mpirun -n "$n" -x OMP_NUM_THREADS="$th" "$bin" "$@"
    fi
}

# A job file for one traffic step: job NAME INPUT OUTPUT TIMEZONE [extra lines]
job() {
    local name=$1 in=$2 out=$3 tz=$4
    shift 4
    {
        printf '[job]\nrun_dir = %s.run\n\n[step aggregate]\nkernel = traffic\n' "$name"
        printf 'input = %s\noutput = %s\ntimezone = %s\n' "$in" "$out" "$tz"
        for l in "$@"; do printf '%s\n' "$l"; done
    } >"$name.ini"
}

# expect_fail NAME CODE PATTERN OUTPUT CMD...: CMD must exit with CODE, print PATTERN once
# as an error line, and leave neither OUTPUT nor OUTPUT.tmp behind.
expect_fail() {
    local name=$1 code=$2 pattern=$3 out=$4
    shift 4
    "$@" >"$W/log" 2>&1
    local rc=$?
    local nerr
    nerr=$(grep -c '^h5batch: error:' "$W/log")
    if [ "$rc" != "$code" ]; then
        echo "exit status $rc, expected $code" >>"$W/log"
        not_ok "$name"
    elif ! grep -q -- "$pattern" "$W/log"; then
        echo "message does not match '$pattern'" >>"$W/log"
        not_ok "$name"
    elif [ "$nerr" != 1 ]; then
        echo "error printed $nerr times, expected once" >>"$W/log"
        not_ok "$name"
    elif [ -n "$out" ] && { [ -e "$out" ] || [ -e "$out.tmp" ]; }; then
        echo "left $out or $out.tmp behind" >>"$W/log"
        not_ok "$name"
    else
        ok "$name"
    fi
}

# ---------------------------------------------------------------- inputs
make_inputs() {
    for c in edge types tiny missing_column unequal string_column no_table; do
        $PY "$ROOT/tests/traffic/make_traffic_case.py" "$c.h5" --case "$c" >/dev/null || return 1
    done
    # the same edge cases with float64 speeds that no float32 holds exactly
    $PY - <<'PYEOF' || return 1
import h5py, numpy as np
with h5py.File("edge.h5", "r") as src, h5py.File("edge64.h5", "w") as dst:
    for name in ("observations", "calendar"):
        src.copy(name, dst)
    speed = src["observations/speed"][:].astype(np.float64)
    del dst["observations/speed"]
    dst["observations/speed"] = speed + np.where(np.isfinite(speed) & (speed > 0) & (speed < 250), 1e-9, 0.0)
PYEOF
    mpi 2 1 "$HB" gen traffic -o gen.h5 --rows 300k --segments 150 --days 60 --start 20240301 --events 4 \
        --invalid 0.01 -q >/dev/null
}

# ---------------------------------------------------------------- suites
suite_cli() {
    check "cli: --help exits 0" "$HB" --help
    check "cli: --version names the version" bash -c "'$HB' --version | grep -q '^h5batch [0-9]'"
    check "cli: kernels lists traffic" bash -c "'$HB' kernels | grep -q '^traffic'"
    check "cli: kernels traffic lists its options" bash -c "'$HB' kernels traffic | grep -q 'percentiles'"
    expect_fail "cli: unknown command is a usage error (64)" 64 "unknown command" "" "$HB" frobnicate
    expect_fail "cli: unknown run option is a usage error (64)" 64 "unknown option" "" "$HB" run x.ini --frob
    expect_fail "cli: gen without -o is a usage error (64)" 64 "-o FILE" "" "$HB" gen traffic
}

# The job against the numpy reference: ref CASE TZ RANKS [ref options]
suite_reference() {
    local bin=$1 tag=$2
    local cases=("edge Europe/Berlin" "edge64 Europe/Berlin" "types UTC" "types Europe/Amsterdam" "tiny UTC" "gen Europe/Berlin")
    for c in "${cases[@]}"; do
        set -- $c
        local in=$1 tz=$2 out="ref-$tag-$1-${2//\//_}.h5"
        rm -f "$out"
        job "ref-$tag-$in" "$in.h5" "$out" "$tz" "percentiles = 5, 50, 85, 95, 99.9"
        check "reference ($tag): $in in $tz equals numpy" \
            bash -c "$(declare -f mpi); LIMIT=$LIMIT; mpi 2 2 '$bin' run 'ref-$tag-$in.ini' -q --force &&
                     $PY '$ROOT/tests/traffic/traffic_ref.py' '$in.h5' '$out' --timezone '$tz' --percentiles 5,50,85,95,99.9"
    done
}

# Outputs at 1-4 ranks and 1-2 threads, several chunk rounds, compared bit for bit.
suite_ranks() {
    for in in edge edge64 gen; do
        local tz=Europe/Berlin base="rk-$in-1-1.h5"
        job "rk-$in" "$in.h5" "$base" "$tz"
        sed -i 's/^\[job\]$/[job]\nchunk_rows = 7k/' "rk-$in.ini"
        check "ranks: $in at 1 rank, 1 thread" mpi 1 1 "$HB" run "rk-$in.ini" -q
        for n in 1 2 3 4; do
            for th in 1 2; do
                [ "$n$th" = 11 ] && continue
                local out="rk-$in-$n-$th.h5"
                check "ranks: $in at $n ranks x $th threads is bit-identical" bash -c \
                    "$(declare -f mpi); LIMIT=$LIMIT; mpi $n $th '$HB' run rk-$in.ini -q \
                     --set aggregate.output=$out --set job.run_dir=rk-$in-$n-$th.run &&
                     h5diff --exclude-path /provenance $base $out"
            done
        done
    done
    check "ranks: default chunking equals 7k chunking" bash -c \
        "$(declare -f mpi); LIMIT=$LIMIT; mpi 3 2 '$HB' run rk-gen.ini -q --set job.chunk_rows=1M \
         --set aggregate.output=rk-gen-big.h5 --set job.run_dir=rk-big.run &&
         h5diff --exclude-path /provenance rk-gen-1-1.h5 rk-gen-big.h5"
    check "gen: same file at 1 and 3 ranks" bash -c \
        "$(declare -f mpi); LIMIT=$LIMIT; mpi 1 1 '$HB' gen traffic -o g1.h5 --rows 100k --segments 50 -q &&
         mpi 3 2 '$HB' gen traffic -o g3.h5 --rows 100k --segments 50 -q && h5diff g1.h5 g3.h5"
}

# Bad input: exit codes of the contract, one error line, nothing left behind.
suite_bad_input() {
    local bin=$1 tag=$2 n
    for n in 1 3; do
        local p="bad-$tag-$n"
        job "$p-missing" nowhere.h5 "$p.h5" UTC
        expect_fail "bad input ($tag, $n ranks): missing input file -> 66" 66 "nowhere.h5: no such file" "$p.h5" \
            mpi $n 1 "$bin" run "$p-missing.ini"
        job "$p-col" missing_column.h5 "$p.h5" UTC
        expect_fail "bad input ($tag, $n ranks): missing column -> 65" 65 "missing column 'speed'" "$p.h5" \
            mpi $n 1 "$bin" run "$p-col.ini"
        job "$p-uneq" unequal.h5 "$p.h5" UTC
        expect_fail "bad input ($tag, $n ranks): unequal column lengths -> 65" 65 "unequal lengths" "$p.h5" \
            mpi $n 1 "$bin" run "$p-uneq.ini"
        job "$p-str" string_column.h5 "$p.h5" UTC
        expect_fail "bad input ($tag, $n ranks): string column -> 65" 65 "column 'speed' has string type" "$p.h5" \
            mpi $n 1 "$bin" run "$p-str.ini"
        job "$p-notab" no_table.h5 "$p.h5" UTC
        expect_fail "bad input ($tag, $n ranks): no table -> 65" 65 "no such table" "$p.h5" \
            mpi $n 1 "$bin" run "$p-notab.ini"
        job "$p-tz" tiny.h5 "$p.h5" Mars/Olympus_Mons
        expect_fail "bad input ($tag, $n ranks): unknown time zone -> 78 with its line" 78 \
            "$p-tz.ini:8: .*unknown time zone 'Mars/Olympus_Mons'" "$p.h5" mpi $n 1 "$bin" run "$p-tz.ini"
        job "$p-key" tiny.h5 "$p.h5" UTC "percentile = 50"
        expect_fail "bad input ($tag, $n ranks): unknown key -> 78 with line and suggestion" 78 \
            "$p-key.ini:9: unknown key 'percentile'.*did you mean 'percentiles'" "$p.h5" mpi $n 1 "$bin" run "$p-key.ini"
        printf '[job]\nthreads = 1\n[step a]\nkernel = traffic\nthis line is wrong\n' >"$p-syntax.ini"
        expect_fail "bad input ($tag, $n ranks): malformed job file -> 78 with line" 78 "$p-syntax.ini:5: syntax error" "" \
            mpi $n 1 "$bin" run "$p-syntax.ini"
        job "$p-dir" tiny.h5 "no/such/dir/out.h5" UTC
        expect_fail "bad input ($tag, $n ranks): missing output folder -> 73" 73 "does not exist" "no/such/dir/out.h5" \
            mpi $n 1 "$bin" run "$p-dir.ini"
        job "$p-ro" tiny.h5 "/proc/h5batch-test.h5" UTC
        expect_fail "bad input ($tag, $n ranks): unwritable output folder -> 73" 73 "h5batch-test.h5" "" \
            mpi $n 1 "$bin" run "$p-ro.ini"
        echo "precious data" >"$p-existing.h5"
        job "$p-exists" tiny.h5 "$p-existing.h5" UTC
        "$bin" run "$p-exists.ini" >"$W/log" 2>&1
        local rc=$?
        if [ $rc = 73 ] && [ "$(cat "$p-existing.h5")" = "precious data" ] && [ ! -e "$p-existing.h5.tmp" ] &&
            grep -q "use --force" "$W/log"; then
            ok "bad input ($tag, $n ranks): existing unrelated output without --force -> 73, file untouched"
        else
            echo "exit $rc" >>"$W/log"
            not_ok "bad input ($tag, $n ranks): existing unrelated output without --force -> 73, file untouched"
        fi
        rm -rf ./*.run
    done
    expect_fail "bad input ($tag): undefined \${VAR} -> 78" 78 "H5BATCH_UNDEFINED_VAR is not set" "" \
        bash -c "printf '[job]\n[step a]\nkernel = traffic\ninput = \${H5BATCH_UNDEFINED_VAR}/x.h5\noutput = o.h5\n' >var.ini && '$bin' run var.ini"
    expect_fail "bad input ($tag): out-of-range option -> 78" 78 "percentiles = 120 is out of range" "" \
        bash -c "printf '[job]\n[step a]\nkernel = traffic\ninput = tiny.h5\noutput = o.h5\npercentiles = 50, 120\n' >rng.ini && '$bin' run rng.ini"
}

# Re-running a finished job skips its step; --force recomputes; status and lock.
suite_run_dir() {
    job again tiny.h5 again.h5 UTC
    check "run: first run" "$HB" run again.ini -q
    local before
    before=$(stat -c %i:%Y again.h5)
    check "run: a complete output of the same job is skipped" bash -c \
        "'$HB' run again.ini 2>&1 | grep -q 'already complete' && [ \"\$(stat -c %i:%Y again.h5)\" = '$before' ]"
    check "run: --force recomputes the step" bash -c \
        "'$HB' run again.ini --force -q && [ \"\$(stat -c %i again.h5)\" != '${before%%:*}' ]"
    check "status: shows the completed job" bash -c "'$HB' status again.run | grep -q 'state *complete'"
    check "status --json has the contract's fields" bash -c "'$HB' status again.run --json | $PY -c '
import json, sys
s = json.load(sys.stdin)
need = \"job state step steps_total chunks_done chunks_total rows_done rate_rows_per_s eta_s ranks started_at updated_at last_checkpoint error\".split()
missing = [k for k in need if k not in s]
assert not missing, missing
assert s[\"state\"] == \"complete\" and s[\"chunks_done\"] == s[\"chunks_total\"] and s[\"rows_done\"] == 18, s
'"
    check "run: a changed option is not taken as complete (73 without --force)" bash -c \
        "'$HB' run again.ini --set aggregate.max_speed=100 -q; [ \$? = 73 ]"
    expect_fail "status: not a run directory -> 66" 66 "no status" "" "$HB" status nowhere.run
    check "lock: a second run on a busy run directory is refused (73)" bash -c \
        "flock again.run/lock sleep 5 & sleep 0.5; '$HB' run again.ini --force -q; rc=\$?; wait; [ \$rc = 73 ]"
}

# The README's pandas snippet must work on a real output.
suite_readme() {
    $PY - "$ROOT/README.md" >snippet.py <<'PYEOF'
import re, sys
text = open(sys.argv[1]).read()
block = text.split("<!-- snippet: readme-pandas", 1)[1]
print(re.search(r"```python\n(.*?)```", block, re.S).group(1))
PYEOF
    sed -i 's#demo/traffic-summary.h5#rk-gen-1-1.h5#' snippet.py
    check "README: the h5py/pandas snippet runs" $PY snippet.py
}

# Memory errors valgrind sees in our code (Open MPI's run-time noise is suppressed).
suite_valgrind() {
    if ! command -v valgrind >/dev/null; then
        echo "skip - valgrind is not installed"
        return
    fi
    local vg="valgrind --error-exitcode=9 -q --suppressions=/usr/share/openmpi/openmpi-valgrind.supp"
    vg="$vg --suppressions=$ROOT/tests/valgrind.supp"
    job vg edge.h5 vg-1.h5 Europe/Berlin
    sed -i 's/^\[job\]$/[job]\nchunk_rows = 50k/' vg.ini
    check "valgrind: traffic job at 1 rank" timeout -k 5 "$LIMIT" $vg "$HB" run vg.ini -q
    check "valgrind: traffic job at 2 ranks x 2 threads" timeout -k 5 "$LIMIT" mpirun -n 2 -x OMP_NUM_THREADS=2 \
        $vg "$HB" run vg.ini -q --set aggregate.output=vg-2.h5 --set job.run_dir=vg2.run
    check "valgrind: gen traffic at 2 ranks" timeout -k 5 "$LIMIT" mpirun -n 2 $vg "$HB" gen traffic -o vg-gen.h5 \
        --rows 50k --segments 20 -q
    job vgbad unequal.h5 vg-bad.h5 UTC
    check "valgrind: a bad input at 2 ranks" bash -c "timeout -k 5 $LIMIT mpirun -n 2 $vg '$HB' run vgbad.ini -q; [ \$? = 65 ]"
}

suite_unit() {
    local bin=$1 tag=$2
    check "unit tests ($tag)" "$bin"
}

. "$ROOT/tests/faults.sh"
. "$ROOT/tests/slurm.sh"
. "$ROOT/tests/bench.sh"

# Each kernel's own suites live in tests/KERNEL/suite.sh (and tests/suite_*.sh): sourcing one defines functions
# taking (BIN TAG) and adds their names to KERNEL_SUITES; they run plain and under ASan.
KERNEL_SUITES=()
for f in "$ROOT"/tests/*/suite.sh "$ROOT"/tests/suite_*.sh; do
    [ -f "$f" ] && . "$f"
done

echo "# h5batch test suite in $W"
if ! make_inputs >"$W/log" 2>&1; then
    not_ok "making the test inputs"
    echo "$pass passed, $fail failed"
    exit 1
fi
# `tests/run_tests.sh [SUITE...]` runs only the named suites (unit cli reference ranks
# bad_input run_dir readme faults slurm valgrind kernels bench asan); no argument runs them all.
# slurm needs the outputs of faults.
want() { [ $# -gt 0 ] && [ -z "$ONLY" ] || [[ " $ONLY " == *" $1 "* ]]; }
want unit && suite_unit "$ROOT/bin/unit_tests" plain
want cli && suite_cli
want reference && suite_reference "$HB" plain
want ranks && suite_ranks
want bad_input && suite_bad_input "$HB" plain
want run_dir && suite_run_dir
want readme && suite_readme
want faults && suite_faults
want slurm && suite_slurm
want valgrind && suite_valgrind
if want kernels; then
    for suite in "${KERNEL_SUITES[@]}"; do "$suite" "$HB" plain; done
fi
want bench && suite_bench
if want asan; then
    if [ -x "$HB_ASAN" ] && [ -x "$ROOT/bin/unit_tests-asan" ]; then
        suite_unit "$ROOT/bin/unit_tests-asan" asan
        suite_reference "$HB_ASAN" asan
        suite_bad_input "$HB_ASAN" asan
        for suite in "${KERNEL_SUITES[@]}"; do "$suite" "$HB_ASAN" asan; done
    else
        not_ok "sanitizer build missing (make asan)"
    fi
fi
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
