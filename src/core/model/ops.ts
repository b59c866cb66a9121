/**
 * The few tensor operations the dual encoder is built from, written so every
 * forward and backward pass stays on the wasm backend's fast kernels:
 * - tfjs's own matMul gradient uses transpose flags, which drop wasm from
 *   ~20 GFLOP/s to ~2 (measured: test/unit/ops.test.ts and `sift doctor`);
 *   `matMul` here transposes explicitly instead.
 * - `gather`'s gradient (UnsortedSegmentSum) has no wasm kernel; `embed`
 *   computes it as one-hotᵀ · dy.
 * - `tf.logSigmoid`'s gradient throws on intermediate tensors; losses use
 *   −softplus(−x).
 */
import * as tf from '@tensorflow/tfjs-core';
// tfjs-core's entry point registers no gradients; the union package does it with this import.
import '@tensorflow/tfjs-core/dist/register_all_gradients';

/** a · b for 2-D tensors, with a gradient that uses explicit transposes. */
export const matMul = tf.customGrad(((a: tf.Tensor, b: tf.Tensor, save: tf.GradSaveFunc) => {
  save([a, b]);
  return {
    value: tf.matMul(a as tf.Tensor2D, b as tf.Tensor2D),
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const [savedA, savedB] = saved as tf.Tensor2D[];
      return [tf.matMul(dy as tf.Tensor2D, tf.transpose(savedB)), tf.matMul(tf.transpose(savedA), dy as tf.Tensor2D)];
    },
  };
}) as unknown as Parameters<typeof tf.customGrad>[0]) as (a: tf.Tensor2D, b: tf.Tensor2D) => tf.Tensor2D;

/** x · w + b over the last axis of a tensor of any rank. */
export function dense(x: tf.Tensor, w: tf.Tensor2D, b?: tf.Tensor1D): tf.Tensor {
  const inner = x.shape[x.shape.length - 1];
  const rows = x.size / inner;
  let y: tf.Tensor = matMul(tf.reshape(x, [rows, inner]), w);
  if (b) y = tf.add(y, b);
  return tf.reshape(y, [...x.shape.slice(0, -1), w.shape[1]]);
}

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
        return [tf.matMul(tf.transpose(oneHot), dy as tf.Tensor2D)];
      },
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]);
  return tf.reshape(lookup(table), [...ids.shape, table.shape[1]]);
}

/** Layer normalisation over the last axis (Ba et al. 2016). */
export function layerNorm(x: tf.Tensor, gain: tf.Tensor1D, bias: tf.Tensor1D, epsilon = 1e-5): tf.Tensor {
  const axis = x.rank - 1;
  const { mean, variance } = tf.moments(x, axis, true);
  return tf.add(tf.mul(tf.div(tf.sub(x, mean), tf.sqrt(tf.add(variance, epsilon))), gain), bias);
}

/** GELU, sigmoid approximation x·σ(1.702x) (Hendrycks & Gimpel 2016, §2): cheap and smooth. */
export function gelu(x: tf.Tensor): tf.Tensor {
  return tf.mul(x, tf.sigmoid(tf.mul(x, 1.702)));
}

/** Divides each row by its L2 norm. */
export function l2Normalize(x: tf.Tensor2D, epsilon = 1e-6): tf.Tensor2D {
  return tf.div(x, tf.sqrt(tf.add(tf.sum(tf.square(x), 1, true), epsilon)));
}
