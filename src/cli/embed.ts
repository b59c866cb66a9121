/**
 * `sift embed --reference REF --data POOL [--shard i/N]`: the reference's
 * embeddings of a training pool, written into the reference's cache where a
 * `sift train --method jest --reference REF` run reads them
 * (src/core/train/embedShards.ts). One shard per process, e.g. one task of a
 * Slurm job array (scripts/slurm/embed-array.sbatch); the shard that
 * completes the set assembles the cache.
 */
import { spawnSync } from 'node:child_process';
import { selectBackend } from '../core/backend';
import { openDataset } from '../core/data/open';
import { holdOut } from '../core/data/subset';
import type { ImageTextDataset } from '../core/data/types';
import { cacheComplete, fillReferenceCache, parseShard, shardsPresent, writeShard, type EmbedTarget, type ShardSpec } from '../core/train/embedShards';
import { ConfigError, resolutionScale, type TrainConfig } from '../core/train/config';
import { loadReference, ReferenceError, referenceCacheFile } from '../core/train/reference';

export const embedHelp = `Usage: sift embed --reference REF_RUN --data POOL [--shard i/N] [training options]

Embeds the training pool POOL with the reference run REF_RUN once, into
REF_RUN/embeddings/ (keyed by the pool's content and the checkpoint), where
sift train --method jest --reference REF_RUN --data POOL reads it instead of
embedding the pool itself.

  --slurm N     submit the N shards as a Slurm job array (sbatch --array=0-(N-1)
                --wrap "sift embed … --shard i/N") and print its job id; or
                sbatch scripts/slurm/embed-array.sbatch yourself
  --shard i/N   only shard i of N (0 ≤ i < N): a contiguous range of the pool,
                written to REF_RUN/embeddings/<key>.shards/i-of-N.bin
                (atomically). The shard that completes the set assembles
                <key>.bin, byte for byte the cache one process would write.
                In a Slurm array: --shard $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT
                (scripts/slurm/embed-array.sbatch). Without --shard: every
                shard still missing (all of the pool when none is there).

Give the same data options the training run will have (--data, --eval-data,
--eval-fraction, --seed, --image-size, --reference-resolution): with
--eval-data '' the run holds out part of --data for eval and embeds the
rest, and so does this. A training run that finds shards missing embeds those
itself and says so in its log.
`;

/** The pool a training run with `config` embeds: its training data, less the eval hold-out when --eval-data is '' (as the trainer opens it). */
async function trainingPool(config: TrainConfig, opened: ImageTextDataset[]): Promise<ImageTextDataset> {
  const dataset = await openDataset(config.data, { resolution: config.imageSize });
  opened.push(dataset);
  return config.evalData ? dataset : holdOut(dataset, config.evalFraction, config.seed).train;
}

/** Splits `--shard i/N` and `--slurm N` (or `--flag=value`) off the training options. */
export function takeShardFlag(args: string[]): { shard?: ShardSpec; slurm?: number; rest: string[] } {
  const rest: string[] = [];
  let shard: ShardSpec | undefined;
  let slurm: number | undefined;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    const flag = /^--(shard|slurm)(?:=(.*))?$/.exec(arg);
    if (!flag) {
      rest.push(arg);
      continue;
    }
    const value = flag[2] ?? args[++i] ?? '';
    if (flag[1] === 'slurm') {
      slurm = Number(value);
      if (!Number.isInteger(slurm) || slurm < 1) throw new ConfigError(`--slurm "${value}": expected the number of array tasks, e.g. --slurm 8.`);
      continue;
    }
    try {
      shard = parseShard(value);
    } catch (error) {
      throw new ConfigError((error as Error).message);
    }
  }
  if (shard && slurm) throw new ConfigError('--shard and --slurm do not go together: --slurm N submits the N tasks, each with its own --shard i/N.');
  return { shard, slurm, rest };
}

const shellQuote = (word: string): string => `'${word.replace(/'/g, `'\\''`)}'`;

/**
 * `sift embed --slurm N …`: submits the array that runs `sift embed … --shard
 * i/N` for i < N (sbatch --wrap; this same command line, from this folder),
 * prints its job id and the dependent training job to submit. sbatch's own
 * SBATCH_* variables (SBATCH_PARTITION, SBATCH_ACCOUNT, …) apply.
 */
export function submitEmbedArray(options: string[], count: number): number {
  const self = [process.execPath, ...process.execArgv, process.argv[1]].map(shellQuote).join(' ');
  const wrap = `exec ${self} embed ${options.map(shellQuote).join(' ')} --shard "$SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT"`;
  const result = spawnSync('sbatch', ['--parsable', `--array=0-${count - 1}`, '--job-name=sift-embed', '--output=sift-embed-%A_%a.out', `--wrap=${wrap}`], { encoding: 'utf8' });
  if (result.error || result.status !== 0) {
    process.stderr.write(`sift embed --slurm: sbatch ${result.error ? `did not run (${result.error.message}); is Slurm installed here?` : `failed: ${result.stderr.trim()}`}\n`);
    return 1;
  }
  const job = result.stdout.trim().split(';')[0];
  process.stdout.write(
    `Submitted the embedding array ${job} (${count} tasks, logs sift-embed-${job}_<i>.out); the last task to finish assembles the cache.\n` +
      `Train when it has: sbatch --dependency=afterok:${job} scripts/slurm/train.sbatch REF_RUN POOL [sift train options]\n`,
  );
  return 0;
}

export async function embedCommand(config: TrainConfig, shard: ShardSpec | undefined): Promise<number> {
  if (!config.reference) throw new ConfigError('sift embed needs --reference REF_RUN (train one with: sift reference --run-dir REF_RUN).');
  const backend = await selectBackend(config.backend);
  if (backend.warning) process.stderr.write(`sift embed: ${backend.warning}\n`);
  const opened: ImageTextDataset[] = [];
  let reference;
  try {
    reference = loadReference(config.reference);
  } catch (error) {
    if (error instanceof ReferenceError) {
      process.stderr.write(`sift embed: ${error.message}\n`);
      return 1;
    }
    throw error;
  }
  try {
    const dataset = await trainingPool(config, opened);
    if (reference.model.config.imageSize !== dataset.resolution) {
      process.stderr.write(`sift embed: the reference ${reference.dir} was trained on ${reference.model.config.imageSize}px images; --image-size is ${dataset.resolution}. Give --image-size ${reference.model.config.imageSize}.\n`);
      return 1;
    }
    const scale = resolutionScale(config.referenceResolution);
    const target: EmbedTarget = { model: reference.model, tokenizer: reference.tokenizer, dataset, scale, cacheFile: referenceCacheFile(reference, dataset, scale), referenceStep: reference.step };
    const say = (text: string): boolean => process.stdout.write(`${text}\n`);
    say(`Pool ${dataset.source}: ${dataset.size} pairs; reference ${reference.dir} (step ${reference.step}); backend ${backend.chosen}.`);
    if (cacheComplete(target)) {
      say(`The cache is already complete: ${target.cacheFile}`);
      return 0;
    }
    if (!shard) {
      // Every shard still missing of the most complete set there is; the whole pool in one go when there is none.
      const began = performance.now();
      let lastShown = 0;
      const filled = await fillReferenceCache(target, (done, total) => {
        if (done === total || done - lastShown >= Math.max(1, Math.floor(total / 10))) {
          lastShown = done;
          say(`  ${done}/${total} pairs`);
        }
      });
      say(`Reference embeddings ${filled.note} in ${((performance.now() - began) / 1000).toFixed(1)} s: ${target.cacheFile}`);
      return 0;
    }
    const { count } = shard;
    const shards = [shard.index];
    for (const index of shards) {
      let lastShown = 0;
      const result = await writeShard(target, index, count, (done, total) => {
        if (done === total || done - lastShown >= Math.max(1, Math.floor(total / 10))) {
          lastShown = done;
          process.stdout.write(`  shard ${index}/${count}: ${done}/${total} pairs\n`);
        }
      });
      say(
        result.skipped
          ? `Shard ${index}/${count} (pairs ${result.start}–${result.end}) was already there: ${result.file}`
          : `Shard ${index}/${count}: embedded pairs ${result.start}–${result.end} (${result.end - result.start}) in ${result.seconds.toFixed(1)} s: ${result.file}`,
      );
      if (result.assembled) say(`All ${count} shards present: assembled the cache ${target.cacheFile}`);
    }
    if (!cacheComplete(target)) {
      const have = shardsPresent(target).get(count) ?? [];
      const missing = Array.from({ length: count }, (_, i) => i).filter((i) => !have.includes(i));
      say(`Waiting for shards ${missing.map((i) => `${i}/${count}`).join(', ')} (sift embed … --shard i/${count}); the last one to finish assembles the cache.`);
    }
    return 0;
  } finally {
    reference.model.dispose();
    await Promise.all(opened.map((dataset) => dataset.close()));
  }
}
