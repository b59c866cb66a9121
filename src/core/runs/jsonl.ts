/**
 * Append-only JSON Lines. Writers append whole lines; readers tolerate a torn
 * last line (a crash mid-write) and report it rather than failing.
 *
 * Every write to a run folder goes through `JsonlWriter` or `writeFileAtomic`,
 * and a failure the user can fix (disk full, read-only folder) surfaces as a
 * `WriteError` that says so: the worker pauses the run on it instead of failing.
 */
import * as fs from 'node:fs';

/** Errno codes of a write the user can fix, with what to tell them. */
const fixableWriteCodes: Record<string, string> = {
  ENOSPC: 'the disk is full. Free some space',
  EDQUOT: 'the disk quota is used up. Free some space',
  EROFS: 'the file system is read-only. Make it writable',
  EACCES: 'the folder is not writable. Fix its permissions',
  EPERM: 'the folder is not writable. Fix its permissions',
};

/** A write to a run folder failed for a reason the user can fix; the run can resume once it is fixed. */
export class WriteError extends Error {
  constructor(
    readonly file: string,
    readonly code: string,
    cause: unknown,
  ) {
    super(`Cannot write ${file}: ${fixableWriteCodes[code]} (${code}), then resume the run.`, { cause });
    this.name = 'WriteError';
  }
}

/** Rethrows a fixable write failure as a `WriteError`; anything else unchanged. */
export function asWriteError(error: unknown, file: string): unknown {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return code && code in fixableWriteCodes && !(error instanceof WriteError) ? new WriteError(file, code, error) : error;
}

/**
 * Test hook: while the file named by SIFT_TEST_DISK_FULL exists, every run
 * write fails as if the disk were full (tests run as root, where a read-only
 * folder does not stop writes). Unset in normal use: one env read at load.
 */
const diskFullFlag = process.env.SIFT_TEST_DISK_FULL;
function simulatedDiskFull(file: string): void {
  if (diskFullFlag && fs.existsSync(diskFullFlag)) {
    throw Object.assign(new Error(`ENOSPC: no space left on device, write '${file}'`), { code: 'ENOSPC' });
  }
}

export interface JsonlRead<T> {
  rows: T[];
  /** A last line without its newline that did not parse: a write cut short. */
  tornTail: boolean;
}

/** Parses one whole line (one that ended with a newline): a line that does not parse is corruption, named by file and line. */
export function parseJsonlLine<T>(text: string, file: string, lineNumber: number): T {
  try {
    return JSON.parse(text) as T;
  } catch (error) {
    throw new Error(`${file}:${lineNumber}: not valid JSON (${(error as Error).message}). The file is corrupt beyond a torn last line.`, { cause: error });
  }
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
  // The text after the last newline is a write cut short (or nothing): kept only if it parses.
  const tail = lines.pop()!;
  const rows: T[] = [];
  lines.forEach((line, index) => {
    if (line.trim() !== '') rows.push(parseJsonlLine<T>(line, file, index + 1));
  });
  let tornTail = false;
  if (tail.trim() !== '') {
    try {
      rows.push(JSON.parse(tail) as T);
    } catch {
      tornTail = true;
    }
  }
  return { rows, tornTail };
}

/** Where a whole line lies in its file. */
export interface JsonlSpan {
  /** Byte offset of its first character. */
  offset: number;
  /** Its length in bytes, without the newline. */
  bytes: number;
  /** 1-based. */
  lineNumber: number;
}

/**
 * Reads a JSON Lines file a megabyte at a time from byte `from`, handing each
 * whole non-empty line (its text and where it lies) to `visit`. Each chunk is
 * its own turn of the event loop, so a long file never blocks it for long.
 * A last line without its newline (being written, or cut short) is left
 * unread. Returns where reading should continue once the file grows: the
 * offset after the last whole line, and that line's number. A missing file
 * reads as empty.
 */
export async function scanJsonl(
  file: string,
  visit: (text: string, span: JsonlSpan) => void,
  from: { offset: number; lineNumber: number } = { offset: 0, lineNumber: 0 },
  chunkBytes = 1 << 20,
): Promise<{ offset: number; lineNumber: number }> {
  let handle: fs.promises.FileHandle;
  try {
    handle = await fs.promises.open(file, 'r');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return from;
    throw error;
  }
  let { offset, lineNumber } = from;
  try {
    let pending = Buffer.alloc(0);
    let pendingAt = offset;
    for (;;) {
      const chunk = Buffer.allocUnsafe(chunkBytes);
      const { bytesRead } = await handle.read(chunk, 0, chunkBytes, pendingAt + pending.length);
      if (bytesRead === 0) break;
      const buffer = pending.length > 0 ? Buffer.concat([pending, chunk.subarray(0, bytesRead)]) : chunk.subarray(0, bytesRead);
      let start = 0;
      for (let end = buffer.indexOf(10, start); end !== -1; end = buffer.indexOf(10, start)) {
        lineNumber++;
        if (end > start) {
          const text = buffer.toString('utf8', start, end);
          if (text.trim() !== '') visit(text, { offset: pendingAt + start, bytes: end - start, lineNumber });
        }
        start = end + 1;
      }
      offset = pendingAt + start;
      pending = Buffer.from(buffer.subarray(start));
      pendingAt = offset;
    }
  } finally {
    await handle.close();
  }
  return { offset, lineNumber };
}

/** How far a growing JSON Lines file has been read, and which file it was (its inode). */
export interface JsonlPosition {
  ino: number;
  offset: number;
  lineNumber: number;
}

/** Nothing read yet. */
export const jsonlStart: JsonlPosition = { ino: 0, offset: 0, lineNumber: 0 };

/**
 * Reads the whole lines a growing file gained since `from` (see scanJsonl).
 * A file replaced or cut shorter since then (a resume rewrites a run's logs
 * without the lines past its checkpoint) is read again from its start, after
 * `restart` is called so the caller can forget what it took from the old one.
 * Returns the new position, or undefined when the file is missing.
 */
export async function followJsonl(
  file: string,
  from: JsonlPosition,
  visit: (text: string, span: JsonlSpan) => void,
  restart: () => void = () => undefined,
): Promise<JsonlPosition | undefined> {
  let stat: fs.Stats;
  try {
    stat = await fs.promises.stat(file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  let start = from;
  if (stat.ino !== from.ino || stat.size < from.offset) {
    if (from.ino !== 0) restart();
    start = jsonlStart;
  }
  return { ino: stat.ino, ...(await scanJsonl(file, visit, start)) };
}

/** The line at `span`, parsed. */
export async function readJsonlSpan<T>(file: string, span: JsonlSpan): Promise<T> {
  const handle = await fs.promises.open(file, 'r');
  try {
    const buffer = Buffer.alloc(span.bytes);
    const { bytesRead } = await handle.read(buffer, 0, span.bytes, span.offset);
    if (bytesRead !== span.bytes) throw new Error(`${file}:${span.lineNumber}: the file is shorter than when it was read (rewritten since?).`);
    return parseJsonlLine<T>(buffer.toString('utf8'), file, span.lineNumber);
  } finally {
    await handle.close();
  }
}

export class JsonlWriter {
  private readonly fd: number;

  constructor(readonly file: string) {
    try {
      this.fd = fs.openSync(file, 'a');
    } catch (error) {
      throw asWriteError(error, file);
    }
  }

  /** Writes one object as one line, in a single write call. */
  append(row: unknown): void {
    try {
      simulatedDiskFull(this.file);
      fs.writeSync(this.fd, JSON.stringify(row) + '\n');
    } catch (error) {
      throw asWriteError(error, this.file);
    }
  }

  close(): void {
    fs.closeSync(this.fd);
  }
}

/** Writes a file whole or not at all: a temp file in the same folder, fsynced, then renamed over. */
export function writeFileAtomic(file: string, contents: string | Uint8Array): void {
  const temp = `${file}.tmp-${process.pid}`;
  try {
    simulatedDiskFull(file);
    const fd = fs.openSync(temp, 'w');
    try {
      fs.writeFileSync(fd, contents);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(temp, file);
  } catch (error) {
    try {
      fs.rmSync(temp, { force: true });
    } catch {
      // The folder refuses writes; the temp file was never made.
    }
    throw asWriteError(error, file);
  }
}
