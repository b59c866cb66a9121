/**
 * What a code cell of a Sift notebook asks for, parsed and validated:
 *   run     — a run config (the *.sift.json schema), plus optional "label" and
 *             "kind": "reference" to train a reference model;
 *   branch  — {"branch": "@label" or a run folder, "at_step": N, "set": {...}, "label"?};
 *   compare — {"compare": ["@label" or folders…], "target_metric"?: "i2t_r1", "target"?: x}.
 * "@label" refers to the run an earlier cell with that label produced, so a
 * notebook replays on another machine.
 */
import { comparableMetrics, type ComparableMetric } from '../core/runs/compare';
import { ConfigError, validateConfig, type TrainConfig } from '../core/train/config';

export type CellRequest =
  | { type: 'run'; label?: string; reference: boolean; config: Partial<TrainConfig> }
  | { type: 'branch'; label?: string; parent: string; atStep: number; set: Record<string, unknown> }
  | { type: 'compare'; runs: string[]; metric: ComparableMetric; target?: number };

export class CellError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CellError';
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function label(value: unknown, where: string): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || !/^[A-Za-z0-9_.-]+$/.test(value)) throw new CellError(`${where}: "label" must be a name of letters, digits, _ . - (got ${JSON.stringify(value)}).`);
  return value;
}

/** Parses one code cell's JSON into what it asks for. `where` names the cell in errors. */
export function parseCell(source: string, where: string): CellRequest {
  let raw: unknown;
  try {
    raw = JSON.parse(source);
  } catch (error) {
    throw new CellError(`${where}: not valid JSON (${(error as Error).message}).`);
  }
  if (!isObject(raw)) throw new CellError(`${where}: a cell holds one JSON object: a run config, {"branch": …} or {"compare": […]}.`);
  if ('compare' in raw) {
    const runs = raw.compare;
    if (!Array.isArray(runs) || runs.length === 0 || !runs.every((r) => typeof r === 'string')) throw new CellError(`${where}: "compare" must list runs ("@label" or run folders).`);
    const metric = (raw.target_metric ?? 'i2t_r1') as ComparableMetric;
    if (!comparableMetrics.includes(metric)) throw new CellError(`${where}: "target_metric" must be one of ${comparableMetrics.join(', ')}.`);
    if (raw.target !== undefined && typeof raw.target !== 'number') throw new CellError(`${where}: "target" must be a number.`);
    const unknown = Object.keys(raw).filter((k) => !['compare', 'target_metric', 'target'].includes(k));
    if (unknown.length) throw new CellError(`${where}: a compare cell takes "compare", "target_metric" and "target"; remove ${unknown.map((k) => `"${k}"`).join(', ')}.`);
    return { type: 'compare', runs: runs as string[], metric, target: raw.target as number | undefined };
  }
  if ('branch' in raw) {
    if (typeof raw.branch !== 'string') throw new CellError(`${where}: "branch" names the parent run: "@label" or a run folder.`);
    if (typeof raw.at_step !== 'number' || !Number.isInteger(raw.at_step) || raw.at_step < 0) throw new CellError(`${where}: "at_step" must be the checkpoint step to branch from, e.g. 400.`);
    const set = raw.set ?? {};
    if (!isObject(set)) throw new CellError(`${where}: "set" must be an object of settings to change.`);
    try {
      validateConfig(set, `${where} "set"`);
    } catch (error) {
      throw new CellError((error as Error).message);
    }
    const unknown = Object.keys(raw).filter((k) => !['branch', 'at_step', 'set', 'label'].includes(k));
    if (unknown.length) throw new CellError(`${where}: a branch cell takes "branch", "at_step", "set" and "label"; remove ${unknown.map((k) => `"${k}"`).join(', ')}.`);
    return { type: 'branch', label: label(raw.label, where), parent: raw.branch, atStep: raw.at_step, set };
  }
  const { label: rawLabel, kind, ...settings } = raw;
  if (kind !== undefined && kind !== 'reference' && kind !== 'train') throw new CellError(`${where}: "kind" is "train" (default) or "reference".`);
  let config: Partial<TrainConfig>;
  try {
    config = validateConfig(settings, where);
  } catch (error) {
    if (error instanceof ConfigError) throw new CellError(error.message);
    throw error;
  }
  return { type: 'run', label: label(rawLabel, where), reference: kind === 'reference', config };
}

/** Replaces "@label" with the run folder an earlier cell produced; errors say which labels exist. */
export function resolveRef(ref: string, runsByLabel: ReadonlyMap<string, string>, where: string): string {
  if (!ref.startsWith('@')) return ref;
  const dir = runsByLabel.get(ref.slice(1));
  if (!dir) {
    const known = [...runsByLabel.keys()].map((k) => `@${k}`);
    throw new CellError(`${where}: no earlier cell labelled "${ref.slice(1)}" has run yet.${known.length ? ` Known: ${known.join(', ')}.` : ' Run the cell that defines it first.'}`);
  }
  return dir;
}
