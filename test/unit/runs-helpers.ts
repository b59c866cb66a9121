/**
 * Shared by the worker, runs and crash tests: a tiny config whose steps take
 * milliseconds, an uninterrupted reference run to compare against, and
 * helpers to start and watch a forked worker.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { readJsonl } from '../../src/core/runs/jsonl';
import type { MetricLine } from '../../src/core/runs/record';
import { resolveConfig, type TrainConfig } from '../../src/core/train/config';
import { trainRun } from '../../src/core/train/run';
import { WorkerClient } from '../../src/worker/client';
import { tinyModel } from '../tinyModel';
import type { WorkerEvent } from '../../src/protocol/worker';

export const tmp = (prefix = 'sift-runs-'): string => fs.mkdtempSync(path.join(os.tmpdir(), prefix));

export function tinyConfig(runDir: string, overrides: Partial<TrainConfig> = {}): TrainConfig {
  return resolveConfig({
    data: 'builtin:train?size=300',
    evalData: 'builtin:eval?size=32',
    ...tinyModel,
    steps: 40,
    evalEvery: 20,
    checkpointEvery: 10,
    keepCheckpoints: 2,
    runDir,
    ...overrides,
  });
}

export const metricsOf = (runDir: string): MetricLine[] => readJsonl<MetricLine>(path.join(runDir, 'metrics.jsonl')).rows;

/** A metric line without its timings (every `*_s` field): what must match between two runs of the same seed. */
export function withoutTimings(line: MetricLine): Record<string, unknown> {
  return Object.fromEntries(Object.entries(line).filter(([key]) => !key.endsWith('_s')));
}

/** The metrics of the same run trained in one go, in-process. */
export async function uninterruptedMetrics(config: TrainConfig): Promise<MetricLine[]> {
  const runDir = path.join(tmp('sift-reference-'), 'run');
  await trainRun({ ...config, runDir });
  return metricsOf(runDir);
}

const started = new Set<WorkerClient>();

/** Forks a worker and records its events. Call `killWorkers` after the tests: a waiting worker keeps the test process alive. */
export function startWorker(env: Record<string, string> = {}): { worker: WorkerClient; events: WorkerEvent[] } {
  const worker = WorkerClient.start({ env: { ...process.env, ...env } });
  started.add(worker);
  void worker.exited.then(() => started.delete(worker));
  const events: WorkerEvent[] = [];
  worker.onEvent((event) => events.push(event));
  return { worker, events };
}

export function killWorkers(): void {
  for (const worker of started) worker.kill('SIGKILL');
}

/** The first recorded event from index `from` on that satisfies `predicate`, whenever it came (no race with the event before it). */
export async function eventually(events: WorkerEvent[], predicate: (event: WorkerEvent) => boolean, from = 0, timeoutMs = 30_000): Promise<WorkerEvent> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = events.slice(from).find(predicate);
    if (found) return found;
    if (Date.now() > deadline) throw new Error(`no matching worker event within ${timeoutMs} ms; got ${events.slice(from).map((e) => e.type).join(', ')}`);
    await sleep(5);
  }
}

export const isStatus = (state: string, reason?: string) => (event: WorkerEvent): boolean =>
  event.type === 'status' && event.state === state && (reason === undefined || event.reason === reason);

export const isTrainStep = (atLeast: number) => (event: WorkerEvent): boolean => event.type === 'metrics' && event.line.type === 'train' && event.line.step >= atLeast;

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** CPU time (user + system, in clock ticks) a process has used, from /proc; undefined where there is no /proc. */
export function cpuTicks(pid: number): number | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // Fields 14 and 15 of stat (utime, stime); the slice starts at field 3.
    return Number(fields[11]) + Number(fields[12]);
  } catch {
    return undefined;
  }
}
