/**
 * Executing one code cell of a Sift notebook: a run (or reference) cell
 * starts a run, a branch cell branches one, a compare cell compares runs.
 * Runs go through the editor's RunManager — the same workers, Runs view and
 * status bar as a run started from the palette — and a cell's execution
 * lasts as long as its run trains, so "Run All" runs the cells in order and
 * an "@label" below always finds the run it names finished.
 *
 * Interrupting a cell pauses its run (checkpointed); running the cell again
 * asks whether to resume that run or start a new one. A cell's failure (bad
 * JSON, a setting out of range, data that cannot be read) becomes a readable
 * error output of that cell only.
 *
 * No editor imports: the controller adapts this to the editor's cell
 * executions, and the tests drive it against real workers.
 */
import * as path from 'node:path';
import { listCheckpoints } from '../core/runs/checkpoint';
import { ConfigError, type TrainConfig } from '../core/train/config';
import { newRunId } from '../core/runs/record';
import { newRunConfig, referenceRunConfig, type SiftSettings } from '../extension/runConfig';
import { RunBusyError, type LiveRun, type ManagerEvent, type RunManager, type RunRequest } from '../extension/runManager';
import type { RunOutputData } from '../protocol/notebook';
import { CellError, parseCell, resolveRef, type CellRequest } from './cells';
import {
  compareOutput,
  errorOutput,
  labelOf,
  labelledRuns,
  lastLines,
  resolveSavedDir,
  runOutput,
  runOutputOf,
  summaryOf,
  tryRunJson,
  type CellOutput,
} from './outputs';

/** A code cell as the executor sees it. */
export interface CellInput {
  /** Position in the notebook (0-based); errors say "cell N" counting from 1. */
  index: number;
  source: string;
  outputs: readonly CellOutput[];
}

/** What a cell's execution can do to its cell and ask of the user. */
export interface CellIO {
  /** Replaces the cell's outputs. */
  replace(outputs: CellOutput[]): void;
  /** Aborted when the user interrupts the cell. */
  signal: AbortSignal;
  /** A choice for the user (a modal question); undefined when dismissed. */
  ask(message: string, choices: string[]): Promise<string | undefined>;
}

/** How an execution ended: true succeeded, false failed, undefined neither (paused, stopped, dismissed). */
export type CellResult = boolean | undefined;

export interface ExecutorOptions {
  manager: RunManager;
  /** Where runs start: relative data, reference and run folders resolve against it (the workspace folder). */
  cwd: string;
  /** The notebook's folder: saved run folders are relative to it. */
  notebookDir: string;
  settings: () => SiftSettings;
  /** Runs start only in a trusted workspace. */
  trusted: () => boolean;
  /** Least time between two output updates while a run trains. */
  updateIntervalMs?: number;
}

export const untrustedMessage =
  'Sift starts no training run in an untrusted workspace: a run configuration can point the trainer at any file or folder. Trust this workspace to run this cell. Compare cells work without it.';

/** Errors the user can fix, shown as "name: message" in the cell. */
const errorName = (error: unknown): string => (error instanceof CellError || error instanceof ConfigError ? 'Cell error' : 'Sift');

export class NotebookExecutor {
  private readonly updateIntervalMs: number;

  constructor(private readonly options: ExecutorOptions) {
    this.updateIntervalMs = options.updateIntervalMs ?? 1000;
  }

  /** Executes `cell`; `earlier` are the code cells above it (their outputs say what each "@label" is). */
  async execute(cell: CellInput, earlier: readonly CellInput[], io: CellIO): Promise<CellResult> {
    const where = `cell ${cell.index + 1}`;
    try {
      const request = parseCell(cell.source, where);
      const labels = labelledRuns(earlier, this.options.notebookDir);
      switch (request.type) {
        case 'compare':
          return await this.compare(request, labels, where, io);
        case 'run':
        case 'branch':
          if (!this.options.trusted()) {
            io.replace([errorOutput('Untrusted workspace', untrustedMessage)]);
            return false;
          }
          return await this.train(cell, request, labels, where, io);
        default: {
          const unreachable: never = request;
          throw new Error(`unknown cell request ${JSON.stringify(unreachable)}`);
        }
      }
    } catch (error) {
      io.replace([errorOutput(errorName(error), (error as Error).message)]);
      return false;
    }
  }

  private async compare(request: Extract<CellRequest, { type: 'compare' }>, labels: ReadonlyMap<string, string>, where: string, io: CellIO): Promise<CellResult> {
    const dirs = request.runs.map((ref) => path.resolve(this.options.cwd, resolveRef(ref, labels, where)));
    const names = request.runs.map((ref) => (ref.startsWith('@') ? ref.slice(1) : undefined));
    try {
      io.replace([await compareOutput(dirs, names, { metric: request.metric, target: request.target, notebookDir: this.options.notebookDir })]);
    } catch (error) {
      throw new CellError(`${where}: ${(error as Error).message}`);
    }
    return true;
  }

  private async train(cell: CellInput, request: Extract<CellRequest, { type: 'run' | 'branch' }>, labels: ReadonlyMap<string, string>, where: string, io: CellIO): Promise<CellResult> {
    const kind: RunOutputData['cell'] = request.type === 'branch' ? 'branch' : request.reference ? 'reference' : 'run';
    const label = request.label ?? labelOf(cell.source);
    const previous = runOutputOf(cell.outputs);
    if (previous) {
      const again = await this.again(previous, io);
      if (again === 'dismissed') return undefined;
      if (again) return this.follow(again, { cell: kind, label }, io);
    }
    const runRequest = this.runRequest(request, labels, where, label);
    const run = await this.start(runRequest, io);
    if (!run) return undefined;
    return this.follow(run, { cell: kind, label }, io);
  }

  /**
   * The cell ran before: its run, live and paused or resumable on disk,
   * resumed if the user says so; undefined to start a new run.
   */
  private async again(previous: RunOutputData, io: CellIO): Promise<LiveRun | undefined | 'dismissed'> {
    const dir = resolveSavedDir(previous.dir, this.options.notebookDir);
    const live = this.options.manager.find(dir);
    if (live && live.state !== 'paused') return live; // it trains (resumed from the Runs view): follow it again
    const json = tryRunJson(dir);
    const resumable = live !== undefined || (json !== undefined && ['paused', 'stopped', 'interrupted'].includes(json.status) && listCheckpoints(dir).length > 0);
    if (!resumable) return undefined;
    const step = live?.step ?? json?.summary?.steps ?? previous.step;
    const total = live?.totalSteps || json?.config.steps || previous.totalSteps;
    const state = live?.state ?? json?.status ?? previous.status;
    const choice = await io.ask(`${previous.id} is ${state} at step ${step}/${total}. Resume it, or start a new run from this cell?`, ['Resume', 'Start New Run']);
    if (choice === undefined) return 'dismissed';
    if (choice !== 'Resume') return undefined;
    if (live) {
      this.options.manager.resume(live);
      return live;
    }
    return (await this.start({ kind: 'resume', runDir: dir }, io)) ?? 'dismissed';
  }

  /** The worker request for a run or branch cell: "@label"s resolved, settings layered, the run folder named after the label. */
  private runRequest(request: Extract<CellRequest, { type: 'run' | 'branch' }>, labels: ReadonlyMap<string, string>, where: string, label: string | undefined): RunRequest {
    const { cwd } = this.options;
    const settings = this.options.settings();
    const runId = label ? `${newRunId()}-${label}` : newRunId();
    const resolveReference = (config: Record<string, unknown>): Record<string, unknown> =>
      typeof config.reference === 'string' && config.reference.startsWith('@') ? { ...config, reference: resolveRef(config.reference, labels, `${where} "reference"`) } : config;
    if (request.type === 'branch') {
      const parentDir = path.resolve(cwd, resolveRef(request.parent, labels, `${where} "branch"`));
      const parent = tryRunJson(parentDir);
      if (!parent) throw new CellError(`${where}: "branch" names ${request.parent}, but ${parentDir} holds no run.`);
      const kept = listCheckpoints(parentDir);
      if (!kept.includes(request.atStep)) {
        throw new CellError(
          kept.length === 0
            ? `${where}: ${parent.id} has no checkpoint yet to branch from (they are written every ${parent.config.checkpointEvery} steps and when it pauses).`
            : `${where}: ${parent.id} has no checkpoint at step ${request.atStep}. Set "at_step" to one it kept: ${kept.join(', ')}.`,
        );
      }
      const set = resolveReference(request.set);
      const steps = typeof set.steps === 'number' ? set.steps : parent.config.steps;
      if (steps <= request.atStep) throw new CellError(`${where}: the branch starts at step ${request.atStep} but would train to ${steps}. Add "steps": ${request.atStep + parent.config.steps} to "set".`);
      return { kind: 'branch', parentDir, atStep: request.atStep, overrides: set, runDir: path.join(path.dirname(parentDir), runId) };
    }
    const config = resolveReference(request.config as Record<string, unknown>);
    if (request.reference) {
      const { data, ...shape } = config as Partial<TrainConfig>;
      return { kind: 'new', reference: true, config: referenceRunConfig(shape, where, data ?? 'builtin:curated', { settings, workspace: cwd, runId }) };
    }
    return { kind: 'new', config: newRunConfig(config, where, { settings, workspace: cwd, runId }) };
  }

  /** Starts a worker; when another run trains, asks before starting alongside it. */
  private async start(request: RunRequest, io: CellIO): Promise<LiveRun | undefined> {
    const { manager, cwd } = this.options;
    try {
      return manager.start(request, { cwd });
    } catch (error) {
      if (!(error instanceof RunBusyError)) throw error;
      const busy = error.training.run?.id ?? 'Another run';
      const choice = await io.ask(`${busy} is training. Start this cell's run alongside it? Each run has its own worker; both train more slowly.`, ['Start Alongside']);
      if (choice !== 'Start Alongside' || io.signal.aborted) return undefined;
      return manager.start(request, { cwd, alongside: true });
    }
  }

  /**
   * Shows a run in the cell while it trains, until it ends or pauses:
   * throttled output updates, the worker's errors at the end. An interrupt
   * pauses the run.
   */
  private follow(run: LiveRun, cell: { cell: RunOutputData['cell']; label?: string }, io: CellIO): Promise<CellResult> {
    const { manager, notebookDir } = this.options;
    return new Promise<CellResult>((resolve) => {
      const errors: string[] = [];
      let base: { dir: string; summary: ReturnType<typeof summaryOf> } | undefined;
      let lastUpdate = 0;
      let timer: ReturnType<typeof setTimeout> | undefined;

      const liveOutput = (message?: string): CellOutput[] => {
        const dir = run.run?.dir;
        const json = dir ? tryRunJson(dir) : undefined;
        if (!dir || !json) return [];
        if (base?.dir !== dir) base = { dir, summary: summaryOf(lastLines(dir)) };
        const summary = summaryOf({ train: run.lastTrain, eval: run.lastEval });
        const merged = run.lastEval || run.lastTrain ? { ...base.summary, ...summary, metrics: run.lastEval ? summary.metrics : base.summary.metrics } : base.summary;
        return [runOutput(dir, json, { ...cell, notebookDir, status: run.state, step: run.step, totalSteps: run.totalSteps || undefined, summary: merged, message })];
      };
      const update = (): void => {
        clearTimeout(timer);
        timer = undefined;
        lastUpdate = Date.now();
        const outputs = liveOutput(run.stage && run.state === 'starting' ? `${run.stage.message}…` : undefined);
        if (outputs.length) io.replace(outputs);
      };
      const scheduleUpdate = (): void => {
        const wait = this.updateIntervalMs - (Date.now() - lastUpdate);
        if (wait <= 0) update();
        else timer ??= setTimeout(update, wait);
      };
      const finish = (result: CellResult, outputs: CellOutput[]): void => {
        clearTimeout(timer);
        unsubscribe();
        io.signal.removeEventListener('abort', onAbort);
        io.replace(outputs);
        resolve(result);
      };
      const onAbort = (): void => {
        if (run.state === 'running' || run.state === 'starting') manager.pause(run);
      };

      const unsubscribe = manager.onEvent((event: ManagerEvent) => {
        if (event.run !== run) return;
        switch (event.type) {
          case 'changed':
            if (run.state === 'paused' && run.reason !== 'shutdown') {
              const at = run.checkpoint ? ` (checkpoint at step ${run.checkpoint.step})` : '';
              const why = run.reason === 'write-failed' ? `Writing failed: ${errors.at(-1) ?? 'see the log'}. Fix that, then run the cell again and choose Resume.` : 'Run the cell again to resume it or start a new run.';
              const outputs = liveOutput(`Paused at step ${run.step}${at}. ${why}`);
              finish(undefined, outputs.length ? outputs : [errorOutput('Sift', 'The run paused before it had a folder.')]);
            } else {
              scheduleUpdate();
            }
            return;
          case 'worker':
            if (event.event.type === 'error') errors.push(event.event.message);
            return;
          case 'exited':
            finish(...this.ended(run, cell, errors));
            return;
          default: {
            const unreachable: never = event;
            throw new Error(`unknown manager event ${JSON.stringify(unreachable)}`);
          }
        }
      });
      io.signal.addEventListener('abort', onAbort);
      if (io.signal.aborted) onAbort();
      if (run.exit) finish(...this.ended(run, cell, errors));
      else update();
    });
  }

  /** The cell's outputs once the run's worker is gone: the run as its record says, and what went wrong. */
  private ended(run: LiveRun, cell: { cell: RunOutputData['cell']; label?: string }, errors: string[]): [CellResult, CellOutput[]] {
    const dir = run.run?.dir;
    const json = dir ? tryRunJson(dir) : undefined;
    const problems = [...new Set(errors)];
    if (!run.exit?.clean && run.exit?.reason) problems.push(run.exit.reason);
    const state = run.exit?.clean ? run.exit.lastStatus : undefined;
    const result: CellResult = run.state === 'finished' && run.reason === 'completed' ? true : run.state === 'finished' ? undefined : false;
    const message =
      result === true
        ? undefined
        : run.state === 'finished'
          ? `Stopped at step ${run.step}, checkpointed. Run the cell again to resume it or start a new run.`
          : state?.state === 'paused'
            ? 'The window closed while it trained: it is paused on disk. Run the cell again to resume it.'
            : undefined;
    const outputs: CellOutput[] = [];
    if (dir && json) outputs.push(runOutput(dir, json, { ...cell, notebookDir: this.options.notebookDir, message }));
    if (result === false) outputs.push(errorOutput(json ? 'Run failed' : 'Cell error', problems.join('\n') || 'The run failed; see the Sift log.'));
    return [result, outputs];
  }
}
