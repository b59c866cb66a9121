/**
 * bench:curation — the proof that curation pays, measured side by side:
 * a reference model on curated data, then uniform, independent and JEST runs
 * (F = 0.5 / 0.8 / 0.9, plus the selector variants under test) with the same
 * seed, model, learning-rate schedule and number of trained examples, then
 * `sift compare`. Writes bench-results/curation[-quick].{json,md}.
 *
 *   npm run bench:curation [-- --data PATH --eval-data PATH --curated PATH] [--quick] [--parallel 2]
 *     [--only a,b,c] [--reference-dir RUN] [--baseline-dir RUN] [--reference-flags="--low-res-fraction 0.5"]
 *     [--seed N] [--eval-size N] [--learner-flags="--learning-rate 0.004"] [--clean-data PATH]
 *
 * --reference-dir uses an already trained reference instead of training one
 * (its pool embeddings are cached beside it); --baseline-dir an already
 * trained uniform run of the same settings instead of training one. Both
 * save a screen of new variants the runs that do not change. The
 * uniform-clean row trains uniformly on the pool without its swapped
 * captions (derived for built-in data; --clean-data for other data, e.g. the
 * pool's rows with "noisy": false): a perfect noise filter's curve, the one a
 * selection has to beat to be more than a filter.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { runJob, runJobs, type Job, type JobResult } from '../src/cli/jobs';
import { compareRuns, comparisonMarkdown } from '../src/core/runs/compare';
import { usesReference as usesRunReference, type Method } from '../src/core/train/config';

const { values } = parseArgs({
  options: {
    data: { type: 'string', default: 'builtin:train' },
    'eval-data': { type: 'string', default: 'builtin:eval' },
    curated: { type: 'string', default: 'builtin:curated?size=8000' },
    // The pool without its swapped captions, for the uniform-clean row (a perfect noise filter). Built-in data: derived.
    'clean-data': { type: 'string' },
    quick: { type: 'boolean', default: false },
    parallel: { type: 'string', default: String(Math.max(1, Math.min(2, os.cpus().length))) },
    steps: { type: 'string' },
    'reference-steps': { type: 'string' },
    out: { type: 'string', default: 'bench-results' },
    name: { type: 'string' },
    only: { type: 'string' },
    // The learners' seed (init, data order, selection draws); the reference keeps seed 0.
    seed: { type: 'string', default: '0' },
    'reference-dir': { type: 'string' },
    'baseline-dir': { type: 'string' },
    // Extra flags for the reference's own training, e.g. "--low-res-fraction 0.5" (a reference that can embed the pool at low resolution).
    'reference-flags': { type: 'string', default: '' },
    // Extra flags for every learner, uniform included, e.g. "--learning-rate 0.004" (a setting screened for all methods alike).
    'learner-flags': { type: 'string', default: '' },
    // Eval pairs per eval (the full runs' default 1,000): more pairs, less eval-to-eval noise in where a run first crosses a target.
    'eval-size': { type: 'string' },
  },
});

const quick = values.quick;
const steps = Number(values.steps ?? (quick ? 24 : 500));
const referenceSteps = Number(values['reference-steps'] ?? (quick ? 30 : 800));
const shared = quick
  ? ['--batch-size', '16', '--eval-every', '8', '--eval-size', '200', '--image-width', '32', '--text-width', '32', '--checkpoint-every', '1000']
  : ['--batch-size', '64', '--eval-every', '50', '--eval-size', values['eval-size'] ?? '1000', '--checkpoint-every', '1000'];
const data = quick && values.data === 'builtin:train' ? 'builtin:train?size=3000' : values.data;
const evalData = quick && values['eval-data'] === 'builtin:eval' ? 'builtin:eval?size=200' : values['eval-data'];
const curated = quick && values.curated.startsWith('builtin:curated') ? 'builtin:curated?size=1000' : values.curated;
/**
 * The same pool with its swapped captions taken out: uniform training on it is what a perfect noise filter gives,
 * the curve that selection has to beat to be more than a filter. For built-in data, the train split at the pool's
 * clean size with no swaps (its duplicates and degraded images kept); other data needs --clean-data.
 */
function cleanPoolOf(spec: string): string | undefined {
  if (values['clean-data']) return values['clean-data'];
  const match = /^builtin:train(?:\?(.*))?$/.exec(spec);
  if (!match) return undefined;
  const params = new URLSearchParams(match[1] ?? '');
  const size = Number(params.get('size') ?? 20000);
  const swap = Number(params.get('swap') ?? 0.4);
  params.set('size', String(Math.round(size * (1 - swap))));
  params.set('swap', '0');
  return `builtin:train?${params.toString()}`;
}
const cleanData = cleanPoolOf(data);
const name = values.name ?? `curation${quick ? '-quick' : ''}`;
const root = path.resolve(values.out, `${name}-runs`);
const cli = path.resolve(__dirname, '..', 'bin', 'sift.js');

interface LearnerJob extends Job {
  needsReference: boolean;
}

const common = ['--seed', values.seed, '--eval-data', evalData, ...shared, ...values['learner-flags'].split(/\s+/).filter(Boolean)];
const referenceDir = values['reference-dir'] ? path.resolve(values['reference-dir']) : path.join(root, 'reference');
const baselineDir = values['baseline-dir'] ? path.resolve(values['baseline-dir']) : undefined;
/** What config.ts says of the job's flags: the selecting methods score with the reference, and any run that distils learns from it. */
const usesReference = (extra: string[]): boolean => {
  const flag = (name: string): string | undefined => (extra.includes(name) ? extra[extra.indexOf(name) + 1] : undefined);
  const distill = flag('--distill');
  const features = flag('--distill-features');
  return usesRunReference({ method: flag('--method') as Method, distill: Number(distill ?? 0), distillFeatures: features === undefined ? null : Number(features) });
};
const learner = (jobName: string, extra: string[], runSteps = steps, trainData = data): LearnerJob => ({
  name: jobName,
  args: ['train', '--data', trainData, ...common, '--steps', String(runSteps), '--run-dir', path.join(root, jobName), ...extra, ...(usesReference(extra) ? ['--reference', referenceDir] : [])],
  log: path.join(root, `${jobName}.log`),
  needsReference: usesReference(extra),
});
// Full resolution for learner and reference unless a name says otherwise (the defaults are half resolution).
const full = ['--score-resolution', 'full', '--reference-resolution', 'full'];
// The screens below were measured with data selection alone, before runs distilled from their reference by default.
const selectionAlone = ['--distill', '0', '--distill-features', '0'];
let jobs: LearnerJob[] = [
  learner('uniform', ['--method', 'uniform']),
  ...(cleanData ? [learner('uniform-clean', ['--method', 'uniform'], steps, cleanData)] : []),
  learner('independent-f0.8', ['--method', 'independent', '--filter-ratio', '0.8', ...full, ...selectionAlone]),
  learner('jest-f0.5', ['--method', 'jest', '--filter-ratio', '0.5', ...full, ...selectionAlone]),
  learner('jest-f0.8', ['--method', 'jest', '--filter-ratio', '0.8', ...full, ...selectionAlone]),
  learner('jest-f0.9', ['--method', 'jest', '--filter-ratio', '0.9', ...full, ...selectionAlone]),
  learner('jest-mean-f0.8', ['--method', 'jest', '--filter-ratio', '0.8', '--joint-normalization', 'mean', ...full, ...selectionAlone]),
  learner('jest-lowres-f0.8', ['--method', 'jest', '--filter-ratio', '0.8', '--score-resolution', 'low', '--reference-resolution', 'full', ...selectionAlone]),
  // Cheaper selection (issue 12): each lever alone on top of low-resolution scoring, then together.
  learner('jest-lowres-reflow-f0.8', ['--method', 'jest', '--filter-ratio', '0.8', '--score-resolution', 'low', '--reference-resolution', 'low', ...selectionAlone]),
  learner('jest-quarter-f0.8', ['--method', 'jest', '--filter-ratio', '0.8', '--score-resolution', 'quarter', '--reference-resolution', 'full', ...selectionAlone]),
  learner('jest-quarter-reflow-f0.8', ['--method', 'jest', '--filter-ratio', '0.8', '--score-resolution', 'quarter', '--reference-resolution', 'low', ...selectionAlone]),
  learner('jest-quarter-refquarter-f0.8', ['--method', 'jest', '--filter-ratio', '0.8', '--score-resolution', 'quarter', '--reference-resolution', 'quarter', ...selectionAlone]),
  learner('jest-quarter-reflow-f0.9', ['--method', 'jest', '--filter-ratio', '0.9', '--score-resolution', 'quarter', '--reference-resolution', 'low', ...selectionAlone]),
  learner('jest-quarter-reflow-f0.5', ['--method', 'jest', '--filter-ratio', '0.5', '--score-resolution', 'quarter', '--reference-resolution', 'low', ...selectionAlone]),
  learner('jest-lowres-reflow-every2-f0.8', ['--method', 'jest', '--filter-ratio', '0.8', '--score-resolution', 'low', '--reference-resolution', 'low', '--score-every', '2', ...selectionAlone]),
  learner('jest-lowres-reflow-every4-f0.8', ['--method', 'jest', '--filter-ratio', '0.8', '--score-resolution', 'low', '--reference-resolution', 'low', '--score-every', '4', ...selectionAlone]),
  learner('jest-quarter-reflow-halflow-f0.8', ['--method', 'jest', '--filter-ratio', '0.8', '--score-resolution', 'quarter', '--reference-resolution', 'low', '--low-res-fraction', '0.5', ...selectionAlone]),
  learner('jest-quarter-reflow-mix-f0.8', ['--method', 'jest', '--filter-ratio', '0.8', '--score-resolution', 'quarter', '--reference-resolution', 'low', '--passed-reference', 'mix', ...selectionAlone]),
  learner('jest-quarter-reflow-uniform-f0.8', ['--method', 'jest', '--filter-ratio', '0.8', '--score-resolution', 'quarter', '--reference-resolution', 'low', '--passed-reference', 'uniform', ...selectionAlone]),
  // The method's defaults as shipped, whatever they are: what a user gets from `--method jest`.
  learner('jest-default', ['--method', 'jest']),
  learner('jest-default-f0.9', ['--method', 'jest', '--filter-ratio', '0.9']),
  learner('jest-default-temp0.5', ['--method', 'jest', '--selection-temperature', '0.5']),
  learner('jest-default-chunks4', ['--method', 'jest', '--chunks', '4']),
  learner('jest-default-halflow', ['--method', 'jest', '--low-res-fraction', '0.5']),
  learner('easy-reference', ['--method', 'easy-reference']),
  // The default distils the reference's embeddings at weight 20 (config.ts, selectingFeatures). The same with neither
  // teacher term (selection alone, the paper's objective), with the pair term at 3 as well, with the pair term alone
  // (the defaults before), and uniform batches with the default's term and with both (what selection adds to them).
  learner('jest-default-distill0', ['--method', 'jest', ...selectionAlone]),
  learner('jest-default-distill3', ['--method', 'jest', '--distill', '3']),
  learner('jest-default-pair-only', ['--method', 'jest', '--distill', '3', '--distill-features', '0']),
  learner('uniform-features', ['--method', 'uniform', '--distill-features', '20']),
  learner('uniform-teacher', ['--method', 'uniform', '--distill', '3', '--distill-features', '20']),
  // The learner's share of the learnability score: w · learner loss − reference loss (0 = easy-reference scores, no learner pass).
  ...[0, 0.25, 0.35, 0.5].map((w) => learner(`jest-default-w${w}`, ['--method', 'jest', '--learner-weight', String(w)])),
  // The paper's protocol: shorter runs, each with its whole learning-rate schedule (warm-up, cosine to the end), against
  // uniform's full run. A run of a third of the steps that ends at or above uniform's final value needs ≤ 1/3 of the examples.
  ...[2, 3, 4].flatMap((divisor) => {
    const short = Math.floor(steps / divisor);
    return [learner(`jest-default-s${short}`, ['--method', 'jest'], short), learner(`uniform-s${short}`, ['--method', 'uniform'], short)];
  }),
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
  const referenceJob: Job = { name: 'reference', log: path.join(root, 'reference.log'), args: ['reference', '--seed', '0', '--steps', String(referenceSteps), '--data', curated, '--eval-data', evalData, ...shared, ...values['reference-flags'].split(/\s+/).filter(Boolean), '--run-dir', referenceDir] };
  if (baselineDir) jobs = jobs.filter((job) => job.name !== 'uniform');
  if (values['reference-dir']) {
    await runJobs(cli, jobs, width, report);
  } else {
    // The reference and the runs that do not use it (uniform, uniform-clean) side by side first.
    await Promise.all([runJob(cli, referenceJob, report), runJobs(cli, jobs.filter((job) => !job.needsReference), Math.max(1, width - 1), report)]);
    await runJobs(cli, jobs.filter((job) => job.needsReference), width, report);
  }

  const comparison = await compareRuns([...(baselineDir ? [baselineDir] : []), ...jobs.map((job) => path.join(root, job.name))]);
  const markdown = comparisonMarkdown(comparison);
  const reference = JSON.parse(fs.readFileSync(path.join(referenceDir, 'run.json'), 'utf8'));
  // The reference's own training, shown apart from the learners' FLOPs (paid once, whatever uses it).
  const referenceMetrics = fs.readFileSync(path.join(referenceDir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((line) => JSON.parse(line));
  const referenceTrainingFlops = referenceMetrics.filter((m) => m.type === 'train').at(-1)?.flops ?? null;
  const result = {
    benchmark: 'curation',
    quick,
    date: new Date().toISOString(),
    machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model, node: process.version, parallelRuns: width },
    data: { train: data, eval: evalData, curated },
    steps,
    reference: { dir: referenceDir, steps: reference.config?.steps ?? referenceSteps, finalEval: reference.summary?.finalEval, trainingFlops: referenceTrainingFlops },
    baseline: baselineDir,
    seconds: (Date.now() - started) / 1000,
    comparison,
  };
  fs.mkdirSync(values.out, { recursive: true });
  fs.writeFileSync(path.join(values.out, `${name}.json`), JSON.stringify(result, null, 2) + '\n');
  fs.writeFileSync(path.join(values.out, `${name}.md`), `# bench:curation${quick ? ' (quick)' : ''}\n\nData ${data}, eval ${evalData}, reference on ${curated} (${reference.config?.steps ?? referenceSteps} steps, final i2t R@1 ${((reference.summary?.finalEval?.i2t_r1 ?? 0) * 100).toFixed(1)}%; its own training: ${referenceTrainingFlops === null ? '?' : `${(referenceTrainingFlops / 1e9).toFixed(0)} GFLOP`}, not counted in the runs' FLOPs).\n\n${markdown}\n`);
  process.stdout.write(`\n${markdown}\n\nWritten ${path.join(values.out, `${name}.json`)} and .md in ${(result.seconds / 60).toFixed(1)} min\n`);
}

main().catch((error) => {
  process.stderr.write(`bench:curation: ${(error as Error).message}\n`);
  process.exit(1);
});
