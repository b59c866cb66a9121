/**
 * The run protocol between a host (the editor or the CLI) and the training
 * worker it forks (DESIGN.md, "Messages"). Every message either way is
 * declared here as one member of a discriminated union on `type`; the
 * receiver validates what crossed the process boundary with the parsers
 * below, and answers a malformed message with an error event, never a crash.
 *
 * Lifecycle: a worker runs one run. The host sends `start` (a new run or a
 * run on disk to resume) or `branch`; the worker reports `status` through
 *
 *     starting → running ⇄ paused → stopping → finished | failed
 *
 * and exits by itself after `finished` or `failed`, or after `shutdown`
 * (a final `paused` status with reason `shutdown`: checkpointed, resumable).
 * Pause, stop and checkpoint-now take effect at the next step boundary.
 */
import type { MetricLine } from '../core/runs/record';
import type { TrainConfig } from '../core/train/config';
import { Check, describe, isObject, isStep, type Parsed } from './check';

/** Bumped when a message changes shape; `start`, `branch` and every `status` carry it. */
export const workerProtocolVersion = 1;

// ---- host → worker ---------------------------------------------------------

/**
 * What `start` runs: a new run from settings (defaults fill the rest; the
 * worker validates them), or the run in a folder, continued from its newest
 * whole checkpoint.
 */
export type RunSpec = { kind: 'new'; config: Partial<TrainConfig> } | { kind: 'resume'; runDir: string };

export type WorkerCommand =
  /** Host → worker, first: train a run. */
  | { type: 'start'; protocol: number; run: RunSpec }
  /**
   * Host → worker, first (instead of `start`): make a branch of the run in
   * `parentDir` at its checkpoint `atStep`, with `overrides` changed, and train it.
   */
  | { type: 'branch'; protocol: number; parentDir: string; atStep: number; overrides: Record<string, unknown>; runDir?: string }
  /** Checkpoint at the next step boundary, then wait (costs nothing) until `resume`, `stop` or `shutdown`. */
  | { type: 'pause' }
  /** Continue a paused run (after a write failure: reopen it from its newest whole checkpoint). */
  | { type: 'resume' }
  /** End the run early at the next boundary, checkpointed (status `finished` with reason `stopped`). */
  | { type: 'stop' }
  /** Write a checkpoint at the next boundary; answered by a `status` carrying it. */
  | { type: 'checkpoint-now' }
  /** The host is going away: checkpoint, leave the run paused on disk, exit. */
  | { type: 'shutdown' };

export type WorkerCommandType = WorkerCommand['type'];

// ---- worker → host ---------------------------------------------------------

export type RunState = 'starting' | 'running' | 'paused' | 'stopping' | 'finished' | 'failed';

/**
 * Why a run paused or ended: `requested` (a pause command), `write-failed`
 * (disk full or read-only: fix it and resume), `shutdown`, `completed`
 * (every step done), `stopped` (a stop command), `error`.
 */
export type StatusReason = 'requested' | 'write-failed' | 'shutdown' | 'completed' | 'stopped' | 'error';

export interface RunIdentity {
  id: string;
  dir: string;
  parent: string | null;
  forkStep: number | null;
}

export interface CheckpointReport {
  step: number;
  dir: string;
  bytes: number;
  /** Time the write took; 0 when a checkpoint at that step already existed. */
  ms: number;
  /** False when it already existed (a checkpoint is never written twice). */
  written: boolean;
}

export interface StatusEvent {
  type: 'status';
  protocol: number;
  state: RunState;
  reason?: StatusReason;
  /** Known once the run folder exists. */
  run?: RunIdentity;
  /** Steps done so far. */
  step: number;
  totalSteps: number;
  /** The newest checkpoint written (or found) by this worker. */
  checkpoint?: CheckpointReport;
}

/** Kinds of error: `protocol` (a malformed or unknown message), `command` (not valid now), `config` (the user's settings or paths), `write` (disk full, read-only), `run` (training failed). */
export type ErrorKind = 'protocol' | 'command' | 'config' | 'write' | 'run';

export type WorkerEvent =
  | StatusEvent
  /** One metrics.jsonl line, as written. */
  | { type: 'metrics'; line: MetricLine }
  /** One selections.jsonl line (a step's picks), as written; opaque here. */
  | { type: 'selection'; line: Record<string, unknown> }
  /** A stage or warning for the user; `progress` when the stage (`message`) counts up to a total. */
  | { type: 'log'; level: 'info' | 'warning'; message: string; progress?: { done: number; total: number } }
  /** `message` is for the user, in their terms; `detail` is for a bug report. */
  | { type: 'error'; kind: ErrorKind; message: string; detail?: string };

export type WorkerEventType = WorkerEvent['type'];

// ---- validation ------------------------------------------------------------


const protocolFix = 'The editor and the worker come from different Sift builds: reinstall or rebuild.';

const commandTypes: readonly WorkerCommandType[] = ['start', 'branch', 'pause', 'resume', 'stop', 'checkpoint-now', 'shutdown'];

/** Validates a message the worker received. The config of a new run is only shape-checked here; the worker validates its settings. */
export function parseWorkerCommand(value: unknown): Parsed<WorkerCommand> {
  if (!isObject(value)) return { ok: false, problem: `a command must be an object, not ${describe(value)}.` };
  const type = value.type as WorkerCommandType;
  if (!commandTypes.includes(type)) return { ok: false, problem: `unknown command type ${describe(value.type)}; known: ${commandTypes.join(', ')}.` };
  const check = new Check(value, `command "${type}"`);
  switch (type) {
    case 'start':
      check.version(workerProtocolVersion, protocolFix).field(
        'run',
        (run) => isObject(run) && ((run.kind === 'new' && isObject(run.config)) || (run.kind === 'resume' && typeof run.runDir === 'string' && run.runDir !== '')),
        '{ kind: "new", config: {...} } or { kind: "resume", runDir: "<folder>" }',
      );
      return check.result();
    case 'branch':
      check
        .version(workerProtocolVersion, protocolFix)
        .field('parentDir', (v) => typeof v === 'string' && v !== '', 'the parent run folder')
        .field('atStep', isStep, 'a checkpoint step (a whole number ≥ 0)')
        .field('overrides', isObject, 'an object of settings')
        .field('runDir', (v) => typeof v === 'string', 'a folder', true);
      return check.result();
    case 'pause':
    case 'resume':
    case 'stop':
    case 'checkpoint-now':
    case 'shutdown':
      return check.result();
    default: {
      const unreachable: never = type;
      return { ok: false, problem: `unknown command type ${describe(unreachable)}.` };
    }
  }
}

const eventTypes: readonly WorkerEventType[] = ['status', 'metrics', 'selection', 'log', 'error'];
const runStates: readonly RunState[] = ['starting', 'running', 'paused', 'stopping', 'finished', 'failed'];
const statusReasons: readonly StatusReason[] = ['requested', 'write-failed', 'shutdown', 'completed', 'stopped', 'error'];
const errorKinds: readonly ErrorKind[] = ['protocol', 'command', 'config', 'write', 'run'];

const isRunIdentity = (v: unknown): boolean =>
  isObject(v) && typeof v.id === 'string' && typeof v.dir === 'string' && (v.parent === null || typeof v.parent === 'string') && (v.forkStep === null || isStep(v.forkStep));
const isCheckpoint = (v: unknown): boolean => isObject(v) && isStep(v.step) && typeof v.dir === 'string' && typeof v.bytes === 'number' && typeof v.ms === 'number' && typeof v.written === 'boolean';
const isMetricLine = (v: unknown): boolean => isObject(v) && (v.type === 'train' || v.type === 'eval') && isStep(v.step);

/** Validates a message the host received from the worker. */
export function parseWorkerEvent(value: unknown): Parsed<WorkerEvent> {
  if (!isObject(value)) return { ok: false, problem: `an event must be an object, not ${describe(value)}.` };
  const type = value.type as WorkerEventType;
  if (!eventTypes.includes(type)) return { ok: false, problem: `unknown event type ${describe(value.type)}; known: ${eventTypes.join(', ')}.` };
  const check = new Check(value, `event "${type}"`);
  switch (type) {
    case 'status':
      check
        .version(workerProtocolVersion, protocolFix)
        .field('state', (v) => runStates.includes(v as RunState), `one of ${runStates.join(', ')}`)
        .field('reason', (v) => statusReasons.includes(v as StatusReason), `one of ${statusReasons.join(', ')}`, true)
        .field('run', isRunIdentity, '{ id, dir, parent, forkStep }', true)
        .field('step', isStep, 'a step')
        .field('totalSteps', isStep, 'a step count')
        .field('checkpoint', isCheckpoint, '{ step, dir, bytes, ms, written }', true);
      return check.result();
    case 'metrics':
      check.field('line', isMetricLine, 'a metrics line ({ type: "train" | "eval", step, ... })');
      return check.result();
    case 'selection':
      check.field('line', isObject, 'a selection line object');
      return check.result();
    case 'log':
      check
        .field('level', (v) => v === 'info' || v === 'warning', '"info" or "warning"')
        .field('message', (v) => typeof v === 'string', 'text')
        .field('progress', (v) => isObject(v) && typeof v.done === 'number' && typeof v.total === 'number', '{ done, total }', true);
      return check.result();
    case 'error':
      check
        .field('kind', (v) => errorKinds.includes(v as ErrorKind), `one of ${errorKinds.join(', ')}`)
        .field('message', (v) => typeof v === 'string', 'text')
        .field('detail', (v) => typeof v === 'string', 'text', true);
      return check.result();
    default: {
      const unreachable: never = type;
      return { ok: false, problem: `unknown event type ${describe(unreachable)}.` };
    }
  }
}
