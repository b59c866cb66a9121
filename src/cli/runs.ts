/**
 * The CLI's run commands. `train`, `resume` and `branch` all fork the
 * training worker and drive it over the run protocol, as the editor does;
 * `runs` lists a folder of runs as a tree.
 *
 * In a terminal, Ctrl-C pauses at the next step and checkpoints (Enter
 * resumes), a second Ctrl-C stops, a third kills the worker. Without a
 * terminal on stdin, a pause checkpoints and exits with code 3.
 */
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { readJsonl } from '../core/runs/jsonl';
import { branchOverrides, listRuns, openRunJson, type RunListing } from '../core/runs/lineage';
import { describeBackend, readRunJson, type EvalMetrics, type MetricLine, type TrainMetrics } from '../core/runs/record';
import { ConfigError, readConfigFile, type TrainConfig } from '../core/train/config';
import { workerProtocolVersion, type WorkerCommand, type WorkerEvent } from '../protocol/worker';
import { WorkerClient } from '../worker/client';
import { formatCount, formatDuration, table } from './format';

/** How `sift` exits: the shell (and scripts) can tell how a run ended. */
export const exitCodes = {
  finished: 0,
  /** The run failed, or its worker died (run.json then says `interrupted`; resume continues it). */
  failed: 1,
  /** Bad command line, settings or paths: nothing was trained. */
  usage: 2,
  /** Paused and checkpointed (no terminal to wait on, or a write failed): `sift resume` continues. */
  paused: 3,
  /** Stopped by the user (Ctrl-C twice), checkpointed. */
  stopped: 130,
} as const;

export const exitCodesHelp = `Exit codes: 0 finished, 1 failed (or the worker died: the run is marked interrupted),
2 usage or config error, 3 paused (resumable), 130 stopped by the user (Ctrl-C twice).`;

/** One status line while training: rewritten in place on a terminal, every 10% otherwise. */
function progressPrinter(): { train: (line: TrainMetrics, total: number) => void; stage: (label: string, done: number, total: number) => void; done: () => void } {
  const tty = process.stderr.isTTY;
  let lastPrinted = -1;
  let pending = false;
  return {
    train(line, total) {
      // Rates and ETA from active time: set-up, evals and pauses would skew them.
      const rate = line.examples_seen / Math.max(line.active_s, 1e-9);
      const eta = ((total - line.step) * line.active_s) / line.step;
      const scored = line.examples_scored > 0 ? `  (${(line.examples_scored / Math.max(line.active_s, 1e-9)).toFixed(0)} scored/s)` : '';
      const text = `step ${line.step}/${total}  loss ${line.loss.toFixed(4)}  ${rate.toFixed(0)} ex/s${scored}  elapsed ${formatDuration(line.wall_s)}  ETA ${formatDuration(eta)}`;
      if (tty) {
        process.stderr.write(`\r\x1b[2K${text}`);
        pending = true;
      } else {
        const decile = Math.floor((line.step * 10) / total);
        if (decile !== lastPrinted || line.step === 1) {
          lastPrinted = decile;
          process.stderr.write(`${text}\n`);
        }
      }
    },
    stage(label, done, total) {
      if (total <= 0) return;
      const text = `${label}: ${done}/${total} (${((100 * done) / total).toFixed(0)}%)`;
      if (tty) {
        process.stderr.write(`\r\x1b[2K${text}`);
        pending = true;
      } else if (done === total) {
        process.stderr.write(`${text}\n`);
      }
    },
    done() {
      if (pending) process.stderr.write('\n');
      pending = false;
    },
  };
}

const pct = (x: number | undefined): string => (x === undefined ? '-' : `${(100 * x).toFixed(1)}%`);

function evalTable(evals: EvalMetrics[]): string {
  const hasZeroShot = evals.some((e) => e.zeroshot_acc !== undefined);
  const header = ['step', 'examples', 'i2t R@1', 'i2t R@5', 't2i R@1', 't2i R@5', ...(hasZeroShot ? ['zero-shot'] : []), 'chance R@1'];
  const rows = evals.map((e) => [e.step, formatCount(e.examples_seen), pct(e.i2t_r1), pct(e.i2t_r5), pct(e.t2i_r1), pct(e.t2i_r5), ...(hasZeroShot ? [pct(e.zeroshot_acc)] : []), pct(e.chance_r1)]);
  return table(header, rows);
}

function describeEval(e: EvalMetrics): string {
  const zeroShot = e.zeroshot_acc === undefined ? '' : `  zero-shot ${pct(e.zeroshot_acc)}`;
  return `eval @ step ${e.step}: i2t R@1 ${pct(e.i2t_r1)}  t2i R@1 ${pct(e.t2i_r1)}${zeroShot}  (chance ${(100 * e.chance_r1).toFixed(2)}%)`;
}

function printFinished(runDir: string): void {
  const run = readRunJson(runDir);
  const evals = readJsonl<MetricLine>(path.join(runDir, 'metrics.jsonl')).rows.filter((line): line is EvalMetrics => line.type === 'eval');
  process.stdout.write(`\nRun ${run.id} finished: ${runDir}\n`);
  const summary = run.summary;
  if (summary && run.backend && run.model) {
    const rate = summary.examplesSeen / Math.max(summary.wallSeconds, 1e-9);
    process.stdout.write(`backend ${describeBackend(run.backend)}, ${formatCount(run.model.parameters)} parameters, ${summary.steps} steps, ${formatCount(summary.examplesSeen)} examples in ${formatDuration(summary.wallSeconds)} (${rate.toFixed(0)} examples/s incl. eval)\n`);
  }
  if (run.parent !== null) process.stdout.write(`branch of ${run.parent} at step ${run.forkStep}; the evals below are the branch's own\n`);
  if (evals.length > 0) process.stdout.write(`\n${evalTable(evals)}\n`);
}

/**
 * Forks the worker, sends `first`, shows progress, handles Ctrl-C, and
 * returns the exit code for how the run ended.
 */
async function driveWorker(first: WorkerCommand): Promise<number> {
  const progress = progressPrinter();
  const say = (message: string): void => {
    progress.done();
    process.stderr.write(`${message}\n`);
  };
  const interactive = process.stdin.isTTY === true;
  const worker = WorkerClient.start();
  let interrupts = 0;
  let configError = false;
  let totalSteps = 0;
  let waitingForEnter: (() => void) | undefined;

  const stopWaitingForEnter = (): void => {
    waitingForEnter?.();
    waitingForEnter = undefined;
  };
  const waitForEnter = (): void => {
    const onData = (): void => {
      stopWaitingForEnter();
      interrupts = 0;
      say('Resuming…');
      worker.send({ type: 'resume' });
    };
    process.stdin.once('data', onData);
    process.stdin.resume();
    waitingForEnter = () => {
      process.stdin.off('data', onData);
      process.stdin.pause();
    };
  };

  const onInterrupt = (): void => {
    interrupts++;
    if (interrupts === 1 && worker.lastStatus?.state !== 'paused') {
      say('Pausing at the next step and checkpointing (Ctrl-C again stops)…');
      worker.send({ type: 'pause' });
    } else if (interrupts <= 2) {
      stopWaitingForEnter();
      say('Stopping (checkpointed; Ctrl-C again kills the worker)…');
      worker.send({ type: 'stop' });
    } else {
      say('Killing the worker.');
      worker.kill('SIGKILL');
    }
  };
  process.on('SIGINT', onInterrupt);

  const onEvent = (event: WorkerEvent): void => {
    switch (event.type) {
      case 'metrics':
        if (event.line.type === 'train') progress.train(event.line, totalSteps);
        else say(describeEval(event.line));
        return;
      case 'selection':
        return;
      case 'log':
        if (event.progress) progress.stage(event.message, event.progress.done, event.progress.total);
        else say(event.level === 'warning' ? `warning: ${event.message}` : event.message);
        return;
      case 'error':
        if (event.kind === 'config') configError = true;
        say(`${event.kind === 'config' ? 'sift' : 'error'}: ${event.message}`);
        return;
      case 'status': {
        if (event.totalSteps > 0) totalSteps = event.totalSteps;
        if (event.state !== 'paused' || event.reason === 'shutdown') return;
        const where = event.checkpoint ? ` (checkpoint at step ${event.checkpoint.step})` : '';
        if (event.reason === 'write-failed') say(`The run is paused at its newest whole checkpoint: nothing written so far is lost.`);
        else say(`Paused at step ${event.step}${where}.`);
        if (interactive) {
          say(event.reason === 'write-failed' ? 'Fix that, then press Enter to retry; Ctrl-C stops.' : 'Press Enter to resume; Ctrl-C stops.');
          waitForEnter();
        } else {
          worker.send({ type: 'shutdown' });
        }
        return;
      }
      default: {
        const unreachable: never = event;
        say(`warning: unexpected worker event ${JSON.stringify(unreachable)}`);
      }
    }
  };
  worker.onEvent(onEvent);
  worker.send(first);

  const exit = await worker.exited;
  process.off('SIGINT', onInterrupt);
  stopWaitingForEnter();
  progress.done();
  const status = exit.lastStatus;
  const runDir = status?.run?.dir;
  const resumeHint = runDir ? ` Continue it with: sift resume ${path.relative(process.cwd(), runDir) || '.'}` : '';
  if (!exit.clean || !status) {
    say(`${exit.reason ?? 'The training worker exited unexpectedly.'}`);
    if (exit.markedInterrupted) say(`The run is marked interrupted in its run.json.${resumeHint}`);
    return interrupts > 0 ? exitCodes.stopped : exitCodes.failed;
  }
  switch (status.state) {
    case 'finished':
      if (status.reason === 'stopped') {
        say(`Stopped at step ${status.step}, checkpointed.${resumeHint}`);
        return exitCodes.stopped;
      }
      if (runDir) printFinished(path.relative(process.cwd(), runDir) || '.');
      return exitCodes.finished;
    case 'paused': {
      const from = status.checkpoint && status.checkpoint.step !== status.step ? ` (its newest whole checkpoint is at step ${status.checkpoint.step})` : '';
      say(`Paused at step ${status.step}${from}.${resumeHint}`);
      return exitCodes.paused;
    }
    case 'failed':
      if (runDir && !configError) say(`The run record is in ${runDir} (status: failed).`);
      return configError ? exitCodes.usage : exitCodes.failed;
    case 'starting':
    case 'running':
    case 'stopping':
      return exitCodes.failed;
    default: {
      const unreachable: never = status.state;
      throw new Error(`unknown run state ${String(unreachable)}`);
    }
  }
}

/** `sift train`: a new run, trained in the worker. */
export function trainInWorker(config: TrainConfig): Promise<number> {
  return driveWorker({ type: 'start', protocol: workerProtocolVersion, run: { kind: 'new', config } });
}

export const resumeUsage = `Usage: sift resume RUN_DIR

Continues a paused, stopped or interrupted run from its newest whole
checkpoint; lines its metrics hold past that step are dropped first, so the
steps it takes again are recorded once (and, the run being seeded, identically).
`;

export async function resume(args: string[]): Promise<number> {
  if (args.includes('--help') || args.includes('-h')) {
    process.stdout.write(resumeUsage);
    return exitCodes.finished;
  }
  if (args.length !== 1 || args[0].startsWith('-')) throw new ConfigError(`sift resume takes one run folder.\n\n${resumeUsage}`);
  const runDir = args[0];
  const run = openRunJson(runDir, 'resume');
  if (run.status === 'finished') {
    process.stdout.write(`${runDir} already finished (${run.config.steps} steps); nothing to resume. To train on, branch it: sift branch ${runDir} --at-step ${run.config.steps} --set steps=${2 * run.config.steps}\n`);
    return exitCodes.finished;
  }
  return driveWorker({ type: 'start', protocol: workerProtocolVersion, run: { kind: 'resume', runDir } });
}

export const branchUsage = `Usage: sift branch RUN_DIR --at-step N [--set key=value ...] [--config FILE] [--run-dir DIR]

Starts a new run from RUN_DIR's checkpoint at step N, with the settings
changed by --config (a JSON object) and then each --set (values parse as JSON
when they can: numbers, booleans, null; else strings), and trains it. The new
run's folder (default: beside RUN_DIR) records its parent, fork step,
checkpoint and config diff. The parent is not changed, except that the
checkpoint is pinned so it is never pruned.
`;

export async function branch(args: string[]): Promise<number> {
  if (args.includes('--help') || args.includes('-h')) {
    process.stdout.write(branchUsage);
    return exitCodes.finished;
  }
  let parsed;
  try {
    parsed = parseArgs({
      args,
      options: { 'at-step': { type: 'string' }, set: { type: 'string', multiple: true }, config: { type: 'string' }, 'run-dir': { type: 'string' } },
      allowPositionals: true,
      strict: true,
    });
  } catch (error) {
    throw new ConfigError(`${(error as Error).message}.\n\n${branchUsage}`);
  }
  if (parsed.positionals.length !== 1) throw new ConfigError(`sift branch takes one run folder.\n\n${branchUsage}`);
  const parentDir = parsed.positionals[0];
  const stepText = parsed.values['at-step'];
  const atStep = Number(stepText);
  if (stepText === undefined || !Number.isInteger(atStep) || atStep < 0) throw new ConfigError(`--at-step: give the checkpoint step to branch from, e.g. --at-step 400.\n\n${branchUsage}`);
  const file = parsed.values.config;
  const fromFile = file ? readConfigFile(file) : undefined;
  // Validated here for a quick usage error; the worker validates again (it trusts no message).
  const overrides = branchOverrides(fromFile, parsed.values.set ?? []);
  openRunJson(parentDir, 'branch');
  return driveWorker({ type: 'branch', protocol: workerProtocolVersion, parentDir, atStep, overrides, runDir: parsed.values['run-dir'] });
}

export const runsUsage = `Usage: sift runs [DIR]

Lists the runs in DIR (default .sift/runs) as a tree: each branch under its
parent, with its status, method, step, best image→text recall@1 and fork point.
`;

export function runs(args: string[]): number {
  if (args.includes('--help') || args.includes('-h')) {
    process.stdout.write(runsUsage);
    return exitCodes.finished;
  }
  if (args.length > 1 || args[0]?.startsWith('-')) throw new ConfigError(`sift runs takes at most one folder.\n\n${runsUsage}`);
  const root = args[0] ?? path.join('.sift', 'runs');
  const forest = listRuns(root);
  if (forest.length === 0) {
    process.stdout.write(`No runs in ${root}.\n`);
    return exitCodes.finished;
  }
  process.stdout.write(`${formatRunTree(forest)}\n`);
  return exitCodes.finished;
}

/** The runs as a table, each branch indented under its parent. */
export function formatRunTree(forest: RunListing[]): string {
  const rows: string[][] = [];
  const visit = (run: RunListing, depth: number): void => {
    const indent = depth === 0 ? '' : `${'   '.repeat(depth - 1)}└─ `;
    const from = run.parent === null ? '' : `${run.parent}@${run.forkStep}`;
    rows.push([`${indent}${run.id}`, run.status, run.method, `${run.step}/${run.totalSteps}`, pct(run.bestI2tR1), from]);
    for (const child of run.children) visit(child, depth + 1);
  };
  for (const run of forest) visit(run, 0);
  return table(['run', 'status', 'method', 'step', 'best i2t R@1', 'from'], rows);
}
