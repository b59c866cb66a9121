/**
 * Runs form a tree (DESIGN.md, "Runs on disk"): a branch is a new run whose
 * run.json names its parent, the fork step, the parent's checkpoint it starts
 * from and the settings it changed. This module makes branches, finds where a
 * run continues from, and lists a folder of runs as a tree.
 *
 * A branch's metrics.jsonl holds only its own steps (> forkStep); a reader
 * that wants the whole curve joins the parent's lines up to forkStep through
 * `parent` and `forkStep`, so a parent's history is never copied or forked.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ConfigError, configKeys, resolveConfig, savedConfig, validateConfig, type TrainConfig } from '../train/config';
import { checkpointDir, listCheckpoints } from './checkpoint';
import { readJsonl } from './jsonl';
import { newRunId, orphaned, readRunJson, RunRecord, type ConfigDiff, type MetricLine, type RunJson, type RunStatus } from './record';

/** Where a run's training continues from: a checkpoint of its own, or (a branch that has none yet) its parent's. */
export interface ResumePoint {
  fromRunDir: string;
  step: number;
}

/** A run's run.json, or a ConfigError in the user's terms when the folder holds none. */
export function openRunJson(dir: string, command: string): RunJson {
  try {
    return readRunJson(dir);
  } catch (error) {
    throw new ConfigError(`${command} ${dir}: ${(error as Error).message} Pass the folder of a run, e.g. .sift/runs/<run-id>.`);
  }
}

/**
 * The newest whole checkpoint of the run; for a branch without one, the
 * parent's checkpoint it forked from; undefined: start from step 0.
 */
export function resumePoint(runDir: string, run: RunJson): ResumePoint | undefined {
  const own = listCheckpoints(runDir);
  if (own.length > 0) return { fromRunDir: runDir, step: own[own.length - 1] };
  if (run.checkpointUsed === undefined || run.forkStep === null) return undefined;
  const used = path.resolve(runDir, run.checkpointUsed);
  if (!fs.existsSync(path.join(used, 'state.json'))) {
    throw new ConfigError(`${runDir} is a branch of ${run.parent ?? '?'} at step ${run.forkStep}, but that checkpoint (${used}) is gone. Put the parent run back beside it.`);
  }
  // checkpointUsed is <parent>/checkpoints/step-<N>.
  return { fromRunDir: path.dirname(path.dirname(used)), step: run.forkStep };
}

/** Settings a branch may not change: the checkpoint's tensors and data order only fit the parent's. */
const fixedInBranch: (keyof TrainConfig)[] = ['data', 'imageSize', 'patchSize', 'imageWidth', 'imageDepth', 'textWidth', 'textDepth', 'textLength', 'embedDim', 'maxVocab'];

/**
 * `key=value` pairs of `--set`: values parse as JSON when they can (numbers,
 * booleans, null), else stay strings; keys may be camelCase or kebab-case.
 */
export function parseSettings(pairs: readonly string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const pair of pairs) {
    const equals = pair.indexOf('=');
    if (equals <= 0) throw new ConfigError(`--set ${pair}: expected key=value, e.g. --set learningRate=0.001.`);
    const key = pair.slice(0, equals).replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
    const text = pair.slice(equals + 1);
    let value: unknown = text;
    try {
      value = JSON.parse(text);
    } catch {
      // Not JSON: a plain string such as a path or a method name.
    }
    out[key] = value;
  }
  return out;
}

function diffConfigs(from: TrainConfig, to: TrainConfig): ConfigDiff {
  const diff: ConfigDiff = {};
  for (const key of configKeys) {
    if (key === 'runDir') continue;
    if (JSON.stringify(from[key]) !== JSON.stringify(to[key])) diff[key] = { from: from[key], to: to[key] };
  }
  return diff;
}

export interface BranchRequest {
  parentDir: string;
  atStep: number;
  /** Settings to change, already validated (validateConfig). */
  overrides: Partial<TrainConfig>;
  /** The branch's folder; default: a new id beside the parent. */
  runDir?: string;
}

/**
 * Creates a branch: a new run folder whose run.json records its parent, fork
 * step, checkpoint used and config diff. Pins the fork checkpoint in the
 * parent's run.json — the one change a branch makes to its parent — so the
 * parent's pruning keeps it. Returns the branch's folder; training it is
 * resuming it (`resumePoint` finds the parent's checkpoint).
 */
export function createBranch(request: BranchRequest): string {
  const { parentDir, atStep } = request;
  const parent = openRunJson(parentDir, 'branch');
  const kept = listCheckpoints(parentDir);
  const noCheckpoint = (): ConfigError =>
    new ConfigError(
      kept.length === 0
        ? `${parentDir} has no checkpoint yet, so it cannot be branched. Checkpoints are written every checkpointEvery steps (${parent.config.checkpointEvery}) and on pause.`
        : `${parentDir} has no checkpoint at step ${atStep}. Kept checkpoints: ${kept.join(', ')}. Branch at one of those (--at-step ${kept[kept.length - 1]}).`,
    );
  if (!kept.includes(atStep)) throw noCheckpoint();
  const changedFixed = fixedInBranch.filter((key) => key in request.overrides && JSON.stringify(request.overrides[key]) !== JSON.stringify(parent.config[key]));
  if (changedFixed.length > 0) {
    throw new ConfigError(`A branch continues the parent's weights and data order, so it cannot change ${changedFixed.join(', ')}. Start a new run (sift train) for that.`);
  }
  if ('runDir' in request.overrides) throw new ConfigError('Set the branch folder with --run-dir, not --set runDir.');

  const runDir = request.runDir || path.join(path.dirname(path.resolve(parentDir)), newRunId());
  const parentConfig = savedConfig(parent.config);
  const config = resolveConfig(parentConfig, request.overrides, { runDir });
  if (config.steps <= atStep) throw new ConfigError(`The branch would train to step ${config.steps}, but it starts at ${atStep}. Set steps higher, e.g. --set steps=${atStep + parentConfig.steps}.`);

  RunRecord.pin(parentDir, atStep);
  // The parent may be training and pruning right now: make sure the pin came in time.
  if (!listCheckpoints(parentDir).includes(atStep)) throw noCheckpoint();
  const record = RunRecord.create(runDir, config, path.basename(runDir), {
    parent: parent.id,
    forkStep: atStep,
    checkpointUsed: path.relative(runDir, checkpointDir(path.resolve(parentDir), atStep)),
    configDiff: diffConfigs(parentConfig, config),
  });
  record.close();
  return runDir;
}

/** Validates `--set` pairs and a `--config` object into branch overrides. */
export function branchOverrides(fromFile: Record<string, unknown> | undefined, settings: readonly string[]): Partial<TrainConfig> {
  return { ...(fromFile ? validateConfig(fromFile, 'branch --config') : {}), ...validateConfig(parseSettings(settings), '--set') };
}

export interface RunListing {
  dir: string;
  id: string;
  status: RunStatus | 'unreadable';
  method: string;
  /** Last train step recorded in this run's own metrics (a branch's start at forkStep when it has none). */
  step: number;
  totalSteps: number;
  /** Best image→text recall@1 of this run's own evals (a branch's only: its parent's are the parent's). */
  bestI2tR1?: number;
  parent: string | null;
  forkStep: number | null;
  created: string;
  children: RunListing[];
}

function describeRun(dir: string): RunListing | undefined {
  if (!fs.existsSync(path.join(dir, 'run.json'))) return undefined;
  let run: RunJson;
  try {
    run = readRunJson(dir);
  } catch {
    return { dir, id: path.basename(dir), status: 'unreadable', method: '?', step: 0, totalSteps: 0, parent: null, forkStep: null, created: '', children: [] };
  }
  let step = run.forkStep ?? 0;
  let best: number | undefined;
  try {
    for (const line of readJsonl<MetricLine>(path.join(dir, 'metrics.jsonl')).rows) {
      if (line.type === 'train') step = Math.max(step, line.step);
      if (line.type === 'eval' && (best === undefined || line.i2t_r1 > best)) best = line.i2t_r1;
    }
  } catch {
    // A damaged metrics file still lists the run; resume rewrites it.
  }
  return { dir, id: run.id, status: orphaned(run) ? 'interrupted' : run.status, method: run.config.method, step, totalSteps: run.config.steps, bestI2tR1: best, parent: run.parent, forkStep: run.forkStep, created: run.created, children: [] };
}

/**
 * The runs in the folders under `root`, as a forest (`runForest`).
 */
export function listRuns(root: string): RunListing[] {
  let names: string[];
  try {
    names = fs.readdirSync(root);
  } catch {
    return [];
  }
  const runs = names.map((name) => describeRun(path.join(root, name))).filter((run): run is RunListing => run !== undefined);
  return runForest(runs);
}

/**
 * Listings (their `children` empty) as a forest: each branch under its
 * parent, oldest first; a branch whose parent is not among them is a root.
 */
export function runForest(listings: RunListing[]): RunListing[] {
  const runs = [...listings].sort((a, b) => a.created.localeCompare(b.created) || a.id.localeCompare(b.id));
  const byId = new Map<string, RunListing>();
  for (const run of runs) if (!byId.has(run.id)) byId.set(run.id, run);
  const roots: RunListing[] = [];
  for (const run of runs) {
    const parent = run.parent === null ? undefined : byId.get(run.parent);
    if (parent && parent !== run) parent.children.push(run);
    else roots.push(run);
  }
  return roots;
}
