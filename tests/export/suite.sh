# `h5batch export` (DESIGN.md 6, docs/export.md) and `h5batch kernels NAME` listing
# inputs and outputs; sourced by tests/run_tests.sh, whose helpers (tests/lib.sh: check,
# expect_fail, mpi; $PY, $W, $ROOT, $LIMIT, $HB) it uses. Expected values: xarray's
# to_dataframe() of the same group and pandas' read of the CSV (check_export.py), texts
# written by hand for a small h5py file (make_export_case.py), and the kernels' docs and
# real outputs for the listing (check_listing.py).

# Once for all passes, with the plain binary: one tiny output of every kernel (one job,
# one step per kernel and layout) and the h5py case file.
export_inputs() {
    [ -f export-inputs.done ] && return 0
    "$HB" gen traffic -o ex-traffic-in.h5 --rows 3000 --segments 3 --days 14 --events 2 -q &&
        "$HB" gen market -o ex-market.h5 --assets 3 --days 400 --portfolios 3 -q &&
        "$HB" gen corpus -o ex-corpus.h5 --docs 30 --mean-bytes 60 --vocab 100 -q &&
        "$HB" gen vitals -o ex-vitals.h5 --rows 2000 --devices 3 --days 14 -q &&
        "$HB" gen meters -o ex-meters.h5 --meters 4 --districts 2 --days 62 -q || return 1
    cat >ex-all.ini <<'EOF'
[job]
run_dir = ex-all.run
[step traffic]
kernel = traffic
input = ex-traffic-in.h5
output = ex-traffic.h5
timezone = Europe/Berlin
[step risk]
kernel = risk
input = ex-market.h5
output = ex-risk.h5
window = 200
backtest_days = 50
mc_scenarios = 500
write_pnl = true
[step index]
kernel = index
input = ex-corpus.h5
output = ex-index.h5
positions = true
[step dense]
kernel = aggregate
input = ex-vitals.h5
output = ex-dense.h5
by = patient, week
time = time
timezone = Europe/Zurich
values = systolic, diastolic
stats = count, mean, p95, above:140
[step table]
kernel = aggregate
input = ex-meters.h5
output = ex-table.h5
by = meter, district, month
time = time
timezone = Europe/Berlin
values = consumption
stats = count, sum
layout = table
[step bill]
kernel = bill
input = ex-table.h5
output = ex-bill.h5
table = /aggregate
columns = consumption:consumption_sum
tiers = 0:1.20, 10:1.80, 30:2.50
fixed_charge = 8.50
EOF
    "$HB" run ex-all.ini -q && $PY "$ROOT/tests/export/make_export_case.py" ex-case.h5 || return 1
    # the oee plugin, built as a user builds it, against the installed headers
    make -C "$ROOT" --no-print-directory install PREFIX="$W/ex-prefix" >/dev/null &&
        rm -rf ex-oee-src && cp -r "$ROOT/examples/plugins/oee" ex-oee-src &&
        PKG_CONFIG_PATH="$W/ex-prefix/lib/pkgconfig" make -C ex-oee-src >/dev/null &&
        mkdir -p ex-pl && cp ex-oee-src/oee.so ex-pl/ || return 1
    printf '[job]\nrun_dir = ex-oee.run\n[step oee]\nkernel = oee\ninput = ex-plant.h5\noutput = ex-oee.h5\n' >ex-oee.ini
    H5BATCH_PLUGIN_PATH="$W/ex-pl" "$HB" gen bottling -o ex-plant.h5 --lines 2 --days 3 -q &&
        H5BATCH_PLUGIN_PATH="$W/ex-pl" "$HB" run ex-oee.ini -q && touch export-inputs.done
}

# FILE GROUP pairs: every output group the kernels write today, and the case file's
EXPORT_GROUPS="ex-traffic.h5:traffic ex-traffic.h5:traffic/events ex-risk.h5:risk ex-index.h5:index
ex-dense.h5:aggregate ex-table.h5:aggregate ex-bill.h5:bill ex-bill.h5:bill/districts ex-oee.h5:oee
ex-case.h5:labels ex-case.h5:table"

# The name of the CSV of FILE:GROUP in pass TAG.
ex_csv() { local fg=${1//\//-}; echo "ex-${fg/:/-}-$2.csv"; }

# Each group exported to a file; in the plain pass checked against xarray and pandas
# (one Python for all the groups), in the others compared byte for byte with the plain
# pass's CSV.
suite_export_groups() {
    local bin=$1 tag=$2 fg args=() fail=0 groups=$EXPORT_GROUPS
    # under ASan the groups that reach every path: scales, broadcast, phony dimensions, strings
    [ "$tag" = plain ] || groups="ex-traffic.h5:traffic ex-index.h5:index ex-case.h5:labels ex-case.h5:table"
    for fg in $groups; do
        local f=${fg%%:*} g=${fg#*:} out ref
        out=$(ex_csv "$fg" "$tag")
        ref=$(ex_csv "$fg" plain)
        if [ "$tag" = plain ]; then
            H5BATCH_PLUGIN_PATH="$W/ex-pl" "$bin" export "$f" --group "$g" -q -o "$out" >"$W/log" 2>&1 ||
                { fail=1; break; }
            args+=("$f:$g:$out$([ "$g" = oee ] && echo :start,end)")
        else
            [ -f "$ref" ] || "$HB" export "$f" --group "$g" -q -o "$ref"
            check "export ($tag): $f --group $g, the same bytes as the plain pass" bash -c \
                "'$bin' export $f --group $g -q -o $out && cmp $out $ref"
        fi
    done
    [ "$tag" = plain ] || return 0
    if [ $fail = 1 ]; then
        not_ok "export ($tag): every kernel's output group (traffic, events, risk, index, aggregate dense and table, bill, districts)"
        return
    fi
    check "export ($tag): every kernel's output group (traffic, events, risk, index, aggregate dense and table, bill, districts), the oee plugin's and the h5py case against xarray to_dataframe() and pandas read_csv" \
        $PY "$ROOT/tests/export/check_export.py" "${args[@]}"
}

# Texts written by hand: labels quoted as RFC 4180 says, calendar dates, date-times with
# the zone's offset on both sides of the DST change, NaN empty, shortest floats, uint64.
suite_export_texts() {
    local bin=$1 tag=$2
    cat >ex-labels.want <<'EOF'
station,day,count,note,temp,time
Zürich HB,2024-03-30,0,plain,0.1,2024-03-31T01:59:59+01:00
Zürich HB,2024-03-31,1,plain,,2024-03-31T03:00:00+02:00
"Bern, Bahnhof",2024-03-30,18446744073709551615,"a, b",0.3333333333333333,2024-03-31T01:00:00+01:00
"Bern, Bahnhof",2024-03-31,9223372036854775808,"a, b",-0,2024-03-31T04:00:00+02:00
"say ""hi""",2024-03-30,7,,1e-300,1970-01-01T01:00:00+01:00
"say ""hi""",2024-03-31,8,,1e+22,1970-01-01T00:59:59+01:00
"multi
line",2024-03-30,9,ünï,inf,2024-01-01T01:00:00+01:00
"multi
line",2024-03-31,10,ünï,-inf,2024-07-01T02:00:00+02:00
EOF
    printf 'key,n,x\na,-5,1.5\nbb,0,\n"c,d",4611686018427387904,-2.25e-05\n,3,123456789.125\n' >ex-table.want
    check "export ($tag): labels, ISO dates and times with the zone offset, NaN empty, exact numbers (by hand)" \
        bash -c "'$bin' export ex-case.h5 --group /labels -q >ex-labels-$tag.out && cmp ex-labels-$tag.out ex-labels.want"
    check "export ($tag): a table of fixed-length strings, no row column (by hand)" \
        bash -c "'$bin' export ex-case.h5 --group table/ -o - >ex-table-$tag.out && cmp ex-table-$tag.out ex-table.want"
    check "export ($tag): arrays without dimension scales (3-D, two 2-D, one dimension scaled): every cell in C order (numpy)" \
        $PY "$ROOT/tests/export/check_unscaled.py" "$bin" "ex-$tag"
    check "export ($tag): an import's table is found without --group (its /row scale at / makes no group of datasets)" \
        bash -c "printf 'k,x\na,1.5\n\"b,c\",2\n' >ex-imp-$tag.csv && '$HB' import ex-imp-$tag.csv -o ex-imp-$tag.h5 --force -q &&
                 '$bin' export ex-imp-$tag.h5 -q | cmp - ex-imp-$tag.csv"
    check "export ($tag): booleans (h5py's enum, PyTables' bitfield) are exported as 0 and 1 (by hand)" bash -c \
        "$PY -c 'import h5py, numpy as np
from h5py import h5t, h5s, h5d
with h5py.File(\"ex-bool-$tag.h5\", \"w\") as f:
    f[\"t/flag\"] = np.array([True, False, True]); f[\"t/v\"] = np.array([1.5, 2.5, 3.5])
    d = h5d.create(f[\"t\"].id, b\"bits\", h5t.STD_B8LE, h5s.create_simple((3,)))
    d.write(h5s.ALL, h5s.ALL, np.array([0, 1, 1], np.uint8), mtype=h5t.NATIVE_B8)' &&
         '$bin' export ex-bool-$tag.h5 --group /t -q | cmp - <(printf 'bits,flag,v\n0,1,1.5\n1,0,2.5\n1,1,3.5\n')"
    check "export ($tag): --bom starts the file with the UTF-8 byte order mark, the rest unchanged" bash -c \
        "'$bin' export ex-case.h5 --group table --bom -o ex-bom-$tag.csv &&
         head -c 3 ex-bom-$tag.csv | od -An -tx1 | grep -q 'ef bb bf' && tail -c +4 ex-bom-$tag.csv | cmp - ex-table.want"
    check "export ($tag): the datasets of other dimensions are named in one note on stderr" bash -c \
        "'$bin' export ex-case.h5 --group labels >/dev/null 2>ex-note-$tag &&
         grep -q '^h5batch: note: export of /labels: left out: other (3 rows) (--datasets' ex-note-$tag &&
         [ \$(wc -l <ex-note-$tag) = 1 ] && '$bin' export ex-case.h5 --group labels -q 2>&1 >/dev/null | cmp - /dev/null"
    check "export ($tag): the index: its document table, the postings named as left out" bash -c \
        "'$bin' export ex-index.h5 2>ex-inote-$tag | head -1 | grep -qx 'doc_id,doc_length' &&
         grep -q 'postings_doc (posting)' ex-inote-$tag"
    check "export ($tag): --datasets chooses other dimensions: risk's P&L per portfolio and date" bash -c \
        "'$bin' export ex-risk.h5 --datasets pnl,mean_pnl -o ex-pnl-$tag.csv &&
         head -1 ex-pnl-$tag.csv | grep -qx 'portfolio,date,mean_pnl,pnl' && [ \$(wc -l <ex-pnl-$tag.csv) = 601 ] &&
         sed -n 2p ex-pnl-$tag.csv | grep -q '^0,[0-9]\{4\}-[0-9][0-9]-[0-9][0-9],'"
}

# stdout and -o FILE give the same bytes; under mpirun (3 ranks) only rank 0 writes, the
# same bytes again.
suite_export_ways() {
    local bin=$1 tag=$2
    local ref
    ref=$(ex_csv ex-traffic.h5:traffic "$tag")
    check "export ($tag): stdout (no -o, and -o -) is the same as -o FILE" bash -c \
        "'$bin' export ex-traffic.h5 --group traffic -q >ex-so-$tag.csv && cmp ex-so-$tag.csv $ref &&
         '$bin' export ex-traffic.h5 --group traffic -q -o - | cmp - $ref"
    [ "$tag" = plain ] || return 0 # the same code as a plain process: once is enough
    check "export ($tag): under mpirun -n 3 rank 0 alone writes: the same bytes" bash -c \
        "$(declare -f mpi); LIMIT=$LIMIT; mpi 3 1 '$bin' export ex-traffic.h5 --group traffic -q -o ex-3r-$tag.csv &&
         cmp ex-3r-$tag.csv $ref && mpi 3 1 '$bin' export ex-traffic.h5 --group traffic -q | cmp - $ref"
}

# Bad input and unwritable outputs: one error line, the documented code, nothing left.
suite_export_bad() {
    local bin=$1 tag=$2
    local d=ex-bad-$tag
    rm -rf "$d" && mkdir -p "$d" && echo keep >"$d/old.csv" && echo target >"$d/target.csv" &&
        ln -s target.csv "$d/link.csv" && ln -s nowhere.csv "$d/dangling.csv"
    expect_fail "export ($tag): an existing file without --force is 73" 73 "file exists; use --force" "" \
        "$bin" export ex-case.h5 --group table -o "$d/old.csv"
    check "export ($tag): ... and is left unchanged; with --force it is replaced" bash -c \
        "grep -qx keep $d/old.csv && '$bin' export ex-case.h5 --group table -o $d/old.csv --force &&
         cmp $d/old.csv ex-table.want"
    expect_fail "export ($tag): a symbolic link at the destination is 73, even with --force" 73 \
        "is a symbolic link; not followed, not replaced" "" "$bin" export ex-case.h5 --group table -o "$d/link.csv" --force
    check "export ($tag): ... the link and its target are untouched" bash -c \
        "[ -L $d/link.csv ] && grep -qx target $d/target.csv && [ ! -e $d/nowhere.csv ]"
    printf 'k,x\na,1.5\nb,2\n' >"$d/in.csv" && "$HB" import "$d/in.csv" -o "$d/in.h5" -q &&
        printf '[job]\nrun_dir = %s/pt.run\n\n[step agg]\nkernel = aggregate\ninput = %s/in.h5\noutput = %s/part.h5\nby = k\nvalues = x\n' \
            "$d" "$d" "$d" >"$d/pt.ini" && "$HB" run "$d/pt.ini" --partial -q
    expect_fail "export ($tag): a partial state (run --partial) is 65 saying to merge it first" 65 \
        "part.h5: is a partial state (run --partial), not a result: merge it first" "$d/part.csv" \
        "$bin" export "$d/part.h5" -o "$d/part.csv"
    # strings of a foreign file that are not UTF-8 (Latin-1 bytes) or hold a NUL before their
    # padding: the CSV would carry them raw (a NUL-padded 'a\0b' was cut to 'a')
    $PY -c 'import h5py, numpy as np, sys
d = sys.argv[1]
for name, bad in (("latin1", b"caf\xe9"), ("nul", b"a\x00b")):
    with h5py.File(f"{d}/{name}.h5", "w") as f:
        f["g/name"] = np.array([b"ok", bad, b"x"]); f["g/v"] = np.array([1.0, 2.0, 3.0])
with h5py.File(f"{d}/vlen.h5", "w") as f:
    s = f.create_dataset("g/name", (3,), dtype=h5py.string_dtype())
    s[0], s[1], s[2] = b"ok", b"ok", b"\xff\xfe"; f["g/v"] = np.array([1.0, 2.0, 3.0])' "$d"
    expect_fail "export ($tag): a fixed-length string that is not UTF-8 (Latin-1) is 65 naming the dataset and row" 65 \
        "latin1.h5: dataset /g/name, row 1: byte 4 is 0xe9, not UTF-8: strings are exported as UTF-8 text" \
        "$d/latin1.csv" "$bin" export "$d/latin1.h5" -o "$d/latin1.csv"
    expect_fail "export ($tag): a NUL inside a NUL-padded string is 65" 65 \
        "nul.h5: dataset /g/name, row 1: byte 2 is a NUL" "$d/nul.csv" "$bin" export "$d/nul.h5" -o "$d/nul.csv"
    expect_fail "export ($tag): a variable-length string that is not UTF-8 is 65" 65 \
        "vlen.h5: dataset /g/name, row 2: byte 1 is 0xff, not UTF-8" "$d/vlen.csv" "$bin" export "$d/vlen.h5" -o "$d/vlen.csv"
    expect_fail "export ($tag): stdout on a full disk (/dev/full) is 74" 74 "stdout: cannot write the CSV" "" \
        bash -c "'$bin' export ex-traffic.h5 --group traffic -q >/dev/full"
    expect_fail "export ($tag): a write that fails half-way is 74" 74 "cannot write the CSV" "$d/half.csv" \
        env H5BATCH_FAULT_WRITE_FAIL=20:output:data "$bin" export ex-traffic.h5 --group traffic -q -o "$d/half.csv"
    check "export ($tag): ... and leaves no temporary file behind" bash -c "! ls $d | grep -q tmp"
    expect_fail "export ($tag): --datasets of different dimensions is 65, naming both" 65 \
        "/risk/exposure (dimensions portfolio x asset) does not share the dimensions of pnl" "$d/r.csv" \
        "$bin" export ex-risk.h5 --datasets pnl,exposure -o "$d/r.csv"
    # the other messages under ASan add time, not paths
    [ "$tag" = plain ] || return 0
    expect_fail "export ($tag): a dangling symbolic link is 73" 73 "symbolic link" "" \
        "$bin" export ex-case.h5 --group table -o "$d/dangling.csv"
    check "export ($tag): -o the input itself is 73 even with --force; the input unchanged, nothing left" bash -c \
        "cp ex-case.h5 $d/in.h5 && cp ex-case.h5 $d/in.keep &&
         { '$bin' export $d/in.h5 --group table -o $d/in.h5 --force 2>$d/in.err; [ \$? = 73 ]; } &&
         grep -q 'is the input; never replaced' $d/in.err && cmp $d/in.h5 $d/in.keep && ! compgen -G '$d/in.h5.*'"
    check "export ($tag): an output whose DEST.lock another process holds is 73; nothing written" bash -c \
        "{ flock $d/busy.csv.lock '$bin' export ex-case.h5 --group table -o $d/busy.csv 2>$d/busy.err; [ \$? = 73 ]; } &&
         grep -q 'output $d/busy.csv is in use by another run' $d/busy.err && [ ! -e $d/busy.csv ] && ! compgen -G '$d/busy.csv.*.tmp'"
    expect_fail "export ($tag): a missing output folder is 73" 73 "does not exist" "$d/no/x.csv" \
        "$bin" export ex-case.h5 --group table -o "$d/no/x.csv"
    expect_fail "export ($tag): several groups without --group is 64, listing them" 64 \
        "choose one with --group: /labels /nothing /table" "" "$bin" export ex-case.h5
    expect_fail "export ($tag): an unknown group is 64, listing the groups" 64 \
        "no group /nope (groups with datasets: /traffic /traffic/events)" "" "$bin" export ex-traffic.h5 --group nope
    expect_fail "export ($tag): a group with nothing to export is 65" 65 "/nothing holds no dataset" "$d/n.csv" \
        "$bin" export ex-case.h5 --group nothing -o "$d/n.csv"
    expect_fail "export ($tag): --datasets naming no dataset is 64" 64 "has no dataset 'nope'" "" \
        "$bin" export ex-risk.h5 --datasets nope
    expect_fail "export ($tag): a missing input is 66" 66 "no such file" "$d/m.csv" \
        "$bin" export "$d/missing.h5" -o "$d/m.csv"
    expect_fail "export ($tag): an input that is not HDF5 is 66" 66 "not an HDF5 file" "" \
        "$bin" export ex-table.want
    expect_fail "export ($tag): no input is 64 with the usage" 64 "usage: h5batch export" "" "$bin" export
}

# `h5batch kernels NAME` (and --json) lists what each kernel's docs name, and describes
# every dataset of its real outputs, with types and dimension names.
suite_export_listing() {
    local bin=$1 tag=$2
    if [ "$tag" = plain ]; then
        check "kernels NAME --json ($tag): traffic, risk, index, aggregate, bill list what their docs name and describe every dataset of their outputs" \
            $PY "$ROOT/tests/export/check_listing.py" "$bin" traffic:ex-traffic.h5 risk:ex-risk.h5 index:ex-index.h5 \
            aggregate:ex-dense.h5,ex-table.h5 bill:ex-bill.h5
        check "kernels oee --json ($tag): the plugin's descriptions (ABI 2) as its README names them, and its output" \
            env H5BATCH_PLUGIN_PATH="$W/ex-pl" $PY "$ROOT/tests/export/check_listing.py" "$bin" oee:ex-oee.h5
    else
        check "kernels NAME --json ($tag): risk (the most descriptions) as its docs name it and its output holds it" \
            $PY "$ROOT/tests/export/check_listing.py" "$bin" risk:ex-risk.h5
    fi
    check "kernels traffic ($tag): the text listing shows inputs with kinds and outputs with dims" bash -c \
        "'$bin' kernels traffic >ex-kt-$tag && grep -q '^inputs' ex-kt-$tag && grep -q '^  column speed of the table' ex-kt-$tag &&
         grep -q 'uint64 \[segment,day_of_week,hour\], units 1' ex-kt-$tag && grep -q '/calendar/event_days' ex-kt-$tag"
    expect_fail "kernels ($tag): --json without a kernel is 64" 64 "needs a kernel name" "" "$bin" kernels --json
}

# The suite (tests/run_tests.sh calls it once per pass with BIN TAG). Export is a plain
# process reading small files: the valgrind pass runs nothing of it.
suite_export() {
    [ "$2" = valgrind ] && return 0
    export_inputs >"$W/log" 2>&1 || {
        not_ok "export ($2): making the inputs"
        return
    }
    local s
    for s in suite_export_groups suite_export_texts suite_export_ways suite_export_bad suite_export_listing; do
        "$s" "$@"
    done
}
