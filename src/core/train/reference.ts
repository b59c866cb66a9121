/**
 * The reference model (DESIGN.md, "Reference model"): a dual encoder trained
 * first on curated data, then frozen. Its image and text embeddings for every
 * example of a learner's pool are computed once and cached beside it, keyed by
 * the pool's fingerprint and the checkpoint's digest, so reference losses for
 * a super-batch cost one B × B product and a changed dataset or checkpoint is
 * never served stale.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { Tokenizer, type TokenizerJson } from '../data/tokenizer';
import type { ImageTextDataset } from '../data/types';
import { DualEncoder, forwardFlops } from '../model/dualEncoder';
import { Rng } from '../random';
import { checkpointDir, listCheckpoints, readCheckpoint } from '../runs/checkpoint';
import type { RunJson } from '../runs/record';
import { captionForwards, fillReferenceCache } from './embedShards';
import { modelConfigFor } from './config';

export interface ReferenceModel {
  dir: string;
  runId: string;
  step: number;
  model: DualEncoder;
  tokenizer: Tokenizer;
  /** Digest of the checkpoint's tensors: part of the cache key. */
  checkpointDigest: string;
  /** Share of its batches the reference trained at half resolution (0 for references from before the setting). */
  lowResFraction: number;
}

export interface ReferenceEmbeddings {
  /** [pool size, dim] row-major, L2-normalised. */
  image: Float32Array;
  text: Float32Array;
  dim: number;
  temperature: number;
  bias: number;
  /**
   * Forward FLOPs the reference's pass spends per pool example: its image,
   * and its share of the captions embedded (each distinct text once per chunk
   * of the pass, so less than one caption an example where captions repeat).
   */
  forwardFlopsPerExample: number;
  /** Captions the pass ran through the caption tower (≤ the pool's size). */
  captionForwards: number;
  cacheFile: string;
  /** False when the cache was read rather than computed now. */
  computed: boolean;
  /** How the cache came to be complete (read, assembled from `sift embed`'s shards, or which shards were embedded now), for the run's log. */
  cacheNote?: string;
}

export class ReferenceError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ReferenceError';
  }
}

/** Loads a finished run's newest checkpoint as a frozen reference model. */
export function loadReference(dir: string): ReferenceModel {
  const runFile = path.join(dir, 'run.json');
  if (!fs.existsSync(runFile)) {
    throw new ReferenceError(`--reference ${dir}: no run.json there. Train one first: sift reference --run-dir ${dir}`);
  }
  const run = JSON.parse(fs.readFileSync(runFile, 'utf8')) as RunJson;
  const steps = listCheckpoints(dir);
  if (steps.length === 0) {
    throw new ReferenceError(`--reference ${dir}: the run has no checkpoint yet (status: ${run.status}). Let it finish, or resume it: sift resume ${dir}`);
  }
  const step = steps[steps.length - 1];
  const checkpoint = readCheckpoint<{ tokenizer: TokenizerJson }>(dir, step);
  const tokenizer = Tokenizer.fromJson(checkpoint.state.tokenizer);
  const model = new DualEncoder(modelConfigFor(run.config, tokenizer.size), new Rng(0));
  model.params.load(checkpoint.params);
  const checkpointDigest = createHash('sha256').update(fs.readFileSync(path.join(checkpointDir(dir, step), 'tensors.bin'))).digest('hex');
  return { dir, runId: run.id, step, model, tokenizer, checkpointDigest, lowResFraction: run.config.lowResFraction ?? 0 };
}

function cacheKey(reference: ReferenceModel, dataset: ImageTextDataset, scale: number): string {
  // Full resolution keeps the key it always had, so existing caches stay valid.
  const at = scale === 1 ? '' : `\0scale ${scale}`;
  return createHash('sha256').update(`${reference.checkpointDigest}\0${dataset.fingerprint()}\0${dataset.resolution}${at}`).digest('hex').slice(0, 24);
}

/** The model's logit temperature and bias, read back asynchronously (the webgpu backend cannot read synchronously in Node). */
export async function readLogitScale(model: DualEncoder): Promise<[number, number]> {
  const both = tf.tidy(() => tf.stack([model.temperature, model.bias]));
  try {
    const [temperature, bias] = await both.data();
    return [temperature, bias];
  } finally {
    both.dispose();
  }
}

/**
 * The reference's embeddings of every pool example: read from the cache when
 * its key matches, else computed (with progress) and cached atomically.
 * `scale` > 1 embeds the images at 1/scale of their side (fewer image tokens,
 * the same weights): a cheaper pass over the pool, counted as such.
 */
export async function referenceEmbeddings(
  reference: ReferenceModel,
  dataset: ImageTextDataset,
  onProgress?: (done: number, total: number) => void,
  scale = 1,
): Promise<ReferenceEmbeddings> {
  const { model, tokenizer } = reference;
  const dim = model.config.embedDim;
  if (model.config.imageSize !== dataset.resolution) {
    throw new ReferenceError(`The reference ${reference.dir} was trained on ${model.config.imageSize}px images; this run uses ${dataset.resolution}px. Set imageSize to ${model.config.imageSize} or train a reference at ${dataset.resolution}px.`);
  }
  const [temperature, bias] = await readLogitScale(model);
  const flops = forwardFlops(model.config, scale);
  const cacheFile = path.join(reference.dir, 'embeddings', `${cacheKey(reference, dataset, scale)}.bin`);
  // A complete cache is read; shards written by `sift embed --shard i/N` are assembled; missing rows are embedded here (embedShards.ts).
  const filled = await fillReferenceCache({ model, tokenizer, dataset, scale, cacheFile, referenceStep: reference.step }, onProgress);
  const captions = captionForwards(dataset);
  return {
    image: filled.image,
    text: filled.text,
    dim,
    temperature,
    bias,
    forwardFlopsPerExample: flops.image + (flops.text * captions) / Math.max(1, dataset.size),
    captionForwards: captions,
    cacheFile,
    computed: filled.computed,
    cacheNote: filled.note,
  };
}

/** Where the reference's embeddings of `dataset` are cached (`sift embed` writes its shards beside it). */
export function referenceCacheFile(reference: ReferenceModel, dataset: ImageTextDataset, scale = 1): string {
  return path.join(reference.dir, 'embeddings', `${cacheKey(reference, dataset, scale)}.bin`);
}

/**
 * How well the reference tells right captions from swapped ones on a pool
 * whose data say which are which (FINDINGS.md: reference quality decides
 * what JEST lets through): the AUC of its positive-pair similarity, i.e. the
 * chance that a right pair scores higher than a swapped one (0.5 = chance,
 * 1 = perfect; ties count half). Undefined when a flag is unknown or the pool
 * holds only one kind.
 */
export function noiseSeparation(reference: Pick<ReferenceEmbeddings, 'image' | 'text' | 'dim'>, noisy: readonly (boolean | undefined)[]): { auc: number; clean: number; noisy: number } | undefined {
  if (noisy.some((flag) => flag === undefined)) return undefined;
  const { image, text, dim } = reference;
  const similarity = noisy.map((_, i) => {
    let dot = 0;
    for (let k = 0; k < dim; k++) dot += image[i * dim + k] * text[i * dim + k];
    return dot;
  });
  const order = similarity.map((_, i) => i).sort((a, b) => similarity[a] - similarity[b]);
  // Mann–Whitney: the sum of the clean pairs' ranks (average ranks over ties).
  let cleanRanks = 0;
  let clean = 0;
  for (let start = 0; start < order.length; ) {
    let end = start;
    while (end + 1 < order.length && similarity[order[end + 1]] === similarity[order[start]]) end++;
    const rank = (start + end) / 2 + 1;
    for (let k = start; k <= end; k++) {
      if (!noisy[order[k]]) {
        cleanRanks += rank;
        clean++;
      }
    }
    start = end + 1;
  }
  const swapped = noisy.length - clean;
  if (clean === 0 || swapped === 0) return undefined;
  return { auc: (cleanRanks - (clean * (clean + 1)) / 2) / (clean * swapped), clean, noisy: swapped };
}
