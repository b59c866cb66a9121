/**
 * The `.siftnb` file: readable JSON that diffs well in git. Cells keep their
 * source as an array of lines (like .ipynb), outputs are small data (run ids
 * and summary numbers, re-rendered from the run folders on open), and every
 * field this version does not know is kept as it was, at every level, so a
 * newer Sift's notebook survives a round trip through an older one.
 */

export const NOTEBOOK_VERSION = 1;

export type CellKind = 'markdown' | 'code';

export interface NotebookOutput {
  /** e.g. application/vnd.sift.run+json, application/vnd.sift.error+json */
  mime: string;
  data: unknown;
  [unknown: string]: unknown;
}

export interface NotebookCell {
  kind: CellKind;
  /** 'markdown' or 'json' (code cells hold a run, branch or compare request in JSON). */
  language: string;
  source: string;
  outputs: NotebookOutput[];
  /** Execution order and timing as last shown; unknown keys kept. */
  metadata: Record<string, unknown>;
  /** Fields of the cell object this version does not know. */
  extra: Record<string, unknown>;
}

export interface NotebookDocument {
  cells: NotebookCell[];
  metadata: Record<string, unknown>;
  extra: Record<string, unknown>;
}

export class NotebookFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'NotebookFormatError';
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function without(object: Record<string, unknown>, keys: readonly string[]): Record<string, unknown> {
  return Object.fromEntries(Object.entries(object).filter(([key]) => !keys.includes(key)));
}

const CELL_KEYS = ['kind', 'language', 'source', 'outputs', 'metadata'] as const;
const NOTEBOOK_KEYS = ['version', 'cells', 'metadata'] as const;

/** Parses a .siftnb file; an empty file is an empty notebook. Errors name the cell and field. */
export function parseNotebook(text: string, file = 'notebook'): NotebookDocument {
  if (text.trim() === '') return { cells: [], metadata: {}, extra: {} };
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    throw new NotebookFormatError(`${file}: not valid JSON (${(error as Error).message}). Fix it in a text editor (Reopen Editor With… → Text Editor).`);
  }
  if (!isObject(raw)) throw new NotebookFormatError(`${file}: a Sift notebook is one JSON object with "cells".`);
  if (typeof raw.version === 'number' && raw.version > NOTEBOOK_VERSION) {
    throw new NotebookFormatError(`${file}: written by a newer Sift (format ${raw.version}; this one reads ${NOTEBOOK_VERSION}). Update the extension.`);
  }
  const cellsRaw = raw.cells ?? [];
  if (!Array.isArray(cellsRaw)) throw new NotebookFormatError(`${file}: "cells" must be a list.`);
  const cells = cellsRaw.map((cell, index): NotebookCell => {
    const where = `${file}: cell ${index + 1}`;
    if (!isObject(cell)) throw new NotebookFormatError(`${where} is not an object.`);
    const kind = cell.kind === 'markdown' ? 'markdown' : cell.kind === 'code' ? 'code' : undefined;
    if (!kind) throw new NotebookFormatError(`${where}: "kind" must be "markdown" or "code".`);
    const source = cell.source ?? '';
    let text: string;
    if (typeof source === 'string') text = source;
    else if (Array.isArray(source) && source.every((line) => typeof line === 'string')) text = source.join('\n');
    else throw new NotebookFormatError(`${where}: "source" must be a string or a list of lines.`);
    const outputs = Array.isArray(cell.outputs) ? cell.outputs.filter((o): o is NotebookOutput => isObject(o) && typeof o.mime === 'string') : [];
    return {
      kind,
      language: typeof cell.language === 'string' ? cell.language : kind === 'markdown' ? 'markdown' : 'json',
      source: text,
      outputs,
      metadata: isObject(cell.metadata) ? cell.metadata : {},
      extra: without(cell, CELL_KEYS),
    };
  });
  return { cells, metadata: isObject(raw.metadata) ? raw.metadata : {}, extra: without(raw, NOTEBOOK_KEYS) };
}

/** Serialises with stable key order and one source line per array entry, so diffs stay small. */
export function serializeNotebook(notebook: NotebookDocument): string {
  const cells = notebook.cells.map((cell) => ({
    kind: cell.kind,
    language: cell.language,
    source: cell.source.split('\n'),
    ...(cell.outputs.length ? { outputs: cell.outputs } : {}),
    ...(Object.keys(cell.metadata).length ? { metadata: cell.metadata } : {}),
    ...cell.extra,
  }));
  const document = {
    version: NOTEBOOK_VERSION,
    ...(Object.keys(notebook.metadata).length ? { metadata: notebook.metadata } : {}),
    cells,
    ...notebook.extra,
  };
  return JSON.stringify(document, null, 2) + '\n';
}
