# The suites of `h5batch import` (DESIGN.md 6, docs/import.md); sourced by
# tests/run_tests.sh, whose helpers (check, expect_fail, mpi, $PY, $W, $ROOT, $LIMIT) they
# use. Expected values come from pandas read_csv and pandas' time-zone localization
# (tests/import/import_ref.py) and from cases counted by hand; the inputs are made by
# tests/import/make_import_case.py. Each function takes (BIN TAG).

imp_inputs() {
    [ -f imp-inputs.done ] && return 0
    $PY "$ROOT/tests/import/make_import_case.py" . && touch imp-inputs.done
}

# imp_ranks BIN NAME "RANKS" ARGS...: imports at each rank count into NAME-N.h5 and
# compares each with the first, leaving out /provenance.
imp_ranks() {
    local bin=$1 name=$2 ranks=$3 n first=
    shift 3
    for n in $ranks; do
        mpi "$n" 1 "$bin" import "$@" -o "$name-$n.h5" --force -q || return 1
        if [ -z "$first" ]; then first=$n; else h5diff --exclude-path /provenance "$name-$first.h5" "$name-$n.h5" || return 1; fi
    done
}
export -f imp_ranks

IMP_MIXED="imp-a.csv imp-b.csv.gz imp-c.dat --timezone Europe/Berlin"
IMP_FMT=(imp-fmt.csv --delimiter ';' --null NA --columns 'date:time:%Y/%m/%d, stamp:time:%d.%m.%Y %H:%M, day:time:%b %d %Y')

# imp_type_changes BIN PREFIX: pass 1 converts each column as the type of its first value;
# when the agreed type is another, pass 2 converts (H5BATCH_IMPORT_TWO_PASSES forces it).
# Expected values by hand (times: 2024-03-02T01:00+05:00 and 2024-03-01 00:00 in Berlin).
imp_type_changes() {
    local bin=$1 p=$2 f n
    $PY - "$p" <<'EOF' || return 1
import sys
p = sys.argv[1]
rows = ["a,b,c,d,e,f,g,h"]
for i in range(40):
    rows.append(",".join(["2.5" if i == 39 else "-0" if i == 20 else str(i), "" if i == 30 else str(i),
                          "" if i < 25 else str(i), "", "x" if i == 35 else str(i), '"q"""' if i == 7 else "s%d" % i,
                          "2024-03-02T01:00:00+05:00" if i == 33 else "2024-03-%02d 0%d:00:00" % (1 + i % 28, i % 10),
                          "" if i < 12 else "%d.25" % i]))
open(p + "-tc.csv", "w").write("\n".join(rows) + "\n")
open(p + "-tcs.csv", "w").write("\n".join(",".join(r.split(",")[k] for k in (1, 2, 3, 5, 6, 7)) for r in rows) + "\n")
EOF
    for f in tc tcs; do
        for n in 1 3; do
            mpi $n 1 "$bin" import $p-$f.csv -o $p-$f-$n.h5 --timezone Europe/Berlin --force -v 2>$p-$f-$n.err &&
                H5BATCH_IMPORT_TWO_PASSES=1 mpi $n 1 "$bin" import $p-$f.csv -o $p-$f-two.h5 --timezone Europe/Berlin --force -q &&
                h5diff --exclude-path /provenance $p-$f-two.h5 $p-$f-$n.h5 || return 1
        done
    done
    grep -q 'pass 2 (convert) not needed' $p-tcs-3.err && ! grep -q 'not needed' $p-tc-1.err || return 1
    $PY - "$p" <<'EOF'
import sys, h5py, numpy as np
t = h5py.File(sys.argv[1] + "-tc-3.h5")["table"]
assert [t[k].dtype.str for k in "abcdefgh"] == ["<f8"] * 4 + ["|S2", "|S3", "<i8", "<f8"], [t[k].dtype.str for k in t]
a, b, c, d, h = (t[k][:] for k in "abcdh")
assert a[20] == 0 and np.signbit(a[20]) and a[39] == 2.5 and a[19] == 19
assert np.isnan(b[30]) and b[31] == 31 and np.isnan(c[:25]).all() and c[25] == 25 and np.isnan(d).all()
assert np.isnan(h[:12]).all() and h[12] == 12.25 and t["e"][35] == b"x" and t["f"][7] == b'q"' and t["f"][8] == b"s8"
assert t["g"][33] == 1709323200 and t["g"][0] == 1709247600
u = h5py.File(sys.argv[1] + "-tcs-3.h5")["table"]
assert all(np.array_equal(u[k][:], t[k][:], equal_nan=k not in "fg") for k in "bcdfgh")
EOF
}

# imp_threads BIN PREFIX: pass 1 on threads, each file's range cut into blocks at record
# starts (H5BATCH_IMPORT_BLOCK=8: blocks of 8 bytes and more, so the tiny inputs are
# cut): the table of each input equals the one-thread table (h5diff) at 1 and 2 ranks,
# and a malformed input fails with the message the one-thread import gives (the first
# malformed record of the file, also when later blocks hold others).
imp_threads() (
    bin=$1 p=$2
    export H5BATCH_IMPORT_BLOCK=8
    for n in 1 2; do
        mpi $n 1 "$bin" import $IMP_MIXED -o $p-thr-mixed.h5 --threads 5 --force -v 2>$p-thr.err &&
            grep -q 'convert; 5 blocks' $p-thr.err && h5diff --exclude-path /provenance $p-mixed-1.h5 $p-thr-mixed.h5 &&
            mpi $n 1 "$bin" import imp-q.csv -o $p-thr-q.h5 --threads 3 --force -q &&
            h5diff --exclude-path /provenance $p-q-1.h5 $p-thr-q.h5 &&
            mpi $n 1 "$bin" import "${IMP_FMT[@]}" -o $p-thr-fmt.h5 --threads 4 --force -q &&
            h5diff --exclude-path /provenance $p-fmt-1.h5 $p-thr-fmt.h5 &&
            mpi $n 1 "$bin" import imp-skip.csv --on-error skip -o $p-thr-skip.h5 --threads 3 --force 2>$p-thr-skip.err &&
            h5diff --exclude-path /provenance $p-skip-1.h5 $p-thr-skip.h5 &&
            grep -q 'skipped 4 malformed records.*imp-skip.csv:3: the record has 2 fields' $p-thr-skip.err || return 1
        for name in tc tcs; do
            mpi $n 1 "$bin" import $p-$name.csv -o $p-thr-$name.h5 --timezone Europe/Berlin --threads 6 --force -v \
                2>$p-thr-$name.err && h5diff --exclude-path /provenance $p-$name-1.h5 $p-thr-$name.h5 || return 1
        done
        grep -q 'convert; 6 blocks.*pass 2 (convert) not needed' $p-thr-tcs.err || return 1 # the blocks joined
        for name in imp-skip imp-ragged imp-open; do
            [ -s $p-thr-$name.err ] || H5BATCH_IMPORT_BLOCK= mpi 1 1 "$bin" import $name.csv -o $p-thr-bad.h5 2>$p-thr-$name.err
            mpi $n 1 "$bin" import $name.csv -o $p-thr-bad.h5 --threads 4 2>$p-thr-bad4.err
            [ $? = 65 ] && grep -q "error: $name.csv:" $p-thr-$name.err && [ ! -e $p-thr-bad.h5 ] &&
                [ "$(grep 'error:' $p-thr-$name.err)" = "$(grep 'error:' $p-thr-bad4.err)" ] || return 1
        done
    done
)

# Types, quoting, line breaks in quotes, BOM, CRLF, empty fields, gzip (also without the
# suffix), several files, times across both DST changes of Europe/Berlin, declared
# layouts, --on-error skip: the same table at several rank counts, then every table
# against pandas (one Python run for all).
suite_import_reference() {
    local bin=$1 tag=$2 p="imp-$2" r1="1 2 4" r2="1 3"
    [ "$tag" = asan ] && r1="1 2"
    check "import ($tag): BOM, CRLF, quotes, gzip, 3 files, DST times: the same table at ${r1// /, } ranks" \
        bash -c "imp_ranks '$bin' $p-mixed '$r1' $IMP_MIXED"
    local refs="mixed $p-mixed-1.h5 imp-a.csv imp-b.csv.gz imp-c.dat"
    [ "$tag" = asan ] && check "import ($tag): pass 1 on 5 threads, 8-byte blocks: the same table as one thread" \
        bash -c "H5BATCH_IMPORT_BLOCK=8 mpi 1 1 '$bin' import $IMP_MIXED -o $p-thr.h5 --threads 5 --force -q &&
                 h5diff --exclude-path /provenance $p-mixed-1.h5 $p-thr.h5"
    if [ "$tag" != asan ]; then
        check "import ($tag): records whose quoted fields span lines: the same table at ${r2// /, } ranks" \
            bash -c "imp_ranks '$bin' $p-q '$r2' imp-q.csv"
        refs="$refs -- quotes $p-q-1.h5 imp-q.csv"
        check "import ($tag): declared times (%Y/%m/%d, %d.%m.%Y %H:%M, %b %d %Y), --null NA, ';': the same at 1 and 3 ranks" \
            bash -c 'imp_ranks "$@"' _ "$bin" $p-fmt "1 3" "${IMP_FMT[@]}"
        check "import ($tag): --on-error skip says once how many and the first, the same at 1 and 2 ranks" \
            bash -c "imp_ranks '$bin' $p-skip '1 2' imp-skip.csv --on-error skip 2>$p-skip.err &&
                     [ \$(grep -c 'skipped 4 malformed records.*imp-skip.csv:3: the record has 2 fields' $p-skip.err) = 2 ]"
        refs="$refs -- fmt $p-fmt-1.h5 imp-fmt.csv -- skip $p-skip-1.h5 imp-skip.csv"
        check "import ($tag): 300k rows over 3 chunks of 131,072, split between 1 and 3 ranks: the rows in order" bash -c "
            { echo n,half; seq 0 299999 | awk '{ printf \"%d,%.1f\\n\", \$1, \$1 / 2 }'; } >$p-long.csv &&
            imp_ranks '$bin' $p-long '1 3' $p-long.csv && $PY -c \"
import h5py, numpy as np
t = h5py.File('$p-long-3.h5')['table']
assert np.array_equal(t['n'][:], np.arange(300000)) and np.array_equal(t['half'][:], np.arange(300000) / 2)
assert t['n'].chunks == (131072,)
\""
        check "import ($tag): --compression none and gzip:9 with --threads 2: the same table as gzip:1 (h5diff), the filters h5py sees" bash -c "
            mpi 1 2 '$bin' import $p-long.csv -o $p-none.h5 --compression none --force -q &&
            mpi 1 1 '$bin' import $p-long.csv -o $p-gz9.h5 --compression gzip:9 --threads 2 --force -q &&
            h5diff --exclude-path /provenance $p-long-1.h5 $p-none.h5 && h5diff --exclude-path /provenance $p-long-1.h5 $p-gz9.h5 &&
            $PY -c \"
import h5py
for f, comp, opts, shuf in (('$p-long-1.h5', 'gzip', 1, True), ('$p-none.h5', None, None, False), ('$p-gz9.h5', 'gzip', 9, True)):
    d = h5py.File(f)['table/half']
    assert (d.compression, d.compression_opts, d.shuffle, d.chunks) == (comp, opts, shuf, (131072,)), (f, d.compression, d.compression_opts, d.shuffle)
\""
        check "import ($tag): full-precision reals (noisy low byte planes, stored rather than deflated): every chunk a zlib stream that Python's zlib inflates to the shuffled values; the table equals numpy's parse at 1 and 2 ranks" bash -c "
            $PY -c \"
import numpy as np
r = np.random.default_rng(5)
np.savetxt('$p-noise.csv', np.column_stack([r.normal(20, 5, 150000), np.arange(150000)]), fmt=['%.17g', '%d'],
           delimiter=',', header='x,n', comments='')
\" && imp_ranks '$bin' $p-noise '1 2' $p-noise.csv && $PY -c \"
import h5py, numpy as np, zlib
want = np.loadtxt('$p-noise.csv', delimiter=',', skiprows=1)
d = h5py.File('$p-noise-2.h5')['table/x']
assert np.array_equal(d[:], want[:, 0]) and np.array_equal(h5py.File('$p-noise-2.h5')['table/n'][:], want[:, 1])
for k, at in enumerate(range(0, d.shape[0], d.chunks[0])):
    mask, raw = d.id.read_direct_chunk((at,))
    assert mask == 0, mask
    z = np.frombuffer(zlib.decompress(raw), np.uint8).reshape(8, -1).T.copy().view('<f8').ravel()
    assert np.array_equal(z[: min(d.chunks[0], d.shape[0] - at)], want[at : at + d.chunks[0], 0]), k
assert d.id.get_storage_size() < 0.9 * 8 * d.shape[0], d.id.get_storage_size()
\""
        check "import ($tag): columns whose type changes part-way (ints then -0 and a real, ints then a missing value or a string, missing first, all missing, an offset among local times): one pass and two passes (H5BATCH_IMPORT_TWO_PASSES) give the same table at 1 and 3 ranks, the values by hand" \
            imp_type_changes "$bin" "$p"
        check "import ($tag): pass 1 on 3-6 threads, every file cut into blocks: the same tables as on one thread at 1 and 2 ranks (mixed, quotes, formats, skip, type changes), the same first error" \
            imp_threads "$bin" "$p"
    fi
    check "import ($tag): every value, type and time (DST gaps forward, repeats first) equals pandas read_csv" \
        $PY "$ROOT/tests/import/import_ref.py" $refs
}

# --append: two imports give the table one import of both gives; a failed append leaves the file as it was.
suite_import_append() {
    local bin=$1 tag=$2 p="imp-$2-app"
    check "import ($tag): imp-a.csv, then --append of the gzip files at 2 ranks, equals one import of all three" \
        bash -c "rm -f $p.h5 && mpi 1 1 '$bin' import imp-a.csv -o $p.h5 --timezone Europe/Berlin -q &&
                 mpi 2 1 '$bin' import imp-b.csv.gz imp-c.dat -o $p.h5 --append --timezone Europe/Berlin -q &&
                 mpi 1 1 '$bin' import $IMP_MIXED -o $p-all.h5 --force -q && h5diff --exclude-path /provenance $p-all.h5 $p.h5 &&
                 cp $p.h5 $p.keep && ! mpi 1 1 '$bin' import imp-ragged.csv -o $p.h5 --append -q 2>/dev/null &&
                 ! mpi 1 1 '$bin' import imp-otherhdr.csv -o $p.h5 --append -q 2>/dev/null && cmp $p.h5 $p.keep && [ ! -e $p.h5.tmp ] && ! compgen -G '$p.h5.*.tmp' && [ ! -e $p.h5.lock ]"
    # a string column widened by an append keeps its place, so the next append of the same
    # header still matches, and pandas reads the three rows in order
    printf 'id,name,val\n1,ab,1.5\n' >$p-w1.csv
    printf 'id,name,val\n2,a much longer name,2.5\n' >$p-w2.csv
    printf 'id,name,val\n3,c,3.5\n' >$p-w3.csv
    check "import ($tag): an append that widens a string column keeps the columns' order; the next append matches" \
        bash -c "rm -f $p-w.h5 && mpi 1 1 '$bin' import $p-w1.csv -o $p-w.h5 -q &&
                 mpi 2 1 '$bin' import $p-w2.csv -o $p-w.h5 --append -q && mpi 1 1 '$bin' import $p-w3.csv -o $p-w.h5 --append -q &&
                 $PY -c \"
import h5py
g = h5py.File('$p-w.h5')['table']
assert list(g) == ['id', 'name', 'val'], list(g)
assert [x.decode() for x in g['name'][...]] == ['ab', 'a much longer name', 'c']
assert list(g['id'][...]) == [1, 2, 3] and list(g['val'][...]) == [1.5, 2.5, 3.5]
\""
    # --null given twice: both texts are missing values (pandas' na_values list)
    printf 'a,b,c\n1,NA,x\n2,,null\nNA,3.5,\n4,null,y\n' >$p-na.csv
    check "import ($tag): --null NA --null null: both are missing, as pandas' na_values=['NA', 'null'] reads them" \
        bash -c "mpi 1 1 '$bin' import $p-na.csv -o $p-na.h5 --null NA --null null --force -q && $PY -c \"
import h5py, numpy as np, pandas as pd
g = h5py.File('$p-na.h5')['table']
d = pd.read_csv('$p-na.csv', na_values=['NA', 'null'])
for k in 'ab':
    assert g[k].dtype == np.float64 and np.array_equal(g[k][...], d[k].to_numpy(dtype=float), equal_nan=True), k
assert [x.decode() for x in g['c'][...]] == ['x', '', '', 'y']
\""
}

# Malformed CSV and bad options: the exit code, one line naming file, line and field,
# nothing left behind, an existing output unchanged.
suite_import_bad() {
    local bin=$1 tag=$2 p="imp-$2-bad"
    expect_fail "import ($tag): a ragged record is 65 naming file and line" 65 \
        "error: imp-ragged.csv:5: the record has 3 fields, the header 6" $p-1.h5 mpi 1 1 "$bin" import imp-ragged.csv -o $p-1.h5
    printf '..,b\n1,2\n' >$p-dots.csv # a dataset literally named '..' (HDF5 has no parent links)
    expect_fail "import ($tag): a header name '..' is 65" 65 "line 1: column 1: '..' cannot name an HDF5 dataset" $p-3.h5 \
        "$bin" import $p-dots.csv -o $p-3.h5
    # a unit's slash in a header: stored with '_', declared by the header's own name
    printf 'time,Speed [km/h],Temp\n2024-01-01T00:00:00,50.5,3\n2024-01-01T01:00:00,40,4\n' >$p-slash.csv
    check "import ($tag): 'Speed [km/h]' is stored as 'Speed [km_h]' with a warning, declared by its header name" \
        bash -c "$(declare -f mpi); LIMIT=$LIMIT; mpi 2 1 '$bin' import $p-slash.csv -o $p-slash.h5 --force \
            --columns 'Speed [km/h]:float, Temp:float' 2>$p-slash.err &&
          grep -q \"column 2, 'Speed \\[km/h\\]', is stored as 'Speed \\[km_h\\]'\" $p-slash.err &&
          [ \$(grep -c warning $p-slash.err) = 1 ] && $PY -c 'import h5py, numpy as np
t = h5py.File(\"$p-slash.h5\")[\"table\"]
assert list(t) == [\"time\", \"Speed [km_h]\", \"Temp\"] and t[\"Temp\"].dtype == np.float64, list(t)
assert list(t[\"Speed [km_h]\"][...]) == [50.5, 40.0]'"
    printf 'a/b,a_b\n1,2\n' >$p-slash2.csv
    expect_fail "import ($tag): 'a/b' beside 'a_b' is 65: both would be stored as 'a_b'" 65 \
        "line 1: column name 'a_b' appears twice (columns 1 and 2)" $p-slash2.h5 "$bin" import $p-slash2.csv -o $p-slash2.h5
    ln -f imp-ragged.csv $p-hard.csv
    expect_fail "import ($tag): one file given twice (here once by a hard link) is 64: its rows would be read twice" 64 \
        "import: $p-hard.csv is given twice (also as imp-ragged.csv)" $p-2.h5 "$bin" import imp-ragged.csv $p-hard.csv -o $p-2.h5
    local n=3
    [ "$tag" = asan ] && n=1
    expect_fail "import ($tag): a bad date at $n rank(s) is 65 naming file, line and field, once" 65 \
        "error: imp-baddate.csv:3: field 'date' (column 2): '2020/13/01' is not a time" $p-2.h5 \
        mpi $n 1 "$bin" import imp-baddate.csv --columns 'date:time:%Y/%m/%d' -o $p-2.h5
    # what users bring instead of CSV or HDF5 is named, for import and for run's input
    printf 'PAR1\x15\x04\x15\x10\x15\x14L\x15\x04PAR1' >$p-pq.parquet
    printf '[job]\nname = pq\nrun_dir = %s.run\n[step s]\nkernel = aggregate\ninput = %s\noutput = %s-pq-out.h5\nby = a\nvalues = b\nstats = count\n' \
        $p $p-pq.parquet $p >$p-pq.ini
    sed "s|$p-pq.parquet|imp-a.csv|" $p-pq.ini >$p-csvin.ini
    expect_fail "import ($tag): a Parquet file is 65 saying so (not a NUL-byte complaint) and how to convert it" 65 \
        "error: $p-pq.parquet: is a Parquet file, not CSV text: pandas' pd.read_parquet" $p-pq.h5 \
        mpi 1 1 "$bin" import $p-pq.parquet -o $p-pq.h5
    expect_fail "import ($tag): a Parquet file as a step's input is 66 saying so and how to convert it" 66 \
        "error: $p-pq.parquet: not an HDF5 file but a Parquet file; pandas converts it" $p-pq-out.h5 \
        mpi 2 1 "$bin" run $p-pq.ini
    expect_fail "import ($tag): a CSV file as a step's input is 66 pointing to h5batch import" 66 \
        "error: imp-a.csv: not an HDF5 file but text; if it is CSV, 'h5batch import imp-a.csv -o TABLE.h5'" $p-pq-out.h5 \
        mpi 1 1 "$bin" run $p-csvin.ini
    # cut after its last record (the trailer missing): zlib gives every row, and only its
    # error state tells the stream is not whole
    gzip -c imp-a.csv >$p-whole.gz && head -c $(($(stat -c %s $p-whole.gz) - 8)) $p-whole.gz >$p-cut.csv.gz
    expect_fail "import ($tag): a gzip file cut short (no trailer) at $n rank(s) is 65, not a table of the rows read" 65 \
        "error: $p-cut.csv.gz: bad gzip data: unexpected end of file" $p-cut.h5 \
        mpi $n 1 "$bin" import imp-a.csv $p-cut.csv.gz -o $p-cut.h5
    # text that is not UTF-8 (the output's strings are UTF-8) or holds NUL bytes: 65 naming
    # the line and the field, or with --on-error skip left out, the same table at any rank
    # count and in two passes; a header of such names, a UTF-16 file
    printf 'id,city\n1,Bern\n2,Z\xfcrich\n3,Genève\n4,"a\0b"\n5,日本\n' >$p-latin1.csv
    expect_fail "import ($tag): a Latin-1 byte in a field at $n rank(s) is 65 naming line and field, once" 65 \
        "error: $p-latin1.csv:3: field 'city' (column 2) is not UTF-8 (byte 2 is 0xfc): convert the file to UTF-8" \
        $p-l1.h5 mpi $n 1 "$bin" import $p-latin1.csv -o $p-l1.h5
    sed -i 3d $p-latin1.csv
    expect_fail "import ($tag): a NUL byte in a quoted field is 65 naming line and field" 65 \
        "error: $p-latin1.csv:4: field 'city' (column 2) holds a NUL byte (byte 2)" $p-l2.h5 \
        mpi 1 1 "$bin" import $p-latin1.csv --columns city:string -o $p-l2.h5
    printf 'id,city\n1,Bern\n2,Z\xfcrich\n3,Genève\n4,"a\0b"\n5,日本\n' >$p-latin1.csv
    check "import ($tag): with --on-error skip such records are left out and counted, at 1 and 2 ranks and in two passes" \
        bash -c "mpi 1 1 '$bin' import $p-latin1.csv -o $p-l3.h5 --on-error skip -q 2>$p-l3.err &&
                 grep -q 'skipped 2 malformed records .*the first: $p-latin1.csv:3: field .city. (column 2) is not UTF-8' $p-l3.err &&
                 mpi 2 1 '$bin' import $p-latin1.csv -o $p-l4.h5 --on-error skip -q 2>/dev/null &&
                 H5BATCH_IMPORT_TWO_PASSES=1 mpi 1 1 '$bin' import $p-latin1.csv -o $p-l5.h5 --on-error skip -q 2>/dev/null &&
                 h5diff --exclude-path /provenance $p-l3.h5 $p-l4.h5 && h5diff --exclude-path /provenance $p-l3.h5 $p-l5.h5 &&
                 $PY -c 'import h5py; t = h5py.File(\"$p-l3.h5\")[\"table\"]
assert list(t[\"id\"][:]) == [1, 3, 5] and t.attrs[\"rows_skipped\"] == 2, (t[\"id\"][:], dict(t.attrs))
assert [s.decode() for s in t[\"city\"][:]] == [\"Bern\", \"Genève\", \"日本\"], t[\"city\"][:]'"
    printf 'a\0x,b\n1,2\n' >$p-hnul.csv
    expect_fail "import ($tag): a NUL byte in the header is 65 (it would split the names)" 65 \
        "error: $p-hnul.csv: line 1: column 1 of the header holds a NUL byte" $p-hn.h5 \
        mpi 1 1 "$bin" import $p-hnul.csv -o $p-hn.h5
    printf 'id,Gr\xf6\xdfe\n1,2\n' >$p-h8.csv
    expect_fail "import ($tag): a header name that is not UTF-8 is 65" 65 \
        "error: $p-h8.csv: line 1: column 2 of the header is not UTF-8 (byte 3 is 0xf6)" $p-h8.h5 \
        mpi 1 1 "$bin" import $p-h8.csv -o $p-h8.h5
    printf 'a,b\r1,2\r3,4\r' >$p-cr.csv
    expect_fail "import ($tag): lines ending in CR alone are 65 saying so (they were one header line, 0 rows)" 65 \
        "error: $p-cr.csv: line 1: column 2 of the header holds a carriage return: lines that end with CR alone" \
        $p-cr.h5 mpi 1 1 "$bin" import $p-cr.csv -o $p-cr.h5
    printf 'a,b\n1,x\n' | iconv -f UTF-8 -t UTF-16 >$p-u16.csv
    expect_fail "import ($tag): a UTF-16 file is 65 saying so" 65 \
        "error: $p-u16.csv: starts with a UTF-16 byte order mark: import reads UTF-8" $p-u16.h5 \
        mpi 1 1 "$bin" import $p-u16.csv -o $p-u16.h5
    [ "$tag" = asan ] && return 0
    # one field of 20 MB makes its column 20 MB a row (fixed-length strings): 65 naming
    # the column before anything is allocated, where it aborted (out of memory), leaving OUT.lock
    $PY -c "import sys
with open(sys.argv[1], 'w') as f:
    f.write('k,s\\n' + ''.join(f'{i},ab\\n' for i in range(200000)) + '1,' + 'x' * (20 << 20) + '\\n')" $p-wide.csv
    for n in 1 2; do
        expect_fail "import ($tag): one 20 MB field in 200001 rows at $n rank(s) is 65 naming the column" 65 \
            "error: import: column 's' would take [0-9.]* GB.*as wide as the longest (20971520 bytes)" $p-wide.h5 \
            mpi $n 1 "$bin" import $p-wide.csv -o $p-wide.h5
    done
    expect_fail "import ($tag): a string in a declared int column is 65 naming line and field" 65 \
        "error: imp-badint.csv:4: field 'meter' (column 1): 'x9' is not an integer" $p-3.h5 \
        mpi 1 1 "$bin" import imp-badint.csv --columns meter:int -o $p-3.h5
    expect_fail "import ($tag): a quoted field never closed is 65 naming the line it opens" 65 \
        "error: imp-open.csv:3: a quoted field is not closed" $p-4.h5 mpi 1 1 "$bin" import imp-open.csv -o $p-4.h5
    expect_fail "import ($tag): files with different headers are 65" 65 "imp-otherhdr.csv: the header (line 1) differs" \
        $p-5.h5 mpi 1 1 "$bin" import imp-a.csv imp-otherhdr.csv -o $p-5.h5
    expect_fail "import ($tag): a missing input is 66" 66 "error: nope.csv: no such file" $p-6.h5 \
        mpi 1 1 "$bin" import imp-a.csv nope.csv -o $p-6.h5
    expect_fail "import ($tag): an unknown --columns type is 64" 64 "unknown type 'number' for 'id'" $p-7.h5 \
        mpi 1 1 "$bin" import imp-a.csv --columns id:number -o $p-7.h5
    expect_fail "import ($tag): an unknown --compression is 64" 64 "--compression: 'gzip:12' is not none, gzip or gzip:LEVEL" \
        $p-c.h5 mpi 1 1 "$bin" import imp-a.csv --compression gzip:12 -o $p-c.h5
    expect_fail "import ($tag): a format ending in a lone % is 64 saying so" 64 \
        "format '%Y-%m-%d%' of 'date' ends in a lone % (%% is a percent sign)" $p-pc.h5 \
        mpi 1 1 "$bin" import imp-baddate.csv --columns 'date:time:%Y-%m-%d%' -o $p-pc.h5
    expect_fail "import ($tag): --table with a '..' part is 64 (HDF5 would make a group named '..')" 64 \
        "--table: '/a/../b' is not a group name" $p-dd.h5 mpi 1 1 "$bin" import imp-a.csv --table /a/../b -o $p-dd.h5
    expect_fail "import ($tag): --table in /provenance is 64 (comparisons and export leave it out)" 64 \
        "--table: '//provenance/t' is in /provenance" $p-pv.h5 mpi 1 1 "$bin" import imp-a.csv --table //provenance/t -o $p-pv.h5
    expect_fail "import ($tag): an unknown zone is 64" 64 "unknown time zone 'Europe/Nowhere'" $p-8.h5 \
        mpi 1 1 "$bin" import imp-a.csv --timezone Europe/Nowhere -o $p-8.h5
    check "import ($tag): an existing output is 73 without --force, and a bad CSV with --force leaves it unchanged" \
        bash -c "mpi 1 1 '$bin' import imp-a.csv -o $p-9.h5 --force -q && cp $p-9.h5 $p-9.keep &&
                 { mpi 1 1 '$bin' import imp-a.csv -o $p-9.h5 -q 2>$p-9.err; [ \$? = 73 ]; } && grep -q 'file exists' $p-9.err &&
                 { mpi 1 1 '$bin' import imp-ragged.csv -o $p-9.h5 --force -q 2>/dev/null; [ \$? = 65 ]; } &&
                 cmp $p-9.h5 $p-9.keep && [ ! -e $p-9.h5.tmp ] && ! compgen -G '$p-9.h5.*.tmp' && [ ! -e $p-9.h5.lock ]"
}

# The output's safe path (docs/import.md, "Files"): a link at OUT is never followed nor
# replaced, one at the name the temporary had before (OUT.tmp) is left alone, the input is
# never the output, a FIFO input is 66 at once, an output another process claims is 73.
suite_import_files() {
    local bin=$1 tag=$2 p="imp-$2-files"
    rm -rf $p.d && mkdir $p.d
    check "import ($tag): a symbolic link at OUT is 73 even with --force; neither it nor its target touched" \
        bash -c "echo keep >$p.d/target && ln -s target $p.d/out.h5 &&
                 { mpi 1 1 '$bin' import imp-a.csv -o $p.d/out.h5 --force -q 2>$p.err; [ \$? = 73 ]; } &&
                 grep -q 'out.h5: output exists and is a symbolic link' $p.err && [ -L $p.d/out.h5 ] &&
                 [ \$(cat $p.d/target) = keep ] && [ \$(ls $p.d | wc -l) = 2 ]"
    check "import ($tag): a link planted at OUT.tmp (and OUT.lock absent) is neither followed nor removed; OUT is written" \
        bash -c "ln -s victim $p.d/t.h5.tmp && mpi 1 1 '$bin' import imp-a.csv -o $p.d/t.h5 -q &&
                 [ -L $p.d/t.h5.tmp ] && [ ! -e $p.d/victim ] && [ -f $p.d/t.h5 ] && [ ! -L $p.d/t.h5 ] &&
                 [ ! -e $p.d/t.h5.lock ] && ! compgen -G '$p.d/t.h5.*.tmp' && h5ls $p.d/t.h5/table >/dev/null"
    check "import ($tag): the output is one of the inputs: 73 with --force and with --append, the input unchanged" \
        bash -c "cp imp-a.csv $p.d/in.csv && cp imp-a.csv $p.d/in.keep &&
                 { mpi 1 1 '$bin' import imp-a.csv $p.d/in.csv -o $p.d/in.csv --force -q 2>$p.err; [ \$? = 73 ]; } &&
                 grep -q 'in.csv: output is the input $p.d/in.csv' $p.err &&
                 { mpi 1 1 '$bin' import $p.d/in.csv -o $p.d/in.csv --append -q 2>/dev/null; [ \$? = 73 ]; } &&
                 cmp $p.d/in.csv $p.d/in.keep && ! compgen -G '$p.d/in.csv.*' && [ ! -e $p.d/in.csv.lock ]"
    rm -f $p.fifo && mkfifo $p.fifo
    expect_fail "import ($tag): a FIFO input is 66 at once, never opened (no writer needed)" 66 \
        "error: $p.fifo: is a FIFO, not a regular file" $p-fifo.h5 timeout 10 "$bin" import imp-a.csv $p.fifo -o $p-fifo.h5
    check "import ($tag): an output whose OUT.lock another process holds is 73 naming it; nothing written" \
        bash -c "{ flock $p.d/busy.h5.lock timeout 10 '$bin' import imp-a.csv -o $p.d/busy.h5 -q 2>$p.err; [ \$? = 73 ]; } &&
                 grep -q 'output $p.d/busy.h5 is in use by another run' $p.err && [ ! -e $p.d/busy.h5 ] &&
                 ! compgen -G '$p.d/busy.h5.*.tmp'"
}

# The worked example: data/water-meters.csv imported, then jobs/water-import.ini at 2 ranks.
suite_import_water() {
    local bin=$1 tag=$2 p="imp-$2-water"
    check "import ($tag): data/water-meters.csv equals pandas; jobs/water-import.ini on it at 2 ranks (meter and string district keys) equals pandas groupby" \
        bash -c "mpi 1 1 '$bin' import '$ROOT/data/water-meters.csv' -o $p.h5 --timezone Europe/Berlin --force -q &&
                 mpi 2 1 '$bin' run '$ROOT/jobs/water-import.ini' --set monthly.input=$p.h5 --set monthly.output=$p-monthly.h5 \
                     --set districts.input=$p.h5 --set districts.output=$p-districts.h5 --set job.run_dir=$p.run -q &&
                 $PY '$ROOT/tests/import/import_ref.py' water $p.h5 '$ROOT/data/water-meters.csv' -- \
                     monthly $p-monthly.h5 '$ROOT/data/water-meters.csv'"
}

# The suite (tests/run_tests.sh calls it once per pass with BIN TAG); nothing under valgrind
# (the ASan pass covers the same code).
# Missing times and short records: an empty time (inferred or declared, naive or with
# an offset around it) is stored as the least int64, pandas' NaT, which the kernels
# count as a missing time and export writes empty; --null-padding reads a record with
# fewer fields than the header as if the rest were empty (pandas' read_csv does that
# by default). Expected values from pandas read_csv and tz_localize; the same table at
# 1-3 ranks, on 4 threads in blocks, and in two passes.
imp_missing() (
    bin=$1 p=$2
    $PY - "$p" <<'PYEOF' || exit 1
import random, sys
p, r = sys.argv[1], random.Random(11)
rows = ["id,when,at,v,label"]
for i in range(3000):
    d = 1 + i % 28
    when = "" if i < 3 or r.random() < 0.1 else "2024-%02d-%02d %02d:%02d:00" % (3 if i % 2 else 10, d, i % 24, i % 60)
    if i == 700: when = "2024-03-31T01:30:00+01:00"
    at = "" if r.random() < 0.1 else "%02d.%02d.2023 %02d:%02d" % (d, 1 + i % 12, i % 24, (7 * i) % 60)
    f = [str(i), when, at, "%.2f" % (i / 7), "l%d" % (i % 5)]
    cut = 5 if i in (0, 1) or r.random() > 0.05 else r.choice([2, 3, 4])  # short records
    rows.append(",".join(f[:cut]))
open(p + "-miss.csv", "w").write("\n".join(rows) + "\n")
PYEOF
    args=($p-miss.csv --null-padding --timezone Europe/Berlin --columns 'at:time:%d.%m.%Y %H:%M')
    imp_ranks "$bin" $p-miss "1 2 3" "${args[@]}" || exit 1
    H5BATCH_IMPORT_BLOCK=8 mpi 2 1 "$bin" import "${args[@]}" -o $p-miss-thr.h5 --threads 4 --force -q &&
        H5BATCH_IMPORT_TWO_PASSES=1 mpi 1 1 "$bin" import "${args[@]}" -o $p-miss-two.h5 --force -q &&
        h5diff --exclude-path /provenance $p-miss-1.h5 $p-miss-thr.h5 &&
        h5diff --exclude-path /provenance $p-miss-1.h5 $p-miss-two.h5 || exit 1
    "$bin" export $p-miss-1.h5 -o $p-miss.out.csv -q || exit 1
    $PY - "$p" <<'PYEOF'
import sys, h5py, numpy as np, pandas as pd
p = sys.argv[1]
df = pd.read_csv(p + "-miss.csv", keep_default_na=False, na_values=[""], dtype={"when": str, "at": str, "label": str})
def local(s, fmt=None):
    out = np.full(len(s), np.iinfo(np.int64).min, np.int64)
    for i, t in enumerate(s):
        if isinstance(t, float): continue  # NaN: missing
        t = pd.Timestamp(pd.to_datetime(t, format=fmt)) if fmt else pd.Timestamp(t)
        if t.tzinfo is None:
            t = pd.Series([t]).dt.tz_localize("Europe/Berlin", ambiguous=np.array([True]), nonexistent="shift_forward")[0]
        out[i] = t.value // 10**9
    return out
t = h5py.File(p + "-miss-1.h5")["table"]
assert list(t) == ["id", "when", "at", "v", "label"], list(t)  # h5py lists the columns in the CSV's order
assert t["when"].dtype == np.int64 and t["at"].dtype == np.int64, (t["when"].dtype, t["at"].dtype)
w, a = local(df["when"]), local(df["at"], "%d.%m.%Y %H:%M")
assert (w == np.iinfo(np.int64).min).sum() > 300 and (a == np.iinfo(np.int64).min).sum() > 300
assert np.array_equal(t["when"][:], w) and np.array_equal(t["at"][:], a)
assert np.array_equal(t["v"][:].view(np.int64), df["v"].to_numpy(np.float64).view(np.int64))
assert [x.decode() for x in t["label"][:]] == [x if isinstance(x, str) else "" for x in df["label"]]
assert pd.to_datetime(t["when"][:3], unit="s").isna().all()  # pandas reads the stored NaT as NaT
e = pd.read_csv(p + "-miss.out.csv", keep_default_na=False, dtype=str)
assert list(e.columns) == ["id", "when", "at", "v", "label"], list(e.columns)  # the CSV's order
assert ((e["when"] == "") == (w == np.iinfo(np.int64).min)).all() and ((e["at"] == "") == (a == np.iinfo(np.int64).min)).all()
ok = w != np.iinfo(np.int64).min
assert (pd.to_datetime(e["when"][ok]).map(lambda x: x.value // 10**9).to_numpy() == w[ok]).all()
PYEOF
)
export -f imp_missing

# --decimal ',' (with --delimiter ';', as German or French exports are written): pandas'
# read_csv(sep=";", decimal=",") is the reference, inferred and declared, at 1 and 2 ranks
# and in blocks on 3 threads; a field with a '.' is then text, as in pandas.
imp_decimal() (
    bin=$1 p=$2
    $PY - "$p" <<'PYEOF' || exit 1
import random, sys
p, r = sys.argv[1], random.Random(3)
rows = ["Datum;Zähler;Verbrauch;Stand;Notiz"]
for i in range(2000):
    v = "" if r.random() < 0.05 else ("%.3f" % (r.uniform(-5, 50))).replace(".", ",")
    s = ("%de%d" % (r.randint(1, 9), r.randint(-3, 3))) if i % 7 == 0 else ("%.2f" % (i * 1.5)).replace(".", ",")
    rows.append(";".join(["%02d.%02d.2024" % (1 + i % 28, 1 + i % 12), str(100 + i % 9), v, s, "1.5" if i % 3 else "a,b"]))
open(p + "-dec.csv", "w").write("\n".join(rows) + "\n")
PYEOF
    args=($p-dec.csv --delimiter ';' --decimal , --columns 'Datum:time:%d.%m.%Y, Stand:float')
    imp_ranks "$bin" $p-dec "1 2" "${args[@]}" &&
        H5BATCH_IMPORT_BLOCK=8 mpi 2 1 "$bin" import "${args[@]}" -o $p-dec-thr.h5 --threads 3 --force -q &&
        h5diff --exclude-path /provenance $p-dec-1.h5 $p-dec-thr.h5 || exit 1
    $PY - "$p" <<'PYEOF'
import sys, h5py, numpy as np, pandas as pd
p = sys.argv[1]
df = pd.read_csv(p + "-dec.csv", sep=";", decimal=",", keep_default_na=False, na_values=[""], float_precision="round_trip")
t = h5py.File(p + "-dec-1.h5")["table"]
assert t["Verbrauch"].dtype == np.float64 and t["Stand"].dtype == np.float64 and t["Notiz"].dtype.kind == "S"
for k in ("Verbrauch", "Stand"):
    assert np.array_equal(t[k][:].view(np.int64), df[k].to_numpy(np.float64).view(np.int64)), k
assert np.array_equal(t["Zähler"][:], df["Zähler"].to_numpy()) and [x.decode() for x in t["Notiz"][:]] == list(df["Notiz"])
PYEOF
    # the dotted day-first dates inferred as times, as declared; with times of day, in a zone
    mpi 2 1 "$bin" import $p-dec.csv --delimiter ';' --decimal , --columns 'Stand:float' -o $p-dec-inf.h5 --force -q &&
        h5diff --exclude-path /provenance $p-dec-1.h5 $p-dec-inf.h5 || exit 1
    printf 'at;v\n30.03.2024 23:59;1\n31.3.2024 02:30;2\n31.03.2024 03:00:15;3\n27.10.2024 02:30;4\n1.1.2025;5\n' >$p-dmy.csv
    mpi 1 1 "$bin" import $p-dmy.csv --delimiter ';' --timezone Europe/Berlin -o $p-dmy.h5 --force -q || exit 1
    $PY - "$p" <<'PYEOF'
import sys, h5py, numpy as np, pandas as pd
p = sys.argv[1]
t = h5py.File(p + "-dmy.h5")["table"]["at"][:]
want = pd.to_datetime(["30.03.2024 23:59", "31.03.2024 02:30", "31.03.2024 03:00:15", "27.10.2024 02:30", "01.01.2025"],
                      dayfirst=True).tz_localize("Europe/Berlin", nonexistent="shift_forward", ambiguous=True)
assert list(t) == list(want.asi8 // 10**9), (list(t), list(want.asi8 // 10**9))
PYEOF
)
export -f imp_decimal

suite_import_missing() {
    local bin=$1 tag=$2 p="imp-$2-miss"
    check "import ($tag): empty times (inferred and declared, among naive and offset times) are NaT (the least int64, as pandas), short records with --null-padding are padded with missing values: pandas' values at 1-3 ranks, in blocks on 4 threads and in two passes; export writes them empty, in the CSV's column order" \
        imp_missing "$bin" "$p"
    check "import ($tag): --decimal , with --delimiter ';' (inferred and declared reals, a '.' field is text) equals pandas read_csv(sep=';', decimal=','), at 1 and 2 ranks and in blocks on 3 threads; dotted day-first dates are inferred as times (pandas dayfirst)" \
        imp_decimal "$bin" "$p"
    expect_fail "import ($tag): --decimal , with the comma as the delimiter is 64" 64 \
        "error: import: --decimal ',' needs another --delimiter" $p-dec-bad.h5 mpi 1 1 "$bin" import $p-dec.csv --decimal , -o $p-dec-bad.h5
    expect_fail "import ($tag): without --null-padding a short record is 65 naming the line and the option" 65 \
        "error: $p-miss.csv:[0-9]*: the record has .* fields, the header 5; --null-padding reads the missing last fields as empty" \
        $p-nopad.h5 mpi 2 1 "$bin" import $p-miss.csv -o $p-nopad.h5
    cat >$p.ini <<INI
[job]
name = imp-miss
run_dir = $p.run
[step s]
kernel = aggregate
input = $p-miss-1.h5
output = $p-agg.h5
time = when
timezone = Europe/Berlin
by = label, month
values = v
stats = count, sum
layout = table
INI
    check "import ($tag): aggregate by month over the imported table counts the NaT rows as rows without a key and the padded values as missing" \
        bash -c "mpi 2 1 '$bin' run $p.ini --force -q && $PY -c \"
import h5py, numpy as np
t = h5py.File('$p-miss-1.h5')['table']
g = h5py.File('$p-agg.h5')['aggregate']
nat = t['when'][:] == np.iinfo(np.int64).min
valid = ~nat & ~np.isnan(t['v'][:])
assert g.attrs['rows_missing_key'] == nat.sum() and g.attrs['rows_valid_v'] == valid.sum(), (dict(g.attrs), nat.sum())
assert int(g['v_count'][:].sum()) == valid.sum(), int(g['v_count'][:].sum())
\""
}

suite_import() {
    [ "$2" = valgrind ] && return 0
    if ! imp_inputs >"$W/log" 2>&1; then
        not_ok "import ($2): making the inputs"
        return
    fi
    suite_import_reference "$@"
    suite_import_bad "$@"
    [ "$2" = asan ] && return 0
    suite_import_missing "$@"
    suite_import_append "$@"
    suite_import_files "$@"
    suite_import_water "$@"
}
