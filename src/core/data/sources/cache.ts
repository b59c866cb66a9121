/**
 * A byte-budgeted LRU of decoded images (8-bit RGB at the model resolution),
 * keyed by dataset index.
 *
 * Recency is a doubly linked list through the entries, so a hit and an
 * eviction are O(1). (Evicting "the first key of a Map" looks O(1) but is
 * not in V8: deleted slots at the front are skipped one by one until the
 * table is rehashed, which made a full cache ~10× slower.)
 */
interface Entry {
  index: number;
  pixels: Uint8Array;
  /** Towards the least recently used end. */
  older: Entry | undefined;
  /** Towards the most recently used end. */
  newer: Entry | undefined;
}

export class ImageCache {
  private readonly map = new Map<number, Entry>();
  private oldest: Entry | undefined;
  private newest: Entry | undefined;
  private bytes = 0;

  constructor(private readonly budgetBytes: number) {}

  get(index: number): Uint8Array | undefined {
    const entry = this.map.get(index);
    if (entry === undefined) return undefined;
    this.unlink(entry);
    this.append(entry);
    return entry.pixels;
  }

  set(index: number, pixels: Uint8Array): void {
    if (pixels.byteLength > this.budgetBytes) return;
    const old = this.map.get(index);
    if (old !== undefined) this.remove(old);
    const entry: Entry = { index, pixels, older: undefined, newer: undefined };
    this.map.set(index, entry);
    this.append(entry);
    this.bytes += pixels.byteLength;
    while (this.bytes > this.budgetBytes && this.oldest !== undefined) this.remove(this.oldest);
  }

  /** True if an image of this many bytes fits without evicting anything. */
  hasRoomFor(bytes: number): boolean {
    return this.bytes + bytes <= this.budgetBytes;
  }

  get size(): number {
    return this.map.size;
  }

  get usedBytes(): number {
    return this.bytes;
  }

  /** Entries from least to most recently used. */
  *entries(): IterableIterator<[number, Uint8Array]> {
    for (let e = this.oldest; e !== undefined; e = e.newer) yield [e.index, e.pixels];
  }

  clear(): void {
    this.map.clear();
    this.oldest = undefined;
    this.newest = undefined;
    this.bytes = 0;
  }

  private remove(entry: Entry): void {
    this.unlink(entry);
    this.map.delete(entry.index);
    this.bytes -= entry.pixels.byteLength;
  }

  private append(entry: Entry): void {
    entry.older = this.newest;
    entry.newer = undefined;
    if (this.newest) this.newest.newer = entry;
    else this.oldest = entry;
    this.newest = entry;
  }

  private unlink(entry: Entry): void {
    if (entry.older) entry.older.newer = entry.newer;
    else this.oldest = entry.newer;
    if (entry.newer) entry.newer.older = entry.older;
    else this.newest = entry.older;
    entry.older = undefined;
    entry.newer = undefined;
  }
}
