/**
 * Run folders for the panels' tests and benchmarks, written the way the
 * trainer writes them (run.json, metrics.jsonl, selections.jsonl) with
 * made-up but plausible numbers: JEST runs learn faster per example and
 * spend FLOPs scoring; a branch continues its parent's counters. Ids are
 * those of `builtin:train?size=3000`, so the thumbnail service can draw them.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { EvalMetrics, RunJson, SelectionLine, TrainMetrics } from '../../src/core/runs/record';
import { Rng } from '../../src/core/random';
import { defaultTrainConfig, type Method, type TrainConfig } from '../../src/core/train/config';

export const fixtureData = 'builtin:train?size=3000';
const dataSize = 3000;
const flopsPerExample = 3e6;

export interface FixtureRun {
  id: string;
  method: Method;
  filterRatio?: number;
  steps: number;
  /** How fast it learns per step (1 = uniform's pace). */
  pace: number;
  parent?: { id: string; forkStep: number };
  status?: RunJson['status'];
  evalEvery?: number;
  batchSize?: number;
  seed?: number;
  config?: Partial<TrainConfig>;
  /** Extra fields merged into each selections line (a later format's `rejected`, `contributions`…). */
  extraSelection?: (line: SelectionLine, rng: Rng) => Record<string, unknown>;
}

export const tmpDir = (prefix = 'sift-panels-'): string => fs.mkdtempSync(path.join(os.tmpdir(), prefix));

interface Counters {
  examples_seen: number;
  examples_scored: number;
  flops_train: number;
  flops_score: number;
  flops_reference: number;
  wall_s: number;
  active_s: number;
}

/** Writes one run under `root/<id>`; a branch's parent must be written first (its counters continue). */
export function writeFixtureRun(root: string, run: FixtureRun): string {
  const dir = path.join(root, run.id);
  fs.mkdirSync(dir, { recursive: true });
  const batchSize = run.batchSize ?? 16;
  const filterRatio = run.method === 'uniform' ? 0 : (run.filterRatio ?? 0.8);
  const candidates = Math.round(batchSize / (1 - filterRatio));
  const evalEvery = run.evalEvery ?? 20;
  const config: TrainConfig = {
    ...defaultTrainConfig,
    data: fixtureData,
    method: run.method,
    filterRatio: run.method === 'uniform' ? defaultTrainConfig.filterRatio : filterRatio,
    steps: run.steps,
    batchSize,
    evalEvery,
    chunks: 4,
    // Its lines carry no rejected candidates unless `extraSelection` adds them (and `config` says how often).
    superBatchEvery: 0,
    // A started run's run.json holds the weight it trained with; these lines carry no term unless `config` sets one.
    distill: 0,
    distillFeatures: 0,
    runDir: dir,
    ...run.config,
  };
  const forkStep = run.parent?.forkStep ?? 0;
  const json: RunJson = {
    id: run.id,
    kind: 'train',
    status: run.status ?? 'finished',
    created: new Date(Date.UTC(2026, 0, 1, 0, 0, fs.readdirSync(root).length)).toISOString(),
    updated: new Date(Date.UTC(2026, 0, 1)).toISOString(),
    config,
    seed: run.seed ?? 0,
    parent: run.parent?.id ?? null,
    forkStep: run.parent ? forkStep : null,
  };
  if (run.parent) {
    json.checkpointUsed = path.relative(dir, path.join(root, run.parent.id, 'checkpoints', `step-${forkStep}`));
    json.configDiff = { filterRatio: { from: 0.8, to: filterRatio } };
  }
  fs.writeFileSync(path.join(dir, 'run.json'), JSON.stringify(json, null, 2) + '\n');

  const counters: Counters = run.parent ? countersAt(root, run.parent.id, forkStep) : { examples_seen: 0, examples_scored: 0, flops_train: 0, flops_score: 0, flops_reference: 0, wall_s: 1, active_s: 0 };
  const rng = new Rng(run.seed ?? hash(run.id));
  const metrics: string[] = [];
  const selections: string[] = [];
  for (let step = forkStep + 1; step <= (run.status === 'running' ? Math.floor(run.steps / 2) : run.steps); step++) {
    metrics.push(JSON.stringify(trainLine(step, run, counters, batchSize, candidates, rng)));
    if (step % evalEvery === 0 || step === run.steps) metrics.push(JSON.stringify(evalLine(step, run, counters)));
    selections.push(JSON.stringify(selectionLine(step, run, batchSize, candidates, config.chunks, rng)));
  }
  fs.writeFileSync(path.join(dir, 'metrics.jsonl'), metrics.map((line) => line + '\n').join(''));
  fs.writeFileSync(path.join(dir, 'selections.jsonl'), selections.map((line) => line + '\n').join(''));
  return dir;
}

/** The train line of a step: counters advance, the loss decays at the run's pace, with noise; a run that distils also records its term. */
export function trainLine(step: number, run: Pick<FixtureRun, 'method' | 'pace' | 'steps' | 'config'>, counters: Counters, batchSize: number, candidates: number, rng: Rng): TrainMetrics {
  const scored = run.method === 'uniform' ? 0 : candidates;
  counters.examples_seen += batchSize;
  counters.examples_scored += scored;
  counters.flops_train += 3 * batchSize * flopsPerExample;
  counters.flops_score += scored * flopsPerExample;
  counters.flops_reference += step < 50 ? scored * flopsPerExample : 0;
  const stepSeconds = 0.05 + 0.02 * (scored / batchSize);
  counters.wall_s += stepSeconds + (step % 97 === 0 ? 3 : 0);
  counters.active_s += stepSeconds;
  const progress = (step * run.pace) / Math.max(1, run.steps);
  const loss = round(1.2 + 2.6 * Math.exp(-3 * progress) + 0.18 * rng.normal());
  const distill = (run.config?.distill ?? 0) > 0 ? { distill_loss: round(0.05 + 0.6 * Math.exp(-4 * progress) + 0.02 * Math.abs(rng.normal())) } : {};
  const features = (run.config?.distillFeatures ?? 0) > 0 ? { feature_loss: round(0.04 + 0.8 * Math.exp(-5 * progress) + 0.01 * Math.abs(rng.normal())) } : {};
  return {
    type: 'train',
    step,
    examples_seen: counters.examples_seen,
    examples_scored: counters.examples_scored,
    flops: counters.flops_train + counters.flops_score + counters.flops_reference,
    flops_train: counters.flops_train,
    flops_score: counters.flops_score,
    flops_reference: counters.flops_reference,
    wall_s: round(counters.wall_s),
    active_s: round(counters.active_s),
    loss,
    ...distill,
    ...features,
    lr: 0.002,
    grad_norm: 1,
    temperature: 10,
    bias: -2.7,
    step_s: stepSeconds,
    score_s: 0,
    select_s: 0,
    train_s: stepSeconds,
  };
}

export function evalLine(step: number, run: Pick<FixtureRun, 'pace' | 'steps'>, counters: Counters): EvalMetrics {
  const progress = (step * run.pace) / Math.max(1, run.steps);
  const r1 = 0.55 * (1 - Math.exp(-2.2 * progress));
  return {
    type: 'eval',
    step,
    examples_seen: counters.examples_seen,
    flops: counters.flops_train + counters.flops_score + counters.flops_reference,
    flops_train: counters.flops_train,
    wall_s: round(counters.wall_s),
    active_s: round(counters.active_s),
    i2t_r1: round(r1),
    i2t_r5: round(Math.min(1, r1 * 1.7)),
    t2i_r1: round(r1 * 0.9),
    t2i_r5: round(Math.min(1, r1 * 1.6)),
    zeroshot_acc: round(r1 * 1.2),
    eval_examples: 200,
    chance_r1: 0.005,
  };
}

function selectionLine(step: number, run: FixtureRun, batchSize: number, candidates: number, chunks: number, rng: Rng): SelectionLine {
  const ids = Array.from({ length: batchSize }, () => String(rng.int(dataSize)));
  if (run.method === 'uniform') return { step, ids };
  // The pool's learnability drifts down as the learner catches up with the reference.
  const centre = 0.6 - (1.2 * step) / run.steps;
  const pool = Array.from({ length: candidates }, () => centre + 0.45 * rng.normal());
  const sorted = [...pool].sort((a, b) => b - a);
  // Picks come from the top of the pool, not all of the top (the sampler draws, it does not sort).
  const stride = Math.min(2, Math.floor(candidates / batchSize));
  const learnability = Array.from({ length: batchSize }, (_, i) => round(sorted[i * stride]));
  const reference = learnability.map(() => round(2.6 + 0.2 * rng.normal()));
  const learner = learnability.map((l, i) => round(l + reference[i]));
  const chunkSize = Math.ceil(batchSize / chunks);
  const pickLogit = learnability.map((l, i) => (i < chunkSize ? l : round(l + 0.08 * Math.floor(i / chunkSize) * chunkSize * (0.5 + rng.next()))));
  const lo = Math.min(...pool);
  const hi = Math.max(...pool);
  const counts = new Array(16).fill(0);
  for (const v of pool) counts[Math.min(15, Math.floor(((v - lo) / (hi - lo || 1)) * 16))]++;
  const line: SelectionLine = {
    step,
    ids,
    pick_logit: pickLogit,
    candidates,
    learner_loss: learner,
    reference_loss: reference,
    learnability,
    pool_hist: { lo: round(lo), hi: round(hi), counts },
    pool_noisy: 0.4,
  };
  return run.extraSelection ? { ...line, ...run.extraSelection(line, rng) } : line;
}

/** The parent's counters at a step (re-read from its metrics), for a branch to continue. */
function countersAt(root: string, parent: string, step: number): Counters {
  const lines = fs
    .readFileSync(path.join(root, parent, 'metrics.jsonl'), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((text) => JSON.parse(text) as TrainMetrics | EvalMetrics);
  const line = lines.filter((l): l is TrainMetrics => l.type === 'train' && l.step <= step).pop()!;
  return {
    examples_seen: line.examples_seen,
    examples_scored: line.examples_scored,
    flops_train: line.flops_train,
    flops_score: line.flops_score,
    flops_reference: line.flops_reference,
    wall_s: line.wall_s,
    active_s: line.active_s,
  };
}

/** Five runs as a user compares them: uniform, three selecting runs and a branch of one. */
export function writeFixtureRuns(root: string, steps = 400): string[] {
  return [
    writeFixtureRun(root, { id: 'uniform', method: 'uniform', steps, pace: 1 }),
    writeFixtureRun(root, { id: 'jest-f80', method: 'jest', filterRatio: 0.8, steps, pace: 1.9 }),
    writeFixtureRun(root, { id: 'jest-f50', method: 'jest', filterRatio: 0.5, steps, pace: 1.5 }),
    writeFixtureRun(root, { id: 'independent', method: 'independent', filterRatio: 0.8, steps, pace: 1.25 }),
    writeFixtureRun(root, { id: 'jest-f90-branch', method: 'jest', filterRatio: 0.9, steps, pace: 2.3, parent: { id: 'jest-f80', forkStep: Math.floor(steps / 2) } }),
  ];
}

const round = (value: number): number => Math.round(value * 1e4) / 1e4;

function hash(text: string): number {
  let h = 7;
  for (let i = 0; i < text.length; i++) h = (h * 31 + text.charCodeAt(i)) >>> 0;
  return h;
}
