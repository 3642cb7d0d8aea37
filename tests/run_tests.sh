#!/usr/bin/env bash
# The h5batch test suite (`make check`). Each folder tests/NAME/ with a suite.sh is a
# suite: tests/unit (the C unit tests), tests/driver (command line, run directory),
# and one folder per kernel (tests/traffic, tests/risk, tests/index: each with its suite,
# its independent Python reference and its case generator). faults.sh (checkpoints,
# signals, fault injection), slurm.sh (a real Slurm cluster, as root) and bench.sh
# (make bench at SCALE=tiny) are suites too.
#
# A suite's tests/NAME/suite.sh defines suite_NAME BIN TAG, called once per pass: TAG
# plain with BIN bin/h5batch, asan with bin/h5batch-asan (ASan, UBSan, LeakSanitizer),
# valgrind with BIN a wrapper that runs bin/h5batch under valgrind; the suite runs what
# it has for each pass. A new kernel's tests are one new folder, tests/NAME/ with suite.sh
# (suite_NAME), its reference and its cases; nothing else changes. Files of the older
# convention, tests/suite_*.sh, which define functions taking (BIN TAG) and add their
# names to KERNEL_SUITES, are suites as well (named after the file), run in the plain
# and the asan pass.
#
#   tests/run_tests.sh [WORD...]   (or make check SUITES="WORD...")
# runs the suites named (unit driver traffic risk index faults slurm bench ..., or
# `kernels` for every kernel's suite) in the passes named (plain asan valgrind); no
# suite named means all suites, no pass named all passes: `unit traffic` runs both in
# every pass, `asan` every suite's ASan pass, `risk plain` the risk suite alone. The old
# harness's names still work: reference, ranks, bad_input run traffic; cli, run_dir,
# readme run driver. A suite's lines are followed by `# SUITE (PASS): N s`. Suites run
# side by side (H5BATCH_TEST_JOBS at a time, default 3), each in its own folder with all
# its passes; faults, slurm, bench and multihost run alone after them.
# Every MPI command runs under a timeout: a hang is a failure.
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY=/usr/bin/python3 # Debian's, which has h5py and numpy
HB=$ROOT/bin/h5batch
HB_ASAN=$ROOT/bin/h5batch-asan
LIMIT=${H5BATCH_TEST_TIMEOUT:-180}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1 OMPI_MCA_btl_vader_single_copy_mechanism=none
# LeakSanitizer is on; tests/lsan.supp names the libraries whose own allocations at exit
# are not h5batch's to free. The slow unwinder follows stacks through libraries built
# without frame pointers, so that a library's allocation is recognised as its own; the
# ASan pass preloads tests/lsan_keep_modules.c, so that Open MPI's components stay mapped.
# ASan does not intercept __tls_get_addr: with it, LeakSanitizer's tracer read a dynamic
# TLS block of a garbage range ("DTLS 12 at 0x3bc5-0x400004cc7") and died at exit
# ("Tracer caught signal 11"), in every run of a test at times and under load in many.
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:fast_unwind_on_malloc=0:malloc_context_size=40:verify_asan_link_order=0:intercept_tls_get_addr=0
export LSAN_OPTIONS=suppressions=$ROOT/tests/lsan.supp:print_suppressions=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export H5BATCH_NO_COLOR=1
# h5diff that fails where objects are not comparable (tests/bin/h5diff says why)
export PATH=$ROOT/tests/bin:$PATH
W=$(mktemp -d /tmp/h5batch-test.XXXXXX)
trap 'rm -rf "$W"' EXIT
cd "$W" || exit 1
export ROOT PY HB LIMIT W

. "$ROOT/tests/lib.sh"

# ---------------------------------------------------------------- the suites
# SUITE_FN[name]: the function to call with (BIN TAG); SUITE_PASSES[name]: its passes.
declare -A SUITE_FN SUITE_PASSES
SUITE_ORDER=()
register() {
    SUITE_FN[$1]=$2
    SUITE_PASSES[$1]=$3
    SUITE_ORDER+=("$1")
}

# the unit tests first, then the driver, then the kernels' folders in name order
for d in unit driver; do
    if [ -f "$ROOT/tests/$d/suite.sh" ]; then
        . "$ROOT/tests/$d/suite.sh"
        register "$d" "suite_$d" "plain asan valgrind"
    fi
done
KERNELS=()
for f in "$ROOT"/tests/*/suite.sh; do
    d=$(basename "$(dirname "$f")")
    [ "$d" = unit ] || [ "$d" = driver ] && continue
    . "$f"
    register "$d" "suite_$d" "plain asan valgrind"
    KERNELS+=("$d")
done

# the older convention: each file's additions to KERNEL_SUITES, run plain and under ASan
# on the traffic inputs, which the old harness made first (make_inputs, their old name)
make_inputs() { traffic_inputs; }
KERNEL_SUITES=()
for f in "$ROOT"/tests/suite_*.sh; do
    [ -f "$f" ] || continue
    n0=${#KERNEL_SUITES[@]}
    . "$f"
    d=$(basename "$f" .sh)
    d=${d#suite_}
    eval "legacy_$d() {
        local s
        if ! traffic_inputs >\"\$W/log\" 2>&1; then not_ok \"$d: making the traffic inputs\"; return; fi
        for s in ${KERNEL_SUITES[*]:$n0}; do \"\$s\" \"\$@\"; done
    }"
    register "$d" "legacy_$d" "plain asan"
    KERNELS+=("$d")
done

# checkpoints and faults, Slurm, the benchmark harness: plain pass only, on the traffic
# inputs (and the kernels' suites' helpers: fault_suite is faults.sh's)
. "$ROOT/tests/faults.sh"
. "$ROOT/tests/slurm.sh"
. "$ROOT/tests/bench.sh"
for d in faults slurm bench; do
    eval "root_$d() {
        if ! traffic_inputs >\"\$W/log\" 2>&1; then not_ok \"$d: making the traffic inputs\"; return; fi
        suite_$d
    }"
    register "$d" "root_$d" plain
done

# ---------------------------------------------------------------- what to run
PASSES=()
WANT=()
WORDS=("$@")
[ $# = 0 ] && WORDS=(${SUITES:-})
for w in "${WORDS[@]}"; do
    case $w in # the old harness's names of what are now parts of the traffic and driver suites
    reference | ranks | bad_input) w=traffic ;;
    cli | run_dir | readme) w=driver ;;
    esac
    case $w in
    plain | asan | valgrind) [[ " ${PASSES[*]} " == *" $w "* ]] || PASSES+=("$w") ;;
    kernels) WANT+=("${KERNELS[@]}") ;;
    *)
        if [ -z "${SUITE_FN[$w]:-}" ]; then
            echo "run_tests.sh: no suite '$w'; the suites are: ${SUITE_ORDER[*]} (or kernels), the passes: plain asan valgrind" >&2
            exit 2
        fi
        WANT+=("$w")
        ;;
    esac
done
[ ${#PASSES[@]} = 0 ] && PASSES=(plain asan valgrind)
[ ${#WANT[@]} = 0 ] && WANT=("${SUITE_ORDER[@]}")
wanted() { [[ " ${WANT[*]} " == *" $1 "* ]]; }

# The valgrind pass runs h5batch through $VG, which runs $W/valgrind (Open MPI's run-time
# noise suppressed, nothing of h5batch's own); memory errors make them exit 9.
VG=$W/h5batch-valgrind
cat >"$W/valgrind" <<EOF
#!/bin/sh
exec valgrind --error-exitcode=9 -q --suppressions=/usr/share/openmpi/openmpi-valgrind.supp \\
    --suppressions="$ROOT/tests/valgrind.supp" "\$@"
EOF
printf '#!/bin/sh\nexec "%s" "%s" "$@"\n' "$W/valgrind" "$HB" >"$VG"
chmod +x "$W/valgrind" "$VG"
export VALGRIND=$W/valgrind # the valgrind command, for suites that run other programs under it

# What each pass runs h5batch as; a pass this machine cannot run is said once and left out.
declare -A PASS_BIN
for ps in "${PASSES[@]}"; do
    case $ps in
    plain) PASS_BIN[$ps]=$HB ;;
    asan)
        if [ ! -x "$HB_ASAN" ] || [ ! -x "$ROOT/bin/unit_tests-asan" ]; then
            not_ok "sanitizer build missing (make asan)"
        elif ! cc -shared -fPIC -o "$W/lsan_keep_modules.so" "$ROOT/tests/lsan_keep_modules.c" >"$W/log" 2>&1; then
            not_ok "building tests/lsan_keep_modules.c for the ASan pass"
        else
            PASS_BIN[$ps]=$HB_ASAN
        fi
        ;;
    valgrind)
        if command -v valgrind >/dev/null; then PASS_BIN[$ps]=$VG; else skip "valgrind" "valgrind is not installed"; fi
        ;;
    esac
done

# run_suite SUITE: its passes in order (plain, asan, valgrind), in a folder of its own
# ($TOP/SUITE, its $W), so that suites run side by side without sharing files; its
# counts go to $TOP/SUITE.count.
TOP=$W
run_suite() {
    local s=$1 ps t0
    W=$TOP/$s
    export W
    mkdir -p "$W" && cd "$W" || exit 1
    pass=0 fail=0
    for ps in "${PASSES[@]}"; do
        [[ " ${SUITE_PASSES[$s]} " == *" $ps "* ]] && [ -n "${PASS_BIN[$ps]:-}" ] || continue
        t0=$SECONDS
        if [ "$ps" = asan ]; then
            LD_PRELOAD=$TOP/lsan_keep_modules.so "${SUITE_FN[$s]}" "${PASS_BIN[$ps]}" "$ps"
        else
            "${SUITE_FN[$s]}" "${PASS_BIN[$ps]}" "$ps"
        fi
        echo "# $s ($ps): $((SECONDS - t0)) s"
    done
    echo "$pass $fail" >"$TOP/$s.count"
}

# The suites run H5BATCH_TEST_JOBS at a time (default 3: on 2 cores most of a test's time
# is MPI start-up, Python and waiting), each one's lines printed whole when it ends; the
# longest start first. faults, slurm and bench run after them, one at a time: they time
# signals and kills, and run a cluster and a benchmark.
JOBS=${H5BATCH_TEST_JOBS:-3}
SERIAL=" faults slurm bench multihost "
echo "# h5batch test suite in $W: ${WANT[*]}; passes: ${PASSES[*]}; $JOBS suites at a time"
QUEUE=()
for s in aggregate index collective risk traffic bill plugin "${SUITE_ORDER[@]}"; do
    wanted "$s" && [[ "$SERIAL" != *" $s "* ]] && [[ " ${QUEUE[*]} " != *" $s "* ]] && QUEUE+=("$s")
done
declare -A RUNNING=()
show() { # prints a finished suite's lines
    cat "$TOP/$1.out"
    rm -f "$TOP/$1.out"
}
for s in "${QUEUE[@]}"; do
    while [ ${#RUNNING[@]} -ge "$JOBS" ]; do
        wait -n
        for r in "${!RUNNING[@]}"; do
            kill -0 "${RUNNING[$r]}" 2>/dev/null && continue
            wait "${RUNNING[$r]}" 2>/dev/null
            unset "RUNNING[$r]"
            show "$r"
        done
    done
    (run_suite "$s") >"$TOP/$s.out" 2>&1 &
    RUNNING[$s]=$!
done
for r in "${!RUNNING[@]}"; do
    wait "${RUNNING[$r]}"
    show "$r"
done
for s in "${SUITE_ORDER[@]}"; do
    wanted "$s" && [[ "$SERIAL" == *" $s "* ]] || continue
    (run_suite "$s")
done
for s in "${SUITE_ORDER[@]}"; do
    wanted "$s" || continue
    if [ -f "$TOP/$s.count" ]; then
        read -r p f <"$TOP/$s.count"
        pass=$((pass + p)) fail=$((fail + f))
    else
        not_ok "$s: the suite ended without its counts (killed?)"
    fi
done
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
