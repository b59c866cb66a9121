/**
 * A dataset folder: `captions.jsonl` at its root, image paths relative to the
 * folder. The same rows as a JSONL file (ids are its 0-based line numbers),
 * reported as the folder.
 */
import * as path from 'node:path';
import type { ImageTextDataset, OpenDatasetOptions } from '../types.ts';
import { openJsonl } from './jsonl.ts';

export const CAPTIONS_FILE = 'captions.jsonl';

/** `source` is how the user named the folder (defaults to the path given). */
export function openFolder(folder: string, options: OpenDatasetOptions, source: string = folder): Promise<ImageTextDataset> {
  return openJsonl(path.join(folder, CAPTIONS_FILE), options, { source, format: 'folder' });
}
