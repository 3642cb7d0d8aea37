# End-to-end tests on a real single-node Slurm cluster (tests/slurm_cluster.sh); sourced
# by run_tests.sh, whose helpers (tests/lib.sh: check, not_ok, job; $HB, $ROOT, $W) and
# traffic inputs it uses. Skipped with a message where the machine cannot run Slurm (it
# needs root); in CI (CI=true) that is a failure.

# slurm_wait JOBID STATE SECONDS: waits until the job is in STATE (0) or time runs out (1).
slurm_wait() {
    local id=$1 want=$2 left=$3 st
    while [ "$left" -gt 0 ]; do
        st=$(scontrol show job "$id" 2>/dev/null | grep -o 'JobState=[A-Z_]*' | cut -d= -f2)
        [ "$st" = "$want" ] && return 0
        sleep 1
        left=$((left - 1))
    done
    echo "job $id is $st, not $want" >>"$W/log"
    return 1
}

slurm_field() { scontrol show job "$1" | grep -o "$2=[^ ]*" | head -1 | cut -d= -f2; }
export -f slurm_wait slurm_field

# ft.h5.ref.h5, the uninterrupted traffic run the outputs are compared with, unless the
# faults suite has made it already.
slurm_reference() {
    [ -f ft.h5.ref.h5 ] && return 0
    job slref gen.h5 ft.h5.ref.h5 Europe/Berlin "job.chunk_rows = 5k"
    mpi 2 1 "$HB" run slref.ini -q
}

suite_slurm() {
    local dir=$W/slurm
    export SLURM_TEST_PORT=$((20000 + RANDOM % 20000))
    if ! bash "$ROOT/tests/slurm_cluster.sh" start "$dir" >"$W/log" 2>&1; then
        if [ "${CI:-}" = true ]; then
            not_ok "slurm: the test cluster must start in CI"
        else
            echo "skip - slurm: $(tail -1 "$W/log")"
        fi
        bash "$ROOT/tests/slurm_cluster.sh" stop "$dir" >/dev/null 2>&1
        return
    fi
    ok "slurm: single-node cluster (munged, slurmctld, slurmd) is up"
    slurm_reference >"$W/log" 2>&1 || not_ok "slurm: the uninterrupted reference run"
    export SLURM_CONF=$dir/slurm.conf PATH=$PATH:/usr/sbin
    export H5BATCH=$HB H5BATCH_SLURM=$ROOT/slurm
    local sb=$ROOT/slurm/h5batch.sbatch

    # the demo's traffic job through sbatch gives mpirun's output
    job sl gen.h5 sl.h5 Europe/Berlin "job.chunk_rows = 5k"
    check "slurm: sbatch --wait of the traffic job gives the same output as mpirun" bash -c \
        "sbatch --wait --chdir='$W' --ntasks=2 '$sb' sl.ini >/dev/null &&
         h5diff --exclude-path /provenance sl.h5 ft.h5.ref.h5"

    # USR1 to the batch shell: checkpoint, exit 75, requeue, resume, same bits
    rm -rf sl.run sl.h5
    local id
    id=$(H5BATCH_FAULT_SLOW_CHUNK_MS=100 sbatch --parsable --chdir="$W" --ntasks=2 --job-name=long "$sb" sl.ini)
    if slurm_wait "$id" RUNNING 30; then
        sleep 2
        scancel --signal=USR1 --batch "$id"
        # Slurm holds a requeued job for two minutes; let it start again now
        slurm_wait "$id" PENDING 60 && scontrol update JobId="$id" StartTime=now
    fi
    check "slurm: a job sent USR1 checkpoints, exits 75, requeues itself and completes" bash -c \
        "slurm_wait $id COMPLETED 90 && grep -q 'requeueing job $id' long-$id.out &&
         grep -q 'Exit code: *75' long-$id.out"
    check "slurm: ... with output bit-identical to an uninterrupted run" \
        h5diff --exclude-path /provenance sl.h5 ft.h5.ref.h5
    check "slurm: ... and a restart count of at least 1 (Slurm, provenance, status.json)" bash -c \
        "[ \"\$(scontrol show job $id | grep -o 'Restarts=[0-9]*' | cut -d= -f2)\" -ge 1 ] &&
         h5dump -a /provenance/restarts sl.h5 | grep -q '(0): [1-9]' &&
         $PY -c \"import json; s = json.load(open('sl.run/status.json')); assert s['slurm_job_id'] == '$id' and s['restarts'] >= 1, s\""
    check "slurm: h5batch status shows the Slurm job" bash -c "'$HB' status sl.run | grep -q 'slurm job $id'"

    # a job array of three batch windows
    printf '%s\n' "--set aggregate.input=edge.h5 --set aggregate.output=arr-0.h5" \
        "--set aggregate.input=gen.h5 --set aggregate.output=arr-1.h5" \
        "--set aggregate.input=types.h5 --set aggregate.output=arr-2.h5 --set aggregate.timezone=UTC" >windows.txt
    check "slurm: an array of 3 tasks completes, one output per window" bash -c \
        "sbatch --wait --chdir='$W' --array=0-2 '$ROOT/slurm/h5batch-array.sbatch' sl.ini windows.txt >/dev/null &&
         h5diff --exclude-path /provenance arr-1.h5 ft.h5.ref.h5 &&
         $PY '$ROOT/tests/traffic/traffic_ref.py' edge.h5 arr-0.h5 --timezone Europe/Berlin >/dev/null &&
         $PY '$ROOT/tests/traffic/traffic_ref.py' types.h5 arr-2.h5 --timezone UTC >/dev/null"

    # a two-job pipeline runs in order
    job pa edge.h5 pa.h5 Europe/Berlin
    job pb gen.h5 pb.h5 Europe/Berlin
    local ids a b
    ids=$(cd "$W" && SBATCH_ARGS="--ntasks=1" "$ROOT/slurm/submit-pipeline.sh" pa.ini pb.ini)
    a=$(echo "$ids" | sed -n 1p)
    b=$(echo "$ids" | sed -n 2p)
    check "slurm: a two-job dependency pipeline completes in order ($a then $b)" bash -c \
        "slurm_wait $b COMPLETED 90 &&
         [ \"\$(slurm_field $a JobState)\" = COMPLETED ] && [ -f pa.h5 ] && [ -f pb.h5 ] &&
         [[ \"\$(slurm_field $b StartTime)\" > \"\$(slurm_field $a EndTime)\" ||
            \"\$(slurm_field $b StartTime)\" == \"\$(slurm_field $a EndTime)\" ]]"

    # edge sites as one job array with --partial, then their merge chained with afterok
    # (slurm/submit-sites.sh, docs/partial.md): the bits of one run over all the sites
    $PY "$ROOT/scripts/split_sites.py" gen.h5 "$W" site-a site-b site-c >"$W/log" 2>&1
    local s
    for s in a b c; do job "site-$s" "site-$s.h5" "site-$s.part.h5" Europe/Berlin; done
    ids=$(cd "$W" && SBATCH_ARGS="--ntasks=1" "$ROOT/slurm/submit-sites.sh" sites.h5 site-a.ini site-b.ini site-c.ini)
    check "slurm: an array of 3 sites run --partial, then their merge (afterok), equals one run" bash -c \
        "slurm_wait $(echo "$ids" | sed -n 2p) COMPLETED 120 && h5diff --exclude-path /provenance sites.h5 ft.h5.ref.h5"

    # a failing job ends FAILED with the error in its log and is not requeued
    job bad tiny.h5 bad.h5 UTC "percentile = 50"
    id=$(sbatch --parsable --chdir="$W" --ntasks=1 --job-name=bad "$sb" bad.ini)
    check "slurm: a bad job file ends FAILED, error in its log, not requeued" bash -c \
        "slurm_wait $id FAILED 60 &&
         grep -q \"h5batch: error: bad.ini:9: unknown key 'percentile'\" bad-$id.out &&
         [ \"\$(slurm_field $id Restarts)\" = 0 ] && [ \"\$(slurm_field $id ExitCode)\" = 78:0 ]"

    bash "$ROOT/tests/slurm_cluster.sh" stop "$dir" >/dev/null 2>&1
    check "slurm: every daemon the test started is stopped" bash -c \
        "! ls '$dir'/*.pid >/dev/null 2>&1"
    unset SLURM_CONF H5BATCH H5BATCH_SLURM
}
