#!/usr/bin/env bash
# Installs the benchmark peers from PyPI into bench/venv (ignored by git): DuckDB,
# Polars, PySpark (Java is on the machine), tantivy, ClickHouse in process (chdb), pyarrow,
# matplotlib.
set -euo pipefail
cd "$(dirname "$0")"
[ -x venv/bin/python ] || python3 -m venv venv
venv/bin/pip install -q --upgrade duckdb polars pyarrow pyspark tantivy chdb matplotlib numpy h5py scipy pandas
