#!/usr/bin/env bash
# Checks the Debian packages h5batch needs (build, run, test) and prints what is missing.
# Only as root and only when something is missing does it install it (apt-get): on a
# machine where everything is installed it needs no root and runs no apt-get. Missing
# build or run packages without root: the command to run, exit 1. Missing test-only
# packages (Slurm, munge, valgrind, clang for the fuzz harnesses) without root: a note,
# exit 0; those tests skip.
# Not Debian: prints what is needed instead.
set -euo pipefail
pkgs=(gcc make pkg-config openmpi-bin libopenmpi-dev libhdf5-openmpi-dev hdf5-tools libgsl-dev libopenblas-dev
      libinih-dev libutf8proc-dev libdeflate-dev libisal-dev libstemmer-dev librandom123-dev libxxhash-dev zlib1g-dev tzdata python3-h5py python3-numpy
      python3-pandas python3-scipy python3-snowballstemmer python3-xarray python3-h5netcdf util-linux
      hdf5-filter-plugin hdf5-filter-plugin-blosc-serial bitshuffle python3-tables)
test_pkgs=(slurm-wlm munge valgrind clang libclang-rt-dev libomp-dev iproute2 nftables) # clang, its runtimes, libomp: the libFuzzer harnesses (make fuzz); iproute2: tests/multihost (nftables: its blackhole)
if ! command -v dpkg-query >/dev/null 2>&1; then
    echo "h5batch: not a Debian system; install the equivalents of: ${pkgs[*]} (tests: ${test_pkgs[*]})" >&2
    exit 0
fi
missing=() missing_test=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
for p in "${test_pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing_test+=("$p")
done
[ ${#missing[@]} -eq 0 ] && [ ${#missing_test[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
    if [ ${#missing[@]} -gt 0 ]; then
        echo "h5batch: missing packages; run as root:" >&2
        echo "  apt-get update && apt-get install -y --no-install-recommends ${missing[*]} ${missing_test[*]}" >&2
        exit 1
    fi
    echo "h5batch: the tests that need ${missing_test[*]} will skip (as root: apt-get install ${missing_test[*]})" >&2
    exit 0
fi
echo "h5batch: installing ${missing[*]} ${missing_test[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null
apt-get install -y -q --no-install-recommends "${missing[@]}" "${missing_test[@]}" >/dev/null
