/**
 * One dashboard chart: a metric's runs, as the host decimated them, drawn
 * with uPlot. Per run the min–max band of each bucket and its last value (the
 * raw curve, always visible) and, over them, the debiased EMA of the bucket
 * means weighed by their counts. Live patches splice into the columns.
 */
import uPlot from 'uplot';
import type { ChartData, ChartPatch, CurveMetric, RunInfo, SeriesColumns, XAxis } from '../../src/protocol/webview';
import { bucketX, debiasedEma } from '../../src/panels/curves';
import { h } from '../shared/dom';
import { axisLabels, formatX, score } from '../shared/format';
import { withAlpha, type ThemeColors } from '../shared/theme';

export const metricTitles: Record<CurveMetric, string> = {
  loss: 'Train loss',
  i2t_r1: 'Image → text recall@1',
  i2t_r5: 'Image → text recall@5',
  t2i_r1: 'Text → image recall@1',
  t2i_r5: 'Text → image recall@5',
  zeroshot_acc: 'Zero-shot accuracy',
  distill_loss: 'Distillation loss (KL to the reference)',
  feature_loss: 'Feature distillation loss (1 − cos to the reference)',
};

export interface ChartContext {
  xAxis: XAxis;
  logX: boolean;
  smoothing: number;
  runs: ReadonlyMap<string, RunInfo>;
  colors: ThemeColors;
}

/** Columns a chart draws for one run: x is shared. */
interface Drawn {
  run: string;
  last: (number | null)[];
  min: (number | null)[];
  max: (number | null)[];
  smoothed: (number | null)[];
}

const chartHeight = 220;
/** Curves with at most this many points show a marker at each. */
const sparsePoints = 40;

export class ChartView {
  readonly card: HTMLElement;
  private readonly plotHost: HTMLElement;
  private readonly readout: HTMLElement;
  private plot: uPlot | undefined;
  private plotKey = '';
  private data: ChartData;
  private drawn: Drawn[] = [];
  private xs: number[] = [];
  private context: ChartContext;

  constructor(
    data: ChartData,
    context: ChartContext,
    /** Without it (a notebook output), the chart has no export buttons. */
    onExport?: (chart: ChartView, kind: 'csv' | 'png') => void,
  ) {
    this.data = cloneChart(data);
    this.context = context;
    const title = h('h3', { class: 'chart-title', text: metricTitles[data.metric] });
    let actions: HTMLElement | undefined;
    if (onExport) {
      const csv = h('vscode-button', { text: 'CSV', title: `Save the data of "${metricTitles[data.metric]}" as CSV`, attrs: { secondary: '', 'data-export': 'csv' } });
      const png = h('vscode-button', { text: 'PNG', title: `Save "${metricTitles[data.metric]}" as a PNG image`, attrs: { secondary: '', 'data-export': 'png' } });
      csv.addEventListener('click', () => onExport(this, 'csv'));
      png.addEventListener('click', () => onExport(this, 'png'));
      actions = h('div', { class: 'chart-actions' }, csv, png);
    }
    this.plotHost = h('div', { class: 'plot' });
    this.readout = h('div', { class: 'readout muted number', text: ' ' });
    this.card = h('section', { class: 'chart', attrs: { 'data-metric': data.metric } }, h('div', { class: 'chart-head' }, title, actions), this.plotHost, this.readout);
  }

  get metric(): CurveMetric {
    return this.data.metric;
  }

  /** The data replaced whole (a new axis, scale, width, or a grid that grew). */
  setData(data: ChartData, context: ChartContext): void {
    this.data = cloneChart(data);
    this.context = context;
    this.render();
  }

  /** A live patch: buckets from `from` on replace what was there. */
  applyPatch(patch: ChartPatch): void {
    const byRun = new Map(this.data.series.map((s) => [s.run, s]));
    for (const incoming of patch.series) {
      let series = byRun.get(incoming.run);
      if (!series) {
        series = emptyColumns(incoming.run, patch.from);
        this.data.series.push(series);
      }
      for (const key of ['min', 'max', 'last', 'mean', 'n'] as const) {
        const column = series[key] as (number | null)[];
        column.length = Math.min(column.length, patch.from);
        while (column.length < patch.from) column.push(key === 'n' ? 0 : null);
        const values = incoming[key] as (number | null)[];
        for (let i = 0; i < values.length; i++) column.push(values[i]);
      }
    }
    this.data.count = patch.count;
    this.render();
  }

  setContext(context: ChartContext): void {
    this.context = context;
    this.render();
  }

  /** Redraws from the columns: smoothing, colours and sizes as the context says. */
  render(): void {
    const { data, context } = this;
    const { grid } = data;
    this.xs = Array.from({ length: data.count }, (_, i) => bucketX(grid, i));
    this.drawn = data.series.map((series) => ({
      run: series.run,
      last: series.last,
      min: series.min,
      max: series.max,
      smoothed: context.smoothing > 0 ? debiasedEma(series.mean, context.smoothing, series.n) : series.last,
    }));
    // A new plot only when its series or scale kind change; a new x-axis is a new label and new data.
    const key = JSON.stringify([this.drawn.map((d) => d.run), context.logX, context.smoothing > 0]);
    const columns: uPlot.AlignedData = [this.xs, ...this.drawn.flatMap((d) => [d.max, d.min, d.last, d.smoothed])];
    if (this.plot && key === this.plotKey) {
      this.plot.axes[0].label = xLabel(context);
      this.plot.setData(columns);
      return;
    }
    this.plot?.destroy();
    this.plotKey = key;
    this.plot = new uPlot(this.options(), columns, this.plotHost);
  }

  /** Re-creates the plot (a theme change: every colour is baked into its options). */
  restyle(context: ChartContext): void {
    this.plotKey = '';
    this.setContext(context);
  }

  resize(): void {
    if (!this.plot) return;
    const width = this.width();
    if (Math.abs(this.plot.width - width) < 2) return;
    this.plot.setSize({ width, height: chartHeight });
  }

  /** Plot width in CSS pixels (the card's content box). */
  width(): number {
    return Math.max(200, Math.floor(this.plotHost.clientWidth || this.card.clientWidth || 400));
  }

  /** The chart as drawn, one row per bucket: x, and per run the last, min, max, mean and smoothed value. */
  csv(): string {
    const header = [axisLabels[this.context.xAxis]];
    for (const d of this.drawn) {
      const name = this.context.runs.get(d.run)?.label ?? d.run;
      header.push(`${name} last`, `${name} min`, `${name} max`, `${name} mean`, `${name} smoothed`);
    }
    const rows = [header.map(csvCell).join(',')];
    const means = new Map(this.data.series.map((s) => [s.run, s.mean]));
    for (let i = 0; i < this.xs.length; i++) {
      const cells: string[] = [String(this.xs[i])];
      for (const d of this.drawn) for (const column of [d.last, d.min, d.max, means.get(d.run)!, d.smoothed]) cells.push(column[i] === null || column[i] === undefined ? '' : String(column[i]));
      rows.push(cells.join(','));
    }
    return rows.join('\n') + '\n';
  }

  /** The chart with its title and legend on the theme's background, as PNG bytes (base64). */
  pngBase64(): string {
    const source = this.plot?.ctx.canvas;
    if (!source) return '';
    const { colors } = this.context;
    const scale = source.width / Math.max(1, this.plot!.width);
    const legendRows = this.drawn.length;
    const pad = 12 * scale;
    const line = 18 * scale;
    const canvas = document.createElement('canvas');
    canvas.width = source.width + 2 * pad;
    canvas.height = source.height + 2 * pad + line * (1 + legendRows);
    const ctx = canvas.getContext('2d')!;
    ctx.fillStyle = colors.background;
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    ctx.fillStyle = colors.foreground;
    ctx.font = `600 ${13 * scale}px ${colors.fontFamily}`;
    ctx.textBaseline = 'middle';
    ctx.fillText(`${metricTitles[this.metric]} vs ${axisLabels[this.context.xAxis].toLowerCase()}${this.context.logX ? ' (log)' : ''}`, pad, pad + line / 2);
    ctx.drawImage(source, pad, pad + line);
    ctx.font = `${12 * scale}px ${colors.fontFamily}`;
    this.drawn.forEach((d, k) => {
      const y = pad + line + source.height + line * (k + 0.5) + 4 * scale;
      const info = this.context.runs.get(d.run);
      ctx.fillStyle = colors.run(info?.color ?? 0);
      ctx.fillRect(pad, y - 4 * scale, 10 * scale, 8 * scale);
      ctx.fillStyle = colors.foreground;
      ctx.fillText(`${info?.label ?? d.run} (${info?.method ?? '?'})`, pad + 16 * scale, y);
    });
    return canvas.toDataURL('image/png').replace(/^data:image\/png;base64,/, '');
  }

  destroy(): void {
    this.plot?.destroy();
    this.plot = undefined;
    this.card.remove();
  }

  private options(): uPlot.Options {
    // At most this many points shown: markers, else the line alone.
    const sparse = (plot: uPlot, seriesIdx: number, idx0: number, idx1: number): boolean => {
      const values = plot.data[seriesIdx];
      let shown = 0;
      for (let i = idx0; i <= idx1 && shown <= sparsePoints; i++) if (values[i] !== null && values[i] !== undefined) shown++;
      return shown <= sparsePoints;
    };
    const { colors, logX, runs, smoothing } = this.context;
    const axisFont = `11px ${colors.fontFamily}`;
    const series: uPlot.Series[] = [{}];
    const bands: uPlot.Band[] = [];
    this.drawn.forEach((d, k) => {
      const color = colors.run(runs.get(d.run)?.color ?? k);
      const label = runs.get(d.run)?.label ?? d.run;
      const base = 1 + k * 4;
      series.push(
        { label: `${label} max`, stroke: 'transparent', width: 0, spanGaps: true, points: { show: false } },
        { label: `${label} min`, stroke: 'transparent', width: 0, spanGaps: true, points: { show: false } },
        // The raw curve stays visible under the smoothed one (or is the curve, unsmoothed).
        // Sparse curves (a few evals so far) get a marker at each point: a lone eval has no line to draw.
        { label: `${label} raw`, stroke: withAlpha(color, smoothing > 0 ? (colors.highContrast ? 0.55 : 0.35) : 1), width: smoothing > 0 ? 1 : 1.5, spanGaps: true, points: { show: sparse, size: 5, stroke: color, fill: color } },
        { label, stroke: color, width: 2, spanGaps: true, show: smoothing > 0, points: { show: false } },
      );
      bands.push({ series: [base, base + 1], fill: withAlpha(color, colors.highContrast ? 0.3 : 0.15) });
    });
    const axis = (label: string | undefined, format: (value: number) => string): uPlot.Axis => ({
      stroke: colors.foreground,
      font: axisFont,
      labelFont: axisFont,
      label,
      labelSize: label ? 18 : 0,
      grid: { stroke: colors.grid, width: 1 },
      ticks: { stroke: colors.grid, width: 1 },
      values: (_u, values) => values.map((v) => (v === null ? '' : format(v))),
    });
    return {
      width: this.width(),
      height: chartHeight,
      legend: { show: false },
      // Log scales round out to powers of ten; keep the x range to the data.
      scales: { x: { time: false, distr: logX ? 3 : 1, range: (_u, min, max) => [min, max] } },
      series,
      bands,
      // Formatters read the context when they run, so a new x-axis needs no new plot.
      axes: [axis(xLabel(this.context), (v) => formatX(this.context.xAxis, v)), axis(undefined, (v) => score(v))],
      cursor: { points: { show: false }, drag: { x: false, y: false, setScale: false } },
      hooks: { setCursor: [(u) => this.showReadout(u.cursor.idx)] },
    };
  }

  private showReadout(index: number | null | undefined): void {
    if (index === null || index === undefined || index >= this.xs.length) {
      this.readout.textContent = ' ';
      return;
    }
    const parts = [`${axisLabels[this.context.xAxis]} ${formatX(this.context.xAxis, this.xs[index])}`];
    for (const d of this.drawn) {
      const value = d.smoothed[index] ?? nearestBefore(d.smoothed, index);
      if (value === undefined) continue;
      parts.push(`${this.context.runs.get(d.run)?.label ?? d.run}: ${score(value)}`);
    }
    this.readout.textContent = parts.join('   ');
  }
}

const xLabel = (context: ChartContext): string => axisLabels[context.xAxis] + (context.logX ? ' (log)' : '');

function nearestBefore(column: readonly (number | null)[], index: number): number | undefined {
  for (let i = Math.min(index, column.length - 1); i >= 0; i--) if (column[i] !== null) return column[i]!;
  return undefined;
}

function emptyColumns(run: string, length: number): SeriesColumns {
  return { run, min: new Array(length).fill(null), max: new Array(length).fill(null), last: new Array(length).fill(null), mean: new Array(length).fill(null), n: new Array(length).fill(0) };
}

function cloneChart(data: ChartData): ChartData {
  return { ...data, series: data.series.map((s) => ({ run: s.run, min: [...s.min], max: [...s.max], last: [...s.last], mean: [...s.mean], n: [...s.n] })) };
}

/** A CSV cell: quoted when needed; text that a spreadsheet would run as a formula is defused. */
export function csvCell(text: string): string {
  const safe = /^[=+\-@\t\r]/.test(text) ? `'${text}` : text;
  return /[",\n\r]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
}
