/**
 * The few tensor operations the dual encoder is built from, each with a
 * hand-written gradient so that forward and backward passes stay on the
 * wasm backend's fast kernels (timings of single kernels on 2 cores; the
 * step as a whole: docs/results.md, `npm run bench:speed`):
 * - wasm's matMul with a transpose flag runs its naive loop (~2 GFLOP/s
 *   against ~25 without), so gradients transpose explicitly there (not where
 *   the native BLAS runs matMuls, see nativeMatMul.ts);
 * - wasm's 2-D transpose of a tall matrix writes with a huge stride (3.5 ms
 *   for 4096×64); `transpose2d` cuts it into 64-row blocks (0.3 ms);
 * - a sum over the first axis (bias and gain gradients, tfjs's own broadcast
 *   gradient) transposes first (6.6 ms for 4096×128); a row of ones times
 *   the matrix is one fast matMul (0.2 ms);
 * - `gather`'s gradient (UnsortedSegmentSum) has no wasm kernel; `embed`
 *   computes it as one-hotᵀ · dy;
 * - `tf.logSigmoid`'s gradient throws on intermediate tensors; losses use
 *   −softplus(−x).
 * Fewer, larger kernels also mean fewer dispatches on webgpu.
 */
import * as tf from '@tensorflow/tfjs-core';
// tfjs-core's entry point registers no gradients; the union package does it with this import.
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import { nativeKernels, transposeFlagsAreFast } from '../nativeMatMul';

type GradFunc = Parameters<typeof tf.customGrad>[0];

/** Rows per block of `transpose2d`: blocks of 64 rows keep wasm's transpose inside the cache. */
const transposeBlock = 64;

/** xᵀ of a 2-D tensor; on wasm a tall matrix is transposed in blocks of rows (same values, ~10× faster). */
export function transpose2d(x: tf.Tensor2D): tf.Tensor2D {
  const [rows, columns] = x.shape;
  if (tf.getBackend() !== 'wasm' || rows <= transposeBlock || rows % transposeBlock !== 0) return tf.transpose(x);
  const blocks = rows / transposeBlock;
  // [blocks, 64, columns] → [blocks, columns, 64] → [columns, blocks, 64] = [columns, rows].
  const withinBlocks = tf.transpose(tf.reshape(x, [blocks, transposeBlock, columns]), [0, 2, 1]);
  return tf.reshape(tf.transpose(withinBlocks, [1, 0, 2]), [columns, rows]);
}

/** Σ over the rows of a 2-D tensor, as onesᵀ · x: [rows, columns] → [columns]. */
export function sumRows(x: tf.Tensor2D): tf.Tensor1D {
  return tf.reshape(tf.matMul(tf.ones([1, x.shape[0]]), x), [x.shape[1]]);
}

/** dy · bᵀ and aᵀ · dy: the gradients of a · b, with explicit transposes where transpose flags are slow. */
function matMulGrads(dy: tf.Tensor2D, a: tf.Tensor2D, b: tf.Tensor2D): [tf.Tensor2D, tf.Tensor2D] {
  if (transposeFlagsAreFast()) return [tf.matMul(dy, b, false, true), tf.matMul(a, dy, true, false)];
  return [tf.matMul(dy, transpose2d(b)), tf.matMul(transpose2d(a), dy)];
}

/** a · b for 2-D tensors, with a gradient that stays on fast kernels. */
export const matMul = tf.customGrad(((a: tf.Tensor2D, b: tf.Tensor2D, save: tf.GradSaveFunc) => {
  save([a, b]);
  return {
    value: tf.matMul(a, b),
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const [savedA, savedB] = saved as tf.Tensor2D[];
      return matMulGrads(dy as tf.Tensor2D, savedA, savedB);
    },
  };
}) as unknown as GradFunc) as (a: tf.Tensor2D, b: tf.Tensor2D) => tf.Tensor2D;

/** x · w + b for a 2-D x, as one unit so its bias gradient is a ones-row matMul. */
const affine = tf.customGrad(((x: tf.Tensor2D, w: tf.Tensor2D, b: tf.Tensor1D, save: tf.GradSaveFunc) => {
  save([x, w]);
  return {
    // One sgemm onto the bias where the native addon runs it (nativeMatMul.ts).
    value: nativeKernels() ? (tf.engine().runKernel('SiftAffine', { x, w, b }) as tf.Tensor2D) : tf.add(tf.matMul(x, w), b),
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const [savedX, savedW] = saved as tf.Tensor2D[];
      const g = dy as tf.Tensor2D;
      return [...matMulGrads(g, savedX, savedW), sumRows(g)];
    },
  };
}) as unknown as GradFunc) as (x: tf.Tensor2D, w: tf.Tensor2D, b: tf.Tensor1D) => tf.Tensor2D;

/** x · w + b over the last axis of a tensor of any rank. */
export function dense(x: tf.Tensor, w: tf.Tensor2D, b?: tf.Tensor1D): tf.Tensor {
  const inner = x.shape[x.shape.length - 1];
  const flat = tf.reshape(x, [x.size / inner, inner]) as tf.Tensor2D;
  const y = b ? affine(flat, w, b) : matMul(flat, w);
  return tf.reshape(y, [...x.shape.slice(0, -1), w.shape[1]]);
}

/**
 * x + p where p has the shape of x without its first (batch) axis: the
 * position table added to every example. Its gradient for p sums over the
 * batch with a ones-row matMul. The gradient for x is a copy of dy: a
 * gradient that shares dy's memory (dy itself, or a reshape of it) is freed
 * twice by tfjs once a custom-gradient op upstream has used it (wasm aborts
 * with "memory access out of bounds").
 */
export const addToEach = tf.customGrad(((x: tf.Tensor, p: tf.Tensor) => ({
  value: tf.add(x, p),
  gradFunc: (dy: tf.Tensor) => [tf.mul(dy, 1), tf.reshape(sumRows(tf.reshape(dy, [dy.shape[0], -1]) as tf.Tensor2D), p.shape)],
})) as unknown as GradFunc) as (x: tf.Tensor, p: tf.Tensor) => tf.Tensor;

/**
 * Rows of `table` for `ids` (int32, any shape). Its gradient is the one-hot
 * matrix of the ids, transposed, times the incoming gradient.
 */
export function embed(table: tf.Tensor2D, ids: tf.Tensor): tf.Tensor {
  const vocab = table.shape[0];
  const flatIds = tf.reshape(ids, [-1]) as tf.Tensor1D;
  const lookup = tf.customGrad(((weights: tf.Tensor, save: tf.GradSaveFunc) => {
    save([flatIds]); // kept alive until the backward pass
    return {
      value: tf.gather(weights, flatIds),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const oneHot = tf.cast(tf.oneHot(saved[0] as tf.Tensor1D, vocab), 'float32') as tf.Tensor2D;
        return [tf.matMul(transpose2d(oneHot), dy as tf.Tensor2D)];
      },
    };
  }) as unknown as GradFunc);
  return tf.reshape(lookup(table), [...ids.shape, table.shape[1]]);
}

/**
 * Layer normalisation over the last axis (Ba et al. 2016, §3.1), with the
 * closed-form gradient: dx = (ĝ − mean(ĝ) − x̂·mean(ĝ·x̂)) / σ where ĝ = dy·gain
 * (a dozen kernels instead of autodiff's ~30 through `moments`).
 */
const layerNorm2d = tf.customGrad(((x: tf.Tensor2D, gain: tf.Tensor1D, bias: tf.Tensor1D, save: tf.GradSaveFunc) => {
  // One pass each way per row where the native addon runs it (nativeMatMul.ts), else tfjs's kernels.
  const native = nativeKernels();
  let value: tf.Tensor | undefined;
  let normed: tf.Tensor;
  let inverseStd: tf.Tensor;
  if (native) {
    [value, normed, inverseStd] = tf.engine().runKernel('SiftLayerNorm', { x, gain, bias }, { epsilon: layerNormEpsilon }) as tf.Tensor[];
  } else {
    const { mean, variance } = tf.moments(x, 1, true);
    inverseStd = tf.rsqrt(tf.add(variance, layerNormEpsilon));
    normed = tf.mul(tf.sub(x, mean), inverseStd);
  }
  save([normed, inverseStd, gain]);
  return {
    value: value ?? tf.add(tf.mul(normed, gain), bias),
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const [savedNormed, savedInverseStd, savedGain] = saved;
      const g = dy as tf.Tensor2D;
      let dx: tf.Tensor;
      if (native) {
        dx = tf.engine().runKernel('SiftLayerNormGrad', { dy: g, gain: savedGain, normed: savedNormed, inverseStd: savedInverseStd }) as tf.Tensor;
      } else {
        const scaled = tf.mul(g, savedGain);
        dx = tf.mul(tf.sub(tf.sub(scaled, tf.mean(scaled, 1, true)), tf.mul(savedNormed, tf.mean(tf.mul(scaled, savedNormed), 1, true))), savedInverseStd);
      }
      return [dx, sumRows(tf.mul(g, savedNormed) as tf.Tensor2D), sumRows(g)];
    },
  };
}) as unknown as GradFunc) as (x: tf.Tensor2D, gain: tf.Tensor1D, bias: tf.Tensor1D) => tf.Tensor2D;

const layerNormEpsilon = 1e-5;

/** Layer normalisation over the last axis of a tensor of any rank. */
export function layerNorm(x: tf.Tensor, gain: tf.Tensor1D, bias: tf.Tensor1D): tf.Tensor {
  const width = x.shape[x.rank - 1];
  return tf.reshape(layerNorm2d(tf.reshape(x, [-1, width]) as tf.Tensor2D, gain, bias), x.shape);
}

/**
 * GELU, sigmoid approximation x·σ(1.702x) (Hendrycks & Gimpel 2016, §2):
 * cheap and smooth; gradient σ(1.702x)·(1 + 1.702x·(1 − σ(1.702x))).
 */
export const gelu = tf.customGrad(((x: tf.Tensor, save: tf.GradSaveFunc) => {
  // One pass each way where the native addon runs it (nativeMatMul.ts), else tfjs's kernels.
  const native = nativeKernels();
  const [value, gate] = native ? (tf.engine().runKernel('SiftGelu', { x }) as tf.Tensor[]) : [undefined, tf.sigmoid(tf.mul(x, 1.702))];
  save([x, gate]);
  return {
    value: value ?? tf.mul(x, gate),
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const [savedX, savedGate] = saved;
      if (native) return [tf.engine().runKernel('SiftGeluGrad', { dy, x: savedX, gate: savedGate }) as tf.Tensor];
      const slope = tf.mul(savedGate, tf.add(1, tf.mul(tf.mul(savedX, 1.702), tf.sub(1, savedGate))));
      return [tf.mul(dy, slope)];
    },
  };
}) as unknown as GradFunc) as (x: tf.Tensor) => tf.Tensor;

/** Divides each row by its L2 norm. */
export function l2Normalize(x: tf.Tensor2D, epsilon = 1e-6): tf.Tensor2D {
  return tf.div(x, tf.sqrt(tf.add(tf.sum(tf.square(x), 1, true), epsilon)));
}
