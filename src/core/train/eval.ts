/**
 * Held-out evaluation: image→text and text→image recall@1/@5, and zero-shot
 * classification accuracy where rows carry a class label.
 *
 * Datasets repeat captions, so retrieval matches by caption text: an
 * image→text hit is a retrieved caption whose text equals the pair's, and a
 * text→image hit is any image whose caption has that text. Duplicates neither
 * help nor hurt: captions are ranked once per distinct text.
 */
import type { ImageTextDataset } from '../data/types';
import type { Tokenizer } from '../data/tokenizer';
import { patchify, type DualEncoder } from '../model/dualEncoder';
import { localEmbedder, type Embedder } from './replicas';

/** Images decoded and held at once while embedding a dataset. */
const imageLoadChunk = 2048;

export interface RetrievalMetrics {
  i2t_r1: number;
  i2t_r5: number;
  t2i_r1: number;
  t2i_r5: number;
}

/** Embeds images of `dataset` (by index), loading a chunk of images at a time; returns [count, embedDim] row-major. */
export async function embedDatasetImages(model: DualEncoder, dataset: ImageTextDataset, indices: readonly number[], scale = 1, embedder: Embedder = localEmbedder(model)): Promise<Float32Array> {
  const { imageSize, patchSize, embedDim } = model.config;
  const out = new Float32Array(indices.length * embedDim);
  for (let start = 0; start < indices.length; start += imageLoadChunk) {
    const chunk = indices.slice(start, start + imageLoadChunk);
    const pixels = await dataset.loadImages(chunk);
    const { image } = await embedder.embed({ images: [patchify(pixels, chunk.length, imageSize, patchSize, scale)], texts: 0 });
    out.set(image!, start * embedDim);
  }
  return out;
}

export async function embedCaptions(model: DualEncoder, tokenizer: Tokenizer, captions: readonly string[], embedder: Embedder = localEmbedder(model)): Promise<Float32Array> {
  if (captions.length === 0) return new Float32Array(0);
  const { text } = await embedder.embed({ images: [], ids: tokenizer.encodeBatch(captions), texts: captions.length });
  return text!;
}

/**
 * Caption embeddings of `captions`, one row each, with each distinct text
 * embedded once (the reference's pass over a pool, whose captions repeat).
 */
export async function embedCaptionRows(model: DualEncoder, tokenizer: Tokenizer, captions: readonly string[], embedder: Embedder = localEmbedder(model)): Promise<Float32Array> {
  const { texts, textOf } = distinctCaptions(captions);
  return expandRows(await embedCaptions(model, tokenizer, texts, embedder), textOf, model.config.embedDim);
}

/** Row r of the result = row textOf[r] of `distinct` ([texts, dim] row-major). */
export function expandRows(distinct: Float32Array, textOf: Int32Array, dim: number): Float32Array {
  const out = new Float32Array(textOf.length * dim);
  textOf.forEach((t, row) => out.set(distinct.subarray(t * dim, (t + 1) * dim), row * dim));
  return out;
}

/** Distinct caption texts and, for each row, the index of its text among them. */
export function distinctCaptions(captions: readonly string[]): { texts: string[]; textOf: Int32Array } {
  const index = new Map<string, number>();
  const textOf = new Int32Array(captions.length);
  captions.forEach((caption, row) => {
    let id = index.get(caption);
    if (id === undefined) {
      id = index.size;
      index.set(caption, id);
    }
    textOf[row] = id;
  });
  return { texts: [...index.keys()], textOf };
}

/**
 * Recall@1/@5 both ways from embeddings. imageEmbeddings: [rows, dim];
 * textEmbeddings: [distinct texts, dim]; textOf[row] = that row's text.
 * Ties count against the query (a tie with a wrong item is not a hit).
 */
export function retrievalMetrics(imageEmbeddings: Float32Array, textEmbeddings: Float32Array, textOf: Int32Array, dim: number): RetrievalMetrics {
  const rows = textOf.length;
  const texts = textEmbeddings.length / dim;
  const k = 5;
  // For each text: the best k images so far (scores descending) — for text→image.
  const topScores = new Float32Array(texts * k).fill(-Infinity);
  const topRows = new Int32Array(texts * k).fill(-1);
  let i2t1 = 0;
  let i2t5 = 0;
  const scores = new Float32Array(texts);
  for (let row = 0; row < rows; row++) {
    const imageBase = row * dim;
    for (let t = 0; t < texts; t++) {
      let dot = 0;
      const textBase = t * dim;
      for (let d = 0; d < dim; d++) dot += imageEmbeddings[imageBase + d] * textEmbeddings[textBase + d];
      scores[t] = dot;
      // Keep text t's best k images; among equal scores the earlier row keeps its place.
      const base = t * k;
      if (dot > topScores[base + k - 1]) {
        let slot = k - 1;
        while (slot > 0 && topScores[base + slot - 1] < dot) {
          topScores[base + slot] = topScores[base + slot - 1];
          topRows[base + slot] = topRows[base + slot - 1];
          slot--;
        }
        topScores[base + slot] = dot;
        topRows[base + slot] = row;
      }
    }
    const own = scores[textOf[row]];
    let rank = 0; // texts scoring at least as high as the right one, other than it
    for (let t = 0; t < texts; t++) if (t !== textOf[row] && scores[t] >= own) rank++;
    if (rank < 1) i2t1++;
    if (rank < k) i2t5++;
  }
  const hit1 = new Uint8Array(texts);
  const hit5 = new Uint8Array(texts);
  for (let t = 0; t < texts; t++) {
    for (let slot = 0; slot < k; slot++) {
      const row = topRows[t * k + slot];
      if (row >= 0 && textOf[row] === t) {
        if (slot === 0) hit1[t] = 1;
        hit5[t] = 1;
      }
    }
  }
  let t2i1 = 0;
  let t2i5 = 0;
  for (let row = 0; row < rows; row++) {
    t2i1 += hit1[textOf[row]];
    t2i5 += hit5[textOf[row]];
  }
  return { i2t_r1: i2t1 / rows, i2t_r5: i2t5 / rows, t2i_r1: t2i1 / rows, t2i_r5: t2i5 / rows };
}

/** Share of labelled rows whose image is closest to its own class's prompt. Undefined when no row has a label. */
export function zeroShotAccuracy(imageEmbeddings: Float32Array, labels: readonly (string | undefined)[], promptEmbeddings: Float32Array, classes: readonly string[], dim: number): number | undefined {
  const classIndex = new Map(classes.map((name, i) => [name, i]));
  let labelled = 0;
  let correct = 0;
  labels.forEach((label, row) => {
    if (label === undefined) return;
    labelled++;
    let best = -1;
    let bestScore = -Infinity;
    for (let c = 0; c < classes.length; c++) {
      let dot = 0;
      for (let d = 0; d < dim; d++) dot += imageEmbeddings[row * dim + d] * promptEmbeddings[c * dim + d];
      if (dot > bestScore) {
        bestScore = dot;
        best = c;
      }
    }
    if (best === classIndex.get(label)) correct++;
  });
  return labelled === 0 ? undefined : correct / labelled;
}

export interface EvalResult extends RetrievalMetrics {
  zeroshot_acc?: number;
  eval_examples: number;
  chance_r1: number;
}

export interface EvalSet {
  dataset: ImageTextDataset;
  /** The rows evaluated (a fixed subset when the dataset is larger than evalSize). */
  indices: number[];
  texts: string[];
  textOf: Int32Array;
  labels: (string | undefined)[];
  classes: string[];
}

export function prepareEvalSet(dataset: ImageTextDataset, maxRows: number, pickSeed: (n: number) => number[]): EvalSet {
  const indices = dataset.size <= maxRows ? [...Array(dataset.size).keys()] : pickSeed(maxRows).sort((a, b) => a - b);
  const { texts, textOf } = distinctCaptions(indices.map((i) => dataset.caption(i)));
  const labels = indices.map((i) => dataset.label(i));
  const classes = [...new Set(labels.filter((l): l is string => l !== undefined))].sort();
  return { dataset, indices, texts, textOf, labels, classes };
}

export async function evaluate(model: DualEncoder, tokenizer: Tokenizer, set: EvalSet, zeroshotTemplate: string, embedder: Embedder = localEmbedder(model)): Promise<EvalResult> {
  const dim = model.config.embedDim;
  const images = await embedDatasetImages(model, set.dataset, set.indices, 1, embedder);
  const texts = await embedCaptions(model, tokenizer, set.texts, embedder);
  const retrieval = retrievalMetrics(images, texts, set.textOf, dim);
  let zeroshot: number | undefined;
  if (set.classes.length > 1) {
    const prompts = await embedCaptions(model, tokenizer, set.classes.map((name) => zeroshotTemplate.replaceAll('{label}', name)), embedder);
    zeroshot = zeroShotAccuracy(images, set.labels, prompts, set.classes, dim);
  }
  return { ...retrieval, ...(zeroshot === undefined ? {} : { zeroshot_acc: zeroshot }), eval_examples: set.indices.length, chance_r1: 1 / set.texts.length };
}
