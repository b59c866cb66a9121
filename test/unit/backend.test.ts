import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { applyTfjsFlags, parseBackendChoice, probeBackends, selectBackend } from '../../src/core/backend';

test('auto picks the first backend that loads and says why each earlier one was skipped', async () => {
  const report = await selectBackend('auto');
  const names = report.attempts.map((a) => a.name);
  assert.deepEqual(names, ['node-gpu', 'webgpu', 'node', 'wasm', 'cpu']);
  const chosenAt = names.indexOf(report.chosen);
  for (const attempt of report.attempts.slice(0, chosenAt)) {
    // webgpu on a software adapter loads but is passed over: slower than wasm.
    assert.ok(attempt.outcome === 'failed' || (attempt.name === 'webgpu' && attempt.outcome === 'skipped' && attempt.adapter?.software), `${attempt.name}: ${attempt.outcome}`);
    assert.ok(attempt.reason && attempt.reason.length > 10, `${attempt.name} has a reason`);
  }
  for (const attempt of report.attempts.slice(chosenAt + 1)) assert.equal(attempt.outcome, 'not-tried');
  assert.notEqual(report.chosen, 'cpu', 'auto must not fall to the slow cpu backend while wasm loads');
});

test('a missing native package is explained with its fix', async () => {
  const attempts = await probeBackends();
  const node = attempts.find((a) => a.name === 'node')!;
  if (node.outcome === 'failed' && /not installed/.test(node.reason ?? '')) {
    assert.match(node.fix ?? '', /npm install @tensorflow\/tfjs-node/);
  }
  assert.equal(attempts.find((a) => a.name === 'wasm')!.outcome, 'available');
});

test('a pinned backend is the only one tried; a bad name is a clear error', async () => {
  const report = await selectBackend('wasm');
  assert.equal(report.chosen, 'wasm');
  assert.throws(() => parseBackendChoice('tpu'), /'tpu' is not a backend\. Use one of: auto, node-gpu, webgpu, node, wasm, cpu/);
});

test('the cpu backend is chosen only when pinned, and then with a warning', async () => {
  const report = await selectBackend('cpu');
  assert.equal(report.chosen, 'cpu');
  assert.match(report.warning ?? '', /30× slower/);
  await selectBackend('wasm');
});

test('SIFT_TFJS_FLAGS sets TensorFlow.js flags for the chosen backend; a wrong one names itself and the flags there are', async () => {
  await selectBackend('wasm');
  const before = tf.env().getBool('WASM_HAS_SIMD_SUPPORT');
  assert.deepEqual(applyTfjsFlags(' WASM_HAS_SIMD_SUPPORT=false , '), { WASM_HAS_SIMD_SUPPORT: false });
  assert.equal(tf.env().getBool('WASM_HAS_SIMD_SUPPORT'), false);
  tf.env().set('WASM_HAS_SIMD_SUPPORT', before);
  assert.equal(applyTfjsFlags(''), undefined);
  assert.throws(() => applyTfjsFlags('WEBGPU_NO_SUCH_FLAG=1'), /TensorFlow\.js has no flag WEBGPU_NO_SUCH_FLAG on the wasm backend; it has: .*WASM_HAS_SIMD_SUPPORT/);
  assert.throws(() => applyTfjsFlags('DEBUG'), /"DEBUG" is not NAME=value/);
});

test('on wasm a clone shares its source\'s data yet outlives it, and a variable\'s clone keeps the old value after assign', async () => {
  await selectBackend('wasm');
  const backend = tf.backend() as unknown as { refCount(dataId: object): number };
  const source = tf.tensor([1, 2, 3]);
  const copy = tf.clone(source);
  // Shared, not copied: one buffer, counted twice.
  assert.equal(copy.dataId, source.dataId);
  assert.equal(backend.refCount(source.dataId), 2);
  source.dispose();
  assert.deepEqual(Array.from(copy.dataSync()), [1, 2, 3]);
  copy.dispose();
  assert.equal(backend.refCount(source.dataId), 0, 'the buffer is freed with its last tensor');

  const variable = tf.variable(tf.tensor([4, 5]));
  const saved = tf.clone(variable);
  variable.assign(tf.tensor([6, 7]));
  assert.deepEqual(Array.from(saved.dataSync()), [4, 5]);
  assert.deepEqual(Array.from(variable.dataSync()), [6, 7]);
  tf.dispose([variable, saved]);
});

test('on wasm a row gather (the caption embedding lookup) gives the rows asked for, in their order and shape, and other gathers still work', async () => {
  await selectBackend('wasm');
  const table = tf.tensor2d([0, 1, 10, 11, 20, 21, 30, 31], [4, 2]);
  const ids = tf.tensor2d([3, 0, 3, 1, 2, 2], [2, 3], 'int32');
  const rows = tf.gather(table, ids);
  assert.deepEqual(rows.shape, [2, 3, 2]);
  assert.deepEqual(Array.from(rows.dataSync()), [30, 31, 0, 1, 30, 31, 10, 11, 20, 21, 20, 21]);
  // int32 tables, 3-D rows and a negative axis that names the first one.
  const ints = tf.tensor3d([1, 2, 3, 4, 5, 6, 7, 8], [2, 2, 2], 'int32');
  assert.deepEqual(tf.gather(ints, tf.tensor1d([1, 1, 0], 'int32'), -3).arraySync(), [[[5, 6], [7, 8]], [[5, 6], [7, 8]], [[1, 2], [3, 4]]]);
  // Along another axis: the columns.
  assert.deepEqual(tf.gather(table, tf.tensor1d([1, 0], 'int32'), 1).arraySync(), [[1, 0], [11, 10], [21, 20], [31, 30]]);
  // A gather into a table too big for the wasm memory as it stands: the memory grows while the rows are copied.
  const big = tf.fill([1 << 16, 64], 2.5);
  const picked = tf.gather(big, tf.tensor1d(Array.from({ length: 4096 }, (_, i) => (i * 7919) % (1 << 16)), 'int32'));
  const values = picked.dataSync();
  assert.equal(values.length, 4096 * 64);
  assert.ok(values.every((v) => v === 2.5));
  tf.dispose([table, ids, rows, ints, big, picked]);
});
