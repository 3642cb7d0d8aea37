# Partial states and merges (DESIGN.md 7, docs/partial.md) of the kernels traffic and
# bill and of the example plugin oee; sourced by tests/run_tests.sh, whose helpers
# (tests/lib.sh: check, expect_fail, mpi, write_job; $PY, $W, $ROOT, $LIMIT, $HB) it
# uses, and tests/plugin/suite.sh's plugin_setup (which builds oee.so).
#
# Each kernel's input is cut into sites in two ways: by rows, unevenly, with a site of no
# rows (tests/partial/split.py), and by key, one site holding every row of one key
# (split_key.py; the three kernels' outputs do not depend on the order of rows). Every
# site runs --partial at 1, 2 or 3 ranks; the parts are merged flat and through a merge
# --partial of some of them, in several orders, at 1, 2 and 3 ranks. Expected values:
# one run over the whole input, which the kernels' own suites check against numpy
# (tests/traffic, tests/bill, tests/plugin); every merge must have its bits
# (h5diff --exclude-path /provenance). Then the refusals: another option value (78),
# another kernel (78), traffic parts of another calendar or segment count (65), and the
# traffic part's compact state (distinct speeds with counts).

# ptr_inputs: the inputs and their sites, made once for both passes (one Python for
# every cut; 80 segments: more than traffic's description has bytes without a side table
# of free-flow speeds): for each kernel K, ptr-K-a-{0,1,2}.h5 cut by rows (uneven, site 1 empty)
# and ptr-K-b-{0,1,2}.h5 by key (site 0 holds every row of one key); for traffic also
# site a-2 with other event days (cal), another n_segments (seg), float64 speeds (f64),
# sites a-1 and a-2 without the n_segments attribute (noattr-1, noattr-2), and the input
# with /segments/free_flow_speed cut in two (ffs-0, ffs-1).
ptr_inputs() {
    [ -f ptr-inputs.done ] && return 0
    mpi 1 1 "$HB" gen traffic -o ptr-traffic.h5 --rows 30k --segments 80 --days 21 --events 2 --invalid 0.01 \
        --seed 7 -q || return 1
    $PY "$ROOT/tests/bill/make_bill_case.py" ptr-bill.h5 --case random >/dev/null || return 1
    plugin_setup || return 1
    H5BATCH_PLUGIN_PATH="$W/pl/ok" mpi 1 1 "$HB" gen bottling -o ptr-oee.h5 --lines 3 --days 6 --invalid 0.01 \
        --seed 3 -q || return 1
    $PY - "$ROOT/tests" <<'PYEOF' || return 1
import shutil, sys
import h5py, numpy as np
sys.path[:0] = [sys.argv[1] + "/partial", sys.argv[1] + "/ptraffic"]
import split, split_key
def run(mod, *args):
    sys.argv = ["x", *args]
    mod.main()
for k, table, cuts, col, val in (("traffic", "/observations", "0,9000,9000", "segment", "3"),
                                 ("bill", "/aggregate", "0,40,40", "meter", "100003"),
                                 ("oee", "/intervals", "0,300,300", "batch", "2")):
    run(split, f"ptr-{k}.h5", table, cuts, f"ptr-{k}-a")
    run(split_key, f"ptr-{k}.h5", table, col, val, f"ptr-{k}-b")
p = "ptr-traffic"
for w in ("cal", "seg", "f64", "noattr-2"):
    shutil.copy(f"{p}-a-2.h5", f"{p}-{w}.h5")
shutil.copy(f"{p}-a-1.h5", f"{p}-noattr-1.h5")
with h5py.File(f"{p}-cal.h5", "r+") as f:
    ev = f["calendar/event_days"][...]
    del f["calendar/event_days"]
    f["calendar/event_days"] = np.append(ev[:1], 20991231).astype(ev.dtype)
with h5py.File(f"{p}-seg.h5", "r+") as f:
    f["observations"].attrs["n_segments"] = f["observations"].attrs["n_segments"] + 1
with h5py.File(f"{p}-f64.h5", "r+") as f:  # the same speeds as float64: records of doubles
    v = f["observations/speed"][...].astype(np.float64)
    del f["observations/speed"]
    f["observations/speed"] = v
for w in ("noattr-1", "noattr-2"):
    with h5py.File(f"{p}-{w}.h5", "r+") as f:
        del f["observations"].attrs["n_segments"]
shutil.copy(f"{p}.h5", "ptr-ffs.h5")  # with the input's own free-flow speeds, cut in two
with h5py.File("ptr-ffs.h5", "r+") as f:
    f["segments/free_flow_speed"] = np.linspace(40, 120, f["observations"].attrs["n_segments"])
run(split, "ptr-ffs.h5", "/observations", "0,12000", f"{p}-ffs")
PYEOF
    touch ptr-inputs.done
}

# ptr_part BIN P SITE RANKS [--set ...]: site P-SITE.h5 run --partial into
# P-SITE$PTR_SFX.part.h5 (job P.ini, its step s; PTR_SFX tells the passes' parts apart).
ptr_part() {
    local bin=$1 p=$2 s=$3 n=$4
    shift 4
    mpi "$n" 1 "$bin" run "$p.ini" -q --fresh --partial --set "s.input=$p-$s.h5" --set "s.output=$p-$s$PTR_SFX.part.h5" \
        --set "job.run_dir=$p-$s.run" "$@"
}

# ptr_merge BIN RANKS OUT PART...: h5batch merge of the PARTs into OUT.
ptr_merge() {
    local bin=$1 n=$2 out=$3
    shift 3
    mpi "$n" 1 "$bin" merge "$@" -o "$out" -q --run-dir "$out.run"
}
export -f ptr_part ptr_merge

# ptr_kernel BIN TAG KERNEL TABLE [LINE]...: the merges of one kernel against its one run
# (LINEs: the step's options). The asan pass makes the row sites and two merges; the
# flat merge of the row sites is traffic's alone (the others' hierarchical merge holds
# the same parts).
ptr_kernel() {
    local bin=$1 tag=$2 k=$3 table=$4
    shift 4
    local p="ptr-$k" s d="h5diff --exclude-path /provenance"
    write_job "$p" s "$k" "$p.h5" "$p-ref-$tag.h5" "table = $table" "$@"
    # the reference: by the plain build in every pass (the sanitizers look at the merges)
    check "$k ($tag): one run over the whole input" mpi 1 1 "$HB" run "$p.ini" -q --fresh --force
    local sites="a-0:1 a-1:2 a-2:3 b-0:3 b-1:1 b-2:2" parts=""
    [ "$tag" = plain ] || sites="a-0:1 a-1:2 a-2:1"
    for s in $sites; do parts="$parts ptr_part '$bin' $p ${s%:*} ${s#*:} &&"; done
    check "$k ($tag): partials of the sites at 1, 2 and 3 ranks, one site without rows" bash -c "$parts true"
    local r="$p-ref-$tag.h5" a0=$p-a-0$PTR_SFX.part.h5 a1=$p-a-1$PTR_SFX.part.h5 a2=$p-a-2$PTR_SFX.part.h5
    check "$k ($tag): a merge of a site and a merge --partial of the other two (one empty) equals one run" \
        bash -c "ptr_merge '$bin' 2 $p-r1-$tag.part.h5 $a2 $a1 --partial &&
                 ptr_merge '$bin' 2 $p-m2-$tag.h5 $p-r1-$tag.part.h5 $a0 && $d $r $p-m2-$tag.h5"
    [ "$tag" = plain ] || return 0
    [ "$k" = traffic ] && check "$k ($tag): the row sites merged flat at 1 rank equal one run" bash -c \
        "ptr_merge '$bin' 1 $p-m1.h5 $a0 $a1 $a2 && $d $r $p-m1.h5"
    check "$k ($tag): the key sites merged in another order at 3 ranks equal one run" bash -c \
        "ptr_merge '$bin' 3 $p-m3.h5 $p-b-2.part.h5 $p-b-0.part.h5 $p-b-1.part.h5 && $d $r $p-m3.h5"
}

# ptr_refuse BIN TAG KERNEL OPTION VALUE: a part made with another OPTION value is refused.
ptr_refuse() {
    local bin=$1 tag=$2 k=$3 opt=$4 val=$5 p="ptr-$3"
    if ! ptr_part "$bin" "$p" a-2 1 --set "s.$opt=$val" --set "s.output=$p-other.part.h5" >"$W/log" 2>&1; then
        not_ok "$k ($tag): a part with $opt = $val"
        return
    fi
    expect_fail "$k ($tag): merge of parts of two values of $opt -> 78 naming the part and $opt" 78 \
        "$p-other.part.h5.*$opt" "$p-bad.h5" ptr_merge "$bin" 1 "$p-bad.h5" "$p-a-0.part.h5" "$p-other.part.h5"
}

# Traffic's own checks: sides that differ, float and double records, an empty site
# without n_segments, the compact state. Plain pass only.
ptr_traffic_more() {
    local bin=$1 tag=$2 p="ptr-traffic" w
    [ "$tag" = plain ] || return 0
    for w in cal seg f64 noattr-1 noattr-2 ffs-0 ffs-1; do
        ptr_part "$bin" "$p" "$w" 1 >"$W/log" 2>&1 || { not_ok "traffic ($tag): the part of site $w"; return; }
    done
    expect_fail "traffic ($tag): a part of other event days -> 65 naming it" 65 "$p-cal.part.h5: .*event_days" \
        "$p-bad.h5" ptr_merge "$bin" 2 "$p-bad.h5" "$p-a-0.part.h5" "$p-cal.part.h5"
    expect_fail "traffic ($tag): a part of another n_segments -> 65 naming it" 65 "$p-seg.part.h5: .*segments" \
        "$p-bad.h5" ptr_merge "$bin" 1 "$p-bad.h5" "$p-a-0.part.h5" "$p-seg.part.h5"
    check "traffic ($tag): parts of float32 and of float64 speeds merge into the one run's bits" bash -c \
        "ptr_merge '$bin' 2 $p-mf.h5 $p-a-0.part.h5 $p-a-1.part.h5 $p-f64.part.h5 &&
         h5diff --exclude-path /provenance $p-ref-$tag.h5 $p-mf.h5"
    check "traffic ($tag): parts of an input with free-flow speeds merge into its one run" bash -c \
        "mpi 1 1 '$bin' run $p.ini -q --fresh --set s.input=ptr-ffs.h5 --set s.output=$p-ffs.h5 \
             --set job.run_dir=$p-ffs.run &&
         ptr_merge '$bin' 2 $p-mff.h5 $p-ffs-1.part.h5 $p-ffs-0.part.h5 &&
         h5diff --exclude-path /provenance $p-ffs.h5 $p-mff.h5"
    # the merge's checkpoints are traffic's saved state plus the ledger of parts done
    local b="$p-b-0.part.h5 $p-b-1.part.h5 $p-b-2.part.h5"
    check "traffic ($tag): a merge killed after 2 saved states resumes at 3 ranks into the one run's bits" bash -c \
        "H5BATCH_FAULT_KILL_AFTER_CHUNKS=2 mpi 1 1 '$bin' merge $b -o $p-k.h5 --run-dir $p-k.run \
             --checkpoint-interval 0.000001s -q; test -f $p-k.run/manifest && ! test -e $p-k.h5 &&
         mpi 3 1 '$bin' merge $b -o $p-k.h5 --run-dir $p-k.run 2>&1 | grep -q 'resuming from checkpoint' &&
         h5diff --exclude-path /provenance $p-ref-$tag.h5 $p-k.h5"
    # without n_segments, S is max(segment)+1: the empty site's is 0, the merge takes the other's
    check "traffic ($tag): an empty site without n_segments merges with another into that one's run" bash -c \
        "mpi 1 1 '$bin' run $p.ini -q --fresh --set s.input=$p-noattr-2.h5 --set s.output=$p-noattr.h5 \
             --set job.run_dir=$p-noattr.run &&
         ptr_merge '$bin' 2 $p-mn.h5 $p-noattr-1.part.h5 $p-noattr-2.part.h5 &&
         h5diff --exclude-path /provenance $p-noattr.h5 $p-mn.h5"
    expect_fail "traffic ($tag): one run over that empty site -> 65, as before" 65 "no valid segment id" \
        "$p-empty.h5" mpi 1 1 "$bin" run "$p.ini" --fresh --set "s.input=$p-noattr-1.h5" --set "s.output=$p-empty.h5" \
        --set "job.run_dir=$p-empty.run"
    # a part's saved states, decompressed: every valid record of the site, as distinct
    # values with counts, smaller than one (key, value) per record
    check "traffic ($tag): a part's state holds its valid rows as sorted distinct speeds with counts" $PY - \
        "$p-a-2.part.h5" "$p-a-2.h5" <<'PYEOF'
import struct, sys, zlib
import h5py, numpy as np
part, site = sys.argv[1:3]
with h5py.File(part, "r") as f:
    data, sizes = f["partial/state"][...].tobytes(), f["partial/sizes"][...]
with h5py.File(site, "r") as f:
    o = f["observations"]
    v, s = o["speed"][...].astype(float), o["segment"][...].astype(np.int64)
    valid = int(np.sum(np.isfinite(v) & (v >= 0) & (v <= 250) & (s >= 0) & (s < o.attrs["n_segments"])))
def varints(b, at, n):
    out = np.zeros(n, np.int64)
    for i in range(n):
        x = shift = 0
        while True:
            c = b[at]
            at, x, shift = at + 1, x | (c & 0x7F) << shift, shift + 7
            if c < 0x80:
                break
        out[i] = x
    return out, at
records = distinct = at = 0
for z in sizes:
    blob = zlib.decompress(data[at:at + int(z)])
    at += int(z)
    assert blob[:8] == b"HBTRAF2\0", blob[:8]
    # rows, bad speed, segment, time, records, value bytes, groups, distinct, stream bytes
    h = struct.unpack("<11Q", blob[8:96])
    G, D, vb = h[6], h[7], h[5]
    assert len(blob) == 96 + h[8] + h[9] + D * vb + h[10]
    dk, q = varints(blob, 96, G)
    nd, q = varints(blob, q, G)
    vals = np.frombuffer(blob, np.float32 if vb == 4 else np.float64, D, q)
    cnt, q = varints(blob, q + D * vb, D)
    assert q == len(blob) and np.all(dk[1:] > 0) and nd.sum() == D and cnt.sum() == h[4] and np.all(cnt > 0)
    ends = np.cumsum(nd)
    for g in range(G):  # ascending distinct values within each cell
        assert np.all(np.diff(vals[ends[g] - nd[g]:ends[g]]) > 0)
    # smaller than version 1's (key, value) per record
    assert len(blob) < 56 + h[4] * (4 + vb), (len(blob), h[4])
    records += h[4]
    distinct += D
assert records == valid, (records, valid)
assert distinct < records, (distinct, records)
print(f"{records} records as {distinct} distinct values")
PYEOF
}

suite_ptraffic() {
    local bin=$1 tag=$2
    [ "$tag" = valgrind ] && return 0 # the kernels' own suites run their states under valgrind
    ptr_inputs >"$W/log" 2>&1 || { not_ok "ptraffic ($tag): making the inputs"; return; }
    local -x PTR_SFX=""
    [ "$tag" = plain ] || PTR_SFX=-$tag
    ptr_kernel "$bin" "$tag" traffic /observations "timezone = Europe/Berlin" "percentiles = 5, 50, 85, 99.9" \
        "job.chunk_rows = 4k"
    ptr_traffic_more "$bin" "$tag"
    [ "$tag" = plain ] || return 0 # under ASan: traffic's state, the largest and the newest code
    ptr_refuse "$bin" "$tag" traffic percentiles "50, 85"
    ptr_kernel "$bin" "$tag" bill /aggregate "columns = consumption:consumption_sum" \
        "tiers = 0:1.20, 10:1.80, 30:2.50" "fixed_charge = 8.50" "job.chunk_rows = 50"
    ptr_refuse "$bin" "$tag" bill fixed_charge 9
    local -x H5BATCH_PLUGIN_PATH="$W/pl/ok"
    ptr_kernel "$bin" "$tag" oee /intervals "job.chunk_rows = 200"
    ptr_refuse "$bin" "$tag" oee oee_target 0.5
    expect_fail "ptraffic ($tag): merge of a traffic and a bill part -> 78" 78 "kernel" "ptr-mixed.h5" \
        ptr_merge "$bin" 1 "ptr-mixed.h5" "ptr-traffic-a-0.part.h5" "ptr-bill-a-2.part.h5"
}
