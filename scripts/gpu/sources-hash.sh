#!/usr/bin/env bash
# One SHA-256 over the sources the GPU bundle is built from (src/,
# scripts/bench-speed.ts, the PyTorch port, the bundler): pack.sh records it,
# measure.sh compares it with the repository it runs in.
#   bash scripts/gpu/sources-hash.sh [REPO_ROOT]
set -euo pipefail
root="${1:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
cd "$root"
find src scripts/bench-speed.ts scripts/pytorch/sift_torch.py scripts/gpu/bundle.mjs -type f \( -name '*.ts' -o -name '*.py' -o -name '*.mjs' \) -print0 |
  LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum | cut -d ' ' -f 1
