# The index kernel's suite (DESIGN.md 4.3) and `h5batch query`; sourced by
# tests/run_tests.sh, whose helpers (tests/lib.sh: check, expect_fail, mpi, write_job;
# $PY, $W, $ROOT, $LIMIT, $HB) it uses. Expected values come from tests/index/index_ref.py,
# written from the contract with Python's own Unicode database, the pure-Python Snowball
# stemmers and BM25's formulas, never from an earlier output of h5batch.
# suite_index BIN TAG runs what the pass TAG (plain, asan, valgrind) has.

# The inputs, made once for every pass: hand-made cases and a generated corpus.
ix_inputs() {
    [ -f ix-inputs.done ] && return 0
    local c
    for c in edge every empty bad_order bad_last bad_first missing_text float_text; do
        $PY "$ROOT/tests/index/make_corpus_case.py" "ix-$c.h5" --case "$c" || return 1
    done
    # the default seed: the demo's vocabulary, whose frequent words the queries below use
    mpi 2 2 "$HB" gen corpus -o ix-gen.h5 --docs 6000 --mean-bytes 350 --vocab 20000 -q || return 1
    # the edge documents with string ids and titles, as bytes and as strings (names_ref.py)
    $PY "$ROOT/tests/index/names_ref.py" make . || return 1
    # stop words of a file: comments, several words a line, case and compatibility forms
    printf '# a stop list\nHello world | a comment\n\tSTRASSE\n\n\xef\xac\x81nance # the ligature folds\n' >ix-stop.txt
    touch ix-inputs.done
}

# ix_run NAME BIN RANKS THREADS CHUNK_ROWS INPUT [extra lines]: an index job into NAME.h5.
ix_run() {
    local name=$1 bin=$2 n=$3 th=$4 cr=$5 in=$6
    shift 6
    write_job "$name" index index "$in" "$name.h5" "$@"
    mpi "$n" "$th" "$bin" run "$name.ini" -q --force --set job.threads="$th" --set job.chunk_rows="$cr"
}

# Every array, type and attribute against the Python reference.
index_reference() {
    local bin=$1 tag=$2 p="ix-ref-$2"
    check "index ($tag): edge cases at 1 rank, 7 chunks, positions, equal the reference" bash -c \
        "ix_run $p-edge '$bin' 1 1 4 ix-edge.h5 'positions = true' &&
         $PY '$ROOT/tests/index/index_ref.py' index ix-edge.h5 $p-edge.h5 --positions"
    check "index ($tag): edge cases, english stems and stop words, 12-byte tokens, 3 ranks x 2 threads" bash -c \
        "ix_run $p-stem '$bin' 3 2 3 ix-edge.h5 'positions = true' 'stemmer = english' \
         'stopwords = english' 'max_token_bytes = 12' &&
         $PY '$ROOT/tests/index/index_ref.py' index ix-edge.h5 $p-stem.h5 --positions --stemmer english \
             --stopwords english --max-token-bytes 12"
    check "index ($tag): Snowball's own outputs (running -> run, easily -> easili) and no stop words indexed" \
        $PY -c "
import h5py
ix = h5py.File('$p-stem.h5')['index']
t, o = ix['terms'][:].tobytes(), ix['term_offsets'][:]
terms = {t[o[i]:o[i + 1]].decode() for i in range(len(o) - 1)}
for w in ['run', 'runner', 'easili', 'fair', 'generous', 'cooper', 'hello', 'world']:
    assert w in terms, w
for w in ['running', 'runs', 'easily', 'the', 'and', 'of', 'very']:
    assert w not in terms, w
assert ix.attrs['stemmer'] == 'english' and ix.attrs['tokens_stopwords'] >= 4
"
    check "index ($tag): stop words from a file (comments, case and compatibility forms), 2 ranks" bash -c \
        "ix_run $p-file '$bin' 2 1 5 ix-edge.h5 'stopwords = ix-stop.txt' &&
         $PY '$ROOT/tests/index/index_ref.py' index ix-edge.h5 $p-file.h5 --stopwords ix-stop.txt &&
         $PY -c \"
import h5py
assert h5py.File('$p-file.h5')['index/stopwords'][:].tobytes() == b'finance\\nhello\\nstrasse\\nworld\\n'
\""
    check "index ($tag): a term in every document: df = N, at 2 ranks x 2 threads" bash -c \
        "ix_run $p-every '$bin' 2 2 200 ix-every.h5 &&
         $PY '$ROOT/tests/index/index_ref.py' index ix-every.h5 $p-every.h5 && $PY -c \"
import h5py
ix = h5py.File('$p-every.h5')['index']
t, o = ix['terms'][:].tobytes(), ix['term_offsets'][:]
i = [t[o[k]:o[k + 1]] for k in range(len(o) - 1)].index(b'omnia')
assert ix['df'][i] == ix.attrs['n_docs'] == 3000 and 'doc_id' not in ix
\""
    check "index ($tag): a corpus of no documents at 3 ranks: empty arrays, offsets [0]" bash -c \
        "ix_run $p-empty '$bin' 3 1 16k ix-empty.h5 'positions = true' &&
         $PY '$ROOT/tests/index/index_ref.py' index ix-empty.h5 $p-empty.h5 --positions"
    check "index ($tag): generated corpus (scripts, invalid UTF-8, empty documents), 2 ranks x 2 threads" bash -c \
        "ix_run $p-gen '$bin' 2 2 150 ix-gen.h5 'positions = true' &&
         $PY '$ROOT/tests/index/index_ref.py' index ix-gen.h5 $p-gen.h5 --positions && $PY -c \"
import h5py
a = h5py.File('$p-gen.h5')['index'].attrs
assert a['invalid_bytes'] > 0 and a['empty_docs'] > 0 and a['tokens_too_long'] > 0, dict(a)
\""
}

# Bit-identical index at 1-4 ranks and 1-2 threads, and for any chunking.
index_ranks() {
    local bin=$1 tag=$2 n th
    write_job ix-rk index index ix-gen.h5 ix-rk-1-1.h5 "job.chunk_rows = 150" "positions = true" "stemmer = english" \
        "stopwords = english"
    check "index ranks: 1 rank, 1 thread" mpi 1 1 "$bin" run ix-rk.ini -q --force
    for n in 1 2 3 4; do
        for th in 1 2; do
            [ "$n$th" = 11 ] && continue
            check "index ranks: $n ranks x $th threads is bit-identical" bash -c \
                "mpi $n $th '$bin' run ix-rk.ini -q --set index.output=ix-rk-$n-$th.h5 \
                 --set job.run_dir=ix-rk-$n-$th.run --set job.threads=$th &&
                 h5diff --exclude-path /provenance ix-rk-1-1.h5 ix-rk-$n-$th.h5"
        done
    done
    check "index ranks: one chunk of all documents gives the bits of 150 documents a chunk" bash -c \
        "mpi 3 1 '$bin' run ix-rk.ini -q --set job.chunk_rows=100k \
         --set index.output=ix-rk-100k.h5 --set job.run_dir=ix-rk-100k.run &&
         h5diff --exclude-path /provenance ix-rk-1-1.h5 ix-rk-100k.h5"
    check "gen corpus: the same file at 1 rank and at 3 ranks x 2 threads" bash -c \
        "mpi 1 1 '$bin' gen corpus -o ix-g1.h5 --docs 3000 --seed 9 -q &&
         mpi 3 2 '$bin' gen corpus -o ix-g3.h5 --docs 3000 --seed 9 -q && h5diff ix-g1.h5 ix-g3.h5"
    check "gen corpus: log-normal lengths, Zipfian words, other scripts, empty and invalid documents" $PY -c "
import h5py, numpy as np
f = h5py.File('ix-gen.h5')['corpus']
off, text = f['offsets'][:], f['text'][:].tobytes()
assert off.dtype == np.uint64 and f['text'].dtype == np.uint8 and f['doc_id'].dtype == np.int64
n = np.diff(off.astype(np.int64))
assert len(n) == 6000 and off[0] == 0 and off[-1] == len(text)
assert 0.002 < (n == 0).mean() < 0.03, (n == 0).mean()  # about 1% empty
logs = np.log(n[n > 0])
assert abs(logs.std() - 1.0) < 0.1 and abs(np.exp(logs.mean() + 0.5) / 350 - 1) < 0.1  # log-normal, sigma 1
bad = sum(1 for i in range(6000) if text[off[i]:off[i + 1]].decode('utf-8', 'replace').count('\ufffd'))
assert 1 <= bad < 60, bad
s = text.decode('utf-8', 'replace')
for lo, hi in [(0x370, 0x3ff), (0x400, 0x4ff), (0x900, 0x97f), (0x4e00, 0x9fff), (0x3040, 0x309f), (0x1f600, 0x1f64f)]:
    assert any(lo <= ord(c) <= hi for c in s), hex(lo)
words = s.lower().split()
_, counts = np.unique(words, return_counts=True)
c = np.sort(counts)[::-1]
assert 0.6 < c[9] / c[0] * 10 ** 1.1 < 1.6, (c[0], c[9])  # rank 10 about 10^-1.1 of rank 1
"
}

# BM25 rankings against the Python reference, phrases, options and errors.
index_query() {
    local bin=$1 tag=$2 p="ix-q-$2"
    check "query ($tag): index the generated corpus with positions" bash -c \
        "ix_run $p-pos '$bin' 2 1 500 ix-gen.h5 'positions = true'"
    # frequent, rare and absent words, phrases (with a gap and repeated), options
    local queries=("wi" "gifif grozi" "bryd fo ru wi mep zzzabsent" '"gifif bryd"' '"mep wi" za' \
        '"grozi grozi"' 'Ｇｉｆｉｆ WI')
    local q qa i=0
    for q in "${queries[@]}"; do
        i=$((i + 1))
        # shell-quoted, so that the double quotes of a phrase reach both programs
        qa=$(printf '%q ' $q)
        check "query ($tag): [$q] equals the reference's BM25 ranking (top 25)" bash -c \
            "'$bin' query $p-pos.h5 --json --top 25 $qa >$p-$i.json &&
             $PY '$ROOT/tests/index/index_ref.py' query $p-pos.h5 $p-$i.json --top 25 --min-hits 1 $qa"
    done
    check "query ($tag): --k1 0.9 --b 0.4 --top 100 equal the reference" bash -c \
        "'$bin' query $p-pos.h5 --json --top 100 --k1 0.9 --b 0.4 gifif '\"luh za\"' >$p-k.json &&
         $PY '$ROOT/tests/index/index_ref.py' query $p-pos.h5 $p-k.json --top 100 --k1 0.9 --b 0.4 --min-hits 100 \
             gifif '\"luh za\"'"
    check "query ($tag): text lines are 'rank doc score', doc being doc_id, as in the JSON" bash -c "
        '$bin' query $p-pos.h5 --top 7 gifif grozi >$p-text.out && $PY -c \"
import json
hits = json.load(open('$p-2.json'))['hits'][:7]
lines = [l.split() for l in open('$p-text.out') if not l.startswith('    ')]
assert [int(l[0]) for l in lines] == list(range(1, 8))
assert [int(l[1]) for l in lines] == [h['doc'] for h in hits]
assert all(abs(float(l[2]) - h['score']) < 1e-6 for l, h in zip(lines, hits))
assert any(h['doc'] != h['doc_number'] for h in hits)
\""
    check "query ($tag): stemmed index: 'runs' finds the documents with 'running'; stop words alone find nothing" \
        bash -c "ix_run $p-stem '$bin' 1 1 16k ix-edge.h5 'stemmer = english' 'stopwords = english' &&
         '$bin' query $p-stem.h5 --json RUNS >$p-s.json && $PY '$ROOT/tests/index/index_ref.py' query $p-stem.h5 $p-s.json RUNS &&
         $PY -c \"
import json
h = json.load(open('$p-s.json'))
assert h['terms'] == ['run'] and [x['doc_number'] for x in h['hits']] == [24], h
\" && [ -z \"\$('$bin' query $p-stem.h5 the and of)\" ]"
    check "query ($tag): the edge index finds Greek, Devanagari and CJK words and a soft-hyphenated one" bash -c \
        "ix_run $p-edge '$bin' 1 1 16k ix-edge.h5 'positions = true' &&
         for w in ΣΊΣΥΦΟΣ नमस्ते 東京 cooperate Straße '\"alpha beta\"'; do
             '$bin' query $p-edge.h5 --json \"\$w\" >$p-e.json &&
             $PY '$ROOT/tests/index/index_ref.py' query $p-edge.h5 $p-e.json --min-hits 1 \"\$w\" >/dev/null || exit 1
         done"
    check "query ($tag): an index without format_version (an older h5batch's) is read, with the same hits" bash -c "
        cp $p-pos.h5 $p-old.h5 && $PY -c \"
import h5py
with h5py.File('$p-old.h5', 'a') as f:
    assert int(f['index'].attrs['format_version']) == 1
    del f['index'].attrs['format_version']
\" && '$bin' query $p-old.h5 --json --top 25 gifif grozi >$p-old.json && $PY -c \"
import json
assert json.load(open('$p-old.json'))['hits'] == json.load(open('$p-2.json'))['hits']
\""
    cp "$p-pos.h5" "$p-v2.h5" && $PY -c "
import h5py, numpy as np
with h5py.File('$p-v2.h5', 'a') as f:
    f['index'].attrs['format_version'] = np.int64(2)
"
    expect_fail "query ($tag): an index of an unknown format_version -> 65" 65 "index format version 2 is unknown" "" \
        "$bin" query "$p-v2.h5" gifif
    expect_fail "query ($tag): a phrase on an index without positions -> 64" 64 "has no positions" "" \
        "$bin" query "$p-stem.h5" '"running runs"'
    expect_fail "query ($tag): a missing index -> 66" 66 "nowhere.h5: no such file" "" "$bin" query nowhere.h5 word
    expect_fail "query ($tag): a file that is not an index -> 65" 65 "not an index" "" "$bin" query ix-edge.h5 word
    expect_fail "query ($tag): --top 0 -> 64" 64 "--top needs an integer" "" "$bin" query "$p-pos.h5" --top 0 word
    expect_fail "query ($tag): no words -> 64" 64 "usage: h5batch query" "" "$bin" query "$p-pos.h5"
    expect_fail "query ($tag): an unbalanced quote -> 64" 64 "unbalanced double quote" "" \
        "$bin" query "$p-pos.h5" '"gifif'
}

# The corpus as users write it (text as strings, string ids, titles, `table`, `columns`),
# the names kept in /docs, named dimensions, and what query shows of each hit, against
# names_ref.py (h5py, xarray, Python's UTF-8); the bits of /index as the bytes layout's.
index_names() {
    local bin=$1 tag=$2 p="ix-nm-$2"
    local cols="columns = text:body, doc_id:key, title:headline"
    local q="alpha hello Straße cooperate xyz ΣΊΣΥΦΟΣ"
    if [ "$tag" != plain ]; then
        # the ASan pass (time budget): the paths that read and write strings and snippets,
        # whose results the plain pass checks against the reference
        check "index names ($tag): both layouts (2 ranks, 1 rank) give one /index; query shows ids, titles, snippets" \
            bash -c "ix_run $p-b '$bin' 2 1 4 ix-nb.h5 'positions = true' 'table = /library' &&
             ix_run $p-s '$bin' 1 1 4 ix-ns.h5 'positions = true' 'table = /library' '$cols' &&
             h5diff --exclude-path /provenance --exclude-path /docs $p-b.h5 $p-s.h5 &&
             '$bin' query $p-b.h5 --json --top 30 $q '\"alpha beta\"' >$p-b.json &&
             '$bin' query $p-s.h5 --top 30 $q >$p-s.out && grep -q 'snippet\": \"Hello, World' $p-b.json &&
             grep -q '^    Hello, World' $p-s.out"
        return 0
    fi
    check "index names ($tag): text as bytes, string ids and titles at 2 ranks: /docs, named dims, /index as the reference's" \
        bash -c "ix_run $p-b '$bin' 2 1 4 ix-nb.h5 'positions = true' 'table = /library' &&
         $PY '$ROOT/tests/index/names_ref.py' index ix-nb.h5 $p-b.h5 && $PY -c \"
import h5py, numpy as np
# NUL bytes became spaces, which separate tokens alike: the edge corpus's index, but for doc_id
a, b = h5py.File('ix-ref-$tag-edge.h5')['index'], h5py.File('$p-b.h5')['index']
names = [k for k in a if k != 'doc_id' and a[k].attrs.get('CLASS') != b'DIMENSION_SCALE']
assert len(names) >= 10, names
for k in names:
    assert a[k].dtype == b[k].dtype and np.array_equal(a[k][:], b[k][:]), k
\""
    check "index names ($tag): one vlen string per document, fixed ids, vlen titles through columns, 1 and 3 ranks" \
        bash -c "ix_run $p-s '$bin' 1 1 4 ix-ns.h5 'positions = true' 'table = /library' '$cols' &&
         ix_run $p-s3 '$bin' 3 2 4 ix-ns.h5 'positions = true' 'table = /library' '$cols' &&
         h5diff --exclude-path /provenance $p-s.h5 $p-s3.h5 &&
         $PY '$ROOT/tests/index/names_ref.py' index ix-ns.h5 $p-s.h5 &&
         h5diff --exclude-path /provenance --exclude-path /docs $p-b.h5 $p-s.h5"
    check "query ($tag): doc ids, titles and snippets of the hits equal the reference, both layouts" bash -c \
        "'$bin' query $p-b.h5 --json --top 30 $q '\"alpha beta\"' >$p-b.json &&
         $PY '$ROOT/tests/index/names_ref.py' query ix-nb.h5 $p-b.h5 $p-b.json &&
         '$bin' query $p-s.h5 --json --top 30 $q >$p-s.json &&
         $PY '$ROOT/tests/index/names_ref.py' query ix-ns.h5 $p-s.h5 $p-s.json"
    check "query ($tag): text: 'rank doc score  title' and the snippet indented, no terminal escapes" bash -c "
        '$bin' query $p-s.h5 --top 30 $q >$p-s.out && ! grep -q \$'\\x1b' $p-s.out && $PY -c \"
import json
hits = json.load(open('$p-s.json'))['hits']
lines = open('$p-s.out').read().splitlines()
heads = [l for l in lines if not l.startswith('    ')]
assert len(heads) == len(hits), (len(heads), len(hits))
for l, h in zip(heads, hits):
    r, doc, score = l.split(' ', 3)[:3]
    assert (int(r), doc) == (h['rank'], h['doc']) and abs(float(score) - h['score']) < 1e-6, l
    assert l.endswith('  ' + h['title']) or not h['title'], (l, h['title'])
assert sum(1 for l in lines if l.startswith('    ')) == sum(1 for h in hits if h['snippet'])
\""
    check "query ($tag): no hits: nothing on stdout, 'no document matches' on stderr, exit 0; JSON n_hits 0" bash -c "
        '$bin' query $p-s.h5 zzzabsent >$p-none.out 2>$p-none.err && [ ! -s $p-none.out ] &&
        grep -qx 'h5batch: query: no document matches' $p-none.err &&
        '$bin' query $p-s.h5 --json zzzabsent | $PY -c 'import json, sys; h = json.load(sys.stdin); assert h[\"n_hits\"] == 0 and h[\"hits\"] == []'"
    check "query ($tag): a moved corpus: a warning, hits without snippets; --corpus gives them back" bash -c "
        cp ix-ns.h5 $p-moved.h5 && ix_run $p-m '$bin' 1 1 4 $p-moved.h5 'table = /library' '$cols' && rm $p-moved.h5 &&
        '$bin' query $p-m.h5 --json alpha >$p-m.json 2>$p-m.err && grep -q 'warning: query: no snippets' $p-m.err &&
        $PY -c \"import json; h = json.load(open('$p-m.json'))['hits']; assert h and h[0]['snippet'] is None and h[0]['title']\" &&
        '$bin' query $p-m.h5 --json --corpus ix-ns.h5 alpha >$p-m2.json 2>$p-m2.err && [ ! -s $p-m2.err ] &&
        $PY -c \"import json; h = json.load(open('$p-m2.json'))['hits']; assert h[0]['snippet'].startswith('alpha beta')\""
    check "query ($tag): --help lists the options, --corpus among them; h5batch kernels index lists table and columns" \
        bash -c "'$bin' query --help | grep -q -- '--corpus' && '$bin' query -h | grep -q '^usage: h5batch query INDEX.h5' &&
         '$bin' kernels index | grep -q '^  columns '"
    local o="$p-bad.h5"
    write_job "$p-num" index index ix-nbad-num.h5 "$o" "table = /library" "columns = text:body"
    expect_fail "index names ($tag): a numeric title -> 65" 65 "/library/title holds numbers; titles are strings" "$o" \
        mpi 2 1 "$bin" run "$p-num.ini"
    write_job "$p-len" index index ix-nbad-len.h5 "$o" "table = /library" "columns = text:body"
    expect_fail "index names ($tag): 3 titles for 25 documents -> 65" 65 "/library/title has 3 entries for 25 documents" \
        "$o" "$bin" run "$p-len.ini"
    write_job "$p-col" index index ix-ns.h5 "$o" "columns = body:text"
    expect_fail "index names ($tag): columns maps an unknown name -> 78 with its line" 78 \
        "$p-col.ini:8: .*columns maps 'body', which is not a column of the index" "$o" "$bin" run "$p-col.ini"
    rm -rf ./ix-nm-*.run
}

# A damaged index (issue 18 item 9): every offsets array and attribute is checked when
# query opens it, 65 naming what is wrong, never a read out of bounds (the asan pass).
index_corrupt() {
    local bin=$1 tag=$2 p="ix-cor-$2" c
    ix_run "$p" "$bin" 1 1 16k ix-edge.h5 'positions = true' >"$W/log" 2>&1
    local -A want=(
        [positions_inner]="/index/positions_offsets\[48\] = 1000000 is past the end of /index/positions"
        [term_offsets_zero]="/index/term_offsets\[1\] = 0 is not above the element before it"
        [term_offsets_past]="/index/term_offsets\[91\] = .* is past the end of /index/terms"
        [postings_decrease]="/index/postings_offsets\[2\] = 0 is less than the element before it"
        [n_docs_negative]="/index attribute n_docs = -5 is out of range"
        [n_docs_huge]="/index attribute n_docs = 4611686018427387904 is out of range"
        [n_terms_wrong]="/index/term_offsets has 92 elements, expected 4"
        [positions_array]="/index: attribute 'positions' is an array; one integer is expected"
        [n_docs_array]="/index: attribute 'n_docs' is an array; one integer is expected"
        [stemmer_unknown]="/index attribute stemmer = 'klingon' is not a stemmer this h5batch knows")
    $PY "$ROOT/tests/index/names_ref.py" corrupt "$p.h5" "$p" >>"$W/log" 2>&1
    for c in "${!want[@]}"; do
        expect_fail "query ($tag): a damaged index ($c) -> 65" 65 "${want[$c]}" "" "$bin" query "$p-$c.h5" hello '"alpha beta"'
    done
}

# Bad input and bad options: the contract's exit codes, one error line, no output left.
index_bad() {
    local bin=$1 tag=$2 n
    for n in 1 3; do
        local p="ix-bad-$tag-$n"
        local o="$p.h5"
        write_job "$p-order" index index ix-bad_order.h5 "$o"
        expect_fail "index bad input ($tag, $n ranks): offsets decrease -> 65 with the first bad index" 65 \
            "ix-bad_order.h5: /corpus/offsets\[3\] = 5 is less than offsets\[2\] = 12" "$o" mpi $n 1 "$bin" run "$p-order.ini"
        write_job "$p-last" index index ix-bad_last.h5 "$o"
        expect_fail "index bad input ($tag, $n ranks): offsets[N] is not the text length -> 65" 65 \
            "/corpus/offsets\[3\] = 24 is not the length of /corpus/text (25 bytes)" "$o" mpi $n 1 "$bin" run "$p-last.ini"
        write_job "$p-first" index index ix-bad_first.h5 "$o"
        expect_fail "index bad input ($tag, $n ranks): a negative first offset -> 65" 65 \
            "/corpus/offsets\[0\] = -3 is negative" "$o" mpi $n 1 "$bin" run "$p-first.ini"
        write_job "$p-text" index index ix-missing_text.h5 "$o"
        expect_fail "index bad input ($tag, $n ranks): no /corpus/text -> 65 naming it" 65 \
            "ix-missing_text.h5:/corpus/text: missing dataset" "$o" mpi $n 1 "$bin" run "$p-text.ini"
        write_job "$p-float" index index ix-float_text.h5 "$o"
        expect_fail "index bad input ($tag, $n ranks): float text -> 65" 65 \
            "/corpus/text has 4-byte float elements" "$o" mpi $n 1 "$bin" run "$p-float.ini"
        write_job "$p-stem" index index ix-edge.h5 "$o" "stemmer = klingon"
        expect_fail "index bad input ($tag, $n ranks): unknown stemmer -> 78 with its line" 78 \
            "$p-stem.ini:8: .*unknown stemmer 'klingon' (none, or a Snowball language: .*english" "$o" \
            mpi $n 1 "$bin" run "$p-stem.ini"
        write_job "$p-stop" index index ix-edge.h5 "$o" "positions = true" "stopwords = no/such/list.txt"
        expect_fail "index bad input ($tag, $n ranks): missing stop word file -> 78 with its line" 78 \
            "$p-stop.ini:9: .*stopwords = no/such/list.txt: No such file" "$o" mpi $n 1 "$bin" run "$p-stop.ini"
        rm -rf ./ix-bad-*.run
    done
    local p="ix-bad-$tag"
    write_job "$p-max" index index ix-edge.h5 "$p.h5" "max_token_bytes = 0"
    expect_fail "index bad input ($tag): max_token_bytes = 0 -> 78" 78 "max_token_bytes = 0 is out of range" "$p.h5" \
        "$bin" run "$p-max.ini"
    write_job "$p-key" index index ix-edge.h5 "$p.h5" "stemmers = english"
    expect_fail "index bad input ($tag): unknown key -> 78 with a suggestion" 78 "did you mean 'stemmer'" "$p.h5" \
        "$bin" run "$p-key.ini"
    write_job "$p-none" index index nowhere.h5 "$p.h5"
    expect_fail "index bad input ($tag): missing input file -> 66" 66 "nowhere.h5: no such file" "$p.h5" \
        "$bin" run "$p-none.ini"
    expect_fail "index bad input ($tag): gen corpus --zipf -1 -> 64" 64 "--zipf needs a number" "" \
        "$bin" gen corpus -o ix-never.h5 --zipf -1
    rm -rf ./ix-bad-*.run
}

# The example job file, the kernel listing, the h5py snippet of docs/index.md, and
# checkpoints under faults: kills, damage, signals, resume at other rank counts.
index_jobs() {
    local bin=$1 tag=$2
    check "index: h5batch kernels index lists the options" bash -c \
        "'$bin' kernels index | grep -q stemmer && '$bin' kernels index | grep -q max_token_bytes &&
         '$bin' kernels | grep -q '^index'"
    mkdir -p ix-demo
    mpi 2 1 "$bin" gen corpus -o ix-demo/corpus.h5 --docs 4000 --force -q # the demo's seed: its words
    check "index: jobs/index.ini runs, its index has positions and stems" bash -c \
        "mpi 2 1 '$bin' run '$ROOT/jobs/index.ini' -q \
         --set index.input=ix-demo/corpus.h5 --set index.output=ix-demo/index.h5 --set job.run_dir=ix-demo/index.run &&
         $PY '$ROOT/tests/index/index_ref.py' index ix-demo/corpus.h5 ix-demo/index.h5 --positions --stemmer english \
             --stopwords english"
    $PY - "$ROOT/docs/index.md" >ix-snippet.py <<'PYEOF'
import re, sys
text = open(sys.argv[1]).read()
block = text.split("<!-- snippet: index-postings", 1)[1]
print(re.search(r"```python\n(.*?)```", block, re.S).group(1))
PYEOF
    sed -i 's#demo/index.h5#ix-demo/index.h5#' ix-snippet.py
    check "index: the h5py snippet of docs/index.md lists a term's postings" bash -c \
        "$PY ix-snippet.py >ix-snippet.out && $PY -c \"
import h5py
ix = h5py.File('ix-demo/index.h5')['index']
lines = open('ix-snippet.out').read().split('\n')
head = lines[0].split()
assert head[:3] == ['gifif:', 'df', '=='] and int(head[3]) > 100, lines[0]
rows = [l.split() for l in lines[1:] if l.strip()]
assert len(rows) == 5 and all(int(r[2]) >= 1 for r in rows), rows
ids = set(ix['doc_id'][:].tolist())
assert all(int(r[1]) in ids for r in rows), rows
\""
    # the job file names the stop word file; the step's fingerprint covers its content
    # (issue 18 item 12), so the checkpoint is of a different job
    printf 'gifif wi\n' >ix-sw.txt
    write_job ix-sw index index ix-gen.h5 ix-sw.h5 "job.chunk_rows = 150" "job.checkpoint_interval = 0.001s" \
        "stopwords = ix-sw.txt"
    rm -rf ix-sw.run ix-sw.h5
    H5BATCH_FAULT_SLOW_CHUNK_MS=3 H5BATCH_FAULT_KILL_AFTER_CHUNKS=5 mpi 2 1 "$bin" run ix-sw.ini -q >"$W/log" 2>&1
    printf 'gifif mep\n' >ix-sw.txt
    expect_fail "index: a checkpoint made with another stop word file is refused (78)" 78 \
        "checkpoint of a different job" ix-sw.h5 mpi 2 1 "$bin" run ix-sw.ini
    write_job ix-ft index index ix-gen.h5 ix-ft.h5 "job.chunk_rows = 150" "positions = true"
    fault_suite index ix-ft.ini index ix-ft.h5 "stemmer=english"
}

# Memory errors valgrind sees (bin runs h5batch under valgrind): the tokenizer with
# stems, stop words and positions on every script of the edge cases, at 1 and 2 ranks
# with the same bits; `query` (terms, a phrase, JSON); the generator; an error path.
index_valgrind() {
    local bin=$1
    write_job ix-vg index index ix-edge.h5 ix-vg-1.h5 "job.chunk_rows = 5" "positions = true" "stemmer = english" \
        "stopwords = english" "max_token_bytes = 12"
    check "valgrind: index job at 1 rank" mpi 1 1 "$bin" run ix-vg.ini -q
    check "valgrind: index job at 2 ranks x 2 threads, the same bits" bash -c \
        "mpi 2 2 '$bin' run ix-vg.ini -q --set index.output=ix-vg-2.h5 --set job.run_dir=ix-vg-2.run &&
         h5diff --exclude-path /provenance ix-vg-1.h5 ix-vg-2.h5"
    check "valgrind: query, text and JSON, words and a phrase" bash -c \
        "timeout -k 5 $LIMIT '$bin' query ix-vg-1.h5 --top 5 RUNS hello >ix-vg-q.out &&
         timeout -k 5 $LIMIT '$bin' query ix-vg-1.h5 --json '\"alpha beta\"' Straße 東京 >ix-vg-q.json &&
         [ -s ix-vg-q.out ] && $PY -c \"import json; assert json.load(open('ix-vg-q.json'))['hits']\""
    check "valgrind: gen corpus at 2 ranks, the file of 1 rank" bash -c \
        "mpi 2 1 '$bin' gen corpus -o ix-vg-gen.h5 --docs 300 -q &&
         '$HB' gen corpus -o ix-vg-gen-1.h5 --docs 300 -q && h5diff ix-vg-gen-1.h5 ix-vg-gen.h5"
    write_job ix-vgbad index index ix-bad_order.h5 ix-vg-bad.h5
    check "valgrind: a bad corpus at 2 ranks -> 65" bash -c "mpi 2 1 '$bin' run ix-vgbad.ini -q; [ \$? = 65 ]"
}

suite_index() {
    local bin=$1 tag=$2
    if ! ix_inputs >"$W/log" 2>&1; then
        not_ok "index ($tag): making the inputs"
        return
    fi
    case $tag in
    plain | asan)
        index_reference "$bin" "$tag"
        [ "$tag" = plain ] && index_ranks "$bin" "$tag"
        index_query "$bin" "$tag"
        index_bad "$bin" "$tag"
        index_names "$bin" "$tag"
        index_corrupt "$bin" "$tag"
        [ "$tag" = plain ] && index_jobs "$bin" "$tag"
        ;;
    valgrind) index_valgrind "$bin" ;;
    esac
}

export -f ix_run
