#!/usr/bin/env bash
# Sets up the PyTorch side of `npm run bench:speed -- --vs-pytorch` on Debian
# bookworm (run as root; safe to run again).
#
# - Debian's own torch 1.13 and numpy, for the system Python (/usr/bin/python3).
#   Other Pythons on PATH (a pyenv shim, a venv) are left alone on purpose: the
#   benchmark always calls /usr/bin/python3.
# - OpenBLAS (and tcmalloc, for profiling), unpacked (not installed) into
#   .cache/openblas/ and .cache/tcmalloc/ in the repository.
#   Debian's torch links the generic libblas.so.3, which without an alternative
#   installed is the reference BLAS (a few GFLOP/s). Pointing LD_LIBRARY_PATH
#   at OpenBLAS's folder swaps it in for the benchmark's Python only, without
#   changing the system's BLAS alternative for anything else.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cache="$root/.cache/openblas"

if [ "$(id -u)" -ne 0 ]; then
  echo "setup.sh installs Debian packages: run it as root (sudo bash scripts/pytorch/setup.sh)." >&2
  exit 1
fi

if ! /usr/bin/python3 -c 'import torch, numpy' 2>/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update
  apt-get install -y --no-install-recommends python3-torch python3-numpy
fi

lib_dir() { find "$cache" -type d -name 'openblas-pthread' -path '*/lib/*' 2>/dev/null | head -n 1; }
tcmalloc() { find "$root/.cache/tcmalloc" -name 'libtcmalloc_minimal.so.4' 2>/dev/null | head -n 1; }

# Unpacked, not installed: the packages' libraries are only put in front of
# the benchmark's Python (run.sh), never made the system's default.
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# apt downloads as the unprivileged _apt user where it can write the folder.
chown _apt "$work" 2>/dev/null || true
# Package lists may be missing or stale (a fresh image): update once and retry.
fetch() { (cd "$work" && apt-get download "$1") || { apt-get update && (cd "$work" && apt-get download "$1"); }; }
if [ -z "$(lib_dir)" ] || [ ! -e "$(lib_dir)/libblas.so.3" ]; then
  fetch libopenblas0-pthread
  mkdir -p "$cache"
  dpkg -x "$work"/libopenblas0-pthread_*.deb "$cache"
fi
# tcmalloc: for the per-op profile, whose own allocations make glibc's malloc
# fault pages back in on every step (see run.sh); optional for the timings.
if [ -z "$(tcmalloc)" ]; then
  fetch libtcmalloc-minimal4
  mkdir -p "$root/.cache/tcmalloc"
  dpkg -x "$work"/libtcmalloc-minimal4_*.deb "$root/.cache/tcmalloc"
fi

dir="$(lib_dir)"
if [ -z "$dir" ] || [ ! -e "$dir/libblas.so.3" ]; then
  echo "setup.sh: OpenBLAS was unpacked into $cache but has no openblas-pthread/libblas.so.3 folder." >&2
  exit 1
fi
echo "torch: $(/usr/bin/python3 -c 'import torch; print(torch.__version__)')"
echo "OpenBLAS: $dir"
echo "tcmalloc: $(tcmalloc)"
echo "check it with: bash scripts/pytorch/run.sh --check"
