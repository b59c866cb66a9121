/**
 * The reference's embeddings of a pool, computed in shards (issue 13): `sift
 * embed --shard i/N` fills one contiguous range of the pool, e.g. as one task
 * of a Slurm job array, and writes it beside the cache the trainer reads
 * (`<reference>/embeddings/<key>.shards/<i>-of-<N>.bin`, atomically: temp +
 * rename, so a killed task loses nothing already written). When every shard
 * of an N is there, they are assembled into `<key>.bin`: the same bytes as
 * the single-process cache, because both compute the pool in the same chunks
 * (`embedChunkRows`, counted from row 0) and a shard holds whole chunks, so
 * every batch the model sees is the same whichever process embeds it.
 *
 * The trainer reads the cache through `fillReferenceCache`: a complete cache
 * is read; complete shards are assembled and read (nothing re-embedded); with
 * shards missing it embeds those itself, in the same chunks, and says which.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Tokenizer } from '../data/tokenizer';
import type { ImageTextDataset } from '../data/types';
import type { DualEncoder } from '../model/dualEncoder';
import { writeFileAtomic } from '../runs/jsonl';
import { distinctCaptions, embedCaptionRows, embedDatasetImages } from './eval';

/** Pool rows embedded in one batch. Shards hold whole chunks, so a merged cache equals the single-process one byte for byte. */
export const embedChunkRows = 128;

export interface ShardSpec {
  index: number;
  count: number;
}

/** `i/N` (0 ≤ i < N), as Slurm's `$SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT` gives it. */
export function parseShard(text: string): ShardSpec {
  const match = /^\s*(\d+)\s*\/\s*(\d+)\s*$/.exec(text);
  const index = match ? Number(match[1]) : NaN;
  const count = match ? Number(match[2]) : NaN;
  if (!match || !(count >= 1) || !(index >= 0 && index < count)) {
    throw new Error(`--shard "${text}": expected i/N with 0 ≤ i < N, e.g. --shard 0/4 (in a Slurm array: --shard $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT).`);
  }
  return { index, count };
}

/** Rows [start, end) of shard `index` of `count`: a contiguous run of whole chunks, the chunks spread as evenly as they go. */
export function shardRange(size: number, index: number, count: number, chunk = embedChunkRows): { start: number; end: number } {
  const chunks = Math.ceil(size / chunk);
  const first = Math.floor((index * chunks) / count);
  const last = Math.floor(((index + 1) * chunks) / count);
  return { start: Math.min(size, first * chunk), end: Math.min(size, last * chunk) };
}

/** What a pool's embeddings are computed with and where they are cached. */
export interface EmbedTarget {
  model: DualEncoder;
  tokenizer: Tokenizer;
  dataset: ImageTextDataset;
  /** 1, 2 or 4: images embedded at 1/scale of their side. */
  scale: number;
  /** `<reference>/embeddings/<key>.bin`: the assembled cache. */
  cacheFile: string;
  /** Step of the reference checkpoint (recorded in the cache's .json). */
  referenceStep: number;
}

export const shardDirOf = (cacheFile: string): string => cacheFile.replace(/\.bin$/, '.shards');
export const shardFileOf = (cacheFile: string, index: number, count: number): string => path.join(shardDirOf(cacheFile), `${index}-of-${count}.bin`);
const rowBytes = (dim: number): number => 2 * dim * 4;

/** The embeddings of rows [start, end): image rows then text rows, each [rows, dim], computed chunk by chunk from row 0's chunk grid. */
export async function embedRows(target: EmbedTarget, start: number, end: number, onProgress?: (done: number) => void): Promise<{ image: Float32Array; text: Float32Array }> {
  const { model, tokenizer, dataset, scale } = target;
  const dim = model.config.embedDim;
  const image = new Float32Array((end - start) * dim);
  const text = new Float32Array((end - start) * dim);
  for (let from = start; from < end; ) {
    const to = Math.min(end, (Math.floor(from / embedChunkRows) + 1) * embedChunkRows);
    const indices = Array.from({ length: to - from }, (_, i) => from + i);
    image.set(await embedDatasetImages(model, dataset, indices, scale), (from - start) * dim);
    text.set(await embedCaptionRows(model, tokenizer, indices.map((i) => dataset.caption(i))), (from - start) * dim);
    from = to;
    onProgress?.(from - start);
  }
  return { image, text };
}

/**
 * How many captions the pass over rows [start, end) runs through the caption
 * tower: each chunk embeds its distinct texts once (embedRows), so a pool
 * whose captions repeat (class templates) pays for far fewer than its rows.
 */
export function captionForwards(dataset: ImageTextDataset, start = 0, end = dataset.size): number {
  let forwards = 0;
  for (let from = start; from < end; ) {
    const to = Math.min(end, (Math.floor(from / embedChunkRows) + 1) * embedChunkRows);
    forwards += distinctCaptions(Array.from({ length: to - from }, (_, i) => dataset.caption(from + i))).texts.length;
    from = to;
  }
  return forwards;
}

function concat(image: Float32Array, text: Float32Array): Uint8Array {
  const all = new Float32Array(image.length + text.length);
  all.set(image, 0);
  all.set(text, image.length);
  return new Uint8Array(all.buffer);
}

/** Whether a shard's file is there, whole (the size its rows need). */
function shardPresent(target: EmbedTarget, index: number, count: number): boolean {
  const { start, end } = shardRange(target.dataset.size, index, count);
  const file = shardFileOf(target.cacheFile, index, count);
  return fs.existsSync(file) && fs.statSync(file).size === (end - start) * rowBytes(target.model.config.embedDim);
}

/** For each shard count N with shard files present: which shards of N are whole. */
export function shardsPresent(target: EmbedTarget): Map<number, number[]> {
  const found = new Map<number, number[]>();
  const dir = shardDirOf(target.cacheFile);
  if (!fs.existsSync(dir)) return found;
  for (const name of fs.readdirSync(dir)) {
    const match = /^(\d+)-of-(\d+)\.bin$/.exec(name);
    if (!match) continue;
    const [index, count] = [Number(match[1]), Number(match[2])];
    if (index >= count || !shardPresent(target, index, count)) continue;
    found.set(count, [...(found.get(count) ?? []), index].sort((a, b) => a - b));
  }
  return found;
}

export const cacheComplete = (target: EmbedTarget): boolean =>
  fs.existsSync(target.cacheFile) && fs.statSync(target.cacheFile).size === target.dataset.size * rowBytes(target.model.config.embedDim);

function writeCacheMeta(target: EmbedTarget, extra: Record<string, unknown>): void {
  const { dataset, scale } = target;
  writeFileAtomic(
    target.cacheFile.replace(/\.bin$/, '.json'),
    JSON.stringify({ pool: dataset.source, size: dataset.size, fingerprint: dataset.fingerprint(), referenceStep: target.referenceStep, dim: target.model.config.embedDim, scale, ...extra, created: new Date().toISOString() }, null, 2),
  );
}

/**
 * Assembles the N shards into the cache (atomically) and removes them. False
 * when one is missing. Safe to race: two assemblers write the same bytes.
 */
export function assembleShards(target: EmbedTarget, count: number): boolean {
  if (cacheComplete(target)) return true;
  const dim = target.model.config.embedDim;
  const size = target.dataset.size;
  const all = new Float32Array(2 * size * dim);
  try {
    for (let index = 0; index < count; index++) {
      if (!shardPresent(target, index, count)) return false;
      const { start, end } = shardRange(size, index, count);
      const buffer = fs.readFileSync(shardFileOf(target.cacheFile, index, count));
      const rows = new Float32Array(buffer.buffer.slice(buffer.byteOffset, buffer.byteOffset + buffer.byteLength));
      const half = (end - start) * dim;
      all.set(rows.subarray(0, half), start * dim);
      all.set(rows.subarray(half), (size + start) * dim);
    }
  } catch (error) {
    // Another assembler finished first and removed the shards.
    if ((error as NodeJS.ErrnoException).code === 'ENOENT' && cacheComplete(target)) return true;
    throw error;
  }
  fs.mkdirSync(path.dirname(target.cacheFile), { recursive: true });
  writeFileAtomic(target.cacheFile, new Uint8Array(all.buffer));
  writeCacheMeta(target, { assembledFromShards: count });
  for (let index = 0; index < count; index++) {
    fs.rmSync(shardFileOf(target.cacheFile, index, count), { force: true });
    fs.rmSync(shardFileOf(target.cacheFile, index, count).replace(/\.bin$/, '.json'), { force: true });
  }
  fs.rmSync(shardDirOf(target.cacheFile), { recursive: true, force: true });
  return true;
}

export interface ShardResult {
  file: string;
  start: number;
  end: number;
  /** Seconds spent embedding (0 when the shard was already there). */
  seconds: number;
  /** True when the shard's file was already whole and nothing was computed. */
  skipped: boolean;
  /** True when this shard completed the set and the cache was assembled. */
  assembled: boolean;
}

/** Embeds shard `index` of `count` into its file (unless it is there, or the cache is already complete), then assembles the cache when every shard is there. */
export async function writeShard(target: EmbedTarget, index: number, count: number, onProgress?: (done: number, total: number) => void): Promise<ShardResult> {
  const { start, end } = shardRange(target.dataset.size, index, count);
  const file = shardFileOf(target.cacheFile, index, count);
  if (cacheComplete(target)) return { file: target.cacheFile, start, end, seconds: 0, skipped: true, assembled: false };
  let seconds = 0;
  const skipped = shardPresent(target, index, count);
  if (!skipped) {
    const began = performance.now();
    const { image, text } = await embedRows(target, start, end, (done) => onProgress?.(done, end - start));
    seconds = (performance.now() - began) / 1000;
    fs.mkdirSync(path.dirname(file), { recursive: true });
    writeFileAtomic(file.replace(/\.bin$/, '.json'), JSON.stringify({ shard: `${index}/${count}`, start, end, seconds: Number(seconds.toFixed(3)), host: os.hostname(), created: new Date().toISOString() }, null, 2));
    writeFileAtomic(file, concat(image, text));
  }
  const assembled = shardsPresent(target).get(count)?.length === count && assembleShards(target, count);
  return { file, start, end, seconds, skipped, assembled };
}

/** The shard count the complete cache was assembled from, per its .json (undefined: written in one go, or unknown). */
function assembledFrom(target: EmbedTarget): number | undefined {
  try {
    const meta = JSON.parse(fs.readFileSync(target.cacheFile.replace(/\.bin$/, '.json'), 'utf8')) as { assembledFromShards?: unknown };
    return typeof meta.assembledFromShards === 'number' ? meta.assembledFromShards : undefined;
  } catch {
    return undefined;
  }
}

export interface FilledCache {
  image: Float32Array;
  text: Float32Array;
  /** False when every row was read (from the cache or from shards); true when some were embedded now. */
  computed: boolean;
  /** How the cache came to be complete, for the run's log. */
  note: string;
}

/**
 * The whole pool's embeddings: the cache when complete; else the shards of
 * the shard count with the most present, assembled, after embedding the
 * missing ones here (none present: the whole pool as one shard).
 */
export async function fillReferenceCache(target: EmbedTarget, onProgress?: (done: number, total: number) => void): Promise<FilledCache> {
  let note = 'read from cache';
  let computed = false;
  if (cacheComplete(target)) {
    const assembled = assembledFrom(target);
    if (assembled) note = `read from cache (assembled from ${assembled} shards written by sift embed)`;
  }
  if (!cacheComplete(target) && shardsPresent(target).size === 0) {
    // Nothing sharded: the whole pool here, written straight to the cache.
    const { image, text } = await embedRows(target, 0, target.dataset.size, (done) => onProgress?.(done, target.dataset.size));
    fs.mkdirSync(path.dirname(target.cacheFile), { recursive: true });
    writeFileAtomic(target.cacheFile, concat(image, text));
    writeCacheMeta(target, {});
    return { image, text, computed: true, note: 'computed and cached' };
  }
  if (!cacheComplete(target)) {
    const present = [...shardsPresent(target)].sort((a, b) => b[1].length / b[0] - a[1].length / a[0] || a[0] - b[0]);
    const [count, have] = present[0];
    const missing = Array.from({ length: count }, (_, i) => i).filter((i) => !have.includes(i));
    const total = missing.reduce((sum, i) => sum + shardRange(target.dataset.size, i, count).end - shardRange(target.dataset.size, i, count).start, 0);
    let done = 0;
    for (const index of missing) {
      const { start, end } = shardRange(target.dataset.size, index, count);
      await writeShard(target, index, count, (rows) => onProgress?.(done + rows, total));
      done += end - start;
    }
    if (!assembleShards(target, count)) throw new Error(`The reference embeddings' shards of ${count} in ${shardDirOf(target.cacheFile)} could not be assembled.`);
    computed = missing.length > 0;
    const shown = (list: number[]): string => list.map((i) => `${i}/${count}`).join(', ');
    note =
      missing.length === 0
          ? `read from cache (assembled from ${count} shards written by sift embed)`
          : `computed and cached (shards ${shown(have)} read from sift embed's cache; ${shown(missing)} missing, embedded here)`;
  }
  const buffer = fs.readFileSync(target.cacheFile);
  const all = new Float32Array(buffer.buffer.slice(buffer.byteOffset, buffer.byteOffset + buffer.byteLength));
  const half = target.dataset.size * target.model.config.embedDim;
  return { image: all.slice(0, half), text: all.slice(half), computed, note };
}
