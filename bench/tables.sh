#!/usr/bin/env bash
# Reading a column of a table in each layout docs/tables.md accepts (bench/table_read.c,
# the calls the kernels make): a group of columns, an h5py compound dataset of 3 fields,
# pandas format="table" with data_columns=True and without (values_block_N), pandas
# format="fixed" (a column of a 2-D block) and a gzip group; ROWS rows of time (int64),
# segment (int64), speed (float64), page-cached. Not part of make check.
#   ROWS=10000000 bash bench/tables.sh
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
ROWS=${ROWS:-10000000}
D=${BENCH_DATA:-/tmp/h5batch-bench}/tables
mkdir -p "$D"
cd "$ROOT"
make -s bin/h5batch
objs=$(ls build/src/core/*.o build/io/*.o)
mpicc -O2 -std=c17 -D_GNU_SOURCE -Iinclude -Isrc -I. $(pkg-config --cflags hdf5-openmpi) -fopenmp \
    -o "$D/table_read" bench/table_read.c $objs $(pkg-config --libs hdf5-openmpi libxxhash libdeflate libisal libutf8proc) -lhdf5_hl -lz -lm -ldl
if [ ! -f "$D/done-$ROWS" ]; then
    /usr/bin/python3 - "$D" "$ROWS" <<'PY'
import sys, warnings, numpy as np, pandas as pd, h5py
warnings.simplefilter("ignore")
d, n = sys.argv[1], int(sys.argv[2])
rng = np.random.default_rng(1)
t = 1704067200 + np.arange(n, dtype=np.int64)
seg = rng.integers(0, 2000, n)
spd = rng.uniform(0, 150, n)
with h5py.File(f"{d}/group.h5", "w") as f:
    for k, v in (("time", t), ("segment", seg), ("speed", spd)):
        f.create_dataset(f"obs/{k}", data=v, chunks=(1 << 16,))
        f.create_dataset(f"gz/{k}", data=v, chunks=(1 << 16,), compression="gzip", compression_opts=1)
c = np.zeros(n, [("time", "<i8"), ("segment", "<i8"), ("speed", "<f8")])
c["time"], c["segment"], c["speed"] = t, seg, spd
with h5py.File(f"{d}/compound.h5", "w") as f:
    f.create_dataset("obs", data=c, chunks=(1 << 16,))
df = pd.DataFrame({"time": t, "segment": seg, "speed": spd})
df.to_hdf(f"{d}/pandas-dc.h5", key="obs", format="table", data_columns=True)
df.to_hdf(f"{d}/pandas-blocks.h5", key="obs", format="table")
df.to_hdf(f"{d}/pandas-fixed.h5", key="obs", format="fixed")
PY
    touch "$D/done-$ROWS"
fi
cat "$D"/*.h5 >/dev/null
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
"$D/table_read" "$D/group.h5" /obs speed
"$D/table_read" "$D/group.h5" /gz speed
"$D/table_read" "$D/compound.h5" /obs speed
"$D/table_read" "$D/pandas-dc.h5" /obs speed
"$D/table_read" "$D/pandas-blocks.h5" /obs speed
"$D/table_read" "$D/pandas-fixed.h5" /obs speed
"$D/table_read" "$D/group.h5" /obs time
"$D/table_read" "$D/compound.h5" /obs time
