# The vitals and fitness jobs and their generator (`h5batch gen vitals`, kernel
# aggregate's); sourced by tests/run_tests.sh, whose helpers (check, expect_fail, mpi,
# $PY, $W, $ROOT, $LIMIT) they use. Expected values come from tests/vitals/vitals_ref.py
# (pandas on the generated input). Each function takes (BIN TAG).

# The inputs at 1 rank, made once for every pass.
vitals_inputs() {
    [ -f vit-inputs.done ] && return 0
    mpi 1 1 "$HB" gen vitals -o vit-1.h5 --rows 60k --devices 40 --days 21 --start 20240318 --seed 7 -q &&
        mpi 1 1 "$HB" gen vitals --kind bands -o vit-bands-1.h5 --rows 40k --devices 15 --days 75 \
            --start 20240301 --artefacts 0.01 --seed 8 -q && touch vit-inputs.done
}

# The generator: the same file at 1 and 3 ranks (and 2 threads), another file for another seed.
suite_vitals_gen() {
    local bin=$1 tag=$2
    if ! vitals_inputs >"$W/log" 2>&1; then
        not_ok "vitals ($tag): generating the inputs"
        return
    fi
    check "vitals ($tag): gen vitals is the same file at 1 and 3 ranks x 2 threads" bash -c \
        "$(declare -f mpi); LIMIT=$LIMIT; mpi 3 2 '$bin' gen vitals -o vit-$tag-3.h5 --rows 60k --devices 40 --days 21 \
         --start 20240318 --seed 7 -q && h5diff vit-1.h5 vit-$tag-3.h5"
    check "vitals ($tag): gen vitals --kind bands is the same file at 1 and 3 ranks" bash -c \
        "$(declare -f mpi); LIMIT=$LIMIT; mpi 3 1 '$bin' gen vitals --kind bands -o vit-bands-$tag-3.h5 --rows 40k \
         --devices 15 --days 75 --start 20240301 --artefacts 0.01 --seed 8 -q && h5diff vit-bands-1.h5 vit-bands-$tag-3.h5"
    [ "$tag" = plain ] || return 0
    check "vitals: another seed gives other readings; the columns, units and artefacts are there" bash -c \
        "$(declare -f mpi); LIMIT=$LIMIT; mpi 1 1 '$bin' gen vitals -o vit-seed.h5 --rows 60k --devices 40 --days 21 \
         --start 20240318 --seed 9 -q && ! h5diff -q vit-1.h5 vit-seed.h5 && $PY -c \"
import h5py, numpy as np
t = h5py.File('vit-1.h5')['table']
assert sorted(t) == ['diastolic', 'heart_rate', 'patient', 'systolic', 'time'], list(t)
assert t['systolic'].attrs['units'] == 'mmHg' and t['time'].attrs['units'] == 's'
p, tm, hr, s = t['patient'][:], t['time'][:], t['heart_rate'][:], t['systolic'][:]
assert len(np.unique(p)) == 40 and np.all(np.diff(p) >= 0)
same = p[1:] == p[:-1]
assert np.all(np.diff(tm)[same] > 0), 'time ascends within a patient'
gaps = np.diff(tm)[same]
assert gaps.std() > 0.2 * gaps.mean(), 'irregular sampling'
assert np.isnan(hr).sum() > 0 and (hr == 0).sum() > 0 and (s > 260).sum() > 0, 'artefacts'
assert ((hr > 100) & (hr < 200)).sum() > 20, 'tachycardia episodes'
b = h5py.File('vit-bands-1.h5')['table']
assert sorted(b) == ['band', 'distance_m', 'time'] and b['distance_m'].attrs['units'] == 'm'
\""
    expect_fail "vitals: gen vitals with an unknown time zone is a usage error" 64 "time zone" vit-bad.h5 \
        mpi 1 1 "$bin" gen vitals -o vit-bad.h5 --timezone Mars/Olympus
    expect_fail "vitals: gen vitals --kind with another word is a usage error" 64 "kind" vit-bad.h5 \
        mpi 1 1 "$bin" gen vitals -o vit-bad.h5 --kind steps
}

# jobs/vitals.ini and jobs/fitness.ini as they are, on the generated inputs, against pandas.
suite_vitals_jobs() {
    local bin=$1 tag=$2 p="vit-$2"
    vitals_inputs >"$W/log" 2>&1 || return
    local sv="--set pressure.input=vit-1.h5 --set heart.input=vit-1.h5 --set job.chunk_rows=7k"
    local sf="--set daily.input=vit-bands-1.h5 --set job.chunk_rows=5k"
    check "vitals ($tag): jobs/vitals.ini at 2 ranks x 2 threads equals the pandas reference" bash -c \
        "$(declare -f mpi); LIMIT=$LIMIT; mpi 2 2 '$bin' run '$ROOT/jobs/vitals.ini' -q $sv \
         --set pressure.output=$p-pressure.h5 --set heart.output=$p-heart.h5 --set job.run_dir=$p-vitals.run &&
         $PY '$ROOT/tests/vitals/vitals_ref.py' vitals vit-1.h5 $p-pressure.h5 $p-heart.h5"
    check "vitals ($tag): jobs/fitness.ini (two steps) at 3 ranks equals the pandas reference" bash -c \
        "$(declare -f mpi); LIMIT=$LIMIT; mpi 3 1 '$bin' run '$ROOT/jobs/fitness.ini' -q $sf \
         --set daily.output=$p-daily.h5 --set monthly.input=$p-daily.h5 --set monthly.output=$p-monthly.h5 \
         --set job.run_dir=$p-fitness.run &&
         $PY '$ROOT/tests/vitals/vitals_ref.py' fitness vit-bands-1.h5 $p-daily.h5 $p-monthly.h5"
    [ "$tag" = plain ] || return 0
    check "vitals: both jobs give the same bits at 1 rank and at 4" bash -c \
        "$(declare -f mpi); LIMIT=$LIMIT; mpi 1 1 '$bin' run '$ROOT/jobs/vitals.ini' -q $sv \
         --set pressure.output=vit-1r-pressure.h5 --set heart.output=vit-1r-heart.h5 --set job.run_dir=vit-1r-vitals.run &&
         mpi 4 1 '$bin' run '$ROOT/jobs/fitness.ini' -q $sf --set daily.output=vit-4r-daily.h5 \
         --set monthly.input=vit-4r-daily.h5 --set monthly.output=vit-4r-monthly.h5 --set job.run_dir=vit-4r-fitness.run &&
         h5diff --exclude-path /provenance $p-pressure.h5 vit-1r-pressure.h5 &&
         h5diff --exclude-path /provenance $p-heart.h5 vit-1r-heart.h5 &&
         h5diff --exclude-path /provenance $p-monthly.h5 vit-4r-monthly.h5"
}

# The suite (tests/run_tests.sh calls it once per pass with BIN TAG); the valgrind pass
# has nothing of its own here: the plain and ASan passes cover these cases.
suite_vitals() {
    [ "$2" = valgrind ] && return 0
    suite_vitals_gen "$@"
    suite_vitals_jobs "$@"
}
