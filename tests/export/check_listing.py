#!/usr/bin/python3
"""Checks `h5batch kernels NAME --json` against the kernel's documentation and against
the files the kernel writes, so that the listing cannot drift from the code: every name
the docs give for an input or output is listed; every dataset of a real output is
described, with its type and its dimension scales' names; every described output that
is always written (not optional, no <NAME> in its path) is in the file.

    check_listing.py BIN KERNEL[:OUTPUT.h5,...]...
"""
import json
import re
import subprocess
import sys

import h5py

# the names docs/NAME.md and DESIGN.md 4 give for what the kernel reads and writes
DOCS = {
    "traffic": (["time", "segment", "speed", "/segments/free_flow_speed", "/calendar/event_days"],
                ["count", "mean_speed", "speed_p<P>", "free_flow_speed", "travel_time_index", "segment_count",
                 "events/count", "events/mean_speed", "events/speed_p<P>"]),
    "risk": (["/market/dates", "/market/prices", "/market/returns", "/market/assets", "/portfolios/exposure",
              "/portfolios/names", "date", "portfolio", "asset", "quantity"],
             ["var_historical", "var_parametric", "var_montecarlo", "es_historical", "es_parametric",
              "es_montecarlo", "mean_pnl", "volatility", "exposure", "backtest_exceptions", "kupiec_lr",
              "kupiec_pvalue", "christoffersen_lr", "christoffersen_pvalue", "traffic_light", "pnl"]),
    "index": (["/corpus/text", "/corpus/offsets", "/corpus/doc_id"],
              ["terms", "term_offsets", "df", "cf", "postings_offsets", "postings_doc", "postings_tf", "doc_length",
               "doc_id", "positions_offsets", "positions"]),
    "aggregate": (["<key>", "<value>", "<time>"], ["<value>_<stat>", "<key>"]),
    "bill": (["meter", "district", "month", "consumption"],
             ["meter", "district", "month", "consumption", "consumption_milli", "tier_<K>", "fixed_charge", "total",
              "districts/accounts", "districts/total"]),
    "oee": (["batch", "time", "planned_s", "stop_s", "total", "good", "ideal_cycle_s"],
            ["oee", "availability", "performance", "quality", "meets_target", "total_count", "good_count", "start",
             "end"]),
}
def pattern(name):
    return re.compile("^" + re.sub(r"<[^>]+>", "[^/]+", re.escape(name).replace(r"\<", "<").replace(r"\>", ">")) + "$")


NUMPY = {"float64": "float64", "uint64": "uint64", "int64": "int64", "int32": "int32", "uint32": "uint32",
         "uint8": "uint8", "time": "int64"}

def check(binary, kernel, files):
    """Asserts that the listing of kernel matches its docs and its output files."""
    r = subprocess.run([binary, "kernels", kernel, "--json"], capture_output=True, text=True)
    assert r.returncode == 0, (kernel, "h5batch kernels --json failed", r.returncode, r.stderr)
    listing = json.loads(r.stdout)
    assert listing["name"] == kernel
    inputs, outputs = listing["inputs"], listing["outputs"]

    want_in, want_out = DOCS[kernel]
    names_in = [d["name"] for d in inputs]
    names_out = [d["name"] for d in outputs]
    for n in want_in:
        assert n in names_in, (kernel, "input not listed", n, names_in)
    for n in want_out:
        assert any(o.endswith("/" + n) for o in names_out), (kernel, "output not listed", n, names_out)
    for d in inputs + outputs:
        assert d["kind"] and d["help"], (kernel, "incomplete description", d)
    pats = [(pattern(d["name"]), d) for d in outputs]
    for path in files:
        with h5py.File(path, "r") as f:
            found = []
            f.visititems(lambda n, o: found.append(("/" + n, o)) if isinstance(o, h5py.Dataset) else None)
            for name, ds in found:
                if name.startswith("/provenance"):
                    continue
                match = [d for p, d in pats if p.match(name)]
                assert match, (kernel, path, "dataset not described", name)
                d = match[0]
                concrete = [NUMPY[k] for k in d["kind"].split("|") if k in NUMPY]
                if ds.dtype.kind in "iuf" and concrete:
                    assert ds.dtype.name in concrete, (kernel, name, "type", ds.dtype.name, d["kind"])
                if all("<" not in x and "+" not in x for x in d["dims"]):
                    assert len(d["dims"]) == ds.ndim, (kernel, name, "dims", d["dims"], ds.shape)
                    for k in range(ds.ndim):
                        if len(ds.dims[k]):
                            s = ds.dims[k][0].attrs.get("NAME", b"")
                            s = s.decode() if isinstance(s, bytes) else str(s)
                            if s.startswith("This is a netCDF dimension but not a netCDF variable."):
                                s = ds.dims[k][0].name.rsplit("/", 1)[-1]  # a named dimension, no values
                            assert s == d["dims"][k], (kernel, name, "dimension", k, s, d["dims"])
            have = {n for n, _ in found}
            for d in outputs:
                if not d["optional"] and "<" not in d["name"]:
                    assert d["name"] in have, (kernel, path, "described output missing", d["name"])
    print(f"ok: {kernel}: {len(inputs)} inputs, {len(outputs)} outputs, {len(files)} files")


for arg in sys.argv[2:]:
    name, _, outs = arg.partition(":")
    check(sys.argv[1], name, [x for x in outs.split(",") if x])
