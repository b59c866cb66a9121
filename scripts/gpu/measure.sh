#!/usr/bin/env bash
# Measures Sift on webgpu against PyTorch on CUDA on a Linux x86-64 machine
# with an NVIDIA GPU, from the bundle scripts/gpu/pack.sh wrote into .gpu/. The
# machine needs the NVIDIA driver (its Vulkan driver included) and a Python
# whose torch has CUDA; not Node.js, node_modules, a Vulkan loader or internet.
#
#   OUT=/some/folder bash scripts/gpu/measure.sh
#
# Steps, each with its own time limit, the cheapest and most telling first:
#   1. unpack the bundle into $SIFT_GPU_WORK, the Vulkan loader's .deb files
#   2. doctor: nvidia-smi, the Vulkan driver files, `sift doctor` (which WebGPU
#      adapter Dawn finds), and PyTorch's own check of its CUDA device
#   3. bench:speed --backend webgpu --vs-pytorch --torch-device cuda, for each
#      entry of the plan (model:batch:super-batch), default first; one whose
#      port check fails, or whose PyTorch does not start, still reports Sift's
#      figures (and says so: --allow-port-mismatch --torch-optional)
# and writes, flat, into $OUT (at most 8 files): measure.log (everything
# printed), doctor.txt, speed.md (each benchmark's table, appended as it
# ends) and MODEL-bBATCH.json per benchmark (all its figures).
#
# Settings (environment):
#   OUT                  where the results go (default: ./gpu-out)
#   SIFT_GPU_BUDGET_S    seconds for the whole script, unpacking included (420);
#                        a step gets at most what is left, and one that cannot
#                        get its minimum is skipped and says so
#   SIFT_GPU_PLAN        benchmarks, in order (at most 5), each model:b:B
#                        ("default:64:320 wide:64:320 default:256:1280 wide:256:1280")
#   SIFT_GPU_ROUNDS, SIFT_GPU_REPEATS   per figure (3 and 5)
#   SIFT_GPU_MATMUL      size of the square matmul that measures each side's peak (4096)
#   SIFT_GPU_QUICK=1     a dry run: 1 round × 1 repeat, 512³ matmul
#   SIFT_TORCH_PYTHON    the Python with torch (python3)
#   SIFT_TORCH_DEVICE    where PyTorch runs (cuda; cpu for a dry run without a GPU)
#   SIFT_GPU_WORK        where the bundle is unpacked (/tmp/sift-gpu)
#   SIFT_GPU_GL_ROOT     where the .deb files are unpacked when this machine has
#                        no Vulkan loader (/: only files not there already are
#                        added); another folder is put on LD_LIBRARY_PATH (to
#                        test this step without touching the system); set, it
#                        unpacks even where a loader is installed
set -uo pipefail # not -e: a failed step is reported and the next one runs

start=$(date +%s)
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
OUT="${OUT:-$PWD/gpu-out}"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
budget="${SIFT_GPU_BUDGET_S:-420}"
plan="${SIFT_GPU_PLAN:-default:64:320 wide:64:320 default:256:1280 wide:256:1280}"
rounds="${SIFT_GPU_ROUNDS:-3}"
repeats="${SIFT_GPU_REPEATS:-5}"
matmul="${SIFT_GPU_MATMUL:-4096}"
if [ "${SIFT_GPU_QUICK:-0}" = 1 ]; then
  rounds=1
  repeats=1
  matmul="${SIFT_GPU_MATMUL:-512}"
fi
python="${SIFT_TORCH_PYTHON:-python3}"
torch_device="${SIFT_TORCH_DEVICE:-cuda}"
work="${SIFT_GPU_WORK:-/tmp/sift-gpu}"
bundle="$root/.gpu/sift-gpu.tar.xz"

exec > >(tee -a "$OUT/measure.log") 2>&1

say() { printf '[%s +%ss] %s\n' "$(date -u +%H:%M:%S)" "$(($(date +%s) - start))" "$*"; }
left() { echo $((budget - ($(date +%s) - start))); }

# step NAME MAX_SECONDS MIN_SECONDS COMMAND...: runs COMMAND under timeout, at
# most MAX seconds and never past the budget; skipped when fewer than MIN are left.
step() {
  local name="$1" max="$2" min="$3"
  shift 3
  local remaining
  remaining="$(left)"
  if [ "$remaining" -lt "$min" ]; then
    say "SKIP $name: ${remaining}s of the ${budget}s budget left, it needs ${min}s"
    return 0
  fi
  local limit=$((max < remaining ? max : remaining))
  say "START $name (limit ${limit}s)"
  timeout -k 10 "$limit" "$@"
  local rc=$?
  if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
    say "TIMEOUT $name after ${limit}s"
  elif [ "$rc" != 0 ]; then
    say "FAIL $name (exit $rc)"
  else
    say "DONE $name"
  fi
  return 0
}

say "measure.sh: results into $OUT; budget ${budget}s; plan: $plan; rounds $rounds × repeats $repeats; matmul ${matmul}³; PyTorch: $python on $torch_device"

# ---- 1. unpack ----------------------------------------------------------------------------------
if [ ! -f "$bundle" ]; then
  say "FAIL: $bundle is missing: run bash scripts/gpu/pack.sh and copy .gpu/ along"
  exit 1
fi
rm -rf "$work"
mkdir -p "$work"
# xz, or Python's lzma where the image has no xz-utils.
unxz() {
  if command -v xz > /dev/null; then
    xz -dc "$1"
  else
    "$python" -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), sys.stdout.buffer)' "$1"
  fi
}
if ! unxz "$bundle" | tar -x -C "$work"; then
  say "FAIL: could not unpack $bundle"
  exit 1
fi
app="$work/sift-gpu"
node="$app/node"
cd "$work" || exit 1
# The PyTorch port from the repository, in case it changed since packing (the benchmark runs the copy beside it).
cp "$root/scripts/pytorch/sift_torch.py" "$app/scripts/pytorch/sift_torch.py"
say "unpacked $(du -sh "$app" | cut -f 1) into $app: node $("$node" -v)"
sed 's/^/  /' "$app/MANIFEST"
packed_hash="$(sed -n 's/^sources-sha256: //p' "$app/MANIFEST")"
here_hash="$(bash "$here/sources-hash.sh" "$root" 2> /dev/null || echo unknown)"
if [ "$packed_hash" != "$here_hash" ]; then
  say "WARNING: the bundle was built from other sources than these (src/, scripts/bench-speed.ts, …: $packed_hash packed, $here_hash here): run pack.sh again"
fi

# The Vulkan loader (libvulkan.so.1) and libglvnd, which NVIDIA's Vulkan driver loads.
has_loader() { ldconfig -p 2> /dev/null | grep -q 'libvulkan\.so\.1 ' || [ -e /usr/lib/x86_64-linux-gnu/libvulkan.so.1 ]; }
gl_debs="$root/.gpu/gl"
[ -d "$gl_debs" ] || gl_debs="$root/.gl"
if [ -n "${SIFT_GPU_GL_ROOT:-}" ] || ! has_loader; then
  gl_root="${SIFT_GPU_GL_ROOT:-/}"
  mkdir -p "$gl_root"
  for deb in "$gl_debs"/*.deb; do
    [ -e "$deb" ] || { say "WARNING: no .deb files in $gl_debs"; break; }
    # Only files not there already: never replaces the system's own libraries.
    dpkg-deb --fsys-tarfile "$deb" | tar -x --skip-old-files -C "$gl_root" || say "WARNING: could not unpack $deb"
  done
  if [ "$gl_root" = / ]; then
    ldconfig
  else
    export LD_LIBRARY_PATH="$gl_root/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  fi
  say "Vulkan loader and libglvnd unpacked into $gl_root from $gl_debs"
else
  say "a Vulkan loader is installed: $(ldconfig -p 2> /dev/null | grep -m 1 'libvulkan\.so\.1 ' | sed 's/^[[:space:]]*//')"
fi
# The NVIDIA driver's files where containers get them mounted.
for dir in /usr/local/nvidia/lib64 /usr/local/nvidia/lib; do
  if [ -d "$dir" ] && [[ ":${LD_LIBRARY_PATH:-}:" != *":$dir:"* ]]; then export LD_LIBRARY_PATH="${LD_LIBRARY_PATH:+$LD_LIBRARY_PATH:}$dir"; fi
done
nvidia_icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
if [ -z "${VK_DRIVER_FILES:-}" ] && [ -f "$nvidia_icd" ]; then
  # The loader would not look there; naming it also keeps any other driver (a software one) out.
  export VK_DRIVER_FILES="$nvidia_icd" VK_ICD_FILENAMES="$nvidia_icd"
fi
if [ -z "${XDG_RUNTIME_DIR:-}" ]; then
  XDG_RUNTIME_DIR="$(mktemp -d)"
  export XDG_RUNTIME_DIR
fi
say "LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-} VK_DRIVER_FILES=${VK_DRIVER_FILES:-(unset)}"

# ---- 2. doctor --------------------------------------------------------------------------------------
doctor() {
  echo "== nvidia-smi"
  if command -v nvidia-smi > /dev/null; then
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,power.limit --format=csv || true
  else
    echo "(no nvidia-smi)"
  fi
  echo "== Vulkan driver files"
  for f in ${VK_DRIVER_FILES//:/ } /usr/share/vulkan/icd.d/*.json /etc/vulkan/icd.d/*.json; do [ -f "$f" ] && echo "$f: $(tr -d '\n ' < "$f")"; done
  echo "== sift doctor"
  timeout 60 "$node" --enable-source-maps "$app/dist/cli.js" doctor
  echo
  echo "== sift doctor --json"
  timeout 60 "$node" --enable-source-maps "$app/dist/cli.js" doctor --json
  echo "== PyTorch ($python = $(command -v "$python"), SIFT_TORCH_DEVICE=$torch_device)"
  SIFT_TORCH_DEVICE="$torch_device" timeout 90 "$python" "$app/scripts/pytorch/sift_torch.py" --check
  return 0
}
export -f doctor
export app node python torch_device
step doctor 180 60 bash -c doctor 2>&1 | tee "$OUT/doctor.txt"

# ---- 3. the benchmarks ------------------------------------------------------------------------------
# SIFT_GPU_FLAG_SETS: TensorFlow.js flag sets to time each plan entry under
# (space-separated; each a SIFT_TFJS_FLAGS value, "-" for none), e.g.
# "- WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE=128"; SIFT_GPU_SIFT_ONLY=1 skips PyTorch.
flag_sets="${SIFT_GPU_FLAG_SETS:--}"
versus=(--vs-pytorch)
[ "${SIFT_GPU_SIFT_ONLY:-0}" = 1 ] && versus=()
entries=0
for flags in $flag_sets; do
for entry in $plan; do
  entries=$((entries + 1))
  if [ "$entries" -gt 5 ]; then
    say "SKIP $entry: at most 5 benchmarks (8 files in \$OUT)"
    continue
  fi
  IFS=: read -r model batch super <<< "$entry"
  name="$model-b$batch"
  [ "$flags" != - ] && name="$name-$(echo "$flags" | tr -c 'A-Za-z0-9=\n' '_' | tr '=' '-' | sed 's/WEBGPU_//g')"
  export SIFT_TFJS_FLAGS="${flags#-}"
  results="$work/results/$name"
  # The first benchmark pays for the shader compilation and CUDA's start: the most time.
  max=150
  [ "$entries" = 1 ] && max=200
  step "bench $name (B = $super)" "$max" 45 \
    "$node" --enable-source-maps "$app/scripts/bench-speed.js" \
    --backend webgpu "${versus[@]}" --torch-device "$torch_device" --torch-python "$python" --allow-port-mismatch --torch-optional \
    --model "$model" --batch-size "$batch" --super-batch "$super" --rounds "$rounds" --repeats "$repeats" \
    --matmul-size "$matmul" --settle-ms 100 --out "$results"
  if [ -f "$results/speed.json" ]; then
    cp "$results/speed.json" "$OUT/$name.json"
    { echo "SIFT_TFJS_FLAGS=${SIFT_TFJS_FLAGS:-(none)}"; cat "$results/speed.md"; echo; } >> "$OUT/speed.md"
  fi
done
done

say "measure.sh: done in $(($(date +%s) - start))s; in $OUT: $(cd "$OUT" && ls | tr '\n' ' ')"
sleep 1 # tee's last lines into measure.log
