# Checkpoint/restart, signals, pipelines and fault injection; sourced by run_tests.sh,
# whose helpers (check, expect_fail, mpi, job, $HB, $PY, $LIMIT) it uses.

# fault_suite LABEL INI STEP OUT [KEY=VALUE]: for a job file INI whose step STEP writes
# OUT, every interrupted sequence must end in the bits of an uninterrupted run. KEY=VALUE
# is an option of the step that changes the job (default: percentiles=10, 90).
fault_suite() {
    local label=$1 ini=$2 step=$3 out=$4 ref="$4.ref.h5" run="$1.run" change=${5:-percentiles=10, 90}
    # with chunks slowed to 3 ms or more (a test hook), every round is followed by a checkpoint
    local every="--set job.checkpoint_interval=0.001s --set job.run_dir=$run"
    local with_mpi
    with_mpi="$(declare -f mpi); LIMIT=$LIMIT"
    rm -rf "$run" "$out" "$ref"
    check "faults ($label): uninterrupted reference" mpi 2 1 "$HB" run "$ini" -q --set "$step.output=$ref" \
        --set job.run_dir="$label-ref.run" --set job.checkpoint_interval=0

    # killed with SIGKILL on a random rank at random moments, resumed on 3 -> 2 -> 4 ranks
    local k1=$((3 + RANDOM % 8)) r1=$((RANDOM % 3)) r2=$((RANDOM % 2)) seq
    H5BATCH_FAULT_SLOW_CHUNK_MS=3 H5BATCH_FAULT_RANK=$r1 H5BATCH_FAULT_KILL_AFTER_CHUNKS=$k1 mpi 3 1 "$HB" run "$ini" -q $every >"$W/log" 2>&1
    check "faults ($label): rank $r1 of 3 killed after $k1 chunks left a checkpoint" grep -q ckpt- "$run/manifest"
    seq=$(awk '!/^#/ { s = $2 } END { print s + 2 }' "$run/manifest")
    H5BATCH_FAULT_SLOW_CHUNK_MS=3 H5BATCH_FAULT_RANK=$r2 H5BATCH_FAULT_KILL_IN_CHECKPOINT=$seq mpi 2 2 "$HB" run "$ini" -q $every >kill.log 2>&1
    check "faults ($label): rank $r2 of 2 killed while writing checkpoint $seq: it never counts" \
        bash -c "grep -q 'kills itself' kill.log && ! grep -q ' $seq ckpt' '$run/manifest'"
    check "faults ($label): resumed at 4 ranks, bit-identical to the reference" bash -c \
        "$with_mpi; mpi 4 1 '$HB' run '$ini' $every >run.log 2>&1 && grep -q 'resuming from checkpoint' run.log &&
         h5diff --exclude-path /provenance '$ref' '$out' && ! ls '$run' | grep -q ckpt-"
    check "faults ($label): provenance counts the restarts" bash -c \
        "h5dump -a /provenance/restarts '$out' | grep -q '(0): 2'"

    # a damaged newest checkpoint (truncated, flipped bytes) falls back to the one before
    local damage newest older want
    for damage in truncate flip all; do
        rm -rf "$run" "$out"
        H5BATCH_FAULT_SLOW_CHUNK_MS=3 H5BATCH_FAULT_RANK=0 H5BATCH_FAULT_KILL_AFTER_CHUNKS=6 mpi 2 1 "$HB" run "$ini" -q $every >"$W/log" 2>&1
        newest=$(awk '!/^#/ { f = $3 } END { print f }' "$run/manifest")
        older=$(awk '!/^#/ { p = f; f = $3 } END { print p }' "$run/manifest")
        case $damage in
        truncate) truncate -s 1000 "$run/$newest" ;;
        flip) printf 'XXXXXXXX' | dd of="$run/$newest" bs=1 seek=3000 conv=notrunc status=none ;;
        all) truncate -s 1000 "$run/$newest" && truncate -s 0 "$run/$older" ;;
        esac
        want="resuming from checkpoint"
        [ $damage = all ] && want="starting the step from the beginning"
        check "faults ($label): newest checkpoint damaged ($damage) -> warning, fallback, same bits" bash -c \
            "$with_mpi; mpi 3 1 '$HB' run '$ini' $every >run.log 2>&1 &&
             grep -q 'is damaged' run.log && grep -q '$want' run.log &&
             h5diff --exclude-path /provenance '$ref' '$out'"
    done

    # a checkpoint of a different job is refused; --fresh discards it
    rm -rf "$run" "$out"
    H5BATCH_FAULT_SLOW_CHUNK_MS=3 H5BATCH_FAULT_RANK=1 H5BATCH_FAULT_KILL_AFTER_CHUNKS=4 mpi 2 1 "$HB" run "$ini" -q \
        $every >"$W/log" 2>&1
    expect_fail "faults ($label): changed job file -> the checkpoint is refused (78)" 78 \
        "checkpoint of a different job" "$out" mpi 2 1 "$HB" run "$ini" $every --set "$step.$change"
    check "faults ($label): --fresh discards the old checkpoints" bash -c \
        "$with_mpi; mpi 2 1 '$HB' run '$ini' -q $every --fresh --set '$step.$change' && [ -f '$out' ]"

    # SIGTERM to one rank only: every rank checkpoints and exits 75; the rerun completes
    rm -rf "$run" "$out"
    H5BATCH_FAULT_SLOW_CHUNK_MS=100 mpi 2 1 "$HB" run "$ini" -q --set job.run_dir="$run" >sig.log 2>&1 &
    local bg=$! rc
    sleep 1.5
    check "status.json ($label) while running has the contract's fields" $PY -c "
import json
s = json.load(open('$run/status.json'))
need = 'job state step steps_total chunks_done chunks_total rows_done rate_rows_per_s eta_s ranks started_at updated_at last_checkpoint error'.split()
assert not [k for k in need if k not in s], s
assert s['state'] == 'running' and s['ranks'] == 2 and 0 <= s['chunks_done'] <= s['chunks_total'], s
assert s['chunks_total'] > 0 and s['error'] is None, s
"
    kill -TERM "$($PY -c "import json; print(json.load(open('$run/status.json'))['pid'])")"
    wait $bg
    rc=$?
    check "faults ($label): SIGTERM to rank 0 only -> checkpoint and exit 75 (got $rc)" \
        bash -c "[ $rc = 75 ] && grep -q 'run the same command again' sig.log && grep -q checkpointed $run/status.json"
    check "faults ($label): the rerun after SIGTERM completes with the same bits" bash -c \
        "$with_mpi; mpi 3 1 '$HB' run '$ini' -q --set job.run_dir=$run && h5diff --exclude-path /provenance '$ref' '$out'"

    # SIGTERM to the launcher only: scripts/h5batch-mpirun turns it into SIGUSR1 for mpirun
    rm -rf "$run" "$out"
    H5BATCH_FAULT_SLOW_CHUNK_MS=100 "$ROOT/scripts/h5batch-mpirun" -n 2 "$ini" -q \
        --set job.run_dir="$run" >sig.log 2>&1 &
    bg=$!
    (sleep "$LIMIT" && kill -KILL $bg) >/dev/null 2>&1 & # a hang is a failure, not a stuck suite
    local watchdog=$!
    sleep 1.5
    kill -TERM $bg
    wait $bg
    rc=$?
    pkill -P $watchdog 2>/dev/null
    kill $watchdog 2>/dev/null
    check "faults ($label): SIGTERM to the launcher -> exit 75 (got $rc), then the same bits" bash -c \
        "$with_mpi; [ $rc = 75 ] && mpi 2 1 '$HB' run '$ini' -q --set job.run_dir=$run &&
         h5diff --exclude-path /provenance '$ref' '$out'"

    # a transient read error is retried; a persistent one is an I/O error (74)
    rm -rf "$run" "$out"
    check "faults ($label): a read that fails once is retried" bash -c \
        "$with_mpi; H5BATCH_FAULT_RANK=1 H5BATCH_FAULT_READ_FAIL=3 mpi 2 1 '$HB' run '$ini' --set job.run_dir=$run \
         >rd.log 2>&1 && grep -q retrying rd.log && h5diff --exclude-path /provenance '$ref' '$out'"
    rm -rf "$run" "$out"
    expect_fail "faults ($label): a read that keeps failing -> 74" 74 "failed 3 times" "$out" \
        env H5BATCH_FAULT_RANK=1 H5BATCH_FAULT_READ_FAIL=3:5 bash -c \
        "$with_mpi; mpi 2 1 '$HB' run '$ini' --set job.run_dir=$run"
}

suite_faults() {
    job ft gen.h5 ft.h5 Europe/Berlin
    sed -i 's/^\[job\]$/[job]\nchunk_rows = 5k/' ft.ini
    fault_suite traffic ft.ini aggregate ft.h5

    # the risk kernel: portfolio blocks and Monte Carlo scenario blocks as chunks
    if "$HB" kernels | grep -q '^risk'; then
        mpi 2 1 "$HB" gen market -o fmarket.h5 --assets 30 --days 700 --portfolios 100 --transactions 20k -q
        printf '%s\n' '[job]' 'chunk_rows = 2k' '[step risk]' 'kernel = risk' 'input = fmarket.h5' 'output = frisk.h5' \
            'window = 250' 'mc_scenarios = 80k' 'mc_distribution = t' >frisk.ini
        fault_suite risk frisk.ini risk frisk.h5 "window=300"
    fi

    # a two-step pipeline interrupted in its second step resumes without redoing the first
    printf '%s\n' '[job]' 'run_dir = pipe.run' 'chunk_rows = 5k' 'checkpoint_interval = 0.001s' \
        '[step first]' 'kernel = traffic' 'input = edge.h5' 'output = pipe-1.h5' 'timezone = Europe/Berlin' \
        '[step second]' 'kernel = traffic' 'input = gen.h5' 'output = pipe-2.h5' 'timezone = Europe/Berlin' >pipe.ini
    rm -rf pipe.run pipe-1.h5 pipe-2.h5
    # rank 0 maps 20 of the first step's 40 chunks, then dies a few chunks into the second
    H5BATCH_FAULT_SLOW_CHUNK_MS=3 H5BATCH_FAULT_RANK=0 H5BATCH_FAULT_KILL_AFTER_CHUNKS=25 mpi 2 1 "$HB" run pipe.ini -q >"$W/log" 2>&1
    local first
    first=$(stat -c %i pipe-1.h5 2>/dev/null)
    check "pipeline: killed in its second step, the first step's output is complete" \
        bash -c "[ -n '$first' ] && [ ! -e pipe-2.h5 ] && grep -q '^second ' pipe.run/manifest"
    check "pipeline: the rerun skips the first step and resumes the second" bash -c \
        "$(declare -f mpi); LIMIT=$LIMIT; mpi 3 1 '$HB' run pipe.ini >pipe.log 2>&1 &&
         grep -q 'first: pipe-1.h5 is already complete' pipe.log && grep -q 'second: resuming' pipe.log &&
         [ \"\$(stat -c %i pipe-1.h5)\" = '$first' ] && h5diff --exclude-path /provenance pipe-2.h5 ft.h5.ref.h5"
}
