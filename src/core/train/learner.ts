/**
 * The learner's compute: its forward passes (scoring, eval) and its gradient
 * steps, in this thread or across replica threads (replicas.ts). The trainer
 * drives it, and bench:speed times exactly this code against PyTorch.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { BackendName } from '../backend';
import { forwardFlops, type DualEncoder } from '../model/dualEncoder';
import { contrastiveLoss, type LossKind } from '../model/losses';
import type { SquareMatrix } from '../selection/scores';
import type { AdamW } from './optimizer';
import { expandRows } from './eval';
import { embedShard, type Shard } from './replicaProtocol';
import { localEmbedder, ReplicaPool, threadsFor, type Embedder } from './replicas';

/**
 * A loss's [pairLoss, logits] read back to the host, then freed. Async: the
 * webgpu backend cannot read a tensor synchronously in Node.
 */
export async function readPairMatrices(size: number, [pairLoss, logits]: tf.Tensor[]): Promise<PairMatrices> {
  try {
    const [pairValues, logitValues] = await Promise.all([pairLoss.data(), logits.data()]);
    return { pairLoss: { size, values: pairValues as Float32Array }, logits: { size, values: logitValues as Float32Array } };
  } finally {
    tf.dispose([pairLoss, logits]);
  }
}

/** A candidate set's per-pair loss and logit matrices (DESIGN.md: every score is built from them). */
export interface PairMatrices {
  pairLoss: SquareMatrix;
  logits: SquareMatrix;
}

export interface LearnerGradients {
  /** The batch's loss (mean per example). */
  loss: number;
  /** Gradient of every trainable variable, keyed by its tfjs name. */
  grads: tf.NamedTensorMap;
}

export class Learner {
  readonly embedder: Embedder;

  private constructor(
    readonly model: DualEncoder,
    readonly optimizer: AdamW,
    readonly loss: LossKind,
    /** Replica threads; none when the learner runs in this thread alone. */
    private readonly replicas: ReplicaPool | undefined,
  ) {
    this.embedder = replicas ?? localEmbedder(model);
  }

  /**
   * A learner with `threads` threads (0 = auto, sized by the training work of
   * a step of `batchSize` pairs) where the backend is a CPU one; `onStart`
   * hears of the threads it starts.
   */
  static async create(model: DualEncoder, optimizer: AdamW, loss: LossKind, backend: BackendName, threads: number, batchSize: number, onStart?: (message: string) => void): Promise<{ learner: Learner; threads: number; reason: string }> {
    const perExample = forwardFlops(model.config);
    const chosen = threadsFor(threads, backend, 3 * (perExample.image + perExample.text) * batchSize);
    let replicas: ReplicaPool | undefined;
    if (chosen.threads > 1) {
      onStart?.(`Starting ${chosen.threads} training threads (${chosen.reason})…`);
      replicas = await ReplicaPool.start(model, chosen.threads, backend);
    }
    return { learner: new Learner(model, optimizer, loss, replicas), ...chosen };
  }

  /**
   * The learner's pair-loss and logit matrices over a set of candidates.
   * Without `textOf` each caption is aligned with its image; with it the
   * shard holds each distinct caption once and image row r's caption is
   * textOf[r] (candidates whose captions repeat pay for one caption forward each).
   */
  async score(shard: Shard, textOf?: Int32Array): Promise<PairMatrices> {
    const { model } = this;
    const size = textOf?.length ?? shard.texts;
    const dim = model.config.embedDim;
    const embedded = await this.embedder.embed(shard);
    const text = textOf ? expandRows(embedded.text!, textOf, dim) : embedded.text!;
    return readPairMatrices(
      size,
      tf.tidy(() => {
        const out = contrastiveLoss(this.loss, tf.tensor2d(embedded.image!, [size, dim]), tf.tensor2d(text, [size, dim]), model.temperature, model.bias);
        return [out.pairLoss, out.logits];
      }),
    );
  }

  /** The batch's loss and gradients; each caption aligned with its image (shard.texts = image rows). */
  gradients(shard: Shard): Promise<LearnerGradients> {
    return this.replicas ? this.parallelGradients(this.replicas, shard) : this.localGradients(shard);
  }

  /** Applies an optimizer step and hands the new weights to the replica threads; frees `grads`. Returns the gradient norm. */
  async apply(grads: tf.NamedTensorMap, step: number): Promise<number> {
    try {
      return await this.optimizer.apply(grads, step);
    } finally {
      tf.dispose(Object.values(grads));
      this.replicas?.publish();
    }
  }

  /** In this thread: one tape over both towers and the loss. */
  private async localGradients(shard: Shard): Promise<LearnerGradients> {
    const { model } = this;
    const { value, grads } = tf.variableGrads(() => {
      const { image, text } = embedShard(model, shard);
      return contrastiveLoss(this.loss, image!, text!, model.temperature, model.bias).loss;
    });
    const loss = (await value.data())[0];
    value.dispose();
    return { loss, grads };
  }

  /**
   * Across the replica threads: they embed their rows, this thread turns the
   * whole batch's embeddings into the loss and d loss / d embedding (and the
   * temperature's and bias's gradients), they backpropagate it through their
   * towers (replicas.ts).
   */
  private async parallelGradients(replicas: ReplicaPool, shard: Shard): Promise<LearnerGradients> {
    const { model } = this;
    const rows = shard.texts;
    const dim = model.config.embedDim;
    const logTemperature = model.params.get('logit/log_temperature');
    const bias = model.params.get('logit/bias');
    // The softmax loss has no bias term; asking tfjs for its gradient would be an error.
    const withBias = this.loss === 'sigmoid';
    let loss = NaN;
    const logitGrads = new Map<string, number>();
    // Replica threads run only on the CPU backends, where reads are synchronous.
    const flat = await replicas.gradients(shard, (image, text) =>
      tf.tidy(() => {
        const lossOf = (x: tf.Tensor, y: tf.Tensor, t: tf.Tensor, b?: tf.Tensor) => contrastiveLoss(this.loss, x as tf.Tensor2D, y as tf.Tensor2D, tf.exp(t), b ?? bias).loss;
        const inputs = [tf.tensor2d(image, [rows, dim]), tf.tensor2d(text, [rows, dim]), logTemperature, ...(withBias ? [bias] : [])];
        const { value, grads } = tf.valueAndGrads(lossOf)(inputs);
        loss = value.dataSync()[0];
        logitGrads.set(logTemperature.name, grads[2].dataSync()[0]);
        if (withBias) logitGrads.set(bias.name, grads[3].dataSync()[0]);
        return { dImage: grads[0].dataSync() as Float32Array, dText: grads[1].dataSync() as Float32Array };
      }),
    );
    const grads: tf.NamedTensorMap = {};
    let offset = 0;
    for (const variable of model.params.variables.values()) {
      const logitGrad = logitGrads.get(variable.name);
      if (logitGrad !== undefined) grads[variable.name] = tf.scalar(logitGrad);
      else if (variable !== logTemperature && variable !== bias) grads[variable.name] = tf.tensor(flat.subarray(offset, offset + variable.size), variable.shape);
      offset += variable.size;
    }
    return { loss, grads };
  }

  async close(): Promise<void> {
    await this.replicas?.close();
  }
}
