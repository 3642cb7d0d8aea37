# Collective errors (DESIGN.md 1): a write that fails on one rank fails the step the same
# way on every rank: exit 74, the error printed once and naming the rank, no output and no
# temporary file left, no hang; a real full disk likewise. Sourced by run_tests.sh, whose
# helpers (check, expect_fail, mpi, $HB, $W, $LIMIT) it uses. The failures come from
# H5BATCH_FAULT_WRITE_FAIL (README, "Fault injection"); the full disk is a small tmpfs that
# the suite mounts, which needs root.

# The inputs, made once: small ones for each kernel, and a traffic input whose output is
# larger than the 2 MB disk (2000 segments: 2.7 MB a dataset).
co_inputs() {
    [ -f ci-inputs.done ] && return 0
    mpi 2 1 "$HB" gen traffic -o ci-traffic.h5 --rows 60k --segments 40 --days 14 --events 2 -q &&
        mpi 2 1 "$HB" gen market -o ci-market.h5 --assets 10 --days 400 --portfolios 30 --transactions 3k -q &&
        mpi 2 1 "$HB" gen corpus -o ci-corpus.h5 --docs 2000 -q &&
        mpi 2 1 "$HB" gen traffic -o ci-wide.h5 --rows 40k --segments 2000 --days 7 --events 0 -q || return 1
    touch ci-inputs.done
}

# co_job NAME KERNEL INPUT OUTPUT [LINE]...: a job file with one step named s; a LINE
# "job.KEY = VALUE" goes to [job], any other to the step.
co_job() {
    local name=$1 kernel=$2 in=$3 out=$4 l
    shift 4
    {
        printf '[job]\nrun_dir = %s.run\n' "$name"
        for l in "$@"; do [[ $l == job.* ]] && printf '%s\n' "${l#job.}"; done
        printf '\n[step s]\nkernel = %s\ninput = %s\noutput = %s\n' "$kernel" "$in" "$out"
        for l in "$@"; do [[ $l == job.* ]] || printf '%s\n' "$l"; done
    } >"$name.ini"
}

# A write failing on rank 1 of 3 at several points of each kernel's output, and of
# checkpoints and status; each point is the N-th write of its kind on rank 1. Takes
# (BIN TAG).
suite_collective() {
    local bin=$1 tag=$2
    [ "$tag" = valgrind ] && return 0 # writes failing under valgrind prove nothing more
    if ! traffic_inputs >"$W/log" 2>&1; then # gen.h5, which the full-disk checkpoint case reads
        not_ok "collective ($tag): making the traffic inputs"
        return
    fi
    if ! co_inputs >"$W/log" 2>&1; then
        not_ok "collective ($tag): making the inputs"
        return
    fi
    local with_mpi k point
    with_mpi="$(declare -f mpi); LIMIT=$LIMIT"
    rm -rf co-* # the other pass's outputs would be taken as complete
    co_job co-tr traffic ci-traffic.h5 co-tr.h5
    co_job co-rk risk ci-market.h5 co-rk.h5 "window = 200" "backtest_days = 100" "mc_scenarios = 5k"
    co_job co-ix index ci-corpus.h5 co-ix.h5
    # every kernel in the plain pass; under ASan the traffic output (which the later cases
    # reuse) and the index (independent writes), to keep make check within its time
    local kernels="tr rk ix"
    [ "$tag" = asan ] && kernels="tr ix"
    for k in $kernels; do
        check "collective ($tag, $k): reference output at 1 rank" mpi 1 1 "$bin" run co-$k.ini -q \
            --set s.output=co-$k-ref.h5 --set job.run_dir=co-$k-ref.run
        # the index writes its data independently (each rank at its own pace), the others collectively
        for point in 1:create 1:group 2:dataset 1:data 5:data 3:attr 40:attr 1:close; do
            rm -rf co-$k.run
            expect_fail "collective ($tag, $k): ${point#*:} write ${point%%:*} failing on rank 1 of 3 -> 74 on every rank, one error line, nothing left" \
                74 "injected write failure (rank 1)" co-$k.h5 \
                env H5BATCH_FAULT_RANK=1 H5BATCH_FAULT_WRITE_FAIL="${point%%:*}:output:${point#*:}" \
                bash -c "$with_mpi; mpi 3 1 '$bin' run co-$k.ini"
        done
        check "collective ($tag, $k): the rerun after the failures completes with the reference's bits" bash -c \
            "$with_mpi; mpi 3 1 '$bin' run co-$k.ini -q && h5diff --exclude-path /provenance co-$k-ref.h5 co-$k.h5"
    done
    rm -f co-tr.h5
    expect_fail "collective ($tag): the output's rename failing on rank 0 -> 73, nothing left" 73 "cannot commit output" co-tr.h5 \
        env H5BATCH_FAULT_RANK=0 H5BATCH_FAULT_WRITE_FAIL=1:output:commit bash -c "$with_mpi; mpi 2 1 '$bin' run co-tr.ini"

    # checkpoints after every round (chunks slowed to 3 ms): checkpoint 2 fails on rank 1
    co_job co-ck traffic ci-traffic.h5 co-ck.h5 "job.chunk_rows = 5k" "job.checkpoint_interval = 0.001s"
    rm -rf co-ck.run
    expect_fail "collective ($tag): a checkpoint's data write failing on rank 1 of 3 -> 74, one error line" 74 \
        "ckpt-s-000002.h5.*.tmp: data /ledger: injected write failure (rank 1)" co-ck.h5 \
        env H5BATCH_FAULT_SLOW_CHUNK_MS=3 H5BATCH_FAULT_RANK=1 H5BATCH_FAULT_WRITE_FAIL=4:checkpoint:data \
        bash -c "$with_mpi; mpi 3 1 '$bin' run co-ck.ini"
    check "collective ($tag): the failed checkpoint left no file; the one before it is kept" bash -c \
        "[ \"\$(grep -vc '^#' co-ck.run/manifest)\" = 1 ] && grep -q '^s 1 ckpt-s-000001.h5 ' co-ck.run/manifest &&
         [ \"\$(ls co-ck.run | grep -c '^ckpt-')\" = 1 ]"
    check "collective ($tag): the rerun resumes from checkpoint 1 with the reference's bits" bash -c \
        "$with_mpi; mpi 2 1 '$bin' run co-ck.ini >co-ck.log 2>&1 && grep -q 'resuming from checkpoint 1:' co-ck.log &&
         h5diff --exclude-path /provenance co-tr-ref.h5 co-ck.h5"
    # a checkpoint's commit is two writes of rank 0: the rename, then the manifest
    local nth what
    for nth in 1 2; do
        what=$([ $nth = 1 ] && echo "cannot commit checkpoint" || echo "cannot write the checkpoint manifest")
        rm -rf co-ck.run co-ck.h5
        expect_fail "collective ($tag): checkpoint commit write $nth failing on rank 0 -> 74 ($what)" 74 "$what" co-ck.h5 \
            env H5BATCH_FAULT_SLOW_CHUNK_MS=3 H5BATCH_FAULT_RANK=0 H5BATCH_FAULT_WRITE_FAIL=$nth:checkpoint:commit \
            bash -c "$with_mpi; mpi 2 1 '$bin' run co-ck.ini"
        check "collective ($tag): checkpoint commit write $nth failed: no checkpoint file left" bash -c "! ls co-ck.run | grep -q ckpt-"
    done

    # status.json is a report: failing to write it warns, and never hides a run's own error
    check "collective ($tag): status.json that cannot be written is a warning; the job completes" bash -c \
        "$with_mpi; H5BATCH_FAULT_WRITE_FAIL=1+:status mpi 2 1 '$bin' run co-tr.ini --force --set s.output=co-st.h5 \
         >co-st.log 2>&1 && grep -q 'warning: .*cannot write status' co-st.log &&
         h5diff --exclude-path /provenance co-tr-ref.h5 co-st.h5"
    expect_fail "collective ($tag): a failed output whose status cannot be written either still prints its error" 74 \
        "co-st2.h5.*.tmp: data /traffic/segment: injected write failure" co-st2.h5 \
        env H5BATCH_FAULT_WRITE_FAIL=1:output:data,1+:status \
        bash -c "$with_mpi; mpi 2 1 '$bin' run co-tr.ini --force --set s.output=co-st2.h5"

    suite_collective_full_disk "$bin" "$tag"
}

# co_disk_case BIN NAME RANKS JOB OUT REF [env...]: the run on the small disk either
# succeeds with the reference's bits or fails with 74, one error line and an empty disk.
co_disk_case() {
    local bin=$1 name=$2 n=$3 ini=$4 out=$5 ref=$6
    shift 6
    env "$@" bash -c "$(declare -f mpi); LIMIT=$LIMIT; mpi $n 1 '$bin' run '$ini' --force" >"$name.log" 2>&1
    local rc=$? nerr left
    nerr=$(grep -c '^h5batch: error:' "$name.log")
    left=$(ls -A "$(dirname "$out")")
    cat "$name.log"
    echo "exit $rc, $nerr error lines, left on the disk: [$left]"
    if [ $rc = 0 ]; then
        [ "$left" = "$(basename "$out")" ] && h5diff --exclude-path /provenance "$ref" "$out" && rm -f "$out"
    else
        [ $rc = 74 ] && [ "$nerr" = 1 ] && [ -z "$left" ]
    fi
}

# A real full disk: a 2 MB tmpfs, unmounted by a trap whatever happens.
suite_collective_full_disk() {
    local bin=$1 tag=$2
    if [ "$(id -u)" != 0 ]; then
        echo "skip - full disk ($tag): mounting a small tmpfs needs root"
        return
    fi
    local mnt=$W/full n size kb
    mkdir -p "$mnt"
    if ! mount -t tmpfs -o size=2m h5batch-test "$mnt" 2>"$W/log"; then
        echo "skip - full disk ($tag): cannot mount a tmpfs ($(head -1 "$W/log"))"
        return
    fi
    trap "umount '$mnt' 2>/dev/null || umount -l '$mnt'; rm -rf '$W'" EXIT
    co_job co-fd traffic ci-wide.h5 "$mnt/out.h5"
    for n in 1 2; do
        expect_fail "full disk ($tag): an output larger than the disk at $n rank(s) -> 74, one error line, nothing left" 74 \
            "cannot reserve .* disk space for the output: No space left on device" "$mnt/out.h5" \
            mpi $n 1 "$bin" run co-fd.ini
        expect_fail "full disk ($tag): the same without space reservation (the write fails) at $n rank(s) -> 74, nothing left" 74 \
            "out.h5.*.tmp: write of /traffic/.* failed" "$mnt/out.h5" \
            env H5BATCH_FAULT_NO_RESERVE=1 bash -c "$(declare -f mpi); LIMIT=$LIMIT; mpi $n 1 '$bin' run co-fd.ini"
    done
    check "full disk ($tag): the disk is empty after the failures" bash -c "[ -z \"\$(ls -A '$mnt')\" ]"

    # disks just smaller and larger than the output: it fits with room to spare, or fails cleanly
    co_job co-fs traffic ci-traffic.h5 "$mnt/out.h5"
    size=$(stat -c %s co-tr-ref.h5)
    for kb in $((size / 1024 - 8)) $((size / 1024)) $((size / 1024 + 8)) $((size / 1024 + 256)) \
        $((size / 1024 + 1024)); do
        umount "$mnt" && mount -t tmpfs -o size=${kb}k h5batch-test "$mnt"
        check "full disk ($tag): a disk of ${kb} kB for an output of $((size / 1024)) kB at 2 ranks: complete, or 74 and nothing left" \
            co_disk_case "$bin" co-fs-$kb 2 co-fs.ini "$mnt/out.h5" co-tr-ref.h5
    done

    # checkpoints in a full run directory: the one that does not fit fails, the others stay good
    umount "$mnt" && mount -t tmpfs -o size=2m h5batch-test "$mnt"
    co_job co-fc traffic gen.h5 co-fc.h5 "job.chunk_rows = 5k" "job.checkpoint_interval = 0.001s"
    sed -i "s#^run_dir = .*#run_dir = $mnt/fc.run#" co-fc.ini
    check "full disk ($tag): reference for the checkpointed job" mpi 2 1 "$bin" run co-fc.ini -q --set s.output=co-fc-ref.h5 \
        --set job.run_dir=co-fc-ref.run --set job.checkpoint_interval=0
    expect_fail "full disk ($tag): a checkpoint larger than the room left -> 74, one error line" 74 \
        "cannot reserve .* disk space for the checkpoint: No space left on device" co-fc.h5 \
        env H5BATCH_FAULT_SLOW_CHUNK_MS=3 bash -c "$(declare -f mpi); LIMIT=$LIMIT; mpi 2 1 '$bin' run co-fc.ini"
    check "full disk ($tag): no temporary checkpoint left; the kept ones resume elsewhere to the reference's bits" bash -c \
        "! ls '$mnt/fc.run' | grep -q tmp && grep -q ckpt- '$mnt/fc.run/manifest' && rm -rf co-fc.run &&
         cp -r '$mnt/fc.run' co-fc.run && rm -f co-fc.run/lock &&
         $(declare -f mpi); LIMIT=$LIMIT; mpi 3 1 '$bin' run co-fc.ini --set job.run_dir=co-fc.run >co-fc.log 2>&1 &&
         grep -q 'resuming from checkpoint' co-fc.log && h5diff --exclude-path /provenance co-fc-ref.h5 co-fc.h5"
    umount "$mnt" || umount -l "$mnt"
    trap 'rm -rf "$W"' EXIT
}
