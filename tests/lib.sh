# The helpers every suite uses; sourced by tests/run_tests.sh before the suites. They
# expect $W (the work folder, also the current directory), $ROOT, $PY, $HB and $LIMIT.
# Those used inside `bash -c` strings (mpi, write_job, job) and the variables they read
# are exported, so a test's command line needs no `declare -f` preamble.

pass=0
fail=0

ok() { pass=$((pass + 1)); echo "ok - $1"; }
not_ok() {
    fail=$((fail + 1))
    echo "FAIL - $1"
    [ -f "$W/log" ] && sed 's/^/    | /' "$W/log" | tail -25
}
# skip NAME WHY: a test that cannot run on this machine, said so in the output.
skip() { echo "skip - $1: $2"; }

# check NAME CMD...: passes when CMD exits 0; its output goes to $W/log.
check() {
    local name=$1
    shift
    if "$@" >"$W/log" 2>&1; then ok "$name"; else not_ok "$name"; fi
}

# expect_fail NAME CODE PATTERN OUTPUT CMD...: CMD must exit with CODE, print PATTERN once
# as an error line, and leave neither OUTPUT nor a temporary of it (OUTPUT.tmp, the unique
# OUTPUT.<pid>-<rank>-<random>.tmp) nor its claim OUTPUT.lock behind.
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
    elif [ -n "$out" ] && { [ -e "$out" ] || [ -e "$out.tmp" ] || [ -e "$out.lock" ] || compgen -G "$out.*.tmp" >/dev/null; }; then
        echo "left $out, a temporary of it or $out.lock behind" >>"$W/log"
        not_ok "$name"
    else
        ok "$name"
    fi
}

# mpi N THREADS BIN ARGS...: h5batch under mpirun with a timeout (plain process at N=1).
# Each mpirun has its own session folder base: under the shared one (/tmp/ompi.HOST.UID)
# an mpirun that was finishing removed it while the next made its own in it ("mkdir
# /tmp/ompi.vm.0: File exists", orte_init failed: 1 of ~1,400 tests, under ASan).
mpi() {
    local n=$1 th=$2 bin=$3 base rc
    shift 3
    if [ "$n" = 1 ]; then
        OMP_NUM_THREADS=$th timeout -k 5 "$LIMIT" "$bin" "$@"
    else
        base=$(mktemp -d "${TMPDIR:-/tmp}/hb-test-ompi.XXXXXX") || return 1
        OMPI_MCA_orte_tmpdir_base=$base timeout -k 5 "$LIMIT" mpirun -n "$n" -x OMP_NUM_THREADS="$th" "$bin" "$@"
        rc=$?
        rm -rf "$base"
        return $rc
    fi
}

# write_job NAME STEP KERNEL INPUT OUTPUT [LINE]...: NAME.ini with run_dir NAME.run and one
# step STEP of KERNEL. A LINE "job.KEY = VALUE" goes to [job], after run_dir; the other
# LINEs follow the step's output line. Without job lines the step's first extra LINE is
# line 8 of the file, which the tests of file:line messages rely on.
write_job() {
    local name=$1 step=$2 kernel=$3 in=$4 out=$5 l
    shift 5
    {
        printf '[job]\nrun_dir = %s.run\n' "$name"
        for l in "$@"; do [[ $l == job.* ]] && printf '%s\n' "${l#job.}"; done
        printf '\n[step %s]\nkernel = %s\ninput = %s\noutput = %s\n' "$step" "$kernel" "$in" "$out"
        for l in "$@"; do [[ $l == job.* ]] || printf '%s\n' "$l"; done
    } >"$name.ini"
}

# job NAME INPUT OUTPUT TIMEZONE [LINE]...: the traffic job of step aggregate, the form
# faults.sh and slurm.sh were written against; a shorthand for write_job.
job() {
    local name=$1 in=$2 out=$3 tz=$4
    shift 4
    write_job "$name" aggregate traffic "$in" "$out" "timezone = $tz" "$@"
}

export -f mpi write_job job
