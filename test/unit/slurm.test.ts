/**
 * Issue 13, part 2, against a real Slurm: scripts/slurm/test-local-cluster.sh
 * starts a one-node cluster (munged, slurmctld, slurmd) in a temporary
 * folder, runs the reference-embedding job array and a dependent training
 * job, and checks that the assembled cache equals the single-process one
 * byte for byte. Skipped where Slurm is not installed, unless
 * SIFT_REQUIRE_SLURM=1 (CI), where that fails instead.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

const root = path.resolve(__dirname, '../..');
const required = process.env.SIFT_REQUIRE_SLURM === '1';
const missing = ['sbatch', 'slurmctld', 'slurmd', 'munged'].filter((tool) => spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0);
const skip = missing.length > 0 && !required ? `Slurm is not installed here (${missing.join(', ')} missing; apt-get install -y slurm-wlm, or SIFT_REQUIRE_SLURM=1 to fail instead)` : false;

test('a Slurm job array embeds the pool in shards whose assembled cache equals the single-process cache, and a dependent training job reads it', { skip, timeout: 600_000 }, (t) => {
  assert.deepEqual(missing, [], 'SIFT_REQUIRE_SLURM=1 but Slurm is not installed: apt-get install -y slurm-wlm');
  assert.ok(fs.existsSync(path.join(root, 'dist', 'cli.js')), 'dist/cli.js is missing: npm run build first');
  const result = spawnSync('bash', [path.join(root, 'scripts', 'slurm', 'test-local-cluster.sh')], { cwd: root, encoding: 'utf8', timeout: 590_000 });
  const output = `${result.stdout}${result.stderr}`;
  for (const line of output.trimEnd().split('\n')) t.diagnostic(line);
  assert.equal(result.status, 0, `test-local-cluster.sh exited ${result.status ?? result.signal}:\n${output}`);
  assert.match(output, /byte-equal: the cache assembled from \d+ shards equals the single-process cache/);
  assert.match(output, /Reference embeddings read from cache \(assembled from \d+ shards/);
});
