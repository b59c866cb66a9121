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
import { EpochSampler, type SamplerState } from '../data/sampler';
import { holdOut } from '../data/subset';
import { Tokenizer, type TokenizerJson } from '../data/tokenizer';
import type { ImageTextDataset } from '../data/types';
import { DualEncoder, forwardFlops, patchify, similarityFlops } from '../model/dualEncoder';
import { contrastiveLoss } from '../model/losses';
import { Rng, type RngState } from '../random';
import { diagonal, histogram, scoreMatrix, type Histogram, type ScoreKind, type SquareMatrix } from '../selection/scores';
import { batchMateTerms, chunkSizes, pairwiseScorer, selectIndependent, selectJoint, softmaxScorer, type Selection } from '../selection/selectors';
import { readCheckpoint, writeCheckpoint, pruneCheckpoints } from '../runs/checkpoint';
import { JsonlWriter } from '../runs/jsonl';
import type { DataSummary, EvalMetrics, RunRecord, SelectionLine, TrainMetrics } from '../runs/record';
import { modelConfigFor, needsReference, superBatchSize, type TrainConfig } from './config';
import { loadReference, noiseSeparation, readLogitScale, referenceEmbeddings, type ReferenceEmbeddings } from './reference';
import { evaluate, prepareEvalSet, type EvalSet } from './eval';
import { Learner, readPairMatrices, type PairMatrices } from './learner';
import type { Shard } from './replicaProtocol';
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
}

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
        const dataset = await openDataset(spec, { resolution: config.imageSize, onProgress: (done, total) => hooks.onProgress?.(`Indexing ${role} data`, done, total ?? 0) });
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
      const superBatch = superBatchSize(config);
      if (superBatch > train.size) throw new Error(`A super-batch of ${superBatch} needs at least that many training pairs; ${train.source} has ${train.size}. Lower batchSize or filterRatio.`);
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

      let reference: ReferenceEmbeddings | undefined;
      if (needsReference(config.method)) {
        hooks.onStage?.(`Loading the reference model ${config.reference}…`);
        const referenceModel = loadReference(config.reference);
        try {
          const stage = `Embedding ${train.size} training pairs with the reference (once; cached)`;
          reference = await referenceEmbeddings(referenceModel, train, (done, total) => hooks.onProgress?.(stage, done, total));
          hooks.onStage?.(`Reference embeddings ${reference.computed ? 'computed and cached' : 'read from cache'}: ${reference.cacheFile}`);
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
      const created = await Learner.create(model, optimizer, config.loss, backend.chosen, config.threads, config.batchSize, hooks.onStage);
      learner = created.learner;
      const { threads, reason } = created;
      record.update({ backend: { chosen: backend.chosen, attempts: backend.attempts, warning: backend.warning, ...(backend.matMul ? { matMul: backend.matMul } : {}), threads, threadsReason: reason } });
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

  /** The learner's and the reference's per-pair loss (and logit) matrices over the candidates. */
  private async scoreCandidates(candidates: number[], pixels: Float32Array, captions: string[]): Promise<{ learner?: PairMatrices; reference?: PairMatrices }> {
    const { config, model } = this;
    const size = candidates.length;
    const dim = model.config.embedDim;
    const scale = config.scoreResolution === 'low' ? 2 : 1;
    const perExample = forwardFlops(model.config, scale);
    let learner: PairMatrices | undefined;
    if (config.method !== 'easy-reference') {
      learner = await this.learner.score({ images: [patchify(pixels, size, config.imageSize, config.patchSize, scale)], ids: this.tokenizer.encodeBatch(captions), texts: size });
      this.state.flopsScore += (perExample.image + perExample.text) * size + similarityFlops(size, size, dim);
    }
    let reference: PairMatrices | undefined;
    if (this.reference) {
      const ref = this.reference;
      const gather = (all: Float32Array): Float32Array => {
        const out = new Float32Array(size * ref.dim);
        candidates.forEach((row, n) => out.set(all.subarray(row * ref.dim, (row + 1) * ref.dim), n * ref.dim));
        return out;
      };
      reference = await readPairMatrices(
        size,
        tf.tidy(() => {
          const out = contrastiveLoss(config.loss, tf.tensor2d(gather(ref.image), [size, ref.dim]), tf.tensor2d(gather(ref.text), [size, ref.dim]), tf.scalar(ref.temperature), tf.scalar(ref.bias));
          return [out.pairLoss, out.logits];
        }),
      );
      // Each pool example's reference forward pass is paid once, the first time it is a candidate.
      let firstSeen = 0;
      for (const row of candidates) {
        const bit = 1 << (row & 7);
        if (!(this.referenceSeen[row >> 3] & bit)) {
          this.referenceSeen[row >> 3] |= bit;
          firstSeen++;
        }
      }
      this.state.flopsReference += firstSeen * ref.forwardFlopsPerExample + similarityFlops(size, size, ref.dim);
    }
    return { learner, reference };
  }

  /** Picks b of the candidates by the configured method. */
  private select(learner: PairMatrices | undefined, reference: PairMatrices | undefined): { selection: Selection; scores: SquareMatrix } {
    const { config } = this;
    const kind: ScoreKind = config.method === 'jest' || config.method === 'independent' ? 'learnability' : (config.method as ScoreKind);
    const scores = scoreMatrix(kind, learner?.pairLoss, reference?.pairLoss);
    const own = diagonal(scores);
    if (config.method === 'independent') return { selection: selectIndependent(own, config.batchSize), scores };
    const scorer =
      config.loss === 'sigmoid'
        ? pairwiseScorer(scores)
        : softmaxScorer(
            [
              ...(kind !== 'easy-reference' && learner ? [{ logits: learner.logits, sign: 1 }] : []),
              ...(kind !== 'hard-learner' && reference ? [{ logits: reference.logits, sign: -1 }] : []),
            ],
            own,
          );
    const selection = selectJoint(scorer, { count: config.batchSize, chunks: config.chunks, normalization: config.jointNormalization, temperature: config.selectionTemperature }, this.selectionRng);
    return { selection, scores };
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
    if (config.method === 'uniform') {
      rows = this.sampler.next(config.batchSize);
      pixels = await train.loadImages(rows);
      selectionLine = { step: step + 1, ids: rows.map((i) => train.id(i)) };
    } else {
      const candidates = this.sampler.next(superBatchSize(config));
      const candidatePixels = await train.loadImages(candidates);
      const scoreStart = performance.now();
      const { learner, reference } = await this.scoreCandidates(candidates, candidatePixels, candidates.map((i) => train.caption(i)));
      const selectStart = performance.now();
      const { selection, scores } = this.select(learner, reference);
      selectSeconds = (performance.now() - selectStart) / 1000;
      scoreSeconds = (selectStart - scoreStart) / 1000;
      rows = selection.picked.map((p) => candidates[p]);
      pixels = new Float32Array(rows.length * imageFloats);
      selection.picked.forEach((p, n) => pixels.set(candidatePixels.subarray(p * imageFloats, (p + 1) * imageFloats), n * imageFloats));
      this.state.examplesScored += candidates.length;
      selectionLine = this.describeSelection(step + 1, candidates, selection, scores, learner, reference);
    }

    // ---- train on it -------------------------------------------------------------
    const trainStart = performance.now();
    const batch = rows.length;
    const lowRes = Math.round(batch * config.lowResFraction);
    const fullRes = batch - lowRes;
    const ids = this.tokenizer.encodeBatch(rows.map((i) => train.caption(i)));
    const fullPatches = fullRes > 0 ? patchify(pixels.subarray(0, fullRes * imageFloats), fullRes, config.imageSize, config.patchSize, 1) : undefined;
    const lowPatches = lowRes > 0 ? patchify(pixels.subarray(fullRes * imageFloats), lowRes, config.imageSize, config.patchSize, 2) : undefined;
    const shard: Shard = { images: [fullPatches, lowPatches].filter((p) => p !== undefined), ids, texts: batch };
    const { loss, grads } = await this.learner.gradients(shard);
    let gradNorm = NaN;
    if (Number.isFinite(loss)) {
      this.state.badSteps = 0;
      gradNorm = await this.learner.apply(grads, step);
    } else {
      // NaN guard: skip the update, keep the weights; fail only if it persists.
      this.state.badSteps++;
      this.state.skippedSteps++;
      this.hooks.onWarning?.(`step ${step + 1}: loss is ${loss}; the update was skipped (${this.state.badSteps} in a row).`);
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
  private describeSelection(step: number, candidates: number[], selection: Selection, scores: SquareMatrix, learner?: PairMatrices, reference?: PairMatrices): SelectionLine {
    const { train, config } = this;
    const learnerOwn = learner ? diagonal(learner.pairLoss) : undefined;
    const referenceOwn = reference ? diagonal(reference.pairLoss) : undefined;
    const learnability = learnerOwn && referenceOwn ? learnerOwn.map((l, i) => l - referenceOwn[i]) : undefined;
    const at = (values: Float32Array | undefined): number[] | undefined => (values ? selection.picked.map((p) => round(values[p])) : undefined);
    const line: SelectionLine = {
      step,
      ids: selection.picked.map((p) => train.id(candidates[p])),
      pick_logit: selection.pickLogit.map(round),
      candidates: candidates.length,
    };
    if (learnerOwn) line.learner_loss = at(learnerOwn);
    if (referenceOwn) line.reference_loss = at(referenceOwn);
    if (learnability) {
      line.learnability = at(learnability);
      line.pool_hist = roundHistogram(histogram(learnability));
    }
    const poolNoisy = candidates.map((i) => train.noisy(i));
    if (poolNoisy.every((f) => f !== undefined)) line.pool_noisy = round(poolNoisy.filter(Boolean).length / poolNoisy.length);
    if (config.superBatchEvery > 0 && step % config.superBatchEvery === 0) {
      const picked = new Set(selection.picked);
      const rest = candidates.flatMap((_, p) => (picked.has(p) ? [] : [p]));
      const restAt = (values: Float32Array | undefined): number[] | undefined => (values ? rest.map((p) => round(values[p])) : undefined);
      const rejected: NonNullable<SelectionLine['rejected']> = { ids: rest.map((p) => train.id(candidates[p])) };
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
    const optimizer = await this.optimizer.save();
    const state: TrainerState = {
      ...this.state,
      sampler: this.sampler.state(),
      selectionRng: this.selectionRng.state(),
      referenceSeen: Buffer.from(this.referenceSeen).toString('base64'),
      optimizerUpdates: optimizer.updates,
    };
    const written = writeCheckpoint(this.record.dir, { step: this.state.step, state, params: await this.model.params.save(), optimizer: optimizer.moments });
    pruneCheckpoints(this.record.dir, this.config.keepCheckpoints, pinned);
    return { ...written, ms: performance.now() - started };
  }

  async close(): Promise<void> {
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
