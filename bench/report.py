"""Turns bench/results/results.jsonl into report.md (tables, ratios, goals) and bench.png.

  python bench/report.py RESULTS_DIR [--scale full] [--seconds N]

Exits 1 when a peer's answer differed from h5batch's or a tool failed; speed never
fails. The chart needs matplotlib (bench/venv has it); without it the report says so.
"""
import argparse
import datetime
import importlib.metadata
import json
import os
import platform
import subprocess
import sys

UNITS = {"rows": ("rows/s", 1e6, "M"), "readings": ("readings/s", 1e6, "M"), "bytes": ("MB/s", 1e6, ""),
         "scenario-portfolios": ("scenario-portfolios/s", 1e6, "M"),
         "portfolio-backtest-days": ("portfolio-days/s", 1e3, "k")}
PEER_MODULES = {"duckdb": "duckdb", "polars": "polars", "spark": "pyspark", "tantivy": "tantivy", "numpy": "numpy",
                "chdb": "chdb", "pyarrow": "pyarrow", "pandas": "pandas"}


def version(tool):
    if tool == "h5batch":
        try:
            return subprocess.run(["bin/h5batch", "--version"], capture_output=True, text=True).stdout.split()[1]
        except (OSError, IndexError):
            return "?"
    try:
        return importlib.metadata.version(PEER_MODULES[tool])
    except importlib.metadata.PackageNotFoundError:
        return "?"


def fmt_rate(r):
    name, div, suffix = UNITS[r["unit"]]
    rate = r["work"] / r["wall_s"] / div
    per = rate / r.get("cores", 1)
    digits = 1 if rate < 1000 else 0
    return f"{rate:,.{digits}f}{suffix}", f"{per:,.{digits}f}{suffix}", name


def ratio_text(r, rows):
    """How many times faster h5batch is than r on as many cores."""
    ref = find(rows, tool="h5batch", cores=r.get("cores"))
    if r["tool"] == "h5batch" or ref is None:
        return ""
    x = r["wall_s"] / ref["wall_s"]
    return f"h5batch {'>' if r.get('over') else ''}{x:.1f}x faster" if x >= 1 else f"h5batch {1 / x:.1f}x slower"


def table(rows):
    out = ["| tool | cores | wall s | throughput | per core | peak RSS MB | vs h5batch, same cores | same answer |",
           "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        name = f"{r['tool']} {version(r['tool'])}"
        if r.get("skipped"):
            out.append(f"| {r['tool']} | | | | | | | skipped: {r['skipped']} |")
            continue
        if r.get("failed"):
            out.append(f"| {name} | {r['config']} | | | | | | FAILED |")
            continue
        rate, per, unit = fmt_rate(r)
        if r.get("over"):
            rate, per = f"<{rate}", f"<{per}"
        wall = f">{r['wall_s']:.0f} (stopped)" if r.get("over") else f"{r['wall_s']:.2f}"
        if r.get("repeat", 1) > 1:
            wall += f" [{r['wall_min']:.2f}-{r['wall_max']:.2f}]"
        if r.get("inner_s") is not None:
            wall += f" (step {r['inner_s']:.2f})"
        rss = f"{r['rss_mb']:,}" + (" per rank" if r.get("rss_per") == "rank" else "") if "rss_mb" in r else ""
        same = "reference" if r["tool"] == "h5batch" else (
            "not checked" if r.get("over") else "yes" if r.get("agrees") else "**NO**")
        out.append(f"| {name} | {r['config']} | {wall} | {rate} {unit} | {per} | {rss} | {ratio_text(r, rows)} | {same} |")
    return out


def find(recs, **kw):
    for r in recs:
        if all(r.get(k) == v for k, v in kw.items()) and not r.get("failed") and not r.get("skipped"):
            return r
    return None


def goal(lines, what, value, target, met, how):
    if value is None:
        lines.append(f"| {what} | {target} | not measured | | {how} |")
    else:
        lines.append(f"| {what} | {target} | {value} | {'met' if met else '**missed**'} | {how} |")


def goals(recs):
    out = ["| goal | target | measured | | how |", "|---|---|---|---|---|"]
    hb2 = {k: find(recs, kernel=k, tool="h5batch", cores=2) for k in ("traffic", "index", "aggregate")}
    hb1 = {k: find(recs, kernel=k, tool="h5batch", cores=1) for k in ("traffic", "index", "aggregate")}
    for peer, target in (("duckdb", 0.5), ("spark", 0.05)):
        p, h = find(recs, kernel="traffic", tool=peer), hb2["traffic"]
        v = h["wall_s"] / p["wall_s"] if p and h else None
        goal(out, f"traffic time vs {peer}", f"{'<' if p and p.get('over') else ''}{v:.3f}x" if v else None,
             f"<= {target}x", v is not None and v <= target, "h5batch 2 ranks / peer 2 threads")
    for peer, target in (("chdb", 10), ("duckdb", 30)):  # issue 17's goals, whole command at 2 ranks
        p, h = find(recs, kernel="traffic", tool=peer), hb2["traffic"]
        v = p["wall_s"] / h["wall_s"] if p and h else None
        goal(out, f"traffic speed-up over {peer}", f"{'>' if p and p.get('over') else ''}{v:.1f}x" if v else None,
             f">= {target}x", v is not None and v >= target, "peer 2 threads / h5batch 2 ranks, whole command")
    h = hb2["traffic"]
    v = ns_row_core(h["inner_s"], 2, h["work"]) if h and h.get("inner_s") and h.get("work") else None
    goal(out, "traffic step per row per core", f"{v:.1f} ns" if v else None, "<= 10 ns", v is not None and v <= 10,
         "h5batch's step time at 2 ranks x 2 cores / rows")
    st = find(recs, kernel="traffic", what="startup")
    v = st["job_s"] - st["true_s"] if st else None
    goal(out, "10^6-row traffic job beyond mpirun -n 2 /bin/true", f"{v:.3f} s ({st['job_s']:.3f} against "
         f"{st['true_s']:.3f})" if st else None, "<= 0.1 s", v is not None and v <= 0.1,
         "whole command at 2 ranks minus the launch of /bin/true, medians of 7")
    p, h = find(recs, kernel="index", tool="tantivy"), hb2["index"]
    v = p["wall_s"] / h["wall_s"] if p and h else None
    goal(out, "index throughput vs tantivy", f"{v:.2f}x" if v else None, ">= 1.5x", v is not None and v >= 1.5,
         "h5batch 2 ranks / tantivy 2 threads")
    for k, what in (("aggregate", "aggregate"), ("aggregate-dense", "aggregate, dense")):
        peers = [find(recs, kernel=k, tool=t) for t in ("duckdb", "chdb", "polars")]
        peers = [p for p in peers if p and p.get("wall_s") and not p.get("failed")]
        fastest, h = min(peers, key=lambda p: p["wall_s"], default=None), find(recs, kernel=k, tool="h5batch", cores=2)
        v = fastest["wall_s"] / h["wall_s"] if fastest and h else None
        goal(out, f"{what} vs the fastest of DuckDB, chdb, Polars",
             f"{v:.2f}x ({fastest['tool']})" if v else None, ">= 3x", v is not None and v >= 3,
             "fastest peer time (2 threads) / h5batch time (2 ranks)")
    peers = [find(recs, kernel="episodes", tool=t) for t in ("duckdb", "polars")]
    peers = [p for p in peers if p and p.get("wall_s") and not p.get("failed")]
    fastest, h = min(peers, key=lambda p: p["wall_s"], default=None), find(recs, kernel="episodes", tool="h5batch", cores=2)
    v = fastest["wall_s"] / h["wall_s"] if fastest and h else None
    goal(out, "episodes vs the faster of DuckDB, Polars", f"{v:.2f}x ({fastest['tool']})" if v else None, ">= 5x",
         v is not None and v >= 5, "faster peer time (2 threads) / h5batch time (2 ranks)")
    p, h, rd = find(recs, kernel="import", tool="duckdb"), find(recs, kernel="import", tool="h5batch", cores=2), \
        find(recs, kernel="import", what="raw_read")
    hs = h and (h.get("inner_s") or h["wall_s"])
    v = p["wall_s"] / hs if p and h else None
    goal(out, "import vs DuckDB read_csv", f"{v:.2f}x" if v else None, ">= 1x", v is not None and v >= 1,
         "DuckDB time (2 threads) / h5batch import time (2 ranks, its own time: without the MPI start)")
    v = hs / rd["wall_s"] if h and rd and rd["wall_s"] > 0 else None
    goal(out, "import vs page-cache read of the CSV", f"{v:.1f}x" if v else None, "<= 2x", v is not None and v <= 2,
         "h5batch import time (2 ranks, its own) / cat FILE >/dev/null time")
    for part in sorted({r.get("part") for r in recs if r.get("kernel") == "risk" and r.get("part")}):
        for cores in (1, 2):
            p = find(recs, kernel="risk", tool="numpy", part=part, cores=cores)
            h = find(recs, kernel="risk", tool="h5batch", part=part, cores=cores)
            v = p["wall_s"] / h["wall_s"] if p and h else None
            goal(out, f"risk vs numpy: {part}, {cores} core{'s' if cores > 1 else ''}", f"{v:.2g}x" if v else None,
                 ">= 3x", v is not None and v >= 3, "numpy time / h5batch time")
    pairs = [(k, hb1[k], hb2[k]) for k in ("traffic", "index", "aggregate")]
    for part in sorted({r.get("part") for r in recs if r.get("kernel") == "risk" and r.get("part")}):
        pairs.append((f"risk {part}", find(recs, kernel="risk", tool="h5batch", part=part, cores=1),
                      find(recs, kernel="risk", tool="h5batch", part=part, cores=2)))
    for what, a, b in pairs:
        v = a["wall_s"] / b["wall_s"] if a and b else None
        text = f"{v:.2f}x" if v else None
        if v and a.get("inner_s") and b.get("inner_s"):
            text += f" (step {a['inner_s'] / b['inner_s']:.2f}x)"
        goal(out, f"{what}: 1 -> 2 ranks", text, ">= 1.8x", v is not None and v >= 1.8,
             "time at 1 rank / time at 2 ranks (step: h5batch's own time, without the MPI start)")
    bw = find(recs, kernel="machine", what="memory_bandwidth")
    h = hb1["traffic"]
    v = h["bytes"] / h["wall_s"] / 1e9 if h and bw else None
    goal(out, "traffic scan vs memory bandwidth", f"{100 * v / bw['gb_s']:.2g}% ({v:.3g} of {bw['gb_s']} GB/s)"
         if v else None, ">= 50%", v is not None and v >= 0.5 * bw["gb_s"],
         "input bytes / wall at 1 rank, against a 1-core copy")
    return out


def ns_row_core(seconds, cores, rows):
    return float(seconds) * cores / rows * 1e9


def traffic_floors(recs, rows):
    """Lines on h5batch's traffic runs per row and per core, phase by phase, and their
    distance to the read-only floor and the bandwidth floor measured in the same run."""
    out = []
    for r in rows:
        p = str(r.get("phases", "")).split("/")
        if r["tool"] != "h5batch" or len(p) != 4 or not r.get("work"):
            continue
        c, n = r["cores"], r["work"]
        per = ", ".join(f"{name} {ns_row_core(v, c, n):.1f}" for name, v in zip(("setup", "map", "exchange", "finalize"), p))
        step = f"; step {ns_row_core(r['inner_s'], c, n):.1f}" if r.get("inner_s") else ""
        out.append(f"- h5batch {r['config']}, ns per row per core: {per}{step}; whole command "
                   f"{ns_row_core(r['wall_s'], c, n):.1f}.")
        fl = find(recs, kernel="traffic", what="read_floor", ranks=c)
        if fl and fl["wall_s"] > 0:
            out.append(f"  Read-only floor at {c} rank(s) ({fl['bytes']:,} bytes of columns in their stored types): "
                       f"{fl['wall_s']} s; the step is {float(r.get('inner_s') or r['wall_s']) / fl['wall_s']:.1f}x it, "
                       f"the whole command {r['wall_s'] / fl['wall_s']:.1f}x.")
    bf = find(recs, kernel="traffic", what="bandwidth_floor")
    h = find(recs, kernel="traffic", tool="h5batch", cores=2)
    if bf and h and bf["wall_s"] > 0:
        out.append(f"- Bandwidth floor (those bytes moved once at the copy bandwidth of one core): {bf['wall_s']} s; "
                   f"h5batch at 2 ranks, step {float(h.get('inner_s') or h['wall_s']) / bf['wall_s']:.0f}x it.")
    return out + [""] if out else []


def chart(recs, path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "no chart: matplotlib is not installed here (bash bench/setup.sh installs it into bench/venv)"
    groups = []
    for k in ("traffic", "index", "aggregate"):
        groups.append((k, [r for r in recs if r.get("kernel") == k and "wall_s" in r and not r.get("what")]))
    for part in sorted({r.get("part") for r in recs if r.get("kernel") == "risk" and r.get("part")}):
        groups.append((f"risk: {part}", [r for r in recs if r.get("part") == part and "wall_s" in r]))
    groups = [(t, rs) for t, rs in groups if rs]
    if not groups:
        return "no chart: nothing was measured"
    fig, axes = plt.subplots(len(groups), 1, figsize=(8, 1.2 + 0.45 * sum(len(rs) for _, rs in groups) + len(groups)))
    axes = axes if len(groups) > 1 else [axes]
    for ax, (title, rs) in zip(axes, groups):
        labels = [f"{r['tool']} ({r['config']})" for r in rs]
        colors = ["tab:blue" if r["tool"] == "h5batch" else ("tab:red" if r.get("agrees") is False else "tab:gray")
                  for r in rs]
        ax.barh(labels, [r["wall_s"] for r in rs], color=colors)
        ax.set_xlim(0, max(r["wall_s"] for r in rs) * 1.15)  # room for the labels
        ax.invert_yaxis()
        ax.set_title(title, fontsize=10, loc="left")
        for i, r in enumerate(rs):
            ax.text(r["wall_s"], i, f" {'>' if r.get('over') else ''}{r['wall_s']:.1f}s", va="center", fontsize=8)
    axes[-1].set_xlabel("wall seconds (shorter is better; blue: h5batch, grey: peers that agree, red: peers that do not)",
                        fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return f"chart: {path}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("results")
    ap.add_argument("--scale", default="?")
    ap.add_argument("--seconds", type=int, default=0)
    a = ap.parse_args()
    recs = [json.loads(line) for line in open(os.path.join(a.results, "results.jsonl")) if line.strip()]
    cpu = next((ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name")), "?")
    lines = [f"# h5batch benchmark, {datetime.date.today()} (SCALE={a.scale})", "",
             f"{os.cpu_count()} cores ({cpu}), {os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') >> 30} GiB,"
             f" {platform.system()} {platform.release()}; the whole run took {a.seconds} s. Inputs are"
             " page-cached; every tool gets the same 2 cores. Wall time: the whole `mpirun ... h5batch run`"
             " command for h5batch (MPI start included; the median of its runs, [fastest-slowest], and"
             " its own step time), the peer's work from its imports to its answer"
             " (one run each; interpreter start and the comparison excluded). Peak RSS: GNU time, per rank for h5batch"
             " (Spark: the Python driver only, not its JVM).", ""]
    bw = find(recs, kernel="machine", what="memory_bandwidth")
    rd = find(recs, kernel="traffic", what="raw_read")
    if bw:
        lines.append(f"Memory bandwidth: {bw['gb_s']} GB/s ({bw['method']}).")
    if rd:
        lines.append(f"Raw read of the traffic input: {rd['gb_s']} GB/s ({rd['method']}, {rd['bytes']:,} bytes).")
    ri = find(recs, kernel="import", what="raw_read")
    if ri:
        lines.append(f"Page-cache read of the import's CSV: {ri['gb_s']} GB/s (cat, {ri['bytes']:,} bytes).")
    lines.append("")
    sections = [("traffic", "Traffic: count, mean and exact p50/p85/p95 of speed per segment x day x hour", {}),
                ("index", "Index: inverted index with document frequencies (no positions)", {}),
                ("aggregate", "Aggregate: count, sum, mean and exact p50/p95 of one value per meter x month", {}),
                ("aggregate-dense", "Aggregate, dense: the same stats of speed per segment x local day of week x "
                 "local hour (2,000 x 7 x 24)", {}),
                ("episodes", "Episodes: harsh braking (rate of speed below -3 m/s^2) per vehicle, in time order", {}),
                ("import", "Import: one CSV file into a typed table (h5batch: an HDF5 file; peers: memory)", {})]
    parts = sorted({r.get("part") for r in recs if r.get("kernel") == "risk" and r.get("part")})
    sections += [("risk", f"Risk: {p}", {"part": p}) for p in parts]
    for kernel, title, extra in sections:
        rows = [r for r in recs if r.get("kernel") == kernel and not r.get("what")
                and all(r.get(k) == v for k, v in extra.items())]
        if not rows:
            continue
        lines += [f"## {title}", ""] + table(rows) + [""]
        ph = [f"{r['config']}: setup {p[0]}, map {p[1]}, exchange {p[2]}, finalize {p[3]} s"
              for r in rows if r["tool"] == "h5batch" and len(p := str(r.get("phases", "")).split("/")) == 4]
        if ph:
            lines += ["h5batch's phases in the median run: " + "; ".join(ph) + ".", ""]
        if kernel == "traffic":
            lines += traffic_floors(recs, rows)
    sizes = [r for r in recs if r.get("kernel") == "partial" and r.get("what") == "partial_size"]
    merges = [r for r in recs if r.get("kernel") == "partial" and r.get("what") == "merge"]
    if sizes or merges:  # bench/partial.sh (docs/partial.md)
        lines += ["## Partial states and merge", "", "| state | raw input (B) | partial (B) | partial / raw |",
                  "|---|---:|---:|---:|"]
        lines += [f"| {r['of']} | {r['raw_bytes']:,} | {r['partial_bytes']:,} | "
                  f"{100 * r['partial_bytes'] / r['raw_bytes']:.1f}% |" for r in sizes]
        lines += ["", "| merge | merge (s) | one run over all the data (s) | identical |", "|---|---:|---:|---|"]
        lines += [f"| {r['config']} | {r['merge_s']} | {r['run_s']} | {r['agrees']} |" for r in merges] + [""]
    dg = find(recs, kernel="risk", what="dgemm")
    if dg and dg.get("h5batch_gflops"):
        lines += [f"Monte Carlo products: {dg['h5batch_gflops']} GFLOP/s per thread; OpenBLAS DGEMM on one core "
                  f"{dg['openblas_shape_gflops']} GFLOP/s for the same shape, {dg['openblas_square_gflops']} for 2000^3.", ""]
    lines += ["## Goals", ""] + goals(recs) + [""]
    lines.append(chart(recs, os.path.join(a.results, "bench.png")))
    bad = [r for r in recs if r.get("agrees") is False or r.get("failed")]
    if bad:
        lines += ["", "**Disagreements or failures:** " + ", ".join(
            f"{r['kernel']} {r.get('part', '')} {r['tool']} ({r.get('config', '')})" for r in bad)]
    text = "\n".join(lines) + "\n"
    with open(os.path.join(a.results, "report.md"), "w") as fh:
        fh.write(text)
    print(text)
    print(f"report: {os.path.join(a.results, 'report.md')}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
