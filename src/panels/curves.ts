/**
 * Curves for the dashboard, shaped in the host (STYLE.md, habit 4): each
 * run's metric lines become raw series; a chart decimates every run onto one
 * grid of about one bucket per pixel, keeping per bucket the min, max and
 * last value (a line at that width shows exactly those) plus the mean and
 * count the webview's EMA needs. Live lines update their bucket in place and
 * the chart reports the buckets that changed since the last patch; a point
 * past the grid's end asks for the chart to be redone on a wider grid.
 */
import type { MetricLine } from '../core/runs/record';
import { curveMetrics, paletteSize, xAxes, type ChartData, type ChartPatch, type CurveMetric, type Grid, type SeriesColumns, type XAxis } from '../protocol/webview';

/** One metric of one run, column by column, in step order. */
export type RawSeries = Record<XAxis, number[]> & { value: number[] };

export type RunSeries = Record<CurveMetric, RawSeries>;

const emptySeries = (): RawSeries => ({ step: [], examples_seen: [], flops: [], flops_train: [], wall_s: [], active_s: [], value: [] });

export const emptyRunSeries = (): RunSeries => Object.fromEntries(curveMetrics.map((metric) => [metric, emptySeries()])) as RunSeries;

/** The metrics a line carries, with their values (non-finite ones are left out: a skipped step draws nothing). */
export function lineValues(line: MetricLine): [CurveMetric, number][] {
  const out: [CurveMetric, number][] = [];
  const add = (metric: CurveMetric, value: unknown): void => {
    if (typeof value === 'number' && Number.isFinite(value)) out.push([metric, value]);
  };
  if (line.type === 'train') {
    add('loss', line.loss);
    add('distill_loss', line.distill_loss);
    add('feature_loss', line.feature_loss);
  } else {
    add('i2t_r1', line.i2t_r1);
    add('i2t_r5', line.i2t_r5);
    add('t2i_r1', line.t2i_r1);
    add('t2i_r5', line.t2i_r5);
    add('zeroshot_acc', line.zeroshot_acc);
  }
  return out;
}

/** The x of a line on an axis; eval lines have no flops split, so a missing one falls back to total flops. */
export function lineX(line: MetricLine, axis: XAxis): number {
  const value = (line as unknown as Record<string, unknown>)[axis];
  return typeof value === 'number' && Number.isFinite(value) ? value : NaN;
}

/** Appends a line's points; returns the metrics it added to. */
export function appendLine(series: RunSeries, line: MetricLine): CurveMetric[] {
  const values = lineValues(line);
  for (const [metric, value] of values) {
    const raw = series[metric];
    for (const axis of xAxes) raw[axis].push(lineX(line, axis));
    raw.value.push(value);
  }
  return values.map(([metric]) => metric);
}

/** Forgets every point at `step` or later (a resumed run writes again from its checkpoint). */
export function truncateSeries(series: RunSeries, step: number): void {
  for (const raw of Object.values(series)) {
    let keep = raw.step.length;
    while (keep > 0 && raw.step[keep - 1] >= step) keep--;
    for (const column of Object.values(raw)) column.length = keep;
  }
}

export function seriesOf(lines: readonly MetricLine[]): RunSeries {
  const series = emptyRunSeries();
  for (const line of lines) appendLine(series, line);
  return series;
}

/** Where an x lands on the grid's scale: itself, or its log10 (NaN for x ≤ 0, which a log axis cannot show). */
export const gridCoordinate = (x: number, log: boolean): number => (log ? (x > 0 ? Math.log10(x) : NaN) : x);

/** The x a bucket is drawn at: its centre. */
export function bucketX(grid: Grid, index: number): number {
  const centre = grid.lo + (index + 0.5) * grid.width;
  return grid.log ? 10 ** centre : centre;
}

/**
 * A grid over [lo, hi] of the grid coordinate with `buckets` buckets across the
 * data, and `headroom` (a share of the span) of spare buckets past hi for a
 * run that still trains, so new points rarely force a new grid.
 */
export function makeGrid(lo: number, hi: number, buckets: number, log: boolean, headroom = 0): { grid: Grid; capacity: number } {
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) return { grid: { lo: 0, width: 1, log }, capacity: buckets };
  const span = hi - lo;
  const width = span > 0 ? span / buckets : Math.max(Math.abs(lo) * 1e-3, 1e-9);
  // One extra bucket so hi itself falls inside (bucket index = buckets).
  const capacity = buckets + 1 + Math.ceil(buckets * headroom);
  return { grid: { lo, width, log }, capacity };
}

/** Bucket of a grid coordinate; -1 when it lies before the grid or is not a number. */
export function bucketOf(grid: Grid, coordinate: number): number {
  if (!Number.isFinite(coordinate)) return -1;
  const index = Math.floor((coordinate - grid.lo) / grid.width + 1e-9);
  return index < 0 ? -1 : index;
}

/** One run's buckets in one chart. */
class Buckets {
  readonly min: Float64Array;
  readonly max: Float64Array;
  readonly last: Float64Array;
  readonly sum: Float64Array;
  readonly n: Uint32Array;

  constructor(capacity: number) {
    this.min = new Float64Array(capacity);
    this.max = new Float64Array(capacity);
    this.last = new Float64Array(capacity);
    this.sum = new Float64Array(capacity);
    this.n = new Uint32Array(capacity);
  }

  add(index: number, value: number): void {
    if (this.n[index] === 0) {
      this.min[index] = value;
      this.max[index] = value;
      this.sum[index] = 0;
    } else {
      if (value < this.min[index]) this.min[index] = value;
      if (value > this.max[index]) this.max[index] = value;
    }
    this.last[index] = value;
    this.sum[index] += value;
    this.n[index]++;
  }

  columns(run: string, from: number, to: number): SeriesColumns {
    const length = Math.max(0, to - from);
    const out: SeriesColumns = { run, min: new Array(length), max: new Array(length), last: new Array(length), mean: new Array(length), n: new Array(length) };
    for (let i = 0; i < length; i++) {
      const b = from + i;
      const count = this.n[b];
      out.n[i] = count;
      if (count === 0) {
        out.min[i] = out.max[i] = out.last[i] = out.mean[i] = null;
      } else {
        out.min[i] = this.min[b];
        out.max[i] = this.max[b];
        out.last[i] = this.last[b];
        out.mean[i] = this.sum[b] / count;
      }
    }
    return out;
  }
}

/**
 * A chart being drawn: one grid, one set of buckets per run. `add` takes live
 * points; `patch` gives the buckets touched since the last patch.
 */
export class ChartDecimator {
  private readonly runs = new Map<string, Buckets>();
  private filled = 0;
  private dirtyFrom = Infinity;

  private constructor(
    readonly metric: CurveMetric,
    readonly axis: XAxis,
    readonly grid: Grid,
    readonly capacity: number,
  ) {}

  /**
   * Decimates the runs' series of `metric` on `axis` onto one shared grid.
   * Runs without a point of this metric are left out of the chart.
   */
  static build(metric: CurveMetric, axis: XAxis, runs: ReadonlyMap<string, RawSeries>, options: { buckets: number; log: boolean; headroom?: number }): ChartDecimator {
    let lo = Infinity;
    let hi = -Infinity;
    for (const raw of runs.values()) {
      for (const x of raw[axis]) {
        const c = gridCoordinate(x, options.log);
        if (!Number.isFinite(c)) continue;
        if (c < lo) lo = c;
        if (c > hi) hi = c;
      }
    }
    const { grid, capacity } = makeGrid(lo, hi, options.buckets, options.log, options.headroom ?? 0);
    const chart = new ChartDecimator(metric, axis, grid, capacity);
    for (const [run, raw] of runs) {
      if (raw.value.length === 0) continue;
      const buckets = new Buckets(capacity);
      chart.runs.set(run, buckets);
      const xs = raw[axis];
      for (let i = 0; i < xs.length; i++) {
        const index = bucketOf(grid, gridCoordinate(xs[i], grid.log));
        if (index < 0 || index >= capacity) continue;
        buckets.add(index, raw.value[i]);
        if (index + 1 > chart.filled) chart.filled = index + 1;
      }
    }
    return chart;
  }

  get runIds(): string[] {
    return [...this.runs.keys()];
  }

  /**
   * A live point of a run already in the chart. Returns false when the chart
   * cannot take it (past the grid's end, before its start, or a run new to
   * the chart): the caller rebuilds the chart. A point a log axis cannot
   * show (x ≤ 0) is dropped, as `build` drops it.
   */
  add(run: string, x: number, value: number): boolean {
    const buckets = this.runs.get(run);
    if (buckets === undefined) return false;
    const coordinate = gridCoordinate(x, this.grid.log);
    if (!Number.isFinite(coordinate)) return true;
    const index = bucketOf(this.grid, coordinate);
    if (index < 0 || index >= this.capacity) return false;
    buckets.add(index, value);
    if (index + 1 > this.filled) this.filled = index + 1;
    if (index < this.dirtyFrom) this.dirtyFrom = index;
    return true;
  }

  /** The whole chart; clears what `patch` would report. */
  data(): ChartData {
    this.dirtyFrom = Infinity;
    return { metric: this.metric, grid: this.grid, count: this.filled, series: [...this.runs].map(([run, buckets]) => buckets.columns(run, 0, this.filled)) };
  }

  /** The buckets changed since the last `data` or `patch`, or undefined when none did. */
  patch(): ChartPatch | undefined {
    if (this.dirtyFrom === Infinity) return undefined;
    const from = this.dirtyFrom;
    this.dirtyFrom = Infinity;
    return { metric: this.metric, from, count: this.filled, series: [...this.runs].map(([run, buckets]) => buckets.columns(run, from, this.filled)) };
  }
}

/**
 * Palette slots for runs, stable while a panel lives: a run keeps the slot it
 * has; a new run takes the lowest free slot (the theme's most distinct
 * colours come first), or, once every slot is taken, the least used one.
 */
export function assignColors(ids: readonly string[], previous: ReadonlyMap<string, number> = new Map()): Map<string, number> {
  const out = new Map<string, number>();
  const used = new Array<number>(paletteSize).fill(0);
  for (const id of ids) {
    const slot = previous.get(id);
    if (slot === undefined || slot < 0 || slot >= paletteSize) continue;
    out.set(id, slot);
    used[slot]++;
  }
  for (const id of ids) {
    if (out.has(id)) continue;
    const slot = used.indexOf(Math.min(...used));
    out.set(id, slot);
    used[slot]++;
  }
  return out;
}

/**
 * Debiased exponential moving average (as TensorBoard's smoothing): s ← a·s + (1 − a)·v
 * from s = 0, divided by 1 − a^t so the first points are not pulled to zero.
 * With `counts` each value is the mean of that many raw points (a decimated
 * bucket) and is weighed as them: a becomes a^n, so the curve does not
 * depend on how many points share a pixel. Nulls stay null and leave the state.
 * Shared by the host (examples to reach a loss) and the dashboard webview.
 */
export function debiasedEma(values: readonly (number | null)[], smoothing: number, counts?: readonly number[]): (number | null)[] {
  const out = new Array<number | null>(values.length);
  let state = 0;
  let weight = 0;
  for (let i = 0; i < values.length; i++) {
    const value = values[i];
    if (value === null) {
      out[i] = null;
      continue;
    }
    const decay = counts === undefined || counts[i] === 1 ? smoothing : smoothing ** counts[i];
    state = decay * state + (1 - decay) * value;
    weight = decay * weight + (1 - decay);
    out[i] = weight > 0 ? state / weight : value;
  }
  return out;
}
