/**
 * Every setting of a training run, with its default and a line on what it
 * does (the same text `sift train --help` prints). A config file and CLI
 * flags are validated here, at the edge, with errors that name the field.
 */
import * as fs from 'node:fs';
import { backendNames, type BackendChoice } from '../backendNames';
import { defaultModelConfig, type ModelConfig } from '../model/modelConfig';
import type { LossKind } from '../model/losses';

/**
 * How batches are chosen: `uniform` (no scoring), `jest` (learnability, joint
 * selection), `independent` (learnability, each example alone, top-k),
 * `hard-learner` and `easy-reference` (those scores, joint selection).
 */
export const methods = ['uniform', 'jest', 'independent', 'hard-learner', 'easy-reference'] as const;
export type Method = (typeof methods)[number];

/** Resolutions a forward pass can run at, on the same weights: full, half (`low`) and a quarter of the side. */
export const resolutions = ['full', 'low', 'quarter'] as const;
export type Resolution = (typeof resolutions)[number];

/** The downsampling factor of a resolution: 1, 2 or 4 (the image side is divided by it). */
export function resolutionScale(resolution: Resolution): number {
  return resolution === 'quarter' ? 4 : resolution === 'low' ? 2 : 1;
}

export interface TrainConfig {
  /** Training data: `builtin:train`, a captions folder, .jsonl, .csv/.tsv, .tar, a folder of shards or a brace pattern. */
  data: string;
  /** Eval data; empty = hold out `evalFraction` of `data`. */
  evalData: string;
  /** Share of `data` held out for eval (by seed) when no eval data is given. */
  evalFraction: number;
  /** Most eval pairs used (a deterministic subset beyond that). */
  evalSize: number;
  /** How batches are chosen. */
  method: Method;
  /** Share of each super-batch filtered out: super-batch B = batchSize / (1 − filterRatio). */
  filterRatio: number;
  /** Chunks the joint sampler draws a batch in (the paper's n). */
  chunks: number;
  /** How a candidate's conditional score is scaled as the chosen set grows: sum (the paper) or mean over its terms. */
  jointNormalization: 'sum' | 'mean';
  /** Softmax temperature of the joint sampler's draws. */
  selectionTemperature: number;
  /**
   * Weight of the learner's loss in the learnability score (jest, independent):
   * score = learnerWeight · learner loss − reference loss. 1 is the paper's
   * learnability; 0 its easy-reference score, and the learner does not score
   * the super-batch at all (no scoring FLOPs). A learner trained from scratch
   * next to a trained reference: its losses steered the picks towards pairs
   * it merely had not fit yet (swapped ones included) at 1; 0.25 measured best.
   */
  learnerWeight: number;
  /**
   * Weight of a distillation term: on each batch the learner also fits the
   * reference model's pair probabilities, computed from the reference's
   * cached embeddings of the batch (counted in the reference's FLOPs; any
   * method, uniform included, given a reference). 0, the default: on top of
   * the feature term (`distillFeatures`) it slowed JEST down (docs/results.md,
   * "Distilling the reference's embeddings").
   */
  distill: number;
  /**
   * Weight of feature distillation: on each batch the learner's image and
   * caption embeddings also fit the reference's cached ones of the same pairs
   * (1 − cosine per tower, the mean of the two; no FLOPs beyond the
   * reference's pass). Needs a reference of the learner's embedding width.
   * 0 = off; null = `selectingFeatures` for a method that selects with a
   * reference that can teach at the resolution it embeds the pool at, and
   * whose embeddings are as wide as the learner's; 0 otherwise (decided, and
   * saved in run.json, when the run first starts).
   */
  distillFeatures: number | null;
  /**
   * Every this many steps selections.jsonl also keeps the whole super-batch:
   * the rejected candidates with their scores and, for the sigmoid loss, each
   * pick's largest batch-mate terms. 0 = never.
   */
  superBatchEvery: number;
  /** Run folder of the reference model (needed by every method but uniform and hard-learner). */
  reference: string;
  /** Resolution the learner scores the super-batch at: full, low (half: a quarter of the image tokens) or quarter (a sixteenth), on the same weights (Flexi-JEST). */
  scoreResolution: Resolution;
  /** Resolution the reference embeds the pool at (once, cached): full, low or quarter, on its own weights. */
  referenceResolution: Resolution;
  /**
   * Score once every this many steps: the learner scores a cached pool of
   * B + (k − 1)·b candidates, and each of the k steps draws its batch from
   * the candidates not yet trained on, with those (stale) scores.
   */
  scoreEvery: number;
  /**
   * What to do once the learner has passed its reference (its loss on the
   * candidates the reference finds clean falls below the reference's):
   * keep selecting, mix (every other step a uniform batch), or uniform (no more scoring).
   */
  passedReference: 'keep' | 'mix' | 'uniform';
  /**
   * on: score the next step's super-batch with this step's weights (one step
   * old when it is drawn from), so that where a CPU core is free it is scored
   * on it while this step trains; off: score each super-batch with the
   * weights it is trained with. The scores do not depend on where they are
   * computed.
   */
  scoreAhead: 'on' | 'off';
  /** Share of each training batch trained at half resolution (Flexi-JEST). */
  lowResFraction: number;
  /** Optimizer steps. */
  steps: number;
  /** Pairs trained per step (b). */
  batchSize: number;
  /** Seed of every random choice (init, data order, split). */
  seed: number;
  /** TensorFlow.js backend: auto tries node-gpu → node → wasm → cpu. */
  backend: BackendChoice;
  /** Threads training and scoring run on, data-parallel (wasm and cpu backends); 0 = auto: one per core (at most 8), fewer when a step is too small to split. */
  threads: number;
  /** sigmoid (SigLIP) or softmax (CLIP). */
  loss: LossKind;
  /** Peak learning rate of AdamW. */
  learningRate: number;
  /** Linear warm-up steps before the cosine decay. */
  warmupSteps: number;
  /** Decoupled weight decay of AdamW (matrices only). */
  weightDecay: number;
  /** Eval every this many steps (and at the end). */
  evalEvery: number;
  /** Zero-shot prompt for rows with a label; `{label}` is replaced by the class name. Empty: the eval data's suggestion, else "a photo of a {label}". */
  zeroshotTemplate: string;
  /** Side of the square input image, pixels. */
  imageSize: number;
  /** Side of an image patch, pixels. */
  patchSize: number;
  /** Channels of the image tower. */
  imageWidth: number;
  /** Mixer blocks of the image tower. */
  imageDepth: number;
  /** Channels of the text tower. */
  textWidth: number;
  /** Mixer blocks of the text tower. */
  textDepth: number;
  /** Caption tokens kept. */
  textLength: number;
  /** Dimension of the shared embedding space. */
  embedDim: number;
  /** Most words in the tokenizer's vocabulary. */
  maxVocab: number;
  /** Initial SigLIP bias; empty (null) = −ln(batchSize), which avoids the plateau SigLIP's −10 falls into at small batches. */
  initBias: number | null;
  /** Write a checkpoint every this many steps (and at the end). */
  checkpointEvery: number;
  /** Checkpoints kept (newest first; those a branch starts from are always kept). */
  keepCheckpoints: number;
  /** Consecutive non-finite losses tolerated (the step is skipped) before the run fails. */
  maxBadSteps: number;
  /** Run folder; empty = `.sift/runs/<id>` under the current folder. */
  runDir: string;
}

export const defaultTrainConfig: TrainConfig = {
  data: 'builtin:train',
  evalData: 'builtin:eval',
  evalFraction: 0.05,
  evalSize: 1000,
  method: 'uniform',
  filterRatio: 0.8,
  // The paper's 16 draws; 8 and 4 did not beat it over five seeds (docs/results.md, "The joint sampler's chunks").
  chunks: 16,
  jointNormalization: 'sum',
  selectionTemperature: 1,
  // Chosen by bench:curation over three seeds on two data sets (docs/results.md, "The learner's share of learnability").
  learnerWeight: 0.25,
  distill: 0,
  distillFeatures: null,
  superBatchEvery: 25,
  reference: '',
  // Chosen by bench:curation (docs/results.md, "Cheaper selection"): half-resolution scoring and reference pass.
  scoreResolution: 'low',
  referenceResolution: 'low',
  scoreEvery: 1,
  passedReference: 'keep',
  scoreAhead: 'on',
  lowResFraction: 0,
  steps: 600,
  batchSize: 64,
  seed: 0,
  backend: 'auto',
  threads: 0,
  loss: 'sigmoid',
  learningRate: 2e-3,
  warmupSteps: 25,
  weightDecay: 1e-4,
  evalEvery: 100,
  zeroshotTemplate: '',
  imageSize: 32,
  patchSize: defaultModelConfig.patchSize,
  imageWidth: defaultModelConfig.imageWidth,
  imageDepth: defaultModelConfig.imageDepth,
  textWidth: defaultModelConfig.textWidth,
  textDepth: defaultModelConfig.textDepth,
  textLength: defaultModelConfig.textLength,
  embedDim: defaultModelConfig.embedDim,
  maxVocab: 8192,
  initBias: null,
  checkpointEvery: 100,
  keepCheckpoints: 3,
  maxBadSteps: 10,
  runDir: '',
};

/** One-line help for each field, shown by `sift train --help` (kept beside the type above). */
export const configHelp: Record<keyof TrainConfig, string> = {
  data: 'training data: builtin:train, a captions folder, .jsonl, .csv/.tsv, .tar, a shard folder or {00000..00009} pattern',
  evalData: "eval data ('' = hold out --eval-fraction of the training data)",
  evalFraction: 'share of the training data held out for eval when no eval data is given',
  evalSize: 'most eval pairs used',
  method: `how batches are chosen: ${methods.join(', ')}`,
  filterRatio: 'share of each super-batch filtered out: super-batch = batch size / (1 - filter ratio)',
  chunks: 'chunks the joint sampler draws a batch in',
  jointNormalization: 'conditional score scaling as the batch grows: sum (paper) or mean',
  selectionTemperature: 'softmax temperature of the joint sampler',
  learnerWeight: 'learnability = w · learner loss − reference loss (jest, independent): 1 = the paper, 0 = easy-reference scores and no learner pass',
  distill: "weight of fitting the reference's pair probabilities on each batch, any method given a reference (0 = off)",
  distillFeatures: "weight of fitting the reference's own embeddings of each batch's images and captions, 1 − cosine per tower (0 = off; null = 20 for the methods that select with a reference, unless it trained at full resolution only and embeds at a lower one or its embeddings are of another width; else 0)",
  superBatchEvery: 'every N steps also record the rejected candidates and batch-mate terms (0 = never)',
  reference: 'run folder of the reference model (sift reference)',
  scoreResolution: 'learner scoring resolution: full, low (half) or quarter, same weights',
  referenceResolution: 'resolution the reference embeds the pool at: full, low (half) or quarter',
  scoreEvery: 'score a cached pool of B + (k-1)*b candidates once every k steps; each step draws from the untrained rest',
  passedReference: 'once the learner passes its reference on clean-looking candidates: keep, mix (every other step uniform) or uniform',
  scoreAhead: 'on: score the next super-batch with this step\'s weights, on a free CPU core while this step trains; off: with the weights it trains with',
  lowResFraction: 'share of each batch trained at half resolution',
  steps: 'optimizer steps',
  batchSize: 'pairs trained per step',
  seed: 'seed of every random choice',
  backend: `TensorFlow.js backend: auto, ${backendNames.join(', ')}`,
  threads: 'CPU threads for data-parallel training and scoring on wasm/cpu (0 = auto: up to one per core, fewer for small steps)',
  loss: 'sigmoid (SigLIP) or softmax (CLIP)',
  learningRate: 'peak AdamW learning rate',
  warmupSteps: 'linear warm-up steps, then cosine decay',
  weightDecay: 'AdamW decoupled weight decay (matrices only)',
  evalEvery: 'eval every N steps (and at the end)',
  zeroshotTemplate: "zero-shot prompt; {label} is replaced by the class name ('' = the eval data's own, else 'a photo of a {label}')",
  imageSize: 'input image side, pixels',
  patchSize: 'image patch side, pixels',
  imageWidth: 'image tower channels',
  imageDepth: 'image tower Mixer blocks',
  textWidth: 'text tower channels',
  textDepth: 'text tower Mixer blocks',
  textLength: 'caption tokens kept',
  embedDim: 'shared embedding dimension',
  maxVocab: 'most words in the vocabulary',
  initBias: 'initial SigLIP bias (null = -ln(batch size))',
  checkpointEvery: 'checkpoint every N steps (and at the end)',
  keepCheckpoints: 'checkpoints kept (newest; branch points always kept)',
  maxBadSteps: 'consecutive non-finite losses tolerated before the run fails',
  runDir: "run folder ('' = .sift/runs/<id>)",
};

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

/** What values a setting takes: the validator below and the editor's JSON schema (scripts/config-schema.ts) both read it. */
export type FieldKind = { kind: 'string' } | { kind: 'int'; min: number } | { kind: 'number'; min: number; max: number } | { kind: 'enum'; values: readonly string[] } | { kind: 'nullable-number'; min?: number; max?: number };

export const fieldKinds: Record<keyof TrainConfig, FieldKind> = {
  data: { kind: 'string' },
  evalData: { kind: 'string' },
  evalFraction: { kind: 'number', min: 0, max: 0.5 },
  evalSize: { kind: 'int', min: 10 },
  method: { kind: 'enum', values: methods },
  filterRatio: { kind: 'number', min: 0, max: 0.95 },
  chunks: { kind: 'int', min: 1 },
  jointNormalization: { kind: 'enum', values: ['sum', 'mean'] },
  selectionTemperature: { kind: 'number', min: 0.001, max: 1000 },
  learnerWeight: { kind: 'number', min: 0, max: 10 },
  distill: { kind: 'number', min: 0, max: 10 },
  distillFeatures: { kind: 'nullable-number', min: 0, max: 100 },
  superBatchEvery: { kind: 'int', min: 0 },
  reference: { kind: 'string' },
  scoreResolution: { kind: 'enum', values: resolutions },
  referenceResolution: { kind: 'enum', values: resolutions },
  scoreEvery: { kind: 'int', min: 1 },
  passedReference: { kind: 'enum', values: ['keep', 'mix', 'uniform'] },
  scoreAhead: { kind: 'enum', values: ['on', 'off'] },
  lowResFraction: { kind: 'number', min: 0, max: 1 },
  steps: { kind: 'int', min: 1 },
  batchSize: { kind: 'int', min: 2 },
  seed: { kind: 'int', min: 0 },
  backend: { kind: 'enum', values: ['auto', ...backendNames] },
  threads: { kind: 'int', min: 0 },
  loss: { kind: 'enum', values: ['sigmoid', 'softmax'] },
  learningRate: { kind: 'number', min: 0, max: 1 },
  warmupSteps: { kind: 'int', min: 0 },
  weightDecay: { kind: 'number', min: 0, max: 1 },
  evalEvery: { kind: 'int', min: 1 },
  zeroshotTemplate: { kind: 'string' },
  imageSize: { kind: 'int', min: 8 },
  patchSize: { kind: 'int', min: 1 },
  imageWidth: { kind: 'int', min: 4 },
  imageDepth: { kind: 'int', min: 1 },
  textWidth: { kind: 'int', min: 4 },
  textDepth: { kind: 'int', min: 1 },
  textLength: { kind: 'int', min: 1 },
  embedDim: { kind: 'int', min: 2 },
  maxVocab: { kind: 'int', min: 3 },
  initBias: { kind: 'nullable-number' },
  checkpointEvery: { kind: 'int', min: 1 },
  keepCheckpoints: { kind: 'int', min: 1 },
  maxBadSteps: { kind: 'int', min: 0 },
  runDir: { kind: 'string' },
};

export const configKeys = Object.keys(fieldKinds) as (keyof TrainConfig)[];

function checkField(key: keyof TrainConfig, value: unknown, where: string): unknown {
  const kind = fieldKinds[key];
  const fail = (expected: string): never => {
    throw new ConfigError(`${where}: "${key}" is ${JSON.stringify(value)}; expected ${expected}.`);
  };
  switch (kind.kind) {
    case 'string':
      if (typeof value !== 'string') fail('a string');
      return value;
    case 'int':
      if (typeof value !== 'number' || !Number.isInteger(value) || value < kind.min) fail(`a whole number ≥ ${kind.min}`);
      return value;
    case 'number':
      if (typeof value !== 'number' || !Number.isFinite(value) || value < kind.min || value > kind.max) fail(`a number from ${kind.min} to ${kind.max}`);
      return value;
    case 'enum':
      if (typeof value !== 'string' || !kind.values.includes(value)) fail(`one of ${kind.values.join(', ')}`);
      return value;
    case 'nullable-number': {
      const range = kind.min !== undefined && kind.max !== undefined ? `a number from ${kind.min} to ${kind.max}` : 'a number';
      if (value === null) return value;
      if (typeof value !== 'number' || !Number.isFinite(value) || value < (kind.min ?? -Infinity) || value > (kind.max ?? Infinity)) fail(`${range} or null`);
      return value;
    }
    default: {
      const unknown: never = kind;
      throw new Error(`unknown field kind ${JSON.stringify(unknown)}`);
    }
  }
}

/** Nearest known key by edit distance, for "did you mean" hints. */
function closestKey(key: string): string | undefined {
  const distance = (a: string, b: string): number => {
    const row = Array.from({ length: b.length + 1 }, (_, j) => j);
    for (let i = 1; i <= a.length; i++) {
      let previous = row[0];
      row[0] = i;
      for (let j = 1; j <= b.length; j++) {
        const current = row[j];
        row[j] = Math.min(row[j] + 1, row[j - 1] + 1, previous + (a[i - 1].toLowerCase() === b[j - 1].toLowerCase() ? 0 : 1));
        previous = current;
      }
    }
    return row[b.length];
  };
  let best: string | undefined;
  let bestDistance = 4;
  for (const candidate of configKeys) {
    const d = distance(key, candidate);
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return best;
}

/** Validates a partial config (from a file or flags); `where` names its origin in errors. */
export function validateConfig(partial: Record<string, unknown>, where: string): Partial<TrainConfig> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(partial)) {
    if (key === '$schema') continue;
    if (!(key in fieldKinds)) {
      const hint = closestKey(key);
      throw new ConfigError(`${where}: unknown setting "${key}".${hint ? ` Did you mean "${hint}"?` : ''} Settings: ${configKeys.join(', ')}.`);
    }
    out[key] = checkField(key as keyof TrainConfig, value, where);
  }
  return out as Partial<TrainConfig>;
}

/** Reads a JSON config file into an unvalidated object; errors name the file. */
export function readConfigFile(file: string): Record<string, unknown> {
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (error) {
    throw new ConfigError(`${file}: cannot read the config file: ${(error as Error).message}`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new ConfigError(`${file}: a config file must hold one JSON object.`);
  return raw as Record<string, unknown>;
}

/** Whether the method's scores take the learner's pass over the candidates (easy-reference, and learnability with learnerWeight 0, do not). */
export function scoresWithLearner(config: Pick<TrainConfig, 'method' | 'learnerWeight'>): boolean {
  return config.method === 'hard-learner' || ((config.method === 'jest' || config.method === 'independent') && config.learnerWeight > 0);
}

export function needsReference(method: Method): boolean {
  return method === 'jest' || method === 'independent' || method === 'easy-reference';
}

/**
 * What a reference model trains with unless told otherwise: uniform batches, half of each at half resolution — learners
 * have it embed their pool at half resolution (`referenceResolution` low), where one trained at full resolution only
 * tells swapped captions from right ones much less well (AUC 0.963 → 0.778 on the built-in pool; trained half at half
 * resolution: 0.962) and is no teacher (docs/results.md).
 */
export const referenceDefaults: Partial<TrainConfig> = { method: 'uniform', lowResFraction: 0.5 };

/**
 * The feature-distillation weight a run selecting with a reference gets unless told otherwise: screened at 1, 5, 20
 * and 50 with the pair term at 3, measured over ten learners' seeds on each data set with and without it
 * (docs/results.md, "Distilling the reference's embeddings (`--distill-features`)").
 */
export const selectingFeatures = 20;

/** The weight of the feature term: as set, or by default `selectingFeatures` when the method selects with a reference, 0 otherwise. */
export function featureWeight(config: Pick<TrainConfig, 'method' | 'distillFeatures'>): number {
  return config.distillFeatures ?? (needsReference(config.method) ? selectingFeatures : 0);
}

/** What a starting run needs to know of its reference to settle its teacher's weights. */
export interface TeacherFacts {
  /** Share of the reference's training batches at half resolution (0: full resolution only). */
  lowResFraction: number;
  /** Width of the reference's embeddings, against `learnerDim` of the learner's. */
  embedDim: number;
  learnerDim: number;
}

/**
 * The feature weight a starting run trains with, knowing its reference. Left unset, it is 0 when a reference trained
 * at full resolution only is to embed the pool at a lower one — its targets would come from those embeddings, and
 * measured, a run that distilled from them never reached uniform's final recall (docs/results.md, "A reference
 * trained at full resolution only is no teacher at half") — and where the reference's embeddings are of another
 * width than the learner's.
 */
export function startingFeatures(config: Pick<TrainConfig, 'method' | 'distillFeatures' | 'referenceResolution'>, reference: TeacherFacts): number {
  return config.distillFeatures ?? (embedsBelowItsTraining(config, reference) || reference.embedDim !== reference.learnerDim ? 0 : featureWeight(config));
}

/** Whether the run has a reference trained at full resolution only embed the pool at a lower one (a poor filter and no teacher there). */
export function embedsBelowItsTraining(config: Pick<TrainConfig, 'referenceResolution'>, reference: { lowResFraction: number }): boolean {
  return config.referenceResolution !== 'full' && reference.lowResFraction === 0;
}

/** Whether a run loads its reference: to select with, or to distill from. */
export function usesReference(config: Pick<TrainConfig, 'method' | 'distill' | 'distillFeatures'>): boolean {
  return needsReference(config.method) || config.distill > 0 || featureWeight(config) > 0;
}

/** Candidates scored per step: b / (1 − f), rounded; b itself for uniform batches. */
export function superBatchSize(config: Pick<TrainConfig, 'method' | 'batchSize' | 'filterRatio'>): number {
  return config.method === 'uniform' ? config.batchSize : Math.round(config.batchSize / (1 - config.filterRatio));
}

/**
 * Candidates the learner scores at once: the super-batch, plus b for each
 * further step that draws from the same cached pool (`scoreEvery` > 1), so
 * that the last of those steps still draws b of B.
 */
export function scoredPoolSize(config: Pick<TrainConfig, 'method' | 'batchSize' | 'filterRatio' | 'scoreEvery'>): number {
  const superBatch = superBatchSize(config);
  return config.method === 'uniform' ? superBatch : superBatch + (Math.max(1, config.scoreEvery) - 1) * config.batchSize;
}

/**
 * What a field meant before it existed, where its default has since changed:
 * a run written then resumes and branches with the behaviour it started with.
 */
const absentFromOlderRuns: Partial<TrainConfig> = { learnerWeight: 1, scoreAhead: 'off', distill: 0, distillFeatures: 0 };

/** The config of a run on disk (its run.json), fields added since filled as they behaved then. */
export function savedConfig(saved: Partial<TrainConfig>): TrainConfig {
  return resolveConfig(absentFromOlderRuns, saved);
}

export function resolveConfig(...layers: Partial<TrainConfig>[]): TrainConfig {
  const config = Object.assign({}, defaultTrainConfig, ...layers) as TrainConfig;
  if (needsReference(config.method) && !config.reference) {
    throw new ConfigError(`method "${config.method}" scores with a reference model: give --reference RUN_DIR (train one with: sift reference --run-dir RUN_DIR).`);
  }
  if (config.imageSize % (config.patchSize * 2) !== 0) {
    throw new ConfigError(`imageSize ${config.imageSize} must be a multiple of 2 × patchSize (${config.patchSize}) so it can also be scored at half resolution.`);
  }
  for (const key of ['scoreResolution', 'referenceResolution'] as const) {
    const scale = resolutionScale(config[key]);
    if (config.imageSize % (config.patchSize * scale) !== 0) {
      throw new ConfigError(`${key} ${config[key]} needs imageSize (${config.imageSize}) to be a multiple of ${scale} × patchSize (${config.patchSize}).`);
    }
  }
  if (config.learnerWeight === 0 && config.passedReference !== 'keep' && (config.method === 'jest' || config.method === 'independent')) {
    throw new ConfigError(`passedReference ${config.passedReference} compares the learner's losses with the reference's, and learnerWeight 0 scores without the learner: set learnerWeight above 0 or passedReference keep.`);
  }
  if (config.distill > 0 && !config.reference) {
    throw new ConfigError(`distill ${config.distill} fits the learner to the reference model's pair probabilities on each batch: give --reference RUN_DIR (train one with: sift reference --run-dir RUN_DIR), or set distill 0.`);
  }
  if (config.distillFeatures !== null && config.distillFeatures > 0 && !config.reference) {
    throw new ConfigError(`distillFeatures ${config.distillFeatures} fits the learner's embeddings to the reference model's on each batch: give --reference RUN_DIR (train one with: sift reference --run-dir RUN_DIR), or set distillFeatures 0.`);
  }
  return config;
}

/** The dual encoder a config describes (hidden widths follow the tower widths). */
export function modelConfigFor(config: TrainConfig, vocabSize: number): ModelConfig {
  return {
    ...defaultModelConfig,
    imageSize: config.imageSize,
    patchSize: config.patchSize,
    imageWidth: config.imageWidth,
    imageDepth: config.imageDepth,
    imageTokenHidden: config.imageWidth,
    imageChannelHidden: config.imageWidth * 2,
    textWidth: config.textWidth,
    textDepth: config.textDepth,
    textLength: config.textLength,
    textChannelHidden: config.textWidth * 2,
    embedDim: config.embedDim,
    vocabSize,
    initBias: config.initBias ?? -Math.log(config.batchSize),
  };
}
