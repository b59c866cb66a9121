/**
 * The editor's live runs: one forked worker each (src/worker/client.ts, the
 * same class the CLI drives), their state as the worker reports it, and the
 * commands the user gives them. The extension host only relays messages:
 * training, decoding and checkpointing happen in the workers, so a long step
 * or a native crash never freezes the editor.
 *
 * At most one run trains at a time unless the caller says the user asked for
 * another alongside (`alongside`): a second worker halves the speed of both.
 *
 * No editor imports: the worker factory is injected, so the manager is tested
 * with plain Node tests and measured by the host benchmark against real workers.
 */
import * as path from 'node:path';
import type { EvalMetrics, TrainMetrics } from '../core/runs/record';
import type { TrainConfig } from '../core/train/config';
import { workerProtocolVersion, type CheckpointReport, type RunIdentity, type RunState, type StatusReason, type WorkerCommand, type WorkerEvent } from '../protocol/worker';
import type { WorkerExit } from '../worker/client';

/** What the manager needs of a worker: `WorkerClient` has it; tests pass fakes. */
export interface WorkerLike {
  readonly exited: Promise<WorkerExit>;
  send(command: WorkerCommand): void;
  onEvent(listener: (event: WorkerEvent) => void): () => void;
  kill(signal?: NodeJS.Signals): void;
}

/** Forks a worker whose relative paths (data, reference, runs folder) resolve against `cwd`. */
export type WorkerFactory = (options: { cwd: string }) => WorkerLike;

/** What the user asked for: a new run from settings, a run on disk to continue, or a branch of one. */
export type RunRequest =
  | { kind: 'new'; config: Partial<TrainConfig>; reference?: boolean }
  | { kind: 'resume'; runDir: string }
  | { kind: 'branch'; parentDir: string; atStep: number; overrides: Record<string, unknown>; runDir?: string };

export interface LiveRun {
  /** Unique per worker started in this window. */
  readonly key: number;
  readonly request: RunRequest;
  readonly cwd: string;
  state: RunState;
  reason?: StatusReason;
  /** Known once the worker has made or opened the run folder. */
  run?: RunIdentity;
  step: number;
  totalSteps: number;
  checkpoint?: CheckpointReport;
  lastTrain?: TrainMetrics;
  lastEval?: EvalMetrics;
  bestI2tR1?: number;
  /** The stage the worker last reported (start-up, reference embeddings…), until training steps arrive. */
  stage?: { message: string; progress?: { done: number; total: number } };
  /** Set once the worker process is gone. */
  exit?: WorkerExit;
}

export type ManagerEvent =
  /** A run's state, identity or progress changed (coalesce before redrawing). */
  | { type: 'changed'; run: LiveRun }
  /** Every event a worker sent, after the run's state took it in: logs, errors, metric and selection lines for panels. */
  | { type: 'worker'; run: LiveRun; event: WorkerEvent }
  /** The worker process is gone; `run.exit` says how. */
  | { type: 'exited'; run: LiveRun };

/** Thrown by `start` when a run is already training and the user did not ask for another alongside. */
export class RunBusyError extends Error {
  constructor(readonly training: LiveRun) {
    super(`A run is already training (${training.run?.id ?? 'starting'}).`);
    this.name = 'RunBusyError';
  }
}

const trainingStates: ReadonlySet<RunState> = new Set(['starting', 'running', 'stopping']);

export class RunManager {
  private readonly live = new Map<number, LiveRun>();
  private readonly workers = new Map<number, WorkerLike>();
  private readonly listeners = new Set<(event: ManagerEvent) => void>();
  private nextKey = 1;

  constructor(private readonly startWorker: WorkerFactory) {}

  onEvent(listener: (event: ManagerEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Runs whose worker is still alive, oldest first. */
  get runs(): LiveRun[] {
    return [...this.live.values()];
  }

  /** The run the status bar follows: the newest one training, else the newest live one. */
  get active(): LiveRun | undefined {
    const runs = this.runs;
    return runs.filter((run) => trainingStates.has(run.state)).at(-1) ?? runs.at(-1);
  }

  /** The newest run that trains now (starting, running or stopping). */
  get training(): LiveRun | undefined {
    return this.runs.filter((run) => trainingStates.has(run.state)).at(-1);
  }

  /** The live run training the folder `dir`, if any. */
  find(dir: string): LiveRun | undefined {
    const wanted = path.resolve(dir);
    return this.runs.find((run) => run.run?.dir === wanted || (run.request.kind === 'resume' && path.resolve(run.cwd, run.request.runDir) === wanted));
  }

  /**
   * Forks a worker and sends it the request. Throws RunBusyError when another
   * run trains and `alongside` is not set, and refuses a run folder that a
   * worker of this window already has open.
   */
  start(request: RunRequest, options: { cwd: string; alongside?: boolean }): LiveRun {
    const busy = this.training;
    if (busy && !options.alongside) throw new RunBusyError(busy);
    if (request.kind === 'resume') {
      const open = this.find(path.resolve(options.cwd, request.runDir));
      if (open) throw new Error(`${open.run?.id ?? request.runDir} is already open in this window (${open.state}).`);
    }
    const worker = this.startWorker({ cwd: options.cwd });
    const run: LiveRun = { key: this.nextKey++, request, cwd: options.cwd, state: 'starting', step: 0, totalSteps: 0 };
    this.live.set(run.key, run);
    this.workers.set(run.key, worker);
    worker.onEvent((event) => this.take(run, event));
    void worker.exited.then((exit) => {
      run.exit = exit;
      if (!exit.clean && trainingStates.has(run.state)) run.state = 'failed';
      this.live.delete(run.key);
      this.workers.delete(run.key);
      this.emit({ type: 'exited', run });
    });
    worker.send(firstCommand(request));
    this.emit({ type: 'changed', run });
    return run;
  }

  pause(run: LiveRun): void {
    this.command(run, { type: 'pause' });
  }

  resume(run: LiveRun): void {
    this.command(run, { type: 'resume' });
  }

  stop(run: LiveRun): void {
    this.command(run, { type: 'stop' });
  }

  /** The window is closing: every worker checkpoints and leaves its run paused; those that take longer than `graceMs` are killed. */
  async shutdown(graceMs = 4000): Promise<void> {
    const workers = [...this.workers.values()];
    for (const worker of workers) worker.send({ type: 'shutdown' });
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, graceMs);
    });
    await Promise.race([Promise.all(workers.map((worker) => worker.exited)), deadline]);
    clearTimeout(timer);
    for (const worker of this.workers.values()) worker.kill('SIGKILL');
  }

  private command(run: LiveRun, command: WorkerCommand): void {
    const worker = this.workers.get(run.key);
    if (!worker) throw new Error(`${run.run?.id ?? 'The run'} has no worker any more (it ${run.state === 'failed' ? 'failed' : 'ended'}).`);
    worker.send(command);
  }

  private take(run: LiveRun, event: WorkerEvent): void {
    let changed = false;
    switch (event.type) {
      case 'status':
        run.state = event.state;
        run.reason = event.reason;
        if (event.run) run.run = event.run;
        run.step = event.step;
        if (event.totalSteps > 0) run.totalSteps = event.totalSteps;
        if (event.checkpoint) run.checkpoint = event.checkpoint;
        if (event.state !== 'starting') run.stage = undefined;
        changed = true;
        break;
      case 'metrics':
        if (event.line.type === 'train') {
          run.lastTrain = event.line;
          run.step = event.line.step;
          run.stage = undefined;
        } else {
          run.lastEval = event.line;
          if (run.bestI2tR1 === undefined || event.line.i2t_r1 > run.bestI2tR1) run.bestI2tR1 = event.line.i2t_r1;
        }
        changed = true;
        break;
      case 'log':
        if (run.state === 'starting' || event.progress) {
          run.stage = { message: event.message, progress: event.progress };
          changed = true;
        }
        break;
      case 'selection':
      case 'error':
        break;
      default: {
        const unreachable: never = event;
        throw new Error(`unknown worker event ${JSON.stringify(unreachable)}`);
      }
    }
    if (changed) this.emit({ type: 'changed', run });
    this.emit({ type: 'worker', run, event });
  }

  private emit(event: ManagerEvent): void {
    for (const listener of [...this.listeners]) listener(event);
  }
}

function firstCommand(request: RunRequest): WorkerCommand {
  switch (request.kind) {
    case 'new':
      return { type: 'start', protocol: workerProtocolVersion, run: { kind: 'new', config: request.config } };
    case 'resume':
      return { type: 'start', protocol: workerProtocolVersion, run: { kind: 'resume', runDir: request.runDir } };
    case 'branch':
      return { type: 'branch', protocol: workerProtocolVersion, parentDir: request.parentDir, atStep: request.atStep, overrides: request.overrides, runDir: request.runDir };
    default: {
      const unreachable: never = request;
      throw new Error(`unknown run request ${JSON.stringify(unreachable)}`);
    }
  }
}

/** Examples per second and the time left, from active time (set-up, evals and pauses would skew them). */
export function throughput(run: Pick<LiveRun, 'lastTrain' | 'totalSteps'>): { examplesPerSecond: number; etaSeconds: number } | undefined {
  const line = run.lastTrain;
  if (!line || line.active_s <= 0) return undefined;
  const examplesPerSecond = line.examples_seen / line.active_s;
  const secondsPerStep = line.active_s / Math.max(line.step, 1);
  return { examplesPerSecond, etaSeconds: Math.max(0, run.totalSteps - line.step) * secondsPerStep };
}
