/**
 * `sift export RUN --out DIR`: the curated subset of a selecting run as
 * WebDataset shards or a captions folder (src/core/runs/export.ts does the
 * work; this reads the flags and reports).
 */
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { exportFormats, exportSubset, type ExportFormat, type ExportRule } from '../core/runs/export';
import { DataError } from '../core/data/types';
import { ConfigError } from '../core/train/config';

export const exportUsage =
  'Usage: sift export RUN_DIR --out DIR [--top-fraction X | --min-learnability Y | --random N [--seed S]] [--format webdataset|jsonl] [--shard-size N] [--data SPEC] [--force]';

export const exportHelp = `${exportUsage}

The pairs a selecting run (jest, independent, hard-learner, easy-reference)
picked, ranked by how often and how early it picked them, with their scores
(times picked, first and last step, mean learnability, learner and reference
loss), written as data other trainers read:

  --format webdataset   DIR/000000.tar…: <key>.png|jpg|webp, <key>.txt, <key>.json (default)
  --format jsonl        DIR/captions.jsonl + DIR/images/ (sift train --data DIR)

Which pairs (one rule at most; default: every picked pair):
  --top-fraction X      the best-ranked share X (0 < X ≤ 1) of the picked pairs
  --min-learnability Y  the picked pairs whose mean learnability is Y or more
  --random N            N pairs drawn at random from the run's training pool (--seed S, default 0): the control for a curated subset

  --shard-size N        samples per WebDataset shard (default 10000)
  --data SPEC           read the pairs from SPEC when the run's data moved
  --force               replace an earlier export in DIR

DIR/export.json records the run, the data, the rule and the counts.
`;

function number(flag: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const value = Number(text);
  if (text.trim() === '' || Number.isNaN(value)) throw new ConfigError(`--${flag}: "${text}" is not a number. ${exportUsage}`);
  return value;
}

export async function exportCommand(args: string[]): Promise<number> {
  if (args.includes('--help') || args.includes('-h')) {
    process.stdout.write(exportHelp);
    return 0;
  }
  let parsed;
  try {
    parsed = parseArgs({
      args,
      options: {
        out: { type: 'string' },
        'top-fraction': { type: 'string' },
        'min-learnability': { type: 'string' },
        random: { type: 'string' },
        seed: { type: 'string' },
        format: { type: 'string' },
        'shard-size': { type: 'string' },
        data: { type: 'string' },
        force: { type: 'boolean' },
      },
      allowPositionals: true,
      strict: true,
    });
  } catch (error) {
    throw new ConfigError(`${(error as Error).message}. ${exportUsage}`);
  }
  const { values, positionals } = parsed;
  if (positionals.length !== 1) throw new ConfigError(`sift export takes one run folder, got ${positionals.length === 0 ? 'none' : positionals.join(' ')}. ${exportUsage}`);
  if (!values.out) throw new ConfigError(`sift export needs --out DIR, the folder to write the subset to. ${exportUsage}`);
  const given = (['top-fraction', 'min-learnability', 'random'] as const).filter((flag) => values[flag] !== undefined);
  if (given.length > 1) throw new ConfigError(`--${given.join(' and --')} cannot be combined: each chooses the pairs on its own. Give one.`);
  if (values.seed !== undefined && values.random === undefined) throw new ConfigError('--seed only applies to --random N.');
  let rule: ExportRule = { kind: 'all' };
  if (values['top-fraction'] !== undefined) rule = { kind: 'top-fraction', fraction: number('top-fraction', values['top-fraction'])! };
  if (values['min-learnability'] !== undefined) rule = { kind: 'min-learnability', min: number('min-learnability', values['min-learnability'])! };
  if (values.random !== undefined) rule = { kind: 'random', count: number('random', values.random)!, seed: number('seed', values.seed) ?? 0 };
  const format = (values.format ?? 'webdataset') as ExportFormat;
  if (!exportFormats.includes(format)) throw new ConfigError(`--format must be one of ${exportFormats.join(', ')}, got "${values.format}".`);

  let last = 0;
  const manifest = await exportSubset({
    runDir: positionals[0],
    out: values.out,
    rule,
    format,
    force: values.force === true,
    data: values.data,
    shardSize: number('shard-size', values['shard-size']),
    onProgress: (done, total) => {
      const now = Date.now();
      if (now - last < 1000 && done < total) return;
      last = now;
      process.stdout.write(`Writing ${done}/${total}\n`);
    },
  }).catch((error: unknown) => {
    // A data problem met while writing (an image gone since the run) is the user's to fix, not an internal error.
    throw error instanceof DataError ? new ConfigError(error.message) : error;
  });
  const { counts, files } = manifest;
  const out = path.resolve(values.out);
  const what = rule.kind === 'random' ? `${counts.exported} pairs drawn at random from the pool of ${manifest.source.pool_size}` : `${counts.exported} of the ${counts.picked_pairs} pairs the run picked (${counts.picks} picks over ${counts.selected_steps} selected steps)`;
  const noisy = counts.known_noisy !== undefined ? `; ${counts.known_noisy} of them (${((100 * counts.known_noisy) / counts.exported).toFixed(1)}%) have a caption the data mark as wrong` : '';
  const where = files.pattern ? `${files.shards!.length} shard${files.shards!.length === 1 ? '' : 's'}: ${path.join(out, files.pattern)}` : path.join(out, files.captions!);
  process.stdout.write(`Exported ${what}${noisy}.\n${where}\nManifest: ${path.join(out, 'export.json')}\nTrain on it: sift train --data ${out}\n`);
  return 0;
}
