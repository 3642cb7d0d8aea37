# The episodes kernel's suite (DESIGN.md 4.5); sourced by tests/run_tests.sh, whose
# helpers (check, expect_fail, mpi, fault_suite, $PY, $W, $ROOT, $LIMIT, $HB) it uses.
# Expected values come from tests/episodes/episodes_ref.py (pandas: sort, shift and a
# cumulative sum of run breaks, "gaps and islands"; periods through zoneinfo), written
# from the contract; the input (make_episodes_case.py) is built around the hard cases.
# suite_episodes BIN TAG runs everything in the plain pass, the string-id job, two
# refusals and one spilled run under ASan (the pass's time budget), nothing under valgrind.

# ep_job NAME OUTPUT [lines]: a job file with one episodes step named ep on ep-case.h5.
ep_job() {
    local name=$1 out=$2
    shift 2
    {
        printf '[job]\nrun_dir = %s.run\nchunk_rows = 50\n\n[step ep]\nkernel = episodes\n' "$name"
        printf 'input = ep-case.h5\noutput = %s\n' "$out"
        for l in "$@"; do printf '%s\n' "$l"; done
    } >"$name.ini"
}

# The inputs, made once for every pass.
ep_inputs() {
    [ -f ep-inputs.done ] && return 0
    $PY "$ROOT/tests/episodes/make_episodes_case.py" ep-case.h5 &&
        mpi 1 1 "$HB" gen fleet -o ep-fleet.h5 --vehicles 12 --days 2 --trips 2 --minutes 10 -q &&
        touch ep-inputs.done
}

# The jobs checked against the reference: integer, string and float ids, every rule,
# rate, ms and ns times, every period kind, three time zones.
ep_reference_jobs() {
    ep_job "$1-above" "$1-above.h5" "columns = device:dev" "rule = above:100" "hysteresis = 5" "max_gap = 60s" \
        "timezone = Europe/Berlin"
    ep_job "$1-str" "$1-str.h5" "device = sdev" "rule = outside:60:100" "hysteresis = 2" "max_gap = 2m" \
        "min_duration = 30s" "period = week" "timezone = Europe/Berlin"
    ep_job "$1-dev" "$1-dev.h5" "columns = device:devf" "rule = deviation:2" "max_gap = 1h" "period = month" \
        "timezone = America/New_York"
    ep_job "$1-rate" "$1-rate.h5" "columns = device:dev, time:time_ms" "time_unit = ms" "derive = rate" \
        "rule = below:-0.1" "max_gap = 61s" "timezone = Asia/Kolkata"
    ep_job "$1-ns" "$1-ns.h5" "columns = device:dev, time:time_ns" "time_unit = ns" "derive = rate" \
        "rule = below:-0.1" "max_gap = 61s" "hysteresis = 0.05"
}

suite_episodes() {
    local bin=$1 tag=$2 j n th
    [ "$tag" = valgrind ] && return 0
    if ! ep_inputs >"$W/log" 2>&1; then
        not_ok "episodes ($tag): making the inputs"
        return
    fi
    local p="ep-ref-$tag"
    ep_reference_jobs "$p"
    if [ "$tag" = asan ]; then # within the pass's time: the string ids' exchange, two refusals
        check "episodes (asan): string ids at 2 ranks x 2 threads equal the pandas reference" \
            bash -c "mpi 2 2 '$bin' run $p-str.ini -q && $PY '$ROOT/tests/episodes/episodes_ref.py' $p-str.ini ep"
        ep_bad_input "$bin" "$tag" short
        ep_spill "$bin" "$tag"
        return 0
    fi
    check "episodes ($tag): 5 jobs at 2 ranks x 2 threads equal the pandas reference (ids int/str/float, every rule, rate, ms, ns)" \
        bash -c "for j in above str dev rate ns; do mpi 2 2 '$bin' run $p-\$j.ini -q || exit 1; done &&
                 $PY '$ROOT/tests/episodes/episodes_ref.py' $p-above.ini ep $p-str.ini ep $p-dev.ini ep $p-rate.ini ep $p-ns.ini ep"
    ep_bad_input "$bin" "$tag"

    # the hard cases one by one, as the contract words them
    check "episodes: the hard cases (chunk and rank boundary, max_gap, hysteresis, duplicates, one reading, last chunk)" \
        $PY -c "
import h5py
E = h5py.File('$p-above.h5')['episodes']
ep = {}
for d, s, n, r, pk in zip(E['device'][:], E['start'][:] - 1711749600, E['duration_s'][:], E['readings'][:], E['peak'][:]):
    ep.setdefault(int(d), []).append((int(s), float(n), int(r), float(pk)))
assert ep[5] == [(20000, 585.0, 40, 102.5)], ep[5]                  # rows 980..1019: chunks 19 and 20
assert ep[2] == [(7200, 120.0, 3, 112.0), (7381, 0.0, 1, 113.0), (7501, 0.0, 1, 115.0)], ep[2]  # 60 s on, 61 s off
assert ep[3] == [(10010, 20.0, 3, 102.0), (10060, 10.0, 2, 103.0), (10090, 0.0, 1, 101.0)], ep[3]  # hysteresis
assert ep[6] == [(50010, 20.0, 6, 130.0)], ep[6]                    # duplicate times, by (time, value)
assert ep[4] == [(172805, 0.0, 1, 150.0)], ep[4]                    # one reading
assert ep[9] == [(40014, 119.0, 18, 105.0)], ep[9]                  # only in the last chunk
assert len(ep[7]) == 4 and E['periods/period'][:].tolist() == [20240329, 20240330, 20240331, 20240401]
"
    # bit-identical at any rank and thread count, and any chunking
    local runs="above:1:1 above:2:2 above:4:2 str:1:1 str:2:1 str:3:2 str:4:1 rate:1:1 rate:3:1" r
    for r in $runs; do
        IFS=: read -r j n th <<<"$r"
        if [ "$n$th" = 11 ]; then
            check "episodes: $j at 1 rank, 1 thread" mpi 1 1 "$bin" run "$p-$j.ini" -q --set job.run_dir="$p-$j-1.run" \
                --set ep.output="$p-$j-1.h5"
            continue
        fi
        check "episodes: $j at $n ranks x $th threads is bit-identical to 1 x 1" bash -c \
            "mpi $n $th '$bin' run '$p-$j.ini' -q --set ep.output='$p-$j-$n-$th.h5' \
             --set job.run_dir='$p-$j-$n-$th.run' && h5diff --exclude-path /provenance '$p-$j-1.h5' '$p-$j-$n-$th.h5'"
    done
    check "episodes: chunk_rows 1k gives the bits of 50" bash -c \
        "mpi 3 2 '$bin' run '$p-str.ini' -q --set job.chunk_rows=1k --set ep.output='$p-str-big.h5' \
         --set job.run_dir='$p-str-big.run' && h5diff --exclude-path /provenance '$p-str-1.h5' '$p-str-big.h5'"

    # gen fleet: the same file at any rank count; harsh braking from the rate of speed
    check "episodes: gen fleet writes the same file at 1 and 3 ranks" bash -c \
        "mpi 3 1 '$bin' gen fleet -o ep-fleet3.h5 --vehicles 12 --days 2 --trips 2 --minutes 10 -q &&
         h5diff --exclude-path /provenance ep-fleet.h5 ep-fleet3.h5"
    printf '%s\n' '[job]' 'run_dir = ep-brake.run' 'chunk_rows = 20k' '[step ep]' 'kernel = episodes' \
        'input = ep-fleet.h5' 'output = ep-brake.h5' 'columns = device:vehicle, value:speed' 'derive = rate' \
        'rule = below:-3' 'max_gap = 5s' 'timezone = Europe/Berlin' >ep-brake.ini
    check "episodes: harsh braking on gen fleet at 3 ranks equals pandas; harsh drivers brake harder" bash -c \
        "mpi 3 1 '$bin' run ep-brake.ini -q && $PY '$ROOT/tests/episodes/episodes_ref.py' ep-brake.ini ep && $PY -c \"
import h5py, numpy as np
f = h5py.File('ep-fleet.h5')['table']
E = h5py.File('ep-brake.h5')['episodes']
assert E.attrs['n_devices'] == 12 and E.attrs['n_episodes'] > 0
assert np.diff(f['time'][:])[np.diff(f['vehicle'][:]) == 0].max() > 5, 'GPS dropouts make gaps'
assert (E['peak'][:] < -3).all() and E['peak'][:].min() > -7
\""

    # killed (SIGKILL) on one rank after some chunks, then while writing a checkpoint,
    # resumed at other rank counts: the bits of the uninterrupted run (tests/faults.sh's hooks)
    local every="--set job.checkpoint_interval=0.001s --set job.chunk_rows=100 --set job.run_dir=ep-kr.run --set ep.output=ep-kr.h5" seq
    rm -rf ep-kr.run ep-kr.h5
    H5BATCH_FAULT_SLOW_CHUNK_MS=3 H5BATCH_FAULT_RANK=1 H5BATCH_FAULT_KILL_AFTER_CHUNKS=$((2 + RANDOM % 3)) \
        mpi 3 1 "$bin" run "$p-str.ini" -q $every >"$W/log" 2>&1
    check "episodes: rank 1 of 3 killed after some chunks left a checkpoint" grep -q ckpt- ep-kr.run/manifest
    seq=$(awk '!/^#/ { s = $2 } END { print s + 2 }' ep-kr.run/manifest)
    H5BATCH_FAULT_SLOW_CHUNK_MS=3 H5BATCH_FAULT_RANK=0 H5BATCH_FAULT_KILL_IN_CHECKPOINT=$seq \
        mpi 2 2 "$bin" run "$p-str.ini" -q $every >"$W/log" 2>&1
    check "episodes: killed again while writing checkpoint $seq, resumed at 4 ranks: bit-identical" bash -c \
        "mpi 4 1 '$bin' run '$p-str.ini' $every >ep-kr.log 2>&1 && grep -q 'resuming from checkpoint' ep-kr.log &&
         h5diff --exclude-path /provenance '$p-str-1.h5' ep-kr.h5 || { tail -5 ep-kr.log; ls ep-kr.run; false; }"
    ep_spill "$bin" "$tag"
}

# Spill (docs/spill.md, "Episodes"): readings beyond max_memory's budget go to sorted runs
# and finalize reads them back device by device. The reference is the in-memory run of
# the same job (itself checked against pandas), which every spilled run must equal bit for
# bit: at 1 rank on 2M readings (8 runs, more than its budget's 4 read buffers: compacted
# first), with its peak RSS under a bound the in-memory run exceeds; on 300k readings at 3 ranks, killed with runs named by its checkpoint and
# resumed at 2 ranks (and, with the runs removed, refused: 66), and as a partial state
# merged; the scratch folder is gone after a success; a failing run write is 74. The ASan pass: the 300k case spilled at 2 ranks.
ep_spill() {
    local bin=$1 tag=$2 j=ep-sp-$2 s=ep-spa-$2
    if ! { [ -f ep-spa.h5 ] || $PY "$ROOT/tests/episodes/make_spill_case.py" ep-spa.h5 300000; } >"$W/log" 2>&1 ||
        { [ "$tag" != asan ] && ! { [ -f ep-sp.h5 ] || $PY "$ROOT/tests/episodes/make_spill_case.py" ep-sp.h5 2000000; } >"$W/log" 2>&1; }; then
        not_ok "episodes ($tag): making the spill inputs"
        return
    fi
    local name in chunk
    for name in $j:ep-sp.h5:20k $s:ep-spa.h5:2k; do
        IFS=: read -r name in chunk <<<"$name"
        printf '%s\n' '[job]' "run_dir = $name.run" "chunk_rows = $chunk" '[step ep]' 'kernel = episodes' "input = $in" \
            "output = $name-mem.h5" 'derive = rate' 'rule = below:-9' 'max_gap = 10s' 'timezone = Europe/Berlin' >"$name.ini"
        rm -f "$name"-*.h5
    done
    # spilled: the finalize line names two runs or more; no scratch folder is left
    local spilled="episodes: spilled [0-9]+ readings in ([2-9]|[1-9][0-9]+) runs"
    if [ "$tag" = asan ]; then # the reference by the plain build: the pass's time
        check "episodes (asan): spilled at 2 ranks equals the in-memory run" bash -c \
            "mpi 1 1 '$HB' run $s.ini -q --fresh && mpi 2 1 '$bin' run $s.ini --fresh --set ep.output=$s-2.h5 \
             --set job.max_memory=1.3M >$s.log 2>&1 && grep -Eq '$spilled' $s.log &&
             h5diff --exclude-path /provenance $s-mem.h5 $s-2.h5 && [ ! -e $s.run/scratch ]"
        return 0
    fi
    check "episodes: the in-memory run of the 2M spill case (its peak RSS measured)" \
        env OMP_NUM_THREADS=1 /usr/bin/time -f %M -o $j-rss-mem timeout -k 5 "$LIMIT" "$bin" run $j.ini -q --fresh
    check "episodes: spilled at 1 rank (max_memory 6M) is bit-identical to in memory; no scratch left" bash -c \
        "OMP_NUM_THREADS=1 /usr/bin/time -f %M -o $j-rss-sp timeout -k 5 '$LIMIT' '$bin' run $j.ini --fresh \
             --set ep.output=$j-1.h5 --set job.max_memory=6M >$j.log 2>&1 && grep -Eq '$spilled' $j.log &&
         h5diff --exclude-path /provenance $j-mem.h5 $j-1.h5 && [ ! -e $j.run/scratch ]"
    # the bound is above what the process itself holds (its libraries: a static or shared
    # link differs by 8 MB), measured as the RSS of the binary's --version
    local base bound rss_mem rss_sp
    base=$(/usr/bin/time -f %M "$bin" --version 2>&1 >/dev/null | tail -1)
    bound=$((${base:-18000} + 24800))
    rss_mem=$(tail -1 $j-rss-mem 2>/dev/null) rss_sp=$(tail -1 $j-rss-sp 2>/dev/null)
    check "episodes: peak RSS spilled ${rss_sp:-?} kB < $bound kB < in memory ${rss_mem:-?} kB" \
        test "${rss_sp:-0}" -gt 0 -a "${rss_sp:-0}" -lt "$bound" -a "${rss_mem:-0}" -gt "$bound"
    check "episodes: the in-memory run of the 300k spill case equals the pandas reference" bash -c \
        "mpi 1 1 '$bin' run $s.ini -q --fresh && $PY '$ROOT/tests/episodes/episodes_ref.py' $s.ini ep"
    check "episodes: spilled at 3 ranks (max_memory 1.3M) is bit-identical to in memory" bash -c \
        "mpi 3 1 '$bin' run $s.ini --fresh --set ep.output=$s-3.h5 --set job.max_memory=1.3M >$s.log 2>&1 &&
         grep -Eq '$spilled' $s.log && h5diff --exclude-path /provenance $s-mem.h5 $s-3.h5"
    # killed on rank 0 of 3 after its 40th chunk (of about 50), every round checkpointed: the
    # checkpoint names the runs (version 3); resumed at 2 ranks, which read each other's runs
    local every="--set job.checkpoint_interval=0.001s --set job.max_memory=1.3M --set job.run_dir=$s-kr.run --set ep.output=$s-kr.h5"
    rm -rf $s-kr.run
    H5BATCH_FAULT_RANK=0 H5BATCH_FAULT_KILL_AFTER_CHUNKS=40 mpi 3 1 "$bin" run $s.ini -q $every >"$W/log" 2>&1
    check "episodes: killed at 3 ranks, a checkpoint names spilled runs" bash -c \
        "grep -q ckpt- $s-kr.run/manifest && grep -lq HBEPIS3 $s-kr.run/ckpt-* && compgen -G '$s-kr.run/scratch/ep/spill-*.run'"
    rm -rf $s-k2.run && cp -r $s-kr.run $s-k2.run && rm -f $s-k2.run/scratch/ep/spill-*.run
    expect_fail "episodes: a resume whose checkpoint names a spilled run that is gone -> 66 naming it" 66 \
        "spill-episodes-.*\\.run: spilled run is missing" $s-k2.h5 mpi 2 1 "$bin" run $s.ini \
        --set job.checkpoint_interval=0.001s --set job.max_memory=1.3M --set job.run_dir=$s-k2.run --set ep.output=$s-k2.h5
    check "episodes: resumed at 2 ranks with those runs: bit-identical to in memory" bash -c \
        "mpi 2 1 '$bin' run $s.ini $every >$s.log 2>&1 && grep -q 'resuming from checkpoint' $s.log &&
         h5diff --exclude-path /provenance $s-mem.h5 $s-kr.h5 && [ ! -e $s-kr.run/scratch ]"
    expect_fail "episodes: a spilled run that cannot be written -> 74, nothing left" 74 "cannot create a spilled run" \
        $s-f.h5 env H5BATCH_FAULT_WRITE_FAIL=1:spill bash -c "mpi 2 1 '$bin' run $s.ini --fresh --set ep.output=$s-f.h5 \
        --set job.max_memory=1.3M"
    check "episodes: a spilled partial state at 3 ranks, merged, equals the in-memory run" bash -c \
        "mpi 3 1 '$bin' run $s.ini -v --fresh --partial --set ep.output=$s-part.h5 --set job.max_memory=1.3M >$s.log 2>&1 &&
         grep -Eq 'episodes: rank [0-2] spilled' $s.log && mpi 1 1 '$bin' merge $s-part.h5 -o $s-merged.h5 -q &&
         h5diff --exclude-path /provenance $s-mem.h5 $s-merged.h5"
}

# Bad input: the contract's codes, one error line, nothing left behind.
ep_bad_input() {
    local bin=$1 tag=$2 short=${3:-} b="ep-bad-$tag"
    ep_job "$b-norule" "$b.h5" "columns = device:dev"
    expect_fail "episodes ($tag): no rule -> 78" 78 "rule is required" "$b.h5" mpi 2 1 "$bin" run "$b-norule.ini"
    ep_job "$b-tstr" "$b.h5" "columns = device:dev, time:tstr" "rule = above:1"
    expect_fail "episodes ($tag): a string time column -> 65" 65 "time column 'time' (table column 'tstr') has string type" \
        "$b.h5" mpi 2 1 "$bin" run "$b-tstr.ini"
    [ -n "$short" ] && return 0
    # one device with every reading: within the even share's estimate (75k readings x 16 bytes
    # and the chunk buffers), spilled at its owner and refused at finalize (150k x 16 bytes)
    $PY -c "
import h5py, numpy as np
with h5py.File('ep-skew.h5', 'w') as f:
    f['table/device'] = np.full(150000, 7, np.int32)
    f['table/time'] = 1700000000 + np.arange(150000, dtype=np.int64)
    f['table/value'] = np.zeros(150000)
"
    printf '%s\n' '[job]' "run_dir = $b-skew.run" 'chunk_rows = 1k' '[step ep]' 'kernel = episodes' 'input = ep-skew.h5' \
        "output = $b.h5" 'rule = above:1' 'max_memory = 1.5M' >"$b-skew.ini"
    expect_fail "episodes ($tag): one device whose readings pass max_memory (spilled, at finalize) -> 65 naming it" 65 \
        "device 7 has more than .* readings, more than the .* MB that max_memory = 1.5 MB leaves for one device" "$b.h5" \
        mpi 2 1 "$bin" run "$b-skew.ini"
    ep_job "$b-rule" "$b.h5" "columns = device:dev" "rule = outside:100:50"
    expect_fail "episodes ($tag): outside:100:50 -> 78 naming the rule" 78 "ep-bad-$tag-rule.ini.*LO must be below HI" \
        "$b.h5" mpi 2 1 "$bin" run "$b-rule.ini"
    ep_job "$b-word" "$b.h5" "columns = device:dev" "rule = over:100"
    expect_fail "episodes ($tag): an unknown rule -> 78" 78 "rule 'over:100' is not above:X" "$b.h5" \
        mpi 1 1 "$bin" run "$b-word.ini"
    ep_job "$b-col" "$b.h5" "columns = device:nope" "rule = above:1"
    expect_fail "episodes ($tag): a missing device column -> 65" 65 "nope" "$b.h5" mpi 2 1 "$bin" run "$b-col.ini"
    ep_job "$b-ms" "$b.h5" "columns = device:dev, time:badtime" "rule = above:1"
    expect_fail "episodes ($tag): ms times read as seconds -> 65 suggesting time_unit = ms" 65 "time_unit = ms fits" \
        "$b.h5" mpi 2 1 "$bin" run "$b-ms.ini"
    ep_job "$b-fid" "$b.h5" "columns = device:devbad" "rule = above:1"
    expect_fail "episodes ($tag): device ids that are not integers -> 65 naming the row" 65 "row 0: 7.5 is not an integer" "$b.h5" \
        mpi 2 1 "$bin" run "$b-fid.ini"
    ep_job "$b-tz" "$b.h5" "columns = device:dev" "rule = above:1" "timezone = Mars/Olympus"
    expect_fail "episodes ($tag): an unknown time zone -> 78" 78 "unknown time zone 'Mars/Olympus'" "$b.h5" \
        mpi 1 1 "$bin" run "$b-tz.ini"
    printf '%s\n' '[job]' "run_dir = $b-mem.run" '[step ep]' 'kernel = episodes' 'input = ep-fleet.h5' \
        "output = $b.h5" 'columns = device:vehicle, value:speed' 'rule = below:-3' 'max_memory = 1M' >"$b-mem.ini"
    expect_fail "episodes ($tag): more readings than max_memory allows -> 65 before reading, naming the chunk buffers that take most" 65 \
        "need about .* per rank (.* at 2 ranks.*more than max_memory = 1.0 MB: lower chunk_rows" "$b.h5" \
        mpi 2 1 "$bin" run "$b-mem.ini"
}
