/**
 * What every data source gives the trainer: a random-access pool of
 * image-caption pairs whose pixels are decoded on demand (never the whole set
 * in memory as decoded pixels), plus the record of every row it skipped.
 */

/** Why a row of a dataset was not used. Each counts separately in the run record. */
export type SkipReason =
  | 'missing-file'
  | 'corrupt-image'
  | 'empty-caption'
  | 'caption-too-long'
  | 'invalid-json'
  | 'wrong-field-type'
  | 'missing-field'
  | 'non-utf8'
  | 'path-escapes-dataset'
  | 'duplicate-key'
  | 'unreadable';

/** One skipped row, with enough context for the user to find and fix it. */
export interface SkippedRow {
  reason: SkipReason;
  /** File and line (or tar member) the row came from, e.g. `captions.jsonl:17`. */
  where: string;
  detail: string;
}

export interface SkipReport {
  /** Rows seen in the source, usable or not. */
  rowsSeen: number;
  /** Rows kept. */
  rowsUsed: number;
  counts: Partial<Record<SkipReason, number>>;
  /** The first few skipped rows (at most `maxReportedSkips`). */
  first: SkippedRow[];
}

export interface ImageTextDataset {
  /** Human-readable name of where the data came from (a path or `builtin:…`). */
  readonly source: string;
  /** The format detected: `builtin`, `folder`, `jsonl`, `csv`, `tsv`, `webdataset`. */
  readonly format: string;
  /** Number of usable pairs. Indices below run from 0 to size − 1. */
  readonly size: number;
  /** Side of the square RGB images `loadImages` returns. */
  readonly resolution: number;
  /**
   * Stable id of a pair across runs: the 0-based line of a JSONL file, the
   * 0-based data row of a CSV, the key of a WebDataset sample, the index of a
   * built-in example.
   */
  id(index: number): string;
  caption(index: number): string;
  /** Class name where the data carry one. */
  label(index: number): string | undefined;
  /** The zero-shot prompt that fits this data's captions (`{label}` is the class name), if it knows one. */
  readonly zeroshotTemplate?: string;
  /** Ground truth that the pair is noisy (mismatched caption…), where the data know it. */
  noisy(index: number): boolean | undefined;
  /**
   * Decoded RGB pixels in [0, 1], HWC, `resolution × resolution × 3` floats per
   * image, concatenated in the order of `indices`.
   */
  loadImages(indices: readonly number[]): Promise<Float32Array>;
  /**
   * The image file's own bytes (PNG, JPEG or WebP), for sources that read
   * files (not the built-in generator, which renders its pixels): what
   * `sift export` copies unchanged.
   */
  imageBytes?(index: number): Promise<Uint8Array>;
  /**
   * A digest of the usable rows' ids, captions, labels and image bytes: equal
   * fingerprints mean the same pool, so caches keyed by it (reference
   * embeddings) are never served stale.
   */
  fingerprint(): string;
  /** What was skipped while the source was indexed and validated. */
  readonly skips: SkipReport;
  /** Frees file handles and caches. */
  close(): Promise<void>;
}

export interface OpenDatasetOptions {
  /** Side of the square images handed to the model. */
  resolution: number;
  /** Captions longer than this many UTF-8 bytes are skipped. */
  maxCaptionBytes?: number;
  /** How many skipped rows to report in full. */
  maxReportedSkips?: number;
  /** Decoded-image cache budget in bytes (an LRU; the source is re-read beyond it). */
  cacheBytes?: number;
  /** Called while a source is indexed and validated: rows done, rows total if known. */
  onProgress?: (done: number, total: number | undefined) => void;
}

/** A user-facing error about data: names the file (and line) and the fix. */
export class DataError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DataError';
  }
}
