/**
 * A JSONL rows file: one `{"image", "caption", "label"?, "noisy"?}` object a
 * line, image paths relative to the file's folder. The id of a row is its
 * 0-based line number, so ids survive edits that append rows. Blank lines are
 * not rows (a trailing newline is not a bad row), but they keep their number.
 */
import * as path from 'node:path';
import { SkipLog, parseJsonRow, settingsFrom } from '../rows.ts';
import { DataError } from '../types.ts';
import type { ImageTextDataset, OpenDatasetOptions } from '../types.ts';
import { openFileRows } from './files.ts';
import type { ParsedRow } from './files.ts';
import { readByteLines } from './lines.ts';

export interface JsonlAs {
  /** Name shown to the user; defaults to the file. */
  source?: string;
  /** Format reported by the dataset; defaults to `jsonl`. */
  format?: string;
}

export async function openJsonl(file: string, options: OpenDatasetOptions, as: JsonlAs = {}): Promise<ImageTextDataset> {
  const settings = settingsFrom(options);
  const name = path.basename(file);
  const rows: ParsedRow[] = [];
  try {
    for await (const { line, bytes } of readByteLines(file)) {
      if (isBlank(bytes)) continue;
      rows.push({ id: String(line - 1), where: `${name}:${line}`, fields: parseJsonRow(bytes, settings.maxCaptionBytes) });
    }
  } catch (err) {
    throw new DataError(`${file}: cannot read the rows file (${(err as Error).message}).`);
  }
  return openFileRows({
    source: as.source ?? file,
    format: as.format ?? 'jsonl',
    root: path.dirname(path.resolve(file)),
    rows,
    log: new SkipLog(settings.maxReportedSkips),
    settings,
  });
}

function isBlank(bytes: Buffer): boolean {
  for (const b of bytes) if (b !== 0x20 && b !== 0x09 && b !== 0x0d) return false;
  return true;
}
