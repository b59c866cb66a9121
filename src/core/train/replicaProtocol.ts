/**
 * What the main thread and its replica threads (replicas.ts,
 * replicaThread.ts) say to each other, and the one forward pass both sides
 * run: embed a shard of rows, in chunks the wasm backend can take.
 */
import * as tf from '@tensorflow/tfjs-core';
import { patchify, type DualEncoder, type PatchBatch } from '../model/dualEncoder';
import { contrastiveLoss, type LossKind } from '../model/losses';
import type { SquareMatrix } from '../selection/scores';

/** Largest batch one forward pass takes: the wasm backend fails with an out-of-bounds memory access between 1,600 and 2,560 images at the default width (64), sooner for wider models. */
export const FORWARD_CHUNK = 512;

/** Rows to embed: images as patch batches (full resolution first, then low), captions as token ids. */
export interface Shard {
  images: PatchBatch[];
  /** Padded token ids, [texts, textLength]. */
  ids?: Int32Array;
  texts: number;
}

/**
 * A super-batch to score: the learner's pass over its images and captions
 * (the pixels are patchified by whoever scores them) and the reference's
 * embeddings of the same rows, gathered from its cached pass over the pool.
 */
export interface Candidates {
  count: number;
  loss: LossKind;
  learner?: {
    /** [count, imageSize, imageSize, 3]. */
    pixels: Float32Array;
    imageSize: number;
    patchSize: number;
    /** Downsampling factor of the scoring pass (1 = full resolution). */
    scale: number;
    /** Each distinct caption's padded token ids, [texts, textLength]. */
    ids: Int32Array;
    texts: number;
    /** Image row r's caption is distinct caption textOf[r]. */
    textOf: Int32Array;
  };
  reference?: {
    /** [count, dim] each, row r for candidate r. */
    image: Float32Array;
    text: Float32Array;
    temperature: number;
    bias: number;
  };
}

/** A candidate set's per-pair loss and logit matrices (DESIGN.md: every score is built from them). */
export interface PairMatrices {
  pairLoss: SquareMatrix;
  logits: SquareMatrix;
}

/** The learner's and the reference's matrices over a candidate set, for the parts it asked for. */
export interface CandidateScores {
  learner?: PairMatrices;
  reference?: PairMatrices;
}

export type ReplicaRequest =
  | { type: 'embed'; id: number; shard: Shard }
  | { type: 'score'; id: number; candidates: Candidates }
  | {
      type: 'gradients';
      id: number;
      shard: Shard;
      /** Int32 [state]: 0 while the main thread computes the loss, 1 once `upstream` holds d loss / d embedding, 2 if the step is abandoned. */
      signal: SharedArrayBuffer;
      /** Float32 [rows·dim image gradient, rows·dim text gradient]. */
      upstream: SharedArrayBuffer;
      /** Length of the flat gradient vector (every trainable variable). */
      parameters: number;
    };

export type ReplicaReply =
  | { type: 'embedded'; id: number; image?: Float32Array; text?: Float32Array }
  | { type: 'scored'; id: number; scores: CandidateScores }
  | { type: 'gradients'; id: number; flat: Float32Array }
  | { type: 'failed'; id: number; message: string };

function concatRows(parts: tf.Tensor2D[]): tf.Tensor2D {
  return parts.length === 1 ? parts[0] : (tf.concat(parts, 0) as tf.Tensor2D);
}

/** Image and caption embeddings of a shard, [rows, embedDim] each (undefined where the shard has none). */
export function embedShard(model: DualEncoder, shard: Shard): { image?: tf.Tensor2D; text?: tf.Tensor2D } {
  const imageParts: tf.Tensor2D[] = [];
  for (const batch of shard.images) {
    const perImage = batch.patches.length / batch.count;
    for (let start = 0; start < batch.count; start += FORWARD_CHUNK) {
      const count = Math.min(FORWARD_CHUNK, batch.count - start);
      imageParts.push(model.embedImages({ patches: batch.patches.subarray(start * perImage, (start + count) * perImage), count, scale: batch.scale }));
    }
  }
  const textParts: tf.Tensor2D[] = [];
  if (shard.ids) {
    const length = model.config.textLength;
    for (let start = 0; start < shard.texts; start += FORWARD_CHUNK) {
      const count = Math.min(FORWARD_CHUNK, shard.texts - start);
      textParts.push(model.embedTexts(shard.ids.subarray(start * length, (start + count) * length), count));
    }
  }
  return { image: imageParts.length ? concatRows(imageParts) : undefined, text: textParts.length ? concatRows(textParts) : undefined };
}

/** The shard of the learner's scoring pass over a candidate set: its images patchified at the scoring resolution, each distinct caption once. */
export function candidateShard(learner: NonNullable<Candidates['learner']>, count: number): Shard {
  return { images: [patchify(learner.pixels, count, learner.imageSize, learner.patchSize, learner.scale)], ids: learner.ids, texts: learner.texts };
}

/**
 * [pairLoss, logits] tensors of a candidate set: the learner's from its
 * embeddings (`text` one row per distinct caption, expanded by `textOf`) and
 * logit scale, then the reference's. One computation wherever the scoring
 * runs (the scoring thread or the training thread), so both pick alike.
 */
export function candidateMatrices(
  candidates: Candidates,
  learner?: { image: tf.Tensor2D; text: tf.Tensor2D; temperature: tf.Tensor; bias: tf.Tensor },
): { learner?: [tf.Tensor, tf.Tensor]; reference?: [tf.Tensor, tf.Tensor] } {
  const { count, loss, reference } = candidates;
  const out: { learner?: [tf.Tensor, tf.Tensor]; reference?: [tf.Tensor, tf.Tensor] } = {};
  if (learner && candidates.learner) {
    const text = tf.gather(learner.text, tf.tensor1d(candidates.learner.textOf, 'int32')) as tf.Tensor2D;
    const pair = contrastiveLoss(loss, learner.image, text, learner.temperature, learner.bias);
    out.learner = [pair.pairLoss, pair.logits];
  }
  if (reference) {
    const dim = reference.image.length / count;
    const pair = contrastiveLoss(loss, tf.tensor2d(reference.image, [count, dim]), tf.tensor2d(reference.text, [count, dim]), tf.scalar(reference.temperature), tf.scalar(reference.bias));
    out.reference = [pair.pairLoss, pair.logits];
  }
  return out;
}
