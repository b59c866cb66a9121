/**
 * The comparison the JEST paper is about: for each run, how many trained
 * examples (and FLOPs, scoring included) it took to reach a target eval
 * value — by default the final value of the uniform run in the set — and the
 * ratios against that uniform run.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseJsonlLine, scanJsonl } from './jsonl';
import type { EvalMetrics, MetricLine, RunJson, TrainMetrics } from './record';

export const comparableMetrics = ['i2t_r1', 'i2t_r5', 't2i_r1', 't2i_r5', 'zeroshot_acc'] as const;
export type ComparableMetric = (typeof comparableMetrics)[number];

export interface RunComparison {
  dir: string;
  id: string;
  method: string;
  filterRatio?: number;
  status: string;
  steps: number;
  examplesSeen: number;
  flops: number;
  final: Partial<Record<ComparableMetric, number>>;
  /** Trained examples / FLOPs at which the target was first reached (linear between evals); null if never. */
  examplesToTarget: number | null;
  flopsToTarget: number | null;
  /**
   * Speed-ups, both read the same way: uniform's ÷ this run's, > 1 = this run
   * needed less. The strict definition: uniform's examples (FLOPs) at its
   * FIRST crossing of the target (its final value) — uniform often touches its
   * final value before its last step.
   */
  examplesSpeedup: number | null;
  flopsSpeedup: number | null;
  /**
   * The paper's definition: uniform's whole training budget (all its trained
   * examples, all its FLOPs) ÷ what this run needed to reach uniform's final value.
   */
  examplesSpeedupBudget: number | null;
  flopsSpeedupBudget: number | null;
  /** Where the FLOPs to target went: training, learner scoring, reference embedding (interpolated like the total). */
  flopsToTargetSplit?: { train: number; score: number; reference: number };
  /** Mean share of known-noisy pairs among the trained ones, and in the scored pool. */
  pickedNoisy?: number;
  poolNoisy?: number;
  /** Mean share of a step's time spent scoring and selecting. */
  scoreShare?: number;
  selectShare?: number;
  /** Its reference's AUC at telling right captions from swapped ones on its pool (where the data know). */
  referenceNoiseAuc?: number;
}

export interface Comparison {
  metric: ComparableMetric;
  target: number;
  targetFrom: string;
  baseline?: string;
  runs: RunComparison[];
}

interface LoadedRun {
  dir: string;
  run: RunJson;
  evals: EvalMetrics[];
  trains: TrainMetrics[];
  poolNoisy?: number;
}

/** A selections line's `pool_noisy`, read without parsing the line (those with the whole super-batch are long). */
const poolNoisyPattern = /"pool_noisy":(-?[0-9.eE+-]+)/;

/** Reads a run's logs a chunk at a time: comparing long runs inside the editor does not stall it. */
async function loadRun(dir: string): Promise<LoadedRun> {
  const runFile = path.join(dir, 'run.json');
  if (!fs.existsSync(runFile)) throw new Error(`${dir}: not a run folder (no run.json).`);
  const run = JSON.parse(fs.readFileSync(runFile, 'utf8')) as RunJson;
  const metricsFile = path.join(dir, 'metrics.jsonl');
  const rows: MetricLine[] = [];
  await scanJsonl(metricsFile, (text, span) => rows.push(parseJsonlLine<MetricLine>(text, metricsFile, span.lineNumber)));
  const pool: number[] = [];
  await scanJsonl(path.join(dir, 'selections.jsonl'), (text) => {
    const value = Number(poolNoisyPattern.exec(text)?.[1]);
    if (Number.isFinite(value)) pool.push(value);
  });
  return {
    dir,
    run,
    evals: rows.filter((r): r is EvalMetrics => r.type === 'eval'),
    trains: rows.filter((r): r is TrainMetrics => r.type === 'train'),
    poolNoisy: pool.length ? mean(pool) : undefined,
  };
}

function mean(xs: number[]): number {
  return xs.reduce((a, b) => a + b, 0) / xs.length;
}

/** Where a curve first reaches `target`, interpolated linearly between the eval below it and the one at or above. */
export function firstReach(evals: readonly EvalMetrics[], metric: ComparableMetric, target: number, x: (e: EvalMetrics) => number): number | null {
  let previous: EvalMetrics | undefined;
  for (const e of evals) {
    const value = e[metric];
    if (value === undefined) continue;
    if (value >= target) {
      const before = previous?.[metric];
      if (!previous || before === undefined || value === before) return x(e);
      const t = (target - before) / (value - before);
      return x(previous) + t * (x(e) - x(previous));
    }
    previous = e;
  }
  return null;
}

/** Training, scoring and reference FLOPs when `examples` had been trained on, interpolated between train lines. */
export function flopsSplitAt(trains: readonly TrainMetrics[], examples: number): { train: number; score: number; reference: number } {
  const split = (t: TrainMetrics | undefined) => ({ train: t?.flops_train ?? 0, score: t?.flops_score ?? 0, reference: t?.flops_reference ?? 0 });
  let previous: TrainMetrics | undefined;
  for (const t of trains) {
    if (t.examples_seen >= examples) {
      const a = split(previous);
      const b = split(t);
      const x0 = previous?.examples_seen ?? 0;
      const f = t.examples_seen === x0 ? 1 : (examples - x0) / (t.examples_seen - x0);
      return { train: a.train + f * (b.train - a.train), score: a.score + f * (b.score - a.score), reference: a.reference + f * (b.reference - a.reference) };
    }
    previous = t;
  }
  return split(previous);
}

export async function compareRuns(dirs: readonly string[], options: { metric?: ComparableMetric; target?: number } = {}): Promise<Comparison> {
  const metric = options.metric ?? 'i2t_r1';
  const runs: LoadedRun[] = [];
  for (const dir of dirs) runs.push(await loadRun(dir));
  // Plain uniform is the baseline; a uniform run that distils from a reference is one of the compared runs.
  const isUniform = (r: LoadedRun): boolean => r.run.config.method === 'uniform';
  // run.json holds the weights the run trained with; runs from before a setting have none, and did not use it.
  const distillOf = (r: LoadedRun): number => r.run.config.distill ?? 0;
  const featuresOf = (r: LoadedRun): number => r.run.config.distillFeatures ?? 0;
  const teacherOf = (r: LoadedRun): string => [distillOf(r) > 0 ? ` + distill ${distillOf(r)}` : '', featuresOf(r) > 0 ? ` + features ${featuresOf(r)}` : ''].join('');
  const baseline = runs.find((r) => isUniform(r) && teacherOf(r) === '') ?? runs.find(isUniform);
  let target = options.target;
  let targetFrom = 'given';
  if (target === undefined) {
    if (!baseline) throw new Error('No uniform run among these to take the target from: add one, or give --target VALUE.');
    const last = baseline.evals[baseline.evals.length - 1]?.[metric];
    if (last === undefined) throw new Error(`${baseline.dir}: the uniform run has no ${metric} eval yet.`);
    target = last;
    targetFrom = `final ${metric} of ${baseline.run.id}`;
  }
  const baselineExamples = baseline ? firstReach(baseline.evals, metric, target, (e) => e.examples_seen) : null;
  const baselineFlops = baseline ? firstReach(baseline.evals, metric, target, (e) => e.flops) : null;
  const baselineLast = baseline?.trains[baseline.trains.length - 1];
  const comparisons = runs.map((r): RunComparison => {
    const last = r.evals[r.evals.length - 1];
    const lastTrain = r.trains[r.trains.length - 1];
    const final: Partial<Record<ComparableMetric, number>> = {};
    for (const m of comparableMetrics) if (last?.[m] !== undefined) final[m] = last[m];
    const examplesToTarget = firstReach(r.evals, metric, target!, (e) => e.examples_seen);
    const flopsToTarget = firstReach(r.evals, metric, target!, (e) => e.flops);
    const picked = r.trains.map((t) => t.picked_noisy).filter((x): x is number => x !== undefined);
    const shares = (key: 'score_s' | 'select_s'): number | undefined => {
      const rows = r.trains.filter((t) => t.step_s > 0 && t[key] !== undefined);
      return rows.length ? mean(rows.map((t) => t[key] / t.step_s)) : undefined;
    };
    return {
      dir: r.dir,
      id: r.run.id,
      method: `${r.run.config.method}${teacherOf(r)}`,
      filterRatio: r.run.config.method === 'uniform' ? undefined : r.run.config.filterRatio,
      status: r.run.status,
      steps: lastTrain?.step ?? 0,
      examplesSeen: lastTrain?.examples_seen ?? 0,
      flops: lastTrain?.flops ?? 0,
      final,
      examplesToTarget,
      flopsToTarget,
      examplesSpeedup: baselineExamples !== null && examplesToTarget ? baselineExamples / examplesToTarget : null,
      flopsSpeedup: baselineFlops !== null && flopsToTarget ? baselineFlops / flopsToTarget : null,
      examplesSpeedupBudget: baselineLast && examplesToTarget ? baselineLast.examples_seen / examplesToTarget : null,
      flopsSpeedupBudget: baselineLast && flopsToTarget ? baselineLast.flops / flopsToTarget : null,
      ...(examplesToTarget !== null ? { flopsToTargetSplit: flopsSplitAt(r.trains, examplesToTarget) } : {}),
      pickedNoisy: picked.length ? mean(picked) : undefined,
      poolNoisy: r.poolNoisy,
      scoreShare: shares('score_s'),
      selectShare: shares('select_s'),
      referenceNoiseAuc: r.run.referenceRun?.noiseAuc,
    };
  });
  return { metric, target, targetFrom, baseline: baseline?.run.id, runs: comparisons };
}

const pct = (x: number | undefined): string => (x === undefined ? '–' : `${(100 * x).toFixed(1)}%`);
const count = (x: number | null): string => (x === null ? 'not reached' : x >= 1e9 ? `${(x / 1e9).toFixed(1)}G` : x >= 1e3 ? `${(x / 1e3).toFixed(1)}k` : x.toFixed(0));
const ratio = (x: number | null): string => (x === null ? '–' : `${x.toFixed(2)}×`);

export function comparisonMarkdown(c: Comparison): string {
  const header = [
    'run',
    'method',
    'F',
    `final ${c.metric}`,
    'examples to target',
    'examples speed-up (strict / budget)',
    'FLOPs to target',
    'FLOPs speed-up (strict / budget)',
    'FLOPs to target: train / score / reference',
    'noisy picked / pool',
    'scoring / selection share of step',
  ];
  const split = (r: RunComparison): string => {
    const s = r.flopsToTargetSplit;
    if (!s || r.flopsToTarget === null) return '–';
    const total = s.train + s.score + s.reference;
    return total > 0 ? `${pct(s.train / total)} / ${pct(s.score / total)} / ${pct(s.reference / total)}` : '–';
  };
  const rows = c.runs.map((r) => [
    r.id,
    r.method,
    r.filterRatio === undefined ? '–' : String(r.filterRatio),
    pct(r.final[c.metric]),
    count(r.examplesToTarget),
    `${ratio(r.examplesSpeedup)} / ${ratio(r.examplesSpeedupBudget)}`,
    count(r.flopsToTarget),
    `${ratio(r.flopsSpeedup)} / ${ratio(r.flopsSpeedupBudget)}`,
    split(r),
    r.pickedNoisy === undefined ? '–' : `${pct(r.pickedNoisy)} / ${pct(r.poolNoisy)}`,
    r.scoreShare === undefined ? '–' : `${pct(r.scoreShare)} / ${pct(r.selectShare)}`,
  ]);
  const line = (cells: string[]): string => `| ${cells.join(' | ')} |`;
  const aucs = c.runs.filter((r) => r.referenceNoiseAuc !== undefined).map((r) => `${r.id} ${r.referenceNoiseAuc!.toFixed(3)}`);
  return [
    `Target: ${c.metric} ≥ ${pct(c.target)} (${c.targetFrom}).`,
    '',
    line(header),
    line(header.map(() => '---')),
    ...rows.map(line),
    '',
    'Examples and FLOPs to target are interpolated between evals; FLOPs count training, learner scoring and reference embedding (not the reference\'s own training).',
    'Speed-ups read uniform ÷ run (> 1 = the run needed less). Strict: against what uniform needed to FIRST reach its final value; budget (the paper\'s): against uniform\'s whole run.',
    ...(aucs.length ? [`How well each run's reference tells right captions from swapped ones on its pool (AUC; 0.5 = chance, 1 = perfect): ${aucs.join(', ')}.`] : []),
  ].join('\n');
}
