# The bill kernel's suite (docs/bill.md); sourced by tests/run_tests.sh, whose helpers
# (tests/lib.sh: check, expect_fail, mpi, write_job, fault_suite; $PY, $W, $ROOT, $LIMIT)
# it uses. Expected values: a table computed by hand (tier boundaries, rounding ties),
# and tests/bill/bill_ref.py (exact rationals and pandas groupby) on many accounts.

TARIFF_A="tiers = 0:1.20, 10:1.80, 30:2.50"
TARIFF_B="tiers = 0:1.235, 2:1.245"

bill_inputs() {
    [ -f bill-inputs.done ] && return 0
    $PY "$ROOT/tests/bill/make_bill_case.py" bill-hand.h5 --case hand &&
        $PY "$ROOT/tests/bill/make_bill_case.py" bill-random.h5 --case random &&
        $PY "$ROOT/tests/bill/make_bill_case.py" bill-empty.h5 --case empty && touch bill-inputs.done
}

# Bills against a table computed by hand: boundaries (10 and 30 m3 fall in the lower
# tier), a litre above one, and ties: 1.0625 m3 is 1062.5 litres -> 1062, 1.1875 ->
# 1188; 1 m3 at 1.235 is 123.5 cents -> 124, 1 m3 at 1.245 is 124.5 cents -> 124.
suite_bill_hand() {
    local bin=$1 tag=$2 n ranks="1 3"
    # under valgrind at 3 ranks, valgrind reports uninitialised bytes in a buffer Open MPI's
    # collective write allocates itself (fcoll vulcan -> pwritev; not yet run down); 2 are clean
    [ "$tag" = valgrind ] && ranks="1 2"
    bill_inputs >"$W/log" 2>&1 || { not_ok "bill ($tag): making the inputs"; return; }
    for n in $ranks; do
        write_job "bill-hA-$tag-$n" bill bill "bill-hand.h5" "bill-hA-$tag-$n.h5" \
            "columns = consumption:consumption_sum" "$TARIFF_A" "fixed_charge = 8.50"
        write_job "bill-hB-$tag-$n" bill bill "bill-hand.h5" "bill-hB-$tag-$n.h5" \
            "columns = consumption:consumption_sum" "$TARIFF_B" "currency = CHF"
        check "bill ($tag, $n ranks): the hand-computed bills, boundaries and ties" bash -c \
            "$(declare -f mpi); LIMIT=$LIMIT; mpi $n 1 '$bin' run bill-hA-$tag-$n.ini -q &&
             mpi $n 1 '$bin' run bill-hB-$tag-$n.ini -q && $PY -c \"
import h5py, numpy as np
a = h5py.File('bill-hA-$tag-$n.h5')['bill']
b = h5py.File('bill-hB-$tag-$n.h5')['bill']
# consumption 0, 10, 10.001, 30, 45.5, 1, 2, 3, 1.0625, 1.1875, 0.5, 2.5 (and NaN: no bill)
want = {
 'meter': [100, 101, 102, 103, 104, 105, 106, 107, 108, 109, 110, 111],
 'consumption_milli': [0, 10000, 10001, 30000, 45500, 1000, 2000, 3000, 1062, 1188, 500, 2500],
 'tier_1': [0, 1200, 1200, 1200, 1200, 120, 240, 360, 127, 143, 60, 300],
 'tier_2': [0, 0, 0, 3600, 3600, 0, 0, 0, 0, 0, 0, 0],
 'tier_3': [0, 0, 0, 0, 3875, 0, 0, 0, 0, 0, 0, 0],
 'fixed_charge': [850] * 12,
 'total': [850, 2050, 2050, 5650, 9525, 970, 1090, 1210, 977, 993, 910, 1150]}
for k, v in want.items():
    assert a[k].dtype == np.int64 and list(a[k][:]) == v, (k, a[k][:])
wantb = {'tier_1': [0, 247, 247, 247, 247, 124, 247, 247, 131, 147, 62, 247],
         'tier_2': [0, 996, 996, 3486, 5416, 0, 0, 124, 0, 0, 0, 62],
         'total': [0, 1243, 1243, 3733, 5663, 124, 247, 371, 131, 147, 62, 309]}
for k, v in wantb.items():
    assert list(b[k][:]) == v, (k, b[k][:])
assert a.attrs['currency'] == 'EUR' and a.attrs['scale'] == 100 and a.attrs['rows_missing'] == 1
assert b['total'].attrs['currency'] == 'CHF' and b['total'].attrs['scale'] == 100
d = a['districts']
assert list(d['district'][:]) == [1, 2, 3] and list(d['accounts'][:]) == [3, 2, 7]
assert list(d['total'][:]) == [4950, 15175, 7300] and list(d['consumption_milli'][:]) == [20001, 75500, 11250]
\""
    done
}

# No row at all: empty tables, at 1 and 3 ranks.
suite_bill_empty() {
    local bin=$1 tag=$2 n
    bill_inputs >"$W/log" 2>&1 || return
    for n in 1 3; do
        write_job "bill-e-$tag-$n" bill bill bill-empty.h5 "bill-e-$tag-$n.h5" \
            "columns = consumption:consumption_sum" "$TARIFF_A"
        check "bill ($tag, $n ranks): an empty input gives empty bills and totals" bash -c \
            "$(declare -f mpi); LIMIT=$LIMIT; mpi $n 1 '$bin' run bill-e-$tag-$n.ini -q && $PY -c \"
import h5py
b = h5py.File('bill-e-$tag-$n.h5')['bill']
assert b['total'].shape == (0,) and b['districts/total'].shape == (0,) and b.attrs['rows_total'] == 0
\""
    done
}

# Many accounts and months in shuffled rows: bills and district totals equal the
# reference (exact rationals, pandas groupby).
suite_bill_reference() {
    local bin=$1 tag=$2
    bill_inputs >"$W/log" 2>&1 || return
    write_job "bill-ref-$tag" bill bill bill-random.h5 "bill-ref-$tag.h5" "job.chunk_rows = 100" \
        "columns = consumption:consumption_sum" "$TARIFF_A" "fixed_charge = 8.50"
    check "bill ($tag): 2100 bills at 2 ranks equal the reference, district totals equal pandas" bash -c \
        "$(declare -f mpi); LIMIT=$LIMIT; mpi 2 1 '$bin' run bill-ref-$tag.ini -q &&
         $PY '$ROOT/tests/bill/bill_ref.py' bill-ref-$tag.ini bill"
}

# String accounts and districts (a CSV's "DE-001", district names, UTF-8, of unequal
# lengths, in an order unlike their numbers): the reference at 1 and 3 ranks, the same bits.
suite_bill_strings() {
    local bin=$1 tag=$2 n
    [ "$tag" = valgrind ] && return 0
    bill_inputs >"$W/log" 2>&1 || return
    $PY - <<'PYEOF' || { not_ok "bill ($tag): making the string input"; return; }
import h5py, numpy as np
with h5py.File("bill-random.h5") as f, h5py.File("bill-str.h5", "w") as o:
    g, t = f["aggregate"], o.create_group("aggregate")
    m = g["meter"][:]
    t["meter"] = np.array([("acct-%d" % (x * 7919 % 100003)).encode() for x in m])
    names = ["Nord", "Süd", "Ost", "West", "Zentrum", "Au"]
    t.create_dataset("district", data=[names[x % len(names)] for x in g["district"][:]], dtype=h5py.string_dtype())
    t["month"], t["consumption_sum"] = g["month"][:], g["consumption_sum"][:]
    u = o.create_group("nodistrict")
    u["meter"], u["month"], u["consumption_sum"] = t["meter"][:], t["month"][:], t["consumption_sum"][:]
PYEOF
    for n in 1 3; do
        write_job "bill-str-$tag-$n" bill bill bill-str.h5 "bill-str-$tag-$n.h5" "job.chunk_rows = 100" \
            "columns = consumption:consumption_sum" "$TARIFF_A" "fixed_charge = 8.50"
        check "bill ($tag): string accounts and districts at $n rank(s) equal the reference, sorted by label" bash -c \
            "$(declare -f mpi); LIMIT=$LIMIT; mpi $n 1 '$bin' run bill-str-$tag-$n.ini -q &&
             $PY '$ROOT/tests/bill/bill_ref.py' bill-str-$tag-$n.ini bill"
    done
    check "bill ($tag): string accounts at 3 ranks: the bits of 1" \
        h5diff --exclude-path /provenance "bill-str-$tag-1.h5" "bill-str-$tag-3.h5"
    write_job "bill-nod-$tag" bill bill bill-str.h5 "bill-nod-$tag.h5" "table = /nodistrict" \
        "columns = consumption:consumption_sum" "$TARIFF_A" "fixed_charge = 8.50"
    check "bill ($tag): without a district column: one district, the totals per month, at 2 ranks equal the reference" \
        bash -c "$(declare -f mpi); LIMIT=$LIMIT; mpi 2 1 '$bin' run bill-nod-$tag.ini -q &&
             $PY '$ROOT/tests/bill/bill_ref.py' bill-nod-$tag.ini bill"
    write_job "bill-str-part-$tag" bill bill bill-str.h5 "bill-str-part-$tag.h5" \
        "columns = consumption:consumption_sum" "$TARIFF_A"
    expect_fail "bill ($tag): a partial state of string accounts is 78, nothing written" 78 \
        "bill has no partial states of string accounts or districts" "bill-str-part-$tag.h5" \
        mpi 2 1 "$bin" run "bill-str-part-$tag.ini" --partial
}

# The same bits at 1-4 ranks.
suite_bill_ranks() {
    local bin=$1 tag=$2 n
    [ "$tag" = plain ] || return 0
    bill_inputs >"$W/log" 2>&1 || return
    write_job bill-rk bill bill bill-random.h5 bill-rk.h5 "job.chunk_rows = 100" \
        "columns = consumption:consumption_sum" "$TARIFF_A" "fixed_charge = 8.50"
    check "bill ranks: 1 rank" mpi 1 1 "$bin" run bill-rk.ini -q
    for n in 2 3 4; do
        check "bill ranks: $n ranks are bit-identical to 1" bash -c \
            "$(declare -f mpi); LIMIT=$LIMIT; mpi $n 1 '$bin' run bill-rk.ini -q --set bill.output=bill-rk-$n.h5 \
             --set job.run_dir=bill-rk-$n.run && h5diff --exclude-path /provenance bill-rk.h5 bill-rk-$n.h5"
    done
}

# Killed at random moments, resumed on other rank counts: the same bits (tests/faults.sh).
suite_bill_faults() {
    local bin=$1 tag=$2
    [ "$tag" = plain ] || return 0
    bill_inputs >"$W/log" 2>&1 || return
    write_job bill-ft bill bill bill-random.h5 bill-ft.h5 "job.chunk_rows = 50" \
        "columns = consumption:consumption_sum" "$TARIFF_A" "fixed_charge = 8.50"
    # Chunks of 50 bills map in microseconds: slowed (a test hook) in every run, so that
    # the resumed run checkpoints too and replaces the temporary file the kill in a
    # checkpoint left (the driver sweeps no stale ckpt-*.tmp; faults.sh checks none is left).
    H5BATCH_FAULT_SLOW_CHUNK_MS=3 fault_suite bill bill-ft.ini bill bill-ft.h5 "fixed_charge=1.00"
}

# Bad input: the contract's codes, one error line, no output left.
suite_bill_bad() {
    local bin=$1 tag=$2 n
    bill_inputs >"$W/log" 2>&1 || return
    for n in 1 3; do
        local p="bill-bad-$tag-$n" o="bill-bad-$tag-$n.h5"
        write_job "$p-col" bill bill bill-hand.h5 "$o" "$TARIFF_A"
        expect_fail "bill bad input ($tag, $n ranks): unknown column -> 65" 65 "missing column 'consumption'" "$o" \
            mpi $n 1 "$bin" run "$p-col.ini"
        write_job "$p-map" bill bill bill-hand.h5 "$o" "$TARIFF_A" "columns = consumption:usage"
        expect_fail "bill bad input ($tag, $n ranks): a mapped column that is not there -> 65" 65 \
            "missing column 'usage'" "$o" mpi $n 1 "$bin" run "$p-map.ini"
        write_job "$p-tier" bill bill bill-hand.h5 "$o" "tiers = 0:1.20, 10-1.80"
        expect_fail "bill bad input ($tag, $n ranks): bad tariff syntax -> 78 with its line" 78 \
            "$p-tier.ini:8: .*tiers: '10-1.80' is not THRESHOLD:PRICE" "$o" mpi $n 1 "$bin" run "$p-tier.ini"
        rm -rf ./bill-bad-*.run
    done
    # meter ids in a float column (pandas stores integers with gaps so): whole ones bill
    # as the integers do, a fraction is 65 naming the row (it was floored into meter 2)
    $PY -c "import sys, h5py, numpy as np
with h5py.File(sys.argv[1], 'w') as f:
    for name, meter in (('int', np.array([1, 2, 2, 3])), ('float', np.array([1.0, 2.0, 2.0, 3.0])),
                        ('frac', np.array([1.0, 2.0, 2.0, 2.5]))):
        g = f.create_group(name)
        g['meter'], g['district'], g['month'] = meter, np.zeros(4, int), np.array([202401, 202401, 202402, 202401])
        g['consumption'] = np.array([5.0, 15.0, 40.0, 1.0])
    g = f.create_group('u64')  # a uint64 id beyond int64 read as 'not an integer'
    g['meter'], g['district'] = np.array([1, 2**63 + 5], np.uint64), np.zeros(2, int)
    g['month'], g['consumption'] = np.array([202401, 202401]), np.array([5.0, 15.0])" bill-fkey.h5
    local p="bill-bad-$tag" o="bill-bad-$tag.h5" t
    write_job "$p-int" bill bill bill-fkey.h5 "$p-int.h5" "$TARIFF_A" "table = /int"
    check "bill bad input ($tag): whole meter ids in a float column give the bits of int64 ones" bash -c \
        "rm -rf $p-int.h5 $p-float.h5 $p-int.run && '$bin' run $p-int.ini -q &&
         '$bin' run $p-int.ini -q --set bill.table=/float --set bill.output=$p-float.h5 --fresh &&
         h5diff --exclude-path /provenance $p-int.h5 $p-float.h5"
    for n in 1 3; do
        write_job "$p-frac" bill bill bill-fkey.h5 "$o" "$TARIFF_A" "table = /frac"
        expect_fail "bill bad input ($tag, $n ranks): a fractional meter id in a float column -> 65 naming the row" 65 \
            "bill-fkey.h5: column 'meter', row 3: 2.5 is not an integer" "$o" mpi $n 1 "$bin" run "$p-frac.ini"
        rm -rf ./$p-frac.run
    done
    write_job "$p-u64" bill bill bill-fkey.h5 "$o" "$TARIFF_A" "table = /u64"
    expect_fail "bill bad input ($tag): a uint64 meter id of 2^63 or more -> 65 saying it is outside int64" 65 \
        "bill-fkey.h5: column 'meter', row 1: missing (NaN) or outside int64" "$o" "$bin" run "$p-u64.ini"
    for t in "0:1.2x|price '1.2x' is not" "5:1.20|the first threshold must be 0" \
        "0:1.20, 10:1.5, 10:2|threshold '10' is not above" "0:0.0000001|at most 6 decimals" \
        "0:1.2,,10:2|item 2 is empty" "0:1.2, 10:2,|item 3 is empty"; do
        write_job "$p-t" bill bill bill-hand.h5 "$o" "tiers = ${t%%|*}"
        expect_fail "bill bad input ($tag): tiers = ${t%%|*} -> 78" 78 "$p-t.ini:8: .*${t#*|}" "$o" "$bin" run "$p-t.ini"
    done
    write_job "$p-fix" bill bill bill-hand.h5 "$o" "$TARIFF_A" "fixed_charge = 8.505"
    expect_fail "bill bad input ($tag): a fixed charge below the cent -> 78" 78 \
        "$p-fix.ini:9: .*fixed_charge '8.505' is not" "$o" "$bin" run "$p-fix.ini"
    write_job "$p-none" bill bill bill-hand.h5 "$o" "currency = EUR"
    expect_fail "bill bad input ($tag): no tiers -> 78" 78 "'tiers' is missing" "$o" "$bin" run "$p-none.ini"
    rm -rf ./bill-bad-*.run
}

# gen meters: the same file at 1 and 3 ranks, with what it promises (missing days,
# register resets, leaks), and jobs/water-billing.ini on it against the reference.
suite_bill_gen() {
    local bin=$1 tag=$2
    [ "$tag" = plain ] || return 0
    check "gen meters: 1 rank" mpi 1 1 "$bin" gen meters -o bill-m1.h5 --meters 300 --days 800 --seed 5 \
        --leaks 0.05 --replacements 0.05 --missing 0.02 -q
    check "gen meters: 3 ranks x 2 threads write the same file" bash -c \
        "$(declare -f mpi); LIMIT=$LIMIT; mpi 3 2 '$bin' gen meters -o bill-m3.h5 --meters 300 --days 800 --seed 5 \
         --leaks 0.05 --replacements 0.05 --missing 0.02 -q && h5diff --exclude-path /provenance bill-m1.h5 bill-m3.h5"
    check "gen meters: missing days, register resets, leaks, consumption = reading differences" $PY -c "
import h5py, numpy as np, pandas as pd
t = h5py.File('bill-m1.h5')['table']
df = pd.DataFrame({k: t[k][:] for k in t})
assert 0.97 * 300 * 800 < len(df) < 0.99 * 300 * 800, len(df)
assert (df.consumption >= 0).all() and df.time.is_monotonic_increasing is False
resets = leaks = 0
for m, g in df.groupby('meter'):
    g = g.sort_values('time')
    step = np.round(np.diff(g.reading.to_numpy()) * 1000).astype(np.int64)
    use = np.round(g.consumption.to_numpy()[1:] * 1000).astype(np.int64)
    resets += (step < 0).sum()
    assert ((step == use) | (step < 0)).all(), m
    leaks += g.night_flow.max() > 0.01
assert 5 <= resets <= 30 and 5 <= leaks <= 30, (resets, leaks)
"
    sed -e "s#demo/meters.h5#bill-m3.h5#; s#demo/water-monthly.h5#bill-wb-monthly.h5#g" \
        -e "s#demo/water-bills.h5#bill-wb.h5#; s#demo/water-billing.run#bill-wb.run#" \
        "$ROOT/jobs/water-billing.ini" >bill-wb.ini
    check "jobs/water-billing.ini at 2 ranks: the bills of its monthly sums equal the reference" bash -c \
        "$(declare -f mpi); LIMIT=$LIMIT; mpi 2 1 '$bin' run bill-wb.ini -q && $PY '$ROOT/tests/bill/bill_ref.py' bill-wb.ini bill &&
         $PY '$ROOT/tests/bill/bill_summary.py' bill-wb.h5 | grep -q 'exceeds the same month a year before'"
}

# The suite (tests/run_tests.sh calls it once per pass with BIN TAG); under valgrind the
# hand-computed bills only.
suite_bill() {
    if [ "$2" = valgrind ]; then
        suite_bill_hand "$@"
        return 0
    fi
    local s
    for s in suite_bill_hand suite_bill_empty suite_bill_reference suite_bill_strings suite_bill_ranks suite_bill_faults suite_bill_bad suite_bill_gen; do "$s" "$@"; done
}
