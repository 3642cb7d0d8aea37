# Hardening (issue 18 items 1-6, 10, 12): hostile files, planted links, --force, two jobs
# on one output, special files, dead runs, status on garbage, escapes, fingerprints of the
# files a step reads. Sourced by tests/run_tests.sh, whose helpers (tests/lib.sh: mpi,
# write_job, ok, not_ok; $HB, $PY, $W, $LIMIT) it uses.
#
# The suite is a table: one hz_row per case, with its class, name, rank counts, expected
# exit code, expected fragment of the error (or of the output for exit 0), the output that
# must not be left, the files that must be left untouched, the setup, the command and an
# optional extra assertion. Every case also checks: exactly one error line when it fails,
# no output, no temporary of any name (OUTPUT.tmp, *.<pid>-<rank>-<random>.tmp) and no
# OUTPUT.lock left, the untouched files' type, link target and bytes unchanged, no
# h5batch process left, and no hang (every command runs under a timeout of HZ_LIMIT s).
#
# Cases that already passed before issue 18 live in their own suites and are not repeated
# here: usage errors and the busy run directory (tests/driver), missing or malformed
# inputs, columns, job-file errors, missing or unwritable output folders
# (tests/traffic "bad input"), tampered and changed checkpoints, kills and resumes
# (tests/faults.sh), collective write failures and full disks (tests/collective).
#
# Passes: plain runs every case at 1 rank and the cases marked "1 3" at 3 ranks as well;
# asan runs the cases marked "asan" at 1 rank; valgrind runs nothing.

HZ_LIMIT=30

# hz_hb ARGS...: the binary under test at the case's rank count, under a timeout.
# One rank is a singleton without its own orted (ess_singleton_isolated: 0.4 s less a run,
# the suite's time budget); several ranks are mpirun's.
hz_hb() { OMPI_MCA_ess_singleton_isolated=1 LIMIT=$HZ_LIMIT mpi "$HZ_N" 1 "$HZ_BIN" "$@"; }
# hz_status ARGS...: `h5batch status`, a plain process (it is not an MPI command).
hz_status() { LIMIT=$HZ_LIMIT mpi 1 1 "$HZ_BIN" status "$@"; }

# hz_sig FILE: type, link target and content digest of FILE ("absent" when it is not there).
hz_sig() {
    local f=$1
    if [ -L "$f" ]; then
        echo "link:$(readlink "$f")"
    elif [ -f "$f" ]; then
        echo "file:$(sha256sum <"$f")"
    elif [ -e "$f" ]; then
        stat -c '%F:%t:%T' "$f"
    else
        echo absent
    fi
}

# The inputs every case starts from, made once: the 18-row traffic table, a corpus, a
# reference output of the traffic job (1 rank).
hz_inputs() {
    [ -f hz-base/done ] && { [ "$HZ_TAG" = asan ] || [ -f hz-base/corpus.h5 ]; } && return 0
    rm -rf hz-base && mkdir -p hz-base && cd hz-base || return 1
    $PY "$ROOT/tests/traffic/make_traffic_case.py" tiny.h5 --case tiny >/dev/null &&
        { [ "$HZ_TAG" = asan ] || OMPI_MCA_ess_singleton_isolated=1 "$HZ_PLAIN" gen corpus -o corpus.h5 --docs 60 --vocab 200 -q; } &&
        write_job hz aggregate traffic tiny.h5 out.h5 &&
        OMPI_MCA_ess_singleton_isolated=1 "$HZ_PLAIN" run hz.ini -q && mv out.h5 ref.h5 && rm -rf hz.run && touch done
    local rc=$?
    cd "$W" || return 1
    return $rc
}

# hz_row CLASS NAME RANKS CODE FRAGMENT OUTPUT UNTOUCHED SETUP CMD [POST]: one case, run in
# a fresh folder holding tiny.h5, corpus.h5, ref.h5, hz.ini (traffic, run_dir hz.run,
# output out.h5) and victim (a file no run may touch), once per rank count of RANKS (the
# word asan: the case runs in the asan pass too). SETUP, CMD and POST are shell text; CMD
# calls h5batch as hz_hb; $HZ_N is the rank count.
hz_row() {
    local class=$1 name=$2 ranks=$3 code=$4 frag=$5 out=$6 keep=$7 setup=$8 cmd=$9 post=${10:-}
    local n
    [ "$HZ_TAG" = asan ] && { [[ " $ranks " == *" asan "* ]] || return 0; ranks=1; }
    for n in $ranks; do
        [ "$n" = asan ] && continue
        hz_one "$class" "$name" "$n" "$code" "$frag" "$out" "$keep" "$setup" "$cmd" "$post"
    done
}

hz_one() {
    local class=$1 name=$2 n=$3 code=$4 frag=$5 out=$6 keep=$7 setup=$8 cmd=$9 post=${10}
    local label="hardening ($HZ_TAG, $n rank$([ "$n" = 1 ] || echo s)): $class: $name"
    local d=$W/hz-case/$HZ_TAG-$n-$HZ_COUNT
    HZ_COUNT=$((HZ_COUNT + 1))
    HZ_CASES=$((HZ_CASES + 1))
    rm -rf "$d" && mkdir -p "$d" && cp "$W"/hz-base/*.h5 "$W"/hz-base/hz.ini "$d"/ && echo secret >"$d/victim"
    cd "$d" || return
    HZ_N=$n
    local why="" f before=() after=() rc=0
    if ! eval "$setup" >setup.log 2>&1; then why="setup failed: $(tail -3 setup.log)"; fi
    for f in $keep; do before+=("$(hz_sig "$f")"); done
    if [ -z "$why" ]; then
        (eval "$cmd") >"$W/log" 2>&1
        rc=$?
    fi
    local nerr
    nerr=$(grep -c '^h5batch: error:' "$W/log" 2>/dev/null)
    if [ -n "$why" ]; then
        :
    elif [ "$rc" != "$code" ]; then
        why="exit status $rc, expected $code"
    elif [ "$code" != 0 ] && [ "$nerr" != 1 ]; then
        why="error printed $nerr times, expected once"
    elif [ -n "$frag" ] && ! grep -q -- "$frag" "$W/log"; then
        why="output does not match '$frag'"
    elif [ "$code" != 0 ] && [ -n "$out" ] && [ -e "$out" ] && [[ " $keep " != *" $out "* ]]; then
        why="left $out behind"
    elif [ -n "$post" ] && ! { eval "$post"; } >>"$W/log" 2>&1; then
        why="the case's assertion failed: $post"
    elif [ -n "$out" ] && [ -e "$out.lock" ] && [[ " $keep " != *" $out.lock "* ]]; then
        why="left $out.lock behind"
    elif [ -n "$(find . \( -name '*.[0-9]*-[0-9]*-????????.tmp' -o -name '*.h5.tmp' \) ! -lname '*' -print -quit)" ]; then
        why="left a temporary: $(find . -name '*.tmp' | head -3 | tr '\n' ' ')"
    elif pgrep -f "bin/h5batch(-asan)? .*hz" >/dev/null; then
        why="an h5batch process is left: $(pgrep -af 'bin/h5batch(-asan)? .*hz' | head -2)"
    fi
    if [ -z "$why" ]; then
        for f in $keep; do after+=("$(hz_sig "$f")"); done
        local i
        for i in "${!before[@]}"; do
            [ "${before[$i]}" = "${after[$i]}" ] || why="${keep// */} changed: ${before[$i]} -> ${after[$i]}"
        done
    fi
    cd "$W" || return
    if [ -z "$why" ]; then
        ok "$label"
        HZ_PASS[$class]=$((${HZ_PASS[$class]:-0} + 1))
    else
        echo "$why" >>"$W/log"
        not_ok "$label"
        HZ_FAIL[$class]=$((${HZ_FAIL[$class]:-0} + 1))
    fi
}

# Setups used by several rows.
HZ_LONG_LIST=$(printf '%s.00000000000000000000000000000000,' $(seq 30))99
HZ_STALE="echo '999999 $(hostname) /nowhere/other.run' >"

hz_table() {
    # ---- 1: links planted at fixed names; unique temporaries; the run directory 0700
    hz_row symlinks "a link at OUTPUT.tmp is neither followed nor committed; the new run directory is 0700" "1 3 asan" 0 "" out.h5 "victim out.h5.tmp" \
        "ln -s victim out.h5.tmp" "hz_hb run hz.ini -q" \
        "[ -f out.h5 ] && [ ! -L out.h5 ] && h5diff --exclude-path /provenance ref.h5 out.h5 && [ \"\$(stat -c %a hz.run)\" = 700 ]"
    hz_row symlinks "links at status.json.tmp, manifest.tmp and a checkpoint's temp name are not followed" 1 0 "" \
        out.h5 "victim hz.run/status.json.tmp hz.run/manifest.tmp" \
        "mkdir -m 700 hz.run && for f in status.json.tmp manifest.tmp ckpt-aggregate-000001.h5.tmp; do ln -s ../victim hz.run/\$f; done" \
        "H5BATCH_FAULT_SLOW_CHUNK_MS=2 hz_hb run hz.ini -q --set job.chunk_rows=5 --set job.checkpoint_interval=0.001s" \
        "h5diff --exclude-path /provenance ref.h5 out.h5 && [ ! -L hz.run/status.json ]"
    hz_row symlinks "a link at RUN_DIR/lock -> 73, its target untouched" 1 73 "lock.*symbolic link" out.h5 \
        "victim hz.run/lock" "mkdir hz.run && ln -s ../victim hz.run/lock" "hz_hb run hz.ini -q"
    hz_row symlinks "a link at OUTPUT.lock -> 73, its target untouched" 1 73 "out.h5.lock.*symbolic link" out.h5 \
        "victim out.h5.lock" "ln -s victim out.h5.lock" "hz_hb run hz.ini -q"

    hz_row symlinks "gen: a link at OUTPUT.tmp is not followed" 1 0 "" gen.h5 "victim gen.h5.tmp" \
        "ln -s victim gen.h5.tmp" "hz_hb gen traffic -o gen.h5 --rows 100 --segments 3 --days 1 --events 0 -q" \
        "[ -f gen.h5 ] && [ ! -L gen.h5 ]"

    # ---- 2: names read back from the run directory
    hz_row names "a manifest line naming ../victim deletes nothing (--fresh and on completion)" 1 0 \
        "not a checkpoint file" out.h5 "victim" \
        "mkdir -m 700 hz.run && printf 'aggregate 1 ../victim 7 0 x\naggregate 2 ckpt-other-000002.h5 7 0 x\n' >hz.run/manifest && echo x >hz.run/ckpt-other-000002.h5" \
        "hz_hb run hz.ini --fresh" "[ -f hz.run/ckpt-other-000002.h5 ]"

    # ---- 3: --force
    hz_row force "output = ./input (the input by another name), --force -> 73, the input untouched" "1 3" 73 \
        "the step's input" "" "tiny.h5" "" "hz_hb run hz.ini -q --force --set aggregate.output=./tiny.h5"

    hz_row force "output = a hard link to the input -> 73" 1 73 "the step's input" "" "tiny.h5 hard.h5" \
        "ln tiny.h5 hard.h5" "hz_hb run hz.ini -q --force --set aggregate.output=hard.h5"
    hz_row force "output = /dev/full, --force -> 73, still a device" 1 73 "character device" "" "/dev/full" \
        "" "hz_hb run hz.ini -q --force --set aggregate.output=/dev/full" "[ ! -e /dev/full.lock ]"
    hz_row force "output = a FIFO, --force -> 73, still a FIFO" 1 73 "a FIFO, which h5batch never replaces" "" "fifo" \
        "mkfifo fifo" "hz_hb run hz.ini -q --force --set aggregate.output=fifo"
    hz_row force "output = a link, --force -> 73, the link and its target untouched" 1 73 "symbolic link" "" \
        "victim link.h5" "ln -s victim link.h5" "hz_hb run hz.ini -q --force --set aggregate.output=link.h5"
    hz_row force "output = RUN_DIR/lock, --force -> 73, the lock stays the run's lock" 1 73 "in the run directory" "" "" \
        "mkdir hz.run && echo keep >hz.run/lock" "hz_hb run hz.ini -q --force --set aggregate.output=hz.run/lock" \
        "[ -f hz.run/lock ] && [ ! -s hz.run/lock ]"

    hz_row force "output = a directory -> 73" 1 73 "a directory" "" "dir.h5" \
        "mkdir dir.h5" "hz_hb run hz.ini -q --force --set aggregate.output=dir.h5"
    hz_row force "gen -o a FIFO --force -> 73" 1 73 "a FIFO" "" "fifo" \
        "mkfifo fifo" "hz_hb gen traffic -o fifo --force --rows 100 -q"


    # ---- 4: one output, two jobs
    hz_row claims "a second job on an output being written -> 73 naming the other run; the first's bits" "1 3" 73 \
        "out.h5 is in use by another run (pid [0-9]* on host .*hz.run)" "" "" \
        "sed 's/hz.run/other.run/' hz.ini >other.ini; H5BATCH_FAULT_SLOW_CHUNK_MS=\$((HZ_N == 1 ? 400 : 1000)) hz_hb run hz.ini -q --set job.chunk_rows=\$((HZ_N == 1 ? 6 : 2)) >first.log 2>&1 & for i in \$(seq 100); do [ -e out.h5.lock ] && break; sleep 0.1; done; [ -e out.h5.lock ]" \
        "hz_hb run other.ini -q" "wait; h5diff --exclude-path /provenance ref.h5 out.h5 && [ ! -e out.h5.lock ]"
    hz_row claims "a claim a dead process left is taken over with a warning" "1 asan" 0 \
        "warning: out.h5.lock: taking over the claim on output out.h5 .*pid 999999" out.h5 "" \
        "$HZ_STALE out.h5.lock" "hz_hb run hz.ini" "h5diff --exclude-path /provenance ref.h5 out.h5"
    hz_row claims "a run directory lock of a dead process is taken over with a warning" 1 0 \
        "warning: hz.run/lock: taking over the claim on run directory hz.run" out.h5 "" \
        "mkdir hz.run && $HZ_STALE hz.run/lock" "hz_hb run hz.ini" "[ ! -s hz.run/lock ]"

    # ---- 5: special files are refused before they are opened (no hang)
    hz_row special "input = a FIFO -> 66, no hang" "1 3 asan" 66 "fifo: not a regular file (a FIFO)" out.h5 "fifo" \
        "mkfifo fifo" "hz_hb run hz.ini -q --set aggregate.input=fifo"

    hz_row special "input = /dev/zero -> 66" 1 66 "not a regular file (a character device)" out.h5 "" \
        "" "hz_hb run hz.ini -q --set aggregate.input=/dev/zero"
    hz_row special "stopwords = a FIFO -> 66 with the line, no hang" 1 66 "ix.ini:8: \[step ix\]: stopwords = fifo is a FIFO" \
        ix.h5 "fifo" "mkfifo fifo; write_job ix ix index corpus.h5 ix.h5 'stopwords = fifo'" "hz_hb run ix.ini -q"
    hz_row special "the job file = a FIFO -> 66, no hang" 1 66 "cannot read job file: it is a FIFO" "" "fifo" \
        "mkfifo fifo" "hz_hb run fifo -q"
    hz_row special "status.json = a FIFO -> 66, no hang" 1 66 "is a FIFO, not a status file" "" "" \
        "mkdir hz.run && mkfifo hz.run/status.json" "hz_status hz.run"

    # ---- 6: dead runs
    hz_row dead "a killed run is shown stopped (pid, last update; --json: alive/stopped); the rerun takes its locks over" "1 3" 0 \
        "state *stopped (process [0-9]* on host .* is gone; last update 20" "" "" \
        "H5BATCH_FAULT_KILL_AFTER_CHUNKS=1 hz_hb run hz.ini -q --set job.chunk_rows=5; grep -q '\"state\": \"running\"' hz.run/status.json" \
        "hz_status hz.run" \
        "hz_status hz.run --json | $PY -c 'import json,sys; s=json.load(sys.stdin); assert s[\"state\"]==\"running\" and s[\"alive\"] is False and s[\"stopped\"] is True, s' &&
         hz_hb run hz.ini --set job.chunk_rows=5 >rerun.log 2>&1 && grep -q 'warning: hz.run/lock: taking over the claim on run directory' rerun.log &&
         h5diff --exclude-path /provenance ref.h5 out.h5 && hz_status hz.run | grep -q 'state *complete'"

    hz_row dead "a live run is not shown stopped" 1 0 "state *running" "" "" \
        "H5BATCH_FAULT_SLOW_CHUNK_MS=200 hz_hb run hz.ini -q --set job.chunk_rows=5 & for i in \$(seq 100); do grep -qs running hz.run/status.json && break; sleep 0.1; done" \
        "hz_status hz.run" "wait"

    # ---- 10: smaller ones
    hz_row smaller "status on random bytes -> 65" "1 asan" 65 "not a status file of h5batch" "" "hz.run/status.json" \
        "mkdir hz.run && head -c 300 /dev/urandom >hz.run/status.json" "hz_status hz.run"
    hz_row smaller "status on a directory as status.json -> 66" 1 66 "is a directory, not a status file" "" "" \
        "mkdir -p hz.run/status.json" "hz_status hz.run"
    hz_row smaller "status on a regular file as RUN_DIR -> 66" 1 66 "not a run directory" "" "" "" "hz_status tiny.h5"
    hz_row smaller "invalid UTF-8 in the job name and run directory: status.json is valid JSON" "1 asan" 0 "" "" "" \
        "sed \"s/run_dir = .*/run_dir = r\$(printf '\\377')un/\" hz.ini >\"j\$(printf '\\376\\033').ini\"" \
        "hz_hb run j*.ini -q" \
        "$PY -c 'import json,glob; s=json.load(open(glob.glob(\"r*un/status.json\")[0])); assert s[\"state\"]==\"complete\" and \"\\ufffd\" in s[\"job\"], s'"
    hz_row smaller "a --set list longer than 1,024 bytes is read whole" 1 0 "" out.h5 "" "" \
        "hz_hb run hz.ini -q --set 'aggregate.percentiles=$HZ_LONG_LIST'" \
        "$PY -c 'import h5py; f=h5py.File(\"out.h5\"); assert \"speed_p99\" in f[\"traffic\"], list(f[\"traffic\"])'"
    hz_row smaller "a job-file line longer than the INI reader's buffer is read whole, comment and all" 1 0 "" out.h5 "" \
        "write_job hz aggregate traffic tiny.h5 out.h5 'percentiles = ${HZ_LONG_LIST/99/98}   ; p1..p30, p98'" "hz_hb run hz.ini -q" \
        "$PY -c 'import h5py; f=h5py.File(\"out.h5\"); assert \"speed_p98\" in f[\"traffic\"] and \"speed_p30\" in f[\"traffic\"], list(f[\"traffic\"])'"
    hz_row smaller "terminal escape bytes from a job file are printed escaped" "1 asan" 78 'step x\\x1b\[31m' "" "" \
        "printf '[job]\n[step x\033[31m]\n' >esc.ini" "hz_hb run esc.ini" "! grep -q \$'\\033' '$W/log'"
    hz_row smaller "MPI-IO lock files and temporaries of aborted checkpoint writes are removed, others kept" 1 0 "" out.h5 \
        "keep.lock hz.run/ckpt-other.lock" \
        "mkdir -m 700 hz.run && touch keep.lock hz.run/ckpt-other.lock hz.run/ckpt-aggregate-000001.h5.tmp hz.run/ckpt-aggregate-000003.h5.77-0-0badf00d.tmp hz.run/ckpt-aggregate-000003.h5.77-0-0badf00d.tmp-1234-0.lock" \
        "hz_hb run hz.ini -q" "[ -z \"\$(ls hz.run | grep '^ckpt-aggregate')\" ]"

    # ---- 12: the fingerprint covers the files a step reads
    hz_row fingerprint "a changed stop-word file (same size and time) is not taken as complete -> 73" 1 73 \
        "ix.h5: output exists and is not a completed output of this job" "" "ix.h5" \
        "printf 'the\nand\n' >stop.txt; write_job ix ix index corpus.h5 ix.h5 'stopwords = stop.txt'; hz_hb run ix.ini -q && hz_hb run ix.ini 2>&1 | grep -q 'already complete' && touch -r stop.txt t0 && printf 'thy\nand\n' >stop.txt && touch -r t0 stop.txt" \
        "hz_hb run ix.ini -q"
}

suite_hardening() {
    local bin=$1 tag=$2
    [ "$tag" = valgrind ] && return 0
    HZ_BIN=$bin HZ_TAG=$tag HZ_PLAIN=$HB HZ_COUNT=0 HZ_CASES=0
    declare -gA HZ_PASS=() HZ_FAIL=()
    if ! hz_inputs >"$W/log" 2>&1; then
        not_ok "hardening ($tag): making the inputs"
        return
    fi
    hz_table
    local c line=""
    for c in symlinks names force claims special dead smaller fingerprint; do
        line+=" $c ${HZ_PASS[$c]:-0}/$((${HZ_PASS[$c]:-0} + ${HZ_FAIL[$c]:-0}))"
    done
    echo "# hardening ($tag): $HZ_CASES cases, passed by class:$line"
}
