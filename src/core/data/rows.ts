/**
 * What every real-data source shares: the checks one row must pass (fields,
 * caption, UTF-8, image path), and the accounting of rows that fail them.
 * A bad row is never fatal: it is skipped, counted by reason and, for the
 * first few, reported with its file and line, so one stray line in a million
 * does not stop a run — but a dataset with nothing usable is an error that
 * says why.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import { promisify } from 'node:util';
import * as path from 'node:path';
import { DataError } from './types.ts';
import type { OpenDatasetOptions, SkipReason, SkipReport, SkippedRow } from './types.ts';

export const DEFAULT_MAX_CAPTION_BYTES = 4096;
export const DEFAULT_MAX_REPORTED_SKIPS = 5;
export const DEFAULT_CACHE_BYTES = 64 * 1024 * 1024;
const MAX_TRAINING_CACHE_BYTES = 1024 * 1024 * 1024;

/**
 * The decoded-image cache of a training run's data: a sixteenth of the
 * machine's memory, between 64 MiB and 1 GiB. A selecting run reads a
 * super-batch of random pool images every step (320 at b = 64, F = 0.8), so
 * a pool that does not fit is re-read and re-decoded over and over: with
 * Fashion-MNIST's 50,000 images (150 MB at 32 px) in 64 MiB that was a quarter
 * of a JEST step. Panels and one-pass jobs keep DEFAULT_CACHE_BYTES.
 */
export function trainingCacheBytes(totalMemory = os.totalmem()): number {
  return Math.max(DEFAULT_CACHE_BYTES, Math.min(MAX_TRAINING_CACHE_BYTES, Math.floor(totalMemory / 16)));
}

/** The fields of one usable row, whatever the file format. */
export interface RowFields {
  /** Image path as written in the row (relative), or the tar member name. */
  image: string;
  caption: string;
  label?: string;
  noisy?: boolean;
}

/** Why a row is unusable, in the terms of `SkippedRow`. */
export interface Problem {
  reason: SkipReason;
  detail: string;
}

export type Checked<T> = { ok: true; value: T } | ({ ok: false } & Problem);

export function ok<T>(value: T): Checked<T> {
  return { ok: true, value };
}

export function fail<T>(reason: SkipReason, detail: string): Checked<T> {
  return { ok: false, reason, detail };
}

/**
 * Counts rows and skips. `first` keeps the first `maxReported` skips in the
 * order they were logged; sources log in file order so the report is
 * deterministic. The first example of each reason is kept too, for the
 * zero-usable-rows message.
 */
export class SkipLog {
  private seen = 0;
  private readonly counts: Partial<Record<SkipReason, number>> = {};
  private readonly first: SkippedRow[] = [];
  private readonly firstByReason = new Map<SkipReason, SkippedRow>();

  constructor(private readonly maxReported: number = DEFAULT_MAX_REPORTED_SKIPS) {}

  /** Counts a row of the source, usable or not. */
  row(): void {
    this.seen++;
  }

  /**
   * Records a skipped row. Also used for whole-file problems (a shard that is
   * missing or cut short), which are counted but are not rows.
   */
  skip(reason: SkipReason, where: string, detail: string): void {
    this.counts[reason] = (this.counts[reason] ?? 0) + 1;
    const entry = { reason, where, detail };
    if (this.first.length < this.maxReported) this.first.push(entry);
    if (!this.firstByReason.has(reason)) this.firstByReason.set(reason, entry);
  }

  get rowsSeen(): number {
    return this.seen;
  }

  report(rowsUsed: number): SkipReport {
    return { rowsSeen: this.seen, rowsUsed, counts: { ...this.counts }, first: this.first.map((s) => ({ ...s })) };
  }

  /**
   * The error for a source with nothing usable: names it, says so, and lists
   * the commonest reasons with their first example — enough to act on.
   */
  noUsableRows(source: string): DataError {
    const reasons = (Object.entries(this.counts) as [SkipReason, number][]).sort((a, b) => b[1] - a[1]);
    if (this.seen === 0 && reasons.length === 0) {
      return new DataError(`${source}: zero usable rows — the dataset has no rows at all. ${FORMAT_HINT}`);
    }
    const lines = reasons.slice(0, 4).map(([reason, count]) => {
      const example = this.firstByReason.get(reason);
      const first = example ? ` — first at ${example.where}: ${example.detail}` : '';
      return `  ${reason} ×${count}${first}`;
    });
    const more = reasons.length > 4 ? `\n  … and ${reasons.length - 4} other reasons` : '';
    return new DataError(
      `${source}: zero usable rows out of ${this.seen} (every row was skipped). Top reasons:\n` +
        `${lines.join('\n')}${more}\nFix these rows (or point Sift at another dataset) and open it again.`,
    );
  }
}

export const FORMAT_HINT = 'Each row needs an image (a path relative to the dataset) and a non-empty caption.';

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/** Decodes UTF-8, or returns undefined if the bytes are not valid UTF-8. */
export function decodeUtf8(bytes: Uint8Array): string | undefined {
  try {
    return strictUtf8.decode(bytes);
  } catch {
    return undefined;
  }
}

/** One JSONL line (raw bytes) → the row's fields, or why it is unusable. */
export function parseJsonRow(bytes: Uint8Array, maxCaptionBytes: number): Checked<RowFields> {
  const text = decodeUtf8(bytes);
  if (text === undefined) return fail('non-utf8', 'the line is not valid UTF-8 text; re-save the file as UTF-8');
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    return fail('invalid-json', `not valid JSON (${(err as Error).message}): ${preview(text)}`);
  }
  return checkFields(value, maxCaptionBytes);
}

/**
 * Checks a parsed row (a JSON object, or a CSV record as an object) and
 * normalises it: captions and labels trimmed, a numeric label turned into
 * its string (many datasets store class ids as numbers).
 */
export function checkFields(value: unknown, maxCaptionBytes: number): Checked<RowFields> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return fail('wrong-field-type', `expected an object like {"image": …, "caption": …}, got ${describeType(value)}`);
  }
  const row = value as Record<string, unknown>;

  const image = row.image;
  if (image === undefined || image === null) return fail('missing-field', 'no "image" field');
  if (typeof image !== 'string') return fail('wrong-field-type', `"image" is ${describeType(image)}; expected a string path`);
  if (image.trim() === '') return fail('missing-field', '"image" is empty');

  const caption = row.caption;
  if (caption === undefined || caption === null) return fail('missing-field', 'no "caption" field');
  if (typeof caption !== 'string') return fail('wrong-field-type', `"caption" is ${describeType(caption)}; expected a string`);
  const checkedCaption = checkCaption(caption, maxCaptionBytes);
  if (!checkedCaption.ok) return checkedCaption;

  const fields: RowFields = { image: image.trim(), caption: checkedCaption.value };

  const label = row.label;
  if (typeof label === 'string') {
    if (label.trim() !== '') fields.label = label.trim();
  } else if (typeof label === 'number' && Number.isFinite(label)) {
    fields.label = String(label);
  } else if (label !== undefined && label !== null) {
    return fail('wrong-field-type', `"label" is ${describeType(label)}; expected a class name (string)`);
  }

  const noisy = row.noisy;
  if (typeof noisy === 'boolean') fields.noisy = noisy;
  else if (noisy !== undefined && noisy !== null) {
    return fail('wrong-field-type', `"noisy" is ${describeType(noisy)}; expected true or false`);
  }
  return ok(fields);
}

/** A caption is usable if, trimmed, it is non-empty and within the byte limit. */
export function checkCaption(caption: string, maxCaptionBytes: number): Checked<string> {
  const trimmed = caption.trim();
  if (trimmed === '') return fail('empty-caption', 'the caption is empty');
  const size = Buffer.byteLength(trimmed, 'utf8');
  if (size > maxCaptionBytes) {
    return fail(
      'caption-too-long',
      `the caption is ${size} bytes; the limit is ${maxCaptionBytes} (raise maxCaptionBytes to keep it): ${preview(trimmed)}`,
    );
  }
  return ok(trimmed);
}

/**
 * Resolves an image path written in a row against the dataset's folder.
 * Absolute paths and paths that climb out of the folder are refused: a
 * dataset must be self-contained, and a downloaded captions file must not be
 * able to point Sift at arbitrary files on the machine.
 */
export function resolveInside(root: string, relative: string): Checked<string> {
  if (path.isAbsolute(relative) || path.win32.isAbsolute(relative)) {
    return fail('path-escapes-dataset', `image path "${relative}" is absolute; write it relative to ${root}`);
  }
  const resolved = path.resolve(root, relative);
  const inside = path.relative(root, resolved);
  if (inside === '' || inside === '..' || inside.startsWith(`..${path.sep}`) || path.isAbsolute(inside)) {
    return fail('path-escapes-dataset', `image path "${relative}" points outside the dataset folder ${root}`);
  }
  return ok(resolved);
}

/**
 * `fs.readFile` with a callback, promisified. For many small files it is
 * about twice as fast as `fs.promises.readFile`, whose file-handle machinery
 * costs more main-thread time than reading a 500-byte PNG.
 */
export const readFileFast: (file: string) => Promise<Buffer> = promisify(fs.readFile);

/** Reads an image file, mapping the usual failures to skip reasons. */
export async function readImageFile(file: string, shownAs: string): Promise<Checked<Buffer>> {
  try {
    return ok(await readFileFast(file));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return fail('missing-file', `image "${shownAs}" not found (looked for ${file})`);
    return fail('unreadable', `image "${shownAs}" could not be read (${(err as Error).message})`);
  }
}

/** The first characters of a long value, for messages. */
export function preview(text: string, max = 60): string {
  const flat = JSON.stringify(text.length > max ? `${text.slice(0, max)}…` : text);
  return flat;
}

function describeType(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return 'an object';
  return `a ${typeof value} (${preview(String(value), 30)})`;
}

/** Options with their defaults filled in; the sources share these. */
export interface SourceSettings {
  resolution: number;
  maxCaptionBytes: number;
  maxReportedSkips: number;
  cacheBytes: number;
  onProgress?: (done: number, total: number | undefined) => void;
}

export function settingsFrom(options: OpenDatasetOptions): SourceSettings {
  if (!Number.isInteger(options.resolution) || options.resolution <= 0) {
    throw new DataError(`The image resolution must be a positive whole number of pixels, got ${options.resolution}.`);
  }
  return {
    resolution: options.resolution,
    maxCaptionBytes: options.maxCaptionBytes ?? DEFAULT_MAX_CAPTION_BYTES,
    maxReportedSkips: options.maxReportedSkips ?? DEFAULT_MAX_REPORTED_SKIPS,
    cacheBytes: options.cacheBytes ?? DEFAULT_CACHE_BYTES,
    onProgress: options.onProgress,
  };
}

/**
 * Calls `onProgress` every `every` rows and at the end, not on every row: the
 * callback may cross a process boundary (worker → editor).
 */
export function throttledProgress(
  onProgress: SourceSettings['onProgress'],
  every = 256,
): (done: number, total: number | undefined, final?: boolean) => void {
  let last = -1;
  return (done, total, final = false) => {
    if (!onProgress) return;
    if (final || done === total || done - last >= every) {
      last = done;
      onProgress(done, total);
    }
  };
}
