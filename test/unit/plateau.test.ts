/**
 * FINDINGS.md: SigLIP's init (t = 10, b = −10) at batch 64 sat in a collapsed
 * plateau (every cosine equal, loss exactly ln b + (b − 1)·ln(b/(b − 1)) per
 * example, no gradient on b). Sift's default bias init, −ln(batch), must leave it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { resolveConfig } from '../../src/core/train/config';
import { trainRun } from '../../src/core/train/run';
import { readJsonl } from '../../src/core/runs/jsonl';
import type { MetricLine } from '../../src/core/runs/record';

/** The loss of a batch whose logits are all equal, at the best common logit: what a collapsed model scores. */
function plateauLoss(batch: number): number {
  return Math.log(batch) + (batch - 1) * Math.log(batch / (batch - 1));
}

test('the default init leaves the collapsed plateau within a short run on the built-in data', async () => {
  const batch = 32;
  const runDir = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'sift-plateau-')), 'run');
  const config = resolveConfig({
    data: 'builtin:train?size=4000&swap=0',
    evalData: 'builtin:eval?size=64',
    batchSize: batch,
    steps: 120,
    evalEvery: 120,
    imageWidth: 32,
    textWidth: 32,
    imageDepth: 2,
    textDepth: 1,
    embedDim: 32,
    backend: 'wasm',
    runDir,
  });
  assert.equal(config.initBias, null, 'the default bias init is -ln(batch)');
  await trainRun(config);
  const losses = readJsonl<MetricLine>(path.join(runDir, 'metrics.jsonl'))
    .rows.filter((r) => r.type === 'train')
    .map((r) => (r.type === 'train' ? r.loss : NaN));
  const tail = losses.slice(-20).reduce((a, b) => a + b, 0) / 20;
  const plateau = plateauLoss(batch);
  assert.ok(tail < plateau - 0.3, `mean loss of the last 20 steps ${tail.toFixed(3)} vs plateau ${plateau.toFixed(3)}`);
});
