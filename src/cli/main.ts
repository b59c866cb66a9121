/**
 * `sift`: the headless entry. `sift train` runs the same engine the editor
 * drives; `sift doctor` says which TensorFlow.js backend runs and why the
 * others did not; `sift demo` is the README's one-command story.
 */
import * as fs from 'node:fs';
import { parseArgs } from 'node:util';
import { probeBackends, selectBackend } from '../core/backend';
import { configHelp, configKeys, ConfigError, defaultTrainConfig, resolveConfig, validateConfig, type TrainConfig } from '../core/train/config';
import { trainRun } from '../core/train/run';
import type { EvalMetrics, TrainMetrics } from '../core/runs/record';
import { formatCount, formatDuration, table } from './format';

const kebab = (key: string): string => key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

const usage = `Usage: sift <command> [options]

Commands:
  train     train a dual encoder (sift train --help for every option)
  demo      train on the built-in data and print the evals (a few minutes)
  doctor    which TensorFlow.js backends load here, and why the others do not
  help      this text
`;

function trainHelp(): string {
  const lines = configKeys.map((key) => {
    const flag = `--${kebab(key)}`;
    const value = JSON.stringify(defaultTrainConfig[key]);
    return `  ${flag.padEnd(22)} ${configHelp[key]} (default ${value})`;
  });
  return `Usage: sift train [--config FILE.json] [options]

Flags override the config file; the config file overrides the defaults.
A config file is JSON with the same names in camelCase (e.g. "batchSize").

  --config FILE          JSON config file
${lines.join('\n')}
`;
}

/** Reads --config and flags into a validated config. Numbers are parsed per field. */
function configFromArgs(args: string[]): TrainConfig {
  const options: Record<string, { type: 'string' }> = { config: { type: 'string' } };
  for (const key of configKeys) options[kebab(key)] = { type: 'string' };
  let parsed;
  try {
    parsed = parseArgs({ args, options, allowPositionals: false, strict: true });
  } catch (error) {
    throw new ConfigError(`${(error as Error).message}. See sift train --help.`);
  }
  let fromFile: Partial<TrainConfig> = {};
  const file = parsed.values.config as string | undefined;
  if (file) {
    let raw: unknown;
    try {
      raw = JSON.parse(fs.readFileSync(file, 'utf8'));
    } catch (error) {
      throw new ConfigError(`${file}: cannot read the config file: ${(error as Error).message}`);
    }
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new ConfigError(`${file}: a config file must hold one JSON object.`);
    fromFile = validateConfig(raw as Record<string, unknown>, file);
  }
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
  return resolveConfig(fromFile, validateConfig(fromFlags, 'command line'));
}

/** One status line while training: rewritten in place on a terminal, every 10% otherwise. */
function progressPrinter(): { train: (line: TrainMetrics, total: number) => void; done: () => void } {
  const tty = process.stderr.isTTY;
  let lastPrinted = -1;
  let pending = false;
  return {
    train(line, total) {
      const rate = line.examples_seen / Math.max(line.wall_s, 1e-9);
      const eta = ((total - line.step) * line.wall_s) / line.step;
      const text = `step ${line.step}/${total}  loss ${line.loss.toFixed(4)}  ${rate.toFixed(0)} ex/s  elapsed ${formatDuration(line.wall_s)}  ETA ${formatDuration(eta)}`;
      if (tty) {
        process.stderr.write(`\r\x1b[2K${text}`);
        pending = true;
      } else {
        const decile = Math.floor((line.step * 10) / total);
        if (decile !== lastPrinted || line.step === 1) {
          lastPrinted = decile;
          process.stderr.write(`${text}\n`);
        }
      }
    },
    done() {
      if (pending) process.stderr.write('\n');
      pending = false;
    },
  };
}

function evalTable(evals: EvalMetrics[]): string {
  const pct = (x: number | undefined): string => (x === undefined ? '-' : `${(100 * x).toFixed(1)}%`);
  const hasZeroShot = evals.some((e) => e.zeroshot_acc !== undefined);
  const header = ['step', 'examples', 'i2t R@1', 'i2t R@5', 't2i R@1', 't2i R@5', ...(hasZeroShot ? ['zero-shot'] : []), 'chance R@1'];
  const rows = evals.map((e) => [e.step, formatCount(e.examples_seen), pct(e.i2t_r1), pct(e.i2t_r5), pct(e.t2i_r1), pct(e.t2i_r5), ...(hasZeroShot ? [pct(e.zeroshot_acc)] : []), pct(e.chance_r1)]);
  return table(header, rows);
}

async function train(config: TrainConfig): Promise<number> {
  const progress = progressPrinter();
  const say = (message: string): void => {
    progress.done();
    process.stderr.write(`${message}\n`);
  };
  try {
    const result = await trainRun(config, {
      onStage: say,
      onWarning: (message) => say(`warning: ${message}`),
      onTrain: progress.train,
      onEval: (e) => say(`eval @ step ${e.step}: i2t R@1 ${(100 * e.i2t_r1).toFixed(1)}%  t2i R@1 ${(100 * e.t2i_r1).toFixed(1)}%${e.zeroshot_acc === undefined ? '' : `  zero-shot ${(100 * e.zeroshot_acc).toFixed(1)}%`}  (chance ${(100 * e.chance_r1).toFixed(2)}%)`),
    });
    progress.done();
    const last = JSON.parse(fs.readFileSync(`${result.runDir}/run.json`, 'utf8'));
    process.stdout.write(`\nRun ${last.id} finished: ${result.runDir}\n`);
    process.stdout.write(`backend ${last.backend.chosen}, ${formatCount(last.model.parameters)} parameters, ${last.summary.steps} steps, ${formatCount(last.summary.examplesSeen)} examples in ${formatDuration(last.summary.wallSeconds)} (${(last.summary.examplesSeen / last.summary.wallSeconds).toFixed(0)} examples/s incl. eval)\n\n`);
    process.stdout.write(`${evalTable(result.evals)}\n`);
    return 0;
  } catch (error) {
    progress.done();
    const runDir = (error as { runDir?: string }).runDir;
    process.stderr.write(`sift train failed: ${(error as Error).message}\n${runDir ? `The run record is in ${runDir} (status: failed).\n` : ''}`);
    return 1;
  }
}

async function doctor(): Promise<number> {
  const attempts = await probeBackends();
  const chosen = await selectBackend('auto').catch(() => undefined);
  process.stdout.write('TensorFlow.js backends, in the order Sift tries them:\n\n');
  for (const attempt of attempts) {
    const mark = attempt.outcome === 'available' ? 'ok  ' : 'FAIL';
    process.stdout.write(`  ${mark} ${attempt.name.padEnd(9)}${attempt.reason ? ` ${attempt.reason}` : ''}\n`);
    if (attempt.fix) process.stdout.write(`       fix: ${attempt.fix}\n`);
  }
  process.stdout.write(`\nRuns will use: ${chosen ? chosen.chosen : 'nothing — no backend loads'}\n`);
  if (chosen?.warning) process.stdout.write(`warning: ${chosen.warning}\n`);
  return chosen ? 0 : 1;
}

async function demo(): Promise<number> {
  const config = resolveConfig({ steps: 400, evalEvery: 100 });
  process.stdout.write('Sift demo: a dual encoder trained on the built-in image-caption data (uniform batches).\n\n');
  return train(config);
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
        return await train(configFromArgs(rest));
      case 'demo':
        return await demo();
      case 'doctor':
        return await doctor();
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
