/**
 * A CSV or TSV rows file with a header naming the columns `image`, `caption`
 * and optionally `label` and `noisy` (any order, any case; other columns are
 * ignored). The id of a row is its 0-based data row (the header excluded).
 *
 * Fields are parsed as raw bytes (csv-parse `encoding: null`) so that a
 * caption in another encoding is skipped as non-UTF-8 instead of being read
 * as mojibake. Quotes follow RFC 4180, leniently: a stray quote inside an
 * unquoted field is kept as text (common in hand-made TSVs).
 */
import { createReadStream } from 'node:fs';
import * as path from 'node:path';
import { parse } from 'csv-parse';
import type { InfoRecord } from 'csv-parse';
import { SkipLog, checkFields, decodeUtf8, fail, settingsFrom } from '../rows.ts';
import type { Checked, RowFields, SourceSettings } from '../rows.ts';
import { DataError } from '../types.ts';
import type { ImageTextDataset, OpenDatasetOptions } from '../types.ts';
import { openFileRows } from './files.ts';
import type { ParsedRow } from './files.ts';

const COLUMNS = ['image', 'caption', 'label', 'noisy'] as const;
type Column = (typeof COLUMNS)[number];

export async function openDelimited(
  file: string,
  delimiter: ',' | '\t',
  options: OpenDatasetOptions,
  source: string = file,
): Promise<ImageTextDataset> {
  const settings = settingsFrom(options);
  const log = new SkipLog(settings.maxReportedSkips);
  const rows = await parseRows(file, delimiter, settings, log);
  return openFileRows({
    source,
    format: delimiter === ',' ? 'csv' : 'tsv',
    root: path.dirname(path.resolve(file)),
    rows,
    log,
    settings,
  });
}

async function parseRows(file: string, delimiter: string, settings: SourceSettings, log: SkipLog): Promise<ParsedRow[]> {
  const name = path.basename(file);
  const kind = delimiter === ',' ? 'CSV' : 'TSV';
  const rows: ParsedRow[] = [];
  let columns: Map<Column, number> | undefined;
  /** The line the last parsed record ended on; a malformed one starts after it. */
  let lastLine = 0;
  // Rows are handled in csv-parse's callbacks, which run synchronously in
  // file order — good records and unparseable ones alike — so data-row ids
  // stay in step whatever the stream buffers.
  const parser = parse({
    delimiter,
    encoding: null,
    bom: true,
    relax_column_count: true,
    relax_quotes: true,
    skip_empty_lines: true,
    skip_records_with_error: true,
    on_record: (fields, info: InfoRecord) => {
      // With `encoding: null` the fields are Buffers; csv-parse's types only
      // model strings.
      const record = fields as unknown as Buffer[];
      // info.lines is the line where the record ends; a quoted caption may
      // span lines, so count back to where it starts.
      const line = info.lines - record.reduce((n, field) => n + countNewlines(field), 0);
      lastLine = info.lines;
      if (columns === undefined) columns = headerColumns(record, file, kind);
      else rows.push({ id: String(rows.length), where: `${name}:${line}`, fields: recordFields(record, columns, settings) });
      return null; // nothing to pass downstream: the rows are collected here
    },
    on_skip: (err) => {
      // A record csv-parse cannot parse at all (an unclosed quote swallows
      // the rest of the file): reported, and the file is read on.
      rows.push({
        id: String(rows.length),
        where: `${name}:${lastLine + 1}`,
        fields: fail('unreadable', `malformed ${kind} row (${err?.message ?? 'parse error'}); check the quotes on this line`),
      });
      return undefined;
    },
  });
  try {
    for await (const _ of createReadStream(file).pipe(parser)) void _;
  } catch (err) {
    if (err instanceof DataError) throw err;
    throw new DataError(`${file}: cannot read the ${kind} file (${(err as Error).message}).`);
  }
  if (columns === undefined) throw log.noUsableRows(file); // an empty file: no header, no rows
  return rows;
}

/** Maps the header's column names to positions; image and caption are required. */
function headerColumns(record: Buffer[], file: string, kind: string): Map<Column, number> {
  const names = record.map((field) => (decodeUtf8(field) ?? '').trim().toLowerCase());
  const columns = new Map<Column, number>();
  for (const column of COLUMNS) {
    const at = names.indexOf(column);
    if (at !== -1) columns.set(column, at);
  }
  const missing = (['image', 'caption'] as const).filter((c) => !columns.has(c));
  if (missing.length > 0) {
    throw new DataError(
      `${file}: the first line must be a header naming the columns image and caption (and optionally label, noisy); ` +
        `missing ${missing.join(' and ')}, found ${names.map((n) => JSON.stringify(n)).join(', ')}. ` +
        `Add a header line such as "image${kind === 'CSV' ? ',' : '\\t'}caption".`,
    );
  }
  return columns;
}

/** A data record → the same object shape a JSONL row has, then the shared checks. */
function recordFields(record: Buffer[], columns: Map<Column, number>, settings: SourceSettings): Checked<RowFields> {
  const row: Record<string, unknown> = {};
  for (const [column, at] of columns) {
    const bytes = record[at];
    if (bytes === undefined) continue; // short row: the field is missing
    const text = decodeUtf8(bytes);
    if (text === undefined) return fail('non-utf8', `the ${column} column is not valid UTF-8 text; re-save the file as UTF-8`);
    row[column] = column === 'noisy' ? parseFlag(text) : text;
  }
  return checkFields(row, settings.maxCaptionBytes);
}

/** A CSV cell as a boolean; anything unrecognised stays a string, which the field check rejects. */
function parseFlag(text: string): boolean | string | undefined {
  const value = text.trim().toLowerCase();
  if (value === '') return undefined;
  if (value === 'true' || value === '1' || value === 'yes') return true;
  if (value === 'false' || value === '0' || value === 'no') return false;
  return text;
}

function countNewlines(bytes: Buffer): number {
  let n = 0;
  for (let at = bytes.indexOf(0x0a); at !== -1; at = bytes.indexOf(0x0a, at + 1)) n++;
  return n;
}
