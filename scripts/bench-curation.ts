/**
 * bench:curation — the proof that curation pays, measured side by side:
 * a reference model on curated data, then uniform, independent and JEST runs
 * (F = 0.5 / 0.8 / 0.9, plus the selector variants under test) with the same
 * seed, model, learning-rate schedule and number of trained examples, then
 * `sift compare`. Writes bench-results/curation[-quick].{json,md}.
 *
 *   npm run bench:curation [-- --data PATH --eval-data PATH --curated PATH] [--quick] [--parallel 2]
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { runJob, runJobs, type Job, type JobResult } from '../src/cli/jobs';
import { compareRuns, comparisonMarkdown } from '../src/core/runs/compare';

const { values } = parseArgs({
  options: {
    data: { type: 'string', default: 'builtin:train' },
    'eval-data': { type: 'string', default: 'builtin:eval' },
    curated: { type: 'string', default: 'builtin:curated?size=8000' },
    quick: { type: 'boolean', default: false },
    parallel: { type: 'string', default: String(Math.max(1, Math.min(2, os.cpus().length))) },
    steps: { type: 'string' },
    'reference-steps': { type: 'string' },
    out: { type: 'string', default: 'bench-results' },
    name: { type: 'string' },
    only: { type: 'string' },
  },
});

const quick = values.quick;
const steps = Number(values.steps ?? (quick ? 24 : 500));
const referenceSteps = Number(values['reference-steps'] ?? (quick ? 30 : 800));
const shared = quick
  ? ['--batch-size', '16', '--eval-every', '8', '--eval-size', '200', '--image-width', '32', '--text-width', '32', '--checkpoint-every', '1000']
  : ['--batch-size', '64', '--eval-every', '50', '--eval-size', '1000', '--checkpoint-every', '1000'];
const data = quick && values.data === 'builtin:train' ? 'builtin:train?size=3000' : values.data;
const evalData = quick && values['eval-data'] === 'builtin:eval' ? 'builtin:eval?size=200' : values['eval-data'];
const curated = quick && values.curated.startsWith('builtin:curated') ? 'builtin:curated?size=1000' : values.curated;
const name = values.name ?? `curation${quick ? '-quick' : ''}`;
const root = path.resolve(values.out, `${name}-runs`);
const cli = path.resolve(__dirname, '..', 'bin', 'sift.js');

interface LearnerJob extends Job {
  needsReference: boolean;
}

const common = ['--seed', '0', '--steps', String(steps), '--data', data, '--eval-data', evalData, ...shared];
const referenceDir = path.join(root, 'reference');
const learner = (jobName: string, extra: string[]): LearnerJob => ({
  name: jobName,
  args: ['train', ...common, '--run-dir', path.join(root, jobName), ...extra, ...(extra.includes('uniform') ? [] : ['--reference', referenceDir])],
  log: path.join(root, `${jobName}.log`),
  needsReference: !extra.includes('uniform'),
});
let jobs: LearnerJob[] = [
  learner('uniform', ['--method', 'uniform']),
  learner('independent-f0.8', ['--method', 'independent', '--filter-ratio', '0.8']),
  learner('jest-f0.5', ['--method', 'jest', '--filter-ratio', '0.5']),
  learner('jest-f0.8', ['--method', 'jest', '--filter-ratio', '0.8']),
  learner('jest-f0.9', ['--method', 'jest', '--filter-ratio', '0.9']),
  learner('jest-mean-f0.8', ['--method', 'jest', '--filter-ratio', '0.8', '--joint-normalization', 'mean']),
  learner('jest-lowres-f0.8', ['--method', 'jest', '--filter-ratio', '0.8', '--score-resolution', 'low']),
];
if (values.only) {
  const wanted = new Set(values.only.split(','));
  jobs = jobs.filter((job) => wanted.has(job.name));
}

const report = (result: JobResult): void => void process.stdout.write(`  ${result.name}: done in ${result.seconds.toFixed(0)}s\n`);

async function main(): Promise<void> {
  if (!fs.existsSync(path.join(path.dirname(cli), '..', 'dist', 'cli.js'))) throw new Error('Run npm run build first (npm run bench:curation does).');
  fs.rmSync(root, { recursive: true, force: true });
  fs.mkdirSync(root, { recursive: true });
  const width = Math.max(1, Number(values.parallel));
  const started = Date.now();
  process.stdout.write(`bench:curation${quick ? ' (quick)' : ''}: ${steps} steps per learner, reference ${referenceSteps} steps on ${curated}; ${width} at a time. Runs in ${root}\n`);
  const referenceJob: Job = { name: 'reference', log: path.join(root, 'reference.log'), args: ['reference', '--seed', '0', '--steps', String(referenceSteps), '--data', curated, '--eval-data', evalData, ...shared, '--run-dir', referenceDir] };
  // The reference and the uniform baseline need nothing else: run them side by side first.
  const first = jobs.filter((job) => !job.needsReference);
  await Promise.all([runJob(cli, referenceJob, report), runJobs(cli, first, Math.max(1, width - 1), report)]);
  await runJobs(cli, jobs.filter((job) => job.needsReference), width, report);

  const comparison = await compareRuns(jobs.map((job) => path.join(root, job.name)));
  const markdown = comparisonMarkdown(comparison);
  const reference = JSON.parse(fs.readFileSync(path.join(referenceDir, 'run.json'), 'utf8'));
  const result = {
    benchmark: 'curation',
    quick,
    date: new Date().toISOString(),
    machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model, node: process.version, parallelRuns: width },
    data: { train: data, eval: evalData, curated },
    steps,
    reference: { steps: referenceSteps, finalEval: reference.summary?.finalEval },
    seconds: (Date.now() - started) / 1000,
    comparison,
  };
  fs.mkdirSync(values.out, { recursive: true });
  fs.writeFileSync(path.join(values.out, `${name}.json`), JSON.stringify(result, null, 2) + '\n');
  fs.writeFileSync(path.join(values.out, `${name}.md`), `# bench:curation${quick ? ' (quick)' : ''}\n\nData ${data}, eval ${evalData}, reference on ${curated} (${referenceSteps} steps, final i2t R@1 ${((reference.summary?.finalEval?.i2t_r1 ?? 0) * 100).toFixed(1)}%).\n\n${markdown}\n`);
  process.stdout.write(`\n${markdown}\n\nWritten ${path.join(values.out, `${name}.json`)} and .md in ${(result.seconds / 60).toFixed(1)} min\n`);
}

main().catch((error) => {
  process.stderr.write(`bench:curation: ${(error as Error).message}\n`);
  process.exit(1);
});
