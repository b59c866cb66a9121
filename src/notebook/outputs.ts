/**
 * The outputs a Sift notebook saves, made from run folders and live runs:
 * small data (ids, folders, summary numbers) that the renderer draws and
 * re-draws from the run folders when the notebook is reopened. Also where an
 * "@label" points: the run the nearest earlier cell with that label made.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { compareRuns, type ComparableMetric } from '../core/runs/compare';
import { readRunJson, type EvalMetrics, type MetricLine, type RunJson, type TrainMetrics } from '../core/runs/record';
import {
  compareOutputMime,
  errorOutputMime,
  notebookProtocolVersion,
  parseRunOutput,
  runOutputMime,
  summaryMetrics,
  type CompareOutputData,
  type RunOutputData,
  type RunSummary,
} from '../protocol/notebook';

/** One output as the file and the executor hold it: a mime and its (JSON) data. */
export interface CellOutput {
  mime: string;
  data: unknown;
}

/** How a run folder is saved in an output: relative to the notebook's folder (with `/`), or absolute on another drive. */
export function savedDir(dir: string, notebookDir: string): string {
  const relative = path.relative(notebookDir, dir);
  if (relative === '') return '.';
  return path.isAbsolute(relative) ? dir : relative.split(path.sep).join('/');
}

/** A saved run folder as an absolute path. */
export const resolveSavedDir = (saved: string, notebookDir: string): string => path.resolve(notebookDir, saved);

/**
 * The newest train and eval lines of a run's own metrics.jsonl, read from its
 * end 64 KiB at a time until both are found: a long run's log is not read
 * whole for two lines (an eval is at most `evalEvery` lines back).
 */
export function lastLines(dir: string): { train?: TrainMetrics; eval?: EvalMetrics } {
  const out: { train?: TrainMetrics; eval?: EvalMetrics } = {};
  let fd: number;
  try {
    fd = fs.openSync(path.join(dir, 'metrics.jsonl'), 'r');
  } catch {
    return out;
  }
  try {
    const block = 1 << 16;
    let end = fs.fstatSync(fd).size;
    // Bytes after the last newline seen so far (the start of a line that began in an earlier block).
    let carry = Buffer.alloc(0);
    let last = true;
    while (end > 0 && !(out.train && out.eval)) {
      const start = Math.max(0, end - block);
      const chunk = Buffer.alloc(end - start);
      fs.readSync(fd, chunk, 0, chunk.length, start);
      const text = Buffer.concat([chunk, carry]);
      // The first piece may begin mid-line unless the block reached the file's start: kept as bytes (a character may straddle blocks).
      const firstNewline = text.indexOf(10);
      const whole = start > 0 ? (firstNewline === -1 ? Buffer.alloc(0) : text.subarray(firstNewline + 1)) : text;
      carry = start > 0 ? Buffer.from(firstNewline === -1 ? text : text.subarray(0, firstNewline)) : Buffer.alloc(0);
      const lines = whole.toString('utf8').split('\n');
      for (let i = lines.length - 1; i >= 0 && !(out.train && out.eval); i--) {
        // The very last piece has no newline after it: a line being written, skipped.
        if (last && i === lines.length - 1) continue;
        const line = parseLine(lines[i]);
        if (line?.type === 'train') out.train ??= line;
        else if (line?.type === 'eval') out.eval ??= line;
      }
      last = false;
      end = start;
    }
  } finally {
    fs.closeSync(fd);
  }
  return out;
}

function parseLine(text: string): MetricLine | undefined {
  if (text.trim() === '') return undefined;
  try {
    return JSON.parse(text) as MetricLine;
  } catch {
    return undefined;
  }
}

/** Four significant digits: what a table shows, and short lines in a diff of the file. */
const short = (value: number): number => Number(value.toPrecision(4));

export function summaryOf(last: { train?: TrainMetrics; eval?: EvalMetrics }): RunSummary {
  const summary: RunSummary = { metrics: {} };
  const progress = last.train ?? last.eval;
  if (progress) {
    summary.examples_seen = progress.examples_seen;
    summary.flops = short(progress.flops);
    summary.wall_s = short(progress.wall_s);
  }
  if (last.train && Number.isFinite(last.train.loss)) summary.loss = short(last.train.loss);
  if (last.eval) {
    summary.eval_step = last.eval.step;
    for (const metric of summaryMetrics) {
      const value = last.eval[metric];
      if (typeof value === 'number' && Number.isFinite(value)) summary.metrics[metric] = short(value);
    }
  }
  return summary;
}

export interface RunOutputInfo {
  cell: RunOutputData['cell'];
  label?: string;
  notebookDir: string;
  /** The live state and step, while a worker trains the run (run.json lags behind). */
  status?: string;
  step?: number;
  totalSteps?: number;
  summary?: RunSummary;
  message?: string;
}

/** A run output from the run's record; `info` overrides what a live run knows better. */
export function runOutput(dir: string, json: RunJson, info: RunOutputInfo): CellOutput {
  const summary = info.summary ?? summaryOf(lastLines(dir));
  const data: RunOutputData = {
    version: notebookProtocolVersion,
    cell: info.cell,
    ...(info.label ? { label: info.label } : {}),
    id: json.id,
    dir: savedDir(dir, info.notebookDir),
    method: json.config.method,
    status: info.status ?? json.status,
    step: info.step ?? json.summary?.steps ?? summary.eval_step ?? json.forkStep ?? 0,
    totalSteps: info.totalSteps ?? json.config.steps,
    ...(json.parent !== null && json.forkStep !== null ? { parent: { id: json.parent, step: json.forkStep } } : {}),
    summary,
    ...(info.message ? { message: info.message } : {}),
  };
  return { mime: runOutputMime, data };
}

/** The editor's error output: "name: message", without a stack (these are the user's errors, not ours). */
export function errorOutput(name: string, message: string): CellOutput {
  return { mime: errorOutputMime, data: { name, message } };
}

/** The first run output among a cell's outputs, validated (the file may have been edited). */
export function runOutputOf(outputs: readonly CellOutput[]): RunOutputData | undefined {
  for (const output of outputs) {
    if (output.mime !== runOutputMime) continue;
    const parsed = parseRunOutput(output.data);
    if (parsed.ok) return parsed.message;
  }
  return undefined;
}

/** The "label" a code cell's JSON gives, without validating the rest (a broken cell still names its label). */
export function labelOf(source: string): string | undefined {
  try {
    const raw = JSON.parse(source) as unknown;
    const label = typeof raw === 'object' && raw !== null && !Array.isArray(raw) ? (raw as { label?: unknown }).label : undefined;
    return typeof label === 'string' && label !== '' ? label : undefined;
  } catch {
    return undefined;
  }
}

/**
 * label → run folder, from the cells above one (in order, so the nearest
 * earlier cell with a label wins): each labelled cell's run output.
 */
export function labelledRuns(earlier: readonly { source: string; outputs: readonly CellOutput[] }[], notebookDir: string): Map<string, string> {
  const runs = new Map<string, string>();
  for (const cell of earlier) {
    const label = labelOf(cell.source);
    const output = runOutputOf(cell.outputs);
    if (label && output) runs.set(label, resolveSavedDir(output.dir, notebookDir));
  }
  return runs;
}

/** The comparison `sift compare` prints, as a compare output; `labels` names the runs given as "@label". */
export async function compareOutput(dirs: readonly string[], labels: readonly (string | undefined)[], options: { metric: ComparableMetric; target?: number; notebookDir: string }): Promise<CellOutput> {
  const comparison = await compareRuns(dirs, { metric: options.metric, target: options.target });
  const data: CompareOutputData = {
    version: notebookProtocolVersion,
    metric: comparison.metric,
    target: short(comparison.target),
    targetFrom: comparison.targetFrom,
    rows: comparison.runs.map((run, i) => ({
      ...(labels[i] ? { label: labels[i] } : {}),
      id: run.id,
      dir: savedDir(run.dir, options.notebookDir),
      method: run.method,
      ...(run.filterRatio !== undefined ? { filterRatio: run.filterRatio } : {}),
      status: run.status,
      ...(run.final[comparison.metric] !== undefined ? { final: short(run.final[comparison.metric]!) } : {}),
      examplesToTarget: run.examplesToTarget === null ? null : Math.round(run.examplesToTarget),
      examplesSpeedup: run.examplesSpeedup === null ? null : short(run.examplesSpeedup),
      flopsToTarget: run.flopsToTarget === null ? null : short(run.flopsToTarget),
      flopsSpeedup: run.flopsSpeedup === null ? null : short(run.flopsSpeedup),
    })),
  };
  return { mime: compareOutputMime, data };
}

/** run.json of a folder, or undefined when it holds no (readable) run. */
export function tryRunJson(dir: string): RunJson | undefined {
  try {
    return readRunJson(dir);
  } catch {
    return undefined;
  }
}
