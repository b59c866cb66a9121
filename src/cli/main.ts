/**
 * `sift`: the headless entry. `sift train`, `resume` and `branch` fork the
 * same training worker the editor drives (src/cli/runs.ts); `sift doctor` says which TensorFlow.js backend runs and why the
 * others did not; `sift demo` is the README's one-command story.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { adapterLabel, probeBackends, selectBackend, webGpuFix, type BackendAttempt, type BackendName, type WebGpuAdapter } from '../core/backend';
import { configHelp, configKeys, ConfigError, defaultTrainConfig, readConfigFile, referenceDefaults, resolveConfig, validateConfig, type TrainConfig } from '../core/train/config';
import { comparableMetrics, compareRuns, comparisonMarkdown, type ComparableMetric } from '../core/runs/compare';
import type { NativeMatMulStatus } from '../core/nativeMatMul';
import { newRunId } from '../core/runs/record';
import { threadsFor } from '../core/train/replicas';
import { demo } from './demo';
import { exportCommand } from './export';
import { embedCommand, embedHelp, submitEmbedArray, takeShardFlag } from './embed';
import { branch, exitCodesHelp, resume, runs, trainInWorker } from './runs';

const kebab = (key: string): string => key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

const usage = `Usage: sift <command> [options]

Commands:
  train     train a dual encoder (sift train --help for every option)
  reference train a reference model on curated data (same options; --data defaults to builtin:curated, --low-res-fraction to 0.5)
  compare   RUN_DIR... [--target-metric i2t_r1] [--target X] [--out DIR]: examples and FLOPs each run needed to reach the target
  resume    RUN_DIR: continue a paused, stopped or interrupted run from its newest checkpoint
  branch    RUN_DIR --at-step N [--set key=value ...]: a new run from a checkpoint, with changed settings
  runs      [DIR]: the runs in DIR (default .sift/runs) as a tree of branches
  embed     --reference REF_RUN --data POOL [--shard i/N | --slurm N]: the reference's embeddings of a pool, cached where training reads them; one shard per process, e.g. a Slurm array (sift embed --help)
  export    RUN_DIR --out DIR [--top-fraction X | --min-learnability Y] [--format webdataset|jsonl]: the pairs a selecting run picked, ranked, as data (sift export --help)
  demo      the story on built-in data: reference and uniform side by side, then JEST, then the comparison (~3 min on 2 cores, ~10 without the native matMul; --quick ~1 min)
  doctor    [--json]: which TensorFlow.js backends load here, and why the others do not
  help      this text

In a terminal, Ctrl-C pauses a run (checkpointed; Enter resumes), a second Ctrl-C stops it.
${exitCodesHelp}
`;

/** What `sift reference` starts from: the curated split, and a reference's own defaults. */
const referenceBase: Partial<TrainConfig> = { data: 'builtin:curated', ...referenceDefaults };

function trainHelp(defaults: TrainConfig = defaultTrainConfig): string {
  const width = Math.max(...configKeys.map((key) => kebab(key).length)) + 3;
  const lines = configKeys.map((key) => {
    const flag = `--${kebab(key)}`;
    const value = JSON.stringify(defaults[key]);
    return `  ${flag.padEnd(width)} ${configHelp[key]} (default ${value})`;
  });
  return `Usage: sift train [--config FILE.json] [options]

Flags override the config file; the config file overrides the defaults.
A config file is JSON with the same names in camelCase (e.g. "batchSize").
A value that starts with a dash needs an equals sign: --init-bias=-10.

  ${'--config FILE'.padEnd(width)} JSON config file
${lines.join('\n')}
`;
}

/** Reads --config and flags into a validated config. Numbers are parsed per field. */
function configFromArgs(args: string[], base: Partial<TrainConfig> = {}): TrainConfig {
  const options: Record<string, { type: 'string' }> = { config: { type: 'string' } };
  for (const key of configKeys) options[kebab(key)] = { type: 'string' };
  let parsed;
  try {
    parsed = parseArgs({ args, options, allowPositionals: false, strict: true });
  } catch (error) {
    throw new ConfigError(`${(error as Error).message}. See sift train --help.`);
  }
  const file = parsed.values.config as string | undefined;
  const fromFile: Partial<TrainConfig> = file ? validateConfig(readConfigFile(file), file) : {};
  const fromFlags: Record<string, unknown> = {};
  for (const key of configKeys) {
    const value = parsed.values[kebab(key)] as string | undefined;
    if (value === undefined) continue;
    const example = defaultTrainConfig[key];
    if (typeof example === 'number' || example === null) {
      const number = value === 'null' && example === null ? null : Number(value);
      if (number !== null && (value.trim() === '' || Number.isNaN(number))) throw new ConfigError(`--${kebab(key)}: "${value}" is not a number.`);
      fromFlags[key] = number;
    } else {
      fromFlags[key] = value;
    }
  }
  return resolveConfig(base, fromFile, validateConfig(fromFlags, 'command line'));
}

const compareUsage = `Usage: sift compare RUN_DIR... [--target-metric METRIC] [--target X] [--out DIR]

How many trained examples and FLOPs each run needed to first reach a target:
by default the final value of the plain uniform run among them (one that
distils from a reference is a compared run, not the baseline). Speed-ups are
uniform's ÷ the run's (above 1× the run needed less); strict is against what
uniform needed to first reach its final value, budget against uniform's whole
run. FLOPs include training, the learner's scoring and the reference's pass
over the pool, not the reference's own training.

  --target-metric   ${comparableMetrics.join(', ')} (default i2t_r1)
  --target          the value to reach instead of uniform's final one
  --out             where compare.md and compare.json go (default .sift/compare/<id>)
`;

async function compare(args: string[]): Promise<number> {
  if (args.includes('--help') || args.includes('-h')) {
    process.stdout.write(compareUsage);
    return 0;
  }
  let parsed;
  try {
    parsed = parseArgs({ args, options: { 'target-metric': { type: 'string' }, target: { type: 'string' }, out: { type: 'string' } }, allowPositionals: true, strict: true });
  } catch (error) {
    throw new ConfigError(`${(error as Error).message}.\n\n${compareUsage}`);
  }
  const dirs = parsed.positionals;
  if (dirs.length === 0) throw new ConfigError(`sift compare needs at least one run folder.\n\n${compareUsage}`);
  const metric = (parsed.values['target-metric'] ?? 'i2t_r1') as ComparableMetric;
  if (!comparableMetrics.includes(metric)) throw new ConfigError(`--target-metric: "${metric}" is not one of ${comparableMetrics.join(', ')}.`);
  const targetText = parsed.values.target;
  const target = targetText === undefined ? undefined : Number(targetText);
  if (target !== undefined && !Number.isFinite(target)) throw new ConfigError(`--target: "${targetText}" is not a number.`);
  const comparison = await compareRuns(dirs, { metric, target });
  const out = parsed.values.out ?? path.join('.sift', 'compare', newRunId());
  fs.mkdirSync(out, { recursive: true });
  const markdown = comparisonMarkdown(comparison);
  fs.writeFileSync(path.join(out, 'compare.json'), JSON.stringify(comparison, null, 2) + '\n');
  fs.writeFileSync(path.join(out, 'compare.md'), markdown + '\n');
  process.stdout.write(`${markdown}\n\nWritten: ${path.join(out, 'compare.md')} and compare.json\n`);
  return 0;
}

/** The WebGPU adapter Dawn offers here, or why there is none: the webgpu row of the report, spelled out. */
export interface WebGpuStatus {
  /** null when there is none, or the webgpu packages do not load. */
  adapter: WebGpuAdapter | null;
  /** Whether `auto` takes webgpu here (a hardware adapter on which the backend runs). */
  usedByAuto: boolean;
  /** Why there is no usable adapter, or why `auto` passes over the one there is. */
  reason?: string;
  /** How to get a hardware adapter on this operating system. */
  fix?: string;
}

/** What `sift doctor --json` prints: the editor's Check GPU Setup reads it from a child process. */
export interface DoctorReport {
  attempts: BackendAttempt[];
  /** What `auto` picks; null when no backend loads. */
  chosen: BackendName | null;
  warning?: string;
  node: string;
  platform: string;
  /** Absent in reports of versions before the webgpu backend. */
  webgpu?: WebGpuStatus;
  /** When wasm is chosen: whether its matMuls run through the native BLAS, or why not. */
  matMul?: NativeMatMulStatus;
  /** Threads a run on the chosen backend trains with by default, and why. */
  threads?: { threads: number; reason: string };
}

function webGpuStatus(attempts: BackendAttempt[], chosen: BackendName | null): WebGpuStatus {
  const attempt = attempts.find((a) => a.name === 'webgpu');
  const adapter = attempt?.adapter ?? null;
  const usedByAuto = chosen === 'webgpu';
  if (attempt?.outcome === 'available' && adapter && !adapter.software) return { adapter, usedByAuto };
  // A missing package or a broken binding has its own fix; otherwise the way to a hardware adapter on this system.
  const fix = attempt?.outcome === 'failed' && attempt.fix ? attempt.fix : webGpuFix();
  return { adapter, usedByAuto, reason: attempt?.reason, fix };
}

async function doctor(args: string[]): Promise<number> {
  const attempts = await probeBackends();
  const chosen = await selectBackend('auto').catch(() => undefined);
  const webgpu = webGpuStatus(attempts, chosen?.chosen ?? null);
  const threads = chosen ? threadsFor(0, chosen.chosen) : undefined;
  if (args.includes('--json')) {
    const report: DoctorReport = { attempts, chosen: chosen?.chosen ?? null, warning: chosen?.warning, node: process.version, platform: `${process.platform}-${process.arch}`, webgpu, matMul: chosen?.matMul, threads };
    process.stdout.write(`${JSON.stringify(report)}\n`);
    return chosen ? 0 : 1;
  }
  process.stdout.write('TensorFlow.js backends, in the order Sift tries them:\n\n');
  for (const attempt of attempts) {
    const mark = attempt.outcome === 'available' ? 'ok  ' : 'FAIL';
    process.stdout.write(`  ${mark} ${attempt.name.padEnd(9)}${attempt.reason ? ` ${attempt.reason}` : ''}\n`);
    if (attempt.fix) process.stdout.write(`       fix: ${attempt.fix}\n`);
  }
  const adapter = webgpu.adapter;
  process.stdout.write(`\nWebGPU adapter: ${adapter ? adapterLabel(adapter) : 'none'}\n`);
  if (adapter) {
    process.stdout.write(`  vendor ${adapter.vendor || '?'}, architecture ${adapter.architecture || '?'}, device ${adapter.device || '?'}, fallback adapter: ${adapter.isFallbackAdapter ? 'yes' : 'no'}\n`);
  }
  if (webgpu.reason && !adapter) process.stdout.write(`  ${webgpu.reason}\n`);
  if (webgpu.fix) process.stdout.write(`  ${adapter ? 'for a GPU: ' : 'fix: '}${webgpu.fix}\n`);
  process.stdout.write(`\nRuns will use: ${chosen ? chosen.chosen : 'nothing — no backend loads'}\n`);
  if (chosen?.matMul) {
    const { active, blas, reason, fix } = chosen.matMul;
    process.stdout.write(`  matMul: ${active ? `native ${blas}` : `wasm SIMD — ${reason}`}\n`);
    if (fix) process.stdout.write(`       fix: ${fix}\n`);
  }
  if (threads) process.stdout.write(`  threads: ${threads.threads} (${threads.reason}; --threads N to change)\n`);
  if (chosen?.warning) process.stdout.write(`warning: ${chosen.warning}\n`);
  return chosen ? 0 : 1;
}

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'train':
        if (rest.includes('--help') || rest.includes('-h')) {
          process.stdout.write(trainHelp());
          return 0;
        }
        return await trainInWorker(configFromArgs(rest));
      case 'reference':
        if (rest.includes('--help') || rest.includes('-h')) {
          process.stdout.write(trainHelp({ ...defaultTrainConfig, ...referenceBase }).replace('sift train', 'sift reference'));
          return 0;
        }
        // A reference is an ordinary run on clean, curated data; learners point --reference at its folder.
        return await trainInWorker(configFromArgs(rest, referenceBase));
      case 'compare':
        return await compare(rest);
      case 'resume':
        return await resume(rest);
      case 'branch':
        return await branch(rest);
      case 'runs':
        return runs(rest);
      case 'embed': {
        if (rest.includes('--help') || rest.includes('-h')) {
          process.stdout.write(embedHelp);
          return 0;
        }
        const { shard, slurm, rest: options } = takeShardFlag(rest);
        const config = configFromArgs(options, { method: 'jest' });
        return slurm ? submitEmbedArray(options, slurm) : await embedCommand(config, shard);
      }
      case 'export':
        return await exportCommand(rest);
      case 'demo':
        return await demo({ cli: process.argv[1], quick: rest.includes('--quick') });
      case 'doctor':
        return await doctor(rest);
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        process.stdout.write(usage);
        return command === undefined ? 2 : 0;
      default:
        process.stderr.write(`sift: unknown command "${command}".\n\n${usage}`);
        return 2;
    }
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`sift: ${error.message}\n`);
      return 2;
    }
    throw error;
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error) => {
    process.stderr.write(`sift: internal error: ${(error as Error).stack ?? error}\n`);
    process.exit(70);
  },
);
