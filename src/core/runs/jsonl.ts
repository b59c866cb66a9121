/**
 * Append-only JSON Lines. Writers append whole lines; readers tolerate a torn
 * last line (a crash mid-write) and report it rather than failing.
 */
import * as fs from 'node:fs';

export interface JsonlRead<T> {
  rows: T[];
  /** A last line without its newline that did not parse: a write cut short. */
  tornTail: boolean;
}

export function readJsonl<T>(file: string): JsonlRead<T> {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { rows: [], tornTail: false };
    throw error;
  }
  const lines = text.split('\n');
  const endsWithNewline = lines[lines.length - 1] === '';
  if (endsWithNewline) lines.pop();
  const rows: T[] = [];
  let tornTail = false;
  lines.forEach((line, index) => {
    if (line.trim() === '') return;
    try {
      rows.push(JSON.parse(line) as T);
    } catch (error) {
      const isLast = index === lines.length - 1;
      if (isLast && !endsWithNewline) {
        tornTail = true;
        return;
      }
      throw new Error(`${file}:${index + 1}: not valid JSON (${(error as Error).message}). The file is corrupt beyond a torn last line.`, { cause: error });
    }
  });
  return { rows, tornTail };
}

export class JsonlWriter {
  private readonly fd: number;

  constructor(readonly file: string) {
    this.fd = fs.openSync(file, 'a');
  }

  /** Writes one object as one line, in a single write call. */
  append(row: unknown): void {
    fs.writeSync(this.fd, JSON.stringify(row) + '\n');
  }

  close(): void {
    fs.closeSync(this.fd);
  }
}

/** Writes a file whole or not at all: a temp file in the same folder, fsynced, then renamed over. */
export function writeFileAtomic(file: string, contents: string | Uint8Array): void {
  const temp = `${file}.tmp-${process.pid}`;
  const fd = fs.openSync(temp, 'w');
  try {
    fs.writeSync(fd, typeof contents === 'string' ? Buffer.from(contents) : contents);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(temp, file);
}
