/**
 * The part of opening a dataset that the file-based formats (captions folder,
 * JSONL, CSV/TSV) share once their rows are parsed: resolve each image path
 * inside the dataset folder, read and decode every image once (so a corrupt
 * file is caught before training, not at step 40 000), log the skips in file
 * order, and hand back an `IndexedDataset` over the image files.
 */
import { readFileFast, readImageFile, resolveInside, throttledProgress } from '../rows.ts';
import type { Checked, Problem, RowFields, SkipLog, SourceSettings } from '../rows.ts';
import type { ImageTextDataset } from '../types.ts';
import { ImageCache } from './cache.ts';
import { IndexedDataset, validateImage } from './indexed.ts';
import type { ImageStore, IndexedRow } from './indexed.ts';

/** One row of a rows file, parsed (fields) or not (a problem). */
export interface ParsedRow {
  /** The id the row keeps if usable (0-based line or data row). */
  id: string;
  /** `file:line`, 1-based, for the skip report. */
  where: string;
  fields: Checked<RowFields>;
}

export interface FileRowsInit {
  source: string;
  format: string;
  /** The folder that image paths are relative to. */
  root: string;
  rows: readonly ParsedRow[];
  log: SkipLog;
  settings: SourceSettings;
}

/** How many image files are read at once while validating. */
const VALIDATE_CONCURRENCY = 32;

/** A row whose fields passed; its image is still to be read and decoded. */
interface Candidate {
  /** Position in `rows`. */
  row: number;
  fields: RowFields;
  file: string;
}

export async function openFileRows(init: FileRowsInit): Promise<ImageTextDataset> {
  const { rows, log, settings } = init;
  const problems: (Problem | undefined)[] = new Array(rows.length);
  const candidates: Candidate[] = [];
  rows.forEach((row, k) => {
    log.row();
    if (!row.fields.ok) {
      problems[k] = row.fields;
      return;
    }
    const resolved = resolveInside(init.root, row.fields.value.image);
    if (!resolved.ok) problems[k] = resolved;
    else candidates.push({ row: k, fields: row.fields.value, file: resolved.value });
  });

  // Validation decodes each image anyway; keep the first results (by row
  // position, within the cache budget) to seed the dataset's cache.
  const warm = new ImageCache(settings.cacheBytes);
  const digests: string[] = [];
  const progress = throttledProgress(settings.onProgress);
  let done = 0;
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < candidates.length) {
      const { row, fields, file } = candidates[next++];
      const bytes = await readImageFile(file, fields.image);
      if (!bytes.ok) problems[row] = bytes;
      else {
        try {
          digests[row] = validateImage(bytes.value, settings.resolution, warm, row);
        } catch (err) {
          problems[row] = { reason: 'corrupt-image', detail: `image "${fields.image}" is corrupt or truncated: ${(err as Error).message}` };
        }
      }
      progress(++done, candidates.length);
    }
  };
  progress(0, candidates.length, true);
  await Promise.all(Array.from({ length: Math.min(VALIDATE_CONCURRENCY, candidates.length) }, worker));

  // Skips are logged here, in file order, so the report does not depend on
  // which read finished first.
  rows.forEach((row, k) => {
    const problem = problems[k];
    if (problem) log.skip(problem.reason, row.where, problem.detail);
  });
  const used: IndexedRow[] = [];
  const files: string[] = [];
  const where: string[] = [];
  const indexOfRow = new Map<number, number>();
  for (const { row, fields, file } of candidates) {
    if (problems[row]) continue;
    indexOfRow.set(row, used.length);
    used.push({ id: rows[row].id, caption: fields.caption, label: fields.label, noisy: fields.noisy, imageDigest: digests[row] });
    files.push(file);
    where.push(rows[row].where);
  }
  if (used.length === 0) throw log.noUsableRows(init.source);

  const cache = new ImageCache(settings.cacheBytes);
  for (const [k, pixels] of warm.entries()) cache.set(indexOfRow.get(k)!, pixels);

  return new IndexedDataset({
    source: init.source,
    format: init.format,
    resolution: settings.resolution,
    rows: used,
    store: new FileStore(files, where),
    skips: log.report(used.length),
    cache,
  });
}

/** Image bytes from one file per row; nothing is held open between reads. */
class FileStore implements ImageStore {
  constructor(
    private readonly files: readonly string[],
    private readonly where: readonly string[],
  ) {}

  read(index: number): Promise<Uint8Array> {
    return readFileFast(this.files[index]);
  }

  describe(index: number): string {
    return `${this.where[index]} (${this.files[index]})`;
  }

  async close(): Promise<void> {}
}
