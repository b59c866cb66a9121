/**
 * The host's state of a dashboard panel, and the messages that keep its
 * webview in step (STYLE.md, habit 3: the host owns the state). The panel
 * class feeds it runs from disk and the worker's live lines, and posts what
 * it returns:
 *
 *     ready(view)   → snapshot(view)
 *     view(view)    → setView(view)        (charts / heatmap / reach as needed)
 *     worker lines  → appendMetric, appendSelection, updateRun
 *     every ~250 ms → flush()              (deltas; nothing when nothing changed)
 *
 * No editor imports: it is tested with plain Node tests.
 */
import type { MetricLine, RunJson, SelectionLine } from '../core/runs/record';
import { readRunJson } from '../core/runs/record';
import {
  curveMetrics,
  defaultDashboardView,
  perStepMetrics,
  webviewProtocolVersion,
  type ChartData,
  type ChartPatch,
  type CurveMetric,
  type DashboardHostMessage,
  type DashboardView,
  type RunInfo,
} from '../protocol/webview';
import { appendLine, assignColors, ChartDecimator, lineX, seriesOf, truncateSeries, type RunSeries } from './curves';
import { HeatmapBuilder } from './heatmap';
import { examplesToReach } from './reach';
import { joinedMetrics, lineageOf, liveStatuses, runInfo, visitLines, type LineageLink } from './runs';

interface RunEntry {
  id: string;
  dir: string;
  json: RunJson;
  chain: LineageLink[];
  series: RunSeries;
  /** Newest train step seen. */
  lastStep: number;
}

export interface DashboardModelOptions {
  /** Spare grid width for runs that still train, as a share of the data's span. */
  headroom?: number;
  heatmapColumns?: number;
  heatmapRows?: number;
  /** Least time between two heatmaps of a training run (each is redone whole). */
  heatmapIntervalMs?: number;
  now?: () => number;
}

export class DashboardModel {
  private readonly runs = new Map<string, RunEntry>();
  private colors = new Map<string, number>();
  private view: DashboardView = defaultDashboardView;
  private readonly charts = new Map<CurveMetric, ChartDecimator>();
  private readonly staleCharts = new Set<CurveMetric>();
  private runsChanged = false;
  private reachDirty = false;
  /** `loading` holds the lines reported while the run's selections are read. */
  private heatmap: { run: string; builder: HeatmapBuilder; dirty: boolean; sentAt: number; loading?: SelectionLine[]; ready: Promise<void> } | undefined;
  /** Runs being read by addRun, with the lines and the status their workers reported meanwhile. */
  private readonly loading = new Map<string, { lines: MetricLine[]; patch: { status?: string; step?: number } }>();
  private readonly options: Required<DashboardModelOptions>;
  /** What went wrong reading runs since `takeProblems` was last called, for the user. */
  private readonly problems: string[] = [];

  constructor(options: DashboardModelOptions = {}) {
    this.options = { headroom: 0.25, heatmapColumns: 240, heatmapRows: 40, heatmapIntervalMs: 2000, now: () => Date.now(), ...options };
  }

  // ---- runs ----------------------------------------------------------------

  /**
   * Reads a run folder (and its ancestors' lines up to each fork), a chunk at
   * a time. Lines its worker reports meanwhile are kept and added after what
   * the files held. Throws a message for the user when it holds no run.
   */
  async addRun(dir: string): Promise<RunInfo> {
    const json = readRunJson(dir);
    const chain = lineageOf(dir, json);
    const arrived = { lines: [] as MetricLine[], patch: {} };
    this.loading.set(json.id, arrived);
    let lines: MetricLine[];
    try {
      lines = await joinedMetrics(chain);
    } finally {
      this.loading.delete(json.id);
    }
    const entry: RunEntry = { id: json.id, dir, json, chain, series: seriesOf(lines), lastStep: lastTrainStep(lines, json) };
    this.runs.set(entry.id, entry);
    this.colors = assignColors([...this.runs.keys()], this.colors);
    this.allChanged();
    // A line reported while the files were read is either one the read already got (written before it was
    // reported: same step, same clock) or a new one — after the read, or a resume's rewrite, which appendMetric handles.
    const read = new Set(lines.map(lineKey));
    for (const line of arrived.lines) if (!read.has(lineKey(line))) this.appendMetric(entry.id, line);
    this.updateRun(entry.id, arrived.patch);
    return this.info(entry);
  }

  removeRun(id: string): void {
    if (!this.runs.delete(id)) return;
    this.colors.delete(id);
    if (this.heatmap?.run === id) this.heatmap = undefined;
    this.allChanged();
  }

  get runIds(): string[] {
    return [...this.runs.keys()];
  }

  /** Whether run `id` is shown, or being read to be (its worker's events are kept meanwhile). */
  has(id: string): boolean {
    return this.runs.has(id) || this.loading.has(id);
  }

  /** A metrics line the worker of run `id` just wrote (its own line, as in its metrics.jsonl). */
  appendMetric(id: string, line: MetricLine): void {
    const loading = this.loading.get(id);
    if (loading) return void loading.lines.push(line);
    const entry = this.runs.get(id);
    if (!entry) return;
    if (line.type === 'train' && line.step <= entry.lastStep && entry.series.loss.step.length > 0) {
      // A resumed run writes again from its checkpoint: forget what lay past it.
      truncateSeries(entry.series, line.step);
      appendLine(entry.series, line);
      entry.lastStep = line.step;
      this.allChanged();
      return;
    }
    if (line.type === 'train') {
      entry.lastStep = line.step;
      this.runsChanged = true;
    }
    for (const metric of appendLine(entry.series, line)) {
      const chart = this.charts.get(metric);
      const raw = entry.series[metric];
      if (!this.view.hidden.includes(id) && (!chart || !chart.add(id, lineX(line, this.view.xAxis), raw.value[raw.value.length - 1]))) this.staleCharts.add(metric);
      if (metric === this.view.reach.metric) this.reachDirty = true;
    }
  }

  /** A selections line the worker of run `id` just wrote. */
  appendSelection(id: string, line: SelectionLine): void {
    if (this.heatmap?.run !== id) return;
    if (this.heatmap.loading) this.heatmap.loading.push(line);
    else if (this.heatmap.builder.add(line)) this.heatmap.dirty = true;
  }

  /** The worker reported a new status (and step) for run `id`. */
  updateRun(id: string, patch: { status?: string; step?: number }): void {
    const loading = this.loading.get(id);
    if (loading) return void Object.assign(loading.patch, patch);
    const entry = this.runs.get(id);
    if (!entry) return;
    if (patch.status !== undefined && patch.status !== entry.json.status) {
      entry.json = { ...entry.json, status: patch.status as RunJson['status'] };
      this.runsChanged = true;
    }
    if (patch.step !== undefined && patch.step > entry.lastStep) {
      entry.lastStep = patch.step;
      this.runsChanged = true;
    }
  }

  // ---- messages --------------------------------------------------------------

  /** Problems met since the last call (a damaged log), to show as notices. */
  takeProblems(): string[] {
    return this.problems.splice(0);
  }

  /** The answer to `ready`: everything, for this view. */
  async snapshot(view: DashboardView): Promise<DashboardHostMessage> {
    this.view = view;
    await this.loadHeatmap();
    this.rebuildCharts();
    this.runsChanged = false;
    this.reachDirty = false;
    return {
      type: 'snapshot',
      payload: {
        protocol: webviewProtocolVersion,
        runs: this.runInfos(),
        xAxis: view.xAxis,
        logX: view.logX,
        charts: this.chartData(),
        heatmap: this.heatmapNow(),
        reach: this.reach(),
      },
    };
  }

  /** The answer to `view`: what the new view changes. */
  async setView(view: DashboardView): Promise<DashboardHostMessage[]> {
    const before = this.view;
    this.view = view;
    if (before.heatmapRun !== view.heatmapRun) await this.loadHeatmap();
    const out: DashboardHostMessage[] = [];
    const sameHidden = before.hidden.length === view.hidden.length && before.hidden.every((id) => view.hidden.includes(id));
    if (before.xAxis !== view.xAxis || before.logX !== view.logX || before.buckets !== view.buckets || !sameHidden) {
      this.rebuildCharts();
      out.push({ type: 'charts', payload: { xAxis: view.xAxis, logX: view.logX, charts: this.chartData() } });
    }
    if (before.heatmapRun !== view.heatmapRun) out.push({ type: 'heatmap', payload: { heatmap: this.heatmapNow() } });
    const reachInputs = (v: DashboardView): string => JSON.stringify([v.reach, v.baseline, v.hidden, perStepMetrics.has(v.reach.metric) ? v.smoothing : 0]);
    if (reachInputs(before) !== reachInputs(view)) {
      this.reachDirty = false;
      out.push({ type: 'reach', payload: this.reach() });
    }
    return out;
  }

  /** Deltas since the last call (empty when nothing changed). */
  flush(): DashboardHostMessage[] {
    const out: DashboardHostMessage[] = [];
    const replaced: ChartData[] = [];
    const patches: ChartPatch[] = [];
    for (const metric of this.staleCharts) {
      const chart = this.buildChart(metric);
      if (chart) replaced.push(chart.data());
    }
    this.staleCharts.clear();
    for (const chart of this.charts.values()) {
      const patch = chart.patch();
      if (patch) patches.push(patch);
    }
    if (this.runsChanged || replaced.length > 0 || patches.length > 0) {
      const payload: Extract<DashboardHostMessage, { type: 'delta' }>['payload'] = { patches };
      if (this.runsChanged) payload.runs = this.runInfos();
      if (replaced.length > 0) payload.charts = replaced;
      out.push({ type: 'delta', payload });
      this.runsChanged = false;
    }
    const heatmap = this.heatmap;
    if (heatmap?.dirty && this.options.now() - heatmap.sentAt >= this.options.heatmapIntervalMs) {
      out.push({ type: 'heatmap', payload: { heatmap: this.heatmapNow() } });
    }
    if (this.reachDirty) {
      this.reachDirty = false;
      out.push({ type: 'reach', payload: this.reach() });
    }
    return out;
  }

  // ---- internals -------------------------------------------------------------

  private allChanged(): void {
    this.runsChanged = true;
    this.reachDirty = true;
    for (const metric of curveMetrics) this.staleCharts.add(metric);
  }

  private info(entry: RunEntry): RunInfo {
    return runInfo(entry.json, entry.dir, entry.lastStep, this.colors.get(entry.id) ?? 0);
  }

  private runInfos(): RunInfo[] {
    return [...this.runs.values()].map((entry) => this.info(entry));
  }

  private shownRuns(): RunEntry[] {
    return [...this.runs.values()].filter((entry) => !this.view.hidden.includes(entry.id));
  }

  private buildChart(metric: CurveMetric): ChartDecimator | undefined {
    const shown = this.shownRuns();
    const raw = new Map(shown.filter((entry) => entry.series[metric].value.length > 0).map((entry) => [entry.id, entry.series[metric]]));
    if (raw.size === 0) {
      this.charts.delete(metric);
      return undefined;
    }
    const live = shown.some((entry) => liveStatuses.has(entry.json.status));
    const chart = ChartDecimator.build(metric, this.view.xAxis, raw, { buckets: this.view.buckets, log: this.view.logX, headroom: live ? this.options.headroom : 0 });
    this.charts.set(metric, chart);
    return chart;
  }

  private rebuildCharts(): void {
    this.charts.clear();
    this.staleCharts.clear();
    for (const metric of curveMetrics) this.buildChart(metric);
  }

  /** Charts in the fixed metric order (the webview lays them out in it). */
  private chartData(): ChartData[] {
    return curveMetrics.flatMap((metric) => {
      const chart = this.charts.get(metric);
      return chart ? [chart.data()] : [];
    });
  }

  /** The run whose heatmap shows: the chosen one, by default the first that scores its batches. */
  private heatmapEntry(): RunEntry | undefined {
    const wanted = this.view.heatmapRun ?? [...this.runs.values()].find((entry) => entry.json.config.method !== 'uniform')?.id ?? null;
    return wanted === null ? undefined : this.runs.get(wanted);
  }

  /** Reads the heatmap's run's selections from disk when that run changed (a chunk at a time); lines reported meanwhile are added after. */
  private async loadHeatmap(): Promise<void> {
    const entry = this.heatmapEntry();
    if (!entry) return;
    if (this.heatmap?.run === entry.id) return this.heatmap.ready;
    const builder = new HeatmapBuilder();
    const arrived: SelectionLine[] = [];
    // Lines go into the builder as they are read (it handles a resume's repeated steps): the file is never held whole.
    let last = -1;
    const ready = visitLines<SelectionLine>(entry.chain, 'selections.jsonl', (line) => {
      if (!Array.isArray(line.ids)) return;
      builder.add(line);
      last = line.step;
    })
      .then(() => {
        for (const line of arrived) if (line.step > last) builder.add(line);
      })
      .catch((error: unknown) => {
        // The heatmap shows what was read before the damage; the user is told where it is.
        this.problems.push(`The learnability heatmap of ${entry.id} stops at step ${last}: ${(error as Error).message}`);
      })
      .finally(() => {
        if (this.heatmap?.builder === builder) this.heatmap.loading = undefined;
      });
    this.heatmap = { run: entry.id, builder, dirty: false, sentAt: 0, loading: arrived, ready };
    return ready;
  }

  /** The heatmap of the chosen run, from what `loadHeatmap` read and the lines since. */
  private heatmapNow() {
    const entry = this.heatmapEntry();
    if (!entry || this.heatmap?.run !== entry.id || this.heatmap.loading) {
      if (!entry) this.heatmap = undefined;
      return null;
    }
    this.heatmap.dirty = false;
    this.heatmap.sentAt = this.options.now();
    return this.heatmap.builder.build(entry.id, { columns: this.options.heatmapColumns, rows: this.options.heatmapRows });
  }

  private reach() {
    const { metric, target } = this.view.reach;
    const runs = this.shownRuns().map((entry) => ({ id: entry.id, series: entry.series[metric] }));
    return examplesToReach(runs, metric, target, { baseline: this.view.baseline, smoothing: this.view.smoothing });
  }
}

/** What tells two metrics lines apart: a resumed run writes a step again at another time. */
const lineKey = (line: MetricLine): string => `${line.type}:${line.step}:${line.wall_s}`;

function lastTrainStep(lines: readonly MetricLine[], json: RunJson): number {
  let step = json.forkStep ?? 0;
  for (const line of lines) if (line.type === 'train' && line.step > step) step = line.step;
  return step;
}
