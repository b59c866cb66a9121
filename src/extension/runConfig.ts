/**
 * From the user's settings (`sift.*`) and a run configuration file
 * (`*.sift.json`) to the config a worker trains. Layers, later wins:
 *
 *     built-in defaults < sift.* settings < the config file < the run folder chosen here
 *
 * Relative paths in a config (data, eval data, reference, runDir) mean the
 * same as for `sift train --config` run in the workspace folder: the worker's
 * working folder is the workspace folder. Validation is core's
 * (validateConfig, resolveConfig), so the editor reports exactly what the CLI
 * would, before a worker is forked.
 *
 * No editor imports: the extension reads the settings and passes them in.
 */
import * as path from 'node:path';
import type { BackendChoice } from '../core/backend';
import { newRunId } from '../core/runs/record';
import { defaultTrainConfig, readConfigFile, referenceDefaults, resolveConfig, validateConfig, type TrainConfig } from '../core/train/config';

/** `gpu` is the user's word for the node-gpu backend (tfjs-node-gpu, CUDA). */
export const backendSettings = ['auto', 'gpu', 'webgpu', 'node', 'wasm', 'cpu'] as const;
export type BackendSetting = (typeof backendSettings)[number];

export interface SiftSettings {
  backend: BackendSetting;
  /** Where new runs go and what the Runs view lists; relative to the workspace folder. */
  runsFolder: string;
  /** A `*.sift.json` offered first by Start Training Run; relative to the workspace folder. */
  defaultConfig: string;
  evalInterval: number;
  checkpointInterval: number;
}

export const defaultSettings: SiftSettings = {
  backend: 'auto',
  runsFolder: path.join('.sift', 'runs'),
  defaultConfig: '',
  evalInterval: defaultTrainConfig.evalEvery,
  checkpointInterval: defaultTrainConfig.checkpointEvery,
};

export function backendChoice(setting: BackendSetting): BackendChoice {
  return setting === 'gpu' ? 'node-gpu' : setting;
}

/** Settings as read from the editor, each checked, unknown values replaced by the default (and named in `problems`). */
export function readSettings(get: <T>(key: keyof SiftSettings) => T | undefined): { settings: SiftSettings; problems: string[] } {
  const problems: string[] = [];
  const pick = <K extends keyof SiftSettings>(key: K, ok: (value: unknown) => boolean): SiftSettings[K] => {
    const value = get<SiftSettings[K]>(key);
    if (value === undefined || value === null) return defaultSettings[key];
    if (ok(value)) return value;
    problems.push(`sift.${key} is ${JSON.stringify(value)}; using ${JSON.stringify(defaultSettings[key])}.`);
    return defaultSettings[key];
  };
  const positiveInt = (v: unknown): boolean => typeof v === 'number' && Number.isInteger(v) && v >= 1;
  return {
    settings: {
      backend: pick('backend', (v) => backendSettings.includes(v as BackendSetting)),
      runsFolder: pick('runsFolder', (v) => typeof v === 'string' && v.trim() !== ''),
      defaultConfig: pick('defaultConfig', (v) => typeof v === 'string'),
      evalInterval: pick('evalInterval', positiveInt),
      checkpointInterval: pick('checkpointInterval', positiveInt),
    },
    problems,
  };
}

/** The runs folder as an absolute path. */
export function runsRoot(settings: Pick<SiftSettings, 'runsFolder'>, workspace: string): string {
  return path.resolve(workspace, settings.runsFolder);
}

/** The layer the settings put under a config file. */
function settingsLayer(settings: SiftSettings): Partial<TrainConfig> {
  return {
    evalEvery: settings.evalInterval,
    checkpointEvery: settings.checkpointInterval,
    ...(settings.backend === 'auto' ? {} : { backend: backendChoice(settings.backend) }),
  };
}

export interface RunConfigOptions {
  settings: SiftSettings;
  workspace: string;
  /** Names the new run's folder when the config names none; default a fresh run id. */
  runId?: string;
}

/**
 * A new run's config from a config file's object (unvalidated, as read):
 * validated, layered on the settings, with its run folder decided. Throws
 * ConfigError naming `where` and the field.
 */
export function newRunConfig(file: Record<string, unknown>, where: string, options: RunConfigOptions): TrainConfig {
  const fromFile = validateConfig(file, where);
  const runDir = fromFile.runDir || path.join(runsRoot(options.settings, options.workspace), options.runId ?? newRunId());
  return resolveConfig(settingsLayer(options.settings), fromFile, { runDir });
}

/** Reads a `*.sift.json` and makes the run config from it (errors name the file). */
export function runConfigFromFile(file: string, options: RunConfigOptions): TrainConfig {
  return newRunConfig(readConfigFile(file), path.relative(options.workspace, file) || file, options);
}

/**
 * A reference model's config: the model shape and schedule of `file` (or the
 * defaults), trained uniformly on the curated data (half of each batch at half
 * resolution unless the file says otherwise), in `ref-<id>` beside the other runs.
 */
export function referenceRunConfig(file: Record<string, unknown> | undefined, where: string, curatedData: string, options: RunConfigOptions): TrainConfig {
  const fromFile = file ? validateConfig(file, where) : {};
  const runDir = path.join(runsRoot(options.settings, options.workspace), `ref-${options.runId ?? newRunId()}`);
  return resolveConfig(settingsLayer(options.settings), referenceDefaults, fromFile, { method: 'uniform', reference: '', data: curatedData, runDir });
}

export interface ConfigTemplate {
  label: string;
  detail: string;
  /** The file name offered. */
  name: string;
  config: Partial<TrainConfig>;
}

/** What New Run Configuration offers. Every field is validated by the unit tests. */
export const configTemplates: ConfigTemplate[] = [
  {
    label: 'Uniform baseline on built-in data',
    detail: 'Random batches: the baseline every curated run is compared to. About 10 minutes on the wasm backend.',
    name: 'baseline.sift.json',
    config: { data: 'builtin:train', evalData: 'builtin:eval', method: 'uniform', steps: 600, batchSize: 64, evalEvery: 100, checkpointEvery: 100 },
  },
  {
    label: 'JEST with a reference model',
    detail: 'Learnability scores and joint selection. Train a reference first (Sift: Train Reference Model…) and set "reference" to its folder.',
    name: 'jest.sift.json',
    config: { data: 'builtin:train', evalData: 'builtin:eval', method: 'jest', reference: '.sift/runs/ref-REPLACE', filterRatio: 0.8, steps: 600, batchSize: 64, evalEvery: 100 },
  },
  {
    label: 'Quick smoke test',
    detail: 'A tiny model and 200 steps on small built-in data: a run in well under a minute, to try the editor.',
    name: 'quick.sift.json',
    config: {
      data: 'builtin:train?size=2000',
      evalData: 'builtin:eval?size=200',
      method: 'uniform',
      steps: 200,
      batchSize: 16,
      imageWidth: 16,
      textWidth: 16,
      imageDepth: 1,
      textDepth: 1,
      embedDim: 16,
      evalEvery: 50,
      checkpointEvery: 50,
    },
  },
];

export function templateText(template: ConfigTemplate): string {
  return `${JSON.stringify(template.config, null, 2)}\n`;
}
