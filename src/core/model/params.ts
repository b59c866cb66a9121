/**
 * Named trainable weights. Initialised from the run's seeded Rng (not tfjs's
 * own random ops), so a run is reproducible on every backend, and saved and
 * restored as plain Float32Arrays.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Rng } from '../random';

export interface SavedParam {
  name: string;
  shape: number[];
  values: Float32Array;
}

export type Init =
  | { kind: 'zeros' }
  | { kind: 'ones' }
  | { kind: 'constant'; value: number }
  /** Normal with the given standard deviation. */
  | { kind: 'normal'; std: number };

/** tfjs variable names are process-wide; each store gets its own prefix so two models (learner, reference) can coexist. */
let storesCreated = 0;

export class ParamStore {
  readonly variables = new Map<string, tf.Variable>();
  private readonly scope = `model${storesCreated++}`;

  constructor(private readonly rng: Rng) {}

  create(name: string, shape: number[], init: Init): tf.Variable {
    if (this.variables.has(name)) throw new Error(`parameter ${name} created twice`);
    const size = shape.reduce((a, b) => a * b, 1);
    const values = new Float32Array(size);
    switch (init.kind) {
      case 'zeros':
        break;
      case 'ones':
        values.fill(1);
        break;
      case 'constant':
        values.fill(init.value);
        break;
      case 'normal':
        for (let i = 0; i < size; i++) values[i] = this.rng.normal() * init.std;
        break;
      default: {
        const unknown: never = init;
        throw new Error(`unknown init ${JSON.stringify(unknown)}`);
      }
    }
    const variable = tf.variable(tf.tensor(values, shape), true, `${this.scope}/${name}`);
    this.variables.set(name, variable);
    return variable;
  }

  get(name: string): tf.Variable {
    const variable = this.variables.get(name);
    if (!variable) throw new Error(`no parameter named ${name}`);
    return variable;
  }

  count(): number {
    let total = 0;
    for (const variable of this.variables.values()) total += variable.size;
    return total;
  }

  async save(): Promise<SavedParam[]> {
    const saved: SavedParam[] = [];
    for (const [name, variable] of this.variables) {
      saved.push({ name, shape: [...variable.shape], values: (await variable.data()) as Float32Array });
    }
    return saved;
  }

  load(saved: readonly SavedParam[]): void {
    const byName = new Map(saved.map((param) => [param.name, param]));
    for (const [name, variable] of this.variables) {
      const param = byName.get(name);
      if (!param) throw new Error(`checkpoint has no parameter ${name}`);
      if (param.shape.join('x') !== variable.shape.join('x')) {
        throw new Error(`checkpoint parameter ${name} has shape ${param.shape.join('×')}, the model needs ${variable.shape.join('×')}`);
      }
      tf.tidy(() => variable.assign(tf.tensor(param.values, param.shape)));
    }
  }

  dispose(): void {
    for (const variable of this.variables.values()) variable.dispose();
    this.variables.clear();
  }
}
