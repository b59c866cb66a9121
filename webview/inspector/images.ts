/**
 * Pair images as the host sends them (PNG data: URIs), by size. Cards ask for
 * what they show; the asks of one frame go to the host as one `images`
 * message (at most maxImagesPerRequest ids each), and nothing is asked twice.
 */
import { maxImagesPerRequest, type ImageEntry } from '../../src/protocol/webview';

export class ImageStore {
  private readonly entries = new Map<string, ImageEntry>();
  private readonly pending = new Set<string>();
  private queued = new Map<number, Set<string>>();
  private timer: ReturnType<typeof setTimeout> | undefined;

  constructor(private readonly request: (ids: string[], size: number) => void) {}

  /** The entry if it has come; otherwise asks for it (once) and returns undefined. */
  get(id: string, size: number): ImageEntry | undefined {
    const key = `${size}\0${id}`;
    const entry = this.entries.get(key);
    if (entry || this.pending.has(key)) return entry;
    this.pending.add(key);
    let ids = this.queued.get(size);
    if (!ids) this.queued.set(size, (ids = new Set()));
    ids.add(id);
    this.timer ??= setTimeout(() => this.flush(), 0);
    return undefined;
  }

  /** Stores what the host sent; returns the ids that arrived. */
  receive(size: number, images: readonly ImageEntry[]): Set<string> {
    const arrived = new Set<string>();
    for (const image of images) {
      const key = `${size}\0${image.id}`;
      this.entries.set(key, image);
      this.pending.delete(key);
      arrived.add(image.id);
    }
    return arrived;
  }

  private flush(): void {
    this.timer = undefined;
    const queued = this.queued;
    this.queued = new Map();
    for (const [size, ids] of queued) {
      const list = [...ids];
      for (let start = 0; start < list.length; start += maxImagesPerRequest) this.request(list.slice(start, start + maxImagesPerRequest), size);
    }
  }
}
