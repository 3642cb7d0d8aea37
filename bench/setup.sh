#!/usr/bin/env bash
# Installs the benchmark peers from PyPI into bench/venv (ignored by git): DuckDB,
# Polars, PySpark (Java is on the machine), tantivy, ClickHouse in process (chdb), pyarrow,
# matplotlib. Packages named as arguments are installed instead of the whole list, with
# what every peer script needs (numpy, h5py, pyarrow, and scipy for the numpy risk peer):
#   bash bench/setup.sh chdb duckdb polars
set -euo pipefail
cd "$(dirname "$0")"
[ -x venv/bin/python ] || python3 -m venv venv
if [ $# -gt 0 ]; then
    venv/bin/pip install -q --upgrade numpy h5py pyarrow scipy "$@"
else
    venv/bin/pip install -q --upgrade duckdb polars pyarrow pyspark tantivy chdb matplotlib numpy h5py scipy pandas
fi
