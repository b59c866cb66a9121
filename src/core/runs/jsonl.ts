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
