/**
 * bench:steps — what a step of `sift train` costs in time, uniform against
 * JEST with its scoring in the step (`--score-ahead off`, and no scoring
 * thread) and scored ahead on a thread of its own (`--score-ahead on`, the
 * default), run alternately so that each sees the same load. Reports the
 * median step of each run (the first 10 left out) and scoring's share of it.
 * Writes bench-results/steps.{json,md}.
 *
 *   npm run bench:steps -- --reference RUN_DIR [--data SPEC --eval-data SPEC] [--steps 150] [--rounds 2] [--name steps]
 *
 * RUN_DIR is a reference run for the data (`sift reference`, or
 * bench:curation's `<name>-runs/reference`).
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { readJsonl } from '../src/core/runs/jsonl';
import type { MetricLine, TrainMetrics } from '../src/core/runs/record';

const { values } = parseArgs({
  options: {
    reference: { type: 'string' },
    data: { type: 'string', default: 'builtin:train' },
    'eval-data': { type: 'string', default: 'builtin:eval' },
    steps: { type: 'string', default: '150' },
    rounds: { type: 'string', default: '2' },
    out: { type: 'string', default: 'bench-results' },
    name: { type: 'string', default: 'steps' },
  },
});

if (!values.reference) {
  process.stderr.write('bench:steps: --reference RUN_DIR is required (a reference run for the data: sift reference, or bench:curation\'s <name>-runs/reference).\n');
  process.exit(2);
}
const steps = Number(values.steps);
const rounds = Number(values.rounds);
const skip = 10;
if (!Number.isInteger(steps) || steps <= skip) {
  process.stderr.write(`bench:steps: --steps must be a whole number above ${skip} (the first ${skip} steps are left out); got ${values.steps}.\n`);
  process.exit(2);
}
const cli = path.resolve(__dirname, '..', 'bin', 'sift.js');
const root = path.resolve(values.out, `${values.name}-runs`);

const configurations: { name: string; flags: string[]; env?: Record<string, string> }[] = [
  { name: 'uniform', flags: ['--method', 'uniform'] },
  { name: 'JEST, scored in the step (--score-ahead off)', flags: ['--method', 'jest', '--reference', values.reference, '--score-ahead', 'off'], env: { SIFT_SCORE_THREAD: '0' } },
  { name: 'JEST, scored ahead (--score-ahead on, the default)', flags: ['--method', 'jest', '--reference', values.reference, '--score-ahead', 'on'] },
];

interface Measured {
  configuration: string;
  round: number;
  runDir: string;
  stepSeconds: number;
  scoreSeconds: number;
  trainSeconds: number;
  scoring: string | null;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

const measured: Measured[] = [];
for (let round = 1; round <= rounds; round++) {
  configurations.forEach((configuration, k) => {
    const runDir = path.join(root, `run${k}-round${round}`);
    fs.rmSync(runDir, { recursive: true, force: true });
    const args = ['train', '--data', values.data!, '--eval-data', values['eval-data']!, '--steps', String(steps), '--eval-every', String(steps), '--checkpoint-every', String(steps), '--run-dir', runDir, ...configuration.flags];
    process.stdout.write(`round ${round}: ${configuration.name}…\n`);
    const result = spawnSync(process.execPath, [cli, ...args], { env: { ...process.env, ...configuration.env }, encoding: 'utf8', maxBuffer: 64 << 20 });
    if (result.status !== 0) {
      process.stderr.write(`bench:steps: sift ${args.join(' ')} failed (exit ${result.status}):\n${result.stderr}\n`);
      process.exit(1);
    }
    const lines = readJsonl<MetricLine>(path.join(runDir, 'metrics.jsonl')).rows.filter((line): line is TrainMetrics => line.type === 'train' && line.step > skip);
    const run = JSON.parse(fs.readFileSync(path.join(runDir, 'run.json'), 'utf8')) as { backend?: { scoring?: string } };
    measured.push({
      configuration: configuration.name,
      round,
      runDir,
      stepSeconds: median(lines.map((line) => line.step_s)),
      scoreSeconds: median(lines.map((line) => line.score_s)),
      trainSeconds: median(lines.map((line) => line.train_s)),
      scoring: run.backend?.scoring ?? null,
    });
  });
}

const ms = (seconds: number): string => `${(seconds * 1000).toFixed(1)} ms`;
const uniformStep = median(measured.filter((m) => m.configuration === configurations[0].name).map((m) => m.stepSeconds));
const rows = configurations.map((configuration) => {
  const runs = measured.filter((m) => m.configuration === configuration.name);
  const step = median(runs.map((m) => m.stepSeconds));
  const share = configuration === configurations[0] ? '–' : runs.map((m) => `${Math.round((100 * m.scoreSeconds) / m.stepSeconds)}%`).join(', ');
  return `| ${configuration.name} | ${runs.map((m) => ms(m.stepSeconds)).join(', ')} | ${(step / uniformStep).toFixed(2)}× | ${share} | ${runs.map((m) => ms(m.trainSeconds)).join(', ')} |`;
});
const markdown = [
  `# bench:steps`,
  '',
  `Data ${values.data}, reference ${values.reference}; ${steps} steps a run, the median step of steps ${skip + 1}–${steps}, ${rounds} rounds alternating the configurations.`,
  '',
  '| configuration | step, each round | ÷ uniform\'s step | scoring\'s share of the step | training part of the step |',
  '| --- | --- | --- | --- | --- |',
  ...rows,
  '',
  `Where the scoring ran: ${[...new Set(measured.map((m) => m.scoring).filter((s) => s !== null))].join('; ') || '–'}.`,
  '',
].join('\n');
fs.mkdirSync(values.out!, { recursive: true });
fs.writeFileSync(path.join(values.out!, `${values.name}.json`), JSON.stringify({ data: values.data, reference: values.reference, steps, rounds, measured }, null, 2) + '\n');
fs.writeFileSync(path.join(values.out!, `${values.name}.md`), markdown);
process.stdout.write(`\n${markdown}\nWritten ${path.join(values.out!, `${values.name}.{json,md}`)}\n`);
