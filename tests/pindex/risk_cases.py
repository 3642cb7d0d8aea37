#!/usr/bin/python3
"""Site files of a market (h5batch gen market) for the risk kernel's partial tests.

    risk_cases.py key IN.h5 PORTFOLIO PREFIX   PREFIX-0.h5: every trade of PORTFOLIO;
                                               PREFIX-1.h5: the others (in row order)
    risk_cases.py fractional IN.h5 OUT.h5      IN with one quantity made 0.5

Everything but /transactions is copied unchanged, so that the sites share the market.
"""
import sys

import h5py
import numpy as np


def write(inp, out, rows=None, edit=None):
    with h5py.File(inp, "r") as f, h5py.File(out, "w") as g:
        for k, v in f.attrs.items():
            g.attrs[k] = v
        for key in f:
            if key != "transactions":
                f.copy(f[key], g, name=key)
        t, u = f["transactions"], g.create_group("transactions")
        for k, v in t.attrs.items():
            u.attrs[k] = v
        for key, v in t.items():
            data = v[:] if rows is None else v[:][rows]
            if edit and key in edit:
                data = edit[key](data)
            u.create_dataset(key, data=data, dtype=v.dtype)


def main():
    cmd = sys.argv[1]
    if cmd == "key":
        inp, p, prefix = sys.argv[2], int(sys.argv[3]), sys.argv[4]
        with h5py.File(inp, "r") as f:
            port = f["transactions/portfolio"][:]
        assert (port == p).sum() > 0, "the portfolio has no trades"
        write(inp, prefix + "-0.h5", np.flatnonzero(port == p))
        write(inp, prefix + "-1.h5", np.flatnonzero(port != p))
    elif cmd == "fractional":
        def half(q):
            q = q.astype(np.float64)
            q[0] = 0.5
            return q
        write(sys.argv[2], sys.argv[3], edit={"quantity": half})
    else:
        sys.exit("usage: risk_cases.py key|fractional ...")


if __name__ == "__main__":
    main()
