/**
 * The dataset every real-data source returns once it has indexed and
 * validated its rows: captions, ids and labels in memory, pixels on disk.
 * `loadImages` serves decoded images from a bounded LRU and re-reads and
 * re-decodes the rest through the source's `ImageStore`, so memory stays flat
 * however large the dataset is.
 */
import { createHash } from 'node:crypto';
import { decodeImage, decodeRgb, resizeToSquare, writeUnitFloats } from '../decode.ts';
import { DataError } from '../types.ts';
import type { ImageTextDataset, SkipReport } from '../types.ts';
import { ImageCache } from './cache.ts';

/** Where a source's image bytes live (files, tar members…), by dataset index. */
export interface ImageStore {
  read(index: number): Promise<Uint8Array>;
  /** The file (or shard and member) behind an index, for error messages. */
  describe(index: number): string;
  close(): Promise<void>;
}

/** The in-memory part of a usable row. */
export interface IndexedRow {
  id: string;
  caption: string;
  label?: string;
  noisy?: boolean;
  /** Digest of the image file's bytes, taken when it was validated. */
  imageDigest: string;
}

export interface IndexedDatasetInit {
  source: string;
  format: string;
  resolution: number;
  rows: readonly IndexedRow[];
  store: ImageStore;
  skips: SkipReport;
  /** Already holds the images decoded during validation, as far as it fits. */
  cache: ImageCache;
}

/**
 * Validates an image at open by decoding it (throws if it does not decode).
 * While the cache has room the image is also resized and cached under
 * `index`, so the first batches need no re-read; past that, resizing would be
 * wasted work, since the LRU would only evict it again.
 */
export function validateImage(bytes: Uint8Array, resolution: number, cache: ImageCache, index: number): string {
  const decoded = decodeRgb(bytes);
  if (cache.hasRoomFor(resolution * resolution * 3)) cache.set(index, resizeToSquare(decoded, resolution));
  return createHash('sha1').update(bytes).digest('hex').slice(0, 16);
}

/** How many image reads one `loadImages` call keeps in flight. */
const READ_CONCURRENCY = 16;

export class IndexedDataset implements ImageTextDataset {
  readonly source: string;
  readonly format: string;
  readonly size: number;
  readonly resolution: number;
  readonly skips: SkipReport;
  private readonly rows: readonly IndexedRow[];
  private readonly store: ImageStore;
  private readonly cache: ImageCache;
  private closed = false;

  constructor(init: IndexedDatasetInit) {
    this.source = init.source;
    this.format = init.format;
    this.resolution = init.resolution;
    this.rows = init.rows;
    this.size = init.rows.length;
    this.store = init.store;
    this.skips = init.skips;
    this.cache = init.cache;
  }

  private digest: string | undefined;

  fingerprint(): string {
    if (!this.digest) {
      const hash = createHash('sha256').update(`sift-pool-v1\0${this.resolution}\0`);
      for (const row of this.rows) hash.update(`${row.id}\0${row.caption}\0${row.label ?? ''}\0${row.imageDigest}\n`);
      this.digest = hash.digest('hex');
    }
    return this.digest;
  }

  id(index: number): string {
    return this.row(index).id;
  }

  caption(index: number): string {
    return this.row(index).caption;
  }

  label(index: number): string | undefined {
    return this.row(index).label;
  }

  noisy(index: number): boolean | undefined {
    return this.row(index).noisy;
  }

  async loadImages(indices: readonly number[]): Promise<Float32Array> {
    if (this.closed) throw new Error(`${this.source}: the dataset was closed`);
    for (const index of indices) this.checkIndex(index);
    const perImage = this.resolution * this.resolution * 3;
    const out = new Float32Array(indices.length * perImage);

    // Decoded images of this call, kept until copied out: the LRU may be
    // smaller than one batch and evict them before the copy.
    const local = new Map<number, Uint8Array>();
    const misses: number[] = [];
    for (const index of indices) {
      if (local.has(index)) continue;
      const hit = this.cache.get(index);
      if (hit !== undefined) local.set(index, hit);
      else {
        local.set(index, EMPTY);
        misses.push(index);
      }
    }
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < misses.length) {
        const index = misses[next++];
        const pixels = await this.reload(index);
        local.set(index, pixels);
        this.cache.set(index, pixels);
      }
    };
    await Promise.all(Array.from({ length: Math.min(READ_CONCURRENCY, misses.length) }, worker));

    indices.forEach((index, k) => writeUnitFloats(local.get(index)!, out, k * perImage));
    return out;
  }

  async imageBytes(index: number): Promise<Uint8Array> {
    if (this.closed) throw new Error(`${this.source}: the dataset was closed`);
    this.checkIndex(index);
    try {
      return await this.store.read(index);
    } catch (err) {
      throw this.changedSinceOpen(index, `it can no longer be read (${(err as Error).message})`);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.cache.clear();
    await this.store.close();
  }

  /** Reads and decodes an image that passed validation at open. */
  private async reload(index: number): Promise<Uint8Array> {
    let bytes: Uint8Array;
    try {
      bytes = await this.store.read(index);
    } catch (err) {
      throw this.changedSinceOpen(index, `it can no longer be read (${(err as Error).message})`);
    }
    try {
      return decodeImage(bytes, this.resolution);
    } catch (err) {
      throw this.changedSinceOpen(index, `it no longer decodes (${(err as Error).message})`);
    }
  }

  private changedSinceOpen(index: number, what: string): DataError {
    return new DataError(
      `${this.store.describe(index)}: this image was valid when ${this.source} was opened, but ${what}. ` +
        'Was the dataset changed while Sift was using it? Restore the file, or open the dataset again to re-index it.',
    );
  }

  private row(index: number): IndexedRow {
    this.checkIndex(index);
    return this.rows[index];
  }

  private checkIndex(index: number): void {
    if (!Number.isInteger(index) || index < 0 || index >= this.size) {
      throw new RangeError(`${this.source}: index ${index} is out of range (the dataset has ${this.size} pairs)`);
    }
  }
}

const EMPTY = new Uint8Array(0);
