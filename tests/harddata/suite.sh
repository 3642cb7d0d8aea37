# Hardening of data and memory (issue 18 items 7, 8, 11): the memory estimate against
# max_memory, integer attributes read through one checked reader, overflowing sizes,
# extreme times, a checkpoint's /sizes and attributes, and mostly-invalid data against
# max_invalid_fraction. Sourced by tests/run_tests.sh (helpers in tests/lib.sh). The
# cases are a table; each runs at 1 and 3 ranks (1 under ASan) and checks the exit code,
# the message, that the error is printed once and that no OUTPUT or OUTPUT.tmp is left.
# The inputs are written by tests/harddata/make_cases.py, which states what each holds;
# nothing expected here comes from the program's own output.

harddata_inputs() {
    [ -f harddata-inputs.done ] && return 0
    $PY "$ROOT/tests/harddata/make_cases.py" && touch harddata-inputs.done
}

# One case a line: NAME | RANKS (and "asan": run in the ASan pass too) | INPUT | KERNEL | CODE | PATTERN | LINES (';'-separated: job.KEY
# lines go to [job], the others to the step). max_memory is set where the estimate is
# tested, so that the outcome does not depend on this machine's memory.
HARDDATA_CASES=(
    "sparse ids: 5,000,001 segments from max+1 over max_memory|1 3 asan|hd-sparse.h5|traffic|65|would need about [0-9.]* GB per rank (5,000,001 segments from max(segment)+1; ids are sparse: 1,000 rows), more than max_memory = 1.0 GB: renumber the segment ids densely|job.max_memory = 1G"
    "every segment id at or above the limit|1 3|hd-toobig.h5|traffic|65|every segment id is at or above the limit of 20000000 segments (the largest is 20000999)|"
    "n_segments an array|1 3|hd-attr-array.h5|traffic|65|hd-attr-array.h5:/observations: attribute 'n_segments' is an array; one integer is expected|"
    "n_segments inf|1|hd-attr-inf.h5|traffic|65|attribute 'n_segments' = inf is not an integer|"
    "n_segments 2^63 (uint64)|1 asan|hd-attr-2p63.h5|traffic|65|attribute 'n_segments' = 9223372036854775808 is out of range|"
    "n_segments a string|1|hd-attr-str.h5|traffic|65|attribute 'n_segments' has string type; an integer is expected|"
    "n_segments 10^12|1|hd-attr-huge.h5|traffic|65|attribute n_segments = 1000000000000 is out of range \[1, 20000000\]|"
    "times near INT64_MIN|1 asan|hd-times.h5|traffic|65|not a time between the years 1900 and 2200|"
    "segments = 1000 with larger ids: 80% invalid|1 3|hd-sparse.h5|traffic|65|800 of 1,000 rows (80.0%) are invalid (800 with a segment id outside \[0, 1,000)|segments = 1000"
    "a stricter max_invalid_fraction|1|hd-sparse.h5|traffic|65|more than max_invalid_fraction = 0.1|segments = 4000;job.max_invalid_fraction = 0.1"
    "risk: n_portfolios 2^62 x 3 assets (P x A overflows int64 bytes)|1 3 asan|hd-risk.h5|risk|65|the risk state would need about .* (4,611,686,018,427,387,904 portfolios from the attribute n_portfolios of /transactions x 3 assets), more than max_memory|window = 10;backtest_days = 0;methods = historical"
    "risk: two prices whose ratio overflows (1e-320, then 1)|1 3 asan|hd-risk-ratio.h5|risk|65|hd-risk-ratio.h5:/market/prices: row 21 (date 20240123), column 1: the return 1 / 9.99989e-321 - 1 is not finite|window = 10;backtest_days = 5;mc_scenarios = 1000"
    "traffic: a negative free-flow speed|1 3|hd-ffs.h5|traffic|65|hd-ffs.h5: /segments/free_flow_speed\[1\] = -1 is not a positive finite speed|"
    "aggregate: 90% of a value column out of its valid range|1 3|hd-agg.h5|aggregate|65|900 of 1,000 rows with a key of value column value (90.0%) are invalid (out of its valid range \[0, 99\]|by = meter;values = value;valid = value:0:99"
    "aggregate: a dense layout over max_memory suggests the table layout|1|hd-agg.h5|aggregate|65|layout = dense over the observed keys.*more than max_memory = 1.0 MB: use layout = table|by = meter, value, code;values = value;stats = count, sum;job.max_memory = 1M;job.chunk_rows = 1k"
    "bill: 70% of the rows without a reading|1 3|hd-bill.h5|bill|65|70 of 100 rows (70.0%) are invalid (consumption is NaN|tiers = 0:1.0"
    "aggregate: no row has a key (uint64 ids from 2^63)|1 3 asan|hd-agg-nokey.h5|aggregate|65|hd-agg-nokey.h5:/table: 1,000 of 1,000 rows (100.0%) are invalid (none has a key: NaN in a float key, a uint64 key of 2^63 or more, a missing time)|by = meter;values = value"
    "aggregate: no row has a key (every time NaT)|1 3|hd-agg-nokey.h5|aggregate|65|1,000 of 1,000 rows (100.0%) are invalid (none has a key|columns = k:value;by = k, month;time = time;values = value"
    "aggregate: a string key of Latin-1 bytes|1 3 asan|hd-str-latin1.h5|aggregate|65|hd-str-latin1.h5:/table: column 'k', row 1: byte 4 is 0xe9, not UTF-8: strings are read as UTF-8 text|by = k;values = v"
    "aggregate: a NUL inside a NUL-padded string key|1 3|hd-str-nul.h5|aggregate|65|hd-str-nul.h5:/table: column 'k', row 1: byte 2 is a NUL|by = k;values = v"
    "aggregate: a variable-length string key that is not UTF-8|1|hd-str-vlen.h5|aggregate|65|hd-str-vlen.h5:/table: column 'k', row 2: byte 1 is 0xc3, not UTF-8|by = k;values = v"
    "index: a title of Latin-1 bytes|1 3|hd-ix-title.h5|index|65|hd-ix-title.h5:/corpus: column 'title', row 1: byte 4 is 0xe9, not UTF-8|"
    "episodes: a device name of Latin-1 bytes|1 3|hd-str-latin1.h5|episodes|65|column 'k', row 1: byte 4 is 0xe9, not UTF-8|columns = device:k, value:v;rule = above:1"
)

# harddata_case BIN TAG N LINE: runs one case of the table at N ranks, if it is one of
# its RANKS (the variants of one check run at 1 rank only, and only the cases marked
# asan in the ASan pass, for the time budget).
harddata_case() {
    local bin=$1 tag=$2 n=$3 name ranks input kernel code pattern lines
    IFS='|' read -r name ranks input kernel code pattern lines <<<"$4"
    [[ " $ranks " == *" $n "* ]] || return 0
    [ "$tag" = asan ] && [[ " $ranks " != *" asan "* ]] && return 0
    local p="hd-$tag-$n-$(printf '%s' "$name" | md5sum | cut -c1-8)" l args=()
    IFS=';' read -ra args <<<"$lines"
    write_job "$p" a "$kernel" "$input" "$p.out.h5" "${args[@]}"
    expect_fail "harddata ($tag, $n ranks): $name -> $code" "$code" "$pattern" "$p.out.h5" \
        mpi "$n" 1 "$bin" run "$p.ini" -q
}

suite_harddata() {
    local bin=$1 tag=$2 n c ranks="1 3"
    [ "$tag" = valgrind ] && return 0 # nothing here that the plain and ASan passes do not cover
    [ "$tag" = asan ] && ranks=1
    harddata_inputs >"$W/log" 2>&1 || { not_ok "harddata ($tag): making the inputs"; return; }
    for n in $ranks; do
        for c in "${HARDDATA_CASES[@]}"; do harddata_case "$bin" "$tag" "$n" "$c"; done
    done

    # max_invalid_fraction = 1 keeps today's behaviour: the same input succeeds, and its
    # counts are those make_cases.py wrote (800 of the 1000 ids are >= 1000)
    write_job "hd-$tag-accept" a traffic hd-sparse.h5 "hd-$tag-accept.h5" "segments = 1000" "job.max_invalid_fraction = 1"
    check "harddata ($tag): max_invalid_fraction = 1 accepts 80% invalid rows, counted" bash -c "
        mpi 1 1 '$bin' run hd-$tag-accept.ini -q &&
        $PY -c 'import h5py, sys; a = h5py.File(\"hd-$tag-accept.h5\")[\"traffic\"].attrs
sys.exit(0 if (a[\"rows_total\"], a[\"rows_valid\"], a[\"rows_invalid_segment\"]) == (1000, 200, 800) else 1)'"

    # array string attributes (units, timezone) were read into room for one string
    write_job "hd-$tag-strarr" a aggregate hd-attr-strarr.h5 "hd-$tag-strarr.h5" "by = k" "values = v" "stats = count, mean"
    check "harddata ($tag): string attributes that are arrays are no units: the run and an export succeed, v_mean has no units" \
        bash -c "rm -f hd-$tag-strarr.h5 && mpi 1 1 '$bin' run hd-$tag-strarr.ini -q &&
        '$bin' export hd-attr-strarr.h5 -q >hd-$tag-strarr.csv && cmp hd-$tag-strarr.csv <(printf 'k,v\n0,0\n1,1\n0,2\n1,3\n') &&
        $PY -c 'import h5py, sys; sys.exit(\"units\" in h5py.File(\"hd-$tag-strarr.h5\")[\"aggregate/v_mean\"].attrs)'"

    [ "$tag" = asan ] && return 0 # what follows takes the same paths as the cases above
    # a failed run leaves an existing output as it was (--force replaces only on success)
    write_job "hd-$tag-keep" a traffic hd-sparse.h5 "hd-$tag-keep.h5" "segments = 1000"
    cp hd-sparse.h5 "hd-$tag-keep.h5"
    expect_fail "harddata ($tag): mostly invalid with --force over an existing output -> 65" 65 \
        "are invalid" "" mpi 1 1 "$bin" run "hd-$tag-keep.ini" --force -q
    check "harddata ($tag): ... and the existing output is unchanged" cmp hd-sparse.h5 "hd-$tag-keep.h5"

    # a checkpoint whose /sizes or restarts was changed (size and checksum made to match)
    # is refused with 65 naming it, before anything is allocated from it
    local what
    for what in sizes restarts; do
        write_job "hd-ck-$what" a traffic hd-sparse.h5 "hd-ck-$what.h5" "segments = 5000" \
            "job.chunk_rows = 100" "job.checkpoint_interval = 0.001s"
        H5BATCH_FAULT_SLOW_CHUNK_MS=3 H5BATCH_FAULT_KILL_AFTER_CHUNKS=5 mpi 1 1 "$bin" run "hd-ck-$what.ini" -q \
            >"$W/log" 2>&1
        if ! $PY "$ROOT/tests/harddata/tamper_ckpt.py" "hd-ck-$what.run" "$what" $((2 ** 62)) >>"$W/log" 2>&1; then
            not_ok "harddata ($tag): making a checkpoint to tamper with ($what)"
            continue
        fi
        local pat="/sizes\[0\] = 4611686018427387904 does not fit the [0-9]* bytes of /state"
        [ "$what" = restarts ] && pat="attribute 'restarts' is an array; one integer is expected"
        for n in 1 $([ "$what" = sizes ] && echo 3); do
            expect_fail "harddata ($tag, $n ranks): a checkpoint's $what tampered with -> 65" 65 "$pat" "hd-ck-$what.h5" \
                mpi "$n" 1 "$bin" run "hd-ck-$what.ini" -q
        done
    done
}
