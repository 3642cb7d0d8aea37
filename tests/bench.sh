# The benchmark harness at SCALE=tiny (sourced by run_tests.sh), so that make bench does
# not rot: every kernel runs at 1 and 2 ranks beside whatever peers are installed (none
# are installed for CI; /usr/bin/python3's numpy and scipy make the risk peer, and
# bench/venv, where it exists, adds the others), every peer that runs must agree, and
# the report must hold every section. Then the harness must catch a disagreement: a
# peer's check against a doctored h5batch output, and a report over a failed comparison,
# both exit 1.
suite_bench() {
    local d=$W/bench py=/usr/bin/python3
    [ -x "$ROOT/bench/venv/bin/python" ] && py=$ROOT/bench/venv/bin/python
    mkdir -p "$d"
    check "bench: make bench SCALE=tiny runs every kernel and every installed peer agrees" \
        env SCALE=tiny BENCH_DATA="$d/data" BENCH_RESULTS="$d/res" PEER_TIMEOUT=600 \
        timeout -k 5 1200 bash "$ROOT/bench/run.sh"
    check "bench: the report has every kernel, the goals and a chart line" $PY - "$d/res" <<'PYEOF'
import json, sys
res = sys.argv[1]
text = open(f"{res}/report.md").read()
for part in ("## Traffic", "## Index", "## Aggregate", "## Aggregate, dense", "## Episodes", "## Import", "## Risk: Monte Carlo", "## Risk: historical", "## Goals",
             "traffic time vs duckdb", "index throughput vs tantivy", "traffic scan vs memory bandwidth"):
    assert part in text, f"report.md lacks {part!r}"
assert "chart: " in text or "no chart: matplotlib" in text
recs = [json.loads(l) for l in open(f"{res}/results.jsonl")]
hb = {(r["kernel"], r.get("part"), r["cores"]) for r in recs if r.get("tool") == "h5batch" and r["wall_s"] > 0}
want = {(k, None, c) for k in ("traffic", "index", "aggregate", "aggregate-dense", "episodes", "import") for c in (1, 2)}
want |= {("risk", p, c) for p in ("Monte Carlo", "historical + parametric + backtest") for c in (1, 2)}
assert hb == want, hb ^ want
ran = [r for r in recs if r.get("tool") not in (None, "h5batch") and not r.get("skipped")]
assert all(r.get("agrees") is True for r in ran), ran
assert any(r["tool"] == "numpy" for r in ran), "the numpy risk peer did not run"
bw = [r for r in recs if r.get("what") == "memory_bandwidth"]
assert bw and bw[0]["gb_s"] > 0.1, bw
PYEOF
    # A doctored answer: one historical VaR moved by one part in 10^6 must fail the peer.
    local r=$d/data/risk hist
    hist=$(ls "$r"/hist-*.h5 | grep -v out | head -1)
    cp "$r/hist-out-1.h5" "$d/doctored.h5"
    $PY -c "
import h5py
with h5py.File('$d/doctored.h5', 'r+') as f:
    f['risk/var_historical'][3, 1] *= 1 + 1e-6" >"$W/log" 2>&1
    check "bench: numpy's check catches a VaR 1e-6 off (exit 1, names it)" bash -c \
        "$py '$ROOT/bench/peers_risk.py' hist '$hist' 59 '$d/doctored.h5' 2>&1 >'$d/doctored.out';
         [ \$? = 1 ] && grep -q '\"agrees\": false' '$d/doctored.out'" 
    $PY -c "
import h5py
with h5py.File('$d/doctored.h5', 'r+') as f:
    f['risk/var_historical'][3, 1] /= 1 + 1e-6
    f['risk/backtest_exceptions'][5] += 1" >"$W/log" 2>&1
    check "bench: numpy's check catches one exception count off" bash -c \
        "$py '$ROOT/bench/peers_risk.py' hist '$hist' 59 '$d/doctored.h5' >/dev/null 2>'$d/doctored.err';
         [ \$? = 1 ] && grep -q 'backtest_exceptions(5,)' '$d/doctored.err'"
    mkdir -p "$d/bad"
    { grep -v '"tool": "numpy"' "$d/res/results.jsonl"
      echo '{"kernel": "risk", "part": "Monte Carlo", "tool": "numpy", "config": "1 thread", "cores": 1, "wall_s": 1.0, "work": 10, "unit": "scenario-portfolios", "agrees": false}'
    } >"$d/bad/results.jsonl"
    check "bench: a disagreement fails the report (exit 1) and is named in it" bash -c \
        "$PY '$ROOT/bench/report.py' '$d/bad' >/dev/null; [ \$? = 1 ] && grep -q 'Disagreements or failures.*risk Monte Carlo numpy' '$d/bad/report.md'"
}
