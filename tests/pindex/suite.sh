# Partial states and merge (DESIGN.md 7) for the index and risk kernels; sourced by
# tests/run_tests.sh, whose helpers (tests/lib.sh: check, expect_fail, mpi, write_job;
# $PY, $W, $ROOT, $LIMIT, $HB) it uses. The expected output of every merge is the output
# of one run over the concatenation of the sites' inputs, which the index and risk
# suites check against their independent references (tests/index/index_ref.py,
# tests/risk/risk_ref.py); the sites are cut from one input by tests/pindex/split_corpus.py
# (by document) and tests/partial/split.py (the trades of /transactions), so that their
# concatenation is that input again.
# suite_pindex BIN TAG runs what the pass TAG (plain, asan, valgrind) has.

# The inputs, made once for every pass.
pi_inputs() {
    [ -f pi-inputs.done ] && return 0
    local sp="$PY $ROOT/tests/pindex/split_corpus.py"
    "$HB" gen corpus -o pi-c.h5 --docs 600 --mean-bytes 150 --vocab 3000 -q || return 1
    # uneven sites, one of them with no documents, and their concatenation in another
    # order; two sites
    $sp pi-c.h5 0,37,37,400 pi-s --order 3,0,1,2 --concat pi-dabc.h5 >/dev/null || return 1
    $sp pi-c.h5 0,250 pi-t >/dev/null || return 1
    # string ids and titles, with text as bytes and as strings (tests/index/names_ref.py)
    $PY "$ROOT/tests/index/names_ref.py" make . || return 1
    $sp ix-ns.h5 0,16 pi-ns --table /library --text body >/dev/null || return 1
    # the market: sites of trades (uneven, one with none), a site of all of portfolio 3's
    # trades, fractional quantities, and another market
    "$HB" gen market -o pi-m.h5 --assets 8 --days 320 --portfolios 70 --transactions 2000 --names -q || return 1
    $PY "$ROOT/tests/partial/split.py" pi-m.h5 /transactions 0,300,300,1500 pi-ms >/dev/null || return 1
    $PY "$ROOT/tests/pindex/risk_cases.py" key pi-m.h5 3 pi-mk || return 1
    $PY "$ROOT/tests/pindex/risk_cases.py" fractional pi-ms-0.h5 pi-mf.h5 || return 1
    "$HB" gen market -o pi-m2.h5 --assets 8 --days 320 --portfolios 70 --transactions 500 --names --seed 2 -q ||
        return 1
    printf 'wi\nza\n' >pi-stop.txt
    # case and compatibility forms, which the description keeps normalized
    printf '# stop\nHello World | x\n\tSTRASSE\n\xef\xac\x81nance\n' >pi-stop-ns.txt
    touch pi-inputs.done
}

# pi_same A B: the same index bits, but for /provenance and where the corpus files are
# (/docs's attributes and /docs/corpora: a merge's documents come from the sites' files).
pi_same() { h5diff --exclude-path /provenance --exclude-path /docs/corpora --exclude-attribute /docs "$1" "$2"; }
# rk_same A B: the same risk bits, but for /provenance.
rk_same() { h5diff --exclude-path /provenance "$1" "$2"; }
export -f pi_same rk_same

# pi_job NAME KERNEL INPUT DEFAULTS... -- [lines]: write_job NAME, with the default lines
# whose keys the lines do not set.
pi_job() {
    local name=$1 kernel=$2 in=$3 d l
    shift 3
    local defs=() lines=()
    while [ "$1" != -- ]; do defs+=("$1") && shift; done
    shift
    lines=("$@")
    for d in "${defs[@]}"; do
        for l in "${lines[@]}"; do [ "${l%% =*}" = "${d%% =*}" ] && continue 2; done
        lines+=("$d")
    done
    write_job "$name" "$kernel" "$kernel" "$in" "$name.h5" "${lines[@]}"
}
# pi_run NAME BIN RANKS CHUNK_ROWS INPUT [--partial] [lines]: an index job into NAME.h5.
pi_run() {
    local name=$1 bin=$2 n=$3 cr=$4 in=$5 partial=
    shift 5
    [ "${1:-}" = --partial ] && partial=--partial && shift
    pi_job "$name" index "$in" 'positions = true' -- "$@"
    mpi "$n" 1 "$bin" run "$name.ini" -q --force --set job.chunk_rows="$cr" $partial
}
# rk_run NAME BIN RANKS CHUNK_ROWS INPUT [--partial] [lines]: a risk job into NAME.h5.
rk_run() {
    local name=$1 bin=$2 n=$3 cr=$4 in=$5 partial=
    shift 5
    [ "${1:-}" = --partial ] && partial=--partial && shift
    pi_job "$name" risk "$in" 'positions = transactions' 'window = 150' 'backtest_days = 60' 'mc_scenarios = 6k' \
        'write_pnl = true' -- "$@"
    mpi "$n" 1 "$bin" run "$name.ini" -q --force --set job.chunk_rows="$cr" $partial
}
# pi_merge RANKS BIN OUT PART... [--partial]: h5batch merge.
pi_merge() {
    local n=$1 bin=$2 out=$3
    shift 3
    mpi "$n" 1 "$bin" merge "$@" -o "$out" -q
}
export -f pi_job pi_run rk_run pi_merge

# The index: parts at 1, 2 and 3 ranks, merged flat, hierarchically and in another order.
pindex_index() {
    local bin=$1 tag=$2 p="pi-$2"
    check "pindex ($tag): index parts of 4 sites (one empty) at 1, 2, 3 ranks, and one run over the corpus" bash -c \
        "pi_run $p-full '$bin' 2 64 pi-c.h5 &&
         pi_run $p-0 '$bin' 1 50 pi-s-0.h5 --partial && pi_run $p-1 '$bin' 2 50 pi-s-1.h5 --partial &&
         pi_run $p-2 '$bin' 3 100 pi-s-2.h5 --partial && pi_run $p-3 '$bin' 1 64 pi-s-3.h5 --partial"
    check "pindex ($tag): merge of the 4 parts at 3 ranks = one run; its corpus files (/docs/corpora) are the sites'" \
        bash -c "pi_merge 3 '$bin' $p-m3.h5 $p-{0,1,2,3}.h5 && pi_same $p-m3.h5 $p-full.h5 && $PY -c \"
import h5py, os
m, f = h5py.File('$p-m3.h5'), h5py.File('$p-full.h5')
d = m['docs']
assert d.attrs['corpus_file'] == '' and f['docs'].attrs['corpus_file'] == os.path.realpath('pi-c.h5')
files = [x.decode() for x in d['corpora/file'][:]]
assert files == [os.path.realpath('pi-s-%d.h5' % i) for i in (0, 2, 3)], files  # the empty site has none
assert list(d['corpora/first_doc'][:]) == [0, 37, 400]
for k in ('corpus_text', 'corpus_offsets'):
    assert d.attrs[k] == f['docs'].attrs[k]
\""
    check "pindex ($tag): hierarchical: (0+1) as a partial at 2 ranks, then with 2 and 3 at 1 rank = one run" bash -c \
        "pi_merge 2 '$bin' $p-r01.h5 $p-0.h5 $p-1.h5 --partial &&
         pi_merge 1 '$bin' $p-h.h5 $p-r01.h5 $p-2.h5 $p-3.h5 && pi_same $p-h.h5 $p-full.h5"
    check "pindex ($tag): a merge killed after 3 saved states resumes at 3 ranks with the same bits" bash -c \
        "H5BATCH_FAULT_KILL_AFTER_CHUNKS=3 mpi 1 1 '$bin' merge $p-{0,1,2,3}.h5 -o $p-kill.h5 \
             --checkpoint-interval 0.000001s -q; test -f $p-kill.run/manifest && ! test -e $p-kill.h5 &&
         mpi 3 1 '$bin' merge $p-{0,1,2,3}.h5 -o $p-kill.h5 2>&1 | grep -q 'resuming from checkpoint' &&
         pi_same $p-kill.h5 $p-full.h5"
    check "pindex ($tag): query on the merged index: the same hits and snippets as on the one-run index" bash -c \
        "'$bin' query $p-full.h5 --top 8 wi 'gifif grozi' '\"mep wi\"' >$p-q1.txt 2>$p-q1.err &&
         '$bin' query $p-h.h5 --top 8 wi 'gifif grozi' '\"mep wi\"' >$p-q2.txt 2>$p-q2.err &&
         cmp $p-q1.txt $p-q2.txt && [ ! -s $p-q2.err ] && [ \$(grep -c '^    ' $p-q2.txt) -ge 8 ] &&
         '$bin' query $p-full.h5 --json --top 20 bryd fo >$p-q1.json &&
         '$bin' query $p-h.h5 --json --top 20 bryd fo >$p-q2.json &&
         $PY -c \"
import json
a, b = (json.load(open(f)) for f in ('$p-q1.json', '$p-q2.json'))
assert a['hits'] == b['hits'] and len(a['hits']) == 20, (a['hits'][:2], b['hits'][:2])
\""
    check "pindex ($tag): order: merge D, A, B, C = one run over D, A, B, C, other doc numbers than A, B, C, D" bash -c \
        "pi_run $p-dabc '$bin' 1 64 pi-dabc.h5 &&
         pi_merge 2 '$bin' $p-md.h5 $p-3.h5 $p-0.h5 $p-1.h5 $p-2.h5 && pi_same $p-md.h5 $p-dabc.h5 &&
         ! h5diff -q $p-md.h5 $p-full.h5 /index/postings_doc /index/postings_doc &&
         h5diff -q $p-md.h5 $p-full.h5 /index/terms /index/terms && $PY -c \"
import h5py
a, d = h5py.File('$p-full.h5')['index'], h5py.File('$p-md.h5')['index']
# D's 200 documents come first: document i of A, B, C is document 200 + i of D, A, B, C
assert (d['doc_id'][200:] == a['doc_id'][:400]).all() and (d['doc_length'][:200] == a['doc_length'][400:]).all()
\""
    check "pindex ($tag): strings, string ids, titles, stems, stop words of a file gone at the centre: merge = one run" \
        bash -c "cols='columns = text:body, doc_id:key, title:headline' &&
         cp pi-stop-ns.txt $p-stop-ns.txt && set -- 'table = /library' \"\$cols\" 'stemmer = english' \
             'stopwords = $p-stop-ns.txt' &&
         pi_run $p-ns '$bin' 1 4 ix-ns.h5 \"\$@\" && pi_run $p-ns0 '$bin' 2 5 pi-ns-0.h5 --partial \"\$@\" &&
         pi_run $p-ns1 '$bin' 1 4 pi-ns-1.h5 --partial \"\$@\" && rm $p-stop-ns.txt &&
         pi_merge 3 '$bin' $p-nsm.h5 $p-ns0.h5 $p-ns1.h5 && pi_same $p-nsm.h5 $p-ns.h5 &&
         '$bin' query $p-ns.h5 --json hello alpha lead >$p-n1.json &&
         '$bin' query $p-nsm.h5 --json hello alpha lead >$p-n2.json && $PY -c \"
import json
a, b = (json.load(open(f)) for f in ('$p-n1.json', '$p-n2.json'))
assert a['hits'] == b['hits'] and len(b['hits']) >= 3 and all(h.get('snippet') for h in b['hits']), b
\""
}

# The index's bad cases: what the parts must agree on.
pindex_index_bad() {
    local bin=$1 tag=$2 p="pi-$2"
    pi_run $p-nopos "$bin" 1 64 pi-s-0.h5 --partial 'positions = false' >/dev/null 2>&1
    expect_fail "pindex ($tag): a part indexed without positions: 78 naming the part and the option" 78 \
        "$p-nopos.h5.*positions" $p-bad1.h5 pi_merge 2 "$bin" $p-bad1.h5 $p-2.h5 $p-nopos.h5
    cp pi-stop.txt $p-stop.txt
    pi_run $p-sw0 "$bin" 1 64 pi-s-0.h5 --partial "stopwords = $p-stop.txt" >/dev/null 2>&1
    printf 'wi\n' >$p-stop.txt
    pi_run $p-sw2 "$bin" 1 64 pi-s-2.h5 --partial "stopwords = $p-stop.txt" >/dev/null 2>&1
    expect_fail "pindex ($tag): the same stop word file name with other words at two sites: 78" 78 \
        "$p-sw2.h5.*stopwords" $p-bad2.h5 pi_merge 1 "$bin" $p-bad2.h5 $p-sw0.h5 $p-sw2.h5
    expect_fail "pindex ($tag): a part of another kernel (risk): 78" 78 "rk-$tag-0.h5" $p-bad3.h5 \
        pi_merge 1 "$bin" $p-bad3.h5 $p-0.h5 rk-$tag-0.h5
}

# Risk: sites of trades, merged in any order and grouping; what cannot be merged is refused.
pindex_risk() {
    local bin=$1 tag=$2 p="rk-$2"
    check "risk partial ($tag): parts of 4 sites of trades (one with none) at 1, 2, 3 ranks, and one run" bash -c \
        "rk_run $p-full '$bin' 2 4096 pi-m.h5 &&
         rk_run $p-0 '$bin' 1 2048 pi-ms-0.h5 --partial && rk_run $p-1 '$bin' 3 4096 pi-ms-1.h5 --partial &&
         rk_run $p-2 '$bin' 2 4096 pi-ms-2.h5 --partial && rk_run $p-3 '$bin' 1 8192 pi-ms-3.h5 --partial"
    check "risk partial ($tag): merge in another order (C, A, D, B) at 3 ranks = one run" bash -c \
        "pi_merge 3 '$bin' $p-m3.h5 $p-2.h5 $p-0.h5 $p-3.h5 $p-1.h5 && rk_same $p-m3.h5 $p-full.h5"
    check "risk partial ($tag): hierarchical ((D+A) as a partial at 2 ranks, then with B and C at 1 rank) = one run" \
        bash -c "pi_merge 2 '$bin' $p-r30.h5 $p-3.h5 $p-0.h5 --partial &&
         pi_merge 1 '$bin' $p-h.h5 $p-1.h5 $p-r30.h5 $p-2.h5 && rk_same $p-h.h5 $p-full.h5"
    check "risk partial ($tag): a merge killed after 2 saved states resumes at 2 ranks with the same bits" bash -c \
        "H5BATCH_FAULT_KILL_AFTER_CHUNKS=2 mpi 1 1 '$bin' merge $p-{0,1,2,3}.h5 -o $p-kill.h5 \
             --checkpoint-interval 0.000001s -q; test -f $p-kill.run/manifest && ! test -e $p-kill.h5 &&
         mpi 2 1 '$bin' merge $p-{0,1,2,3}.h5 -o $p-kill.h5 2>&1 | grep -q 'resuming from checkpoint' &&
         rk_same $p-kill.h5 $p-full.h5"
    check "risk partial ($tag): one site holding every trade of portfolio 3, the other the rest = one run" bash -c \
        "rk_run $p-k0 '$bin' 2 4096 pi-mk-0.h5 --partial && rk_run $p-k1 '$bin' 1 4096 pi-mk-1.h5 --partial &&
         pi_merge 2 '$bin' $p-k.h5 $p-k1.h5 $p-k0.h5 && rk_same $p-k.h5 $p-full.h5"
    expect_fail "risk partial ($tag): positions from /portfolios/exposure: 78, no partial written" 78 \
        "partial states of positions from /transactions only" $p-exp.h5 \
        rk_run $p-exp "$bin" 1 4096 pi-ms-0.h5 --partial 'positions = exposure'
    expect_fail "risk partial ($tag): a fractional quantity: 78, no partial written" 78 "not a whole number" \
        $p-frac.h5 rk_run $p-frac "$bin" 1 4096 pi-mf.h5 --partial
    rk_run $p-o "$bin" 1 4096 pi-m2.h5 --partial >/dev/null 2>&1
    expect_fail "risk partial ($tag): a site of another market: 65 naming it" 65 "$p-o.h5.*market" $p-bad2.h5 \
        pi_merge 1 "$bin" $p-bad2.h5 $p-0.h5 $p-o.h5
}

# Under ASan: two sites of each kernel, merged at 2 ranks, against one run (of the plain
# binary: what is checked here is the merge).
pindex_asan() {
    local bin=$1 tag=$2 p="pi-$2"
    check "pindex ($tag): index parts of 2 sites at 2 and 1 ranks merged at 2 = one run; query" bash -c \
        "pi_run $p-full '$HB' 1 100 pi-c.h5 && pi_run $p-0 '$bin' 2 100 pi-t-0.h5 --partial &&
         pi_run $p-1 '$bin' 1 100 pi-t-1.h5 --partial && pi_merge 2 '$bin' $p-m.h5 $p-0.h5 $p-1.h5 &&
         pi_same $p-m.h5 $p-full.h5 && '$HB' query $p-full.h5 --top 3 wi >$p-q1.txt &&
         '$bin' query $p-m.h5 --top 3 wi >$p-q2.txt && cmp $p-q1.txt $p-q2.txt"
    p="rk-$tag"
    check "risk partial ($tag): parts of 2 sites merged at 2 ranks = one run" bash -c \
        "rk_run $p-full '$HB' 1 4096 pi-m.h5 && rk_run $p-0 '$bin' 1 4096 pi-mk-0.h5 --partial &&
         rk_run $p-1 '$bin' 1 4096 pi-mk-1.h5 --partial &&
         pi_merge 2 '$bin' $p-m.h5 $p-1.h5 $p-0.h5 && rk_same $p-m.h5 $p-full.h5"
}

suite_pindex() {
    local bin=$1 tag=$2
    [ "$tag" = valgrind ] && return 0 # the ASan pass covers the same code, at a fraction of the time
    check "pindex: inputs" pi_inputs
    case $tag in
    plain)
        pindex_index "$bin" "$tag"
        pindex_risk "$bin" "$tag"
        pindex_index_bad "$bin" "$tag"
        ;;
    asan) pindex_asan "$bin" "$tag" ;;
    esac
}
