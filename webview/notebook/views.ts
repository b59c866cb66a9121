/**
 * The two outputs a Sift notebook draws: a run (header with its status and
 * progress, live curves, the summary table, the last batch's thumbnails and
 * links) and a comparison (the runs' curves of the target metric and the
 * examples-to-target table). Each draws its saved data at once and fills in
 * the curves and thumbnails when the host answers.
 *
 * The dashboard's rules hold here: DOM built with h() (text as textContent,
 * never HTML), images only as the host's data: URIs, styles only from
 * stylesheets (adopted in the output's shadow root) and CSSOM.
 */
import { ChartView, metricTitles, type ChartContext } from '../dashboard/charts';
import { h, clear } from '../shared/dom';
import { duration, percent, score, si } from '../shared/format';
import { themeColors, type ThemeColors } from '../shared/theme';
import type { ChartData, ChartPatch, CurveMetric, RunInfo } from '../../src/protocol/webview';
import {
  notebookProtocolVersion,
  notebookXAxis,
  summaryMetrics,
  type BatchStrip,
  type CompareOutputData,
  type NotebookHostMessage,
  type NotebookRendererMessage,
  type RunOutputData,
  type SummaryMetric,
} from '../../src/protocol/notebook';

/** How an output talks to the host; undefined `post` where the host does not listen (no curves, no links). */
export interface OutputChannel {
  post?: (message: NotebookRendererMessage) => void;
}

const summaryTitles: Record<SummaryMetric, string> = {
  i2t_r1: 'i2t R@1',
  i2t_r5: 'i2t R@5',
  t2i_r1: 't2i R@1',
  t2i_r5: 't2i R@5',
  zeroshot_acc: 'zero-shot',
};

const statusClass = (status: string): string => `status status-${status.replace(/[^a-z-]/g, '')}`;

/** One output in the notebook: its shadow root's content, its charts, its subscription. */
abstract class OutputView {
  readonly body: HTMLElement;
  protected readonly notice = h('div', { class: 'notice warning hidden', attrs: { role: 'status' } });
  protected readonly chartsGrid = h('div', { class: 'charts' });
  protected readonly charts = new Map<CurveMetric, ChartView>();
  protected runs = new Map<string, RunInfo>();
  protected live = false;
  private colors: ThemeColors | undefined;
  private readonly resizeObserver: ResizeObserver;

  constructor(
    readonly key: string,
    readonly root: ShadowRoot,
    protected readonly channel: OutputChannel,
    kind: string,
  ) {
    this.body = h('div', { class: `sift-output ${kind}`, attrs: { 'data-key': key } });
    root.replaceChildren(this.body);
    this.resizeObserver = new ResizeObserver(() => {
      for (const chart of this.charts.values()) chart.resize();
    });
    this.resizeObserver.observe(this.body);
  }

  /** The folders (as saved) and charts this output asks the host for. */
  protected abstract get dirs(): string[];
  protected abstract get metrics(): CurveMetric[];
  protected abstract get wantsBatch(): boolean;

  /** Asks the host for the curves (after the first draw: the width is known then). */
  watch(): void {
    if (!this.channel.post) return;
    const width = this.body.clientWidth || 800;
    const buckets = Math.max(10, Math.min(2000, Math.round(width / Math.max(1, Math.round(width / 480)))));
    this.channel.post({ type: 'watch', payload: { protocol: notebookProtocolVersion, key: this.key, dirs: this.dirs, metrics: this.metrics, buckets, batch: this.wantsBatch } });
  }

  receive(message: NotebookHostMessage): void {
    switch (message.type) {
      case 'snapshot':
        this.setRuns(message.payload.runs);
        this.live = message.payload.live;
        this.showProblem(message.payload.problem);
        this.replaceCharts(message.payload.charts);
        this.runsChanged();
        return;
      case 'delta':
        if (message.payload.runs) this.setRuns(message.payload.runs);
        this.live = message.payload.live;
        if (message.payload.charts) for (const chart of message.payload.charts) this.setChart(chart);
        for (const patch of message.payload.patches) this.patch(patch);
        if (message.payload.runs) this.runsChanged();
        return;
      case 'batch':
        this.showBatch(message.payload.batch);
        return;
      default: {
        const unreachable: never = message;
        throw new Error(`unknown host message ${JSON.stringify(unreachable)}`);
      }
    }
  }

  /** The editor's theme changed: the canvases take its colours again. */
  restyle(): void {
    this.colors = themeColors();
    for (const chart of this.charts.values()) chart.restyle(this.context());
    this.runsChanged();
  }

  dispose(): void {
    this.resizeObserver.disconnect();
    for (const chart of this.charts.values()) chart.destroy();
    this.charts.clear();
    this.channel.post?.({ type: 'unwatch', payload: { key: this.key } });
  }

  protected runsChanged(): void {}

  protected showBatch(_batch: BatchStrip): void {}

  protected open(action: 'dashboard' | 'inspect' | 'reveal', dirs: string[]): void {
    this.channel.post?.({ type: 'open', payload: { action, dirs } });
  }

  protected linkButton(text: string, title: string, onClick: () => void): HTMLButtonElement {
    const button = h('button', { class: 'link-button', text, title, attrs: { type: 'button' } });
    if (this.channel.post) button.addEventListener('click', onClick);
    else {
      button.disabled = true;
      button.title = `${title} (needs the Sift extension)`;
    }
    return button;
  }

  protected showProblem(problem: string | undefined): void {
    this.notice.textContent = problem ?? '';
    this.notice.classList.toggle('hidden', !problem);
  }

  /** The theme's colours, resolved once (again on a theme change). */
  protected get palette(): ThemeColors {
    this.colors ??= themeColors();
    return this.colors;
  }

  private context(): ChartContext {
    return { xAxis: notebookXAxis, logX: false, smoothing: 0.6, runs: this.runs, colors: this.palette };
  }

  private setRuns(runs: RunInfo[]): void {
    this.runs = new Map(runs.map((run) => [run.id, run]));
    for (const chart of this.charts.values()) chart.setContext(this.context());
  }

  private replaceCharts(charts: ChartData[]): void {
    for (const chart of this.charts.values()) chart.destroy();
    this.charts.clear();
    clear(this.chartsGrid);
    for (const chart of charts) this.setChart(chart);
    this.chartsGrid.classList.toggle('hidden', charts.length === 0);
  }

  /** Charts keep the order of `metrics`, whatever order they arrive in. */
  private setChart(data: ChartData): void {
    const existing = this.charts.get(data.metric);
    if (existing) {
      existing.setData(data, this.context());
      return;
    }
    const view = new ChartView(data, this.context());
    this.charts.set(data.metric, view);
    const order = this.metrics;
    const next = [...this.charts.entries()].filter(([metric]) => order.indexOf(metric) > order.indexOf(data.metric)).sort((a, b) => order.indexOf(a[0]) - order.indexOf(b[0]))[0];
    this.chartsGrid.insertBefore(view.card, next ? next[1].card : null);
    this.chartsGrid.classList.remove('hidden');
    view.render();
  }

  private patch(patch: ChartPatch): void {
    this.charts.get(patch.metric)?.applyPatch(patch);
  }
}

/** A run, reference or branch cell's output. */
export class RunOutputView extends OutputView {
  private data: RunOutputData;
  private readonly title = h('span', { class: 'run-name' });
  private readonly subtitle = h('span', { class: 'muted' });
  private readonly status = h('span', { class: 'status' });
  private readonly progressText = h('span', { class: 'number muted' });
  private readonly progressBar = h('div', { class: 'progress-bar' });
  private readonly message = h('div', { class: 'notice hidden', attrs: { role: 'status' } });
  private readonly table = h('table', { class: 'data summary' });
  private readonly strip = h('div', { class: 'strip hidden' });
  private readonly waiting = h('div', { class: 'empty', text: '' });

  constructor(key: string, root: ShadowRoot, channel: OutputChannel, data: RunOutputData) {
    super(key, root, channel, 'run-output');
    this.data = data;
    const dir = (): string[] => [this.data.dir];
    this.body.append(
      h('div', { class: 'out-head' }, this.title, this.status, this.progressText),
      h('div', { class: 'out-sub' }, this.subtitle),
      h('div', { class: 'progress' }, this.progressBar),
      this.message,
      this.notice,
      this.waiting,
      this.chartsGrid,
      this.table,
      this.strip,
      h(
        'div',
        { class: 'links' },
        this.linkButton('Open Dashboard', 'Open this run in the Sift dashboard', () => this.open('dashboard', dir())),
        this.linkButton('Inspect Batch', 'Open the batch inspector on this run', () => this.open('inspect', dir())),
        this.linkButton('Reveal Run', 'Reveal the run folder', () => this.open('reveal', dir())),
      ),
    );
    this.draw();
  }

  get dir(): string {
    return this.data.dir;
  }

  protected get dirs(): string[] {
    return [this.data.dir];
  }

  /** The distillation terms only draw for a run that distils (the host sends no chart without points). */
  protected get metrics(): CurveMetric[] {
    return ['loss', 'i2t_r1', 'distill_loss', 'feature_loss'];
  }

  protected get wantsBatch(): boolean {
    return true;
  }

  /** The output's saved data changed (the cell's run moved on): redraw what it shows, keep the charts. */
  update(data: RunOutputData): void {
    this.data = data;
    this.draw();
  }

  protected override runsChanged(): void {
    this.draw();
  }

  protected override showBatch(batch: BatchStrip): void {
    clear(this.strip);
    this.strip.classList.toggle('hidden', batch.pairs.length === 0);
    if (batch.pairs.length === 0) return;
    const noisy = batch.pairs.filter((pair) => pair.noisy).length;
    const known = batch.pairs.some((pair) => pair.noisy !== undefined);
    this.strip.append(
      h('div', { class: 'strip-head' }, h('span', { class: 'label', text: `Batch trained at step ${batch.step}` }), h('span', { class: 'muted', text: `first ${batch.pairs.length} pairs${known ? `, ${noisy} with a wrong caption` : ''}` })),
    );
    const row = h('div', { class: 'thumbs' });
    for (const pair of batch.pairs) {
      const caption = pair.caption || pair.problem || pair.id;
      const image = pair.uri?.startsWith('data:image/png;base64,') ? h('img', { attrs: { src: pair.uri, alt: caption } }) : h('div', { class: 'thumb-missing', text: '?', title: pair.problem ?? '' });
      // The caption shows on hover (and is the image's alt text): at this size a line of it would be a few letters.
      row.append(h('figure', { class: `thumb${pair.noisy ? ' noisy' : ''}`, title: `${caption}${pair.noisy ? ' (wrong caption)' : ''}` }, image));
    }
    this.strip.append(row);
  }

  private draw(): void {
    const data = this.data;
    const live = this.runs.get(data.id);
    // While it trains the host's view is newer than the saved data; once it ended, the saved data is the record.
    const ended = ['finished', 'failed', 'stopped', 'interrupted'].includes(data.status);
    const status = this.live && live && !ended ? live.status : data.status;
    const step = Math.max(data.step, this.live && live ? live.step : 0);
    const total = data.totalSteps || live?.totalSteps || 0;
    this.title.textContent = data.label ? `@${data.label}` : data.id;
    const kind = data.cell === 'reference' ? 'reference model' : data.cell === 'branch' && data.parent ? `branch of ${data.parent.id} at step ${data.parent.step}` : '';
    this.subtitle.textContent = [data.label ? data.id : '', data.method, kind].filter(Boolean).join(' · ');
    this.status.className = statusClass(status);
    this.status.textContent = status;
    this.progressText.textContent = total > 0 ? `step ${step.toLocaleString('en-US')} / ${total.toLocaleString('en-US')}` : '';
    this.progressBar.style.width = `${total > 0 ? Math.min(100, (100 * step) / total) : 0}%`;
    this.progressBar.classList.toggle('done', status === 'finished');
    this.message.textContent = data.message ?? '';
    this.message.classList.toggle('hidden', !data.message);
    this.waiting.textContent = this.charts.size === 0 && (status === 'starting' || status === 'running') ? 'Curves appear after the first steps…' : '';
    this.drawTable();
  }

  private drawTable(): void {
    const { summary } = this.data;
    const metrics = summaryMetrics.filter((metric) => summary.metrics[metric] !== undefined);
    const cells: [string, string][] = [];
    if (summary.examples_seen !== undefined) cells.push(['examples', si(summary.examples_seen)]);
    if (summary.flops !== undefined) cells.push(['FLOPs', si(summary.flops)]);
    if (summary.wall_s !== undefined) cells.push(['time', duration(summary.wall_s)]);
    if (summary.loss !== undefined) cells.push(['train loss', score(summary.loss)]);
    for (const metric of metrics) cells.push([summaryTitles[metric], percent(summary.metrics[metric]!)]);
    clear(this.table);
    this.table.classList.toggle('hidden', cells.length === 0);
    if (cells.length === 0) return;
    const evalAt = summary.eval_step !== undefined ? ` (eval at step ${summary.eval_step})` : '';
    this.table.append(
      h('caption', { class: 'muted', text: `Latest${evalAt}` }),
      h('thead', {}, h('tr', {}, ...cells.map(([name]) => h('th', { class: 'number', text: name })))),
      h('tbody', {}, h('tr', {}, ...cells.map(([, value]) => h('td', { class: 'number', text: value })))),
    );
  }
}

/** A compare cell's output. */
export class CompareOutputView extends OutputView {
  private readonly data: CompareOutputData;
  private readonly head = h('div', { class: 'out-head' });
  private readonly table = h('table', { class: 'data compare' });

  constructor(key: string, root: ShadowRoot, channel: OutputChannel, data: CompareOutputData) {
    super(key, root, channel, 'compare-output');
    this.data = data;
    this.body.append(
      this.head,
      this.notice,
      this.chartsGrid,
      this.table,
      h('div', { class: 'links' }, this.linkButton('Open Dashboard', 'Open these runs side by side in the Sift dashboard', () => this.open('dashboard', this.dirs))),
    );
    this.draw();
  }

  protected get dirs(): string[] {
    return this.data.rows.map((row) => row.dir);
  }

  protected get metrics(): CurveMetric[] {
    return [this.data.metric, 'loss'];
  }

  protected get wantsBatch(): boolean {
    return false;
  }

  protected override runsChanged(): void {
    this.draw();
  }

  private draw(): void {
    const { metric, target, targetFrom, rows } = this.data;
    clear(this.head);
    this.head.append(h('span', { class: 'run-name', text: `Compare: ${metricTitles[metric]}` }), h('span', { class: 'muted', text: `target ≥ ${percent(target)} (${targetFrom})` }));
    const count = (x: number | null): string => (x === null ? 'not reached' : si(x));
    const ratio = (x: number | null): string => (x === null ? '–' : `${x.toFixed(2)}×`);
    clear(this.table);
    const header = ['run', 'method', 'F', `final ${metric}`, 'examples to target', '× vs uniform', 'FLOPs to target', '× vs uniform'];
    this.table.append(
      h('thead', {}, h('tr', {}, ...header.map((name, i) => h('th', { class: i >= 3 ? 'number' : '', text: name })))),
      h(
        'tbody',
        {},
        ...rows.map((row) => {
          const info = this.runs.get(row.id);
          const swatch = h('span', { class: 'swatch' });
          if (info) swatch.style.background = this.palette.run(info.color);
          return h(
            'tr',
            {},
            h('td', {}, h('span', { class: 'run-cell' }, swatch, h('span', { text: row.label ? `@${row.label}` : row.id, title: row.id }))),
            h('td', { text: row.method }),
            h('td', { text: row.filterRatio === undefined ? '–' : String(row.filterRatio) }),
            h('td', { class: 'number', text: row.final === undefined ? '–' : percent(row.final) }),
            h('td', { class: 'number', text: count(row.examplesToTarget) }),
            h('td', { class: `number${row.examplesSpeedup !== null && row.examplesSpeedup > 1 ? ' better' : ''}`, text: ratio(row.examplesSpeedup) }),
            h('td', { class: 'number', text: count(row.flopsToTarget) }),
            h('td', { class: `number${row.flopsSpeedup !== null && row.flopsSpeedup > 1 ? ' better' : ''}`, text: ratio(row.flopsSpeedup) }),
          );
        }),
      ),
    );
  }
}

export { OutputView };
