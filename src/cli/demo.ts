/**
 * `sift demo`: the story in one command, on the built-in data (40% of the
 * training captions swapped to another image's): a reference model trained on
 * the clean curated split, a uniform baseline beside it, then a JEST run that
 * scores every super-batch by learnability, and the comparison.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { compareRuns, comparisonMarkdown } from '../core/runs/compare';
import { newRunId } from '../core/runs/record';
import { formatDuration } from './format';
import { runJob, runJobs, type Job, type JobResult } from './jobs';

export interface DemoOptions {
  /** The `sift` entry the runs are started with. */
  cli: string;
  /** Folder the demo's runs go in. */
  root?: string;
  /** A one-minute version (tiny model, few steps), for checking the wiring. */
  quick?: boolean;
}

/** The last progress line a run printed, for the demo's status line. */
function lastProgress(log: string): string {
  try {
    const text = fs.readFileSync(log, 'utf8');
    const steps = text.match(/step \d+\/\d+/g);
    return steps ? steps[steps.length - 1] : 'starting';
  } catch {
    return 'starting';
  }
}

export async function demo(options: DemoOptions): Promise<number> {
  const root = path.resolve(options.root ?? path.join('.sift', 'demo', newRunId()));
  fs.mkdirSync(root, { recursive: true });
  const quick = options.quick ?? false;
  const steps = quick ? 30 : 300;
  const shared = quick
    ? ['--batch-size', '16', '--eval-every', '10', '--eval-size', '200', '--image-width', '32', '--text-width', '32']
    : ['--batch-size', '64', '--eval-every', '50', '--eval-size', '1000'];
  const train = quick ? 'builtin:train?size=3000' : 'builtin:train';
  const evalData = quick ? 'builtin:eval?size=200' : 'builtin:eval';
  const dir = (name: string): string => path.join(root, name);
  const job = (name: string, args: string[]): Job => ({ name, args: [...args, ...shared, '--seed', '0', '--run-dir', dir(name)], log: path.join(root, `${name}.log`) });
  // Half its batches at half resolution: JEST's default has the reference embed the pool at half resolution (docs/results.md).
  const reference = job('reference', ['reference', '--data', quick ? 'builtin:curated?size=1000' : 'builtin:curated?size=8000', '--eval-data', evalData, '--steps', String(quick ? 40 : 400), '--low-res-fraction', '0.5']);
  const uniform = job('uniform', ['train', '--method', 'uniform', '--data', train, '--eval-data', evalData, '--steps', String(steps)]);
  const jest = job('jest', ['train', '--method', 'jest', '--filter-ratio', '0.8', '--reference', dir('reference'), '--data', train, '--eval-data', evalData, '--steps', String(steps)]);

  const out = process.stdout;
  out.write(
    [
      'Sift demo — curated training with JEST on the built-in image-caption data.',
      `Training data: procedural scenes with compositional captions, 40% of them swapped to another image's caption (noise).`,
      '',
      `  1. reference  a model trained on the clean, curated split          ${dir('reference')}`,
      `  2. uniform    the baseline: batches drawn uniformly from noisy data  ${dir('uniform')}`,
      `  3. jest       each batch chosen by JEST from a 5× super-batch        ${dir('jest')}`,
      `  4. compare    trained examples (and FLOPs) each needed to reach uniform's final recall`,
      '',
      `Steps 1 and 2 run side by side, then 3. About ${quick ? 'a minute' : 'three minutes'} on 2 cores with the native matMul (ten without). Logs: ${root}/*.log`,
      '',
    ].join('\n'),
  );
  const started = Date.now();
  const running = new Set<Job>();
  const ticker = setInterval(() => {
    const status = [...running].map((j) => `${j.name} ${lastProgress(j.log)}`).join('  |  ');
    if (process.stdout.isTTY) out.write(`\r\x1b[2K${status}  (${formatDuration((Date.now() - started) / 1000)})`);
  }, 1000);
  const report = (result: JobResult): void => {
    if (process.stdout.isTTY) out.write('\r\x1b[2K');
    out.write(`  ✓ ${result.name} finished in ${formatDuration(result.seconds)}\n`);
  };
  const tracked = (j: Job): Promise<JobResult> => {
    running.add(j);
    return runJob(options.cli, j, report).finally(() => running.delete(j));
  };
  try {
    await Promise.all([tracked(reference), tracked(uniform)]);
    await runJobs(options.cli, [jest], 1, report).catch((e) => Promise.reject(e));
  } catch (error) {
    clearInterval(ticker);
    process.stderr.write(`\nsift demo: ${(error as Error).message}\n`);
    return 1;
  }
  clearInterval(ticker);
  const comparison = await compareRuns([dir('uniform'), dir('jest')]);
  const markdown = comparisonMarkdown(comparison);
  fs.writeFileSync(path.join(root, 'compare.md'), markdown + '\n');
  fs.writeFileSync(path.join(root, 'compare.json'), JSON.stringify(comparison, null, 2) + '\n');
  const [u, j] = comparison.runs;
  const pct = (x: number | undefined): string => (x === undefined ? '–' : `${(100 * x).toFixed(1)}%`);
  out.write(`\n${markdown}\n\n`);
  out.write(`Final image→text recall@1: uniform ${pct(u.final.i2t_r1)}, JEST ${pct(j.final.i2t_r1)} (reference on clean data: see ${dir('reference')}).\n`);
  if (j.examplesSpeedup) {
    const flops = j.flopsSpeedup ? (j.flopsSpeedup >= 1 ? `${j.flopsSpeedup.toFixed(2)}× fewer FLOPs` : `${(1 / j.flopsSpeedup).toFixed(2)}× more FLOPs`) : 'FLOPs not comparable';
    out.write(`JEST reached uniform's final recall with ${j.examplesSpeedup.toFixed(2)}× fewer trained examples; counting scoring and the reference, ${flops} than uniform.\n`);
  }
  else out.write(`JEST did not reach uniform's final recall in ${steps} steps.\n`);
  out.write(`Share of noisy pairs trained on: uniform ${pct(u.pickedNoisy)}, JEST ${pct(j.pickedNoisy)}.\n`);
  out.write(`\nRuns and the comparison (compare.md, compare.json) are in ${root}\n`);
  out.write(`Next: sift compare ${dir('uniform')} ${dir('jest')} --target-metric t2i_r1, or open the folder in VS Code.\n`);
  return 0;
}
