/**
 * End to end on the built-in data: a few real steps of training on the wasm
 * backend, and what the run leaves on disk.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { resolveConfig } from '../../src/core/train/config';
import { trainRun } from '../../src/core/train/run';
import { readJsonl } from '../../src/core/runs/jsonl';
import type { MetricLine, RunJson } from '../../src/core/runs/record';

const tmp = (): string => fs.mkdtempSync(path.join(os.tmpdir(), 'sift-train-'));

test('a short run trains, evaluates, records every metric line and leaks no tensors', async () => {
  const runDir = path.join(tmp(), 'run');
  const tensorsAfterStep: number[] = [];
  const config = resolveConfig({
    data: 'builtin:train?size=400',
    evalData: 'builtin:eval?size=64',
    steps: 6,
    batchSize: 16,
    evalEvery: 3,
    backend: 'wasm',
    runDir,
  });
  const result = await trainRun(config, { onTrain: () => tensorsAfterStep.push(tf.memory().numTensors) });
  assert.equal(result.status, 'finished');
  // Flat from the second step on: nothing accumulates per step (the first step creates optimizer-lifetime constants).
  assert.deepEqual(new Set(tensorsAfterStep.slice(1)).size, 1, `tensor counts per step: ${tensorsAfterStep.join(', ')}`);

  const run = JSON.parse(fs.readFileSync(path.join(runDir, 'run.json'), 'utf8')) as RunJson;
  assert.equal(run.status, 'finished');
  assert.equal(run.backend?.chosen, 'wasm');
  assert.equal(run.data?.train.size, 400);
  assert.equal(run.config.batchSize, 16);
  assert.ok(fs.existsSync(path.join(runDir, 'tokenizer.json')));

  const { rows, tornTail } = readJsonl<MetricLine>(path.join(runDir, 'metrics.jsonl'));
  assert.equal(tornTail, false);
  const trainLines = rows.filter((r) => r.type === 'train');
  const evalLines = rows.filter((r) => r.type === 'eval');
  assert.deepEqual(trainLines.map((r) => r.step), [1, 2, 3, 4, 5, 6]);
  assert.deepEqual(evalLines.map((r) => r.step), [3, 6]);
  for (const line of trainLines) {
    for (const key of ['step', 'examples_seen', 'flops', 'wall_s', 'loss']) assert.equal(typeof (line as unknown as Record<string, unknown>)[key], 'number', key);
  }
  assert.deepEqual(trainLines.map((r) => r.examples_seen), [16, 32, 48, 64, 80, 96]);
  assert.ok(trainLines.every((r, i) => i === 0 || r.flops > trainLines[i - 1].flops), 'flops are cumulative');
  for (const line of evalLines) {
    for (const key of ['i2t_r1', 'i2t_r5', 't2i_r1', 't2i_r5']) {
      const value = (line as unknown as Record<string, number>)[key];
      assert.ok(value >= 0 && value <= 1, `${key} in [0, 1]`);
    }
  }
});

test('bad settings and unreadable data fail before training, and the run record says why', async () => {
  const runDir = path.join(tmp(), 'run');
  const config = resolveConfig({ data: path.join(tmp(), 'nothing-here.jsonl'), steps: 2, backend: 'wasm', runDir });
  await assert.rejects(trainRun(config), /nothing-here\.jsonl/);
  const run = JSON.parse(fs.readFileSync(path.join(runDir, 'run.json'), 'utf8')) as RunJson;
  assert.equal(run.status, 'failed');
  assert.match(run.error?.message ?? '', /nothing-here\.jsonl/);
});
