/**
 * Contrastive losses over a batch of paired embeddings. Each returns the
 * scalar loss and the batch × batch matrix of per-pair terms that example
 * selection scores candidate batches with (DESIGN.md, "The method").
 */
import * as tf from '@tensorflow/tfjs-core';
import { matMul } from './ops';

export type LossKind = 'sigmoid' | 'softmax';

export interface ContrastiveLoss {
  /** Mean loss per example of the batch. */
  loss: tf.Scalar;
  /** [batch, batch]: row i = image i, column j = caption j. */
  logits: tf.Tensor2D;
  /**
   * [batch, batch] per-pair terms. The loss is their sum over the whole
   * matrix / batch for sigmoid, and the mean of the diagonal for softmax.
   */
  pairLoss: tf.Tensor2D;
}

/** t · ⟨xᵢ, yⱼ⟩ (+ b): every image against every caption. */
export function pairLogits(image: tf.Tensor2D, text: tf.Tensor2D, temperature: tf.Tensor, bias?: tf.Tensor): tf.Tensor2D {
  const scaled = tf.mul(matMul(image, tf.transpose(text)), temperature);
  return (bias ? tf.add(scaled, bias) : scaled) as tf.Tensor2D;
}

/**
 * Sigmoid loss, SigLIP (Zhai et al. 2023, "Sigmoid Loss for Language Image
 * Pre-Training", §3.2, eq. 1): ℓᵢⱼ = log(1 + exp(−zᵢⱼ(t⟨xᵢ,yⱼ⟩ + b))) with
 * zᵢᵢ = 1 and zᵢⱼ = −1 off the diagonal; loss = Σᵢⱼ ℓᵢⱼ / batch. It is written
 * with softplus, whose gradient runs on every backend (logSigmoid's does not).
 */
export function sigmoidLoss(image: tf.Tensor2D, text: tf.Tensor2D, temperature: tf.Tensor, bias: tf.Tensor): ContrastiveLoss {
  const batch = image.shape[0];
  const logits = pairLogits(image, text, temperature, bias);
  const signs = tf.sub(tf.mul(tf.eye(batch), 2), 1); // +1 on the diagonal, −1 elsewhere
  const pairLoss = tf.softplus(tf.neg(tf.mul(signs, logits))) as tf.Tensor2D;
  const loss = tf.div(tf.sum(pairLoss), batch) as tf.Scalar;
  return { loss, logits, pairLoss };
}

/**
 * Softmax loss, CLIP (Radford et al. 2021, "Learning Transferable Visual
 * Models From Natural Language Supervision", §2.3 and Figure 3): the mean of
 * image→text and text→image cross-entropies over the batch. It is not a sum
 * of independent pair terms; `pairLoss[i][j]` is the loss the batch would
 * give if caption j were image i's positive: ½[(lseᵢ(row) − lᵢⱼ) + (lseⱼ(column) − lᵢⱼ)].
 * Its diagonal holds each example's own loss.
 */
export function softmaxLoss(image: tf.Tensor2D, text: tf.Tensor2D, temperature: tf.Tensor): ContrastiveLoss {
  const batch = image.shape[0];
  const logits = pairLogits(image, text, temperature);
  const rowLse = tf.logSumExp(logits, 1, true); // image → text
  const columnLse = tf.logSumExp(logits, 0, true); // text → image
  const pairLoss = tf.mul(tf.sub(tf.add(rowLse, columnLse), tf.mul(logits, 2)), 0.5) as tf.Tensor2D;
  const loss = tf.div(tf.sum(tf.mul(pairLoss, tf.eye(batch))), batch) as tf.Scalar;
  return { loss, logits, pairLoss };
}

/**
 * How far the learner's pair probabilities are from a teacher's on the same
 * batch (both [batch, batch] logits, the teacher's constant): the divergence
 * the loss's own probability model gives, so 0 exactly when they agree. Sigmoid:
 * each pair is a Bernoulli, Σᵢⱼ KL(σ(rᵢⱼ) ‖ σ(lᵢⱼ)) / batch, on the scale of
 * the sigmoid loss. Softmax: the mean of the rows' (image → text) and the
 * columns' (text → image) KL(softmax(r) ‖ softmax(l)), per example.
 */
export function distillationLoss(kind: LossKind, logits: tf.Tensor2D, teacher: tf.Tensor2D): tf.Scalar {
  const batch = logits.shape[0];
  switch (kind) {
    case 'sigmoid': {
      // KL(p ‖ σ(l)) = [softplus(l) − p·l] − [softplus(r) − p·r], p = σ(r).
      const p = tf.sigmoid(teacher);
      const cross = tf.sub(tf.softplus(logits), tf.mul(p, logits));
      const entropy = tf.sub(tf.softplus(teacher), tf.mul(p, teacher));
      return tf.div(tf.sum(tf.sub(cross, entropy)), batch) as tf.Scalar;
    }
    case 'softmax': {
      const kl = (axis: number): tf.Tensor => {
        const teacherLog = tf.logSoftmax(axis === 1 ? teacher : tf.transpose(teacher));
        const studentLog = tf.logSoftmax(axis === 1 ? logits : tf.transpose(logits));
        return tf.sum(tf.mul(tf.exp(teacherLog), tf.sub(teacherLog, studentLog)));
      };
      return tf.div(tf.add(kl(1), kl(0)), 2 * batch) as tf.Scalar;
    }
    default: {
      const unknown: never = kind;
      throw new Error(`unknown loss ${String(unknown)}`);
    }
  }
}

/**
 * How far the learner's unit embeddings of a batch are from a teacher's of the
 * same pairs (constants of the learner's width): per example, the mean over the
 * two towers of ½‖e − t‖² = 1 − cos(e, t); 0 when they coincide, 1 when orthogonal.
 */
export function featureDistillationLoss(image: tf.Tensor2D, text: tf.Tensor2D, teacherImage: tf.Tensor2D, teacherText: tf.Tensor2D): tf.Scalar {
  const batch = image.shape[0];
  const squared = tf.add(tf.sum(tf.square(tf.sub(image, teacherImage))), tf.sum(tf.square(tf.sub(text, teacherText))));
  return tf.div(squared, 4 * batch) as tf.Scalar;
}

export function contrastiveLoss(kind: LossKind, image: tf.Tensor2D, text: tf.Tensor2D, temperature: tf.Tensor, bias: tf.Tensor): ContrastiveLoss {
  switch (kind) {
    case 'sigmoid':
      return sigmoidLoss(image, text, temperature, bias);
    case 'softmax':
      return softmaxLoss(image, text, temperature);
    default: {
      const unknown: never = kind;
      throw new Error(`unknown loss ${String(unknown)}`);
    }
  }
}
