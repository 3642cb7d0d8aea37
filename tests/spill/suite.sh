# Bounded memory with spill (docs/spill.md): a traffic step whose records outgrow
# max_memory writes sorted runs to its scratch folder and merges them in finalize.
# Sourced by tests/run_tests.sh, whose helpers (tests/lib.sh: check, expect_fail, mpi,
# write_job; $PY, $W, $ROOT, $LIMIT, $HB) it uses.
#
# Expected values: the in-memory run of the same job, which is checked here against the
# numpy reference (tests/traffic/traffic_ref.py) and must equal every spilled run bit for
# bit (h5diff --exclude-path /provenance), at 1 and 3 ranks, for float and double
# records, through kills and resumes on other rank counts and as a partial state. Then
# the scratch folder: gone after a success, in $TMPDIR when set, refused (73) when it is
# a link, a file, unwritable or without its parent; a failing spill write is 74, a run a
# checkpoint refers to that is damaged 65, missing 66. Peak RSS of a spilled run stays
# under a bound the in-memory run exceeds.

# sp_inputs: sp.h5 (1.5M rows, float32 speeds: records of floats), sp64.h5 (the same
# speeds as float64, nudged off float32: records of doubles) and, for the ASan pass,
# spa.h5 (500k rows), made once.
sp_inputs() {
    [ -f sp-inputs.done ] && return 0
    mpi 1 1 "$HB" gen traffic -o sp.h5 --rows 1500k --segments 300 --days 60 --events 2 --invalid 0.01 --seed 5 \
        -q || return 1
    mpi 1 1 "$HB" gen traffic -o spa.h5 --rows 500k --segments 300 --days 60 --events 2 --invalid 0.01 --seed 6 \
        -q || return 1
    $PY - <<'PYEOF' || return 1
import h5py, numpy as np
with h5py.File("sp.h5", "r") as src, h5py.File("sp64.h5", "w") as dst:
    for name in src:
        src.copy(name, dst)
    v = src["observations/speed"][...].astype(np.float64)
    del dst["observations/speed"]
    dst["observations/speed"] = v + np.where(np.isfinite(v) & (v > 0) & (v < 250), 1e-9, 0.0)
PYEOF
    touch sp-inputs.done
}

# sp_job NAME INPUT [LINE]...: the traffic job of step agg, NAME.ini with run_dir NAME.run
# and output NAME.h5, chunks of $SP_CHUNK rows (the chunk buffers fit a few MB).
sp_job() {
    local name=$1 in=$2
    shift 2
    write_job "$name" agg traffic "$in" "$name.h5" "job.chunk_rows = $SP_CHUNK" "timezone = Europe/Berlin" "$@"
}

# sp_spilled LOG: the run spilled (finalize's line names at least two runs).
sp_spilled() { grep -Eq 'traffic: spilled [0-9]+ records in ([2-9]|[1-9][0-9]+) runs' "$1"; }

# sp_same NAME REF N MEM: NAME.ini (max_memory MEM) at N ranks spills, equals REF, and
# leaves no scratch folder behind.
sp_same() {
    local name=$1 ref=$2 n=$3
    mpi "$n" 1 "$BIN" run "$name.ini" --fresh && sp_spilled "$W/log" && h5diff --exclude-path /provenance "$ref" "$name.h5" &&
        [ ! -e "$name.run/scratch" ]
}

# sp_kill NAME N K: NAME.ini killed on rank 0 after its K-th chunk at N ranks, every round
# checkpointed: a checkpoint that refers to runs must be left.
sp_kill() {
    local name=$1 n=$2 k=$3
    rm -rf "$name.run" "$name.h5"
    H5BATCH_FAULT_RANK=0 H5BATCH_FAULT_KILL_AFTER_CHUNKS=$k mpi "$n" 1 "$BIN" run "$name.ini" -q
    grep -q ckpt- "$name.run/manifest" && compgen -G "$name.run/scratch/agg/spill-*.run" >/dev/null
}

suite_spill() {
    local bin=$1 tag=$2
    [ "$tag" = valgrind ] && return 0 # the runs' merges are covered in the other passes
    export BIN=$bin
    if ! sp_inputs >"$W/log" 2>&1; then
        not_ok "spill ($tag): making the inputs"
        return
    fi
    local mem="job.max_memory = 10M" mem3="job.max_memory = 7M" every="job.checkpoint_interval = 0.001s" in=sp.h5 k3=9
    SP_CHUNK=50k
    local top=$PWD
    if [ "$tag" = asan ]; then # a third of the rows, in smaller chunks and memory, in a folder of its own
        mem="job.max_memory = 5M" mem3="job.max_memory = 3.5M" in=../spa.h5 k3=6 SP_CHUNK=20k
        mkdir -p sp-asan && cd sp-asan || return
    fi
    # the in-memory runs: the references (checked against numpy once)
    sp_job sp-mem $in
    sp_job sp-mem64 sp64.h5
    if [ "$tag" = plain ]; then
        check "spill ($tag): the in-memory run equals numpy" bash -c \
            "mpi 1 1 '$bin' run sp-mem.ini -q --fresh &&
             $PY '$ROOT/tests/traffic/traffic_ref.py' sp.h5 sp-mem.h5 --timezone Europe/Berlin"
        # double records: the traffic suite checks them against numpy (edge64); here the
        # in-memory run is the reference of the spilled ones, its peak RSS measured
        check "spill ($tag): the in-memory run of double speeds" env OMP_NUM_THREADS=1 /usr/bin/time -f %M -o sp-rss-mem \
            timeout -k 5 "$LIMIT" "$bin" run sp-mem64.ini -q --fresh
    else
        # the references by the plain build: the ASan build runs what spills
        check "spill ($tag): the in-memory run" mpi 1 1 "$HB" run sp-mem.ini -q --fresh
    fi

    sp_job sp-1 $in "$mem"
    check "spill ($tag): ${mem#job.} at 1 rank spills, bit-identical to in memory, scratch removed" \
        sp_same sp-1 sp-mem.h5 1
    # (under ASan the 5M runs above merge their runs already)
    [ "$tag" = plain ] && check "spill ($tag): many runs (max_memory 5M, chunks of 20k) merged 4 at a time before finalize, bit-identical" bash -c \
        "mpi 1 1 '$bin' run sp-1.ini -v --fresh --set job.chunk_rows=20k --set job.max_memory=5M --set agg.output=sp-c.h5 \
             >sp-c.log 2>&1 && grep -q 'merged 4 runs into one' sp-c.log && h5diff --exclude-path /provenance sp-mem.h5 sp-c.h5"
    if [ "$tag" = plain ]; then # under ASan, 3 ranks spill in the kill below
        sp_job sp-3 $in "$mem3"
        check "spill ($tag): ${mem3#job.} at 3 ranks spills, bit-identical to in memory" sp_same sp-3 sp-mem.h5 3
        sp_job sp-d1 sp64.h5 "job.max_memory = 12M"
        check "spill ($tag): double records at 1 rank, bit-identical" bash -c \
            "OMP_NUM_THREADS=1 /usr/bin/time -f %M -o sp-rss-sp timeout -k 5 '$LIMIT' '$bin' run sp-d1.ini --fresh &&
             sp_spilled '$W/log' && h5diff --exclude-path /provenance sp-mem64.h5 sp-d1.h5"
        # peak memory: the spilled run stays under a bound the in-memory run exceeds
        # the bound is above what the process itself holds (its libraries: a static or shared
        # link differs by 8 MB), measured as the RSS of the binary's --version; it lies midway
        # between the two runs (spilled about base + 15.8 MB, in memory base + 25.9 MB), where
        # base + 25.8 MB left the in-memory run 0.1 MB above it and failed when it ran leaner
        local base bound rss_mem rss_sp
        base=$(/usr/bin/time -f %M "$bin" --version 2>&1 >/dev/null | tail -1)
        bound=$((${base:-18000} + 20800))
        rss_mem=$(tail -1 sp-rss-mem) rss_sp=$(tail -1 sp-rss-sp)
        check "spill ($tag): peak RSS spilled ${rss_sp} kB < $bound kB < in memory ${rss_mem} kB" \
            test "$rss_sp" -lt "$bound" -a "$rss_mem" -gt "$bound"
    fi

    # kills and resumes on other rank counts: the checkpoints refer to the runs
    sp_job sp-k $in "$mem3" "$every"
    check "spill ($tag): killed at 3 ranks with runs spilled, resumed at 2: bit-identical, scratch removed" bash -c \
        "sp_kill sp-k 3 $k3 && mpi 2 1 '$bin' run sp-k.ini >sp-k.log 2>&1 && grep -q 'resuming from checkpoint' sp-k.log &&
         h5diff --exclude-path /provenance sp-mem.h5 sp-k.h5 && [ ! -e sp-k.run/scratch ]"
    if [ "$tag" = plain ]; then
        sp_job sp-k1 sp.h5 "$mem" "$every"
        check "spill ($tag): killed at 1 rank with runs spilled, resumed at 3 (each reads its segments of rank 0's runs)" \
            bash -c "sp_kill sp-k1 1 24 && mpi 3 1 '$bin' run sp-k1.ini >sp-k1.log 2>&1 &&
                     grep -q 'resuming from checkpoint' sp-k1.log && h5diff --exclude-path /provenance sp-mem.h5 sp-k1.h5"
        # the runs a checkpoint names are checked: damaged 65, missing 66
        sp_job sp-bad sp.h5 "$mem" "$every"
        if sp_kill sp-bad 1 24 >"$W/log" 2>&1; then
            local f
            f=$(ls sp-bad.run/scratch/agg/spill-*.run | head -1)
            cp "$f" sp-bad.keep
            printf 'XXXXXXXX' | dd of="$f" bs=1 seek=1000 conv=notrunc status=none
            expect_fail "spill ($tag): a block of a spilled run flipped -> 65 when finalize reads it" 65 \
                "spill-.*\.run: spilled run is damaged (a block's checksum)" sp-bad.h5 mpi 1 1 "$bin" run sp-bad.ini
            cp sp-bad.keep "$f"
            truncate -s 1000 "$f"
            expect_fail "spill ($tag): a spilled run of the checkpoint truncated -> 65 naming it" 65 \
                "spill-.*\.run: spilled run is damaged" sp-bad.h5 mpi 1 1 "$bin" run sp-bad.ini
            rm -f "$f"
            expect_fail "spill ($tag): a spilled run of the checkpoint missing -> 66 naming it" 66 \
                "spill-.*\.run: spilled run is missing" sp-bad.h5 mpi 1 1 "$bin" run sp-bad.ini
        else
            not_ok "spill ($tag): a kill leaving runs for the damage tests"
        fi
    fi

    # a partial state of a spilled run is the one of the in-memory run
    check "spill ($tag): run --partial with runs spilled equals the in-memory partial" bash -c \
        "mpi 1 1 '$HB' run sp-mem.ini -q --partial --fresh --set agg.output=sp-pm.h5 &&
         mpi 1 1 '$bin' run sp-1.ini -v --partial --fresh --set agg.output=sp-p1.h5 >sp-p1.log 2>&1 &&
         grep -q 'rank 0 spilled' sp-p1.log &&
         h5diff --exclude-path /provenance sp-pm.h5 sp-p1.h5"

    # where the runs go
    mkdir -p sp-tmpd
    [ "$tag" = plain ] && check "spill ($tag): \$TMPDIR holds the runs in a per-job subfolder, removed after" bash -c \
        "TMPDIR='$PWD/sp-tmpd' mpi 1 1 '$bin' run sp-1.ini --fresh -v --set agg.output=sp-t.h5 >sp-t.log 2>&1 &&
         grep -q 'to $PWD/sp-tmpd/h5batch-sp-1-[0-9a-f]*/agg/spill-' sp-t.log && ! compgen -G 'sp-tmpd/h5batch-*' >/dev/null &&
         h5diff --exclude-path /provenance sp-mem.h5 sp-t.h5"
    touch sp-afile
    ln -sfn "$PWD/sp-tmpd" sp-link
    local bad
    for bad in "missing:$PWD/sp-nowhere/x:its parent folder .* does not exist" "link:$PWD/sp-link:is a symbolic link" \
        "file:$PWD/sp-afile:is a regular file, not a folder" "unwritable:/proc/h5batch-spill:not writable\|cannot create"; do
        IFS=: read -r what dir want <<<"$bad"
        [ "$tag" = asan ] && [ "$what" != link ] && continue
        sp_job sp-x $in "$mem" "job.scratch_dir = $dir"
        expect_fail "spill ($tag): scratch_dir $what -> 73" 73 "$want" sp-x.h5 mpi 1 1 "$bin" run sp-x.ini --fresh
    done
    expect_fail "spill ($tag): a spilled run's write fails (disk full) -> 74, no output" 74 \
        "cannot write spilled run" sp-1.h5 env H5BATCH_FAULT_WRITE_FAIL=3:spill bash -c \
        "rm -f sp-1.h5; mpi 1 1 '$bin' run sp-1.ini --fresh"
    cd "$top" || return
}
export -f sp_spilled sp_same sp_kill
export SP_CHUNK
