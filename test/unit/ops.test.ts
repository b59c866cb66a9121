import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend } from '../../src/core/backend';
import { embed, matMul } from '../../src/core/model/ops';
import { patchify } from '../../src/core/model/dualEncoder';

before(async () => {
  await selectBackend('wasm');
});

function close(a: number[], b: number[], tol = 1e-4): void {
  assert.equal(a.length, b.length);
  a.forEach((x, i) => assert.ok(Math.abs(x - b[i]) < tol, `index ${i}: ${x} vs ${b[i]}`));
}

test('matMul gradient (explicit transposes) equals the textbook gradient', () => {
  const a = tf.tensor2d([[1, 2, 3], [4, 5, 6]]);
  const b = tf.tensor2d([[1, -1], [0, 2], [3, 1]]);
  const dy = tf.tensor2d([[1, 0.5], [-2, 1]]);
  const [da, db] = tf.grads((x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.mul(matMul(x as tf.Tensor2D, y as tf.Tensor2D), dy)))([a, b]);
  // d/da = dy · bᵀ, d/db = aᵀ · dy
  close([...da.dataSync()], [...tf.matMul(dy, b, false, true).dataSync()]);
  close([...db.dataSync()], [...tf.matMul(a, dy, true, false).dataSync()]);
  tf.dispose([a, b, dy, da, db]);
});

test('embed gathers rows and its one-hot gradient accumulates repeated ids', () => {
  const table = tf.tensor2d([[1, 2], [3, 4], [5, 6]]);
  const ids = tf.tensor2d([[2, 0], [2, 2]], [2, 2], 'int32');
  const rows = embed(table, ids);
  assert.deepEqual(rows.shape, [2, 2, 2]);
  close([...rows.dataSync()], [5, 6, 1, 2, 5, 6, 5, 6]);
  const grad = tf.grad((t: tf.Tensor) => tf.sum(embed(t as tf.Tensor2D, ids)))(table);
  // id 2 appears three times, id 0 once, id 1 never.
  close([...grad.dataSync()], [1, 1, 0, 0, 3, 3]);
  tf.dispose([table, ids, rows, grad]);
});

test('patchify cuts HWC images into row-major patches and box-downsamples', () => {
  // 4×4 image, channel value = y*4+x on all three channels.
  const size = 4;
  const image = new Float32Array(size * size * 3);
  for (let y = 0; y < size; y++) for (let x = 0; x < size; x++) for (let c = 0; c < 3; c++) image[(y * size + x) * 3 + c] = y * 4 + x;
  const full = patchify(image, 1, size, 2, 1);
  // Token 1 = top-right 2×2 patch: pixels (0,2),(0,3),(1,2),(1,3)
  const token1 = [...full.patches.slice(12, 24)].filter((_, i) => i % 3 === 0);
  assert.deepEqual(token1, [2, 3, 6, 7]);
  const half = patchify(image, 1, size, 2, 2); // 2×2 image, one 2×2 patch
  const means = [...half.patches].filter((_, i) => i % 3 === 0);
  assert.deepEqual(means, [2.5, 4.5, 10.5, 12.5]);
});
