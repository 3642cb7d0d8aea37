# Tables as users write them (DESIGN.md 3-4, docs/tables.md); sourced by tests/run_tests.sh,
# whose helpers (check, expect_fail, skip, mpi, write_job, $PY, $W, $ROOT, $LIMIT, $HB) it
# uses. tests/tables/make_tables.py writes one small data set per kernel that reads a
# table (traffic, aggregate, bill, risk's transactions, the oee plugin) in the plain layout
# and again as pandas to_hdf (format "table" with and without data_columns, "fixed"), as
# h5py compound datasets with variable-length strings, with times in ms/us/ns and
# compressed (gzip and the filter plugins). Every layout must give the bits of the plain
# one (h5diff --exclude-path /provenance), the plain one what pandas computes
# (tables_check.py), and 1 and 3 ranks the same bits.

# tb_h5diff A B [OBJ:ATTR]: the outputs agree except for /provenance and, when given, the
# attribute ATTR of OBJ (an option the job echoes, such as time_unit, which differs on
# purpose): OBJ's other attributes must still agree.
tb_h5diff() {
    if [ -z "${3:-}" ]; then
        h5diff --exclude-path /provenance "$1" "$2"
        return
    fi
    h5diff --exclude-path /provenance --exclude-attribute "${3%%:*}" "$1" "$2" &&
        $PY -c 'import sys, h5py, numpy as np
a, b, obj, skip = sys.argv[1], sys.argv[2], *sys.argv[3].split(":")
x, y = h5py.File(a)[obj].attrs, h5py.File(b)[obj].attrs
keys = set(x) - {skip}
assert keys == set(y) - {skip}, (sorted(x), sorted(y))
for k in keys:
    assert np.array_equal(x[k], y[k]), k' "$1" "$2" "$3"
}
export -f tb_h5diff

# The inputs and the oee plugin (built against the tree's headers), made once for both passes.
tb_inputs() {
    [ -f tb-inputs.done ] && return 0
    mkdir -p tb-pl &&
        mpicc -std=c17 -shared -fPIC -fopenmp -I"$ROOT/include" -o tb-pl/oee.so \
            "$ROOT/examples/plugins/oee/oee.c" "$ROOT/examples/plugins/oee/bottling.c" -lm &&
        "$HB" gen market -o tb-market.h5 --assets 6 --days 300 --portfolios 4 --transactions 2000 --seed 5 -q &&
        H5BATCH_PLUGIN_PATH="$W/tb-pl" "$HB" gen bottling -o tb-plant.h5 --lines 3 --days 10 -q &&
        $PY "$ROOT/tests/tables/make_tables.py" . >tb-nofilter.txt && touch tb-inputs.done
}

# tb_run BIN NAME KERNEL INPUT [LINE]...: runs a one-step job NAME (output NAME.h5) on one rank.
tb_run() {
    local bin=$1 name=$2 kernel=$3 in=$4
    shift 4
    rm -rf "$name.run" "$name.h5"
    write_job "$name" s "$kernel" "$in" "$name.h5" "$@"
    H5BATCH_PLUGIN_PATH="$W/tb-pl" mpi 1 1 "$bin" run "$name.ini" -q
}

# tb_swap FILE AWAY BACK: FILE's /transactions moves to /AWAY and /BACK becomes /transactions.
tb_swap() {
    $PY -c "
import h5py
with h5py.File('$1', 'a') as f:
    f.move('transactions', '$2'); f.move('$3', 'transactions')"
}

# tb_same NAME BIN REF KERNEL INPUT [LINE]...: a job whose output must equal REF's bits.
tb_same() {
    local what=$1 bin=$2 ref=$3 kernel=$4 in=$5 name
    shift 5
    name=tb-$(echo "$what" | tr -c 'a-z0-9\n' '-')
    check "$what" bash -c "$(declare -f tb_run); tb_run '$bin' '$name' '$kernel' '$in' $(printf '%q ' "$@") &&
        tb_h5diff '$ref.h5' '$name.h5' '${TB_XATTR:-}'"
}

# traffic from every layout, against the plain layout and pandas; 1 and 3 ranks.
suite_tables_traffic() {
    local bin=$1 tag=$2 f ref=tb-traffic-ref
    [ "$tag" = plain ] || [ -f $ref.h5 ] || tb_run "$HB" $ref traffic tb-traffic.h5 >/dev/null 2>&1
    [ "$tag" = plain ] && check "tables ($tag): traffic from the plain layout agrees with pandas" bash -c \
        "$(declare -f tb_run); tb_run '$HB' $ref traffic tb-traffic.h5 &&
         $PY '$ROOT/tests/tables/tables_check.py' traffic tb-traffic.h5 $ref.h5"
    tb_same "tables ($tag): traffic from pandas format=table (values_block_N, datetime64 ns)" "$bin" $ref traffic \
        tb-traffic-pd.h5 "table = /obs" "time_unit = ns"
    tb_same "tables ($tag): traffic from pandas format=table without time_unit: ns from the block's datetime64" \
        "$bin" $ref traffic tb-traffic-pd.h5 "table = /obs"
    if [ "$tag" = plain ]; then
        tb_same "tables ($tag): traffic from pandas data_columns=True without time_unit: ns from time_dtype" "$bin" \
            $ref traffic tb-traffic-pdt.h5 "table = /obs"
        tb_same "tables ($tag): traffic from pandas format=fixed without time_unit: ns from its value_type" "$bin" \
            $ref traffic tb-traffic-fixed.h5 "table = /obs"
        local g u
        for g in cf_ms:"milliseconds since 1970-01-01 00:00:00" cf_s:"seconds since 1970-01-01T00:00:00Z" us:us \
            hours:"hours since 2024-01-01" hours_f:"hours since 2024-01-01 00:00:00 (float64, x.5)" \
            min_tz:"minutes since 2024-01-01 00:00:00+01:00" epoch2000:"seconds since 2000-01-01 00:00:00"; do
            u=${g#*:}
            tb_same "tables ($tag): traffic from a time column with units '$u': read in that unit" "$bin" $ref \
                traffic tb-traffic-units.h5 "table = /${g%%:*}"
        done
        tb_same "tables ($tag): traffic from pandas format=fixed" "$bin" $ref traffic tb-traffic-fixed.h5 \
            "table = /obs" "time_unit = ns"
        tb_same "tables ($tag): traffic from an h5py compound dataset (time in us, int16 segment, gzip)" "$bin" $ref \
            traffic tb-traffic-h5c.h5 "table = /obs" "time_unit = us"
        tb_same "tables ($tag): traffic from pandas data_columns=True, zlib, /KEY/table, columns, ms" "$bin" $ref \
            traffic tb-traffic-pdc.h5 "table = /obs/table" "columns = time:timestamp, segment:seg, speed:v" \
            "time_unit = ms"
        check "tables ($tag): traffic from pandas format=table at 3 ranks: the bits of 1 rank" bash -c \
            "rm -rf tb-traffic-r3.run tb-traffic-r3.h5 &&
             write_job tb-traffic-r3 s traffic tb-traffic-pd.h5 tb-traffic-r3.h5 'table = /obs' 'time_unit = ns' &&
             mpi 3 1 '$bin' run tb-traffic-r3.ini -q && tb_h5diff $ref.h5 tb-traffic-r3.h5"
    fi
    local filters="lz4 blosc bitshuffle zstd" # one per Debian package (BZip2 is LZ4's), and PyPI's
    [ "$tag" = plain ] || filters=""
    for f in $filters; do
        if grep -qx "nofilter $f" tb-nofilter.txt; then
            skip "tables ($tag): traffic from a $f-compressed group" \
                "h5py on this machine cannot write $f (zstd: pip install hdf5plugin, docs/tables.md)"
        elif [ "$f" = zstd ] && grep -q "^pluginpath " tb-nofilter.txt; then
            HDF5_PLUGIN_PATH=$(sed -n 's/^pluginpath //p' tb-nofilter.txt) tb_same \
                "tables ($tag): traffic from a zstd-compressed group (PyPI hdf5plugin on HDF5_PLUGIN_PATH)" "$bin" \
                $ref traffic tb-traffic.h5 "table = /$f"
        else
            tb_same "tables ($tag): traffic from a $f-compressed group (filter plugin)" "$bin" $ref traffic \
                tb-traffic.h5 "table = /$f"
        fi
    done
}

# aggregate: string keys (fixed and variable length, UTF-8) from compound datasets.
suite_tables_aggregate() {
    local bin=$1 tag=$2 ref=tb-agg-ref
    local lines=("by = meter, district, month" "time = time" "values = value, value2" "stats = count, sum, mean")
    [ "$tag" = plain ] || [ -f $ref.h5 ] || tb_run "$HB" $ref aggregate tb-agg.h5 "${lines[@]}" >/dev/null 2>&1
    [ "$tag" = plain ] && check "tables ($tag): aggregate with string keys from the plain layout agrees with pandas" \
        bash -c "$(declare -f tb_run); tb_run '$HB' $ref aggregate tb-agg.h5 $(printf '%q ' "${lines[@]}") &&
         $PY '$ROOT/tests/tables/tables_check.py' aggregate tb-agg.h5 $ref.h5"
    local TB_XATTR=/aggregate:time_unit
    tb_same "tables ($tag): aggregate from an h5py compound (vlen and fixed strings, ns)" "$bin" $ref aggregate \
        tb-agg-h5c.h5 "table = /readings" "time_unit = ns" "${lines[@]}"
    [ "$tag" = plain ] || return 0
    tb_same "tables ($tag): aggregate from pandas format=table (string block, two values in one block)" "$bin" \
        $ref aggregate tb-agg-pd.h5 "table = /readings" "time_unit = ns" "${lines[@]}"
    check "tables ($tag): aggregate from pandas without time_unit: ns from its datetime64, and says so" bash -c \
        "$(declare -f tb_run); tb_run '$bin' tb-agg-pdns aggregate tb-agg-pd.h5 'table = /readings' \
           $(printf '%q ' "${lines[@]}") && tb_h5diff $ref.h5 tb-agg-pdns.h5 /aggregate:time_unit &&
         $PY -c 'import h5py; u = h5py.File(\"tb-agg-pdns.h5\")[\"aggregate\"].attrs[\"time_unit\"]
assert u == \"ns\", u'"
    check "tables ($tag): aggregate from a compound at 3 ranks: the bits of 1 rank" bash -c \
        "rm -rf tb-agg-r3.run tb-agg-r3.h5 &&
         write_job tb-agg-r3 s aggregate tb-agg-h5c.h5 tb-agg-r3.h5 'table = /readings' 'time_unit = ns' \
           $(printf '%q ' "${lines[@]}") && mpi 3 1 '$bin' run tb-agg-r3.ini -q &&
         tb_h5diff $ref.h5 tb-agg-r3.h5 /aggregate:time_unit"
}

# pandas categoricals: string labels are keys (NaN drops the row, as groupby does), numeric
# ones are refused rather than read as their codes.
suite_tables_categorical() {
    local bin=$1 tag=$2 t k what
    for t in columns blocks; do
        for k in site name; do
            [ "$tag" = plain ] || [ $t = columns ] || continue
            what="strings"
            [ $k = site ] && what="a categorical of strings"
            check "tables ($tag): a pandas ($t) key of $what with NaN: pandas' groupby(dropna=True) agrees" bash -c \
                "$(declare -f tb_run); tb_run '$bin' tb-cat-$t-$k aggregate tb-cat-pd.h5 'table = /$t' 'by = $k' \
                   'values = value' 'stats = count, sum' &&
                 $PY -c 'import h5py, pandas as pd, numpy as np
df = pd.read_hdf(\"tb-cat-pd.h5\", \"$t\")
want = df.groupby(df.$k.astype(object), dropna=True).value.agg([\"count\", \"sum\"]).sort_index()
o = h5py.File(\"tb-cat-$t-$k.h5\")[\"aggregate\"]
got = pd.DataFrame({\"count\": o[\"value_count\"][:], \"sum\": o[\"value_sum\"][:]},
                   index=[s.decode() for s in o[\"$k\"][:]]).sort_index()
assert list(got.index) == list(want.index), (got.index, want.index)
assert np.array_equal(got[\"count\"], want[\"count\"]) and np.allclose(got[\"sum\"], want[\"sum\"], rtol=0, atol=1e-9), (got, want)'"
        done
    done
    write_job tb-bad-catnum s aggregate tb-cat-pd.h5 tb-bad-catnum.h5 "table = /columns" "by = num" "values = value"
    expect_fail "tables ($tag): a pandas categorical of numbers: 65, not its codes" 65 \
        "column 'num' is a pandas categorical of numbers, whose codes are not its values" tb-bad-catnum.h5 \
        mpi 1 1 "$bin" run tb-bad-catnum.ini
}

# booleans (h5py's int8 enum, pandas' and PyTables' bitfield) as a key and as a value in every
# layout: the bits of the same flags stored as int8, and flag_sum per flag what numpy counts.
suite_tables_bool() {
    local bin=$1 tag=$2 ref=tb-bool-ref
    local lines=("by = flag, key" "values = value, flag" "stats = count, sum, mean")
    [ "$tag" = plain ] || [ -f $ref.h5 ] || tb_run "$HB" $ref aggregate tb-bool.h5 "${lines[@]}" >/dev/null 2>&1
    [ "$tag" = plain ] && check "tables ($tag): aggregate by an int8 flag agrees with numpy" bash -c \
        "$(declare -f tb_run); tb_run '$HB' $ref aggregate tb-bool.h5 $(printf '%q ' "${lines[@]}") &&
         $PY -c 'import h5py, numpy as np
i = h5py.File(\"tb-bool.h5\")[\"table\"]; o = h5py.File(\"$ref.h5\")[\"aggregate\"]
f, k = i[\"flag\"][:], i[\"key\"][:]
assert list(o[\"flag\"][:]) == [0, 1], o[\"flag\"][:]
want = np.array([[np.sum((f == a) & (k == b)) * a for b in range(4)] for a in (0, 1)], float)
assert np.array_equal(o[\"flag_sum\"][:], want), (o[\"flag_sum\"][:], want)'"
    tb_same "tables ($tag): a boolean key and value from h5py (an int8 enum) are read as 0 and 1" "$bin" $ref \
        aggregate tb-bool.h5 "table = /h5py" "${lines[@]}"
    tb_same "tables ($tag): booleans in an h5py compound dataset" "$bin" $ref aggregate tb-bool.h5 \
        "table = /compound" "${lines[@]}"
    tb_same "tables ($tag): booleans from pandas format=table (a bitfield block)" "$bin" $ref aggregate \
        tb-bool-pd.h5 "table = /blocks" "${lines[@]}"
    [ "$tag" = plain ] || return 0
    tb_same "tables ($tag): booleans from pandas data_columns=True (a bitfield field)" "$bin" $ref aggregate \
        tb-bool-pd.h5 "table = /columns" "${lines[@]}"
    tb_same "tables ($tag): booleans from pandas format=fixed (a bitfield block)" "$bin" $ref aggregate \
        tb-bool-pd.h5 "table = /fixed" "${lines[@]}"
}

# bill, risk's transactions and the oee plugin from pandas tables with datetime64 columns
# and their own column names.
suite_tables_others() {
    local bin=$1 tag=$2
    local tiers=("tiers = 0:1.20, 10:1.80" "fixed_charge = 2.50")
    local rk=("positions = transactions" "methods = historical, parametric" "window = 100" "backtest_days = 50")
    if [ "$tag" = plain ]; then
        check "tables ($tag): bill, risk and oee from the plain layouts" bash -c "$(declare -f tb_run)
            tb_run '$HB' tb-bill-ref bill tb-bill.h5 $(printf '%q ' "${tiers[@]}") &&
            tb_run '$HB' tb-risk-ref risk tb-market.h5 $(printf '%q ' "${rk[@]}") &&
            tb_run '$HB' tb-oee-ref oee tb-plant.h5"
        tb_same "tables ($tag): bill from pandas (month as datetime64, columns)" "$bin" tb-bill-ref bill \
            tb-bill-pd.h5 "table = /bills" "columns = consumption:used" "time_unit = ns" "${tiers[@]}"
        tb_same "tables ($tag): risk from pandas /transactions (datetime64, columns)" "$bin" tb-risk-ref risk \
            tb-market-pd.h5 "columns = date:trade_date, portfolio:book, asset:instrument, quantity:qty" \
            "time_unit = ns" "${rk[@]}"
        tb_same "tables ($tag): bill from pandas without time_unit: month from its datetime64" "$bin" tb-bill-ref \
            bill tb-bill-pd.h5 "table = /bills" "columns = consumption:used" "${tiers[@]}"
        tb_same "tables ($tag): risk from pandas /transactions without time_unit: dates from their datetime64" \
            "$bin" tb-risk-ref risk tb-market-pd.h5 \
            "columns = date:trade_date, portfolio:book, asset:instrument, quantity:qty" "${rk[@]}"
        check "tables ($tag): risk from /transactions naming assets by ticker: the bits of their places" bash -c \
            "$(declare -f tb_run); tb_run '$bin' tb-risk-names risk tb-market-names.h5 $(printf '%q ' "${rk[@]}") &&
             tb_run '$bin' tb-risk-tick risk tb-market-tick.h5 $(printf '%q ' "${rk[@]}") &&
             h5diff --exclude-path /provenance tb-risk-names.h5 tb-risk-tick.h5"
        write_job tb-bad-tick s risk tb-market-tick.h5 tb-bad-tick.h5 "${rk[@]}" "columns = date:date" \
            "job.chunk_rows = 1000"
        tb_swap tb-market-tick.h5 good bad
        expect_fail "tables ($tag): a ticker not in /market/assets: 65 naming the row and the ticker" 65 \
            "/transactions/asset: row 5: asset 'NOPE' is not in /market/assets" tb-bad-tick.h5 \
            mpi 1 1 "$bin" run tb-bad-tick.ini
        tb_swap tb-market-tick.h5 bad good
        # portfolios named by string: looked up in /portfolios/names, or numbered in the
        # sorted order of their distinct names (gathered from every rank's rows)
        check "tables ($tag): risk from /transactions naming portfolios found in /portfolios/names: the bits of their ids" \
            bash -c "$(declare -f tb_run); tb_run '$bin' tb-risk-pref risk tb-market-pref.h5 $(printf '%q ' "${rk[@]}") &&
             tb_run '$bin' tb-risk-plook risk tb-market-plook.h5 $(printf '%q ' "${rk[@]}") &&
             h5diff --exclude-path /provenance tb-risk-pref.h5 tb-risk-plook.h5"
        check "tables ($tag): risk from /transactions naming portfolios alone, 1 and 3 ranks: sorted names as ids" bash -c \
            "$(declare -f tb_run); tb_run '$bin' tb-risk-pdref risk tb-market-pderive-ref.h5 $(printf '%q ' "${rk[@]}") &&
             tb_run '$bin' tb-risk-pd risk tb-market-pderive.h5 $(printf '%q ' "${rk[@]}") &&
             h5diff --exclude-path /provenance --exclude-attribute /risk/portfolio tb-risk-pdref.h5 tb-risk-pd.h5 &&
             mpi 3 1 '$bin' run tb-risk-pd.ini -q --force &&
             h5diff --exclude-path /provenance --exclude-attribute /risk/portfolio tb-risk-pdref.h5 tb-risk-pd.h5 &&
             $PY -c \"
import h5py
p = h5py.File('tb-risk-pd.h5')['risk/portfolio']
n = [x.decode() for x in p[...]]
assert n == sorted(n) and 'Zürich desk' in n, n
assert p.attrs['description'] == 'portfolio name (from /transactions, in sorted order)', p.attrs['description']
\""
        write_job tb-bad-pname s risk tb-market-plook.h5 tb-bad-pname.h5 "${rk[@]}" "job.chunk_rows = 1000"
        tb_swap tb-market-plook.h5 goodp badp
        expect_fail "tables ($tag): a portfolio not in /portfolios/names: 65 naming the row and the name" 65 \
            "/transactions/portfolio: row 5: portfolio 'NOPE' is not in /portfolios/names" tb-bad-pname.h5 \
            mpi 2 1 "$bin" run tb-bad-pname.ini
        tb_swap tb-market-plook.h5 badp goodp
        $PY -c "
import h5py
with h5py.File('tb-market-pderive.h5', 'a') as f:
    f['transactions'].attrs['n_portfolios'] = 9"
        write_job tb-bad-pn s risk tb-market-pderive.h5 tb-bad-pn.h5 "${rk[@]}"
        expect_fail "tables ($tag): named portfolios fewer than n_portfolios: 65 saying both" 65 \
            "attribute n_portfolios = 9, but its portfolios are named by 4 names" tb-bad-pn.h5 mpi 1 1 "$bin" run tb-bad-pn.ini
        $PY -c "
import h5py
with h5py.File('tb-market-pderive.h5', 'a') as f:
    del f['transactions'].attrs['n_portfolios']"
    elif [ ! -f tb-oee-ref.h5 ]; then
        check "tables ($tag): oee from the plain layout" bash -c "$(declare -f tb_run); tb_run '$HB' tb-oee-ref oee tb-plant.h5"
    fi
    TB_XATTR=/oee:table tb_same "tables ($tag): oee plugin from pandas /KEY/table (datetime64 with ms, columns)" \
        "$bin" tb-oee-ref oee tb-plant-pd.h5 "table = /intervals/table" "columns = batch:lot" "time_unit = ns"
}

# Bad tables: one error line, the documented code, nothing written.
suite_tables_bad() {
    local bin=$1 tag=$2
    write_job tb-bad-ms s traffic tb-traffic.h5 tb-bad-ms.h5 "table = /ms" "columns = time:timestamp, segment:seg, speed:v"
    expect_fail "tables ($tag): milliseconds read as seconds: 65 naming the column and time_unit = ms" 65 \
        "time column 'timestamp', row [0-9]*: .* years 1900 and 2200 in seconds.*look like milliseconds: time_unit = ms" \
        tb-bad-ms.h5 mpi 1 1 "$bin" run tb-bad-ms.ini
    [ "$tag" = plain ] || return 0 # the same paths as the plain pass's, once under ASan
    check "tables ($tag): the first and last ns of 1900-2200 are times, NaT is a missing one" bash -c \
        "$(declare -f tb_run); tb_run '$bin' tb-edges traffic tb-traffic.h5 'table = /edges' 'time_unit = ns' &&
         $PY -c 'import h5py; a = h5py.File(\"tb-edges.h5\")[\"traffic\"].attrs
assert (a[\"rows_valid\"], a[\"rows_invalid_time\"]) == (3, 1), dict(a)'"
    write_job tb-bad-fixed s aggregate tb-fixed-str.h5 tb-bad-fixed.h5 "table = /obs" "by = name" "values = speed"
    expect_fail "tables ($tag): a string column of pandas format=fixed: 65 saying to write format=table" 65 \
        "column 'name' is stored by pandas' format=\"fixed\" as pickled Python objects" tb-bad-fixed.h5 \
        mpi 1 1 "$bin" run tb-bad-fixed.ini
    write_job tb-bad-past s traffic tb-traffic.h5 tb-bad-past.h5 "table = /past" "time_unit = ns"
    expect_fail "tables ($tag): 2201-01-01 in ns is out of range" 65 "row 1: 7289654400000000000 is not a time" \
        tb-bad-past.h5 mpi 1 1 "$bin" run tb-bad-past.ini

    local g
    for g in months:"has units 'months since 2024-01-01': h5batch reads times counted in days, hours, minutes, s, ms, us or ns since a date" \
        badepoch:"has units 'seconds since 2024-13-01'" \
        days:"is pandas datetime64\[D\], a unit h5batch does not read"; do
        write_job tb-bad-${g%%:*} s traffic tb-traffic-units.h5 tb-bad-${g%%:*}.h5 "table = /${g%%:*}"
        expect_fail "tables ($tag): a time column that ${g#*:}: 65" 65 "time column 'time' ${g#*:}" \
            tb-bad-${g%%:*}.h5 mpi 1 1 "$bin" run tb-bad-${g%%:*}.ini
    done
    check "tables ($tag): an explicit time_unit reads a column whose units say otherwise as told" bash -c \
        "$(declare -f tb_run); tb_run '$bin' tb-units-set traffic tb-traffic-units.h5 'table = /epoch2000' 'time_unit = s' &&
         $PY -c 'import h5py; a = h5py.File(\"tb-units-set.h5\")[\"traffic\"].attrs
assert a[\"rows_invalid_time\"] == 0, dict(a)'"
    $PY -c "
import h5py, numpy as np
with h5py.File('tb-grid.h5', 'w') as f:
    f['time'] = np.arange(48) * 3600 + 1704067200; f['station'] = np.arange(3); f['temp'] = np.ones((48, 3))"
    write_job tb-bad-grid s aggregate tb-grid.h5 tb-bad-grid.h5 "table = /" "by = station, date" "time = time" \
        "values = temp"
    expect_fail "tables ($tag): a gridded variable (xarray's time x station): 65 naming its shape, not the lengths" 65 \
        "column 'temp' is an array (48 x 3), where a table's columns are one-dimensional" tb-bad-grid.h5 \
        mpi 1 1 "$bin" run tb-bad-grid.ini
    # a packed key or device id (its stored numbers are not the ids), and whole float ids
    # beyond int64 (a uint64 id that became a float)
    $PY -c "
import h5py, numpy as np
with h5py.File('tb-packedkey.h5', 'w') as f:
    g = f.create_group('pk'); g['k'] = np.array([1, 1, 2, 2, 3, 3]); g['k'].attrs['scale_factor'] = 2.0
    g['v'] = np.ones(6); g['time'] = np.arange(6) + 1700000000; g['big'] = np.full(6, 1.8446744073709552e19)"
    write_job tb-bad-pk s aggregate tb-packedkey.h5 tb-bad-pk.h5 "table = /pk" "by = k" "values = v"
    expect_fail "tables ($tag): a packed key column (scale_factor): 65 naming it" 65 \
        "column 'k' is packed (scale_factor 2, add_offset 0)" tb-bad-pk.h5 mpi 2 1 "$bin" run tb-bad-pk.ini
    write_job tb-bad-pkd s episodes tb-packedkey.h5 tb-bad-pkd.h5 "table = /pk" "columns = device:k, value:v" \
        "rule = above:0.5"
    expect_fail "tables ($tag): a packed device column of episodes: 65 naming it" 65 \
        "column 'k' is packed (scale_factor 2, add_offset 0)" tb-bad-pkd.h5 mpi 1 1 "$bin" run tb-bad-pkd.ini
    write_job tb-bad-big s aggregate tb-packedkey.h5 tb-bad-big.h5 "table = /pk" "by = big" "values = v"
    expect_fail "tables ($tag): a whole float key beyond int64: 65 saying so, not 'not an integer'" 65 \
        "key column 'big', row 0: 1.8446744073709552e+19 is outside the int64 range" tb-bad-big.h5 \
        mpi 1 1 "$bin" run tb-bad-big.ini
    # a column that is a link to nothing: 66 naming the file an external link needs, 65
    # naming a soft link's missing target
    $PY -c "
import h5py, numpy as np
with h5py.File('tb-links.h5', 'w') as f:
    g = f.create_group('ext'); g['k'] = np.arange(10) % 3; g['v'] = h5py.ExternalLink('tb-nonexist.h5', '/x')
    g = f.create_group('soft'); g['k'] = np.arange(10) % 3; g['v'] = h5py.SoftLink('/nothere')"
    write_job tb-bad-ext s aggregate tb-links.h5 tb-bad-ext.h5 "table = /ext" "by = k" "values = v"
    expect_fail "tables ($tag): a column that is an external link to a missing file: 66 naming it" 66 \
        "'v' is an external link to tb-nonexist.h5:/x, which cannot be opened" tb-bad-ext.h5 mpi 1 1 "$bin" run tb-bad-ext.ini
    write_job tb-bad-soft s aggregate tb-links.h5 tb-bad-soft.h5 "table = /soft" "by = k" "values = v"
    expect_fail "tables ($tag): a column that is a dangling soft link: 65 naming its target" 65 \
        "'v' is a soft link to /nothere, which is not there" tb-bad-soft.h5 mpi 1 1 "$bin" run tb-bad-soft.ini
    # an HDF5 file cut short (a copy that stopped): 66 saying so, with HDF5's own sizes
    head -c 3000 tb-links.h5 >tb-cut.h5
    write_job tb-bad-cut s aggregate tb-cut.h5 tb-bad-cut.h5 "table = /soft" "by = k" "values = v"
    expect_fail "tables ($tag): an HDF5 file cut short: 66 saying it is shorter than its superblock says" 66 \
        "tb-cut.h5: cannot open HDF5 file: it is shorter than its superblock says (truncated file: eof = 3000," \
        tb-bad-cut.h5 mpi 2 1 "$bin" run tb-bad-cut.ini
    # storage never written: a preallocated 10^12 rows of which 1000 were written (its
    # scan took hours, the rest read as zeros), a column created without data
    $PY -c "
import h5py, numpy as np
with h5py.File('tb-unwritten.h5', 'w') as f:
    g = f.create_group('pre')
    for k, dt in [('time', 'i8'), ('segment', 'i8'), ('speed', 'f8')]:
        g.create_dataset(k, shape=(10**12,), dtype=dt, chunks=(65536,))
    g['time'][:1000] = 1704067200 + np.arange(1000); g['segment'][:1000] = 1; g['speed'][:1000] = 50
    g = f.create_group('nodata'); g['time'] = 1704067200 + np.arange(1000); g['segment'] = np.ones(1000, int)
    g.create_dataset('speed', shape=(1000,), dtype='f8')"
    write_job tb-bad-pre s traffic tb-unwritten.h5 tb-bad-pre.h5 "table = /pre"
    expect_fail "tables ($tag): 10^12 rows declared, one chunk written: 65 at once, not hours of fill values" 65 \
        "column 'time' declares 1000000000000 rows in 15258790 chunks, of which 1 were ever written" tb-bad-pre.h5 \
        mpi 1 1 "$bin" run tb-bad-pre.ini
    write_job tb-bad-nodata s traffic tb-unwritten.h5 tb-bad-nodata.h5 "table = /nodata"
    expect_fail "tables ($tag): a column created but never written: 65, not zeros read as speeds" 65 \
        "column 'speed' was created with 1000 rows but never written" tb-bad-nodata.h5 \
        mpi 1 1 "$bin" run tb-bad-nodata.ini
    # string detector ids: traffic says to use aggregate, whose job as suggested runs
    $PY -c "
import h5py, numpy as np
with h5py.File('tb-strseg.h5', 'w') as f:
    g = f.create_group('obs'); g['time'] = 1704067200 + np.arange(600) * 600
    g['segment'] = np.array([b'M25/4321A', b'A1-North'])[np.arange(600) % 2]; g['speed'] = 50 + np.arange(600) % 7 * 1.0"
    write_job tb-bad-strseg s traffic tb-strseg.h5 tb-bad-strseg.h5 "table = /obs"
    expect_fail "tables ($tag): traffic with string segment ids: 65 suggesting the aggregate kernel" 65 \
        "segment column 'segment' holds strings, where traffic numbers segments 0..S-1: the aggregate kernel" \
        tb-bad-strseg.h5 mpi 1 1 "$bin" run tb-bad-strseg.ini
    check "tables ($tag): the aggregate job that message suggests counts the string segments" bash -c \
        "$(declare -f tb_run); tb_run '$bin' tb-strseg-agg aggregate tb-strseg.h5 'table = /obs' 'time = time' \
           'by = segment, day_of_week, hour' 'values = speed' 'stats = count, mean, p50, p85, p95' &&
         $PY -c 'import h5py
o = h5py.File(\"tb-strseg-agg.h5\")[\"aggregate\"]
assert [s.decode() for s in o[\"segment\"][...]] == [\"A1-North\", \"M25/4321A\"], o[\"segment\"][...]
assert o[\"speed_count\"][...].sum() == 600'"
    # column names with spaces and symbols (CSV and spreadsheet headers): refused as job
    # names with the remedy, read through `columns`
    $PY -c "
import h5py, numpy as np
with h5py.File('tb-colnames.h5', 'w') as f:
    g = f.create_group('obs'); g['time'] = 1704067200 + np.arange(1000) * 3600
    g['Sensor ID'] = np.arange(1000) % 3; g['Temp (°C)'] = np.arange(1000) * 0.5"
    write_job tb-bad-names s aggregate tb-colnames.h5 tb-bad-names.h5 "table = /obs" "by = Sensor ID" "values = x"
    expect_fail "tables ($tag): a key named 'Sensor ID': 78 saying to map it in columns" 78 \
        "by: 'Sensor ID' is not a column name (names hold no spaces, '/' or ':'): map the table's column" \
        tb-bad-names.h5 mpi 1 1 "$bin" run tb-bad-names.ini
    check "tables ($tag): columns = sensor:Sensor ID, temp:Temp (°C) reads them" bash -c \
        "$(declare -f tb_run); tb_run '$bin' tb-names aggregate tb-colnames.h5 'table = /obs' 'by = sensor' \
           'values = temp' 'stats = count, sum' 'columns = sensor:Sensor ID, temp:Temp (°C)' && $PY -c '
import h5py, numpy as np
o = h5py.File(\"tb-names.h5\")[\"aggregate\"]
x = np.arange(1000) * 0.5; k = np.arange(1000) % 3
assert list(o[\"temp_count\"][...]) == [334, 333, 333], o[\"temp_count\"][...]
assert np.array_equal(o[\"temp_sum\"][...], [x[k == j].sum() for j in range(3)])'"
    write_job tb-bad-ns s aggregate tb-agg-h5c.h5 tb-bad-ns.h5 "table = /readings" "by = meter" "time = time" \
        "values = value" "stats = count, last"
    expect_fail "tables ($tag): pandas datetime64 read as seconds: 65 suggesting time_unit = ns" 65 \
        "time column 'time', row 0: .*look like nanoseconds: time_unit = ns" tb-bad-ns.h5 mpi 1 1 "$bin" run tb-bad-ns.ini
    write_job tb-bad-col s traffic tb-traffic-pd.h5 tb-bad-col.h5 "table = /obs" "columns = speed:velocity" \
        "time_unit = ns"
    expect_fail "tables ($tag): a missing column names the compound's columns" 65 \
        "missing column 'velocity' (the compound dataset's columns: index, time, segment, speed)" tb-bad-col.h5 \
        mpi 1 1 "$bin" run tb-bad-col.ini
    $PY -c "
import h5py, numpy as np
x = np.zeros(4, np.dtype([('a', '<i8'), ('v', '<f8', (3,)), ('t', '<i8')]))
x['a'] = [1, 1, 2, 2]
h5py.File('tb-arrfield.h5', 'w')['table'] = x"
    write_job tb-bad-arr s aggregate tb-arrfield.h5 tb-bad-arr.h5 "table = /table" "by = a" "values = v" "stats = count"
    expect_fail "tables ($tag): a compound's array field asked for as a column: 65 saying it holds several values a row" 65 \
        "column 'v' is a field of several values a row (an array field of the compound dataset)" tb-bad-arr.h5 \
        mpi 1 1 "$bin" run tb-bad-arr.ini
    # the same nanoseconds, with pandas' dtype attributes gone: numbers that are no yyyymmdd
    cp tb-market-pd.h5 tb-market-nodt.h5 && $PY -c 'import h5py
with h5py.File("tb-market-nodt.h5", "a") as f:
    a = f["transactions/table"].attrs
    for k in [k for k in a if k.endswith("_dtype") and str(a[k]).find("datetime64") >= 0]:
        del a[k]'
    write_job tb-bad-tx s risk tb-market-nodt.h5 tb-bad-tx.h5 "positions = transactions" \
        "columns = date:trade_date, portfolio:book, asset:instrument, quantity:qty" "methods = historical" \
        "window = 100" "backtest_days = 0"
    expect_fail "tables ($tag): risk's nanosecond dates without time_unit or pandas' dtype: 65" 65 \
        "time column\|not a date yyyymmdd" tb-bad-tx.h5 mpi 1 1 "$bin" run tb-bad-tx.ini
    if grep -qx "nofilter blosc" tb-nofilter.txt; then
        skip "tables ($tag): a filter that is not installed" "h5py on this machine cannot write blosc"
    else
        write_job tb-bad-filter s traffic tb-traffic.h5 tb-bad-filter.h5 "table = /blosc"
        expect_fail "tables ($tag): a filter that is not installed: 66 naming it" 66 \
            "column 'time' is compressed with HDF5 filter 32001 (blosc), which is not installed" tb-bad-filter.h5 \
            env HDF5_PLUGIN_PATH="$W/tb-no-plugins" bash -c "mpi 1 1 '$bin' run tb-bad-filter.ini"
    fi
}

# A DataFrame indexed by its times, read by the index's name (or as "index"): the bits of
# the plain layout, whose months agree with pandas.
suite_tables_index() {
    local bin=$1 tag=$2 ref=tb-idx-ref t
    local lines=("by = sensor, month" "time = time" "values = value" "stats = count, mean" "layout = table")
    check "tables ($tag): aggregate of the plain copy of the indexed frame agrees with pandas" bash -c \
        "$(declare -f tb_run); tb_run '$bin' $ref aggregate tb-idx.h5 'table = /plain' $(printf '%q ' "${lines[@]}") &&
         $PY -c 'import h5py, pandas as pd, numpy as np
g, o = h5py.File(\"tb-idx.h5\")[\"plain\"], h5py.File(\"$ref.h5\")[\"aggregate\"]
d = pd.DataFrame({k: g[k][...] for k in g}); w = pd.to_datetime(d.time, unit=\"s\")
r = d.groupby([d.sensor, w.dt.year * 100 + w.dt.month]).value.agg([\"count\", \"mean\"])
assert (o[\"value_count\"][...] == r[\"count\"].to_numpy()).all()
assert np.allclose(o[\"value_mean\"][...], r[\"mean\"].to_numpy(), rtol=1e-12, atol=0)'"
    local TB_XATTR=/aggregate:time_unit
    tb_same "tables ($tag): pandas format=table indexed by time: the index read by its name, as ns" "$bin" $ref \
        aggregate tb-idx.h5 "table = /table" "${lines[@]}"
    tb_same "tables ($tag): pandas format=fixed indexed by time: axis1 read by its name, as ns" "$bin" $ref \
        aggregate tb-idx.h5 "table = /fixed" "${lines[@]}"
    check "tables ($tag): pandas format=fixed with an unnamed index: read as 'index'" bash -c \
        "$(declare -f tb_run); tb_run '$bin' tb-idx-unnamed aggregate tb-idx.h5 'table = /unnamed' \
           $(printf '%q ' "${lines[@]/time = time/time = index}") &&
         h5diff --exclude-path /provenance --exclude-attribute /aggregate $ref.h5 tb-idx-unnamed.h5"
}

# CF's mask and scale (docs/tables.md "Missing and packed values"): fills, missing_value,
# scale_factor/add_offset and _Unsigned read as xarray decodes them, against a decoding
# by hand and against xarray itself; the bits of 1 rank at 3; what cannot be decoded, 65.
suite_tables_cf() {
    local bin=$1 tag=$2 ref=tb-cf-ref
    local lines=("table = /" "by = station, month" "time = time" "values = temp, flow, level"
        "stats = count, sum, mean, min, max" "layout = table")
    check "tables ($tag): aggregate of CF fills, packed int16 and _Unsigned bytes agrees with a decoding by hand" \
        bash -c "$(declare -f tb_run); tb_run '$bin' $ref aggregate tb-cf.h5 $(printf '%q ' "${lines[@]}") &&
         $PY '$ROOT/tests/tables/tables_check.py' cf tb-cf.h5 $ref.h5"
    check "tables ($tag): aggregate of CF-encoded columns at 3 ranks: the bits of 1 rank" bash -c \
        "rm -rf tb-cf-r3.run tb-cf-r3.h5 && write_job tb-cf-r3 s aggregate tb-cf.h5 tb-cf-r3.h5 \
           $(printf '%q ' "${lines[@]}") && mpi 3 1 '$bin' run tb-cf-r3.ini -q && tb_h5diff $ref.h5 tb-cf-r3.h5"
    if [ -f tb-cf.nc ]; then
        check "tables ($tag): aggregate of xarray's netCDF (to_netcdf, packed int16) agrees with xarray's decoding" \
            bash -c "$(declare -f tb_run); tb_run '$bin' tb-cf-nc aggregate tb-cf.nc 'table = /' \
               'by = station, month' 'time = time' 'values = temp, flow' 'stats = count, sum, mean, min, max' \
               'layout = table' &&
             $PY '$ROOT/tests/tables/tables_check.py' cfnc tb-cf.nc tb-cf-nc.h5"
        check "tables ($tag): aggregate of xarray's default encoding (hours since 2024-01-01 00:00:00) agrees with xarray" \
            bash -c "$(declare -f tb_run); tb_run '$bin' tb-cf-default aggregate tb-cf-default.nc 'table = /' \
               'by = station, month' 'time = time' 'values = temp, flow' 'stats = count, sum, mean, min, max' \
               'layout = table' && $PY -c 'import h5py; u = h5py.File(\"tb-cf-default.nc\")[\"time\"].attrs[\"units\"]
assert str(u).startswith(\"hours since\"), u' &&
             $PY '$ROOT/tests/tables/tables_check.py' cfnc tb-cf-default.nc tb-cf-default.h5"
    else
        skip "tables ($tag): aggregate of xarray's netCDF" "xarray or h5netcdf is missing (scripts/deps.sh installs them)"
    fi
    tb_same "tables ($tag): traffic from columns stored as N x 1 and 1 x N matrices: the bits of the plain layout" \
        "$bin" tb-traffic-ref traffic tb-traffic.h5 "table = /vec"
    tb_same "tables ($tag): traffic with speed's NaN as a _FillValue, packed x * 2: the bits of the plain layout" \
        "$bin" tb-traffic-ref traffic tb-traffic.h5 "table = /cf"
    check "tables ($tag): a _FillValue its column's type cannot hold (-9999 for uint8) hides no row" bash -c \
        "$(declare -f tb_run); tb_run '$bin' tb-cf-u8 aggregate tb-cf.h5 'table = /' 'by = station' 'time = time' \
           'values = u8' 'stats = count' && $PY -c 'import h5py, numpy as np
f, o = h5py.File(\"tb-cf.h5\"), h5py.File(\"tb-cf-u8.h5\")[\"aggregate\"]
keep = (f[\"time\"][...] != np.iinfo(np.int64).min) & (f[\"station\"][...] != -1)
assert o[\"u8_count\"][...].sum() == keep.sum(), (o[\"u8_count\"][...].sum(), keep.sum())'"
    local g
    for g in "bad_time:temp:column 'bad_time' is packed (scale_factor 2, add_offset 0)" \
        "time:bad_scale:column 'bad_scale': attribute scale_factor is not one finite number" \
        "noleap:temp:time column 'noleap' counts in calendar 'noleap'"; do
        IFS=: read -r tcol vcol msg <<<"$g"
        write_job tb-bad-cf-$vcol-$tcol s aggregate tb-cf.h5 tb-bad-cf-$vcol-$tcol.h5 "table = /" "by = station" \
            "time = $tcol" "values = $vcol"
        expect_fail "tables ($tag): CF: $msg: 65" 65 "$msg" tb-bad-cf-$vcol-$tcol.h5 \
            mpi 1 1 "$bin" run tb-bad-cf-$vcol-$tcol.ini
    done
    write_job tb-bad-notable s aggregate tb-cf.h5 tb-bad-notable.h5 "by = station" "time = time" "values = temp"
    expect_fail "tables ($tag): no /table in a netCDF-like file: 65 listing the root and suggesting table = /" 65 \
        "no such table (group or compound dataset); the file holds bad_scale, bad_time, flow, level, noleap, station, \.\.\. (table = / reads" \
        tb-bad-notable.h5 mpi 1 1 "$bin" run tb-bad-notable.ini
}

# The suite (tests/run_tests.sh calls it once per pass with BIN TAG); nothing in the
# valgrind pass (the same paths run in the asan one).
suite_tables() {
    [ "$2" = valgrind ] && return 0
    if ! $PY -c "import tables" 2>/dev/null; then
        skip "tables ($2)" "PyTables (python3-tables) is missing: pandas cannot write its HDF5 formats"
        return 0
    fi
    if ! tb_inputs >"$W/log" 2>&1; then
        not_ok "tables ($2): making the inputs"
        return
    fi
    suite_tables_traffic "$@"
    suite_tables_aggregate "$@"
    suite_tables_bool "$@"
    suite_tables_categorical "$@"
    suite_tables_cf "$@"
    suite_tables_index "$@"
    suite_tables_others "$@"
    suite_tables_bad "$@"
}
