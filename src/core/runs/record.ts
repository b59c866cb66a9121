/**
 * The run record on disk (DESIGN.md, "Runs on disk"): run.json holds the
 * resolved config and what happened; metrics.jsonl one line per train step
 * and per eval, under names any tool can read.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { BackendAttempt, BackendName } from '../backend';
import type { NativeMatMulStatus } from '../nativeMatMul';
import type { SkipReport } from '../data/types';
import type { TrainConfig } from '../train/config';
import { JsonlWriter, readJsonl, writeFileAtomic } from './jsonl';

/**
 * `paused`: checkpointed at its last step and resumable; `stopped`: ended early
 * by the user (checkpointed, resumable); `interrupted`: the process died
 * without finishing (resume continues from its newest whole checkpoint).
 */
export type RunStatus = 'starting' | 'running' | 'paused' | 'stopped' | 'finished' | 'failed' | 'interrupted';

/** Settings a branch changed from its parent: key → parent's value and the branch's. */
export type ConfigDiff = Partial<Record<keyof TrainConfig, { from: unknown; to: unknown }>>;

/** Where a branch comes from (DESIGN.md, "Runs on disk"). */
export interface Lineage {
  /** The parent's id. */
  parent: string;
  forkStep: number;
  /** The parent's checkpoint folder the branch starts from, relative to the branch's folder. */
  checkpointUsed: string;
  configDiff: ConfigDiff;
}

export interface DataSummary {
  source: string;
  format: string;
  size: number;
  skips: SkipReport;
}

export interface RunJson {
  id: string;
  kind: 'train';
  status: RunStatus;
  created: string;
  updated: string;
  config: TrainConfig;
  seed: number;
  backend?: { chosen: BackendName; attempts: BackendAttempt[]; warning?: string; matMul?: NativeMatMulStatus; threads?: number; threadsReason?: string; scoring?: string };
  data?: { train: DataSummary; eval: DataSummary; evalHeldOut: boolean };
  model?: { parameters: number; forwardFlopsPerExample: number; vocabSize: number };
  parent: string | null;
  forkStep: number | null;
  /** Branches only: see `Lineage`. */
  checkpointUsed?: string;
  configDiff?: ConfigDiff;
  /** Checkpoint steps that branches start from: never pruned. Adding one is the only change a branch makes to its parent. */
  pinnedCheckpoints?: number[];
  /** The process that trains the run now (or last did): a second one must not resume it while this one lives. */
  pid?: number;
  error?: { message: string; detail?: string };
  /** The reference model a selecting run scores with, and where its pool embeddings are cached. */
  referenceRun?: {
    dir: string;
    id: string;
    step: number;
    cacheFile: string;
    /** Where the data say which pairs are swapped: the AUC with which the reference tells right captions from swapped ones on this pool. */
    noiseAuc?: number;
    /** Captions the reference's pass over the pool embedded (each distinct text once per chunk); the pool's size when none repeat. */
    captionForwards?: number;
  };
  summary?: { steps: number; examplesSeen: number; wallSeconds: number; finalEval?: EvalMetrics; skippedSteps: number };
}

/** The backend a run trains on as people say it: `wasm+OpenBLAS × 2 threads`, `webgpu`. */
export function describeBackend(backend: NonNullable<RunJson['backend']>): string {
  const name = backend.matMul?.active ? `${backend.chosen}+${backend.matMul.blas}` : backend.chosen;
  return backend.threads && backend.threads > 1 ? `${name} × ${backend.threads} threads` : name;
}

export interface TrainMetrics {
  type: 'train';
  step: number;
  /** Examples trained on, cumulative. */
  examples_seen: number;
  /** Super-batch candidates scored, cumulative (0 for uniform batches). */
  examples_scored: number;
  /** All FLOPs spent so far: flops_train + flops_score + flops_reference. */
  flops: number;
  flops_train: number;
  /** Learner forward passes over super-batches (selection's scoring). */
  flops_score: number;
  /** Reference embeddings (each pool example once, when first scored) and reference loss matrices. */
  flops_reference: number;
  wall_s: number;
  /** Seconds spent training and evaluating: pauses and downtime excluded. */
  active_s: number;
  /** The contrastive loss; with `distill`, the trained loss also holds distill × distill_loss. */
  loss: number;
  /** With `distill` above 0, on every trained batch: how far the learner's pair probabilities are from the reference's (0 = equal). */
  distill_loss?: number;
  /** With `distillFeatures`: the embedding term, unweighted (1 − cosine to the reference's, mean of the towers). */
  feature_loss?: number;
  lr: number;
  grad_norm: number;
  temperature: number;
  bias: number;
  /** Seconds this step took, and how much of it went to scoring, selecting and training. */
  step_s: number;
  score_s: number;
  select_s: number;
  train_s: number;
  /** Share of the trained batch whose caption is known to be wrong (where the data say so). */
  picked_noisy?: number;
  /** A selecting run's step that trained on a uniform batch (after passing its reference, `passedReference`). */
  uniform_batch?: boolean;
  /** Smoothed learner − reference loss on the candidates the reference finds clean; below 0 = the learner passed it. */
  reference_gap?: number;
  /** With `scoreEvery` > 1, now and then: rank correlation of the cached (stale) learnability with a fresh scoring of the same candidates. */
  staleness_rho?: number;
}

/** One line of selections.jsonl: what a step trained on and why. */
export interface SelectionLine {
  step: number;
  /** Stable ids of the trained pairs, in the order they were drawn. */
  ids: string[];
  /** The logit each pick had when drawn: its conditional score given the batch-mates drawn before it. */
  pick_logit?: number[];
  /** Each pick's own-pair loss under the learner and the reference, and its learnability: learnerWeight · learner − reference. */
  learner_loss?: number[];
  reference_loss?: number[];
  learnability?: number[];
  /** Candidates scored (the super-batch size). */
  candidates?: number;
  /** Histogram of learnability over the whole super-batch. */
  pool_hist?: { lo: number; hi: number; counts: number[] };
  /** Share of the super-batch whose caption is known to be wrong. */
  pool_noisy?: number;
  /** Every `superBatchEvery` steps: the super-batch's candidates that were not picked, with their own-pair scores. */
  rejected?: { ids: string[]; learner_loss?: number[]; reference_loss?: number[]; learnability?: number[] };
  /** Every `superBatchEvery` steps (joint selection, sigmoid loss): the terms of each pick's logit, aligned with `ids`. */
  contributions?: BatchMateTerms[];
}

/**
 * The terms of one pick's conditional logit (sum normalization): its own
 * score S_kk plus S_ik + S_ki for every batch-mate i drawn in an earlier
 * chunk. `from` keeps the largest few by magnitude as [position in `ids`,
 * term]; `rest` is the sum of the others, so own + Σ from + rest is the logit.
 */
export interface BatchMateTerms {
  own: number;
  from: [number, number][];
  rest?: number;
}

export interface EvalMetrics {
  type: 'eval';
  step: number;
  examples_seen: number;
  flops: number;
  flops_train: number;
  wall_s: number;
  active_s: number;
  i2t_r1: number;
  i2t_r5: number;
  t2i_r1: number;
  t2i_r5: number;
  zeroshot_acc?: number;
  eval_examples: number;
  /** Chance level of i2t recall@1 on this eval set (1 / distinct captions). */
  chance_r1: number;
}

export type MetricLine = TrainMetrics | EvalMetrics;

/** A short, sortable, unique run id: date-time and a random suffix. */
export function newRunId(now = new Date()): string {
  const stamp = now.toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
  return `${stamp}-${Math.random().toString(36).slice(2, 6)}`;
}

export class RunRecord {
  readonly metrics: JsonlWriter;
  private json: RunJson;

  private constructor(
    readonly dir: string,
    json: RunJson,
  ) {
    this.json = json;
    this.metrics = new JsonlWriter(path.join(dir, 'metrics.jsonl'));
  }

  static create(dir: string, config: TrainConfig, id = path.basename(dir), lineage?: Lineage): RunRecord {
    if (fs.existsSync(path.join(dir, 'run.json'))) {
      throw new Error(`${dir} already holds a run (run.json exists). Choose another --run-dir, or delete that folder to start over.`);
    }
    try {
      fs.mkdirSync(dir, { recursive: true });
    } catch (error) {
      throw new Error(`Cannot create the run folder ${dir}: ${(error as Error).message}`, { cause: error });
    }
    const now = new Date().toISOString();
    const record = new RunRecord(dir, {
      id,
      kind: 'train',
      status: 'starting',
      created: now,
      updated: now,
      config,
      seed: config.seed,
      parent: lineage?.parent ?? null,
      forkStep: lineage?.forkStep ?? null,
      ...(lineage ? { checkpointUsed: lineage.checkpointUsed, configDiff: lineage.configDiff } : {}),
    });
    record.save();
    return record;
  }

  /**
   * Reopens a run to continue it. JSONL lines past `keepThroughStep` (work
   * done after the checkpoint it resumes from) are dropped first, in one
   * atomic rewrite, so no curve doubles back.
   */
  static open(dir: string, keepThroughStep?: number): RunRecord {
    const json = readRunJson(dir);
    if (keepThroughStep !== undefined) dropLinesAfter(dir, keepThroughStep);
    return new RunRecord(dir, json);
  }

  /** Pins a checkpoint of the run in `dir` (a branch starts from it), so pruning spares it. */
  static pin(dir: string, step: number): void {
    const json = readRunJson(dir);
    const pins = new Set(json.pinnedCheckpoints ?? []).add(step);
    writeRunJson(dir, { ...json, pinnedCheckpoints: [...pins].sort((a, b) => a - b) });
  }

  get run(): Readonly<RunJson> {
    return this.json;
  }

  update(patch: Partial<RunJson>): void {
    this.json = { ...this.json, ...patch, updated: new Date().toISOString() };
    this.save();
  }

  /** Checkpoint steps pinned by branches, read from disk: a branch may be made while this run trains. */
  pinnedCheckpoints(): Set<number> {
    return new Set([...(this.json.pinnedCheckpoints ?? []), ...(tryReadRunJson(this.dir)?.pinnedCheckpoints ?? [])]);
  }

  private save(): void {
    // Keep pins another process added since this one read run.json.
    const pins = this.pinnedCheckpoints();
    if (pins.size > 0) this.json = { ...this.json, pinnedCheckpoints: [...pins].sort((a, b) => a - b) };
    writeRunJson(this.dir, this.json);
  }

  writeJson(name: string, value: unknown): void {
    writeFileAtomic(path.join(this.dir, name), JSON.stringify(value) + '\n');
  }

  close(): void {
    this.metrics.close();
  }
}

function writeRunJson(dir: string, json: RunJson): void {
  writeFileAtomic(path.join(dir, 'run.json'), JSON.stringify(json, null, 2) + '\n');
}

function tryReadRunJson(dir: string): RunJson | undefined {
  try {
    return JSON.parse(fs.readFileSync(path.join(dir, 'run.json'), 'utf8')) as RunJson;
  } catch {
    return undefined;
  }
}

/** The run.json of the run in `dir`, or an error saying the folder holds no run. */
export function readRunJson(dir: string): RunJson {
  const file = path.join(dir, 'run.json');
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw new Error(`${dir} holds no run (there is no run.json).`, { cause: error });
    throw error;
  }
  try {
    return JSON.parse(text) as RunJson;
  } catch (error) {
    throw new Error(`${file} is not valid JSON (${(error as Error).message}).`, { cause: error });
  }
}

/** The append-only logs of a run whose lines carry a `step`. */
const stepLogs = ['metrics.jsonl', 'selections.jsonl'];

/** Drops lines past `step` (and a torn last line) from the run's step logs; returns how many went. */
export function dropLinesAfter(dir: string, step: number): number {
  let dropped = 0;
  for (const name of stepLogs) {
    const file = path.join(dir, name);
    if (!fs.existsSync(file)) continue;
    const { rows, tornTail } = readJsonl<{ step?: unknown }>(file);
    const kept = rows.filter((row) => !(typeof row.step === 'number' && row.step > step));
    if (kept.length === rows.length && !tornTail) continue;
    dropped += rows.length - kept.length;
    writeFileAtomic(file, kept.map((row) => JSON.stringify(row) + '\n').join(''));
  }
  return dropped;
}

/** Whether process `pid` lives on this machine (EPERM: alive, but another user's). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Whether run.json says the run trains but the process it names is gone
 * (killed, the machine restarted, or a full disk kept it from writing its
 * last status): such a run is shown as interrupted, and can be resumed.
 * Only meaningful on the machine that trained it.
 */
export const orphaned = (json: Pick<RunJson, 'status' | 'pid'>): boolean =>
  (json.status === 'running' || json.status === 'starting') && typeof json.pid === 'number' && !processAlive(json.pid);

/**
 * After its process died unfinished: a run whose run.json still says it is
 * live is marked `interrupted` with the reason. Finished, failed and stopped
 * runs are left alone. Returns whether it changed anything.
 */
export function markInterrupted(dir: string, reason: string): boolean {
  const json = tryReadRunJson(dir);
  if (!json || !['starting', 'running', 'paused'].includes(json.status)) return false;
  writeRunJson(dir, { ...json, status: 'interrupted', updated: new Date().toISOString(), error: { message: reason } });
  return true;
}
