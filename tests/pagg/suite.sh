# Partial states and merge (DESIGN.md 7) of the aggregate and episodes kernels; sourced by
# tests/run_tests.sh, whose helpers (check, expect_fail, mpi, $PY, $W, $ROOT, $LIMIT) it
# uses. The input is cut into site files by row ranges (tests/partial/split.py): uneven
# sites, a site with no rows, a site holding every row of one key, a device whose episode
# spans the cut between two sites. Each site makes its partial (`run --partial`) at 1, 2
# or 3 ranks; the partials are merged flat and hierarchically (`merge --partial`: sites ->
# regions -> centre), in several orders (both kernels are order-independent), at 1 and 3
# merge ranks. The expected output is one run over the unsplit input, which
# tests/aggregate and tests/episodes check against pandas; every merge must have its bits
# (h5diff --exclude-path /provenance). Then the refusals: options that differ (78, naming
# the part and the option), a part of another kernel (78), inputs that cannot be combined
# (65), each with one error line and nothing written. The plain pass runs everything, the
# asan pass a hierarchical aggregate merge and a flat episodes one, the valgrind pass
# nothing.

# pg_agg_job NAME INPUT PREFIX: two aggregate steps on INPUT: d (dense layout, every kind
# of accumulator: exact sums, extremes, first/last, kept values for percentiles, counts
# above a threshold; an integer, a string and a calendar key) writing PREFIX-d.h5, and t
# (table layout, string keys, percentiles) writing PREFIX-t.h5.
pg_agg_job() {
    {
        printf '[job]\nrun_dir = %s.run\nchunk_rows = 4k\n\n' "$1"
        printf '[step d]\nkernel = aggregate\ninput = %s\noutput = %s-d.h5\n' "$2" "$3"
        printf '%s\n' "columns = time:timestamp, meter:meter_id" "by = meter, district, year" "time = time" \
            "timezone = Europe/Berlin" "values = consumption, wide" "valid = consumption:0:1e6" \
            "stats = count, sum, mean, min, max, std, first, last, p50, p95, above:100"
        printf '\n[step t]\nkernel = aggregate\ninput = %s\noutput = %s-t.h5\n' "$2" "$3"
        printf '%s\n' "columns = time:timestamp" "by = district, code, month" "time = time" "timezone = Europe/Berlin" \
            "values = consumption" "valid = consumption:0:1e6" "stats = count, sum, mean, var, last, p5, p50, p99.9" \
            "layout = table"
    } >"$1.ini"
}

# pg_ep_job NAME INPUT PREFIX: two episodes steps on INPUT: i (integer ids, above with
# hysteresis, daily periods) writing PREFIX-i.h5, and s (string ids, deviation from each
# device's median: a statistic of all its readings, min_duration, weekly periods) writing
# PREFIX-s.h5.
pg_ep_job() {
    {
        printf '[job]\nrun_dir = %s.run\nchunk_rows = 150\n\n' "$1"
        printf '[step i]\nkernel = episodes\ninput = %s\noutput = %s-i.h5\n' "$2" "$3"
        printf '%s\n' "columns = device:dev" "rule = above:100" "hysteresis = 5" "max_gap = 60s" "timezone = Europe/Berlin"
        printf '\n[step s]\nkernel = episodes\ninput = %s\noutput = %s-s.h5\n' "$2" "$3"
        printf '%s\n' "device = sdev" "rule = deviation:2" "hysteresis = 1" "max_gap = 2m" "min_duration = 30s" \
            "period = week" "timezone = America/New_York"
    } >"$1.ini"
}

# The inputs, the one-run references and the sites' partials, made once for every pass.
# Aggregate: pg-edge.h5 (tests/aggregate's edge case, ~60k rows) cut into 4 uneven sites,
# one empty; and a copy ordered by district cut so that site 0 holds every row of the
# districts up to the first cut and no other. Episodes: tests/episodes' case (rows in
# random order, so every device is read at every site) cut at row 1000, inside the block
# of device 5's 40-reading episode (rows 980..1019), and at n-20, so that the last site
# holds every reading of device 9; plus an empty site.
pg_inputs() {
    [ -f pg-inputs.done ] && return 0
    local n i r
    $PY "$ROOT/tests/aggregate/make_aggregate_case.py" pg-edge.h5 --case edge &&
        $PY "$ROOT/tests/episodes/make_episodes_case.py" pg-ep.h5 >/dev/null || return 1
    $PY - <<'EOF' || return 1
import h5py, numpy as np
# pg-sorted.h5: pg-edge.h5's table in district order (stable), everything else as it is
with h5py.File('pg-edge.h5') as f, h5py.File('pg-sorted.h5', 'w') as g:
    t = f['table']
    n = t['district'].shape[0]
    dist = t['district'][:]
    order = np.array(sorted(range(n), key=lambda i: dist[i]))   # by bytes, stable
    for k in f:
        if k != 'table':
            f.copy(f[k], g, name=k)
    gt = g.create_group('table')
    for k, v in t.attrs.items():
        gt.attrs[k] = v
    for k, d in t.items():
        x = d[:][order] if d.shape and d.shape[0] == n else d[:]
        gt.create_dataset(k, data=x, dtype=d.dtype)
        for a, b in d.attrs.items():
            gt[k].attrs[a] = b
    dist = dist[order]
    first = [i for i in range(1, n) if dist[i] != dist[i - 1]]
    open('pg-sorted.cut', 'w').write(f"{first[1]}\n")   # site 0: the first two districts, whole
EOF
    n=$($PY -c "import h5py; print(h5py.File('pg-edge.h5')['table/meter_id'].shape[0])")
    $PY "$ROOT/tests/partial/split.py" pg-edge.h5 /table "0,$((n / 11)),$((n / 11)),$((n * 2 / 3))" pg-a >/dev/null &&
        $PY "$ROOT/tests/partial/split.py" pg-sorted.h5 /table "0,$(cat pg-sorted.cut)" pg-k >/dev/null || return 1
    n=$($PY -c "import h5py; print(h5py.File('pg-ep.h5')['table/dev'].shape[0])")
    $PY "$ROOT/tests/partial/split.py" pg-ep.h5 /table "0,400,1000,1000,$((n - 20))" pg-e >/dev/null || return 1
    # the one-run references, then each site's partial at 1, 2 or 3 ranks
    pg_agg_job pg-agg-ref pg-edge.h5 pg-agg-ref && mpi 1 1 "$HB" run pg-agg-ref.ini -q || return 1
    pg_ep_job pg-ep-ref pg-ep.h5 pg-ep-ref && mpi 1 2 "$HB" run pg-ep-ref.ini -q || return 1
    for i in 0 1 2 3; do
        r=$((i % 3 + 1))
        pg_agg_job "pg-a-$i" "pg-a-$i.h5" "pg-a-$i.part" && mpi $r $((i == 2 ? 2 : 1)) "$HB" run "pg-a-$i.ini" --partial -q ||
            return 1
    done
    for i in 0 1; do
        pg_agg_job "pg-k-$i" "pg-k-$i.h5" "pg-k-$i.part" && mpi 1 1 "$HB" run "pg-k-$i.ini" --partial -q || return 1
    done
    for i in 0 1 2 3 4; do
        r=$((i == 0 ? 2 : i == 3 ? 3 : 1))
        pg_ep_job "pg-e-$i" "pg-e-$i.h5" "pg-e-$i.part" && mpi $r 2 "$HB" run "pg-e-$i.ini" --partial -q || return 1
    done
    touch pg-inputs.done
}

# pg_merge BIN RANKS OUT PARTS...: merge PARTS into OUT (a partial when OUT ends in
# .part.h5) at RANKS ranks (of PG_THREADS threads, default 1), with its own run directory.
pg_merge() {
    local bin=$1 n=$2 out=$3 extra=()
    shift 3
    [[ $out == *.part.h5 ]] && extra=(--partial)
    rm -rf "$out" "$out.run"
    mpi "$n" "${PG_THREADS:-1}" "$bin" merge "$@" -o "$out" --run-dir "$out.run" "${extra[@]}" -q
}

# pg_same REF OUT: the bits of REF, /provenance aside.
pg_same() { h5diff --exclude-path /provenance "$1" "$2"; }

export -f pg_merge pg_same

suite_pagg() {
    local bin=$1 tag=$2
    [ "$tag" = valgrind ] && return 0
    if ! pg_inputs >"$W/log" 2>&1; then
        not_ok "pagg ($tag): making the inputs, references and site partials"
        return
    fi
    local p="pg-$tag"
    if [ "$tag" = plain ]; then
        check "pagg: aggregate, 4 uneven sites (one empty) made at 1-3 ranks, merged flat: dense at 3 ranks in reverse order, table at 1 rank: the one run's bits" \
            bash -c "pg_merge '$bin' 3 $p-ad.h5 pg-a-3.part-d.h5 pg-a-2.part-d.h5 pg-a-1.part-d.h5 pg-a-0.part-d.h5 &&
                     pg_same pg-agg-ref-d.h5 $p-ad.h5 &&
                     pg_merge '$bin' 1 $p-at.h5 pg-a-0.part-t.h5 pg-a-1.part-t.h5 pg-a-2.part-t.h5 pg-a-3.part-t.h5 &&
                     pg_same pg-agg-ref-t.h5 $p-at.h5"
    fi
    check "pagg ($tag): aggregate, sites -> regions (merge --partial at 2 and 1 ranks) -> centre at 3 ranks: the one run's bits" \
        bash -c "pg_merge '$bin' 2 $p-r0.part.h5 pg-a-0.part-d.h5 pg-a-2.part-d.h5 &&
                 pg_merge '$bin' 1 $p-r1.part.h5 pg-a-3.part-d.h5 pg-a-1.part-d.h5 &&
                 pg_merge '$bin' 3 $p-c.h5 $p-r1.part.h5 $p-r0.part.h5 && pg_same pg-agg-ref-d.h5 $p-c.h5"
    check "pagg ($tag): episodes, 5 sites (one empty, one holding all of device 9, device 5's episode cut between two) merged flat, shuffled at 3 ranks: the one run's bits" \
        bash -c "pg_merge '$bin' 3 $p-ei.h5 pg-e-3.part-i.h5 pg-e-0.part-i.h5 pg-e-4.part-i.h5 pg-e-2.part-i.h5 \
                     pg-e-1.part-i.h5 && pg_same pg-ep-ref-i.h5 $p-ei.h5"
    [ "$tag" = asan ] && return 0

    check "pagg: episodes, string ids, deviation rule: flat at 1 rank in the order given, the one run's bits; device 5's episode is whole, device 9 is in one site only" \
        bash -c "pg_merge '$bin' 1 $p-es.h5 pg-e-0.part-s.h5 pg-e-1.part-s.h5 pg-e-2.part-s.h5 pg-e-3.part-s.h5 \
                     pg-e-4.part-s.h5 && pg_same pg-ep-ref-s.h5 $p-es.h5 && $PY -c \"
import h5py
E = h5py.File('$p-ei.h5')['episodes']
d, r = E['device'][:], E['readings'][:]
assert r[d == 5].tolist() == [40], r[d == 5]          # rows 980..999 at site 1, 1000..1019 at site 3
site = [h5py.File(f'pg-e-{i}.h5')['table/dev'][:] for i in range(5)]
assert len(site[2]) == 0 and (site[4] == 9).all() and not any((s == 9).any() for s in site[:4])
assert (d == 9).sum() > 0
\""
    check "pagg: episodes, sites -> regions (--partial at 1 rank) -> centre at 3 ranks: the one run's bits" \
        bash -c "pg_merge '$bin' 1 $p-er0.part.h5 pg-e-1.part-s.h5 pg-e-3.part-s.h5 &&
                 pg_merge '$bin' 1 $p-er1.part.h5 pg-e-4.part-s.h5 pg-e-2.part-s.h5 pg-e-0.part-s.h5 &&
                 pg_merge '$bin' 3 $p-ec.h5 $p-er0.part.h5 $p-er1.part.h5 && pg_same pg-ep-ref-s.h5 $p-ec.h5"
    check "pagg: aggregate, a site holding every row of two districts and one the rest, at 1 rank x 2 threads: the one run's bits" \
        bash -c "PG_THREADS=2 pg_merge '$bin' 1 $p-k.h5 pg-k-1.part-d.h5 pg-k-0.part-d.h5 && pg_same pg-agg-ref-d.h5 $p-k.h5 &&
                 $PY -c \"
import h5py
a, b = h5py.File('pg-k-0.h5')['table/district'][:], h5py.File('pg-k-1.h5')['table/district'][:]
assert len(a) and len(b) and not set(a.tolist()) & set(b.tolist()), 'the districts of site 0 are nowhere else'
\""
    # a merge killed after some of the parts' saved states, resumed at another rank count
    # from its checkpoint: the kernels' saves of a merge's state hold (HBAGG02, HBEPIS2)
    check "pagg: merges of both kernels killed after 3 of the parts' states resume at 3 ranks with the one run's bits" \
        bash -c "for k in a:d:0,1,2,3:agg e:s:0,1,2,3,4:ep; do
                   IFS=: read -r x s is ref <<<\$k; parts=; for i in \${is//,/ }; do parts=\"\$parts pg-\$x-\$i.part-\$s.h5\"; done
                   rm -rf $p-kill-\$x.h5 $p-kill-\$x.run
                   H5BATCH_FAULT_KILL_AFTER_CHUNKS=3 mpi 1 1 '$bin' merge \$parts -o $p-kill-\$x.h5 --run-dir $p-kill-\$x.run \
                       --checkpoint-interval 0.000001s -q
                   test -f $p-kill-\$x.run/manifest && ! test -e $p-kill-\$x.h5 || exit 1
                   mpi 3 1 '$bin' merge \$parts -o $p-kill-\$x.h5 --run-dir $p-kill-\$x.run --checkpoint-interval 0.000001s \
                       2>&1 | grep -q 'resuming from checkpoint' && pg_same pg-\$ref-ref-\$s.h5 $p-kill-\$x.h5 || exit 1
                 done"
    check "pagg: a table-layout result of a merge feeds a following step as the one run's does" \
        bash -c "printf '%s\n' '[job]' 'run_dir = $p-next.run' '[step n]' 'kernel = aggregate' 'input = $p-at.h5' \
                     'output = $p-next.h5' 'table = /aggregate' 'by = district' 'values = consumption_sum' \
                     'stats = count, sum, max' >$p-next.ini &&
                 mpi 1 1 '$bin' run $p-next.ini -q &&
                 mpi 1 1 '$bin' run $p-next.ini -q --set n.input=pg-agg-ref-t.h5 --set n.output=$p-next-ref.h5 \
                     --set job.run_dir=$p-next-ref.run && pg_same $p-next-ref.h5 $p-next.h5"

    # compact states: quantized readings (whole mmHg, bpm) kept once with a count for the
    # exact percentiles; readings of episodes about 9 bytes each instead of 24
    printf '%s\n' '[job]' "run_dir = $p-q.run" '[step a]' 'kernel = aggregate' 'input = pg-vitals.h5' \
        "output = $p-qa.part.h5" 'by = patient' 'values = systolic' 'stats = count, p50, p95' \
        '[step e]' 'kernel = episodes' 'input = pg-vitals.h5' "output = $p-qe.part.h5" \
        'columns = device:patient, value:heart_rate' 'rule = above:100' >$p-q.ini
    check "pagg: partial states are compact: kept percentile values as distinct value + count, episodes' readings in under 12 bytes" \
        bash -c "mpi 1 1 '$bin' gen vitals -o pg-vitals.h5 --rows 40k --devices 20 --days 7 -q &&
                 mpi 1 1 '$bin' run $p-q.ini --partial -q && $PY -c \"
import h5py, numpy as np
n = h5py.File('pg-vitals.h5')['table/systolic'].shape[0]
a = h5py.File('$p-qa.part.h5')['partial/raw_sizes'][:].sum()
e = h5py.File('$p-qe.part.h5')['partial/raw_sizes'][:].sum()
print(n, a, e)
assert a < 0.1 * 8 * n, (a, n)      # plain kept values alone: 8 bytes a reading
assert e < 12 * n, (e, n)           # records of (device, time, value): 24 bytes a reading
\""

    # options left unset (a: no time, valid, columns) are written as empty values in the
    # partial; the merge reads them as unset, not as set empty (which a job file refuses)
    check "pagg: an aggregate partial with options left unset (time, valid, columns) merges into the one run's bits" \
        bash -c "mpi 1 1 '$bin' run $p-q.ini -q --set a.output=$p-qa-ref.h5 --set e.output=$p-qe-ref.h5 --set job.run_dir=$p-qr.run &&
                 pg_merge '$bin' 1 $p-qa-m.h5 $p-qa.part.h5 && pg_same $p-qa-ref.h5 $p-qa-m.h5 &&
                 pg_merge '$bin' 2 $p-qe-m.h5 $p-qe.part.h5 && pg_same $p-qe-ref.h5 $p-qe-m.h5"

    # the refusals: 78 for options that differ and for another kernel, 65 for inputs whose
    # descriptions cannot be combined; one error line each, no output, no temporary. One
    # run makes both odd parts: d with another time zone, t of an input whose consumption
    # column has other units.
    $PY -c "
import h5py, shutil
shutil.copy('pg-a-1.h5', '$p-units.h5')
with h5py.File('$p-units.h5', 'a') as f:
    f['table/consumption'].attrs['units'] = 'l'
"
    mpi 1 1 "$bin" run pg-a-1.ini --partial -q --set d.timezone=UTC --set d.output="$p-tz.part.h5" \
        --set t.input="$p-units.h5" --set t.output="$p-units.part.h5" --set job.run_dir="$p-odd.run" >"$W/log" 2>&1
    expect_fail "pagg: a part made with another timezone -> 78 naming it and the option" 78 "$p-tz.part.h5.*timezone" \
        "$p-bad.h5" pg_merge "$bin" 1 "$p-bad.h5" pg-a-0.part-d.h5 "$p-tz.part.h5"
    expect_fail "pagg: an episodes part among aggregate parts -> 78 naming it" 78 "pg-e-1.part-i.h5" "$p-bad.h5" \
        pg_merge "$bin" 1 "$p-bad.h5" pg-a-0.part-d.h5 pg-e-1.part-i.h5
    expect_fail "pagg: episodes parts of another step (other rule, ids) -> 78 naming the part" 78 "pg-e-1.part-s.h5" \
        "$p-bad.h5" pg_merge "$bin" 1 "$p-bad.h5" pg-e-0.part-i.h5 pg-e-1.part-s.h5
    expect_fail "pagg: aggregate parts whose value column has other units -> 65 naming the part" 65 \
        "$p-units.part.h5: value column consumption has units 'l'" "$p-bad.h5" \
        pg_merge "$bin" 3 "$p-bad.h5" pg-a-0.part-t.h5 "$p-units.part.h5"
}
