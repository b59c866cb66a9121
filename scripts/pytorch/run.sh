#!/usr/bin/env bash
# Runs scripts/pytorch/sift_torch.py with Debian's torch on the system Python,
# OpenBLAS from .cache/openblas/ (see setup.sh), a malloc that keeps freed
# tensors for reuse and sleeping OpenMP waits (both explained below).
# Arguments pass through:
#   bash scripts/pytorch/run.sh            # the JSON-lines server bench:speed talks to
#   bash scripts/pytorch/run.sh --check    # which BLAS torch uses, and a matmul's GFLOP/s
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
blas="$(find "$root/.cache/openblas" -type d -name 'openblas-pthread' -path '*/lib/*' 2>/dev/null | head -n 1 || true)"

if [ ! -x /usr/bin/python3 ] || ! /usr/bin/python3 -c 'import torch' 2>/dev/null; then
  echo "run.sh: /usr/bin/python3 has no torch; set it up with: bash scripts/pytorch/setup.sh" >&2
  exit 3
fi
if [ -z "$blas" ]; then
  echo "run.sh: no OpenBLAS in .cache/openblas (torch would use the reference BLAS); set it up with: bash scripts/pytorch/setup.sh" >&2
  exit 3
fi

# Memory allocator (SIFT_TORCH_MALLOC):
# - tuned (default): glibc's malloc, which by default hands every freed
#   multi-megabyte tensor back to the kernel (mmap/munmap, heap trimming), so
#   the next op's output is page-faulted in again: measured here, ~25,000
#   faults and ~0.2 s of system time per forward of a 320-example super-batch,
#   2-3x the step time. Raising both thresholds keeps freed memory for reuse.
# - default: glibc as it comes, to measure what an untuned setup gets.
# - tcmalloc: the one from .cache/tcmalloc (setup.sh), preloaded. Used for the
#   per-op profile: torch.profiler's own allocations break glibc's reuse of
#   freed tensors (thousands of faults per step, the step 2-3x slower).
case "${SIFT_TORCH_MALLOC:-tuned}" in
  tuned)
    export GLIBC_TUNABLES="glibc.malloc.mmap_threshold=1073741824:glibc.malloc.trim_threshold=4294967296${GLIBC_TUNABLES:+:$GLIBC_TUNABLES}"
    ;;
  default) ;;
  tcmalloc)
    lib="$(find "$root/.cache/tcmalloc" -name 'libtcmalloc_minimal.so.4' 2>/dev/null | head -n 1 || true)"
    if [ -z "$lib" ]; then
      echo "run.sh: no tcmalloc in .cache/tcmalloc; set it up with: bash scripts/pytorch/setup.sh" >&2
      exit 3
    fi
    export LD_PRELOAD="$lib${LD_PRELOAD:+:$LD_PRELOAD}"
    ;;
  *)
    echo "run.sh: SIFT_TORCH_MALLOC is '$SIFT_TORCH_MALLOC'; expected tuned, default or tcmalloc" >&2
    exit 2
    ;;
esac

# OpenMP threads that wait for work sleep instead of spinning (unless
# OMP_WAIT_POLICY is already set). On cores shared with other work, torch's
# spinning OpenMP worker, OpenBLAS's own worker and the other load fight over
# the cores: measured on 2 shared cores, a 2-thread training step took
# 450-780 ms spinning and 70-130 ms passive (35 ms on 1 thread).
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}"

# OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE, when set in the environment, pin
# OpenBLAS to a kernel or cache size that may not fit this CPU: let it detect.
exec env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE LD_LIBRARY_PATH="$blas${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" \
  /usr/bin/python3 "$here/sift_torch.py" "$@"
