# The risk kernel's suite (DESIGN.md 4.2); sourced by tests/run_tests.sh, whose helpers
# (tests/lib.sh: check, expect_fail, mpi, write_job; $PY, $W, $ROOT, $LIMIT, $HB) it uses.
# Expected values come from tests/risk/risk_ref.py (numpy/scipy, written from the
# contract), from data with known answers (tests/risk/make_market_case.py plants the
# backtest exceptions) and from published numbers (Basel zones, Kupiec ratios).
# suite_risk BIN TAG runs what the pass TAG (plain, asan, valgrind) has.

# The inputs, made once for every pass.
risk_inputs() {
    [ -f risk-inputs.done ] && return 0
    local c
    for c in planted returns tx nonpd duplicate bad_dates bad_price_nan bad_price_neg bad_shape_prices \
        bad_shape_exposure bad_tx_portfolio bad_tx_asset bad_no_positions; do
        $PY "$ROOT/tests/risk/make_market_case.py" "rk-$c.h5" --case "$c" || return 1
    done
    mpi 2 1 "$HB" gen market -o rk-gen.h5 --assets 40 --days 700 --portfolios 150 --transactions 20k -q &&
        "$HB" gen market -o rk-small.h5 --assets 10 --days 400 --portfolios 5 --seed 3 -q &&
        touch risk-inputs.done
}

# The as_of of the transactions case: a date in its middle, so later trades are left out.
risk_tx_asof() { $PY -c "import h5py; print(h5py.File('rk-tx.h5')['market/dates'][450])"; }

# Every statistic against the numpy/scipy reference, and the planted answers.
risk_reference() {
    local bin=$1 tag=$2
    local p="rk-ref-$tag"
    write_job "$p-planted" risk risk rk-planted.h5 "$p-planted.h5" "job.chunk_rows = 4k" "write_pnl = true" \
        "mc_scenarios = 20k"
    check "risk ($tag): planted case at 2 ranks x 2 threads equals numpy, Monte Carlo by the same stream" bash -c \
        "mpi 2 2 '$bin' run '$p-planted.ini' -q &&
         $PY '$ROOT/tests/risk/risk_ref.py' rk-planted.h5 '$p-planted.h5' --write-pnl --mc-exact"
    check "risk ($tag): planted exceptions are found, zones are Basel's (250 days at 99%)" $PY -c "
import h5py, numpy as np
r = h5py.File('$p-planted.h5')['risk']
x, z = r['backtest_exceptions'][:13], r['traffic_light'][:13]
assert list(x) == list(range(13)), x
want = [0] * 5 + [1] * 5 + [2] * 3  # green 0-4, yellow 5-9, red 10 or more
assert list(z) == want, z
assert r['traffic_light'].dtype == np.uint8 and r['backtest_exceptions'].dtype == np.uint32
"
    check "risk ($tag): Kupiec LR at 250 days, p = 0.01 matches the published values" $PY -c "
import h5py
lr = h5py.File('$p-planted.h5')['risk/kupiec_lr'][:]
for x, want in [(0, 5.03), (4, 0.77), (5, 1.96), (7, 5.50), (10, 12.96)]:
    assert abs(lr[x] - want) < 0.005, (x, lr[x], want)
"
    check "risk ($tag): clustered exceptions fail Christoffersen, spread ones pass" $PY -c "
import h5py
p = h5py.File('$p-planted.h5')['risk/christoffersen_pvalue'][:]
assert p[7] < 1e-6 and p[10] < 1e-3, p  # one cluster of 7, pairs of 10
assert all(p[x] > 0.3 for x in (1, 2, 3, 4, 5, 6)), p
"

    write_job "$p-returns" risk risk rk-returns.h5 "$p-returns.h5" "methods = historical, parametric" \
        "confidence = 0.9, 0.95, 0.99, 0.995" "es_confidence = 0.95, 0.975" "backtest_confidence = 0.95"
    check "risk ($tag): /market/returns input, four VaR and two ES levels equal numpy" bash -c \
        "mpi 1 1 '$bin' run '$p-returns.ini' -q &&
         $PY '$ROOT/tests/risk/risk_ref.py' rk-returns.h5 '$p-returns.h5' --confidence 0.9,0.95,0.99,0.995 \
             --es-confidence 0.95,0.975 --backtest-confidence 0.95"

    local asof
    asof=$(risk_tx_asof)
    write_job "$p-tx" risk risk rk-tx.h5 "$p-tx.h5" "as_of = $asof" "window = 300" "backtest_days = 100" "mc_scenarios = 10k"
    check "risk ($tag): exposures from transactions up to as_of at 3 ranks equal numpy" bash -c \
        "mpi 3 1 '$bin' run '$p-tx.ini' -q &&
         $PY '$ROOT/tests/risk/risk_ref.py' rk-tx.h5 '$p-tx.h5' --as-of $asof --window 300 --backtest-days 100 --mc-exact"

    write_job "$p-gen-e" risk risk rk-gen.h5 "$p-gen-e.h5" "positions = exposure" "mc_scenarios = 10k" "window = 300"
    check "risk ($tag): generated market equals numpy" bash -c \
        "mpi 2 1 '$bin' run '$p-gen-e.ini' -q &&
         $PY '$ROOT/tests/risk/risk_ref.py' rk-gen.h5 '$p-gen-e.h5' --window 300 --positions exposure --mc-exact"
    write_job "$p-gen-t" risk risk rk-gen.h5 "$p-gen-t.h5" "positions = transactions" "mc_scenarios = 10k" "window = 300"
    check "risk ($tag): the transactions path gives the exposure path's numbers" bash -c \
        "mpi 3 1 '$bin' run '$p-gen-t.ini' -q && $PY -c \"
import h5py, numpy as np
a, b = h5py.File('$p-gen-e.h5')['risk'], h5py.File('$p-gen-t.h5')['risk']
assert a.attrs['positions'] == 'exposure' and b.attrs['positions'] == 'transactions'
for k in a:
    assert np.array_equal(a[k][...], b[k][...]), k
\""
}

# Monte Carlo against the parametric model, fat tails, singular covariances.
risk_montecarlo() {
    local bin=$1 tag=$2
    local p="rk-mc-$tag"
    write_job "$p-normal" risk risk rk-small.h5 "$p-normal.h5" "window = 250" "backtest_days = 0" "mc_scenarios = 1M"
    check "risk ($tag): Monte Carlo normal VaR and ES within 1% of parametric at 10^6 scenarios" bash -c \
        "mpi 2 1 '$bin' run '$p-normal.ini' -q &&
         $PY '$ROOT/tests/risk/risk_ref.py' rk-small.h5 '$p-normal.h5' --window 250 --backtest-days 0 --mc-tol 0.01"
    write_job "$p-t" risk risk rk-small.h5 "$p-t.h5" "window = 250" "backtest_days = 0" "mc_scenarios = 1M" \
        "mc_distribution = t" "mc_dof = 5"
    check "risk ($tag): Student-t ES above normal ES, t VaR above normal at 99%" bash -c \
        "mpi 2 1 '$bin' run '$p-t.ini' -q && $PY -c \"
import h5py
n, t = h5py.File('$p-normal.h5')['risk'], h5py.File('$p-t.h5')['risk']
assert (t['es_montecarlo'][:] > 1.05 * n['es_montecarlo'][:]).all()
assert (t['var_montecarlo'][:, 1] > n['var_montecarlo'][:, 1]).all()
assert t.attrs['mc_distribution'] == 't' and t.attrs['mc_dof'] == 5
\""
    write_job "$p-nonpd" risk risk rk-nonpd.h5 "$p-nonpd.h5" "window = 40" "backtest_days = 0" "mc_scenarios = 300k"
    check "risk ($tag): more assets than window days: eigen factor, Monte Carlo still matches parametric" bash -c \
        "mpi 2 1 '$bin' run '$p-nonpd.ini' -q &&
         h5dump -a /risk/mc_factor '$p-nonpd.h5' | grep -q eigen &&
         $PY '$ROOT/tests/risk/risk_ref.py' rk-nonpd.h5 '$p-nonpd.h5' --window 40 --backtest-days 0 --mc-tol 0.03"
    write_job "$p-dup" risk risk rk-duplicate.h5 "$p-dup.h5" "window = 200" "backtest_days = 0" "mc_scenarios = 300k"
    check "risk ($tag): a duplicated asset: eigen factor, Monte Carlo still matches parametric" bash -c \
        "mpi 1 2 '$bin' run '$p-dup.ini' -q &&
         h5dump -a /risk/mc_factor '$p-dup.h5' | grep -q eigen &&
         $PY '$ROOT/tests/risk/risk_ref.py' rk-duplicate.h5 '$p-dup.h5' --window 200 --backtest-days 0 --mc-tol 0.03"
}

# Bit-identical outputs at 1-4 ranks and 1-2 threads, any chunking, and after kills.
risk_ranks() {
    local bin=$1 tag=$2 n th
    write_job rk-rk risk risk rk-gen.h5 rk-rk-1-1.h5 "job.chunk_rows = 2k" "positions = transactions" \
        "mc_scenarios = 20k" "window = 300" "mc_distribution = t" "write_pnl = true"
    check "risk ranks: 1 rank, 1 thread" mpi 1 1 "$bin" run rk-rk.ini -q
    for n in 1 2 3 4; do
        for th in 1 2; do
            [ "$n$th" = 11 ] && continue
            check "risk ranks: $n ranks x $th threads is bit-identical" bash -c \
                "mpi $n $th '$bin' run rk-rk.ini -q --set risk.output=rk-rk-$n-$th.h5 \
                 --set job.run_dir=rk-rk-$n-$th.run && h5diff --exclude-path /provenance rk-rk-1-1.h5 rk-rk-$n-$th.h5"
        done
    done
    check "risk ranks: chunk_rows 10k gives the bits of 2k" bash -c \
        "mpi 3 2 '$bin' run rk-rk.ini -q --set job.chunk_rows=10k \
         --set risk.output=rk-rk-10k.h5 --set job.run_dir=rk-rk-10k.run &&
         h5diff --exclude-path /provenance rk-rk-1-1.h5 rk-rk-10k.h5"
    local every="--set job.checkpoint_interval=0.001s --set job.run_dir=rk-kill.run --set risk.output=rk-kill.h5"
    H5BATCH_FAULT_SLOW_CHUNK_MS=3 H5BATCH_FAULT_RANK=1 H5BATCH_FAULT_KILL_AFTER_CHUNKS=3 \
        mpi 3 1 "$bin" run rk-rk.ini -q $every >"$W/log" 2>&1
    check "risk ranks: rank 1 of 3 killed after 3 chunks left a checkpoint" grep -q ckpt- rk-kill.run/manifest
    check "risk ranks: resumed at 2 ranks x 2 threads, bit-identical (checkpointed top-k sets and records)" bash -c \
        "mpi 2 2 '$bin' run rk-rk.ini $every >rk-kill.log 2>&1 &&
         grep -q 'resuming from checkpoint' rk-kill.log && h5diff --exclude-path /provenance rk-rk-1-1.h5 rk-kill.h5"
    check "gen market: same file at 1 and 3 ranks" bash -c \
        "mpi 1 1 '$bin' gen market -o rk-g1.h5 --assets 30 --days 300 --portfolios 20 \
         --transactions 5k -q && mpi 3 2 '$bin' gen market -o rk-g3.h5 --assets 30 --days 300 --portfolios 20 \
         --transactions 5k -q && h5diff rk-g1.h5 rk-g3.h5"
    check "gen market: weekdays ascending, positive prices, exposure = transactions' positions x last price" $PY -c "
import h5py, numpy as np
f = h5py.File('rk-g1.h5')
d = f['market/dates'][:]
days = np.array([np.datetime64(f'{x // 10000:04d}-{x // 100 % 100:02d}-{x % 100:02d}') for x in d])
assert (np.diff(d) > 0).all() and np.is_busday(days).all()
p = f['market/prices'][:]
assert p.shape == (300, 30) and (p > 0).all() and np.isfinite(p).all()
t = f['transactions']
pos = np.zeros((20, 30))
np.add.at(pos, (t['portfolio'][:], t['asset'][:]), t['quantity'][:])
assert np.array_equal(pos * p[-1], f['portfolios/exposure'][:])
r = p[1:] / p[:-1] - 1
assert np.corrcoef(r.T)[np.triu_indices(30, 1)].mean() > 0.1  # a factor structure (independent assets: about 0)
assert np.median(((r - r.mean(0)) ** 4).mean(0) / r.var(0) ** 2) > 3.5  # fat tails (normal: 3)
"
}

# Bad input and bad options: the contract's exit codes, one error line, no output left.
risk_bad() {
    local bin=$1 tag=$2 n
    local asof
    asof=$(risk_tx_asof)
    for n in 1 3; do
        local p="rk-bad-$tag-$n"
        local o="$p.h5"
        write_job "$p-dates" risk risk rk-bad_dates.h5 "$o"
        expect_fail "risk bad input ($tag, $n ranks): dates not ascending -> 65" 65 \
            "/market/dates: dates are not strictly ascending: row 5" "$o" mpi $n 1 "$bin" run "$p-dates.ini"
        write_job "$p-nan" risk risk rk-bad_price_nan.h5 "$o"
        expect_fail "risk bad input ($tag, $n ranks): NaN price -> 65 with row and column" 65 \
            "/market/prices: row 600 (date [0-9]*), column 3: nan is not a positive finite price" "$o" \
            mpi $n 1 "$bin" run "$p-nan.ini"
        write_job "$p-neg" risk risk rk-bad_price_neg.h5 "$o"
        expect_fail "risk bad input ($tag, $n ranks): negative price -> 65 with row and column" 65 \
            "row 10 (date [0-9]*), column 2: -5 is not a positive finite price" "$o" mpi $n 1 "$bin" run "$p-neg.ini"
        write_job "$p-shp" risk risk rk-bad_shape_prices.h5 "$o"
        expect_fail "risk bad input ($tag, $n ranks): prices and dates disagree -> 65" 65 \
            "shape mismatch: 750 rows, but /market/dates has 751" "$o" mpi $n 1 "$bin" run "$p-shp.ini"
        write_job "$p-she" risk risk rk-bad_shape_exposure.h5 "$o"
        expect_fail "risk bad input ($tag, $n ranks): exposure columns and assets disagree -> 65" 65 \
            "/portfolios/exposure: shape mismatch: 13 columns, but /market/prices has 14 assets" "$o" \
            mpi $n 1 "$bin" run "$p-she.ini"
        write_job "$p-txp" risk risk rk-bad_tx_portfolio.h5 "$o" "window = 300" "backtest_days = 100"
        expect_fail "risk bad input ($tag, $n ranks): portfolio id out of range -> 65" 65 \
            "/transactions/portfolio: row 17: portfolio id 9 is out of range \[0, 5)" "$o" mpi $n 1 "$bin" run "$p-txp.ini"
        write_job "$p-txa" risk risk rk-bad_tx_asset.h5 "$o" "window = 300" "backtest_days = 100"
        expect_fail "risk bad input ($tag, $n ranks): asset id out of range -> 65" 65 \
            "/transactions/asset: row 17: asset id 6 is out of range \[0, 6)" "$o" mpi $n 1 "$bin" run "$p-txa.ini"
        write_job "$p-nopos" risk risk rk-bad_no_positions.h5 "$o"
        expect_fail "risk bad input ($tag, $n ranks): no positions -> 65" 65 \
            "neither /portfolios/exposure nor /transactions" "$o" mpi $n 1 "$bin" run "$p-nopos.ini"
        write_job "$p-hist" risk risk rk-planted.h5 "$o" "window = 501"
        expect_fail "risk bad input ($tag, $n ranks): too little history -> 78 with days present and needed" 78 \
            "too little history .*750 return days up to as_of [0-9]*, but window 501 + backtest_days 250 need 751" "$o" \
            mpi $n 1 "$bin" run "$p-hist.ini"
        write_job "$p-conf" risk risk rk-planted.h5 "$o" "confidence = 0.95, 1.5"
        expect_fail "risk bad input ($tag, $n ranks): confidence outside (0, 1) -> 78 with its line" 78 \
            "$p-conf.ini:8: .*confidence = 1.5 is outside (0, 1)" "$o" mpi $n 1 "$bin" run "$p-conf.ini"
        rm -rf ./rk-*.run
    done
    local p="rk-bad-$tag"
    local o="$p.h5"
    write_job "$p-es" risk risk rk-planted.h5 "$o" "es_confidence = 1"
    expect_fail "risk bad input ($tag): es_confidence = 1 -> 78" 78 "es_confidence = 1 is outside (0, 1)" "$o" \
        "$bin" run "$p-es.ini"
    write_job "$p-dup" risk risk rk-planted.h5 "$o" "confidence = 0.95, 0.99, 0.990"
    expect_fail "risk bad input ($tag): a confidence level listed twice -> 78 with its line" 78 \
        "$p-dup.ini:8: .*confidence: 0.99 is listed twice" "$o" "$bin" run "$p-dup.ini"
    write_job "$p-esdup" risk risk rk-planted.h5 "$o" "es_confidence = 0.975, 0.975"
    expect_fail "risk bad input ($tag): an es_confidence level listed twice -> 78 with its line" 78 \
        "$p-esdup.ini:8: .*es_confidence: 0.975 is listed twice" "$o" "$bin" run "$p-esdup.ini"
    write_job "$p-bt" risk risk rk-planted.h5 "$o" "backtest_confidence = 0"
    expect_fail "risk bad input ($tag): backtest_confidence = 0 -> 78" 78 "backtest_confidence = 0 is outside (0, 1)" \
        "$o" "$bin" run "$p-bt.ini"
    write_job "$p-asof" risk risk rk-tx.h5 "$o" "as_of = 20210109" "window = 2" "backtest_days = 0"
    expect_fail "risk bad input ($tag): as_of not a market date -> 78" 78 "as_of = 20210109 is not a date of rk-tx.h5:/market/dates (the last before it is 20210108)" "$o" \
        "$bin" run "$p-asof.ini"
    write_job "$p-meth" risk risk rk-planted.h5 "$o" "methods = historical, garch"
    expect_fail "risk bad input ($tag): unknown method -> 78" 78 "unknown method 'garch'" "$o" "$bin" run "$p-meth.ini"
    write_job "$p-dof" risk risk rk-planted.h5 "$o" "mc_dof = 2"
    expect_fail "risk bad input ($tag): mc_dof = 2 -> 78" 78 "mc_dof = 2" "$o" "$bin" run "$p-dof.ini"
    write_job "$p-txr" risk risk rk-returns.h5 "$o" "positions = transactions"
    expect_fail "risk bad input ($tag): transactions without prices -> 65" 65 "need /market/prices" "$o" \
        "$bin" run "$p-txr.ini"
    expect_fail "risk bad input ($tag): gen market --dof 1 -> 64" 64 "--dof needs" "" \
        "$bin" gen market -o rk-never.h5 --dof 1
    expect_fail "risk bad input ($tag): gen market of more prices than memory (135 GB) -> 64 before allocating" 64 \
        "gen market: --days 130000 x --assets 130000 (and --portfolios 20) would need about 135.2 GB per rank" rk-huge.h5 \
        mpi 1 1 "$bin" gen market -o rk-huge.h5 --days 130000 --assets 130000
    rm -rf ./rk-*.run
}

# The example job files and the documented snippet on small data.
risk_jobs() {
    local bin=$1 tag=$2
    mkdir -p rk-demo
    cp rk-gen.h5 rk-demo/market.h5
    check "risk jobs: jobs/risk.ini runs" bash -c "mpi 2 1 '$bin' run \
        '$ROOT/jobs/risk.ini' -q --set risk.input=rk-demo/market.h5 --set risk.output=rk-demo/risk.h5 \
        --set risk.mc_scenarios=20k --set risk.window=300 --set job.run_dir=rk-demo/risk.run"
    check "risk jobs: jobs/risk-from-transactions.ini: both steps, the same numbers" bash -c \
        "mpi 2 1 '$bin' run '$ROOT/jobs/risk-from-transactions.ini' -q \
         --set book.input=rk-demo/market.h5 --set book.output=rk-demo/book.h5 --set book.window=300 \
         --set rebuilt.input=rk-demo/market.h5 --set rebuilt.output=rk-demo/rebuilt.h5 --set rebuilt.window=300 \
         --set job.run_dir=rk-demo/tx.run && $PY -c \"
import h5py, numpy as np
a, b = h5py.File('rk-demo/book.h5')['risk'], h5py.File('rk-demo/rebuilt.h5')['risk']
assert a.attrs['positions'] == 'exposure' and b.attrs['positions'] == 'transactions'
assert all(np.array_equal(a[k][...], b[k][...]) for k in a)
\""
    $PY - "$ROOT/docs/risk.md" >rk-snippet.py <<'PYEOF'
import re, sys
text = open(sys.argv[1]).read()
block = text.split("<!-- snippet: risk-summary", 1)[1]
print(re.search(r"```python\n(.*?)```", block, re.S).group(1))
PYEOF
    sed -i 's#demo/#rk-demo/#g' rk-snippet.py
    check "risk jobs: the summary snippet of docs/risk.md prints five portfolios" bash -c \
        "$PY rk-snippet.py >rk-snippet.out && [ \$(grep -cE '^ *[0-9]+ +[0-9]+ ' rk-snippet.out) = 5 ] &&
         grep -qE 'green|yellow|red' rk-snippet.out"
}

# Memory errors valgrind sees (bin runs h5batch under valgrind): every method, the
# Student-t sampler, transactions and the backtest at 1 and 2 ranks with the same bits;
# the generator; an error path.
risk_valgrind() {
    local bin=$1
    write_job rk-vg risk risk rk-small.h5 rk-vg-1.h5 "job.chunk_rows = 1k" "window = 100" "backtest_days = 50" \
        "mc_scenarios = 3k" "mc_distribution = t" "write_pnl = true"
    check "valgrind: risk job at 1 rank" mpi 1 1 "$bin" run rk-vg.ini -q
    check "valgrind: risk job at 2 ranks x 2 threads, the same bits" bash -c \
        "mpi 2 2 '$bin' run rk-vg.ini -q --set risk.output=rk-vg-2.h5 --set job.run_dir=rk-vg-2.run &&
         h5diff --exclude-path /provenance rk-vg-1.h5 rk-vg-2.h5"
    write_job rk-vgtx risk risk rk-tx.h5 rk-vgtx-1.h5 "as_of = $(risk_tx_asof)" "window = 100" "backtest_days = 20" \
        "methods = historical, parametric"
    check "valgrind: risk from transactions at 1 and 2 ranks, the same bits" bash -c \
        "mpi 1 1 '$bin' run rk-vgtx.ini -q && mpi 2 1 '$bin' run rk-vgtx.ini -q --set risk.output=rk-vgtx-2.h5 \
         --set job.run_dir=rk-vgtx-2.run && h5diff --exclude-path /provenance rk-vgtx-1.h5 rk-vgtx-2.h5"
    local g="gen market --assets 8 --days 120 --portfolios 4 --transactions 500 -q"
    check "valgrind: gen market at 2 ranks, the file of 1 rank" bash -c \
        "mpi 2 1 '$bin' $g -o rk-vg-gen.h5 && '$HB' $g -o rk-vg-gen-1.h5 && h5diff rk-vg-gen-1.h5 rk-vg-gen.h5"
    write_job rk-vgbad risk risk rk-bad_price_nan.h5 rk-vg-bad.h5
    check "valgrind: a bad risk input at 2 ranks -> 65" bash -c "mpi 2 1 '$bin' run rk-vgbad.ini -q; [ \$? = 65 ]"
}

# Names of the assets and portfolios as the coordinates' values (DESIGN.md 4, 4.2): string
# dimension scales of /risk, the same bits at 1 and 3 ranks, every number as without names.
risk_names() {
    local bin=$1 tag=$2 p="rk-nm-$2"
    $PY - "$p" >"$W/log" 2>&1 <<'PYEOF'
import shutil, sys, h5py, numpy as np
p = sys.argv[1]
assets = ["ÆON %d" % a if a % 3 else "T%d" % a for a in range(10)]  # vlen UTF-8, of several lengths
for name, edit in [("named", None), ("bad-len", "len"), ("bad-num", "num")]:
    shutil.copy("rk-small.h5", "%s-%s.h5" % (p, name))
    with h5py.File("%s-%s.h5" % (p, name), "a") as f:
        f["market"].create_dataset("assets", data=np.array(assets[:7] if edit == "len" else assets, dtype=object),
                                   dtype=h5py.string_dtype())
        f["portfolios/names"] = np.arange(5) if edit == "num" else np.array([b"fund-%d" % i for i in range(5)], dtype="S8")
PYEOF
    local opts=("window = 200" "backtest_days = 100" "mc_scenarios = 5k")
    write_job "$p-1" risk risk "$p-named.h5" "$p-1.h5" "${opts[@]}"
    write_job "$p-0" risk risk rk-small.h5 "$p-0.h5" "${opts[@]}"
    if [ "$tag" != plain ]; then # the ASan pass (time budget): names read and written from 2 ranks
        check "risk names ($tag): asset and portfolio names are the coordinates, 2 ranks" bash -c \
            "mpi 2 1 '$bin' run $p-1.ini -q && $PY -c \"
import h5py
f, g = h5py.File('$p-named.h5'), h5py.File('$p-1.h5')['risk']
assert [a.decode() for a in g['asset'][:]] == list(f['market/assets'].asstr()[:])
assert list(g['portfolio'][:]) == list(f['portfolios/names'][:])
\""
        return 0
    fi
    check "risk names ($tag): asset and portfolio names are the coordinates, 1 and 3 ranks bit-identical" bash -c \
        "mpi 1 1 '$bin' run $p-1.ini -q && mpi 3 1 '$bin' run $p-1.ini -q --set risk.output=$p-3.h5 \
         --set job.run_dir=$p-3.run && h5diff --exclude-path /provenance $p-1.h5 $p-3.h5 && mpi 1 1 '$bin' run $p-0.ini -q &&
         $PY -c \"
import h5py, numpy as np, xarray as xr
f, g = h5py.File('$p-named.h5'), h5py.File('$p-1.h5')['risk']
assets, names = list(f['market/assets'].asstr()[:]), list(f['portfolios/names'].asstr()[:])
assert [a.decode() for a in g['asset'][:]] == assets and [n.decode() for n in g['portfolio'][:]] == names
assert g['asset'].attrs['CLASS'] == b'DIMENSION_SCALE' and g['exposure'].dims[1][0].name == '/risk/asset'
assert g['var_historical'].dims[0][0].name == '/risk/portfolio'
ds = xr.open_dataset('$p-1.h5', group='risk', engine='h5netcdf')
assert [v.decode() for v in ds.portfolio.values] == names and ds.exposure.dims == ('portfolio', 'asset')
assert not [d for d in ds.dims if str(d).startswith('phony')]
# every number is the one of the same input without names
h = h5py.File('$p-0.h5')['risk']
for k in h:
    if k not in ('asset', 'portfolio'):
        assert np.array_equal(h[k][:], g[k][:], equal_nan=True), k
assert list(h['portfolio'][:]) == list(range(5))
\""
    check "gen market --names ($tag): A0000.., P000000.. as strings, the same file at 1 and 2 ranks" bash -c \
        "mpi 1 1 '$bin' gen market -o $p-g1.h5 --assets 12 --days 30 --portfolios 3 --names -q &&
         mpi 2 1 '$bin' gen market -o $p-g2.h5 --assets 12 --days 30 --portfolios 3 --names -q &&
         h5diff $p-g1.h5 $p-g2.h5 && $PY -c \"
import h5py
f = h5py.File('$p-g1.h5')
assert list(f['market/assets'][:]) == [b'A%04d' % a for a in range(12)], f['market/assets'][:]
assert list(f['portfolios/names'][:]) == [b'P000000', b'P000001', b'P000002']
\""
    write_job "$p-len" risk risk "$p-bad-len.h5" "$p-bad.h5" "${opts[@]}"
    expect_fail "risk names ($tag): 7 asset names for 10 assets -> 65" 65 "/market/assets has 7 names for 10 assets" \
        "$p-bad.h5" mpi 2 1 "$bin" run "$p-len.ini"
    write_job "$p-num" risk risk "$p-bad-num.h5" "$p-bad.h5" "${opts[@]}"
    expect_fail "risk names ($tag): numbers as portfolio names -> 65" 65 "/portfolios/names holds numbers; names are strings" \
        "$p-bad.h5" "$bin" run "$p-num.ini"
    rm -rf ./rk-nm-*.run
}

suite_risk() {
    local bin=$1 tag=$2
    if ! risk_inputs >"$W/log" 2>&1; then
        not_ok "risk ($tag): making the inputs"
        return
    fi
    case $tag in
    plain | asan)
        risk_reference "$bin" "$tag"
        risk_montecarlo "$bin" "$tag"
        [ "$tag" = plain ] && risk_ranks "$bin" "$tag"
        risk_bad "$bin" "$tag"
        risk_names "$bin" "$tag"
        [ "$tag" = plain ] && risk_jobs "$bin" "$tag"
        ;;
    valgrind) risk_valgrind "$bin" ;;
    esac
}
