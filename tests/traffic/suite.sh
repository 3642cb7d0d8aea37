# The traffic kernel's suite (DESIGN.md 4.1); sourced by tests/run_tests.sh, whose helpers
# (tests/lib.sh: check, expect_fail, mpi, write_job, job; $PY, $W, $ROOT, $LIMIT, $HB)
# it uses. Expected values come from tests/traffic/traffic_ref.py, a numpy computation
# written from the contract, on the hand-made cases of make_traffic_case.py and on
# generated data. suite_traffic BIN TAG runs what the pass TAG (plain, asan, valgrind) has.

# The inputs, made once; faults.sh, slurm.sh and the driver's suite use them too.
traffic_inputs() {
    [ -f traffic-inputs.done ] && return 0
    local c
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
        --invalid 0.01 -q >/dev/null && touch traffic-inputs.done
}

# The job against the numpy reference, in several time zones.
traffic_reference() {
    local bin=$1 tag=$2
    local cases=("edge Europe/Berlin" "edge64 Europe/Berlin" "types UTC" "types Europe/Amsterdam" "tiny UTC" "gen Europe/Berlin")
    for c in "${cases[@]}"; do
        set -- $c
        local in=$1 tz=$2 out="ref-$tag-$1-${2//\//_}.h5"
        rm -f "$out"
        job "ref-$tag-$in" "$in.h5" "$out" "$tz" "percentiles = 5, 50, 85, 95, 99.9"
        check "reference ($tag): $in in $tz equals numpy" bash -c \
            "mpi 2 2 '$bin' run 'ref-$tag-$in.ini' -q --force &&
             $PY '$ROOT/tests/traffic/traffic_ref.py' '$in.h5' '$out' --timezone '$tz' --percentiles 5,50,85,95,99.9"
    done
}

# Outputs at 1-4 ranks and 1-2 threads, several chunk rounds, compared bit for bit.
traffic_ranks() {
    local bin=$1 in n th
    for in in edge edge64 gen; do
        local base="rk-$in-1-1.h5"
        job "rk-$in" "$in.h5" "$base" Europe/Berlin "job.chunk_rows = 7k"
        check "ranks: $in at 1 rank, 1 thread" mpi 1 1 "$bin" run "rk-$in.ini" -q
        for n in 1 2 3 4; do
            for th in 1 2; do
                [ "$n$th" = 11 ] && continue
                local out="rk-$in-$n-$th.h5"
                check "ranks: $in at $n ranks x $th threads is bit-identical" bash -c \
                    "mpi $n $th '$bin' run rk-$in.ini -q --set aggregate.output=$out --set job.run_dir=rk-$in-$n-$th.run &&
                     h5diff --exclude-path /provenance $base $out"
            done
        done
    done
    check "ranks: default chunking equals 7k chunking" bash -c \
        "mpi 3 2 '$bin' run rk-gen.ini -q --set job.chunk_rows=1M --set aggregate.output=rk-gen-big.h5 \
         --set job.run_dir=rk-big.run && h5diff --exclude-path /provenance rk-gen-1-1.h5 rk-gen-big.h5"
    check "gen: same file at 1 and 3 ranks" bash -c \
        "mpi 1 1 '$bin' gen traffic -o g1.h5 --rows 100k --segments 50 -q &&
         mpi 3 2 '$bin' gen traffic -o g3.h5 --rows 100k --segments 50 -q && h5diff g1.h5 g3.h5"
}

# More owned segments than append files directly (APPEND_DIRECT, 4096): records go
# through the partition by blocks of segments at 1 rank and at 2 ranks x 2 threads
# (4,500 segments each), directly at 3 ranks (3,000 each); all equal numpy.
traffic_many() {
    local bin=$1 tag=$2
    [ -f many.h5 ] || mpi 1 1 "$HB" gen traffic -o many.h5 --rows 40k --segments 9000 --days 14 --events 2 -q ||
        { not_ok "traffic ($tag): making many.h5"; return; }
    job "many-$tag" many.h5 "many-$tag-1.h5" Europe/Berlin "job.chunk_rows = 7k"
    check "many segments ($tag): 9,000 segments at 1 rank (filed by blocks) equal numpy" bash -c \
        "mpi 1 1 '$bin' run many-$tag.ini -q --force &&
         $PY '$ROOT/tests/traffic/traffic_ref.py' many.h5 many-$tag-1.h5 --timezone Europe/Berlin"
    local runs="2:2"
    [ "$tag" = plain ] && runs="2:2 3:1"
    for r in $runs; do
        local n=${r%:*} th=${r#*:}
        check "many segments ($tag): at $n ranks x $th threads bit-identical" bash -c \
            "mpi $n $th '$bin' run many-$tag.ini -q --force --set aggregate.output=many-$tag-$n.h5 \
             --set job.run_dir=many-$tag-$n.run && h5diff --exclude-path /provenance many-$tag-1.h5 many-$tag-$n.h5"
    done
}

# Bad input: exit codes of the contract, one error line, nothing left behind.
traffic_bad_input() {
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
    # two percentiles of one name (speed_p50) once failed when the second was written (74)
    expect_fail "bad input ($tag): percentiles 85, 50, 50.0000001 (one dataset name twice) -> 78 before any work" 78 \
        "percentiles: 50 is listed twice (both name speed_p50)" "dup.h5" \
        bash -c "printf '[job]\nrun_dir = dup.run\n[step a]\nkernel = traffic\ninput = tiny.h5\noutput = dup.h5\npercentiles = 85, 50, 50.0000001\n' >dup.ini && '$bin' run dup.ini"
}

# Memory errors valgrind sees (bin runs h5batch under valgrind): jobs at 1 and 2 ranks
# with the same bits, the generator, and an error path.
traffic_valgrind() {
    local bin=$1
    job vg edge.h5 vg-1.h5 Europe/Berlin "job.chunk_rows = 50k"
    check "valgrind: traffic job at 1 rank" mpi 1 1 "$bin" run vg.ini -q
    check "valgrind: traffic job at 2 ranks x 2 threads" bash -c \
        "mpi 2 2 '$bin' run vg.ini -q --set aggregate.output=vg-2.h5 --set job.run_dir=vg2.run &&
         h5diff --exclude-path /provenance vg-1.h5 vg-2.h5"
    check "valgrind: gen traffic at 2 ranks, the file of 1 rank" bash -c \
        "mpi 2 1 '$bin' gen traffic -o vg-gen.h5 --rows 50k --segments 20 -q &&
         '$HB' gen traffic -o vg-gen-1.h5 --rows 50k --segments 20 -q && h5diff vg-gen-1.h5 vg-gen.h5"
    job vgbad unequal.h5 vg-bad.h5 UTC
    check "valgrind: a bad input at 2 ranks" bash -c "mpi 2 1 '$bin' run vgbad.ini -q; [ \$? = 65 ]"
}

suite_traffic() {
    local bin=$1 tag=$2
    if ! traffic_inputs >"$W/log" 2>&1; then
        not_ok "traffic ($tag): making the inputs"
        return
    fi
    case $tag in
    plain)
        traffic_reference "$bin" plain
        traffic_ranks "$bin"
        traffic_many "$bin" plain
        traffic_bad_input "$bin" plain
        ;;
    asan)
        traffic_reference "$bin" asan
        traffic_many "$bin" asan
        traffic_bad_input "$bin" asan
        ;;
    valgrind) traffic_valgrind "$bin" ;;
    esac
}
