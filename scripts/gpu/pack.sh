#!/usr/bin/env bash
# Packs what scripts/gpu/measure.sh needs on a Linux x86-64 machine with an
# NVIDIA GPU that has no Node.js, no node_modules and no internet, into .gpu/
# (git-ignored; copy it there beside the repository's files):
#
#   .gpu/sift-gpu.tar.xz   this machine's node binary (an official Node >= 20
#                          linux-x64 build), bench:speed and the sift CLI bundled
#                          with esbuild, the PyTorch port, and the few run-time
#                          packages they load (scripts/gpu/bundle.mjs)
#   .gpu/gl/*.deb          the Vulkan loader and libglvnd (Debian bookworm
#                          packages: libvulkan1, libegl1, libglvnd0, libopengl0,
#                          libgl1, libglx0, libgles2), which the NVIDIA driver's
#                          Vulkan driver needs and a bare image lacks; taken from
#                          .gl/ if it holds them, else downloaded there
#   .gpu/MANIFEST          what was packed
#
#   bash scripts/gpu/pack.sh        # then: bash scripts/gpu/measure.sh there
#
# Needs: npm ci done (esbuild, tfjs, webgpu in node_modules), xz, and for the
# .deb files apt-get with network access (Debian/Ubuntu, amd64 lists).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
out="$root/.gpu"
stage_parent="$(mktemp -d "${TMPDIR:-/tmp}/sift-gpu-stage.XXXXXX")"
trap 'rm -rf "$stage_parent"' EXIT
stage="$stage_parent/sift-gpu"
cd "$root"

node_bin="$(readlink -f "$(command -v node)")"
node_kind="$(node -p 'process.platform + "-" + process.arch + " " + process.release.name + " " + process.version')"
case "$node_kind" in
  "linux-x64 node v"*) ;;
  *) echo "pack.sh: $node_bin is $node_kind; the bundle needs an official linux-x64 Node.js binary" >&2; exit 1 ;;
esac
major="$(node -p 'process.versions.node.split(".")[0]')"
if [ "$major" -lt 20 ]; then
  echo "pack.sh: Node $major; Sift needs 20 or newer" >&2
  exit 1
fi

echo "pack.sh: bundling (esbuild)…"
node "$here/bundle.mjs" "$stage"
cp "$node_bin" "$stage/node"
chmod 755 "$stage/node"

# Which sources the bundles were built from: measure.sh recomputes this from the
# repository it runs in and warns when they differ (edited since packing).
sources_hash="$(bash "$here/sources-hash.sh" "$root")"
{
  echo "packed: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "sources-sha256: $sources_hash"
  echo "commit: $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$root" diff --quiet HEAD -- src scripts 2>/dev/null || echo ' (with uncommitted changes)')"
  echo "node: $(node -v) ($node_bin)"
  for pkg in @tensorflow/tfjs-core @tensorflow/tfjs-backend-webgpu @tensorflow/tfjs-backend-wasm webgpu; do
    echo "$pkg: $(node -p "require('$stage/node_modules/$pkg/package.json').version")"
  done
} > "$stage/MANIFEST"

# Smoke test of the staged bundle on its own (no repository node_modules on the
# module path): the CLI loads, its backends report. Only wasm and cpu need load.
echo "pack.sh: checking the staged bundle…"
(cd "$stage_parent" && env -u NODE_PATH "$stage/node" "$stage/dist/cli.js" doctor --json > "$stage_parent/doctor.json") || true
if ! "$stage/node" -e 'const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")); const ok = r.attempts.filter((a) => a.outcome === "available").map((a) => a.name); console.log("  backends that load from the bundle: " + ok.join(", ")); process.exit(ok.includes("wasm") ? 0 : 1);' "$stage_parent/doctor.json"; then
  echo "pack.sh: the staged CLI did not report a working wasm backend; doctor said:" >&2
  cat "$stage_parent/doctor.json" >&2
  exit 1
fi

mkdir -p "$out"
rm -f "$out/sift-gpu.tar.xz"
echo "pack.sh: compressing (xz)…"
tar -C "$stage_parent" -cf - sift-gpu | xz -T0 -6 > "$out/sift-gpu.tar.xz.part"
mv "$out/sift-gpu.tar.xz.part" "$out/sift-gpu.tar.xz"
cp "$stage/MANIFEST" "$out/MANIFEST"

# The Vulkan loader and libglvnd, as .deb files (unpacked there, not installed).
debs=(libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2)
have_debs() { for d in "${debs[@]}"; do compgen -G "$1/${d}_*_amd64.deb" > /dev/null || return 1; done; }
if ! have_debs "$root/.gl"; then
  echo "pack.sh: downloading the Vulkan loader's .deb files into .gl/…"
  mkdir -p "$root/.gl" /tmp/amd64/partial
  o=(-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64)
  apt-get "${o[@]}" update > /dev/null
  (cd "$root/.gl" && apt-get "${o[@]}" download "${debs[@]}")
fi
rm -rf "$out/gl"
mkdir -p "$out/gl"
for d in "${debs[@]}"; do cp "$(ls "$root/.gl/${d}"_*_amd64.deb | tail -n 1)" "$out/gl/"; done

# What travels: the repository's files (tracked, and untracked ones git does not ignore) and .gpu/.
tree_bytes="$(git -C "$root" ls-files -co --exclude-standard -z | (cd "$root" && xargs -0 du -cb 2> /dev/null) | awk '$2 == "total" { sum += $1 } END { print sum + 0 }')"
gpu_bytes="$(du -cb "$out" | tail -n 1 | cut -f 1)"
total=$((tree_bytes + gpu_bytes))
mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }
echo "pack.sh: .gpu/sift-gpu.tar.xz: $(mib "$(stat -c %s "$out/sift-gpu.tar.xz")") (unpacked $(mib "$(du -sb "$stage" | cut -f 1)"))"
echo "pack.sh: .gpu/ $(mib "$gpu_bytes") + the repository's files $(mib "$tree_bytes") = $(mib "$total") to copy"
if [ "$total" -gt $((64 * 1048576)) ]; then
  echo "pack.sh: over 64 MiB" >&2
  exit 1
fi
cat "$out/MANIFEST"
