/**
 * Between the `.siftnb` file (format.ts) and the editor's notebook model:
 * cells with their outputs as bytes, metadata, and the execution order and
 * timing the editor shows. The serializer wraps these plain shapes in the
 * editor's classes; keeping the mapping here, without editor imports, lets
 * the round trip be tested with plain Node tests.
 *
 * What the file knows and the editor does not (fields of a newer format)
 * rides in the editor's metadata under `unknownFieldsKey`, so a save writes
 * it back where it was.
 */
import { errorOutputMime } from '../protocol/notebook';
import type { NotebookCell, NotebookDocument, NotebookOutput } from './format';

export interface EditorOutputItem {
  mime: string;
  data: Uint8Array;
}

export interface EditorOutput {
  items: EditorOutputItem[];
  metadata?: Record<string, unknown>;
}

export interface ExecutionSummary {
  executionOrder?: number;
  success?: boolean;
  timing?: { startTime: number; endTime: number };
}

export interface EditorCell {
  kind: 'markdown' | 'code';
  value: string;
  languageId: string;
  outputs: EditorOutput[];
  metadata: Record<string, unknown>;
  executionSummary?: ExecutionSummary;
}

export interface EditorNotebook {
  cells: EditorCell[];
  metadata: Record<string, unknown>;
}

/** Where unknown fields of the file wait in the editor's metadata (a cell's, or the notebook's). */
export const unknownFieldsKey = 'siftUnknownFields';
/** The cell metadata key the file keeps the last execution in. */
export const executionKey = 'execution';

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Mimes saved as JSON values (readable, diffable), text mimes as strings, anything else as base64. */
const isJsonMime = (mime: string): boolean => mime === 'application/json' || mime.endsWith('+json') || mime === errorOutputMime;
const isTextMime = (mime: string): boolean => mime.startsWith('text/') || mime === 'application/vnd.code.notebook.stdout' || mime === 'application/vnd.code.notebook.stderr';

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function withUnknown(metadata: Record<string, unknown>, extra: Record<string, unknown>): Record<string, unknown> {
  return Object.keys(extra).length > 0 ? { ...metadata, [unknownFieldsKey]: extra } : { ...metadata };
}

function splitUnknown(metadata: Record<string, unknown> | undefined): { metadata: Record<string, unknown>; extra: Record<string, unknown> } {
  const { [unknownFieldsKey]: extra, ...rest } = metadata ?? {};
  return { metadata: rest, extra: isObject(extra) ? extra : {} };
}

function outputToEditor(output: NotebookOutput): EditorOutput {
  const { mime, data, encoding, ...extra } = output;
  let bytes: Uint8Array;
  if (encoding === 'base64' && typeof data === 'string') bytes = new Uint8Array(Buffer.from(data, 'base64'));
  else if (isTextMime(mime) && typeof data === 'string') bytes = encoder.encode(data);
  else bytes = encoder.encode(JSON.stringify(data ?? null));
  return { items: [{ mime, data: bytes }], ...(Object.keys(extra).length ? { metadata: extra } : {}) };
}

function outputsFromEditor(output: EditorOutput): NotebookOutput[] {
  const extra = output.metadata ?? {};
  return output.items.map((item): NotebookOutput => {
    if (isJsonMime(item.mime)) {
      const text = decoder.decode(item.data);
      try {
        return { mime: item.mime, data: JSON.parse(text), ...extra };
      } catch {
        return { mime: item.mime, data: text, encoding: 'text', ...extra };
      }
    }
    if (isTextMime(item.mime)) return { mime: item.mime, data: decoder.decode(item.data), ...extra };
    return { mime: item.mime, data: Buffer.from(item.data).toString('base64'), encoding: 'base64', ...extra };
  });
}

function executionFromFile(metadata: Record<string, unknown>): ExecutionSummary | undefined {
  const saved = metadata[executionKey];
  if (!isObject(saved)) return undefined;
  const summary: ExecutionSummary = {};
  if (typeof saved.order === 'number') summary.executionOrder = saved.order;
  if (typeof saved.success === 'boolean') summary.success = saved.success;
  if (typeof saved.start === 'number' && typeof saved.end === 'number') summary.timing = { startTime: saved.start, endTime: saved.end };
  return Object.keys(summary).length ? summary : undefined;
}

function executionToFile(summary: ExecutionSummary | undefined): Record<string, unknown> | undefined {
  if (!summary) return undefined;
  const saved: Record<string, unknown> = {};
  if (summary.executionOrder !== undefined) saved.order = summary.executionOrder;
  if (summary.success !== undefined) saved.success = summary.success;
  if (summary.timing) {
    saved.start = summary.timing.startTime;
    saved.end = summary.timing.endTime;
  }
  return Object.keys(saved).length ? saved : undefined;
}

export function toEditorNotebook(notebook: NotebookDocument): EditorNotebook {
  return {
    metadata: withUnknown(notebook.metadata, notebook.extra),
    cells: notebook.cells.map((cell): EditorCell => {
      const summary = executionFromFile(cell.metadata);
      return {
        kind: cell.kind,
        value: cell.source,
        languageId: cell.language,
        outputs: cell.outputs.map(outputToEditor),
        metadata: withUnknown(cell.metadata, cell.extra),
        ...(summary ? { executionSummary: summary } : {}),
      };
    }),
  };
}

export function fromEditorNotebook(data: EditorNotebook): NotebookDocument {
  const top = splitUnknown(data.metadata);
  return {
    metadata: top.metadata,
    extra: top.extra,
    cells: data.cells.map((cell): NotebookCell => {
      const { metadata, extra } = splitUnknown(cell.metadata);
      // The editor's summary wins over what the file had; keys it does not know are kept.
      const saved = isObject(metadata[executionKey]) ? metadata[executionKey] : {};
      const latest = cell.kind === 'code' ? executionToFile(cell.executionSummary) : undefined;
      return {
        kind: cell.kind,
        language: cell.languageId,
        source: cell.value,
        outputs: cell.outputs.flatMap(outputsFromEditor),
        metadata: latest ? { ...metadata, [executionKey]: { ...saved, ...latest } } : metadata,
        extra,
      };
    }),
  };
}
