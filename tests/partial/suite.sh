# The partial-state core (DESIGN.md 7): `h5batch run --partial` and `h5batch merge`,
# tested with psum (tests/partial/psum.c), a plugin kernel of its own, so that the
# core's checks do not depend on any built-in kernel; the kernels' own merges are
# tested in their suites. Expected values come from tests/partial/ref.py (numpy over the
# concatenated inputs); the sites are cut from one input by tests/partial/split.py.
# Sourced by tests/run_tests.sh, whose helpers (tests/lib.sh: check, expect_fail, mpi,
# write_job; $PY, $W, $ROOT, $LIMIT, $HB) it uses.

# Once for all passes: the plugin, an input of 100 rows and its sites, cut three ways.
partial_inputs() {
    [ -f partial-inputs.done ] && return 0
    mkdir -p pt-plugin &&
        mpicc -std=c17 -Wall -Wextra -Werror -shared -fPIC -I"$ROOT/include" -o pt-plugin/psum.so \
            "$ROOT/tests/partial/psum.c" || return 1
    $PY - <<'EOF' || return 1
import h5py, numpy as np
rng = np.random.default_rng(7)
n = 100
with h5py.File("pt-all.h5", "w") as f:
    key = rng.integers(0, 12, n)
    key[60:80] = 15  # key 15 only in rows 60..79: one site holds all of it below
    f["t/key"] = key
    f["t/value"] = rng.integers(-50, 50, n)
EOF
    # uneven with an empty site; one site holding all of key 15; everything in one site
    $PY "$ROOT/tests/partial/split.py" pt-all.h5 /t 0,30,30,77 pt-a >/dev/null &&
        $PY "$ROOT/tests/partial/split.py" pt-all.h5 /t 0,60,80 pt-b >/dev/null &&
        $PY "$ROOT/tests/partial/split.py" pt-all.h5 /t 0 pt-c >/dev/null &&
        touch partial-inputs.done
}

# pt_job NAME INPUT OUTPUT [lines]: a job of one psum step named s.
pt_job() {
    local name=$1 in=$2 out=$3
    shift 3
    {
        printf '[job]\nrun_dir = %s.run\nchunk_rows = 9\n\n[step s]\nkernel = psum\n' "$name"
        printf 'input = %s\noutput = %s\n' "$in" "$out"
        for l in "$@"; do printf '%s\n' "$l"; done
    } >"$name.ini"
}

# pt_parts BIN TAG SPLIT: the partial of every site of SPLIT, site i at 1 + i mod 3 ranks.
pt_parts() {
    local bin=$1 tag=$2 split=$3 f i=0
    for f in pt-$split-*.h5; do
        case $f in *.part.h5) continue ;; esac
        pt_job "pt-$tag-$split-$i" "$f" "pt-$tag-$split-$i.part.h5"
        mpi $((1 + i % 3)) 1 "$bin" run "pt-$tag-$split-$i.ini" --partial -q || return 1
        i=$((i + 1))
    done
}

# pt_same A B: A and B hold the same results.
pt_same() { h5diff -q --exclude-path /provenance "$1" "$2"; }
export -f pt_same

suite_partial() {
    local bin=$1 tag=$2
    local p=pt-$tag
    export H5BATCH_PLUGIN_PATH=$W/pt-plugin
    partial_inputs || { not_ok "partial: inputs"; return; }
    # the one run over everything, against numpy; the reference of every merge below
    pt_job "$p-one" pt-all.h5 "$p-one.h5"
    check "partial ($tag): one run = numpy" \
        bash -c "'$bin' run '$p-one.ini' -q && PSUM_CHECK='$p-one.h5' $PY '$ROOT/tests/partial/ref.py' 1 pt-all.h5"
    [ "$tag" = valgrind ] && { unset H5BATCH_PLUGIN_PATH; return; }
    local s splits="a b c"
    [ "$tag" = asan ] && splits=a # the sanitizers see every path of the core in split a
    for s in $splits; do
        check "partial ($tag): parts of split $s at 1-3 ranks" pt_parts "$bin" "$tag" "$s"
    done
    local a="$p-a-0.part.h5 $p-a-1.part.h5 $p-a-2.part.h5 $p-a-3.part.h5"
    [ "$tag" = asan ] || check "partial ($tag): merge of 4 sites (one empty) at 1 rank = one run" \
        bash -c "mpi 1 1 '$bin' merge $a -o $p-m1.h5 -q && pt_same $p-m1.h5 $p-one.h5"
    check "partial ($tag): merge of 4 sites at 3 ranks = one run" \
        bash -c "mpi 3 1 '$bin' merge $a -o $p-m3.h5 -q && pt_same $p-m3.h5 $p-one.h5"
    [ "$tag" = asan ] || check "partial ($tag): split b (one site holds all of key 15) merged at 2 ranks = one run" \
        bash -c "mpi 2 1 '$bin' merge $p-b-0.part.h5 $p-b-1.part.h5 $p-b-2.part.h5 -o $p-mb.h5 -q &&
                 pt_same $p-mb.h5 $p-one.h5"
    [ "$tag" = asan ] || check "partial ($tag): a single site merged = one run" \
        bash -c "mpi 1 1 '$bin' merge $p-c-0.part.h5 -o $p-mc.h5 -q && pt_same $p-mc.h5 $p-one.h5"
    # sites -> regions -> centre, regions of different shapes and rank counts
    check "partial ($tag): hierarchical merge (sites -> regions -> centre) = one run" \
        bash -c "mpi 2 1 '$bin' merge $p-a-0.part.h5 $p-a-1.part.h5 -o $p-r1.part.h5 --partial -q &&
                 mpi 3 1 '$bin' merge $p-a-2.part.h5 $p-a-3.part.h5 -o $p-r2.part.h5 --partial -q &&
                 mpi 1 1 '$bin' merge $p-r1.part.h5 $p-r2.part.h5 -o $p-mh.h5 -q && pt_same $p-mh.h5 $p-one.h5"
    # psum's first_row depends on the order of the parts: a merge in another order is one
    # run over the inputs concatenated in that order (numpy), not the first order's bits
    [ "$tag" = asan ] || check "partial ($tag): merge in reverse order = numpy over the reversed concatenation" \
        bash -c "mpi 2 1 '$bin' merge $p-b-2.part.h5 $p-b-1.part.h5 $p-b-0.part.h5 -o $p-rev.h5 -q &&
                 ! pt_same $p-rev.h5 $p-one.h5 &&
                 PSUM_CHECK=$p-rev.h5 $PY '$ROOT/tests/partial/ref.py' 1 pt-b-2.h5 pt-b-1.h5 pt-b-0.h5"
    check "partial ($tag): the partial records kernel, rows, options and one leaf" \
        $PY -c "
import h5py, sys
f = h5py.File('$p-a-0.part.h5', 'r')
ok = (f.attrs['kernel'] in (b'psum', 'psum') and int(f.attrs['rows']) == 30 and f['partial/leaves'].shape == (1,)
      and b'scale=1' in bytes(f['partial/options'][:]) and 'provenance' in f)
g = h5py.File('$p-r1.part.h5', 'r')
ok = ok and int(g.attrs['rows']) == 30 and g['partial/leaves'].shape == (2,)
sys.exit(0 if ok else 1)"
    [ "$tag" = asan ] || check "partial ($tag): a complete merge is skipped when run again" \
        bash -c "mpi 1 1 '$bin' merge $a -o $p-m1.h5 2>&1 | grep -q 'already complete'"
    [ "$tag" = asan ] && { partial_bad "$bin" "$tag"; unset H5BATCH_PLUGIN_PATH; return; }
    # killed in the middle of a merge, resumed at another rank count: the same bits
    check "partial ($tag): a merge killed after 3 parts resumes at 3 ranks with the same bits" \
        bash -c "H5BATCH_FAULT_KILL_AFTER_CHUNKS=3 mpi 1 1 '$bin' merge $a -o $p-k.h5 --checkpoint-interval 0.000001s -q;
                 test -f $p-k.run/manifest && ! test -e $p-k.h5 &&
                 mpi 3 1 '$bin' merge $a -o $p-k.h5 --checkpoint-interval 0.000001s 2>&1 | grep -q 'resuming from checkpoint' &&
                 pt_same $p-k.h5 $p-one.h5"
    partial_bad "$bin" "$tag"
    unset H5BATCH_PLUGIN_PATH
}

# The bad cases: the contract's codes, one error line, nothing written.
partial_bad() {
    local bin=$1 tag=$2
    local p=pt-$tag
    local a0=$p-a-0.part.h5
    local a2=$p-a-2.part.h5
    expect_fail "partial ($tag): a part given twice" 78 "given twice" "$p-x.h5" \
        "$bin" merge "$a0" "$a0" -o "$p-x.h5"
    expect_fail "partial ($tag): a region given beside one of its sites" 78 "holds an input that" "$p-x.h5" \
        "$bin" merge "$p-r1.part.h5" "$a0" -o "$p-x.h5"
    pt_job "$p-scale" pt-a-2.h5 "$p-scale.part.h5" "scale = 2"
    "$bin" run "$p-scale.ini" --partial -q
    expect_fail "partial ($tag): parts made with other options" 78 "option scale is '2' where" "$p-x.h5" \
        "$bin" merge "$a0" "$p-scale.part.h5" -o "$p-x.h5"
    pt_job "$p-other" pt-a-2.h5 "$p-other.part.h5"
    sed -i 's/kernel = psum/kernel = psumb/' "$p-other.ini"
    "$bin" run "$p-other.ini" --partial -q
    expect_fail "partial ($tag): a part of another kernel" 78 "of kernel psumb, where" "$p-x.h5" \
        "$bin" merge "$a0" "$p-other.part.h5" -o "$p-x.h5"
    cp "$a2" "$p-trunc.part.h5" && truncate -s 2000 "$p-trunc.part.h5"
    cp "$a2" "$p-bad.part.h5"
    $PY - "$p-bad.part.h5" <<'EOF'
import sys, h5py
with h5py.File(sys.argv[1], "r") as f:
    at = f["partial/state"].id.get_offset() + 3
with open(sys.argv[1], "r+b") as f:
    f.seek(at)
    b = f.read(1)
    f.seek(at)
    f.write(bytes([b[0] ^ 0xFF]))
EOF
    expect_fail "partial ($tag): a part whose saved state is damaged" 65 "$p-bad.part.h5: damaged partial state" \
        "$p-x.h5" "$bin" merge "$a0" "$p-bad.part.h5" -o "$p-x.h5"
    expect_fail "partial ($tag): a truncated part" 65 "$p-trunc.part.h5: not a readable partial state" "$p-x.h5" \
        "$bin" merge "$a0" "$p-trunc.part.h5" -o "$p-x.h5"
    # the sanitizers' share: the reading of damaged parts and the checks between parts
    # (above); the rest are paths of the command line and the driver, plain only
    [ "$tag" = asan ] && return
    expect_fail "partial ($tag): a final output given as a part" 65 "not a partial state" "$p-x.h5" \
        "$bin" merge "$a0" "$p-one.h5" -o "$p-x.h5"
    expect_fail "partial ($tag): a missing part" 66 "$p-nope.h5" "$p-x.h5" "$bin" merge "$a0" "$p-nope.h5" -o "$p-x.h5"
    expect_fail "partial ($tag): no parts" 64 "no parts given" "" "$bin" merge -o "$p-x.h5"
    expect_fail "partial ($tag): no output" 64 "no output given" "" "$bin" merge "$a0"
    expect_fail "partial ($tag): the output is one of the parts" 73 "a part is never replaced" "" \
        "$bin" merge "$a0" "$a2" -o "$a2" --force
    expect_fail "partial ($tag): a partial given to run as its input" 65 "is a partial state" "$p-x.h5" \
        "$bin" run "$p-one.ini" --set "s.input=$a0" --set "s.output=$p-x.h5" -q
    pt_job "$p-nohooks" pt-a-2.h5 "$p-x.h5"
    sed -i 's/kernel = psum/kernel = pnohooks/' "$p-nohooks.ini"
    expect_fail "partial ($tag): --partial with a kernel that keeps no partial states" 78 \
        "kernel pnohooks keeps no partial states" "$p-x.h5" "$bin" run "$p-nohooks.ini" --partial -q
    cp "$p-one.h5" "$p-exists.h5"
    expect_fail "partial ($tag): an existing output without --force" 73 "use --force" "" \
        "$bin" merge "$a0" -o "$p-exists.h5" -q
}
