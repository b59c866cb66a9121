/**
 * The trainer: everything a run holds between steps (data, tokenizer, model,
 * optimizer, data order, counters), one step at a time. `trainRun` (and the
 * worker) drive it; a checkpoint captures all of it, so a resumed run takes
 * exactly the steps the uninterrupted one would have.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend } from '../backend';
import { openDataset } from '../data/open';
import { trainingCacheBytes } from '../data/rows';
import { EpochSampler, type SamplerState } from '../data/sampler';
import { holdOut } from '../data/subset';
import { Tokenizer, type TokenizerJson } from '../data/tokenizer';
import type { ImageTextDataset } from '../data/types';
import { DualEncoder, forwardFlops, patchify, similarityFlops } from '../model/dualEncoder';
import { Rng, type RngState } from '../random';
import { diagonal, histogram, scoreMatrix, spearman, type Histogram, type ScoreKind, type SquareMatrix } from '../selection/scores';
import { batchMateTerms, chunkSizes, pairwiseScorer, selectIndependent, selectJoint, softmaxScorer, type Selection } from '../selection/selectors';
import { readCheckpoint, writeCheckpoint, pruneCheckpoints } from '../runs/checkpoint';
import { JsonlWriter } from '../runs/jsonl';
import type { DataSummary, EvalMetrics, RunRecord, SelectionLine, TrainMetrics } from '../runs/record';
import { ConfigError, embedsBelowItsTraining, featureWeight, modelConfigFor, startingFeatures, needsReference, resolutionScale, scoredPoolSize, scoresWithLearner, usesReference, type TrainConfig } from './config';
import { loadReference, noiseSeparation, readLogitScale, referenceEmbeddings, type ReferenceEmbeddings } from './reference';
import { distinctCaptions, evaluate, prepareEvalSet, type EvalSet } from './eval';
import { embedChunkRows } from './embedShards';
import { Learner, type Teacher } from './learner';
import { pairLogits } from '../model/losses';
import type { Candidates, CandidateScores, PairMatrices, Shard } from './replicaProtocol';
import { AdamW, learningRateAt } from './optimizer';

export interface TrainHooks {
  /** Plain-language progress of the slow set-up stages (indexing data, …). */
  onStage?: (message: string) => void;
  onTrain?: (line: TrainMetrics, totalSteps: number) => void;
  onEval?: (line: EvalMetrics) => void;
  onSelection?: (line: SelectionLine) => void;
  /** Progress of a long set-up stage (e.g. embedding the pool with the reference). */
  onProgress?: (stage: string, done: number, total: number) => void;
  /** A warning the user should see (skipped rows, slow backend, skipped step). */
  onWarning?: (message: string) => void;
}

/** Everything besides tensors that a checkpoint must hold to resume exactly. */
export interface TrainerState {
  step: number;
  examplesSeen: number;
  /** Examples scored (super-batch candidates), all steps. */
  examplesScored: number;
  /** FLOPs spent training (forward + backward), learner scoring, and reference embedding + scoring. */
  flopsTrain: number;
  flopsScore: number;
  flopsReference: number;
  /** Seconds spent training and evaluating (pauses and downtime excluded). */
  activeSeconds: number;
  skippedSteps: number;
  badSteps: number;
  sampler: SamplerState;
  selectionRng: RngState;
  /** Base64 bitset of pool examples whose reference embedding has been paid for (FLOPs are counted once per example). */
  referenceSeen: string;
  optimizerUpdates: number;
  tokenizer: TokenizerJson;
  /** The cached scored pool a step draws from when `scoreEvery` > 1 (written at checkpoints only). */
  pool?: SavedPool;
  /** Scored pools so far (the passed-reference test waits for a few). */
  scoredPools?: number;
  /** Smoothed learner − reference loss on the candidates the reference finds clean (null before the first). */
  referenceGap?: number | null;
  /** Step at which the learner passed its reference (referenceGap fell below 0); null while it has not. */
  passedReferenceAt?: number | null;
}

/** A scored pool in a checkpoint: candidates, which were trained on, and the matrices (base64 float32). */
interface SavedPool {
  candidates: number[];
  used: string;
  left: number;
  scoredAt: number;
  learner?: [string, string];
  reference?: [string, string];
}

/** A pool drawn, loaded and handed to the learner to score (`startPool`); `finishPool` takes its scores. */
interface PendingPool {
  candidates: number[];
  pixels: Float32Array;
  /** The learner's and the reference's matrices, under way. */
  scored: Promise<CandidateScores>;
  /** Distinct captions the learner's pass embeds (0 where the method scores without the learner). */
  texts: number;
  /** The step (0-based) whose weights score it. */
  scoredAt: number;
}

/** A super-batch (or, with `scoreEvery` > 1, a larger pool) scored once and drawn from for `left` more steps. */
interface ScoredPool {
  candidates: number[];
  pixels: Float32Array;
  learner?: PairMatrices;
  reference?: PairMatrices;
  scores: SquareMatrix;
  /** 1 = already trained on. */
  used: Uint8Array;
  left: number;
  /** The step (0-based) whose weights scored it. */
  scoredAt: number;
}

/** Scored pools to wait for before the passed-reference test may fire, and its smoothing. */
const referenceGapWarmup = 20;
const referenceGapDecay = 0.9;

function summarise(dataset: ImageTextDataset): DataSummary {
  return { source: dataset.source, format: dataset.format, size: dataset.size, skips: dataset.skips };
}

function describeSkips(dataset: ImageTextDataset): string | undefined {
  const { skips } = dataset;
  const skipped = skips.rowsSeen - skips.rowsUsed;
  if (skipped === 0) return undefined;
  const reasons = Object.entries(skips.counts)
    .map(([reason, count]) => `${count} ${reason}`)
    .join(', ');
  const first = skips.first.map((row) => `  ${row.where}: ${row.reason}: ${row.detail}`).join('\n');
  return `${dataset.source}: skipped ${skipped} of ${skips.rowsSeen} rows (${reasons}). First:\n${first}`;
}

export class Trainer {
  private state: TrainerState;
  private readonly startedAt: number;
  private readonly selectionRng: Rng;
  private readonly referenceSeen: Uint8Array;
  private readonly selections: JsonlWriter;
  private pool: ScoredPool | undefined;
  /** With `scoreAhead`, the next step's pool, started with this step's weights. */
  private ahead: PendingPool | undefined;

  private constructor(
    readonly config: TrainConfig,
    readonly record: RunRecord,
    private readonly hooks: TrainHooks,
    private readonly train: ImageTextDataset,
    private readonly evalSet: EvalSet,
    private readonly datasets: ImageTextDataset[],
    readonly tokenizer: Tokenizer,
    readonly model: DualEncoder,
    private readonly optimizer: AdamW,
    private readonly sampler: EpochSampler,
    private readonly reference: ReferenceEmbeddings | undefined,
    /** Forward passes and gradient steps, in this thread or across replica threads. */
    private readonly learner: Learner,
    state: TrainerState,
  ) {
    this.state = state;
    this.startedAt = Date.parse(record.run.created);
    this.selectionRng = new Rng(state.selectionRng);
    this.referenceSeen = new Uint8Array(Buffer.from(state.referenceSeen, 'base64'));
    if (this.referenceSeen.length !== Math.ceil(train.size / 8)) this.referenceSeen = new Uint8Array(Math.ceil(train.size / 8));
    this.selections = new JsonlWriter(path.join(record.dir, 'selections.jsonl'));
  }

  /**
   * Sets up a run: backend, data, tokenizer, model, optimizer, reference
   * embeddings. With `resume`, weights, optimizer, data order and selection
   * rng come from that checkpoint of `fromRunDir` (this run's own folder when
   * resuming, the parent's when branching).
   */
  static async open(config: TrainConfig, record: RunRecord, hooks: TrainHooks = {}, resume?: { fromRunDir: string; step: number }): Promise<Trainer> {
    const datasets: ImageTextDataset[] = [];
    let model: DualEncoder | undefined;
    let learner: Learner | undefined;
    try {
      const backend = await selectBackend(config.backend);
      record.update({ backend: { chosen: backend.chosen, attempts: backend.attempts, warning: backend.warning } });
      if (backend.warning) hooks.onWarning?.(backend.warning);

      const open = async (spec: string, role: string): Promise<ImageTextDataset> => {
        hooks.onStage?.(`Indexing ${role} data ${spec}…`);
        const dataset = await openDataset(spec, { resolution: config.imageSize, cacheBytes: trainingCacheBytes(), onProgress: (done, total) => hooks.onProgress?.(`Indexing ${role} data`, done, total ?? 0) });
        datasets.push(dataset);
        const skips = describeSkips(dataset);
        if (skips) hooks.onWarning?.(skips);
        return dataset;
      };
      let train = await open(config.data, 'training');
      let evalData: ImageTextDataset;
      if (config.evalData) {
        evalData = await open(config.evalData, 'eval');
      } else {
        ({ train, heldOut: evalData } = holdOut(train, config.evalFraction, config.seed));
      }
      const superBatch = scoredPoolSize(config);
      if (superBatch > train.size) throw new Error(`A super-batch of ${superBatch} needs at least that many training pairs; ${train.source} has ${train.size}. Lower batchSize, filterRatio or scoreEvery.`);
      record.update({ data: { train: summarise(train), eval: summarise(evalData), evalHeldOut: !config.evalData } });

      // Every random stream forks from the seed in a fixed order.
      const rng = new Rng(config.seed);
      const evalPickRng = rng.fork();
      const modelRng = rng.fork();
      const samplerSeed = rng.fork().nextUint32();
      const selectionSeed = rng.fork().nextUint32();
      const evalSet = prepareEvalSet(evalData, config.evalSize, (n) => evalPickRng.shuffle([...Array(evalData.size).keys()]).slice(0, n));

      const checkpoint = resume ? readCheckpoint<TrainerState>(resume.fromRunDir, resume.step) : undefined;
      const tokenizer = checkpoint
        ? Tokenizer.fromJson(checkpoint.state.tokenizer)
        : Tokenizer.build(
            (function* () {
              for (let i = 0; i < train.size; i++) yield train.caption(i);
            })(),
            { maxVocab: config.maxVocab, maxLength: config.textLength },
          );
      record.writeJson('tokenizer.json', tokenizer.toJson());
      model = new DualEncoder(modelConfigFor(config, tokenizer.size), modelRng);
      const perExample = forwardFlops(model.config);
      record.update({ model: { parameters: model.params.count(), forwardFlopsPerExample: perExample.image + perExample.text, vocabSize: tokenizer.size } });

      // An unset feature weight is decided once, when the run first starts, and kept in run.json: a resumed or branched
      // run trains with the weight it started with, whatever the default becomes.
      const settleFeatures = (weight: number): void => {
        if (config.distillFeatures !== null) return;
        config.distillFeatures = weight;
        record.update({ config: { ...record.run.config, distillFeatures: weight } });
      };
      let reference: ReferenceEmbeddings | undefined;
      if (!usesReference(config)) {
        settleFeatures(0);
      } else {
        hooks.onStage?.(`Loading the reference model ${config.reference}…`);
        const referenceModel = loadReference(config.reference);
        const facts = { lowResFraction: referenceModel.lowResFraction, embedDim: referenceModel.model.config.embedDim, learnerDim: model.config.embedDim };
        const features = startingFeatures(config, facts);
        if (embedsBelowItsTraining(config, facts)) {
          // Measured (docs/results.md): a full-resolution-only reference separates swapped captions worse at half resolution (AUC 0.963 → 0.778 on the built-in pool).
          const unset = featureWeight(config);
          const used = [config.distill > 0 ? `distill ${config.distill}` : '', features > 0 ? `distillFeatures ${features}` : ''].filter(Boolean);
          const notDistilled =
            (config.distillFeatures === null && unset > 0 ? ` So this run does not learn from it as a teacher: left unset, distillFeatures is 0 here instead of ${unset}, because the targets would come from those embeddings.` : '') +
            (used.length ? ` Its distillation targets (${used.join(', ')}) come from those embeddings too.` : '');
          hooks.onWarning?.(
            `The reference ${config.reference} was trained at full resolution only; this run has it embed the pool at ${config.referenceResolution} resolution, where it tells right captions from swapped ones less well.${notDistilled} Train the reference with --low-res-fraction 0.5, or set --reference-resolution full (its pass over the pool then costs 3× more).`,
          );
        }
        if (facts.embedDim !== facts.learnerDim) {
          if (config.distillFeatures !== null && config.distillFeatures > 0) {
            throw new ConfigError(`distillFeatures ${config.distillFeatures} fits the learner's ${facts.learnerDim}-wide embeddings to the reference's, which are ${facts.embedDim} wide: train the reference with the learner's embedDim, or set distillFeatures 0.`);
          }
          if (config.distillFeatures === null && featureWeight(config) > 0) {
            hooks.onStage?.(`The reference's embeddings are ${facts.embedDim} wide and the learner's ${facts.learnerDim}: this run does not fit them (distillFeatures 0).`);
          }
        }
        settleFeatures(features);
        try {
          const stage = `Embedding ${train.size} training pairs with the reference (once; cached)`;
          reference = await referenceEmbeddings(referenceModel, train, (done, total) => hooks.onProgress?.(stage, done, total), resolutionScale(config.referenceResolution));
          hooks.onStage?.(`Reference embeddings ${reference.cacheNote ?? (reference.computed ? 'computed and cached' : 'read from cache')}: ${reference.cacheFile}`);
          if (reference.captionForwards < train.size) {
            hooks.onStage?.(`The pool's captions repeat: its pass embeds ${reference.captionForwards} captions for ${train.size} pairs (each distinct text once per chunk of ${embedChunkRows}), counted so in FLOPs.`);
          }
          const separation = noiseSeparation(reference, Array.from({ length: train.size }, (_, i) => train.noisy(i)));
          if (separation) {
            hooks.onStage?.(
              `The reference tells right captions from swapped ones with AUC ${separation.auc.toFixed(3)} on this pool (${separation.noisy} of ${train.size} known swapped; 0.5 = chance, 1 = perfect).`,
            );
          }
          record.update({
            referenceRun: {
              dir: referenceModel.dir,
              id: referenceModel.runId,
              step: referenceModel.step,
              cacheFile: reference.cacheFile,
              ...(separation ? { noiseAuc: Number(separation.auc.toFixed(4)) } : {}),
              captionForwards: reference.captionForwards,
            },
          });
        } finally {
          referenceModel.model.dispose();
        }
      }

      const optimizer = new AdamW(
        {
          learningRate: config.learningRate,
          beta1: 0.9,
          beta2: 0.98,
          epsilon: 1e-8,
          weightDecay: config.weightDecay,
          clipNorm: 1,
          warmupSteps: config.warmupSteps,
          totalSteps: config.steps,
          minLrRatio: 0.05,
        },
        model.params.variables,
      );
      let state: TrainerState;
      let sampler: EpochSampler;
      if (checkpoint) {
        model.params.load(checkpoint.params);
        optimizer.load({ updates: checkpoint.state.optimizerUpdates, moments: checkpoint.optimizer });
        sampler = new EpochSampler(train.size, checkpoint.state.sampler);
        state = { ...checkpoint.state };
      } else {
        sampler = new EpochSampler(train.size, samplerSeed);
        state = {
          step: 0,
          examplesSeen: 0,
          examplesScored: 0,
          flopsTrain: 0,
          flopsScore: 0,
          flopsReference: 0,
          activeSeconds: 0,
          skippedSteps: 0,
          badSteps: 0,
          sampler: sampler.state(),
          selectionRng: new Rng(selectionSeed).state(),
          referenceSeen: '',
          optimizerUpdates: 0,
          tokenizer: tokenizer.toJson(),
        };
      }
      const scoreAhead = config.scoreAhead === 'on' && scoresWithLearner(config);
      const created = await Learner.create(model, optimizer, config.loss, backend.chosen, config.threads, config.batchSize, hooks.onStage, scoreAhead);
      learner = created.learner;
      const { threads, reason, scoring } = created;
      record.update({
        backend: { chosen: backend.chosen, attempts: backend.attempts, warning: backend.warning, ...(backend.matMul ? { matMul: backend.matMul } : {}), threads, threadsReason: reason, ...(scoring ? { scoring } : {}) },
      });
      return new Trainer(config, record, hooks, train, evalSet, datasets, tokenizer, model, optimizer, sampler, reference, learner, state);
    } catch (error) {
      await learner?.close();
      model?.dispose();
      await Promise.all(datasets.map((d) => d.close()));
      throw error;
    }
  }

  get step(): number {
    return this.state.step;
  }

  get done(): boolean {
    return this.state.step >= this.config.steps;
  }

  get counters(): Readonly<TrainerState> {
    return this.state;
  }

  get flops(): number {
    return this.state.flopsTrain + this.state.flopsScore + this.state.flopsReference;
  }

  private wallSeconds(): number {
    return (Date.now() - this.startedAt) / 1000;
  }

  /**
   * Draws a pool of candidates, loads them, and starts scoring them with the
   * weights of step `step` (`Learner.scoreAhead`: the learner's pass and both
   * loss matrices); `finishPool` takes the scores.
   */
  private async startPool(step: number): Promise<PendingPool> {
    const { config, train } = this;
    const candidates = this.sampler.next(scoredPoolSize(config));
    const pixels = await train.loadImages(candidates);
    let learner: Candidates['learner'];
    if (scoresWithLearner(config)) {
      // Each distinct caption once: candidates that share a text share its embedding.
      const { texts, textOf } = distinctCaptions(candidates.map((i) => train.caption(i)));
      learner = { pixels, imageSize: config.imageSize, patchSize: config.patchSize, scale: resolutionScale(config.scoreResolution), ids: this.tokenizer.encodeBatch(texts), texts: texts.length, textOf };
    }
    const reference = this.reference && needsReference(config.method) ? this.referenceRows(this.reference, candidates) : undefined;
    const scored = this.learner.scoreAhead({ count: candidates.length, loss: config.loss, learner, reference });
    return { candidates, pixels, scored, texts: learner?.texts ?? 0, scoredAt: step };
  }

  /** The learner's and the reference's per-pair loss (and logit) matrices over a started pool, and the scores drawn from them. */
  private async finishPool(pending: PendingPool, step: number): Promise<ScoredPool> {
    const { config, model } = this;
    const { candidates } = pending;
    const size = candidates.length;
    const { learner, reference } = await pending.scored;
    if (learner) {
      const perExample = forwardFlops(model.config, resolutionScale(config.scoreResolution));
      this.state.flopsScore += perExample.image * size + perExample.text * pending.texts + similarityFlops(size, size, model.config.embedDim);
    }
    if (reference && this.reference) this.countReferenceFlops(this.reference, candidates);
    this.state.examplesScored += size;
    this.state.scoredPools = (this.state.scoredPools ?? 0) + 1;
    this.updateReferenceGap(step, learner, reference);
    return { candidates, pixels: pending.pixels, learner, reference, scores: this.scoresOf(learner, reference), used: new Uint8Array(size), left: Math.max(1, config.scoreEvery), scoredAt: pending.scoredAt };
  }

  /** The reference's cached embeddings of the candidates, row for row, with its logit scale. */
  private referenceRows(ref: ReferenceEmbeddings, candidates: number[]): NonNullable<Candidates['reference']> {
    const gather = (all: Float32Array): Float32Array => {
      const out = new Float32Array(candidates.length * ref.dim);
      candidates.forEach((row, n) => out.set(all.subarray(row * ref.dim, (row + 1) * ref.dim), n * ref.dim));
      return out;
    };
    return { image: gather(ref.image), text: gather(ref.text), temperature: ref.temperature, bias: ref.bias };
  }

  /**
   * What the learner fits on a batch besides its data: for `distill`, the
   * reference's pair logits over its rows, from the cached embeddings, as its
   * loss's logits are made (the sigmoid's with the bias), counted with the
   * reference's FLOPs; for `distillFeatures`, those embeddings themselves.
   */
  private async teacherFor(ref: ReferenceEmbeddings, rows: number[]): Promise<Teacher> {
    const { image, text, temperature, bias } = this.referenceRows(ref, rows);
    const size = rows.length;
    const weight = this.config.distill;
    const featuresWeight = featureWeight(this.config);
    this.countReferenceFlops(ref, rows, weight > 0);
    const features = featuresWeight > 0 ? { image, text, weight: featuresWeight } : undefined;
    if (weight === 0) return { weight, features };
    const logits = tf.tidy(() =>
      pairLogits(tf.tensor2d(image, [size, ref.dim]), tf.tensor2d(text, [size, ref.dim]), tf.scalar(temperature), this.config.loss === 'sigmoid' ? tf.scalar(bias) : undefined),
    );
    try {
      return { logits: (await logits.data()) as Float32Array, weight, features };
    } finally {
      logits.dispose();
    }
  }

  /** Each pool example's reference forward pass is paid once, the first time it is a candidate; its loss matrix every time it is needed. */
  private countReferenceFlops(ref: ReferenceEmbeddings, candidates: readonly number[], withMatrix = true): void {
    let firstSeen = 0;
    for (const row of candidates) {
      const bit = 1 << (row & 7);
      if (!(this.referenceSeen[row >> 3] & bit)) {
        this.referenceSeen[row >> 3] |= bit;
        firstSeen++;
      }
    }
    this.state.flopsReference += firstSeen * ref.forwardFlopsPerExample + (withMatrix ? similarityFlops(candidates.length, candidates.length, ref.dim) : 0);
  }

  /** What the configured method scores candidates by. */
  private scoreKind(): ScoreKind {
    const { method } = this.config;
    return method === 'jest' || method === 'independent' ? 'learnability' : (method as ScoreKind);
  }

  /** The configured method's score matrix over a scored pool. */
  private scoresOf(learner: PairMatrices | undefined, reference: PairMatrices | undefined): SquareMatrix {
    return scoreMatrix(this.scoreKind(), learner?.pairLoss, reference?.pairLoss, this.config.learnerWeight);
  }

  /** Picks b of the pool's candidates not yet trained on, by the configured method. */
  private select(pool: ScoredPool): Selection {
    const { config } = this;
    const { learner, reference, scores, used } = pool;
    const kind = this.scoreKind();
    const own = diagonal(scores);
    if (config.method === 'independent') return selectIndependent(own, config.batchSize, used);
    const scorer =
      config.loss === 'sigmoid'
        ? pairwiseScorer(scores)
        : softmaxScorer(
            [
              ...(kind !== 'easy-reference' && learner ? [{ logits: learner.logits, sign: kind === 'learnability' ? config.learnerWeight : 1 }] : []),
              ...(kind !== 'hard-learner' && reference ? [{ logits: reference.logits, sign: -1 }] : []),
            ],
            own,
          );
    return selectJoint(scorer, { count: config.batchSize, chunks: config.chunks, normalization: config.jointNormalization, temperature: config.selectionTemperature, exclude: used }, this.selectionRng);
  }

  /**
   * The passed-reference test. The candidates the reference finds clean (its
   * own positive-pair loss at or below the pool's median) are cut, in draw
   * order, into batches of the training batch size; on each, the contrastive
   * loss per example — every pair, negatives included, as in training — by
   * the learner minus by the reference; averaged and smoothed over scored
   * pools. Batches of b, because both models' temperature and bias are
   * calibrated for that many negatives. Below 0 after the warm-up, the learner
   * fits data like the reference's curated set better than the reference
   * does: its scores no longer tell it much.
   */
  private updateReferenceGap(step: number, learner: PairMatrices | undefined, reference: PairMatrices | undefined): void {
    if (!learner || !reference) return;
    const size = reference.pairLoss.size;
    const r = diagonal(reference.pairLoss);
    const median = Float32Array.from(r).sort()[Math.floor(r.length / 2)];
    const clean: number[] = [];
    for (let i = 0; i < size; i++) if (r[i] <= median) clean.push(i);
    const batch = Math.min(this.config.batchSize, clean.length);
    const batches = Math.floor(clean.length / batch);
    if (batches === 0) return;
    let sum = 0;
    for (let k = 0; k < batches; k++) {
      const rows = clean.slice(k * batch, (k + 1) * batch);
      for (const i of rows) for (const j of rows) sum += learner.pairLoss.values[i * size + j] - reference.pairLoss.values[i * size + j];
    }
    const gap = sum / (batches * batch);
    const previous = this.state.referenceGap;
    this.state.referenceGap = previous === undefined || previous === null ? gap : referenceGapDecay * previous + (1 - referenceGapDecay) * gap;
    if ((this.state.passedReferenceAt ?? null) === null && (this.state.scoredPools ?? 0) >= referenceGapWarmup && this.state.referenceGap < 0) {
      this.state.passedReferenceAt = step + 1;
      this.hooks.onStage?.(`step ${step + 1}: the learner passed its reference on the candidates the reference finds clean${this.config.passedReference === 'keep' ? '' : `; from now on: ${this.config.passedReference === 'mix' ? 'every other batch uniform' : 'uniform batches, no scoring'}`}.`);
    }
  }

  /** Whether this step trains on a uniform batch although the method selects (after passing the reference). */
  private uniformNow(step: number): boolean {
    if (this.config.method === 'uniform') return true;
    const passed = this.state.passedReferenceAt ?? null;
    if (passed === null || this.config.passedReference === 'keep') return false;
    return this.config.passedReference === 'uniform' || (step - passed) % 2 === 0;
  }

  /**
   * Staleness of a cached pool's scores: the rank correlation between the
   * learnability the pool was scored with and a fresh scoring of the
   * candidates still untrained, by the current weights. A measurement: its
   * forward pass is not counted in the run's FLOPs.
   */
  private async staleness(pool: ScoredPool): Promise<number | undefined> {
    if (!pool.learner || !pool.reference) return undefined;
    const { config, train } = this;
    const rest = pool.candidates.flatMap((_, p) => (pool.used[p] ? [] : [p]));
    const imageFloats = config.imageSize * config.imageSize * 3;
    const pixels = new Float32Array(rest.length * imageFloats);
    rest.forEach((p, n) => pixels.set(pool.pixels.subarray(p * imageFloats, (p + 1) * imageFloats), n * imageFloats));
    const { texts, textOf } = distinctCaptions(rest.map((p) => train.caption(pool.candidates[p])));
    const fresh = await this.learner.score({
      count: rest.length,
      loss: config.loss,
      learner: { pixels, imageSize: config.imageSize, patchSize: config.patchSize, scale: resolutionScale(config.scoreResolution), ids: this.tokenizer.encodeBatch(texts), texts: texts.length, textOf },
    });
    const stale = diagonal(pool.scores);
    const referenceOwn = diagonal(pool.reference.pairLoss);
    const freshLearner = diagonal(fresh.learner!.pairLoss);
    return spearman(
      rest.map((p) => stale[p]),
      rest.map((p, n) => config.learnerWeight * freshLearner[n] - referenceOwn[p]),
    );
  }

  private savePool(): SavedPool | undefined {
    const pool = this.pool;
    if (!pool) return undefined;
    const b64 = (m: SquareMatrix): string => Buffer.from(m.values.buffer, m.values.byteOffset, m.values.byteLength).toString('base64');
    return {
      candidates: pool.candidates,
      used: Buffer.from(pool.used).toString('base64'),
      left: pool.left,
      scoredAt: pool.scoredAt,
      ...(pool.learner ? { learner: [b64(pool.learner.pairLoss), b64(pool.learner.logits)] as [string, string] } : {}),
      ...(pool.reference ? { reference: [b64(pool.reference.pairLoss), b64(pool.reference.logits)] as [string, string] } : {}),
    };
  }

  private async restorePool(saved: SavedPool): Promise<ScoredPool> {
    const size = saved.candidates.length;
    const matrix = (text: string): SquareMatrix => {
      const bytes = Buffer.from(text, 'base64');
      return { size, values: new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength)) };
    };
    const pair = (texts: [string, string] | undefined): PairMatrices | undefined => (texts ? { pairLoss: matrix(texts[0]), logits: matrix(texts[1]) } : undefined);
    const learner = pair(saved.learner);
    const reference = pair(saved.reference);
    return {
      candidates: saved.candidates,
      pixels: await this.train.loadImages(saved.candidates),
      learner,
      reference,
      scores: this.scoresOf(learner, reference),
      used: new Uint8Array(Buffer.from(saved.used, 'base64')),
      left: saved.left,
      scoredAt: saved.scoredAt,
    };
  }

  /** One optimizer step: choose the batch (uniform, or scored and selected), train on it, record both. */
  async trainStep(): Promise<TrainMetrics> {
    const started = performance.now();
    const { config, model, train } = this;
    const step = this.state.step;
    const imageFloats = config.imageSize * config.imageSize * 3;

    // ---- choose the batch ------------------------------------------------------
    let rows: number[];
    let pixels: Float32Array;
    let selectionLine: SelectionLine;
    let scoreSeconds = 0;
    let selectSeconds = 0;
    let stalenessRho: number | undefined;
    const uniformBatch = this.uniformNow(step);
    if (this.pool === undefined && this.state.pool) this.pool = await this.restorePool(this.state.pool);
    this.state.pool = undefined;
    if (uniformBatch) {
      if (this.config.passedReference === 'uniform') this.pool = undefined;
      rows = this.sampler.next(config.batchSize);
      pixels = await train.loadImages(rows);
      selectionLine = { step: step + 1, ids: rows.map((i) => train.id(i)) };
    } else {
      const scoreStart = performance.now();
      if (!this.pool) {
        const ahead = this.ahead;
        this.ahead = undefined;
        this.pool = await this.finishPool(ahead ?? (await this.startPool(step)), step);
      }
      const pool = this.pool;
      if (pool.left === 1 && pool.scoredAt < step && (config.scoreEvery > 1 ? Math.floor(step / config.scoreEvery) % stalenessEvery === 0 : (step + 1) % aheadStalenessEvery === 0)) {
        // The last step a pool serves draws with its oldest scores: measure how far they still rank like fresh ones.
        stalenessRho = await this.staleness(pool);
      }
      const selectStart = performance.now();
      const selection = this.select(pool);
      selectSeconds = (performance.now() - selectStart) / 1000;
      scoreSeconds = (selectStart - scoreStart) / 1000;
      rows = selection.picked.map((p) => pool.candidates[p]);
      pixels = new Float32Array(rows.length * imageFloats);
      selection.picked.forEach((p, n) => pixels.set(pool.pixels.subarray(p * imageFloats, (p + 1) * imageFloats), n * imageFloats));
      selectionLine = this.describeSelection(step + 1, pool, selection);
      for (const p of selection.picked) pool.used[p] = 1;
      pool.left--;
      if (pool.left <= 0) this.pool = undefined;
      if (config.scoreAhead === 'on' && !this.pool && step + 1 < config.steps && !this.uniformNow(step + 1)) {
        // The next pool, started now with this step's weights: on the scoring thread it is embedded while this step trains.
        const aheadStart = performance.now();
        this.ahead = await this.startPool(step);
        scoreSeconds += (performance.now() - aheadStart) / 1000;
      }
    }

    // ---- train on it -------------------------------------------------------------
    const trainStart = performance.now();
    const teacher = (config.distill > 0 || featureWeight(config) > 0) && this.reference ? await this.teacherFor(this.reference, rows) : undefined;
    const batch = rows.length;
    const lowRes = Math.round(batch * config.lowResFraction);
    const fullRes = batch - lowRes;
    const ids = this.tokenizer.encodeBatch(rows.map((i) => train.caption(i)));
    const fullPatches = fullRes > 0 ? patchify(pixels.subarray(0, fullRes * imageFloats), fullRes, config.imageSize, config.patchSize, 1) : undefined;
    const lowPatches = lowRes > 0 ? patchify(pixels.subarray(fullRes * imageFloats), lowRes, config.imageSize, config.patchSize, 2) : undefined;
    const shard: Shard = { images: [fullPatches, lowPatches].filter((p) => p !== undefined), ids, texts: batch };
    const { loss, distillLoss, featureLoss, grads } = await this.learner.gradients(shard, teacher);
    let gradNorm = NaN;
    // The update follows the whole objective: a non-finite distillation term must not reach the weights either.
    const finite = (term: number | undefined): boolean => term === undefined || Number.isFinite(term);
    if (Number.isFinite(loss) && finite(distillLoss) && finite(featureLoss)) {
      this.state.badSteps = 0;
      gradNorm = await this.learner.apply(grads, step);
    } else {
      // NaN guard: skip the update, keep the weights; fail only if it persists.
      this.state.badSteps++;
      this.state.skippedSteps++;
      const terms = [distillLoss === undefined ? '' : `distillation term ${distillLoss}`, featureLoss === undefined ? '' : `feature term ${featureLoss}`].filter(Boolean);
      this.hooks.onWarning?.(`step ${step + 1}: loss is ${loss}${terms.length ? ` (${terms.join(', ')})` : ''}; the update was skipped (${this.state.badSteps} in a row).`);
      tf.dispose(Object.values(grads));
      if (this.state.badSteps > config.maxBadSteps) {
        throw new Error(`The loss was not finite for ${this.state.badSteps} steps in a row (last at step ${step + 1}). Lower learningRate (now ${config.learningRate}) or check the data.`);
      }
    }
    const [temperature, bias] = await readLogitScale(model);
    const full = forwardFlops(model.config, 1);
    const low = forwardFlops(model.config, 2);
    this.state.flopsTrain += 3 * (full.image * fullRes + low.image * lowRes + full.text * batch + similarityFlops(batch, batch, model.config.embedDim));
    const trainSeconds = (performance.now() - trainStart) / 1000;

    // ---- record ------------------------------------------------------------------
    this.state.step = step + 1;
    this.state.examplesSeen += batch;
    const stepSeconds = (performance.now() - started) / 1000;
    this.state.activeSeconds += stepSeconds;
    const noisyShare = (list: readonly number[]): number | undefined => {
      const flags = list.map((i) => train.noisy(i));
      return flags.some((f) => f === undefined) ? undefined : flags.filter(Boolean).length / flags.length;
    };
    const line: TrainMetrics = {
      type: 'train',
      step: this.state.step,
      examples_seen: this.state.examplesSeen,
      examples_scored: this.state.examplesScored,
      flops: this.flops,
      flops_train: this.state.flopsTrain,
      flops_score: this.state.flopsScore,
      flops_reference: this.state.flopsReference,
      wall_s: this.wallSeconds(),
      active_s: this.state.activeSeconds,
      loss,
      lr: learningRateAt(step, this.optimizer.config),
      grad_norm: gradNorm,
      temperature,
      bias,
      step_s: stepSeconds,
      score_s: scoreSeconds,
      select_s: selectSeconds,
      train_s: trainSeconds,
    };
    const pickedNoisy = noisyShare(rows);
    if (pickedNoisy !== undefined) line.picked_noisy = pickedNoisy;
    if (distillLoss !== undefined) line.distill_loss = distillLoss;
    if (featureLoss !== undefined) line.feature_loss = featureLoss;
    if (config.method !== 'uniform') {
      if (uniformBatch) line.uniform_batch = true;
      if (this.state.referenceGap !== undefined && this.state.referenceGap !== null) line.reference_gap = round(this.state.referenceGap);
      if (stalenessRho !== undefined && Number.isFinite(stalenessRho)) line.staleness_rho = round(stalenessRho);
    }
    this.selections.append(selectionLine);
    this.record.metrics.append(line);
    this.hooks.onSelection?.(selectionLine);
    this.hooks.onTrain?.(line, config.steps);
    return line;
  }

  /**
   * The selections.jsonl line of a scored step: picks with their scores, and
   * the super-batch's histogram; every `superBatchEvery` steps also the
   * rejected candidates and the batch-mate terms of each pick.
   */
  private describeSelection(step: number, pool: ScoredPool, selection: Selection): SelectionLine {
    const { train, config } = this;
    const { scores, learner, reference, used } = pool;
    // The candidates this step could draw from: a cached pool's earlier picks are not among them.
    const open = pool.candidates.flatMap((_, p) => (used[p] ? [] : [p]));
    const candidates = open.map((p) => pool.candidates[p]);
    const learnerOwn = learner ? diagonal(learner.pairLoss) : undefined;
    const referenceOwn = reference ? diagonal(reference.pairLoss) : undefined;
    // The score the picks were drawn by (learnerWeight · learner − reference): the score matrix's diagonal.
    const learnability = learnerOwn && referenceOwn ? diagonal(scores) : undefined;
    const at = (values: Float32Array | undefined): number[] | undefined => (values ? selection.picked.map((p) => round(values[p])) : undefined);
    const line: SelectionLine = {
      step,
      ids: selection.picked.map((p) => train.id(pool.candidates[p])),
      pick_logit: selection.pickLogit.map(round),
      candidates: candidates.length,
    };
    if (learnerOwn) line.learner_loss = at(learnerOwn);
    if (referenceOwn) line.reference_loss = at(referenceOwn);
    if (learnability) {
      line.learnability = at(learnability);
      line.pool_hist = roundHistogram(histogram(open.map((p) => learnability[p])));
    }
    const poolNoisy = candidates.map((i) => train.noisy(i));
    if (poolNoisy.every((f) => f !== undefined)) line.pool_noisy = round(poolNoisy.filter(Boolean).length / poolNoisy.length);
    if (config.superBatchEvery > 0 && step % config.superBatchEvery === 0) {
      const picked = new Set(selection.picked);
      const rest = open.filter((p) => !picked.has(p));
      const restAt = (values: Float32Array | undefined): number[] | undefined => (values ? rest.map((p) => round(values[p])) : undefined);
      const rejected: NonNullable<SelectionLine['rejected']> = { ids: rest.map((p) => train.id(pool.candidates[p])) };
      if (learnerOwn) rejected.learner_loss = restAt(learnerOwn);
      if (referenceOwn) rejected.reference_loss = restAt(referenceOwn);
      if (learnability) rejected.learnability = restAt(learnability);
      line.rejected = rejected;
      // Sigmoid scores are sums of pair terms; softmax ones are not, so there the view infers the batch-mates' share.
      if (config.method !== 'independent' && config.loss === 'sigmoid') {
        line.contributions = batchMateTerms(scores, selection.picked, chunkSizes(config.batchSize, config.chunks), batchMateTermsKept).map((entry) => ({
          own: round(entry.own),
          from: entry.from.map(([position, term]) => [position, round(term)]),
          ...(entry.rest === undefined ? {} : { rest: round(entry.rest) }),
        }));
      }
    }
    return line;
  }

  /** Whether the step just taken is one the config evaluates at. */
  get evalDue(): boolean {
    return this.state.step % this.config.evalEvery === 0 || this.state.step === this.config.steps;
  }

  get checkpointDue(): boolean {
    return this.state.step % this.config.checkpointEvery === 0 || this.state.step === this.config.steps;
  }

  async evaluate(): Promise<EvalMetrics> {
    const started = performance.now();
    this.hooks.onStage?.(`Evaluating at step ${this.state.step} on ${this.evalSet.indices.length} pairs…`);
    const template = this.config.zeroshotTemplate || this.evalSet.dataset.zeroshotTemplate || 'a photo of a {label}';
    const result = await evaluate(this.model, this.tokenizer, this.evalSet, template, this.learner.embedder);
    this.state.activeSeconds += (performance.now() - started) / 1000;
    const line: EvalMetrics = {
      type: 'eval',
      step: this.state.step,
      examples_seen: this.state.examplesSeen,
      flops: this.flops,
      flops_train: this.state.flopsTrain,
      wall_s: this.wallSeconds(),
      active_s: this.state.activeSeconds,
      ...result,
    };
    this.record.metrics.append(line);
    this.hooks.onEval?.(line);
    return line;
  }

  /** Writes checkpoints/step-<N>/ whole or not at all; keeps the newest `keepCheckpoints` (and `pinned`). */
  async checkpoint(pinned: ReadonlySet<number> = new Set()): Promise<{ dir: string; bytes: number; ms: number }> {
    const started = performance.now();
    if (this.ahead) {
      // A pool started ahead is scored now, so that the checkpoint holds it and a resumed run draws from the same scores.
      this.pool = await this.finishPool(this.ahead, this.state.step);
      this.ahead = undefined;
    }
    const optimizer = await this.optimizer.save();
    const state: TrainerState = {
      ...this.state,
      sampler: this.sampler.state(),
      selectionRng: this.selectionRng.state(),
      referenceSeen: Buffer.from(this.referenceSeen).toString('base64'),
      optimizerUpdates: optimizer.updates,
      pool: this.savePool(),
    };
    const written = writeCheckpoint(this.record.dir, { step: this.state.step, state, params: await this.model.params.save(), optimizer: optimizer.moments });
    pruneCheckpoints(this.record.dir, this.config.keepCheckpoints, pinned);
    return { ...written, ms: performance.now() - started };
  }

  async close(): Promise<void> {
    this.ahead = undefined;
    await this.learner.close();
    this.selections.close();
    this.optimizer.dispose();
    this.model.dispose();
    await Promise.all(this.datasets.map((d) => d.close()));
  }
}


/** Three significant digits: enough to inspect, small enough for 100k lines (≈ 2 KB a step at b = 64). */
/** Batch-mate terms of a pick kept by name in a detailed step (the largest); the rest is one sum. */
const batchMateTermsKept = 8;

/** With `scoreEvery` > 1, every this many cycles the last step measures how stale its scores are. */
const stalenessEvery = 4;

/** With `scoreAhead` (scores one step old), every this many steps measure how stale they are. */
const aheadStalenessEvery = 25;

function round(x: number): number {
  return Number.isFinite(x) ? Number(x.toPrecision(3)) : x;
}

function roundHistogram(h: Histogram): Histogram {
  return { lo: round(h.lo), hi: round(h.hi), counts: h.counts };
}

/** Whether a folder holds a run (for resume/branch error messages). */
export function isRunDir(dir: string): boolean {
  return fs.existsSync(path.join(dir, 'run.json'));
}
