/**
 * The one entry point for data: a spec (what the user typed in the run
 * config) → an open dataset. The format is detected from the path, so the
 * user never has to name it.
 */
import * as fs from 'node:fs/promises';
import type { Stats } from 'node:fs';
import * as path from 'node:path';
import { openBuiltin } from './synthetic.ts';
import { DataError } from './types.ts';
import type { ImageTextDataset, OpenDatasetOptions } from './types.ts';
import { openDelimited } from './sources/csv.ts';
import { CAPTIONS_FILE, openFolder } from './sources/folder.ts';
import { openJsonl } from './sources/jsonl.ts';
import { expandBraces, isBracePattern, tarsInFolder } from './sources/shards.ts';
import { openWebDataset } from './sources/webdataset.ts';

export const ACCEPTED_FORMATS = [
  'builtin:<name> — a built-in synthetic dataset',
  `a folder containing ${CAPTIONS_FILE} ({"image": "<path relative to the folder>", "caption": "…", "label"?: "…"} per line)`,
  'a .jsonl file with the same rows (image paths relative to the file)',
  'a .csv or .tsv file with a header naming the columns image, caption (and optionally label)',
  'WebDataset shards: one .tar, a folder of .tar files, or a pattern like shards/{00000..00009}.tar',
];

const ACCEPTED = `Sift reads:\n${ACCEPTED_FORMATS.map((f) => `  - ${f}`).join('\n')}`;

export async function openDataset(spec: string, options: OpenDatasetOptions): Promise<ImageTextDataset> {
  if (spec.startsWith('builtin:')) return openBuiltin(spec, options);
  if (spec.trim() === '') throw new DataError(`No dataset given. ${ACCEPTED}`);

  if (isBracePattern(spec)) {
    const shards = expandBraces(spec).map((shard) => path.resolve(shard));
    if (!shards.every((shard) => shard.toLowerCase().endsWith('.tar'))) {
      throw new DataError(`${spec}: a brace pattern must name .tar shards (uncompressed). ${ACCEPTED}`);
    }
    return openWebDataset(spec, shards, options);
  }

  const target = path.resolve(spec);
  const stats = await statOrUndefined(target);
  if (stats === undefined) throw new DataError(`${spec}: no such file or folder (looked for ${target}). ${ACCEPTED}`);

  if (stats.isDirectory()) {
    if (await statOrUndefined(path.join(target, CAPTIONS_FILE))) return openFolder(target, options, spec);
    const shards = await tarsInFolder(target);
    if (shards.length > 0) return openWebDataset(spec, shards, options);
    throw new DataError(`${spec}: this folder has neither a ${CAPTIONS_FILE} nor .tar shards. ${ACCEPTED}`);
  }

  const lower = target.toLowerCase();
  if (lower.endsWith('.jsonl')) return openJsonl(target, options, { source: spec });
  if (lower.endsWith('.csv')) return openDelimited(target, ',', options, spec);
  if (lower.endsWith('.tsv')) return openDelimited(target, '\t', options, spec);
  if (lower.endsWith('.tar')) return openWebDataset(spec, [target], options);
  if (/\.(tar\.gz|tgz|tar\.zst)$/.test(lower)) {
    throw new DataError(
      `${spec}: compressed shards cannot be read at random; decompress them first (e.g. gunzip), then open the .tar files.`,
    );
  }
  throw new DataError(`${spec}: not a format Sift reads. ${ACCEPTED}`);
}

async function statOrUndefined(file: string): Promise<Stats | undefined> {
  try {
    return await fs.stat(file);
  } catch {
    return undefined;
  }
}
