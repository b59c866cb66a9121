/**
 * Streams a text file as raw byte lines. Raw bytes, not strings: a line with
 * invalid UTF-8 must be detected and skipped (readline would silently turn it
 * into U+FFFD and the bad caption would train the model).
 */
import { createReadStream } from 'node:fs';

export interface ByteLine {
  /** 1-based line number, as an editor shows it. */
  line: number;
  /** The line without its `\n` / `\r\n` (and without a leading UTF-8 BOM). */
  bytes: Buffer;
}

export async function* readByteLines(file: string): AsyncGenerator<ByteLine> {
  let pending: Buffer[] = [];
  let line = 0;
  const emit = (bytes: Buffer): ByteLine => {
    line++;
    let end = bytes.length;
    if (end > 0 && bytes[end - 1] === 0x0d) end--;
    let start = 0;
    if (line === 1 && bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) start = 3;
    return { line, bytes: bytes.subarray(start, Math.max(start, end)) };
  };
  for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20 }) as AsyncIterable<Buffer>) {
    let from = 0;
    for (let nl = chunk.indexOf(0x0a, from); nl !== -1; nl = chunk.indexOf(0x0a, from)) {
      const piece = chunk.subarray(from, nl);
      if (pending.length > 0) {
        pending.push(piece);
        yield emit(Buffer.concat(pending));
        pending = [];
      } else {
        yield emit(piece);
      }
      from = nl + 1;
    }
    if (from < chunk.length) pending.push(chunk.subarray(from));
  }
  if (pending.length > 0) yield emit(Buffer.concat(pending));
}
