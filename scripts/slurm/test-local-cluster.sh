#!/usr/bin/env bash
# Proves scripts/slurm/*.sbatch against a real Slurm: a one-node cluster
# (munged, slurmctld and slurmd from Debian's slurm-wlm, started here, not by
# systemd) in a temporary folder. It trains a tiny reference, embeds a small
# pool in one process (`sift embed`), then submits embed-array.sbatch as an
# array of SHARDS tasks and train.sbatch with --dependency=afterok on it, and
# checks that the array's assembled cache equals the single-process cache
# byte for byte and that the training run read it without embedding; then
# the same with `sift embed --slurm 2`.
# Exits non-zero on any mismatch; tears the daemons down on the way out.
#
#   bash scripts/slurm/test-local-cluster.sh      # SHARDS=3 POOL_SIZE=384 by default
#
# Needs `npm run build` (dist/) and slurm-wlm (apt-get install -y slurm-wlm).
set -euo pipefail
cd "$(dirname "$0")/../.."
root="$PWD"
shards="${SHARDS:-3}"
pool_size="${POOL_SIZE:-384}"
for tool in sbatch slurmctld slurmd munged; do
  command -v "$tool" >/dev/null || { echo "test-local-cluster: $tool is missing (apt-get install -y slurm-wlm)" >&2; exit 2; }
done
[ -f dist/cli.js ] || { echo "test-local-cluster: dist/cli.js is missing: run npm run build first" >&2; exit 2; }

work="$(mktemp -d "${TMPDIR:-/tmp}/sift-slurm-XXXXXX")"
chmod 0700 "$work"
pids=()
cleanup() {
  local code=$?
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [ "$code" -ne 0 ]; then
    echo "--- test-local-cluster failed (exit $code); logs:" >&2
    tail -n 20 "$work"/*.log "$work"/jobs/*.out 2>/dev/null >&2 || true
  fi
  [ -n "${KEEP:-}" ] || rm -rf "$work"
  exit "$code"
}
trap cleanup EXIT

# Two free TCP ports for slurmctld and slurmd (a system Slurm may hold the defaults).
read -r ctld_port slurmd_port < <(node -e '
  const net = require("net"); const ports = [];
  const next = () => { const s = net.createServer(); s.listen(0, "127.0.0.1", () => { ports.push(s.address().port); s.close(() => ports.length < 2 ? next() : console.log(ports.join(" "))); }); };
  next();')
host="$(hostname -s)"
cpus="$(nproc)"

# munge: its own key and socket, so a system munged (if any) is left alone.
dd if=/dev/urandom of="$work/munge.key" bs=1024 count=1 status=none
chmod 0400 "$work/munge.key"
munged --force --foreground --key-file="$work/munge.key" --socket="$work/munge.sock" \
  --pid-file="$work/munged.pid" --log-file="$work/munged.log" --seed-file="$work/munged.seed" 2>>"$work/munged.log" &
pids+=($!)
for _ in $(seq 50); do [ -S "$work/munge.sock" ] && break; sleep 0.1; done
[ -S "$work/munge.sock" ] || { echo "test-local-cluster: munged did not start" >&2; exit 1; }

mkdir -p "$work/state" "$work/spool" "$work/jobs"
cat >"$work/slurm.conf" <<CONF
ClusterName=sift-test
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$work/munge.sock
StateSaveLocation=$work/state
SlurmdSpoolDir=$work/spool
SlurmctldPidFile=$work/slurmctld.pid
SlurmdPidFile=$work/slurmd.pid
SlurmctldLogFile=$work/slurmctld.log
SlurmdLogFile=$work/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
MpiDefault=none
SchedulerType=sched/backfill
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
export SLURM_CONF="$work/slurm.conf"
slurmctld -D -i -f "$SLURM_CONF" >>"$work/slurmctld.log" 2>&1 &
pids+=($!)
slurmd -D -f "$SLURM_CONF" >>"$work/slurmd.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do
  state="$(sinfo -h -N -o %T 2>/dev/null | head -n1 || true)"
  [ "$state" = idle ] && break
  sleep 0.2
done
[ "$state" = idle ] || { echo "test-local-cluster: the node is not idle (state: ${state:-none})" >&2; exit 1; }
echo "one-node Slurm cluster up: $(sinfo -h -o '%P %D %c %T' | head -n1) (node $host, $cpus CPUs)"

sift() { node "$root/bin/sift.js" "$@"; }
tiny=(--image-width 16 --text-width 16 --image-depth 1 --text-depth 1 --embed-dim 16 --backend wasm)
data=(--eval-data "builtin:eval?size=32")
pool="builtin:train?size=$pool_size"
ref="$work/reference"
sift reference --data "builtin:curated?size=200" --steps 2 --batch-size 8 --eval-every 2 --eval-data "builtin:eval?size=32" "${tiny[@]}" --run-dir "$ref" >"$work/reference.log" 2>&1

# The single-process cache, then cleared so that the array writes its own.
start=$(date +%s%N)
sift embed --reference "$ref" --data "$pool" "${data[@]}" --backend wasm >"$work/single.log"
single_ms=$((($(date +%s%N) - start) / 1000000))
cache="$(ls "$ref"/embeddings/*.bin)"
cp "$cache" "$work/single.bin"
rm -rf "$ref/embeddings"

# The tasks start in jobs/ (where sbatch runs), so the command is spelled out.
export SIFT="node $root/bin/sift.js"
cd "$work/jobs"
start=$(date +%s%N)
array=$(sbatch --parsable --array=0-$((shards - 1)) "$root/scripts/slurm/embed-array.sbatch" "$ref" "$pool" "${data[@]}" --backend wasm)
array="${array%%;*}"
timeout "${SLURM_TEST_TIMEOUT:-600}" sbatch --parsable --wait --dependency=afterok:"$array" --kill-on-invalid-dep=yes --cpus-per-task=1 \
  "$root/scripts/slurm/train.sbatch" "$ref" "$pool" "${data[@]}" "${tiny[@]}" --batch-size 8 --filter-ratio 0.5 --steps 2 --eval-every 2 --run-dir "$work/run" >"$work/train-job.id" || true
wall_ms=$((($(date +%s%N) - start) / 1000000))
cd "$root"
train_job="$(cat "$work/train-job.id")"
train_log="$work/jobs/sift-train-$train_job.out"

fail=0
for ((i = 0; i < shards; i++)); do
  out="$work/jobs/sift-embed-${array}_$i.out"
  [ -f "$out" ] || { echo "FAIL: no output from array task $i" >&2; fail=1; continue; }
  grep -E "^Shard $i/$shards" "$out" | sed "s|: $ref/| in |; s|^|  task $i: |"
done
grep -h "assembled the cache" "$work"/jobs/sift-embed-*.out | sed 's/^/  /' || { echo "FAIL: no task assembled the cache" >&2; fail=1; }
if [ ! -f "$cache" ]; then
  echo "FAIL: the array left no cache at $cache" >&2
  fail=1
elif cmp -s "$cache" "$work/single.bin"; then
  echo "byte-equal: the cache assembled from $shards shards equals the single-process cache ($(stat -c %s "$cache") bytes, sha256 $(sha256sum "$cache" | cut -c1-16))"
else
  echo "FAIL: the cache assembled from $shards shards differs from the single-process cache" >&2
  cmp "$cache" "$work/single.bin" >&2 || true
  fail=1
fi
if grep -q "Reference embeddings read from cache (assembled from $shards shards" "$train_log"; then
  echo "training job $train_job (afterok:$array): $(grep -o 'Reference embeddings read from cache ([^)]*)' "$train_log")"
else
  echo "FAIL: the training job did not read the assembled cache; its log:" >&2
  cat "$train_log" >&2 || true
  fail=1
fi
# The same through `sift embed --slurm N` (sbatch --wrap), with another shard count.
rm -rf "$ref/embeddings"
cd "$work/jobs"
submitted="$(sift embed --slurm 2 --reference "$ref" --data "$pool" "${data[@]}" --backend wasm)"
cd "$root"
slurm_job="$(echo "$submitted" | sed -n 's/^Submitted the embedding array \([0-9]*\) .*/\1/p')"
if [ -z "$slurm_job" ]; then
  echo "FAIL: sift embed --slurm 2 did not submit: $submitted" >&2
  fail=1
else
  for _ in $(seq "${SLURM_TEST_TIMEOUT:-600}"); do
    [ -z "$(squeue -h -j "$slurm_job" 2>/dev/null)" ] && break
    sleep 1
  done
  if [ -f "$cache" ] && cmp -s "$cache" "$work/single.bin"; then
    echo "byte-equal: sift embed --slurm 2 (array $slurm_job) assembled the same cache"
  else
    echo "FAIL: sift embed --slurm 2 (array $slurm_job) left no cache equal to the single-process one" >&2
    fail=1
  fi
fi
echo "pool $(grep -o 'Pool [^;]*' "$work/single.log" | head -n1 | sed 's/^Pool //'); $shards shards; single process $((single_ms / 1000)).$((single_ms % 1000 / 100)) s (incl. start-up); array + training job $((wall_ms / 1000)).$((wall_ms % 1000 / 100)) s wall"
[ "$fail" -eq 0 ] && echo "test-local-cluster: ok"
exit "$fail"
