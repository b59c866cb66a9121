/**
 * Random access to image members inside tar shards: each sample's image is a
 * (shard, byte offset, length) found by the indexing pass, read back with one
 * positional read. Open file handles are pooled and bounded — a WebDataset
 * can have thousands of shards and a process only so many descriptors.
 */
import * as fs from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import type { ImageStore } from './indexed.ts';

/** Shards held open at once (least recently used closed first). */
export const MAX_OPEN_SHARDS = 8;

interface PooledHandle {
  handle: Promise<FileHandle>;
  /** Reads in flight; a handle is only closed when idle. */
  users: number;
}

export class TarStore implements ImageStore {
  private readonly shardOf: number[] = [];
  private readonly offsetOf: number[] = [];
  private readonly lengthOf: number[] = [];
  private readonly whereOf: string[] = [];
  private readonly open = new Map<number, PooledHandle>();

  constructor(
    private readonly shards: readonly string[],
    private readonly maxOpen = MAX_OPEN_SHARDS,
  ) {}

  /** Registers the image of the next dataset index. */
  add(shard: number, offset: number, length: number, where: string): void {
    this.shardOf.push(shard);
    this.offsetOf.push(offset);
    this.lengthOf.push(length);
    this.whereOf.push(where);
  }

  async read(index: number): Promise<Uint8Array> {
    const shard = this.shardOf[index];
    const pooled = this.acquire(shard);
    try {
      const handle = await pooled.handle;
      const length = this.lengthOf[index];
      const buffer = Buffer.allocUnsafe(length);
      const { bytesRead } = await handle.read(buffer, 0, length, this.offsetOf[index]);
      if (bytesRead !== length) throw new Error(`the shard ends early (read ${bytesRead} of ${length} bytes)`);
      return buffer;
    } finally {
      pooled.users--;
      this.trim();
    }
  }

  describe(index: number): string {
    return `${this.whereOf[index]} (in ${this.shards[this.shardOf[index]]})`;
  }

  async close(): Promise<void> {
    const handles = [...this.open.values()];
    this.open.clear();
    await Promise.all(handles.map(async (p) => (await p.handle.catch(() => undefined))?.close()));
  }

  private acquire(shard: number): PooledHandle {
    let pooled = this.open.get(shard);
    if (pooled) {
      this.open.delete(shard); // re-inserted below as most recent
    } else {
      const created: PooledHandle = { handle: fs.open(this.shards[shard], 'r'), users: 0 };
      // A failed open must not stay pooled, or every later read fails the same way.
      created.handle.catch(() => {
        if (this.open.get(shard) === created) this.open.delete(shard);
      });
      pooled = created;
    }
    this.open.set(shard, pooled);
    pooled.users++;
    return pooled;
  }

  /** Closes idle handles, least recently used first, down to the bound. */
  private trim(): void {
    for (const [shard, pooled] of this.open) {
      if (this.open.size <= this.maxOpen) return;
      if (pooled.users > 0) continue;
      this.open.delete(shard);
      void pooled.handle.then((h) => h.close()).catch(() => undefined);
    }
  }
}
