/**
 * A training run, top to bottom: open the run and its trainer (from the
 * newest whole checkpoint when there is one), step until done with periodic
 * eval and checkpoints, then write the summary. This is the one training
 * loop: tests call it in-process, the worker calls it with a `RunControl`
 * that pauses, stops and checkpoints it at step boundaries.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { checkpointDir } from '../runs/checkpoint';
import { readJsonl, WriteError } from '../runs/jsonl';
import { openRunJson, resumePoint, type ResumePoint } from '../runs/lineage';
import { newRunId, processAlive, RunRecord, type EvalMetrics, type MetricLine, type RunStatus } from '../runs/record';
import { ConfigError, savedConfig, type TrainConfig } from './config';
import { Trainer, type TrainHooks } from './trainer';

export interface TrainResult {
  runDir: string;
  /** Evals run by this call (a resumed run's earlier ones are in metrics.jsonl). */
  evals: EvalMetrics[];
  /** finished: all steps done; stopped: ended early by request; paused: checkpointed and left to resume later. */
  status: 'finished' | 'stopped' | 'paused';
}

export interface CheckpointInfo {
  step: number;
  dir: string;
  bytes: number;
  /** Time it took to write; 0 when the checkpoint at this step already existed. */
  ms: number;
  /** False when the checkpoint at this step already existed (it is not written twice). */
  written: boolean;
}

export interface OpenedRun {
  record: RunRecord;
  step: number;
  totalSteps: number;
  /** The checkpoint training continues from; undefined: from step 0. */
  resumedFrom?: ResumePoint;
}

/** What a step boundary may do: go on, end the run early (stopped), or leave it paused for later. */
export type BoundaryDecision = 'continue' | 'stop' | 'suspend';

/** Drives a run from outside (the worker): pause, stop and checkpoint-now happen at step boundaries. */
export interface RunControl {
  opened?(run: OpenedRun): void;
  /**
   * Awaited before every step (a pause is this promise not resolving yet).
   * `checkpoint` writes one at the current step unless it exists. On `stop`
   * and `suspend` the loop checkpoints before it ends.
   */
  atBoundary(checkpoint: () => Promise<CheckpointInfo>): Promise<BoundaryDecision>;
  /**
   * A write to the run folder failed for a reason the user can fix (disk full,
   * read-only). `continue` reopens the run from its newest whole checkpoint.
   */
  writeFailed(error: WriteError): Promise<BoundaryDecision>;
  checkpointed?(checkpoint: CheckpointInfo): void;
}

/** Creates the folder and run.json of a new run in `config.runDir` (default `.sift/runs/<id>`); returns the folder. */
export function createRun(config: TrainConfig): string {
  const runDir = config.runDir || path.join('.sift', 'runs', newRunId());
  if (fs.existsSync(path.join(runDir, 'run.json'))) {
    throw new ConfigError(`${runDir} already holds a run. Continue it with sift resume ${runDir}, branch it, or choose another --run-dir.`);
  }
  RunRecord.create(runDir, config).close();
  return runDir;
}

/** Trains a new run: `createRun`, then the loop from step 0. */
export async function trainRun(config: TrainConfig, hooks: TrainHooks = {}, control?: RunControl): Promise<TrainResult> {
  return resumeRun(createRun(config), hooks, control);
}

/**
 * Continues the run in `runDir` from its newest whole checkpoint (a branch
 * without one: from its parent's fork checkpoint; none: from step 0). Lines
 * its logs hold past that step are dropped first, so the steps it takes
 * again are written once — and, the run being deterministic, identically.
 */
export async function resumeRun(runDir: string, hooks: TrainHooks = {}, control?: RunControl): Promise<TrainResult> {
  const evals: EvalMetrics[] = [];
  for (;;) {
    try {
      const status = await trainFromCheckpoint(runDir, hooks, control, evals);
      return { runDir, evals, status };
    } catch (error) {
      if (!(error instanceof WriteError) || !control) throw Object.assign(error as Error, { runDir });
      const decision = await control.writeFailed(error);
      if (decision !== 'continue') {
        const status = decision === 'stop' ? 'stopped' : 'paused';
        markStatus(runDir, status);
        return { runDir, evals, status };
      }
      // Space is back (or so the user says): reopen from what is whole on disk.
    }
  }
}

/** Best effort: the disk that just failed may still refuse this write. */
function markStatus(runDir: string, status: RunStatus): void {
  try {
    const record = RunRecord.open(runDir);
    record.update({ status });
    record.close();
  } catch {
    // The run stays as it was on disk; its newest whole checkpoint is what resume uses.
  }
}

async function trainFromCheckpoint(runDir: string, hooks: TrainHooks, control: RunControl | undefined, evals: EvalMetrics[]): Promise<TrainResult['status']> {
  const run = openRunJson(runDir, 'resume');
  if (run.pid !== undefined && run.pid !== process.pid && ['starting', 'running', 'paused'].includes(run.status) && processAlive(run.pid)) {
    throw new ConfigError(`${runDir} is being trained by process ${run.pid} (status: ${run.status}). Pause or stop it there, or end that process, before resuming it here.`);
  }
  if (run.status === 'finished') throw new ConfigError(`${runDir} already finished (${run.config.steps} steps). To train on from it, branch it: sift branch ${runDir} --at-step ${run.config.steps} --set steps=${2 * run.config.steps}`);
  const config = savedConfig(run.config);
  const from = resumePoint(runDir, run);
  const record = RunRecord.open(runDir, from?.step ?? 0);
  // Claimed before the (slow) start-up: a second process asked to resume it meanwhile sees this one alive.
  record.update({ status: 'starting', pid: process.pid });
  // After a retried write failure, evals past the checkpoint are taken again.
  evals.splice(0, evals.length, ...evals.filter((line) => line.step <= (from?.step ?? 0)));
  let trainer: Trainer | undefined;
  try {
    trainer = await Trainer.open(config, record, hooks, from);
    record.update({ status: 'running', error: undefined, pid: process.pid });
    control?.opened?.({ record, step: trainer.step, totalSteps: config.steps, resumedFrom: from });
    const opened = trainer;
    const checkpoint = async (): Promise<CheckpointInfo> => {
      const dir = checkpointDir(runDir, opened.step);
      if (fs.existsSync(path.join(dir, 'state.json'))) return { step: opened.step, dir, bytes: folderBytes(dir), ms: 0, written: false };
      const written = await opened.checkpoint(record.pinnedCheckpoints());
      const info = { step: opened.step, dir: written.dir, bytes: written.bytes, ms: written.ms, written: true };
      control?.checkpointed?.(info);
      return info;
    };

    while (!trainer.done) {
      const decision = control ? await control.atBoundary(checkpoint) : 'continue';
      if (decision !== 'continue') {
        await checkpoint();
        const status = decision === 'stop' ? 'stopped' : 'paused';
        record.update({ status });
        return status;
      }
      await trainer.trainStep();
      if (trainer.evalDue) evals.push(await trainer.evaluate());
      if (trainer.checkpointDue) await checkpoint();
    }

    const counters = trainer.counters;
    const finalEval = evals[evals.length - 1] ?? lastEval(runDir);
    record.update({
      status: 'finished',
      summary: { steps: counters.step, examplesSeen: counters.examplesSeen, wallSeconds: counters.activeSeconds, finalEval, skippedSteps: counters.skippedSteps },
    });
    return 'finished';
  } catch (error) {
    if (error instanceof WriteError) {
      try {
        record.update({ status: 'paused', error: { message: error.message } });
      } catch {
        // Expected: the folder refuses writes.
      }
    } else {
      record.update({ status: 'failed', error: { message: (error as Error).message, detail: (error as Error).stack } });
    }
    throw error;
  } finally {
    record.close();
    await trainer?.close();
  }
}

/** The last eval line on disk: a run resumed at its final checkpoint evaluated before it was interrupted. */
function lastEval(runDir: string): EvalMetrics | undefined {
  const rows = readJsonl<MetricLine>(path.join(runDir, 'metrics.jsonl')).rows;
  return rows.filter((row): row is EvalMetrics => row.type === 'eval').pop();
}

function folderBytes(dir: string): number {
  return fs.readdirSync(dir).reduce((sum, name) => sum + fs.statSync(path.join(dir, name)).size, 0);
}

