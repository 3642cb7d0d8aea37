#!/usr/bin/python3
"""Cuts one road network's traffic observations into edge sites by segment, for the
sites-and-centre demo (scripts/demo_sites.sh, docs/partial.md).

    split_sites.py NETWORK.h5 OUT_DIR SITE...

Site k of K (in the order named) gets the rows of segments [k*S/K, (k+1)*S/K), S the
table's n_segments attribute: each site is one road authority's part of a network
numbered as a whole. Rows with a segment id outside [0, S) go to the last site. Every
other dataset and attribute (the event calendar, the segments' tables, n_segments) is
copied to every site, so the sites' partial states merge into what one run over
NETWORK.h5 gives. Writes OUT_DIR/SITE.h5 and prints each site's rows.
"""
import sys

import h5py
import numpy as np


def main():
    net, out_dir, sites = sys.argv[1], sys.argv[2], sys.argv[3:]
    with h5py.File(net, "r") as f:
        obs = f["observations"]
        S = int(obs.attrs["n_segments"])
        seg = obs["segment"][...].astype(np.int64)
        site = np.minimum(seg * len(sites) // S, len(sites) - 1)
        site[(seg < 0) | (seg >= S)] = len(sites) - 1
        for k, name in enumerate(sites):
            rows = np.flatnonzero(site == k)
            with h5py.File(f"{out_dir}/{name}.h5", "w") as g:
                for key in f:
                    if key != "observations":
                        f.copy(f[key], g, name=key)
                o = g.create_group("observations")
                for a, v in obs.attrs.items():
                    o.attrs[a] = v
                for col, d in obs.items():
                    c = o.create_dataset(col, data=d[...][rows], dtype=d.dtype)  # stored as gen stores it
                    for a, v in d.attrs.items():
                        c.attrs[a] = v
            print(f"{name}: {len(rows)} observations of segments [{k * S // len(sites)}, {(k + 1) * S // len(sites)})")


if __name__ == "__main__":
    main()
