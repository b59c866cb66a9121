/**
 * What the main thread and its replica threads (replicas.ts,
 * replicaThread.ts) say to each other, and the one forward pass both sides
 * run: embed a shard of rows, in chunks the wasm backend can take.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { DualEncoder, PatchBatch } from '../model/dualEncoder';

/** Largest batch one forward pass takes: the wasm backend fails with an out-of-bounds memory access between 1,600 and 2,560 images at the default width (64), sooner for wider models. */
export const FORWARD_CHUNK = 512;

/** Rows to embed: images as patch batches (full resolution first, then low), captions as token ids. */
export interface Shard {
  images: PatchBatch[];
  /** Padded token ids, [texts, textLength]. */
  ids?: Int32Array;
  texts: number;
}

export type ReplicaRequest =
  | { type: 'embed'; id: number; shard: Shard }
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
