/**
 * Runs `action` at most once per `intervalMs`, however often it is asked for:
 * a worker can report hundreds of steps a second, and the Runs view and the
 * status bar need redrawing a few times a second at most. The first request
 * runs at once; those that come within the interval are folded into one run
 * at its end.
 */
export class Coalescer {
  private timer: NodeJS.Timeout | undefined;
  private last = -Infinity;
  private pending = false;

  constructor(
    private readonly action: () => void,
    private readonly intervalMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  request(): void {
    if (this.timer) {
      this.pending = true;
      return;
    }
    const wait = this.last + this.intervalMs - this.now();
    if (wait <= 0) {
      this.fire();
      return;
    }
    this.pending = true;
    this.timer = setTimeout(() => this.elapsed(), wait);
  }

  /** Runs a pending request now. */
  flush(): void {
    if (!this.pending) return;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.fire();
  }

  dispose(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.pending = false;
  }

  private fire(): void {
    this.pending = false;
    this.last = this.now();
    this.timer = setTimeout(() => this.elapsed(), this.intervalMs);
    this.action();
  }

  private elapsed(): void {
    this.timer = undefined;
    if (this.pending) this.fire();
  }
}
