/**
 * `sift export`: the learnability-curated subset of a selecting run, as data
 * other trainers read. The pairs a run picked are read from its
 * selections.jsonl (along its lineage: a branch's history is its parent's
 * lines up to the fork, then its own), ranked by how often and how early they
 * were picked, and written with their scores as WebDataset shards
 * (`000000.tar`…: `<key>.png|jpg|webp`, `<key>.txt`, `<key>.json`, the layout
 * Sift's reader and open_clip's webdataset pipeline take) or as a captions
 * folder (`captions.jsonl` + `images/`, what `sift train --data DIR` reads).
 * Images of file-backed data are the original files' bytes; the built-in
 * generator's are rendered at the run's resolution and stored as PNG.
 * `export.json` records where the subset came from and how it was chosen.
 *
 * The folder is written under a temporary name beside `--out` and renamed
 * into place when whole, so an export is complete or absent.
 */
import { createWriteStream } from 'node:fs';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tar from 'tar-stream';
import { encodePng, imageExtension } from '../data/decode';
import { openDataset } from '../data/open';
import { holdOut } from '../data/subset';
import { DataError, type ImageTextDataset } from '../data/types';
import { Rng } from '../random';
import { ConfigError } from '../train/config';
import { lineageOf, visitLines } from '../../panels/runs';
import { resolveDataSpec } from '../../panels/thumbnails';
import { readRunJson, type RunJson, type SelectionLine } from './record';

export const exportFormats = ['webdataset', 'jsonl'] as const;
export type ExportFormat = (typeof exportFormats)[number];

/**
 * Which pairs go out: every pair the run picked (`all`), the best-ranked
 * share of them (`top-fraction`), those whose mean learnability reached a
 * floor (`min-learnability`), or, as the control of a measurement, `count`
 * pairs drawn uniformly from the run's training pool (`random`).
 */
export type ExportRule =
  | { kind: 'all' }
  | { kind: 'top-fraction'; fraction: number }
  | { kind: 'min-learnability'; min: number }
  | { kind: 'random'; count: number; seed: number };

/** One picked pair's record: how often, when and with which scores the run picked it. */
export interface PairScores {
  /** The pair's id in the run's data (selections.jsonl's ids). */
  id: string;
  /** Steps whose batch picked it. */
  times_picked: number;
  first_step: number;
  last_step: number;
  /** Means over its picks, where the run recorded them (learnability = learner loss − reference loss). */
  mean_learnability?: number;
  mean_learner_loss?: number;
  mean_reference_loss?: number;
}

/** The order pairs are ranked in: most often picked first, then the earliest, then the most learnable. */
export const rankingOrder = ['times_picked desc', 'first_step asc', 'mean_learnability desc', 'id asc'] as const;

export interface RankedPicks {
  /** Every picked pair, best first (see `rankingOrder`). */
  pairs: PairScores[];
  /** Steps with a selected batch. */
  selectedSteps: number;
  /** Steps of a selecting run that trained on a uniform batch (after passing its reference): not counted as picks. */
  uniformSteps: number;
  /** Picks over all selected steps (a pair picked twice counts twice). */
  picks: number;
}

interface StepPicks {
  ids: string[];
  learnability?: number[];
  learner_loss?: number[];
  reference_loss?: number[];
  selected: boolean;
}

/** A selections line of a step whose batch was chosen by scores (a uniform batch has no candidates, logits or scores). */
const isSelected = (line: SelectionLine): boolean => line.candidates !== undefined || line.pick_logit !== undefined || line.learnability !== undefined;

/** Where a run's picks are read from, for the errors below. */
const selectionsFile = (dir: string): string => path.join(dir, 'selections.jsonl');

/**
 * Reads the run's selections along its lineage and ranks the pairs it
 * picked. A repeated step (a resumed run's log) counts once, its newest line.
 * Throws a ConfigError, naming the file and the fix, for a uniform run or a
 * run that has selected nothing yet.
 */
export async function rankPicks(runDir: string, json: RunJson = readRunJson(runDir)): Promise<RankedPicks> {
  if (json.config.method === 'uniform') {
    throw new ConfigError(
      `${runDir} is a uniform run (run.json: config.method is "uniform"): its batches were drawn at random and nothing was selected, so there is no curated subset to export. ` +
        'Export a run trained with a selecting method (--method jest, independent, hard-learner or easy-reference), or pass --random N for a random sample of its pool.',
    );
  }
  const steps = new Map<number, StepPicks>();
  const chain = lineageOf(runDir, json);
  await visitLines<SelectionLine>(chain, 'selections.jsonl', (line) => {
    if (!Array.isArray(line.ids)) return;
    steps.set(line.step, { ids: line.ids, learnability: line.learnability, learner_loss: line.learner_loss, reference_loss: line.reference_loss, selected: isSelected(line) });
  });
  const byId = new Map<string, { times: number; first: number; last: number; sums: [number, number, number]; counts: [number, number, number] }>();
  let selectedSteps = 0;
  let uniformSteps = 0;
  let picks = 0;
  for (const step of [...steps.keys()].sort((a, b) => a - b)) {
    const line = steps.get(step)!;
    if (!line.selected) {
      uniformSteps++;
      continue;
    }
    selectedSteps++;
    line.ids.forEach((id, k) => {
      picks++;
      let entry = byId.get(id);
      if (!entry) {
        entry = { times: 0, first: step, last: step, sums: [0, 0, 0], counts: [0, 0, 0] };
        byId.set(id, entry);
      }
      entry.times++;
      entry.last = step;
      [line.learnability, line.learner_loss, line.reference_loss].forEach((values, f) => {
        const value = values?.[k];
        if (typeof value === 'number' && Number.isFinite(value)) {
          entry.sums[f] += value;
          entry.counts[f]++;
        }
      });
    });
  }
  if (selectedSteps === 0) {
    const file = selectionsFile(runDir);
    const why =
      steps.size === 0
        ? `${file} has no steps yet (the run has not trained a step, or the file is missing): train it first, or export another run.`
        : `the ${steps.size} step${steps.size === 1 ? '' : 's'} in ${file} all trained on uniform batches (no candidates or scores recorded), so nothing was selected.`;
    throw new ConfigError(`${runDir}: nothing to export: ${why}`);
  }
  const mean = (sum: number, count: number): number | undefined => (count > 0 ? round(sum / count) : undefined);
  const pairs: PairScores[] = [...byId].map(([id, e]) => {
    const pair: PairScores = { id, times_picked: e.times, first_step: e.first, last_step: e.last };
    const [learnability, learner, reference] = [0, 1, 2].map((f) => mean(e.sums[f], e.counts[f]));
    if (learnability !== undefined) pair.mean_learnability = learnability;
    if (learner !== undefined) pair.mean_learner_loss = learner;
    if (reference !== undefined) pair.mean_reference_loss = reference;
    return pair;
  });
  pairs.sort(comparePairs);
  return { pairs, selectedSteps, uniformSteps, picks };
}

function comparePairs(a: PairScores, b: PairScores): number {
  if (a.times_picked !== b.times_picked) return b.times_picked - a.times_picked;
  if (a.first_step !== b.first_step) return a.first_step - b.first_step;
  const la = a.mean_learnability ?? -Infinity;
  const lb = b.mean_learnability ?? -Infinity;
  if (la !== lb) return lb - la;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

/** The ranked pairs a curated rule keeps (not `random`, which draws from the pool). */
export function applyRule(ranked: readonly PairScores[], rule: Exclude<ExportRule, { kind: 'random' }>, runDir = 'the run'): PairScores[] {
  if (rule.kind === 'all') return [...ranked];
  if (rule.kind === 'top-fraction') {
    return ranked.slice(0, Math.max(1, Math.round(rule.fraction * ranked.length)));
  }
  const scored = ranked.filter((pair) => pair.mean_learnability !== undefined);
  if (scored.length === 0) {
    throw new ConfigError(
      `${runDir}: --min-learnability needs the learnability of each pick, and ${selectionsFile(runDir)} records none (a method that scores with the learner or the reference alone). Use --top-fraction instead.`,
    );
  }
  const kept = ranked.filter((pair) => pair.mean_learnability !== undefined && pair.mean_learnability >= rule.min);
  if (kept.length === 0) {
    const values = scored.map((pair) => pair.mean_learnability!);
    throw new ConfigError(
      `${runDir}: no picked pair has a mean learnability of ${rule.min} or more (the ${scored.length} picked pairs range from ${Math.min(...values)} to ${Math.max(...values)}). Lower --min-learnability, or use --top-fraction.`,
    );
  }
  return kept;
}

/** Checks a rule's numbers; the message names the flag. */
export function checkRule(rule: ExportRule): void {
  if (rule.kind === 'top-fraction' && !(Number.isFinite(rule.fraction) && rule.fraction > 0 && rule.fraction <= 1)) {
    throw new ConfigError(`--top-fraction must be a number above 0 and at most 1 (e.g. 0.2 for the best-ranked fifth of the picked pairs), got ${rule.fraction}.`);
  }
  if (rule.kind === 'min-learnability' && !Number.isFinite(rule.min)) throw new ConfigError(`--min-learnability must be a number (a loss difference, e.g. 0.5), got ${rule.min}.`);
  if (rule.kind === 'random') {
    if (!Number.isInteger(rule.count) || rule.count < 1) throw new ConfigError(`--random must be a whole number of pairs, 1 or more, got ${rule.count}.`);
    if (!Number.isInteger(rule.seed) || rule.seed < 0 || rule.seed > 0xffffffff) throw new ConfigError(`--seed must be a whole number from 0 to 4294967295, got ${rule.seed}.`);
  }
}

export interface ExportOptions {
  runDir: string;
  out: string;
  rule: ExportRule;
  format: ExportFormat;
  /** Replace `out` when it holds an earlier export. */
  force?: boolean;
  /** The data to read the pairs from, when it is no longer where run.json says (`config.data`). */
  data?: string;
  /** Folders a relative data path in run.json is resolved against (the CLI: its working folder; the editor: the workspace). */
  baseDirs?: readonly string[];
  /** Samples per WebDataset shard. */
  shardSize?: number;
  onProgress?: (done: number, total: number) => void;
}

/** export.json: how to trace the subset back to its run. */
export interface ExportManifest {
  kind: 'sift-export';
  version: 1;
  created: string;
  source: {
    run_dir: string;
    run_id: string;
    method: string;
    /** Steps the run had trained when it was exported (its last selections line). */
    steps: number;
    /** The data the pairs were read from, as resolved, and as run.json names it. */
    data: string;
    data_in_run: string;
    /** Pairs of the run's training pool (after any held-out eval split). */
    pool_size: number;
    eval_held_out: boolean;
    reference_run?: string;
  };
  rule: ExportRule;
  format: ExportFormat;
  images: string;
  counts: {
    /** Steps with a selected batch, and steps of uniform batches passed over. */
    selected_steps: number;
    uniform_steps: number;
    picks: number;
    /** Distinct pairs the run picked. */
    picked_pairs: number;
    exported: number;
    /** Exported pairs whose caption the data know to be wrong (built-in data), where known. */
    known_noisy?: number;
  };
  ranking: { order: readonly string[]; fields: Record<string, string> };
  /** WebDataset: the shards and their brace pattern; jsonl: the rows file. */
  files: { shards?: string[]; pattern?: string; captions?: string };
}

const rankingFields: Record<string, string> = {
  rank: '0-based position in the ranking (the sample key is it, zero-padded)',
  source_id: "the pair's id in the run's data (selections.jsonl)",
  times_picked: 'steps whose batch picked the pair',
  first_step: 'the first step that picked it',
  last_step: 'the last step that picked it',
  mean_learnability: 'mean over its picks of learner loss − reference loss',
  mean_learner_loss: "mean over its picks of the learner's own-pair loss",
  mean_reference_loss: "mean over its picks of the reference's own-pair loss",
};

/** One exported sample, ready to write. */
interface Sample {
  key: string;
  index: number;
  meta: Record<string, unknown>;
}

const DEFAULT_SHARD_SIZE = 10_000;
/** Images read or rendered at once. */
const IMAGE_BATCH = 64;

/** Writes the subset and its manifest; returns the manifest. */
export async function exportSubset(options: ExportOptions): Promise<ExportManifest> {
  const { runDir, rule, format } = options;
  if (!exportFormats.includes(format)) throw new ConfigError(`--format must be one of ${exportFormats.join(', ')}, got "${format}".`);
  checkRule(rule);
  const shardSize = options.shardSize ?? DEFAULT_SHARD_SIZE;
  if (!Number.isInteger(shardSize) || shardSize < 1) throw new ConfigError(`--shard-size must be a whole number of samples, 1 or more, got ${shardSize}.`);
  const out = path.resolve(options.out);
  checkOut(out, options.force === true);

  let json: RunJson;
  try {
    json = readRunJson(runDir);
  } catch (error) {
    throw new ConfigError(`sift export ${runDir}: ${(error as Error).message} Pass the folder of a run, e.g. .sift/runs/<run-id>.`);
  }
  // A random sample needs no selections; its scores are still recorded where the run picked the pair.
  const ranked = rule.kind === 'random' && json.config.method === 'uniform' ? undefined : await rankPicks(runDir, json);
  const chosen = rule.kind === 'random' ? undefined : applyRule(ranked!.pairs, rule, runDir);

  const dataSpec = options.data ?? resolveDataSpec(json.config.data, options.baseDirs ?? [process.cwd()]);
  const { pool, close } = await openPool(dataSpec, json, options.data !== undefined);
  try {
    const indexOf = new Map<string, number>();
    for (let i = 0; i < pool.size; i++) indexOf.set(pool.id(i), i);
    const scoresOf = new Map((ranked?.pairs ?? []).map((pair) => [pair.id, pair]));

    let rows: { index: number; scores?: PairScores }[];
    if (chosen) {
      const missing = chosen.filter((pair) => !indexOf.has(pair.id));
      if (missing.length > 0) {
        throw new ConfigError(
          `${missing.length} of the ${chosen.length} pairs to export (e.g. id "${missing[0].id}" from ${selectionsFile(runDir)}) are not in ${dataSpec}: the data changed since the run, or it is not the run's data. Pass --data with the data the run trained on.`,
        );
      }
      rows = chosen.map((pair) => ({ index: indexOf.get(pair.id)!, scores: pair }));
    } else {
      const { count, seed } = rule as Extract<ExportRule, { kind: 'random' }>;
      if (count > pool.size) throw new ConfigError(`--random ${count}: the run's training pool (${dataSpec}) has only ${pool.size} pairs.`);
      const order = new Rng(seed).shuffle([...Array(pool.size).keys()]).slice(0, count);
      rows = order.map((index) => ({ index, scores: scoresOf.get(pool.id(index)) }));
    }

    const width = Math.max(6, String(rows.length - 1).length);
    const samples: Sample[] = rows.map(({ index, scores }, rank) => {
      const meta: Record<string, unknown> = { caption: pool.caption(index) };
      const label = pool.label(index);
      if (label !== undefined) meta.label = label;
      const noisy = pool.noisy(index);
      if (noisy !== undefined) meta.noisy = noisy;
      meta.rank = rank;
      meta.source_id = pool.id(index);
      if (scores) {
        for (const [field, value] of Object.entries(scores)) if (field !== 'id') meta[field] = value;
      } else {
        meta.times_picked = 0;
      }
      return { key: String(rank).padStart(width, '0'), index, meta };
    });
    const noisyFlags = rows.map(({ index }) => pool.noisy(index));
    const knownNoisy = noisyFlags.every((flag) => flag !== undefined) ? noisyFlags.filter(Boolean).length : undefined;

    const builtin = pool.imageBytes === undefined;
    const resolution = json.config.imageSize;
    const manifest: ExportManifest = {
      kind: 'sift-export',
      version: 1,
      created: new Date().toISOString(),
      source: {
        run_dir: path.resolve(runDir),
        run_id: json.id,
        method: json.config.method,
        steps: json.summary?.steps ?? lastStep(ranked),
        data: dataSpec,
        data_in_run: json.config.data,
        pool_size: pool.size,
        eval_held_out: !json.config.evalData,
        ...(json.referenceRun ? { reference_run: json.referenceRun.dir } : {}),
      },
      rule,
      format,
      images: builtin ? `rendered by the built-in generator at ${resolution}×${resolution} px (the run's imageSize), stored as PNG` : "the data's own image files, byte for byte",
      counts: {
        selected_steps: ranked?.selectedSteps ?? 0,
        uniform_steps: ranked?.uniformSteps ?? 0,
        picks: ranked?.picks ?? 0,
        picked_pairs: ranked?.pairs.length ?? 0,
        exported: samples.length,
        ...(knownNoisy !== undefined ? { known_noisy: knownNoisy } : {}),
      },
      ranking: { order: rule.kind === 'random' ? ['random draw from the pool (seeded)'] : rankingOrder, fields: rankingFields },
      files: {},
    };

    const partial = path.join(path.dirname(out), `.${path.basename(out)}.partial-${process.pid}`);
    fs.rmSync(partial, { recursive: true, force: true });
    fs.mkdirSync(partial, { recursive: true });
    try {
      const images = imageReader(pool, resolution);
      if (format === 'webdataset') {
        manifest.files = await writeShards(partial, samples, shardSize, images, options.onProgress);
      } else {
        manifest.files = await writeCaptionsFolder(partial, samples, images, options.onProgress);
      }
      fs.writeFileSync(path.join(partial, 'export.json'), JSON.stringify(manifest, null, 2) + '\n');
      replaceFolder(partial, out);
    } catch (error) {
      fs.rmSync(partial, { recursive: true, force: true });
      throw error;
    }
    return manifest;
  } finally {
    await close();
  }
}

const lastStep = (ranked: RankedPicks | undefined): number => Math.max(0, ...(ranked?.pairs.map((pair) => pair.last_step) ?? []));

/**
 * Refuses an `--out` that holds files, unless `force` and it is an earlier
 * export (export.json): --force never deletes a folder Sift did not write.
 */
function checkOut(out: string, force: boolean): void {
  let entries: string[];
  try {
    entries = fs.readdirSync(out);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return;
    if (code === 'ENOTDIR') throw new ConfigError(`--out ${out} is a file: give a folder to create (or an empty one).`);
    throw error;
  }
  if (entries.length === 0) return;
  if (!force) throw new ConfigError(`--out ${out} exists and is not empty (${entries.length} entr${entries.length === 1 ? 'y' : 'ies'}): choose a new or empty folder, or pass --force to replace an earlier export there.`);
  if (!entries.includes('export.json')) {
    throw new ConfigError(`--out ${out} is not empty and holds no export.json, so it is not an earlier export: --force only replaces those. Choose a new or empty folder.`);
  }
}

/** Puts the finished export at `out`, replacing what was there (checked by checkOut). */
function replaceFolder(partial: string, out: string): void {
  if (fs.existsSync(out)) {
    const old = `${partial}.old`;
    fs.renameSync(out, old);
    fs.renameSync(partial, out);
    fs.rmSync(old, { recursive: true, force: true });
  } else {
    fs.renameSync(partial, out);
  }
}

/** The run's training pool: its data, less the eval split it held out (picks are only ever from the rest). */
async function openPool(spec: string, json: RunJson, given: boolean): Promise<{ pool: ImageTextDataset; close: () => Promise<void> }> {
  let base: ImageTextDataset;
  try {
    base = await openDataset(spec, { resolution: json.config.imageSize });
  } catch (error) {
    if (!(error instanceof DataError)) throw error;
    const where = given ? '--data' : "run.json config.data; if it moved, pass --data with where it is now";
    throw new ConfigError(`Cannot open the run's data ${spec} (${where}): ${error.message}`);
  }
  const pool = json.config.evalData ? base : holdOut(base, json.config.evalFraction, json.config.seed).train;
  return { pool, close: () => base.close() };
}

/** An image's bytes and extension: the file's own for file-backed data; a PNG of the rendered pixels for the built-in generator. */
type ImageReader = (indices: readonly number[]) => Promise<{ bytes: Uint8Array; ext: string }[]>;

function imageReader(pool: ImageTextDataset, resolution: number): ImageReader {
  const read = pool.imageBytes?.bind(pool);
  if (read) {
    return (indices) =>
      Promise.all(
        indices.map(async (index) => {
          const bytes = await read(index);
          const ext = imageExtension(bytes);
          if (!ext) throw new DataError(`${pool.source}: the image of pair ${pool.id(index)} is neither PNG, JPEG nor WebP; it cannot be exported as it is.`);
          return { bytes, ext };
        }),
      );
  }
  const floats = resolution * resolution * 3;
  return async (indices) => {
    const pixels = await pool.loadImages(indices);
    return Promise.all(indices.map(async (_, k) => ({ bytes: await encodePng(pixels.subarray(k * floats, (k + 1) * floats), resolution), ext: 'png' })));
  };
}

async function writeShards(dir: string, samples: readonly Sample[], shardSize: number, images: ImageReader, onProgress?: (done: number, total: number) => void): Promise<ExportManifest['files']> {
  const shards: string[] = [];
  const count = Math.ceil(samples.length / shardSize);
  const width = Math.max(6, String(count - 1).length);
  const mtime = new Date(0);
  let done = 0;
  for (let s = 0; s < count; s++) {
    const name = `${String(s).padStart(width, '0')}.tar`;
    shards.push(name);
    const pack = tar.pack();
    const file = createWriteStream(path.join(dir, name));
    const written = new Promise<void>((resolve, reject) => {
      // 'close' also ends a stream destroyed after a failure, which never finishes.
      file.on('finish', resolve).on('close', resolve).on('error', reject);
      pack.on('error', reject);
    });
    pack.pipe(file);
    const add = (member: string, bytes: Uint8Array): Promise<void> =>
      new Promise((resolve, reject) => {
        pack.entry({ name: member, size: bytes.length, mtime, mode: 0o644 }, Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), (error) => (error ? reject(error) : resolve()));
      });
    try {
      const shard = samples.slice(s * shardSize, (s + 1) * shardSize);
      for (let start = 0; start < shard.length; start += IMAGE_BATCH) {
        const chunk = shard.slice(start, start + IMAGE_BATCH);
        const read = await images(chunk.map((sample) => sample.index));
        for (let k = 0; k < chunk.length; k++) {
          const { key, meta } = chunk[k];
          const { caption, ...rest } = meta;
          // A sample's members are adjacent, image first: the WebDataset convention.
          await add(`${key}.${read[k].ext}`, read[k].bytes);
          await add(`${key}.txt`, Buffer.from(String(caption), 'utf8'));
          await add(`${key}.json`, Buffer.from(JSON.stringify(rest), 'utf8'));
        }
        done += chunk.length;
        onProgress?.(done, samples.length);
      }
      pack.finalize();
    } catch (error) {
      pack.destroy(error as Error);
      file.destroy();
      await written.catch(() => undefined);
      throw error;
    }
    await written;
  }
  const pattern = count === 1 ? shards[0] : `{${shards[0].slice(0, -4)}..${shards[count - 1].slice(0, -4)}}.tar`;
  return { shards, pattern };
}

async function writeCaptionsFolder(dir: string, samples: readonly Sample[], images: ImageReader, onProgress?: (done: number, total: number) => void): Promise<ExportManifest['files']> {
  fs.mkdirSync(path.join(dir, 'images'));
  const lines: string[] = [];
  for (let start = 0; start < samples.length; start += IMAGE_BATCH) {
    const chunk = samples.slice(start, start + IMAGE_BATCH);
    const read = await images(chunk.map((sample) => sample.index));
    await Promise.all(
      chunk.map(async ({ key, meta }, k) => {
        const image = `images/${key}.${read[k].ext}`;
        await fs.promises.writeFile(path.join(dir, image), read[k].bytes);
        lines[start + k] = JSON.stringify({ image, ...meta });
      }),
    );
    onProgress?.(start + chunk.length, samples.length);
  }
  fs.writeFileSync(path.join(dir, 'captions.jsonl'), lines.map((line) => line + '\n').join(''));
  return { captions: 'captions.jsonl' };
}

const round = (value: number): number => Math.round(value * 1e4) / 1e4;
