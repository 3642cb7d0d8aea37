# The driver's suite (src/): the command line, the run directory (skipping complete steps,
# --force, status, the lock) and the README's snippet; sourced by tests/run_tests.sh,
# whose helpers (tests/lib.sh) it uses, on the traffic inputs (tests/traffic/suite.sh).
# suite_driver BIN TAG runs in the plain pass only.

driver_cli() {
    local bin=$1
    check "cli: --help exits 0" "$bin" --help
    check "cli: run --help and run -h exit 0 with the usage and every option, once under mpirun -n 2" bash -c \
        "'$bin' run --help >rh.txt && grep -q '^usage: h5batch run JOB.ini' rh.txt &&
         for o in --set --fresh --force --partial --verbose --quiet; do grep -q -- \"\$o \" rh.txt || exit 1; done &&
         [ \"\$(timeout 60 mpirun -n 2 '$bin' run -h | grep -c '^usage:')\" = 1 ]"
    check "cli: status --help exits 0 with its usage" bash -c "'$bin' status --help | grep -q '^usage: h5batch status RUN_DIR'"
    check "cli: --version names the version" bash -c "'$bin' --version | grep -q '^h5batch [0-9]'"
    check "cli: kernels lists traffic" bash -c "'$bin' kernels | grep -q '^traffic'"
    check "cli: kernels traffic lists its options" bash -c "'$bin' kernels traffic | grep -q 'percentiles'"
    expect_fail "cli: unknown command is a usage error (64)" 64 "unknown command" "" "$bin" frobnicate
    expect_fail "cli: unknown run option is a usage error (64)" 64 "unknown option" "" "$bin" run x.ini --frob
    expect_fail "cli: gen without -o is a usage error (64)" 64 "-o FILE" "" "$bin" gen traffic
    check "cli: gen NAME --help prints the generator's option table" bash -c "'$bin' gen corpus --help | grep -q -- '--no-doc-id'"
    expect_fail "cli: an unknown gen option is a usage error (64) with a suggestion" 64 "did you mean '--segments'" "" \
        "$bin" gen traffic -o never.h5 --segmnets 5
    check "cli: --help lists the generators and the kernels' commands" bash -c \
        "'$bin' --help | grep -q '^  corpus ' && '$bin' --help | grep -q '^  h5batch query INDEX.h5'"
}

# Re-running a finished job skips its step; --force recomputes; status and lock.
driver_run_dir() {
    local bin=$1
    job again tiny.h5 again.h5 UTC
    check "run: first run" "$bin" run again.ini -q
    local before
    before=$(stat -c %i:%Y again.h5)
    check "run: a complete output of the same job is skipped" bash -c \
        "'$bin' run again.ini 2>&1 | grep -q 'already complete' && [ \"\$(stat -c %i:%Y again.h5)\" = '$before' ]"
    check "run: --force recomputes the step" bash -c \
        "'$bin' run again.ini --force -q && [ \"\$(stat -c %i again.h5)\" != '${before%%:*}' ]"
    check "status: shows the completed job" bash -c "'$bin' status again.run | grep -q 'state *complete'"
    check "status --json has the contract's fields" bash -c "'$bin' status again.run --json | $PY -c '
import json, sys
s = json.load(sys.stdin)
need = \"job state step steps_total chunks_done chunks_total rows_done rate_rows_per_s eta_s ranks started_at updated_at last_checkpoint error\".split()
missing = [k for k in need if k not in s]
assert not missing, missing
assert s[\"state\"] == \"complete\" and s[\"chunks_done\"] == s[\"chunks_total\"] and s[\"rows_done\"] == 18, s
'"
    check "run: a changed option is not taken as complete (73 without --force)" bash -c \
        "'$bin' run again.ini --set aggregate.max_speed=100 -q; [ \$? = 73 ]"
    expect_fail "status: not a run directory -> 66" 66 "no status" "" "$bin" status nowhere.run
    check "lock: a second run on a busy run directory is refused (73)" bash -c \
        "flock again.run/lock sleep 5 & sleep 0.5; '$bin' run again.ini --force -q; rc=\$?; wait; [ \$rc = 73 ]"
    # DESIGN.md 3: --set values expand ${NAME} like the file does (undefined is an error)
    check "run: --set expands \${NAME} from the environment (the output's timezone)" bash -c \
        "HB_TEST_TZ=Europe/Berlin '$bin' run again.ini --force -q --set 'aggregate.timezone=\${HB_TEST_TZ}' &&
         h5dump -a /traffic/timezone again.h5 | grep -q '\"Europe/Berlin\"'"
    # A default MPI singleton forks an orted and could die of SIGSEGV in MPI_Finalize (an
    # event of an unloaded component on its progress thread); a plain process is an
    # isolated singleton with a session folder of its own, removed at exit (src/mpienv.c)
    if command -v strace >/dev/null; then
        check "run: a plain process forks no orted and keeps its session folder to itself, removed at exit" bash -c \
            "env -u OMPI_MCA_ess_singleton_isolated -u OMPI_MCA_orte_tmpdir_base TMPDIR=\$PWD/sess.tmp bash -c \
                 'mkdir -p sess.tmp && strace -f -qq -e trace=execve,mkdir -o st1.txt \"$bin\" run again.ini --force -q' &&
             ! grep -q orted st1.txt && grep -q 'sess.tmp/h5batch-mpi\.[^/]*/ompi\.' st1.txt && [ -z \"\$(ls -A sess.tmp)\" ] &&
             OMPI_MCA_ess_singleton_isolated=0 strace -f -qq -e trace=execve -o st0.txt '$bin' run again.ini --force -q &&
             grep -q orted st0.txt"
    fi
    check "cli: 4 x 25 short failing commands side by side all exit 64 (none dies in MPI_Finalize)" bash -c \
        "loop() { for i in \$(seq 25); do env -u OMPI_MCA_ess_singleton_isolated timeout -k 5 30 '$bin' import x.csv --timezone Nowhere/Zone -o z\$1.h5 2>/dev/null; echo \$?; done; }
         loop 1 >sc1.txt & loop 2 >sc2.txt & loop 3 >sc3.txt & loop 4 >sc4.txt; wait; [ \"\$(sort -u sc1.txt sc2.txt sc3.txt sc4.txt)\" = 64 ]"
    check "run: 3 plain runs side by side (isolated singletons, one session folder each) all complete" bash -c \
        "for j in 1 2 3; do sed \"s|again|side\$j|g\" again.ini >side\$j.ini; done
         pids=; for j in 1 2 3; do ( for i in 1 2 3 4; do '$bin' run side\$j.ini --force -q || exit 1; done ) & pids=\"\$pids \$!\"; done
         ok=0; for p in \$pids; do wait \$p || ok=1; done; [ \$ok = 0 ]"
    expect_fail "run: an undefined \${NAME} in --set is 78 naming --set" 78 \
        "error: --set: environment variable HB_TEST_UNSET is not set" "" \
        env -u HB_TEST_UNSET "$bin" run again.ini --force -q --set 'aggregate.timezone=${HB_TEST_UNSET}'
    # two steps writing one file: refused when the job file is read, nothing run or written
    { cat again.ini; printf '[step second]\nkernel = traffic\ninput = gen.h5\noutput = ./dup.h5\n'; } |
        sed 's|^output = .*again.h5$|output = dup.h5|' >dup.ini
    rm -rf dup.h5
    expect_fail "run: two steps with one output file -> 78 naming both steps" 78 \
        "\[step second\]: output = ./dup.h5 is also the output of \[step aggregate\]" dup.h5 "$bin" run dup.ini -q
    # a later step writing an earlier step's input: with --force it replaced the user's data
    cp tiny.h5 own.h5 && printf '[job]\nrun_dir = own.run\n\n[step first]\nkernel = traffic\ninput = own.h5\noutput = own-out.h5\n[step second]\nkernel = traffic\ninput = gen.h5\noutput = ./own.h5\n' >own.ini
    expect_fail "run: a step writing an earlier step's input -> 78, even with --force" 78 \
        "own.ini:11: \[step second\]: output = ./own.h5 is the input of \[step first\], which it would replace" \
        own-out.h5 "$bin" run own.ini -q --force
    check "run: ... and that input is unchanged" cmp own.h5 tiny.h5
    # a job name is a word, not a path: ../x would put the default run directory elsewhere
    sed 's|^\[job\]$|[job]\nname = ../escaped|' again.ini >badname.ini
    rm -rf ../escaped.run
    expect_fail "run: a job name with '/' -> 78 naming the line" 78 \
        "badname.ini:2: name = ../escaped: a job name is one word" ../escaped.run "$bin" run badname.ini -q
    # a second [job] was merged into the first; an inline '#' comment was part of the value,
    # so that 'output = x.h5  # note' wrote a file named 'x.h5  # note'
    sed 's|^\[step aggregate\]$|[job]\nname = other\n&|' again.ini >dupjob.ini
    expect_fail "run: a second [job] section -> 78 naming both lines" 78 \
        "dupjob.ini:[0-9]*: duplicate section \[job\] (first at line 1)" "" "$bin" run dupjob.ini -q
    sed 's|^output = .*$|output = hashc.h5   # the result|; s|^timezone = .*$|&\t# local time|' again.ini |
        sed 's|again.run|hashc.run|' >hashc.ini
    rm -f hashc.h5 'hashc.h5   # the result'
    check "run: an inline '#' comment is dropped as one of ';' is (the output is hashc.h5)" bash -c \
        "'$bin' run hashc.ini -q && [ -f hashc.h5 ] && ! ls | grep -q '#'"
    # an empty list item was skipped: 50,,95 ran as 50, 95
    { cat again.ini; echo 'percentiles = 50,,95'; } >emptyitem.ini
    expect_fail "run: a list with an empty item (50,,95) -> 78 with its line" 78 \
        "emptyitem.ini:9: \[step aggregate\]: percentiles: an empty item in '50,,95'" "" "$bin" run emptyitem.ini -q --force
    # localtime is the host's /etc/localtime: hosts (and merged sites) may differ
    sed 's|^timezone = .*$|timezone = localtime|' again.ini >localtz.ini
    expect_fail "run: timezone = localtime (the host's zone) -> 78" 78 "unknown time zone 'localtime'" "" \
        "$bin" run localtz.ini -q --force
}

# The README's pandas snippet must work on a real output.
driver_readme() {
    local bin=$1
    job readme gen.h5 readme.h5 Europe/Berlin
    mpi 2 1 "$bin" run readme.ini -q --force >"$W/log" 2>&1
    $PY - "$ROOT/README.md" >snippet.py <<'PYEOF'
import re, sys
text = open(sys.argv[1]).read()
block = text.split("<!-- snippet: readme-pandas", 1)[1]
print(re.search(r"```python\n(.*?)```", block, re.S).group(1))
PYEOF
    sed -i 's#demo/traffic-summary.h5#readme.h5#' snippet.py
    check "README: the h5py/pandas snippet runs" $PY snippet.py
}

suite_driver() {
    local bin=$1 tag=$2
    [ "$tag" = plain ] || return 0
    if ! traffic_inputs >"$W/log" 2>&1; then
        not_ok "driver: making the traffic inputs"
        return
    fi
    driver_cli "$bin"
    driver_run_dir "$bin"
    driver_readme "$bin"
}
