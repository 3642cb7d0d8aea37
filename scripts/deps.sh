#!/usr/bin/env bash
# Installs the Debian packages h5batch needs, only those that are missing. Not root or
# not Debian: prints what is needed instead.
set -euo pipefail
pkgs=(gcc make pkg-config openmpi-bin libopenmpi-dev libhdf5-openmpi-dev hdf5-tools libgsl-dev libopenblas-dev
      libinih-dev libutf8proc-dev libstemmer-dev librandom123-dev libxxhash-dev tzdata python3-h5py python3-numpy
      python3-pandas python3-scipy python3-snowballstemmer python3-xarray python3-h5netcdf util-linux slurm-wlm munge)
missing=()
if command -v dpkg-query >/dev/null 2>&1; then
    for p in "${pkgs[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
else
    echo "h5batch: not a Debian system; install the equivalents of: ${pkgs[*]}" >&2
    exit 0
fi
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
    echo "h5batch: missing packages; run as root:" >&2
    echo "  apt-get update && apt-get install -y --no-install-recommends ${missing[*]}" >&2
    exit 1
fi
echo "h5batch: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null
apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
