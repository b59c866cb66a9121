/**
 * Images and captions of dataset pairs for the batch inspector, by the ids
 * selections.jsonl records: the dataset is opened once per image size (any
 * source openDataset reads, WebDataset shards included), ids are mapped to
 * indices once per dataset, and each image is decoded at the asked size and
 * encoded as PNG, kept in an LRU by bytes. The host serves the result as
 * data: URIs in `images` messages (or the PNG bytes through its own URIs).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { encodePng } from '../core/data/decode';
import { openDataset } from '../core/data/open';
import type { ImageTextDataset, OpenDatasetOptions } from '../core/data/types';
import { maxImageSize, thumbnailSize, type ImageEntry } from '../protocol/webview';

export interface PairText {
  caption: string;
  label?: string;
  noisy?: boolean;
}

export interface ThumbnailServiceOptions {
  /** How a dataset is opened (tests pass a fake). */
  open?: (spec: string, options: OpenDatasetOptions) => Promise<ImageTextDataset>;
  /** Budget of the PNG cache, bytes. */
  cacheBytes?: number;
  /** Open datasets kept (one per spec and size); the least recently used is closed beyond it. */
  maxOpen?: number;
  /** Images decoded per call of loadImages (bounds the floats held at once). */
  batch?: number;
}

interface OpenEntry {
  dataset: Promise<ImageTextDataset>;
  usedAt: number;
}

/**
 * A run's `data` as the dataset spec to open from the editor, whose working
 * folder is not the one the run was started in: built-in specs as they are,
 * absolute paths as they are, a relative path against the first base folder
 * where it exists (else the first base).
 */
export function resolveDataSpec(spec: string, baseDirs: readonly string[]): string {
  if (spec.startsWith('builtin:') || path.isAbsolute(spec) || baseDirs.length === 0) return spec;
  for (const base of baseDirs) {
    const candidate = path.resolve(base, spec);
    // A brace pattern (shards/{00000..00009}.tar) exists when its folder does.
    if (fs.existsSync(candidate.includes('{') ? path.dirname(candidate) : candidate)) return candidate;
  }
  return path.resolve(baseDirs[0], spec);
}

export class ThumbnailService {
  private readonly open = new Map<string, OpenEntry>();
  private readonly indices = new Map<string, Map<string, number>>();
  private readonly cache = new Map<string, Uint8Array>();
  private cachedBytes = 0;
  private clock = 0;
  private readonly options: Required<ThumbnailServiceOptions>;

  constructor(options: ThumbnailServiceOptions = {}) {
    this.options = { open: openDataset, cacheBytes: 64 << 20, maxOpen: 4, batch: 32, ...options };
  }

  /** Captions, labels and noise flags of pairs by id; undefined for an id the dataset does not hold. */
  async pairs(spec: string, ids: readonly string[]): Promise<Map<string, PairText | undefined>> {
    const dataset = await this.dataset(spec, this.anyOpenSize(spec));
    const index = this.indexOf(spec, dataset);
    const out = new Map<string, PairText | undefined>();
    for (const id of ids) {
      const i = index.get(id);
      if (i === undefined) {
        out.set(id, undefined);
        continue;
      }
      const text: PairText = { caption: dataset.caption(i) };
      const label = dataset.label(i);
      if (label !== undefined) text.label = label;
      const noisy = dataset.noisy(i);
      if (noisy !== undefined) text.noisy = noisy;
      out.set(id, text);
    }
    return out;
  }

  /** PNG bytes of each pair's image, `size` px square, in the order of `ids`; undefined for an unknown id. */
  async png(spec: string, ids: readonly string[], size: number): Promise<(Uint8Array | undefined)[]> {
    const side = Math.max(8, Math.min(maxImageSize, Math.round(size)));
    const out: (Uint8Array | undefined)[] = ids.map((id) => this.cached(spec, side, id));
    const wanted = ids.map((id, k) => ({ id, k })).filter(({ k }) => out[k] === undefined);
    if (wanted.length === 0) return out;
    const dataset = await this.dataset(spec, side);
    const index = this.indexOf(spec, dataset);
    const known = wanted.filter(({ id }) => index.has(id));
    for (let start = 0; start < known.length; start += this.options.batch) {
      const chunk = known.slice(start, start + this.options.batch);
      const pixels = await dataset.loadImages(chunk.map(({ id }) => index.get(id)!));
      const floats = side * side * 3;
      const encoded = await Promise.all(chunk.map((_, j) => encodePng(pixels.subarray(j * floats, (j + 1) * floats), side)));
      chunk.forEach(({ id, k }, j) => {
        out[k] = encoded[j];
        this.remember(spec, side, id, encoded[j]);
      });
    }
    return out;
  }

  /** `images` entries (data: URIs) for the inspector, with a problem named for ids it cannot show. */
  async images(spec: string, ids: readonly string[], size: number): Promise<ImageEntry[]> {
    const side = Math.max(8, Math.min(maxImageSize, Math.round(size)));
    let bytes: (Uint8Array | undefined)[];
    try {
      bytes = await this.png(spec, ids, side);
    } catch (error) {
      const problem = `Cannot read the images of ${spec}: ${(error as Error).message}`;
      return ids.map((id) => ({ id, problem }));
    }
    return ids.map((id, k) => {
      const png = bytes[k];
      return png === undefined
        ? { id, problem: `No pair with id ${id} in ${spec} (has the data changed since the run?).` }
        : { id, uri: `data:image/png;base64,${Buffer.from(png).toString('base64')}`, width: side, height: side };
    });
  }

  async close(): Promise<void> {
    const entries = [...this.open.values()];
    this.open.clear();
    this.indices.clear();
    this.cache.clear();
    this.cachedBytes = 0;
    await Promise.all(entries.map(async (entry) => (await entry.dataset.catch(() => undefined))?.close()));
  }

  // ---- internals -------------------------------------------------------------

  /** A size the spec is open at already; else the thumbnails' (they are asked for next). */
  private anyOpenSize(spec: string): number {
    for (const key of this.open.keys()) {
      const [openSpec, size] = key.split('\0');
      if (openSpec === spec) return Number(size);
    }
    return thumbnailSize;
  }

  private dataset(spec: string, size: number): Promise<ImageTextDataset> {
    const key = `${spec}\0${size}`;
    let entry = this.open.get(key);
    if (entry === undefined) {
      entry = { dataset: this.options.open(spec, { resolution: size }), usedAt: 0 };
      this.open.set(key, entry);
      // A failed open is not cached: the user may fix the data and ask again.
      entry.dataset.catch(() => this.open.delete(key));
      this.evictDatasets(key);
    }
    entry.usedAt = ++this.clock;
    return entry.dataset;
  }

  private evictDatasets(keep: string): void {
    while (this.open.size > this.options.maxOpen) {
      let oldest: string | undefined;
      for (const [key, entry] of this.open) if (key !== keep && (oldest === undefined || entry.usedAt < this.open.get(oldest)!.usedAt)) oldest = key;
      if (oldest === undefined) return;
      const entry = this.open.get(oldest)!;
      this.open.delete(oldest);
      void entry.dataset.then((dataset) => dataset.close()).catch(() => undefined);
    }
  }

  /** id → index of a spec's dataset, built once (ids are the same at every size). */
  private indexOf(spec: string, dataset: ImageTextDataset): Map<string, number> {
    let index = this.indices.get(spec);
    if (index === undefined) {
      index = new Map<string, number>();
      for (let i = 0; i < dataset.size; i++) index.set(dataset.id(i), i);
      this.indices.set(spec, index);
    }
    return index;
  }

  private cached(spec: string, size: number, id: string): Uint8Array | undefined {
    const key = `${spec}\0${size}\0${id}`;
    const png = this.cache.get(key);
    if (png !== undefined) {
      // Re-insert: a Map iterates in insertion order, so the first key is the least recently used.
      this.cache.delete(key);
      this.cache.set(key, png);
    }
    return png;
  }

  private remember(spec: string, size: number, id: string, png: Uint8Array): void {
    const key = `${spec}\0${size}\0${id}`;
    const old = this.cache.get(key);
    if (old) this.cachedBytes -= old.byteLength;
    this.cache.delete(key);
    this.cache.set(key, png);
    this.cachedBytes += png.byteLength;
    for (const [oldest, bytes] of this.cache) {
      if (this.cachedBytes <= this.options.cacheBytes) break;
      this.cache.delete(oldest);
      this.cachedBytes -= bytes.byteLength;
    }
  }

  /** Bytes held by the PNG cache (for tests and the host's diagnostics). */
  get cacheSize(): { entries: number; bytes: number } {
    return { entries: this.cache.size, bytes: this.cachedBytes };
  }
}

/** RGB floats in [0, 1], HWC → PNG bytes (the encoder lives with the decoder, in core). */
export { encodePng };
