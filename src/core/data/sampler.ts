/**
 * Uniform batches: each epoch visits every row once in a seeded random
 * order. Its state (rng, epoch, position) is small and serialisable, so a
 * resumed run draws exactly the batches the uninterrupted run would have.
 */
import { Rng, type RngState } from '../random';

export interface SamplerState {
  rng: RngState;
  epoch: number;
  position: number;
}

export class EpochSampler {
  private rng: Rng;
  /** The rng state the current epoch's order was drawn from (what a checkpoint stores). */
  private epochRngState: RngState;
  private order: Int32Array;
  epoch = 0;
  position = 0;

  constructor(
    readonly size: number,
    seed: number | SamplerState,
  ) {
    if (size < 1) throw new Error('cannot sample from an empty dataset');
    const restored = typeof seed === 'number' ? undefined : seed;
    this.rng = new Rng(restored ? restored.rng : seed as number);
    this.epochRngState = this.rng.state();
    this.order = this.shuffled();
    if (restored) {
      this.epoch = restored.epoch;
      this.position = restored.position;
    }
  }

  private shuffled(): Int32Array {
    this.epochRngState = this.rng.state();
    const order = Int32Array.from({ length: this.size }, (_, i) => i);
    for (let i = order.length - 1; i > 0; i--) {
      const j = this.rng.int(i + 1);
      const swap = order[i];
      order[i] = order[j];
      order[j] = swap;
    }
    return order;
  }

  /** The next `count` rows; rolls into a fresh permutation at the end of an epoch. */
  next(count: number): number[] {
    const out: number[] = [];
    while (out.length < count) {
      if (this.position === this.size) {
        this.epoch++;
        this.position = 0;
        this.order = this.shuffled();
      }
      out.push(this.order[this.position++]);
    }
    return out;
  }

  state(): SamplerState {
    return { rng: this.epochRngState, epoch: this.epoch, position: this.position };
  }
}
