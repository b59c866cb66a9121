/**
 * Reads what the panels show from run folders: run.json, metrics.jsonl and
 * selections.jsonl, joined along the run's lineage. A branch's own logs hold
 * only its steps after the fork (src/core/runs/lineage.ts); its whole history
 * is its ancestors' lines up to each fork step, then its own.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { followJsonl, jsonlStart, parseJsonlLine, readJsonlSpan, scanJsonl, type JsonlPosition, type JsonlSpan } from '../core/runs/jsonl';
import { readRunJson, type MetricLine, type RunJson, type SelectionLine } from '../core/runs/record';
import type { RunInfo } from '../protocol/webview';

/** One run of a lineage, and the last step of its own lines that belongs to the joined history. */
export interface LineageLink {
  dir: string;
  json: RunJson;
  /** Lines with step ≤ this are used (Infinity for the run itself). */
  throughStep: number;
}

/**
 * The parent's folder of a branch: the folder its checkpointUsed lies in
 * (<parent>/checkpoints/step-N), else a sibling folder holding a run of the
 * parent's id; undefined when it is gone.
 */
export function parentDir(dir: string, json: RunJson): string | undefined {
  if (json.parent === null) return undefined;
  const candidates: string[] = [];
  if (json.checkpointUsed) candidates.push(path.dirname(path.dirname(path.resolve(dir, json.checkpointUsed))));
  candidates.push(path.join(path.dirname(path.resolve(dir)), json.parent));
  for (const candidate of candidates) {
    try {
      if (readRunJson(candidate).id === json.parent) return candidate;
    } catch {
      // Not there, or not that run: try the next place.
    }
  }
  return undefined;
}

/**
 * The run and its ancestors, oldest first, each with the step its part of the
 * history runs through. Stops at an ancestor that cannot be found (its part is
 * then missing from the curves) or at a cycle.
 */
export function lineageOf(dir: string, json: RunJson = readRunJson(dir)): LineageLink[] {
  const chain: LineageLink[] = [{ dir, json, throughStep: Infinity }];
  const seen = new Set([json.id]);
  let child = chain[0];
  while (child.json.parent !== null && child.json.forkStep !== null) {
    const found = parentDir(child.dir, child.json);
    if (found === undefined) break;
    const parent = readRunJson(found);
    if (seen.has(parent.id)) break;
    seen.add(parent.id);
    const link = { dir: found, json: parent, throughStep: child.json.forkStep };
    chain.unshift(link);
    child = link;
  }
  return chain;
}

/**
 * Visits the lines of one log along a lineage in the order they were
 * written: each ancestor's up to the fork step, then the run's own (a resumed
 * run's own log repeats steps: the later line is the one that counts). Read a
 * chunk at a time (see scanJsonl): a long run's logs do not stall the
 * extension host while they are read.
 */
export async function visitLines<T extends { step: number }>(chain: readonly LineageLink[], file: 'metrics.jsonl' | 'selections.jsonl', visit: (line: T) => void): Promise<void> {
  for (const link of chain) {
    const where = path.join(link.dir, file);
    await scanJsonl(where, (text, span) => {
      const line = parseJsonlLine<T>(text, where, span.lineNumber);
      if (typeof line?.step === 'number' && line.step <= link.throughStep) visit(line);
    });
  }
}

/** The lines of one log along a lineage (see visitLines), sorted by step, a repeated step keeping its newest line. */
export async function joinedLines<T extends { step: number }>(chain: readonly LineageLink[], file: 'metrics.jsonl' | 'selections.jsonl', keep: (line: T) => boolean = () => true): Promise<T[]> {
  const lines: T[] = [];
  await visitLines<T>(chain, file, (line) => {
    if (keep(line)) lines.push(line);
  });
  return dedupeBySteps(lines);
}

/** Sorted by step (stable), one line per step and kind: the last one written wins. */
function dedupeBySteps<T extends { step: number }>(lines: T[]): T[] {
  const kind = (line: T): string => String((line as { type?: unknown }).type ?? '');
  const last = new Map<string, number>();
  lines.forEach((line, index) => last.set(`${kind(line)}\0${line.step}`, index));
  return lines.filter((line, index) => last.get(`${kind(line)}\0${line.step}`) === index).sort((a, b) => a.step - b.step);
}

export const joinedMetrics = (chain: readonly LineageLink[]): Promise<MetricLine[]> =>
  joinedLines<MetricLine>(chain, 'metrics.jsonl', (line) => line.type === 'train' || line.type === 'eval');

export const joinedSelections = (chain: readonly LineageLink[]): Promise<SelectionLine[]> =>
  joinedLines<SelectionLine>(chain, 'selections.jsonl', (line) => Array.isArray(line.ids));

/** Where a step's selections line lies: which file, and where in it. */
export interface SelectionSpan extends JsonlSpan {
  file: string;
}

/** The step a selections line records, read from its start ({"step":N,… as the trainer writes it}) or, failing that, by parsing it. */
function stepOf(text: string, file: string, lineNumber: number): number | undefined {
  const match = /^\{"step":(\d+)[,}]/.exec(text);
  if (match) return Number(match[1]);
  const line = parseJsonlLine<{ step?: unknown }>(text, file, lineNumber);
  return typeof line?.step === 'number' ? line.step : undefined;
}

/** How far the run's own selections file was indexed. */
export interface SelectionsTail {
  file: string;
  position: JsonlPosition;
}

/**
 * Where each step's selections line lies along a lineage (the newest line of
 * a step wins, as in joinedLines), without keeping the lines: a long run's
 * selections are tens of megabytes. `tail` says where the run's own file was
 * read to, so that lines written since can be indexed with `indexSelectionsTail`.
 */
export async function indexSelections(chain: readonly LineageLink[]): Promise<{ spans: Map<number, SelectionSpan>; tail: SelectionsTail }> {
  const spans = new Map<number, SelectionSpan>();
  let tail: SelectionsTail = { file: '', position: jsonlStart };
  for (const link of chain) {
    tail = { file: path.join(link.dir, 'selections.jsonl'), position: jsonlStart };
    tail = await indexSelectionsTail(spans, tail, link.throughStep);
  }
  return { spans, tail };
}

/**
 * Indexes into `spans` the lines a selections file gained since `tail` (up to
 * `throughStep`); a file rewritten since (a resume) is indexed again from its
 * start, its old spans dropped. Returns the new tail.
 */
export async function indexSelectionsTail(spans: Map<number, SelectionSpan>, tail: SelectionsTail, throughStep = Infinity): Promise<SelectionsTail> {
  const { file } = tail;
  const position = await followJsonl(
    file,
    tail.position,
    (text, span) => {
      const step = stepOf(text, file, span.lineNumber);
      if (step !== undefined && step <= throughStep) spans.set(step, { file, ...span });
    },
    () => {
      for (const [step, span] of spans) if (span.file === file) spans.delete(step);
    },
  );
  return { file, position: position ?? tail.position };
}

export const readSelectionAt = (span: SelectionSpan): Promise<SelectionLine> => readJsonlSpan<SelectionLine>(span.file, span);

/** The newest selections line along a lineage (the last batch trained), read without keeping the others. */
export async function lastSelection(chain: readonly LineageLink[]): Promise<SelectionLine | undefined> {
  const { spans } = await indexSelections(chain);
  let last: number | undefined;
  for (const step of spans.keys()) if (last === undefined || step > last) last = step;
  return last === undefined ? undefined : readSelectionAt(spans.get(last)!);
}

/** Statuses of a run that is (or may soon be) writing lines. */
export const liveStatuses: ReadonlySet<string> = new Set(['starting', 'running', 'paused']);

/** The legend's and the inspector's description of a run. */
export function runInfo(json: RunJson, dir: string, lastStep: number, color: number): RunInfo {
  return {
    id: json.id,
    dir,
    label: json.id,
    method: json.config.method,
    status: json.status,
    color,
    parent: json.parent,
    forkStep: json.forkStep,
    step: Math.max(lastStep, json.forkStep ?? 0),
    totalSteps: json.config.steps,
    config: { ...json.config } as Record<string, unknown>,
  };
}

/** True when `dir` holds a run (a run.json). */
export const isRunDir = (dir: string): boolean => fs.existsSync(path.join(dir, 'run.json'));
