/**
 * The worker's side of the run protocol (src/protocol/worker.ts): one run,
 * driven through the training loop's `RunControl`. Commands set requests
 * that the loop takes up at the next step boundary; a pause is an awaited
 * promise, so a paused worker uses no CPU, and resuming continues the very
 * same in-memory run.
 */
import * as path from 'node:path';
import { ConfigError, resolveConfig, validateConfig } from '../core/train/config';
import { WriteError } from '../core/runs/jsonl';
import { createBranch } from '../core/runs/lineage';
import { readRunJson, type RunRecord } from '../core/runs/record';
import { createRun, resumeRun, type BoundaryDecision, type CheckpointInfo, type RunControl, type TrainResult } from '../core/train/run';
import type { TrainHooks } from '../core/train/trainer';
import {
  parseWorkerCommand,
  workerProtocolVersion,
  type CheckpointReport,
  type ErrorKind,
  type RunIdentity,
  type RunState,
  type StatusReason,
  type WorkerCommand,
  type WorkerEvent,
} from '../protocol/worker';

/** How the session reaches its host: the IPC channel in the worker process, a fake in tests. */
export interface HostChannel {
  send(event: WorkerEvent): void;
  /** Ends the worker once the events sent so far are delivered. */
  exit(code: number): void;
}

function identity(dir: string): RunIdentity | undefined {
  try {
    const run = readRunJson(dir);
    return { id: run.id, dir: path.resolve(dir), parent: run.parent, forkStep: run.forkStep };
  } catch {
    return undefined;
  }
}

export class WorkerSession {
  private state: RunState | 'idle' = 'idle';
  private reason: StatusReason | undefined;
  private run: RunIdentity | undefined;
  /** The open run's record (run.json says `paused` while the run waits). */
  private record: RunRecord | undefined;
  private step = 0;
  private totalSteps = 0;
  private checkpoint: CheckpointReport | undefined;
  /** What the host asked for, taken up at the next step boundary. */
  private readonly requests = { pause: false, stop: false, shutdown: false, checkpoint: false };
  /** Resolves the awaited pause. */
  private wake: (() => void) | undefined;

  constructor(private readonly host: HostChannel) {}

  /** Entry for every message from the host: validated, then handled; a bad one is answered with an error event. */
  receive(message: unknown): void {
    const parsed = parseWorkerCommand(message);
    if (!parsed.ok) {
      this.error('protocol', `The worker ignored a malformed message: ${parsed.problem}`);
      return;
    }
    this.handle(parsed.message);
  }

  /** A fatal error outside the run's own error handling: report it and go (the host marks the run interrupted). */
  crash(error: unknown): void {
    this.error('run', `The worker crashed: ${(error as Error)?.message ?? String(error)}`, (error as Error)?.stack);
    this.host.exit(1);
  }

  private get live(): boolean {
    return this.state === 'starting' || this.state === 'running' || this.state === 'paused';
  }

  private handle(command: WorkerCommand): void {
    switch (command.type) {
      case 'start':
      case 'branch':
        if (this.state !== 'idle') {
          this.error('command', `This worker already has a run (${this.run?.dir ?? 'starting'}); each run gets its own worker.`);
          return;
        }
        void this.execute(command);
        return;
      case 'pause':
        if (!this.live) return this.notLive(command.type);
        if (this.state === 'paused') this.status();
        else this.requests.pause = true;
        return;
      case 'resume':
        if (!this.live) return this.notLive(command.type);
        this.requests.pause = false;
        if (this.state === 'paused') this.wakeUp();
        else this.status();
        return;
      case 'stop':
        if (!this.live) return this.notLive(command.type);
        this.requests.stop = true;
        this.setState('stopping');
        this.wakeUp();
        return;
      case 'checkpoint-now':
        if (!this.live) return this.notLive(command.type);
        // A paused run was checkpointed when it paused.
        if (this.state === 'paused' && this.reason === 'requested') this.status();
        else this.requests.checkpoint = true;
        return;
      case 'shutdown':
        if (this.state === 'idle' || this.state === 'finished' || this.state === 'failed') {
          this.host.exit(0);
          return;
        }
        this.requests.shutdown = true;
        this.wakeUp();
        return;
      default: {
        const unreachable: never = command;
        this.error('protocol', `The worker ignored an unknown command ${JSON.stringify(unreachable)}.`);
      }
    }
  }

  private async execute(command: Extract<WorkerCommand, { type: 'start' | 'branch' }>): Promise<void> {
    this.setState('starting');
    const hooks: TrainHooks = {
      onStage: (message) => this.host.send({ type: 'log', level: 'info', message }),
      onWarning: (message) => this.host.send({ type: 'log', level: 'warning', message }),
      onProgress: (stage, done, total) => this.host.send({ type: 'log', level: 'info', message: stage, progress: { done, total } }),
      onTrain: (line) => {
        this.step = line.step;
        this.host.send({ type: 'metrics', line });
      },
      onEval: (line) => this.host.send({ type: 'metrics', line }),
      onSelection: (line) => this.host.send({ type: 'selection', line: { ...line } }),
    };
    let runDir: string | undefined;
    try {
      let result: TrainResult;
      if (command.type === 'branch') {
        const overrides = validateConfig(command.overrides, 'branch');
        runDir = createBranch({ parentDir: command.parentDir, atStep: command.atStep, overrides, runDir: command.runDir });
        this.run = identity(runDir);
        this.status();
        this.host.send({ type: 'log', level: 'info', message: `Branched ${command.parentDir} at step ${command.atStep} into ${runDir}.` });
        result = await resumeRun(runDir, hooks, this.control);
      } else {
        runDir = command.run.kind === 'new' ? createRun(resolveConfig(validateConfig(command.run.config as Record<string, unknown>, 'start'))) : command.run.runDir;
        this.run = identity(runDir);
        // The host knows the folder from here on, so it can mark the run interrupted if this process dies.
        this.status();
        result = await resumeRun(runDir, hooks, this.control);
      }
      this.end(result.status);
    } catch (error) {
      const kind: ErrorKind = error instanceof ConfigError ? 'config' : error instanceof WriteError ? 'write' : 'run';
      this.run ??= runDir === undefined ? undefined : identity(runDir);
      this.error(kind, (error as Error).message, (error as Error).stack);
      this.setState('failed', 'error');
      this.host.exit(1);
    }
  }

  private end(status: TrainResult['status']): void {
    switch (status) {
      case 'finished':
        this.setState('finished', 'completed');
        break;
      case 'stopped':
        this.setState('finished', 'stopped');
        break;
      case 'paused':
        this.setState('paused', 'shutdown');
        break;
      default: {
        const unreachable: never = status;
        throw new Error(`unknown run outcome ${String(unreachable)}`);
      }
    }
    this.host.exit(0);
  }

  /** The loop's side: requests are taken up here, between steps. */
  private readonly control: RunControl = {
    opened: ({ record, step, totalSteps, resumedFrom }) => {
      this.record = record;
      this.run = runIdentity(record);
      this.step = step;
      this.totalSteps = totalSteps;
      if (resumedFrom) {
        const where = path.resolve(resumedFrom.fromRunDir) === this.run.dir ? 'its checkpoint' : `the parent's checkpoint (${resumedFrom.fromRunDir})`;
        this.host.send({ type: 'log', level: 'info', message: `Continuing from step ${resumedFrom.step}, ${where}.` });
      }
      if (this.state !== 'stopping') this.setState('running');
    },
    atBoundary: async (checkpoint) => {
      // A step can run entirely in microtasks (wasm kernels, in-memory data): let the host's messages in.
      await new Promise((resolve) => setImmediate(resolve));
      const ending = this.ending();
      if (ending) return ending;
      if (this.requests.checkpoint) {
        this.requests.checkpoint = false;
        const info = await checkpoint();
        // A fresh one was reported by `checkpointed`.
        if (!info.written) this.reportCheckpoint(info);
      }
      if (!this.requests.pause) return 'continue';
      this.requests.pause = false;
      this.checkpoint = await checkpoint();
      this.record?.update({ status: 'paused' });
      this.setState('paused', 'requested');
      await this.paused();
      const decision = this.ending() ?? this.continued();
      if (decision === 'continue') this.record?.update({ status: 'running' });
      return decision;
    },
    writeFailed: async (error) => {
      this.error('write', error.message, (error.cause as Error | undefined)?.message);
      const ending = this.ending();
      if (ending) return ending;
      this.setState('paused', 'write-failed');
      await this.paused();
      return this.ending() ?? this.continued();
    },
    checkpointed: (info) => this.reportCheckpoint(info),
  };

  private ending(): BoundaryDecision | undefined {
    if (this.requests.stop) return 'stop';
    if (this.requests.shutdown) return 'suspend';
    return undefined;
  }

  private continued(): 'continue' {
    this.setState('running');
    return 'continue';
  }

  private paused(): Promise<void> {
    return new Promise((resolve) => {
      this.wake = resolve;
    });
  }

  private wakeUp(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }

  private reportCheckpoint(info: CheckpointInfo): void {
    this.checkpoint = info;
    this.step = info.step;
    this.status();
  }

  private setState(state: RunState, reason?: StatusReason): void {
    this.state = state;
    this.reason = reason;
    this.status();
  }

  private status(): void {
    if (this.state === 'idle') return;
    this.host.send({
      type: 'status',
      protocol: workerProtocolVersion,
      state: this.state,
      ...(this.reason ? { reason: this.reason } : {}),
      ...(this.run ? { run: this.run } : {}),
      step: this.step,
      totalSteps: this.totalSteps,
      ...(this.checkpoint ? { checkpoint: this.checkpoint } : {}),
    });
  }

  private notLive(command: string): void {
    const now = this.state === 'idle' ? 'no run has been started' : `the run is ${this.state}`;
    this.error('command', `Cannot ${command}: ${now}.`);
  }

  private error(kind: ErrorKind, message: string, detail?: string): void {
    this.host.send({ type: 'error', kind, message, ...(detail ? { detail } : {}) });
  }
}

function runIdentity(record: RunRecord): RunIdentity {
  const { id, parent, forkStep } = record.run;
  return { id, dir: path.resolve(record.dir), parent, forkStep };
}
