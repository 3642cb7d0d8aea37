# The aggregate kernel's suites (DESIGN.md 4.4); sourced by tests/run_tests.sh, whose
# helpers (check, expect_fail, mpi, fault_suite, $PY, $W, $ROOT, $LIMIT, $HB) they use.
# Expected values come from tests/aggregate/aggregate_ref.py (pandas groupby, numpy percentiles,
# exact sums and variances, local time through zoneinfo), written from the contract,
# and from the traffic kernel (the same question asked two ways). Each function takes
# (BIN TAG). `tests/run_tests.sh suite_aggregate_reference ...` runs single suites.

# agg_job NAME INPUT OUTPUT [lines]: a job file with one aggregate step named agg.
agg_job() {
    local name=$1 in=$2 out=$3
    shift 3
    {
        printf '[job]\nrun_dir = %s.run\nchunk_rows = 7k\n\n[step agg]\nkernel = aggregate\n' "$name"
        printf 'input = %s\noutput = %s\n' "$in" "$out"
        for l in "$@"; do printf '%s\n' "$l"; done
    } >"$name.ini"
}

# The inputs, made once for both passes.
agg_inputs() {
    [ -f agg-inputs.done ] && return 0
    local c
    for c in edge ms strval many empty grow spread ordered; do
        $PY "$ROOT/tests/aggregate/make_aggregate_case.py" "agg-$c.h5" --case "$c" || return 1
    done
    mpi 2 1 "$HB" gen traffic -o agg-traffic.h5 --rows 200k --segments 120 --days 40 --start 20240320 \
        --timezone Europe/Berlin --events 0 --invalid 0.02 -q && touch agg-inputs.done
}

# The jobs every pass checks against the reference: name, input, then the step's lines.
AGG_ALL_STATS="stats = count, sum, mean, min, max, std, var, first, last, p0, p5, p50, p95, p100, above:100, below:20"
agg_reference_jobs() {
    agg_job "$1-dense" agg-edge.h5 "$1-dense.h5" "columns = time:timestamp, meter:meter_id" "by = meter, year" \
        "time = time" "timezone = Europe/Berlin" "values = consumption, temp, wide" \
        "valid = consumption:0:1e6, temp:-50:50" "$AGG_ALL_STATS"
    agg_job "$1-strings" agg-edge.h5 "$1-strings.h5" "columns = time:timestamp" "by = district, code, month" \
        "time = time" "timezone = Europe/Berlin" "values = consumption" "valid = consumption:0:1e6" \
        "stats = count, sum, mean, min, max, std, var, first, last, p5, p50, p99.9" "layout = table"
    agg_job "$1-ints" agg-edge.h5 "$1-ints.h5" "by = small, u16, u32, fkey, day_of_week" "time = tfloat" \
        "timezone = America/New_York" "values = temp" "valid = temp:-50:" \
        "stats = count, mean, min, max, p50, above:0, below:-10"
    agg_job "$1-weeks" agg-edge.h5 "$1-weeks.h5" "by = week, hour" "time = timestamp" \
        "timezone = America/New_York" "values = consumption" "valid = consumption:0:1e6" "stats = count, mean, p50"
    agg_job "$1-howe" agg-edge.h5 "$1-howe.h5" "by = date, quarter" "time = timestamp" \
        "timezone = Australia/Lord_Howe" "values = consumption" "stats = count, sum, last" "layout = table"
    agg_job "$1-ms" agg-edge.h5 "$1-ms.h5" "by = year, quarter, day_of_week" "time = timestamp_ms" \
        "time_unit = ms" "timezone = Asia/Kolkata" "values = consumption" "valid = consumption:0:1e6" \
        "stats = count, mean, first, last, p25" "layout = table"
}

# Every output value against the pandas reference, and a two-step pipeline.
suite_aggregate_reference() {
    local bin=$1 tag=$2 j
    local p="agg-ref-$tag"
    if ! agg_inputs >"$W/log" 2>&1; then
        not_ok "aggregate ($tag): making the inputs"
        return
    fi
    agg_reference_jobs "$p"
    for j in dense strings ints weeks howe ms; do
        check "aggregate ($tag): $j at 2 ranks x 2 threads equals the pandas reference" bash -c \
            "$(declare -f mpi); LIMIT=$LIMIT; mpi 2 2 '$bin' run '$p-$j.ini' -q && $PY '$ROOT/tests/aggregate/aggregate_ref.py' '$p-$j.ini' agg"
    done
    check "aggregate ($tag): string keys are labels, DST and ISO weeks as zoneinfo has them" $PY -c "
import h5py, numpy as np
s = h5py.File('$p-strings.h5')['aggregate']
assert s['district'].dtype.kind == 'S' and '' in [x.decode() for x in s['district'][:]]
assert 'Zürich' in [x.decode() for x in s['district'][:]]
w = h5py.File('$p-weeks.h5')['aggregate']
assert 202053 in w['week'][:] and 202501 in w['week'][:], w['week'][:]
d = h5py.File('$p-dense.h5')['aggregate']
assert d['consumption_mean'].dims[0][0].name == '/aggregate/meter' and d['consumption_mean'].attrs['units'] == 'm3'
assert d['consumption_var'].attrs['units'] == '(m3)^2' and d['consumption_count'].dtype == np.uint64
"
    agg_job "$p-grow" agg-grow.h5 "$p-grow.h5" "by = cell" "time = time" "values = value" \
        "stats = count, sum, mean, min, max, first, last, p50, p95" "layout = table"
    check "aggregate ($tag): a key box that grows, is left and re-entered (dense path and hash path mixed) equals pandas" bash -c \
        "$(declare -f mpi); LIMIT=$LIMIT; mpi 1 1 '$bin' run '$p-grow.ini' -q && $PY '$ROOT/tests/aggregate/aggregate_ref.py' '$p-grow.ini' agg &&
         mpi 3 2 '$bin' run '$p-grow.ini' -q --set agg.output=$p-grow-3.h5 --set job.run_dir=$p-grow-3.run &&
         h5diff --exclude-path /provenance $p-grow.h5 $p-grow-3.h5"
    agg_job "$p-spread" agg-spread.h5 "$p-spread.h5" "by = meter, month" "time = time" "values = sys, wide" \
        "valid = sys:40:260" "stats = count, sum, mean, std, min, max, first, last, p50, p95" "layout = table"
    sed -i 's/^chunk_rows = 7k$/chunk_rows = 1k/' "$p-spread.ini"
    check "aggregate ($tag): groups met about once a chunk (rows forwarded to their owners) equal pandas, bit-identical at 1-3 ranks" bash -c \
        "$(declare -f mpi); LIMIT=$LIMIT; mpi 2 2 '$bin' run '$p-spread.ini' -q && $PY '$ROOT/tests/aggregate/aggregate_ref.py' '$p-spread.ini' agg &&
         mpi 1 1 '$bin' run '$p-spread.ini' -q --set agg.output=$p-spread-1.h5 --set job.run_dir=$p-spread-1.run &&
         mpi 3 1 '$bin' run '$p-spread.ini' -q --set agg.output=$p-spread-3.h5 --set job.run_dir=$p-spread-3.run &&
         h5diff --exclude-path /provenance $p-spread.h5 $p-spread-1.h5 && h5diff --exclude-path /provenance $p-spread.h5 $p-spread-3.h5"
    agg_job "$p-empty-d" agg-empty.h5 "$p-empty-d.h5" "by = meter" "values = value" "stats = count, mean, p50"
    agg_job "$p-empty-t" agg-empty.h5 "$p-empty-t.h5" "by = meter" "values = value" "stats = count, mean, p50" \
        "layout = table"
    sed -i 's/^chunk_rows = 7k$/&\nmax_invalid_fraction = 1/' "$p-empty-d.ini" "$p-empty-t.ini"
    expect_fail "aggregate ($tag): no group at all (every key missing) is 65 by default" 65 \
        "agg-empty.h5:/table: 10 of 10 rows (100.0%) are invalid (none has a key: NaN in a float key" "$p-empty-0.h5" \
        mpi 2 1 "$bin" run "$p-empty-d.ini" -q --set job.max_invalid_fraction=0.5 --set agg.output=$p-empty-0.h5
    check "aggregate ($tag): no group at all (every key missing) with max_invalid_fraction = 1: empty arrays, every row counted" bash -c \
        "$(declare -f mpi); LIMIT=$LIMIT; mpi 2 1 '$bin' run '$p-empty-d.ini' -q && mpi 3 1 '$bin' run '$p-empty-t.ini' -q &&
         $PY '$ROOT/tests/aggregate/aggregate_ref.py' '$p-empty-d.ini' agg && $PY '$ROOT/tests/aggregate/aggregate_ref.py' '$p-empty-t.ini' agg"
    printf '%s\n' '[job]' "run_dir = $p-pipe.run" 'chunk_rows = 5k' \
        '[step daily]' 'kernel = aggregate' 'input = agg-edge.h5' "output = $p-daily.h5" \
        'columns = time:timestamp, meter:meter_id' 'by = meter, date, month' 'time = time' \
        'timezone = Europe/Berlin' 'values = consumption' 'valid = consumption:0:1e6' 'stats = sum' 'layout = table' \
        '[step monthly]' 'kernel = aggregate' "input = $p-daily.h5" "output = $p-monthly.h5" 'table = /aggregate' \
        'columns = month:month' 'by = meter, month' 'values = consumption_sum' 'stats = count, mean, max' >"$p-pipe.ini"
    check "aggregate ($tag): pipeline daily sums -> monthly mean of daily sums, both steps equal pandas" bash -c \
        "$(declare -f mpi); LIMIT=$LIMIT; mpi 3 1 '$bin' run '$p-pipe.ini' -q &&
         $PY '$ROOT/tests/aggregate/aggregate_ref.py' '$p-pipe.ini' daily && $PY '$ROOT/tests/aggregate/aggregate_ref.py' '$p-pipe.ini' monthly"
}

# Bit-identical outputs at 1-4 ranks and 1-2 threads and any chunking.
suite_aggregate_ranks() {
    local bin=$1 tag=$2 n th j
    [ "$tag" = plain ] || return 0
    agg_inputs >"$W/log" 2>&1 || return
    # fewer rows than ranks: a rank that reads no row holds no result; the table layout
    # hung at 2 ranks on one row (that rank made the dense layout's collective calls)
    $PY -c "import sys, h5py, numpy as np
with h5py.File(sys.argv[1], 'w') as f:
    f['one/k'], f['one/v'], f['one/t'] = np.array([7]), np.array([1.5]), np.array([1700000000])
    f['two/k'], f['two/v'], f['two/t'] = np.array([7, 7]), np.array([1.5, 2.5]), np.array([1700000000, 1700000001])" agg-few.h5
    for j in one two; do
        for lay in table dense; do
            agg_job "agg-few-$j-$lay" agg-few.h5 "agg-few-$j-$lay-1.h5" "table = /$j" "by = k, month" "time = t" \
                "values = v" "stats = count, mean, p50, first, std" "layout = $lay"
            sed -i 's/^chunk_rows = 7k$/chunk_rows = 1/' "agg-few-$j-$lay.ini"
            check "aggregate ranks: $j row(s), layout $lay, at 1 to 3 ranks: the same bits, no hang" bash -c \
                "$(declare -f mpi); LIMIT=60; mpi 1 1 '$bin' run agg-few-$j-$lay.ini -q &&
                 for n in 2 3; do mpi \$n 1 '$bin' run agg-few-$j-$lay.ini -q --set agg.output=agg-few-$j-$lay-\$n.h5 \
                     --set job.run_dir=agg-few-$j-$lay-\$n.run &&
                     h5diff --exclude-path /provenance agg-few-$j-$lay-1.h5 agg-few-$j-$lay-\$n.h5 || exit 1; done &&
                 $PY -c 'import h5py; g = h5py.File(\"agg-few-$j-$lay-1.h5\")[\"aggregate\"]
assert list(g[\"k\"][:]) == [7] and int(g[\"v_count\"][...].sum()) == {\"one\": 1, \"two\": 2}[\"$j\"]'"
        done
    done
    agg_reference_jobs agg-rk
    for j in dense strings; do
        check "aggregate ranks: $j at 1 rank, 1 thread" mpi 1 1 "$bin" run "agg-rk-$j.ini" -q
        for n in 1 2 3 4; do
            for th in 1 2; do
                [ "$n$th" = 11 ] && continue
                check "aggregate ranks: $j at $n ranks x $th threads is bit-identical" bash -c \
                    "$(declare -f mpi); LIMIT=$LIMIT; mpi $n $th '$bin' run agg-rk-$j.ini -q \
                     --set agg.output=agg-rk-$j-$n-$th.h5 --set job.run_dir=agg-rk-$j-$n-$th.run &&
                     h5diff --exclude-path /provenance agg-rk-$j.h5 agg-rk-$j-$n-$th.h5"
            done
        done
    done
    # an input ordered by its first key: each rank owns a range of it (the groups of its
    # block stay where they are), killed and resumed on another rank count; the same bits
    agg_job agg-ord agg-ordered.h5 agg-ord.h5 "columns = time:timestamp, meter:meter_id" "by = meter, district, year" \
        "time = time" "timezone = Europe/Berlin" "values = consumption, wide" "valid = consumption:0:1e6" \
        "stats = count, sum, mean, std, first, last, p50, p95, above:100"
    sed -i 's/^chunk_rows = 7k$/chunk_rows = 1k/' agg-ord.ini
    check "aggregate ranks: an input ordered by meter equals pandas" bash -c \
        "$(declare -f mpi); LIMIT=$LIMIT; mpi 1 1 '$bin' run agg-ord.ini -q && $PY '$ROOT/tests/aggregate/aggregate_ref.py' agg-ord.ini agg"
    for n in 2 3 4; do
        check "aggregate ranks: an input ordered by meter, at $n ranks: owners by ranges of meter, the same bits" bash -c \
            "$(declare -f mpi); LIMIT=$LIMIT; mpi $n 2 '$bin' run agg-ord.ini -v --set agg.output=agg-ord-$n.h5 \
             --set job.run_dir=agg-ord-$n.run 2>agg-ord-$n.log && grep -q 'ordered by meter: each rank owns a range' agg-ord-$n.log &&
             h5diff --exclude-path /provenance agg-ord.h5 agg-ord-$n.h5"
    done
    check "aggregate ranks: an input in random meter order keeps the owners by hash" bash -c \
        "$(declare -f mpi); LIMIT=$LIMIT; mpi 3 1 '$bin' run agg-rk-dense.ini -v --set agg.output=agg-rk-hash.h5 \
         --set job.run_dir=agg-rk-hash.run 2>agg-rk-hash.log && grep -q 'groups on rank' agg-rk-hash.log &&
         ! grep -q 'ordered by' agg-rk-hash.log"
    rm -rf agg-ord-k.run agg-ord-k.h5
    H5BATCH_FAULT_SLOW_CHUNK_MS=3 H5BATCH_FAULT_RANK=1 H5BATCH_FAULT_KILL_AFTER_CHUNKS=7 mpi 3 1 "$bin" run agg-ord.ini -q \
        --set agg.output=agg-ord-k.h5 --set job.run_dir=agg-ord-k.run --set job.checkpoint_interval=0.001s >"$W/log" 2>&1
    check "aggregate ranks: an ordered input killed at 3 ranks, resumed at 2 (other blocks, other ranges): the same bits" bash -c \
        "$(declare -f mpi); LIMIT=$LIMIT; grep -q ckpt- agg-ord-k.run/manifest && mpi 2 1 '$bin' run agg-ord.ini \
         --set agg.output=agg-ord-k.h5 --set job.run_dir=agg-ord-k.run >agg-ord-k.log 2>&1 &&
         grep -q 'resuming from checkpoint' agg-ord-k.log && h5diff --exclude-path /provenance agg-ord.h5 agg-ord-k.h5"
    check "aggregate ranks: chunk_rows 1M gives the bits of 7k" bash -c \
        "$(declare -f mpi); LIMIT=$LIMIT; mpi 3 2 '$bin' run agg-rk-dense.ini -q --set job.chunk_rows=1M \
         --set agg.output=agg-rk-big.h5 --set job.run_dir=agg-rk-big.run &&
         h5diff --exclude-path /provenance agg-rk-dense.h5 agg-rk-big.h5"
}

# Killed at random moments, resumed on other rank counts: the same bits (tests/faults.sh).
suite_aggregate_faults() {
    local bin=$1 tag=$2
    [ "$tag" = plain ] || return 0
    agg_inputs >"$W/log" 2>&1 || return
    agg_job agg-ft agg-edge.h5 agg-ft.h5 "columns = time:timestamp, meter:meter_id" "by = meter, district, quarter" \
        "time = time" "timezone = Europe/Berlin" "values = consumption, wide" "valid = consumption:0:1e6" \
        "stats = count, sum, mean, std, first, last, p50, p95, above:100"
    sed -i 's/^chunk_rows = 7k$/chunk_rows = 1k/' agg-ft.ini
    fault_suite aggregate agg-ft.ini agg agg-ft.h5 "stats=count, sum"
}

# Traffic as a case of the general kernel: the same count, mean and percentiles.
suite_aggregate_traffic() {
    local bin=$1 tag=$2
    [ "$tag" = plain ] || return 0
    agg_inputs >"$W/log" 2>&1 || return
    printf '%s\n' '[job]' 'run_dir = agg-tr.run' 'chunk_rows = 20k' \
        '[step traffic]' 'kernel = traffic' 'input = agg-traffic.h5' 'output = agg-tr-traffic.h5' \
        'timezone = Europe/Berlin' 'percentiles = 50, 85, 95' \
        '[step agg]' 'kernel = aggregate' 'input = agg-traffic.h5' 'output = agg-tr-agg.h5' 'table = /observations' \
        'by = segment, day_of_week, hour' 'time = time' 'timezone = Europe/Berlin' 'values = speed' \
        'valid = speed:0:250' 'stats = count, mean, p50, p85, p95' >agg-tr.ini
    check "aggregate: by segment, day_of_week, hour equals the traffic kernel bit for bit" bash -c \
        "$(declare -f mpi); LIMIT=$LIMIT; mpi 3 2 '$bin' run agg-tr.ini -q && $PY -c \"
import h5py, numpy as np
t = h5py.File('agg-tr-traffic.h5')['traffic']
a = h5py.File('agg-tr-agg.h5')['aggregate']
S = t['count'].shape[0]
seg, dow, hour = a['segment'][:], a['day_of_week'][:], a['hour'][:]
assert list(dow) == list(range(7)) and list(hour) == list(range(24)), (dow, hour)
keep = (seg >= 0) & (seg < S)
assert (seg[keep] == np.arange(S)).all(), 'every segment observed'
assert t.attrs['rows_valid'] == a['speed_count'][keep].sum() > 0
for ours, theirs in [('count', 'count'), ('mean', 'mean_speed'), ('p50', 'speed_p50'), ('p85', 'speed_p85'),
                     ('p95', 'speed_p95')]:
    x, y = a['speed_' + ours][keep], t[theirs][...]
    assert x.dtype == y.dtype and np.array_equal(x, y, equal_nan=True), ours
\""
    # about 1,200 speeds a group: percentiles read off float keys, not sorted small
    agg_job agg-tr-coarse agg-traffic.h5 agg-tr-coarse.h5 "table = /observations" "by = day_of_week, hour" \
        "time = time" "timezone = Europe/Berlin" "values = speed" "valid = speed:0:250" \
        "stats = count, sum, mean, p0, p5, p50, p95, p99.9, p100"
    check "aggregate: groups of a thousand float32 speeds (day_of_week x hour) equal pandas" bash -c \
        "$(declare -f mpi); LIMIT=$LIMIT; mpi 2 1 '$bin' run agg-tr-coarse.ini -q &&
         $PY '$ROOT/tests/aggregate/aggregate_ref.py' agg-tr-coarse.ini agg"
}

# Bad input and bad options: the contract's exit codes, one error line, no output left.
suite_aggregate_bad() {
    local bin=$1 tag=$2 n
    agg_inputs >"$W/log" 2>&1 || return
    for n in 1 3; do
        local p="agg-bad-$tag-$n" o="agg-bad-$tag-$n.h5"
        agg_job "$p-col" agg-edge.h5 "$o" "by = nosuch" "values = consumption"
        expect_fail "aggregate bad input ($tag, $n ranks): unknown column -> 65" 65 "missing column 'nosuch'" "$o" \
            mpi $n 1 "$bin" run "$p-col.ini"
        agg_job "$p-map" agg-edge.h5 "$o" "columns = meter:meter_number" "by = meter" "values = consumption"
        expect_fail "aggregate bad input ($tag, $n ranks): a mapped column that is not there -> 65" 65 \
            "missing column 'meter_number'" "$o" mpi $n 1 "$bin" run "$p-map.ini"
        agg_job "$p-cal" agg-edge.h5 "$o" "by = meter_id, month" "values = consumption"
        expect_fail "aggregate bad input ($tag, $n ranks): a calendar key without time -> 78 with its line" 78 \
            "$p-cal.ini:9: .*calendar key 'month' needs the time column" "$o" mpi $n 1 "$bin" run "$p-cal.ini"
        agg_job "$p-str" agg-strval.h5 "$o" "by = meter" "values = reading"
        expect_fail "aggregate bad input ($tag, $n ranks): a string value column -> 65" 65 \
            "value column 'reading' has string type" "$o" mpi $n 1 "$bin" run "$p-str.ini"
        agg_job "$p-dense" agg-many.h5 "$o" "by = meter, hourly" "values = value" "stats = count" "max_memory = 10M"
        expect_fail "aggregate bad input ($tag, $n ranks): dense layout over max_memory -> 65 suggesting the table layout" \
            65 "layout = dense over the observed keys (meter 60000 x hourly 24.*use layout = table" "$o" \
            mpi $n 1 "$bin" run "$p-dense.ini"
        agg_job "$p-mem" agg-many.h5 "$o" "by = meter" "values = value" "stats = p50" "max_memory = 1M"
        sed -i 's/^chunk_rows = 7k$/chunk_rows = 1k/' "$p-mem.ini"
        expect_fail "aggregate bad input ($tag, $n ranks): more groups than max_memory allows -> 65" 65 \
            "the groups on rank [0-9] would need .* more than max_memory = 1.0 MB" "$o" mpi $n 1 "$bin" run "$p-mem.ini"
        agg_job "$p-unit" agg-ms.h5 "$o" "by = month" "time = timestamp" "values = consumption"
        expect_fail "aggregate bad input ($tag, $n ranks): times in ms read as seconds -> 65 naming the unit that fits" \
            65 "time column 'timestamp', row [0-9]*: .* years 1900 and 2200 in seconds .*time_unit = ms fits" "$o" \
            mpi $n 1 "$bin" run "$p-unit.ini"
        agg_job "$p-fkey" agg-edge.h5 "$o" "by = temp" "values = consumption"
        expect_fail "aggregate bad input ($tag, $n ranks): a fractional float key -> 65" 65 \
            "key column 'temp', row [0-9]*: .* is not an integer" "$o" mpi $n 1 "$bin" run "$p-fkey.ini"
        agg_job "$p-tab" agg-edge.h5 "$o" "table = /nowhere" "by = meter_id" "values = consumption"
        expect_fail "aggregate bad input ($tag, $n ranks): no such table -> 65" 65 "no such table" "$o" \
            mpi $n 1 "$bin" run "$p-tab.ini"
        rm -rf ./agg-bad-*.run
    done
    local p="agg-bad-$tag" o="agg-bad-$tag.h5"
    agg_job "$p-stat" agg-edge.h5 "$o" "by = meter_id" "values = consumption" "stats = count, median"
    expect_fail "aggregate bad input ($tag): unknown statistic -> 78" 78 "$p-stat.ini:11: .*unknown statistic 'median'" \
        "$o" "$bin" run "$p-stat.ini"
    # statistics whose datasets would share a name: each message names both and what they share
    agg_job "$p-twice" agg-edge.h5 "$o" "by = meter_id" "values = consumption" "stats = count, mean, count"
    expect_fail "aggregate bad input ($tag): a statistic listed twice -> 78" 78 \
        "$p-twice.ini:11: .*stats: 'count' is listed twice" "$o" "$bin" run "$p-twice.ini"
    agg_job "$p-same" agg-edge.h5 "$o" "by = meter_id" "values = consumption" "stats = above:100, above:1e2"
    expect_fail "aggregate bad input ($tag): one threshold written two ways -> 78 naming both" 78 \
        "$p-same.ini:11: .*stats: 'above:100' and 'above:1e2' are the same statistic (both are consumption_above100)" \
        "$o" "$bin" run "$p-same.ini"
    agg_job "$p-g" agg-edge.h5 "$o" "by = meter_id" "values = consumption" "stats = p99.99991, count, p99.99992"
    expect_fail "aggregate bad input ($tag): two percentiles that %g names alike -> 78 naming both and the dataset" 78 \
        "stats: 'p99.99991' and 'p99.99992' would both be written as dataset consumption_p99.9999: .*6 significant" \
        "$o" "$bin" run "$p-g.ini"
    agg_job "$p-valid" agg-edge.h5 "$o" "by = meter_id" "values = consumption" "valid = temp:0:1"
    expect_fail "aggregate bad input ($tag): a valid range for a column that is not a value -> 78" 78 \
        "valid: 'temp' is not one of the values" "$o" "$bin" run "$p-valid.ini"
    agg_job "$p-valid2" agg-edge.h5 "$o" "by = meter_id" "values = consumption" "valid = consumption:0:1, consumption:0:1e6"
    expect_fail "aggregate bad input ($tag): two valid ranges of one value -> 78 (the second replaced the first)" 78 \
        "$p-valid2.ini:11: .*valid: 'consumption' has two ranges" "$o" "$bin" run "$p-valid2.ini"
    agg_job "$p-first" agg-edge.h5 "$o" "by = meter_id" "values = consumption" "stats = first"
    expect_fail "aggregate bad input ($tag): first without time -> 78" 78 "'first' is by time and needs the time column" \
        "$o" "$bin" run "$p-first.ini"
    agg_job "$p-nokey" agg-edge.h5 "$o" "values = consumption"
    expect_fail "aggregate bad input ($tag): no by -> 78" 78 "'by' is missing" "$o" "$bin" run "$p-nokey.ini"
    agg_job "$p-layout" agg-edge.h5 "$o" "by = meter_id" "values = consumption" "layout = wide"
    expect_fail "aggregate bad input ($tag): unknown layout -> 78" 78 "layout = 'wide' is not one of dense|table" "$o" \
        "$bin" run "$p-layout.ini"
    # the key's coordinates and consumption_count are both /aggregate/consumption_count:
    # once a failed write after the whole run (74, naming the temporary file)
    agg_job "$p-clash" agg-edge.h5 "$o" "columns = consumption_count:meter_id" "by = consumption_count" \
        "values = consumption" "stats = count, p50"
    expect_fail "aggregate bad input ($tag): a key named like a statistic's dataset -> 78 before any work" 78 \
        "by: the key 'consumption_count' has the name of the dataset of value consumption and stat count" "$o" \
        "$bin" run "$p-clash.ini"
    rm -rf ./agg-bad-*.run
}

# The documented snippets (pandas, xarray) run on a real output.
suite_aggregate_docs() {
    local bin=$1 tag=$2
    [ "$tag" = plain ] || return 0
    agg_inputs >"$W/log" 2>&1 || return
    check "aggregate: kernels aggregate lists its options" bash -c "'$bin' kernels aggregate | grep -q 'max_memory'"
    mkdir -p agg-demo
    agg_job agg-doc agg-edge.h5 agg-demo/monthly.h5 "columns = time:timestamp, meter:meter_id" \
        "by = meter, month" "time = time" "timezone = Europe/Berlin" "values = consumption" \
        "valid = consumption:0:1e6" "stats = count, mean, p95"
    agg_job agg-doc-table agg-edge.h5 agg-demo/monthly-table.h5 "columns = time:timestamp, meter:meter_id" \
        "by = meter, month" "time = time" "timezone = Europe/Berlin" "values = consumption" \
        "valid = consumption:0:1e6" "stats = count, mean, p95" "layout = table"
    local s
    for s in pandas xarray; do
        $PY - "$ROOT/docs/aggregate.md" "$s" >"agg-snippet-$s.py" <<'PYEOF'
import re, sys
text = open(sys.argv[1]).read()
block = text.split("<!-- snippet: aggregate-" + sys.argv[2], 1)[1]
print(re.search(r"```python\n(.*?)```", block, re.S).group(1))
PYEOF
        sed -i 's#demo/#agg-demo/#g' "agg-snippet-$s.py"
    done
    check "aggregate: the job runs, and docs/aggregate.md's pandas snippet reads both layouts" bash -c \
        "$(declare -f mpi); LIMIT=$LIMIT; mpi 2 1 '$bin' run agg-doc.ini -q && mpi 2 1 '$bin' run agg-doc-table.ini -q &&
         $PY agg-snippet-pandas.py"
    if $PY -c "import xarray, h5netcdf" 2>/dev/null; then
        check "aggregate: docs/aggregate.md's xarray snippet sees named dimensions and labels" $PY agg-snippet-xarray.py
    else
        echo "skip - xarray or h5netcdf is not installed (python3-xarray, python3-h5netcdf)"
    fi
}

# The suite (tests/run_tests.sh calls it once per pass with BIN TAG); the valgrind pass
# has nothing of its own here: the plain and ASan passes cover these cases.
# A large output (2.9 x 10^6 groups: blocks of 4 MB and more a rank), whose blocks are
# written around the page cache (O_DIRECT, io/out.c): the same bits as through it
# (H5BATCH_FAULT_NO_DIRECT, as on a file system without O_DIRECT) at 1 and 2 ranks, and
# counts and sums against pandas.
suite_aggregate_direct() {
    local bin=$1 tag=$2 n d p
    p="agg-direct-$tag"
    if [ ! -f agg-direct.h5 ] && ! mpi 2 1 "$HB" gen vitals -o agg-direct.h5 --rows 3M --devices 1500k --days 90 \
        --start 20240101 --timezone UTC -q >"$W/log" 2>&1; then
        not_ok "aggregate ($tag): making the large input"
        return
    fi
    for n in 1 2; do
        for d in direct cache; do
            agg_job "$p-$n-$d" agg-direct.h5 "$p-$n-$d.h5" "columns = meter:patient, value:systolic" "by = meter, month" \
                "time = time" "values = value" "valid = value:40:260" "stats = count, sum, mean, p50" "layout = table"
            if ! (if [ "$d" = cache ]; then export H5BATCH_FAULT_NO_DIRECT=1; fi
                mpi "$n" 1 "$bin" run "$p-$n-$d.ini" -v --force) >"$p-$n-$d.log" 2>&1; then
                cp "$p-$n-$d.log" "$W/log"
                not_ok "aggregate ($tag): the large output at $n rank(s), $d"
                return
            fi
        done
    done
    check "aggregate ($tag): a large output's blocks go around the page cache, unless the file system takes no O_DIRECT" \
        bash -c "grep -q 'written around the page cache' $p-1-direct.log && grep -q 'written around the page cache' $p-2-direct.log &&
            ! grep -q 'written around the page cache' $p-1-cache.log $p-2-cache.log"
    check "aggregate ($tag): a large output written around the page cache is bit-identical to one written through it, at 1 and 2 ranks" \
        bash -c "h5diff --exclude-path /provenance $p-1-cache.h5 $p-1-direct.h5 && h5diff --exclude-path /provenance $p-1-cache.h5 $p-2-direct.h5 &&
            h5diff --exclude-path /provenance $p-1-cache.h5 $p-2-cache.h5"
    check "aggregate ($tag): the large output's counts and sums equal pandas'" $PY - agg-direct.h5 "$p-2-direct.h5" <<'PY'
import sys, h5py, numpy as np, pandas as pd
src, out = sys.argv[1:]
with h5py.File(src, "r") as f:
    t = f["table"]
    df = pd.DataFrame({"meter": t["patient"][:], "time": t["time"][:], "value": t["systolic"][:].astype(np.float64)})
ok = df["value"].between(40, 260)
m = pd.to_datetime(df["time"], unit="s", utc=True)
df["month"] = m.dt.year * 100 + m.dt.month
df["v"] = df["value"].where(ok)
ref = df.groupby(["meter", "month"]).agg(count=("v", "count"), sum=("v", "sum")).reset_index()
with h5py.File(out, "r") as f:
    g = f["aggregate"]
    got = pd.DataFrame({k: g[k][:] for k in ("meter", "month")})
    got["count"], got["sum"] = g["value_count"][:], g["value_sum"][:]
assert len(got) == len(ref) > 2_000_000, (len(got), len(ref))
for c in ("meter", "month", "count"):
    assert (got[c].to_numpy() == ref[c].to_numpy()).all(), c
has = ref["count"].to_numpy() > 0
assert np.array_equal(got["sum"].to_numpy()[has], ref["sum"].to_numpy()[has]), "sum"
assert np.isnan(got["sum"].to_numpy()[~has]).all()
print("OK", len(got), "groups")
PY
}

# Groups met again after later ones (a tenth of the kept values out of order, in runs):
# the kept values' runs are merged back into group order (groups.c, runs_merge); the
# percentiles equal pandas', bit-identical at 1 and 2 ranks.
suite_aggregate_strays() {
    local bin=$1 tag=$2 n p
    p="agg-strays-$tag"
    if ! $PY - "$p.h5" >"$W/log" 2>&1 <<'PY'
import sys, h5py, numpy as np
rng = np.random.default_rng(7)
meter = np.repeat(np.arange(50000), 8)
again = np.repeat(rng.choice(50000, 1000, replace=False), 4)  # met again, 4 readings each
meter = np.concatenate([meter, again])
with h5py.File(sys.argv[1], "w") as f:
    g = f.create_group("table")
    g["meter"] = meter
    g["time"] = np.full(len(meter), 1704326400, dtype=np.int64)
    g["value"] = rng.integers(40, 200, len(meter)).astype(np.float32)
PY
    then
        not_ok "aggregate ($tag): making the input of groups met again"
        return
    fi
    for n in 1 2; do
        agg_job "$p-$n" "$p.h5" "$p-$n.h5" "by = meter, month" "time = time" "values = value" \
            "stats = count, p50, p95" "layout = table"
        sed -i 's/^chunk_rows = 7k/chunk_rows = 64k/' "$p-$n.ini"
        if ! mpi "$n" 1 "$bin" run "$p-$n.ini" -q --force >"$W/log" 2>&1; then
            not_ok "aggregate ($tag): groups met again at $n rank(s)"
            return
        fi
    done
    check "aggregate ($tag): groups met again after later ones: percentiles equal pandas', bit-identical at 1 and 2 ranks" \
        bash -c "h5diff --exclude-path /provenance $p-1.h5 $p-2.h5 && $PY -c '
import h5py, numpy as np, pandas as pd
with h5py.File(\"$p.h5\") as f:
    df = pd.DataFrame({\"m\": f[\"table/meter\"][:], \"v\": f[\"table/value\"][:].astype(np.float64)})
ref = df.groupby(\"m\").v
with h5py.File(\"$p-1.h5\") as f:
    g = f[\"aggregate\"]
    assert np.array_equal(g[\"meter\"][:], ref.count().index.to_numpy())
    assert np.array_equal(g[\"value_count\"][:], ref.count().to_numpy())
    for q, name in ((0.5, \"value_p50\"), (0.95, \"value_p95\")):
        want = ref.agg(lambda x: np.quantile(x.to_numpy(), q)).to_numpy()  # numpy linear, type 7
        assert np.array_equal(g[name][:], want), name
'"
}

suite_aggregate() {
    [ "$2" = valgrind ] && return 0
    local s
    for s in suite_aggregate_reference suite_aggregate_ranks suite_aggregate_faults suite_aggregate_traffic suite_aggregate_bad suite_aggregate_docs suite_aggregate_direct suite_aggregate_strays; do "$s" "$@"; done
}
