/**
 * The learner's compute: its forward passes (scoring, eval) and its gradient
 * steps, in this thread or across replica threads (replicas.ts). The trainer
 * drives it, and bench:speed times exactly this code against PyTorch.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { BackendName } from '../backend';
import { forwardFlops, type DualEncoder } from '../model/dualEncoder';
import { contrastiveLoss, distillationLoss, featureDistillationLoss, type LossKind } from '../model/losses';
import type { AdamW } from './optimizer';
import { candidateMatrices, candidateShard, embedShard, type Candidates, type CandidateScores, type PairMatrices, type Shard } from './replicaProtocol';
import { localEmbedder, ReplicaPool, scoringPlace, threadsFor, type Embedder } from './replicas';

/**
 * A loss's [pairLoss, logits] read back to the host, then freed. Async: the
 * webgpu backend cannot read a tensor synchronously in Node.
 */
async function readPairMatrices(size: number, [pairLoss, logits]: tf.Tensor[]): Promise<PairMatrices> {
  try {
    const [pairValues, logitValues] = await Promise.all([pairLoss.data(), logits.data()]);
    return { pairLoss: { size, values: pairValues as Float32Array }, logits: { size, values: logitValues as Float32Array } };
  } finally {
    tf.dispose([pairLoss, logits]);
  }
}

/** What the learner also fits on a batch: a teacher's [rows, rows] pair logits, row-major, with the term's weight, and its embeddings. */
export interface Teacher {
  /** For `weight` above 0. */
  logits?: Float32Array;
  weight: number;
  /** The teacher's own unit embeddings of the rows ([rows, dim] each), fitted with this weight (`distillFeatures`). */
  features?: { image: Float32Array; text: Float32Array; weight: number };
}

export interface LearnerGradients {
  /** The batch's contrastive loss (mean per example). */
  loss: number;
  /** With a teacher: its distillation term, unweighted (the gradients include weight × it). */
  distillLoss?: number;
  /** With teacher features: their term, unweighted. */
  featureLoss?: number;
  /** Gradient of every trainable variable, keyed by its tfjs name. */
  grads: tf.NamedTensorMap;
}

/** The scalars `objective` keeps for the caller to read: the contrastive loss and each teacher term it added. */
type ObjectiveParts = Partial<Record<'loss' | 'distillLoss' | 'featureLoss', tf.Scalar>>;

export class Learner {
  readonly embedder: Embedder;

  private constructor(
    readonly model: DualEncoder,
    readonly optimizer: AdamW,
    readonly loss: LossKind,
    /** Replica threads; none when the learner runs in this thread alone. */
    private readonly replicas: ReplicaPool | undefined,
    /** A thread for `scoreAhead`, on a core training leaves free. */
    private readonly scorer: ReplicaPool | undefined,
  ) {
    this.embedder = replicas ?? localEmbedder(model);
  }

  /**
   * A learner with `threads` threads (0 = auto, sized by the training work of
   * a step of `batchSize` pairs) where the backend is a CPU one; `onStart`
   * hears of the threads it starts. With `scoreAhead`, `scoreAhead` gets a
   * thread of its own where training leaves a core free (`scoringPlace`).
   */
  static async create(
    model: DualEncoder,
    optimizer: AdamW,
    loss: LossKind,
    backend: BackendName,
    threads: number,
    batchSize: number,
    onStart?: (message: string) => void,
    scoreAhead = false,
  ): Promise<{ learner: Learner; threads: number; reason: string; scoring?: string }> {
    const perExample = forwardFlops(model.config);
    const chosen = threadsFor(threads, backend, 3 * (perExample.image + perExample.text) * batchSize);
    let replicas: ReplicaPool | undefined;
    let scorer: ReplicaPool | undefined;
    try {
      if (chosen.threads > 1) {
        onStart?.(`Starting ${chosen.threads} training threads (${chosen.reason})…`);
        replicas = await ReplicaPool.start(model, chosen.threads, backend);
      }
      const place = scoreAhead ? scoringPlace(backend, chosen.threads) : undefined;
      if (place?.thread) {
        onStart?.(`Starting a scoring thread: ${place.reason}…`);
        scorer = await ReplicaPool.start(model, 1, backend, 'scoring');
      }
      return { learner: new Learner(model, optimizer, loss, replicas, scorer), ...chosen, ...(place ? { scoring: place.reason } : {}) };
    } catch (error) {
      await Promise.all([replicas?.close(), scorer?.close()]);
      throw error;
    }
  }

  /**
   * The learner's and the reference's pair-loss and logit matrices over a
   * candidate set (`Candidates`), with the weights as they are now, in this
   * thread (its towers across the training threads where there are several).
   * The weights are read before this returns its promise: a step that trains
   * meanwhile does not change what it scores with.
   */
  async score(candidates: Candidates): Promise<CandidateScores> {
    const { model } = this;
    const dim = model.config.embedDim;
    const { count } = candidates;
    const logitScale = tf.tidy(() => tf.stack([model.temperature, model.bias]));
    try {
      const embedded = candidates.learner ? await this.embedder.embed(candidateShard(candidates.learner, count)) : undefined;
      const tensors = tf.tidy(() => {
        const [temperature, bias] = tf.unstack(logitScale);
        const learner = embedded && candidates.learner ? { image: tf.tensor2d(embedded.image!, [count, dim]), text: tf.tensor2d(embedded.text!, [candidates.learner.texts, dim]), temperature, bias } : undefined;
        return candidateMatrices(candidates, learner);
      });
      const [learner, reference] = await Promise.all([tensors.learner && readPairMatrices(count, tensors.learner), tensors.reference && readPairMatrices(count, tensors.reference)]);
      return { learner, reference };
    } finally {
      logitScale.dispose();
    }
  }

  /**
   * Starts `score` with the weights as they are now and returns at once: on
   * the scoring thread where there is one (patchify, both towers and both
   * losses; the caller trains meanwhile), else here.
   */
  scoreAhead(candidates: Candidates): Promise<CandidateScores> {
    let scored: Promise<CandidateScores>;
    if (this.scorer) {
      this.scorer.publish();
      // The pixels go by shared memory: posting them would copy a few MB on this thread, every pool.
      const pixels = candidates.learner && new Float32Array(new SharedArrayBuffer(candidates.learner.pixels.byteLength));
      if (pixels) pixels.set(candidates.learner!.pixels);
      const posted = pixels ? { ...candidates, learner: { ...candidates.learner!, pixels } } : candidates;
      scored = this.scorer.score(posted);
    } else {
      scored = this.score(candidates);
    }
    // Awaited a step later: a failure meanwhile must not count as unhandled.
    scored.catch(() => undefined);
    return scored;
  }

  /**
   * The batch's loss and gradients; each caption aligned with its image
   * (shard.texts = image rows). With a teacher, the loss trained on adds
   * weight × the distillation term towards its [rows, rows] pair logits.
   */
  gradients(shard: Shard, teacher?: Teacher): Promise<LearnerGradients> {
    return this.replicas ? this.parallelGradients(this.replicas, shard, teacher) : this.localGradients(shard, teacher);
  }

  /** The contrastive loss of a batch's embeddings, plus the teacher's terms; `parts` gets each value. */
  private objective(image: tf.Tensor2D, text: tf.Tensor2D, temperature: tf.Tensor, bias: tf.Tensor, teacher: Teacher | undefined, parts: ObjectiveParts): tf.Scalar {
    const pair = contrastiveLoss(this.loss, image, text, temperature, bias);
    parts.loss = tf.keep(pair.loss.clone());
    let total: tf.Scalar = pair.loss;
    if (!teacher) return total;
    const rows = image.shape[0];
    if (teacher.logits && teacher.weight > 0) {
      const distill = distillationLoss(this.loss, pair.logits, tf.tensor2d(teacher.logits, [rows, rows]));
      parts.distillLoss = tf.keep(distill.clone());
      total = tf.add(total, tf.mul(distill, teacher.weight));
    }
    if (teacher.features && teacher.features.weight > 0) {
      const dim = image.shape[1];
      const feature = featureDistillationLoss(image, text, tf.tensor2d(teacher.features.image, [rows, dim]), tf.tensor2d(teacher.features.text, [rows, dim]));
      parts.featureLoss = tf.keep(feature.clone());
      total = tf.add(total, tf.mul(feature, teacher.features.weight));
    }
    return total;
  }

  /** The values of the parts `objective` kept, freed. */
  private static async partsOf(parts: ObjectiveParts): Promise<{ loss: number; distillLoss?: number; featureLoss?: number }> {
    const out: { loss: number; distillLoss?: number; featureLoss?: number } = { loss: NaN };
    for (const key of ['loss', 'distillLoss', 'featureLoss'] as const) {
      const part = parts[key];
      if (part) out[key] = (await part.data())[0];
    }
    tf.dispose(Object.values(parts));
    return out;
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
  private async localGradients(shard: Shard, teacher: Teacher | undefined): Promise<LearnerGradients> {
    const { model } = this;
    const parts: ObjectiveParts = {};
    const { value, grads } = tf.variableGrads(() => {
      const { image, text } = embedShard(model, shard);
      return this.objective(image!, text!, model.temperature, model.bias, teacher, parts);
    });
    value.dispose();
    return { ...(await Learner.partsOf(parts)), grads };
  }

  /**
   * Across the replica threads: they embed their rows, this thread turns the
   * whole batch's embeddings into the loss and d loss / d embedding (and the
   * temperature's and bias's gradients), they backpropagate it through their
   * towers (replicas.ts).
   */
  private async parallelGradients(replicas: ReplicaPool, shard: Shard, teacher: Teacher | undefined): Promise<LearnerGradients> {
    const { model } = this;
    const rows = shard.texts;
    const dim = model.config.embedDim;
    const logTemperature = model.params.get('logit/log_temperature');
    const bias = model.params.get('logit/bias');
    // The softmax loss has no bias term; asking tfjs for its gradient would be an error.
    const withBias = this.loss === 'sigmoid';
    const kept: ObjectiveParts = {};
    const logitGrads = new Map<string, number>();
    // Replica threads run only on the CPU backends, where reads are synchronous.
    const flat = await replicas.gradients(shard, (image, text) =>
      tf.tidy(() => {
        const lossOf = (x: tf.Tensor, y: tf.Tensor, t: tf.Tensor, b?: tf.Tensor) => this.objective(x as tf.Tensor2D, y as tf.Tensor2D, tf.exp(t), b ?? bias, teacher, kept);
        const inputs = [tf.tensor2d(image, [rows, dim]), tf.tensor2d(text, [rows, dim]), logTemperature, ...(withBias ? [bias] : [])];
        const { value, grads } = tf.valueAndGrads(lossOf)(inputs);
        value.dispose();
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
    return { ...(await Learner.partsOf(kept)), grads };
  }

  async close(): Promise<void> {
    await Promise.all([this.replicas?.close(), this.scorer?.close()]);
  }
}
