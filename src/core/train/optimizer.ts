/**
 * AdamW (Loshchilov & Hutter 2019, "Decoupled Weight Decay Regularization",
 * Algorithm 2) with global-norm gradient clipping, and the learning-rate
 * schedule: linear warm-up, then cosine decay to `minLrRatio` of the peak.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { SavedParam } from '../model/params';

export interface OptimizerConfig {
  learningRate: number;
  beta1: number;
  beta2: number;
  epsilon: number;
  weightDecay: number;
  /** Gradients whose global L2 norm exceeds this are scaled down to it (0 = off). */
  clipNorm: number;
  warmupSteps: number;
  totalSteps: number;
  /** The learning rate at the end of the cosine, as a share of the peak. */
  minLrRatio: number;
}

export function learningRateAt(step: number, config: OptimizerConfig): number {
  const { learningRate, warmupSteps, totalSteps, minLrRatio } = config;
  if (step < warmupSteps) return (learningRate * (step + 1)) / warmupSteps;
  const progress = Math.min(1, (step - warmupSteps) / Math.max(1, totalSteps - warmupSteps));
  const cosine = 0.5 * (1 + Math.cos(Math.PI * progress));
  return learningRate * (minLrRatio + (1 - minLrRatio) * cosine);
}

/** Weight decay applies to matrices only: not to biases, gains, positions' scale or the logit temperature/bias. */
function decays(variable: tf.Variable): boolean {
  return variable.rank === 2 && !variable.name.endsWith('/pos');
}

export class AdamW {
  private readonly firstMoments = new Map<string, tf.Variable>();
  private readonly secondMoments = new Map<string, tf.Variable>();
  /** Updates applied so far (for bias correction). */
  updates = 0;

  constructor(
    readonly config: OptimizerConfig,
    private readonly variables: Map<string, tf.Variable>,
  ) {
    for (const [name, variable] of variables) {
      this.firstMoments.set(name, tf.variable(tf.zerosLike(variable), false, `${variable.name}/adam_m`));
      this.secondMoments.set(name, tf.variable(tf.zerosLike(variable), false, `${variable.name}/adam_v`));
    }
  }

  /** Applies one update; returns the gradient's global norm before clipping. */
  apply(grads: tf.NamedTensorMap, step: number): number {
    const { beta1, beta2, epsilon, weightDecay, clipNorm } = this.config;
    const learningRate = learningRateAt(step, this.config);
    const norm = tf.tidy(() => {
      const squares = Object.values(grads).map((g) => tf.sum(tf.square(g)));
      return tf.sqrt(tf.addN(squares)).dataSync()[0];
    });
    const clipScale = clipNorm > 0 && norm > clipNorm ? clipNorm / norm : 1;
    this.updates += 1;
    const correction1 = 1 - beta1 ** this.updates;
    const correction2 = 1 - beta2 ** this.updates;
    tf.tidy(() => {
      for (const [name, variable] of this.variables) {
        const raw = grads[variable.name]; // variableGrads keys by the scoped tfjs name
        if (!raw) continue;
        const grad = clipScale === 1 ? raw : tf.mul(raw, clipScale);
        const m = this.firstMoments.get(name)!;
        const v = this.secondMoments.get(name)!;
        m.assign(tf.add(tf.mul(m, beta1), tf.mul(grad, 1 - beta1)));
        v.assign(tf.add(tf.mul(v, beta2), tf.mul(tf.square(grad), 1 - beta2)));
        const update = tf.div(tf.div(m, correction1), tf.add(tf.sqrt(tf.div(v, correction2)), epsilon));
        let next = tf.sub(variable, tf.mul(update, learningRate));
        if (weightDecay > 0 && decays(variable)) next = tf.sub(next, tf.mul(variable, learningRate * weightDecay));
        variable.assign(next);
      }
    });
    return norm;
  }

  /** The moment slots, keyed by parameter name, with the suffix they are saved under. */
  private slots(): [string, Map<string, tf.Variable>][] {
    return [
      ['adam_m', this.firstMoments],
      ['adam_v', this.secondMoments],
    ];
  }

  async save(): Promise<{ updates: number; moments: SavedParam[] }> {
    const moments: SavedParam[] = [];
    for (const [suffix, slots] of this.slots()) {
      for (const [name, variable] of slots) {
        moments.push({ name: `${name}/${suffix}`, shape: [...variable.shape], values: (await variable.data()) as Float32Array });
      }
    }
    return { updates: this.updates, moments };
  }

  load(state: { updates: number; moments: readonly SavedParam[] }): void {
    const byName = new Map(state.moments.map((m) => [m.name, m]));
    for (const [suffix, slots] of this.slots()) {
      for (const [name, variable] of slots) {
        const saved = byName.get(`${name}/${suffix}`);
        if (!saved) throw new Error(`optimizer state has no slot ${name}/${suffix}`);
        tf.tidy(() => variable.assign(tf.tensor(saved.values, saved.shape)));
      }
    }
    this.updates = state.updates;
  }

  dispose(): void {
    for (const slots of [this.firstMoments, this.secondMoments]) {
      for (const variable of slots.values()) variable.dispose();
      slots.clear();
    }
  }
}
