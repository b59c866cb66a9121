/**
 * The native matMul addon (src/core/nativeMatMul.ts) gives the same products
 * as a plain triple loop, for every shape and transpose the model uses, and
 * its fused elementwise kernels what tfjs's own kernels give.
 * Skipped where the addon is not built, unless SIFT_REQUIRE_NATIVE=1.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend } from '../../src/core/backend';
import { dense, gelu, layerNorm } from '../../src/core/model/ops';
import { nativeKernels, useNativeMatMul } from '../../src/core/nativeMatMul';
import { Rng } from '../../src/core/random';

let active = false;
let why = '';

before(async () => {
  await selectBackend('wasm');
  const status = useNativeMatMul();
  active = status.active;
  why = `${status.reason ?? ''} ${status.fix ? `(${status.fix})` : ''}`;
  if (!active && process.env.SIFT_REQUIRE_NATIVE === '1') throw new Error(`SIFT_REQUIRE_NATIVE=1 but the native matMul is off: ${why}`);
});

function random(shape: number[], seed: number): tf.Tensor {
  const rng = new Rng(seed);
  return tf.tensor(Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rng.normal()), shape);
}

/** a·b by definition, batch by batch, in float64. */
function reference(a: Float32Array, b: Float32Array, batch: number, m: number, n: number, k: number, transposeA: boolean, transposeB: boolean): Float64Array {
  const out = new Float64Array(batch * m * n);
  for (let t = 0; t < batch; t++) {
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let sum = 0;
        for (let p = 0; p < k; p++) {
          const x = transposeA ? a[t * m * k + p * m + i] : a[t * m * k + i * k + p];
          const y = transposeB ? b[t * k * n + j * k + p] : b[t * k * n + p * n + j];
          sum += x * y;
        }
        out[t * m * n + i * n + j] = sum;
      }
    }
  }
  return out;
}

test('native matMul equals the definition for 2-D and batched shapes, with and without transposes', (t) => {
  if (!active) {
    t.skip(`native matMul not active: ${why}`);
    return;
  }
  let seed = 1;
  for (const [batch, m, n, k] of [
    [1, 37, 29, 41],
    [3, 5, 7, 11],
    [1, 1, 64, 4096],
    [1, 257, 3, 1],
  ]) {
    for (const transposeA of [false, true]) {
      for (const transposeB of [false, true]) {
        const shapeA = transposeA ? [k, m] : [m, k];
        const shapeB = transposeB ? [n, k] : [k, n];
        const a = random(batch === 1 ? shapeA : [batch, ...shapeA], seed++);
        const b = random(batch === 1 ? shapeB : [batch, ...shapeB], seed++);
        const product = tf.matMul(a, b, transposeA, transposeB);
        assert.deepEqual(product.shape, batch === 1 ? [m, n] : [batch, m, n]);
        const want = reference(a.dataSync() as Float32Array, b.dataSync() as Float32Array, batch, m, n, k, transposeA, transposeB);
        const got = product.dataSync();
        const scale = Math.max(1, ...Array.from(want, Math.abs));
        got.forEach((value, i) => assert.ok(Math.abs(value - want[i]) <= 1e-5 * scale * Math.sqrt(k), `[${batch},${m},${n},${k}] tA=${transposeA} tB=${transposeB} at ${i}: ${value} vs ${want[i]}`));
        tf.dispose([a, b, product]);
      }
    }
  }
});

test('a broadcast batch, which the native kernel does not take, still multiplies through wasm', (t) => {
  if (!active) {
    t.skip(`native matMul not active: ${why}`);
    return;
  }
  const a = random([2, 3, 4], 9);
  const b = random([4, 5], 10);
  const broadcast = tf.matMul(a, b);
  assert.deepEqual(broadcast.shape, [2, 3, 5]);
  const tiled = tf.matMul(a, tf.tile(tf.expandDims(b, 0), [2, 1, 1]));
  broadcast.dataSync().forEach((value, i) => assert.ok(Math.abs(value - tiled.dataSync()[i]) < 1e-4));
});

test('the fused GELU, layer norm and x·w + b kernels give what tfjs computes on its cpu backend, values and gradients', async (t) => {
  if (!active) {
    t.skip(`native matMul not active: ${why}`);
    return;
  }
  assert.ok(nativeKernels(), 'the addon has the fused kernels');
  // Shapes like the model's (rows of 64 or 128 wide) and odd ones; large inputs saturate GELU's gate.
  const cases = [
    { rows: 96, width: 64, out: 128 },
    { rows: 7, width: 33, out: 5 },
  ];
  for (const { rows, width, out } of cases) {
    const seed = rows * 1000 + width;
    const x = Array.from(random([rows, width], seed).dataSync());
    x[0] = 60;
    x[1] = -60;
    const gain = Array.from(random([width], seed + 1).dataSync());
    const bias = Array.from(random([width], seed + 2).dataSync());
    const w = Array.from(random([width, out], seed + 3).dataSync());
    const b = Array.from(random([out], seed + 4).dataSync());
    const upstream = Array.from(random([rows, out], seed + 5).dataSync());
    // Every fused op in one chain, with a weighted sum as the loss so every output element gets its own gradient.
    const run = (): number[][] =>
      tf.tidy(() => {
        const inputs = [tf.tensor2d(x, [rows, width]), tf.tensor1d(gain), tf.tensor1d(bias), tf.tensor2d(w, [width, out]), tf.tensor1d(b)];
        const forward = (xs: tf.Tensor, g: tf.Tensor, be: tf.Tensor, ws: tf.Tensor, bs: tf.Tensor): tf.Tensor =>
          dense(gelu(layerNorm(gelu(xs), g as tf.Tensor1D, be as tf.Tensor1D)), ws as tf.Tensor2D, bs as tf.Tensor1D);
        const value = forward(...(inputs as [tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]));
        const grads = tf.grads((...args: tf.Tensor[]) => tf.sum(tf.mul(forward(...(args as [tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor])), tf.tensor2d(upstream, [rows, out]))))(inputs);
        return [value, ...grads].map((tensor) => Array.from(tensor.dataSync()));
      });
    const fused = run();
    await tf.setBackend('cpu');
    const plain = run();
    await tf.setBackend('wasm');
    const names = ['value', 'd x', 'd gain', 'd bias', 'd w', 'd b'];
    fused.forEach((got, n) => {
      const want = plain[n];
      const scale = Math.max(1, ...want.map(Math.abs));
      got.forEach((value, i) => assert.ok(Math.abs(value - want[i]) <= 2e-4 * scale, `[${rows}×${width}] ${names[n]} at ${i}: fused ${value}, tfjs ${want[i]}`));
    });
  }
});
