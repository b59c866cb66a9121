import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend } from '../../src/core/backend';
import { addToEach, dense, embed, gelu, layerNorm, matMul, transpose2d } from '../../src/core/model/ops';
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

/** Gradients of Σ f(xs)·weights, with distinct weights per output element so that every gradient entry counts. */
function weightedGrads(f: (...xs: tf.Tensor[]) => tf.Tensor, xs: tf.Tensor[]): number[][] {
  const shape = f(...xs).shape;
  const weights = tf.reshape(tf.range(1, shape.reduce((a, b) => a * b, 1) + 1), shape);
  return tf.grads((...args: tf.Tensor[]) => tf.sum(tf.mul(f(...args), weights)))(xs).map((g) => [...g.dataSync()]);
}

test('hand-written gradients (dense with bias, layerNorm, gelu, addToEach) equal tfjs autodiff of the same formulas', () => {
  const rng = (shape: number[], seed: number) => tf.randomNormal(shape, 0, 1, 'float32', seed);
  // 130 rows: not a multiple of transpose2d's block, 128: one that is.
  for (const rows of [130, 128]) {
    const x = rng([rows, 6], 1);
    const w = rng([6, 5], 2);
    const b = rng([5], 3);
    const reference = (xx: tf.Tensor, ww: tf.Tensor, bb: tf.Tensor) => tf.add(tf.matMul(xx as tf.Tensor2D, ww as tf.Tensor2D), bb);
    const ours = weightedGrads((xx, ww, bb) => dense(xx, ww as tf.Tensor2D, bb as tf.Tensor1D), [x, w, b]);
    weightedGrads(reference, [x, w, b]).forEach((g, i) => close(ours[i], g, 1e-2));
  }
  const x = rng([4, 3, 8], 4);
  const gain = rng([8], 5);
  const bias = rng([8], 6);
  const referenceNorm = (xx: tf.Tensor, gg: tf.Tensor, bb: tf.Tensor) => {
    const { mean, variance } = tf.moments(xx, 2, true);
    return tf.add(tf.mul(tf.div(tf.sub(xx, mean), tf.sqrt(tf.add(variance, 1e-5))), gg), bb);
  };
  close([...layerNorm(x, gain as tf.Tensor1D, bias as tf.Tensor1D).dataSync()], [...referenceNorm(x, gain, bias).dataSync()]);
  const oursNorm = weightedGrads((xx, gg, bb) => layerNorm(xx, gg as tf.Tensor1D, bb as tf.Tensor1D), [x, gain, bias]);
  weightedGrads(referenceNorm, [x, gain, bias]).forEach((g, i) => close(oursNorm[i], g, 1e-2));
  const referenceGelu = (xx: tf.Tensor) => tf.mul(xx, tf.sigmoid(tf.mul(xx, 1.702)));
  close(weightedGrads(gelu, [x])[0], weightedGrads(referenceGelu, [x])[0], 1e-3);
  const position = rng([3, 8], 7);
  const oursAdd = weightedGrads(addToEach, [x, position]);
  weightedGrads((xx, pp) => tf.add(xx, pp), [x, position]).forEach((g, i) => close(oursAdd[i], g, 1e-3));
});

test('transpose2d equals tf.transpose for tall, blocked and odd shapes', () => {
  for (const shape of [[4096, 48], [640, 3], [130, 7], [64, 64]] as [number, number][]) {
    const x = tf.randomNormal(shape, 0, 1, 'float32', 9) as tf.Tensor2D;
    assert.deepEqual([...transpose2d(x).dataSync()], [...tf.transpose(x).dataSync()], `shape ${shape}`);
  }
});
