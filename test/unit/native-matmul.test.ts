/**
 * The native matMul addon (src/core/nativeMatMul.ts) gives the same products
 * as a plain triple loop, for every shape and transpose the model uses.
 * Skipped where the addon is not built, unless SIFT_REQUIRE_NATIVE=1.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend } from '../../src/core/backend';
import { useNativeMatMul } from '../../src/core/nativeMatMul';
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
