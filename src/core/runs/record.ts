/**
 * The run record on disk (DESIGN.md, "Runs on disk"): run.json holds the
 * resolved config and what happened; metrics.jsonl one line per train step
 * and per eval, under names any tool can read.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { BackendAttempt, BackendName } from '../backend';
import type { SkipReport } from '../data/types';
import type { TrainConfig } from '../train/config';
import { JsonlWriter, writeFileAtomic } from './jsonl';

export type RunStatus = 'starting' | 'running' | 'finished' | 'failed' | 'interrupted';

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
  backend?: { chosen: BackendName; attempts: BackendAttempt[]; warning?: string };
  data?: { train: DataSummary; eval: DataSummary; evalHeldOut: boolean };
  model?: { parameters: number; forwardFlopsPerExample: number; vocabSize: number };
  parent: string | null;
  forkStep: number | null;
  error?: { message: string; detail?: string };
  summary?: { steps: number; examplesSeen: number; wallSeconds: number; finalEval?: EvalMetrics; skippedSteps: number };
}

export interface TrainMetrics {
  type: 'train';
  step: number;
  examples_seen: number;
  flops: number;
  wall_s: number;
  loss: number;
  lr: number;
  grad_norm: number;
  temperature: number;
  bias: number;
}

export interface EvalMetrics {
  type: 'eval';
  step: number;
  examples_seen: number;
  flops: number;
  wall_s: number;
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

  static create(dir: string, config: TrainConfig, id = path.basename(dir)): RunRecord {
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
      parent: null,
      forkStep: null,
    });
    record.save();
    return record;
  }

  get run(): Readonly<RunJson> {
    return this.json;
  }

  update(patch: Partial<RunJson>): void {
    this.json = { ...this.json, ...patch, updated: new Date().toISOString() };
    this.save();
  }

  private save(): void {
    writeFileAtomic(path.join(this.dir, 'run.json'), JSON.stringify(this.json, null, 2) + '\n');
  }

  writeJson(name: string, value: unknown): void {
    writeFileAtomic(path.join(this.dir, name), JSON.stringify(value) + '\n');
  }

  close(): void {
    this.metrics.close();
  }
}
