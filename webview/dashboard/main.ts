/**
 * The dashboard webview: curves of the runs shown, their learnability over
 * time, and how many examples each needed to reach a target. The host owns
 * the data and sends a snapshot after `ready`, then deltas; this side keeps
 * only its view state (axis, smoothing, baseline…), saved with setState and
 * mirrored to the host when it changes what the host must send.
 */
import '../shared/elements';
import 'uplot/dist/uPlot.min.css';
import '../shared/base.css';
import './dashboard.css';
import {
  curveMetrics,
  defaultDashboardView,
  lowerIsBetter,
  perStepMetrics,
  maxSmoothing,
  parseDashboardHostMessage,
  parseDashboardWebviewMessage,
  webviewProtocolVersion,
  xAxes,
  type ChartData,
  type CurveMetric,
  type DashboardHostMessage,
  type DashboardState,
  type DashboardView,
  type DashboardWebviewMessage,
  type Heatmap,
  type ReachResult,
  type RunInfo,
  type XAxis,
} from '../../src/protocol/webview';
import { connect, onHostMessage } from '../shared/host';
import { clear, h, select, setOptions } from '../shared/dom';
import { checkedOf, valueOf } from '../shared/elements';
import { axisLabels, duration, score, si } from '../shared/format';
import { onThemeChange, themeColors, type ThemeColors } from '../shared/theme';
import { ChartView, metricTitles, type ChartContext } from './charts';
import { HeatmapView } from './heatmap';

const host = connect<DashboardWebviewMessage, DashboardState>();

function restoredView(): DashboardView {
  const saved = host.savedState() as { view?: unknown } | undefined;
  const parsed = parseDashboardWebviewMessage({ type: 'view', payload: { view: saved?.view } });
  return parsed.ok && parsed.message.type === 'view' ? parsed.message.payload.view : { ...defaultDashboardView };
}

let view = restoredView();
let runs: RunInfo[] = [];
let runsById = new Map<string, RunInfo>();
let dataAxis: XAxis = view.xAxis;
let dataLogX = view.logX;
let colors: ThemeColors;
const charts = new Map<CurveMetric, ChartView>();
let reach: ReachResult | null = null;

// ---- layout ------------------------------------------------------------------

const xAxisSelect = select('x-axis', xAxes.map((axis) => [axis, axisLabels[axis]] as const), view.xAxis, 'X axis');
const logXBox = h('vscode-checkbox', { attrs: { id: 'log-x', label: 'Log x' } });
const smoothingSlider = h('input', { attrs: { id: 'smoothing', type: 'range', min: '0', max: String(maxSmoothing), step: '0.001', 'aria-label': 'Smoothing' } });
const smoothingValue = h('span', { class: 'number smoothing-value', attrs: { id: 'smoothing-value' } });
const baselineSelect = select('baseline', [], '', 'Baseline run');
const notice = h('div', { class: 'notice hidden', attrs: { id: 'notice', role: 'status' } });
const legend = h('div', { class: 'legend', attrs: { id: 'legend' } });
const chartsGrid = h('div', { class: 'charts', attrs: { id: 'charts' } });
const heatmapRunSelect = select('heatmap-run', [], '', 'Run');
const heatmap = new HeatmapView((run, step) => host.post({ type: 'inspect', payload: { run, step } }));
const reachMetricSelect = select('reach-metric', curveMetrics.map((m) => [m, metricTitles[m]] as const), view.reach.metric, 'Metric');
const reachTarget = h('vscode-textfield', { attrs: { id: 'reach-target', placeholder: "baseline's final value", 'aria-label': 'Target value' } });
const reachTable = h('div', { attrs: { id: 'reach-table' } });

if (view.logX) logXBox.setAttribute('checked', '');
smoothingSlider.value = String(view.smoothing);
if (view.reach.target !== null) reachTarget.setAttribute('value', String(view.reach.target));

const app = document.getElementById('app')!;
app.append(
  h('h1', { text: 'Sift dashboard' }),
  h(
    'div',
    { class: 'toolbar' },
    h('div', { class: 'field' }, h('span', { class: 'label', text: 'X axis' }), xAxisSelect),
    logXBox,
    h('div', { class: 'field' }, h('label', { text: 'Smoothing', attrs: { for: 'smoothing' } }), smoothingSlider, smoothingValue),
    h('div', { class: 'field' }, h('span', { class: 'label', text: 'Baseline' }), baselineSelect),
  ),
  notice,
  legend,
  chartsGrid,
  h(
    'section',
    { class: 'section', attrs: { id: 'learnability' } },
    h('div', { class: 'section-head' }, h('h2', { text: 'Learnability over time' }), h('div', { class: 'field' }, h('span', { class: 'label', text: 'Run' }), heatmapRunSelect)),
    heatmap.element,
  ),
  h(
    'section',
    { class: 'section', attrs: { id: 'reach' } },
    h(
      'div',
      { class: 'section-head' },
      h('h2', { text: 'Examples and FLOPs to reach a target' }),
      h('div', { class: 'field' }, h('span', { class: 'label', text: 'Metric' }), reachMetricSelect),
      h('div', { class: 'field' }, h('span', { class: 'label', text: 'Target' }), reachTarget),
    ),
    reachTable,
  ),
);

// ---- view state ----------------------------------------------------------------

function saveView(): void {
  host.saveState({ view, runDirs: runs.map((run) => run.dir) });
}

let postTimer: ReturnType<typeof setTimeout> | undefined;
/** Stores the view and tells the host (coalesced: a slider drag sends one message when it rests). */
function changeView(patch: Partial<DashboardView>, delay = 0): void {
  view = { ...view, ...patch };
  saveView();
  clearTimeout(postTimer);
  const send = (): void => host.post({ type: 'view', payload: { view } });
  if (delay > 0) postTimer = setTimeout(send, delay);
  else send();
}

function chartContext(): ChartContext {
  return { xAxis: dataAxis, logX: dataLogX, smoothing: view.smoothing, runs: runsById, colors };
}

xAxisSelect.addEventListener('change', () => changeView({ xAxis: valueOf(xAxisSelect) as XAxis }));
logXBox.addEventListener('change', () => changeView({ logX: checkedOf(logXBox) }));
smoothingSlider.addEventListener('input', () => {
  const smoothing = Math.min(maxSmoothing, Math.max(0, Number(smoothingSlider.value)));
  smoothingValue.textContent = smoothing.toFixed(3);
  view = { ...view, smoothing };
  for (const chart of charts.values()) chart.setContext(chartContext());
  changeView({ smoothing }, 200);
});
baselineSelect.addEventListener('change', () => {
  changeView({ baseline: valueOf(baselineSelect) || null });
  renderLegend();
});
heatmapRunSelect.addEventListener('change', () => changeView({ heatmapRun: valueOf(heatmapRunSelect) || null }));
reachMetricSelect.addEventListener('change', () => changeView({ reach: { ...view.reach, metric: valueOf(reachMetricSelect) as CurveMetric } }));
reachTarget.addEventListener('change', () => {
  const text = valueOf(reachTarget).trim();
  const target = text === '' ? null : Number(text);
  if (target !== null && !Number.isFinite(target)) {
    showNotice('warning', `"${text}" is not a number: enter a target value such as 0.3, or leave it empty for the baseline's final value.`);
    return;
  }
  changeView({ reach: { ...view.reach, target } });
});
smoothingValue.textContent = view.smoothing.toFixed(3);

// ---- rendering -------------------------------------------------------------------

function showNotice(level: 'info' | 'warning' | 'error', message: string): void {
  notice.className = `notice ${level}`;
  notice.textContent = message;
}

function setRuns(next: RunInfo[]): void {
  runs = next;
  runsById = new Map(runs.map((run) => [run.id, run]));
  saveView();
  const baselineOptions = runs.map((run) => [run.id, `${run.label} (${run.method})`] as const);
  setOptions(baselineSelect, baselineOptions, view.baseline ?? runs[0]?.id ?? '');
  const scoring = runs.filter((run) => run.method !== 'uniform');
  setOptions(heatmapRunSelect, (scoring.length > 0 ? scoring : runs).map((run) => [run.id, `${run.label} (${run.method})`] as const), view.heatmapRun ?? scoring[0]?.id ?? '');
  renderLegend();
}

/** Settings that differ from the baseline's, as "key from → to". */
function configDiff(run: RunInfo, baseline: RunInfo): string[] {
  const keys = new Set([...Object.keys(baseline.config), ...Object.keys(run.config)]);
  keys.delete('runDir');
  const show = (value: unknown): string => {
    const text = typeof value === 'string' ? value : JSON.stringify(value);
    return text === undefined ? '–' : text.length > 32 ? `…${text.slice(-31)}` : text;
  };
  const out: string[] = [];
  for (const key of keys) {
    const from = baseline.config[key];
    const to = run.config[key];
    if (JSON.stringify(from) !== JSON.stringify(to)) out.push(`${key} ${show(from)} → ${show(to)}`);
  }
  return out;
}

function renderLegend(): void {
  clear(legend);
  if (runs.length === 0) {
    legend.append(h('div', { class: 'empty', text: 'No runs to show yet. Open runs from the Sift runs view, or start one; curves appear as it trains.' }));
    return;
  }
  const baseline = runsById.get(view.baseline ?? '') ?? runs[0];
  for (const run of runs) {
    const hidden = view.hidden.includes(run.id);
    const swatch = h('span', { class: 'swatch' });
    swatch.style.background = colors.run(run.color);
    const diff = run.id === baseline.id ? ['baseline'] : configDiff(run, baseline);
    const lineage = run.parent !== null ? `branch of ${run.parent} at step ${run.forkStep}` : '';
    const item = h(
      'button',
      {
        class: `legend-item${hidden ? ' off' : ''}`,
        title: hidden ? 'Show this run' : 'Hide this run',
        attrs: { type: 'button', 'data-run': run.id, 'aria-pressed': String(!hidden) },
      },
      swatch,
      h('span', { class: 'run-name', text: run.label }),
      h('span', { class: 'muted', text: `${run.method} · ${run.status} · step ${run.step} / ${run.totalSteps}` }),
      lineage ? h('span', { class: 'muted', text: lineage }) : null,
      h('span', { class: 'diff', text: diff.length === 0 ? 'same config as the baseline' : diff.join(' · ') }),
    );
    item.addEventListener('click', () => {
      const nowHidden = view.hidden.includes(run.id) ? view.hidden.filter((id) => id !== run.id) : [...view.hidden, run.id];
      changeView({ hidden: nowHidden });
      renderLegend();
    });
    legend.append(item);
  }
}

function exportChart(chart: ChartView, kind: 'csv' | 'png'): void {
  const name = `${chart.metric}-vs-${dataAxis}`;
  if (kind === 'csv') host.post({ type: 'export-csv', payload: { suggestedName: `${name}.csv`, csv: chart.csv() } });
  else host.post({ type: 'export-png', payload: { suggestedName: `${name}.png`, pngBase64: chart.pngBase64() } });
}

/** Charts replaced whole; a chart absent from `data` is removed only when `all` (the full set was sent). */
function setCharts(data: readonly ChartData[], all: boolean): void {
  const incoming = new Map(data.map((chart) => [chart.metric, chart]));
  if (all) {
    for (const [metric, chart] of charts) {
      if (!incoming.has(metric)) {
        chart.destroy();
        charts.delete(metric);
      }
    }
  }
  for (const metric of curveMetrics) {
    const chartData = incoming.get(metric);
    if (!chartData) continue;
    let chart = charts.get(metric);
    if (!chart) {
      chart = new ChartView(chartData, chartContext(), exportChart);
      charts.set(metric, chart);
      // Keep the fixed metric order in the grid.
      const after = curveMetrics.slice(curveMetrics.indexOf(metric) + 1).map((m) => charts.get(m)?.card).find((card) => card?.isConnected);
      chartsGrid.insertBefore(chart.card, after ?? null);
      chart.render();
    } else {
      chart.setData(chartData, chartContext());
    }
  }
  chartsGrid.classList.toggle('is-empty', charts.size === 0);
}

function renderHeatmap(data: Heatmap | null): void {
  // The host chose the run when the view named none: show which.
  if (data) (heatmapRunSelect as HTMLElement & { value: string }).value = data.run;
  const chosen = runsById.get(data?.run ?? view.heatmapRun ?? '');
  const emptyText =
    runs.length === 0
      ? 'No runs yet.'
      : chosen?.method === 'uniform' || (!chosen && runs.every((run) => run.method === 'uniform'))
        ? 'Uniform batches are not scored, so there is no learnability to show. Pick a run that selects its batches (JEST).'
        : 'No scored steps recorded yet for this run.';
  heatmap.set(data, colors, emptyText);
}

/** "Train loss" → "train loss", keeping capitals past the first letter ("KL"). */
const lowerFirst = (text: string): string => text.charAt(0).toLowerCase() + text.slice(1);

function renderReach(): void {
  clear(reachTable);
  if (!reach) {
    reachTable.append(h('div', { class: 'empty', text: 'No target yet: the baseline has no point of this metric. Enter a target value.' }));
    return;
  }
  const direction = lowerIsBetter.has(reach.metric) ? 'at or below' : 'at or above';
  const baselineRow = reach.rows.find((row) => row.run === (view.baseline ?? runs[0]?.id));
  const caption = h('p', {
    class: 'muted',
    text: `First point where ${lowerFirst(metricTitles[reach.metric])} is ${direction} ${score(reach.target)}${reach.fromBaseline ? " (the baseline's final value)" : ''}${perStepMetrics.has(reach.metric) ? ', on the smoothed curve' : ''}.`,
  });
  const table = h('table', { class: 'data' });
  const speedupHelp = "The baseline's examples to the target ÷ this run's: 2.00× reached it with half the examples (as sift compare reports it)";
  const flopsSpeedupHelp = "The baseline's FLOPs to the target ÷ this run's, scoring and the reference's pass over the pool included: below 1.00× the run's selection cost more compute than it saved";
  const head = h(
    'tr',
    {},
    ...['Run', 'Step', 'Examples seen', 'Speed-up (examples)', 'FLOPs', 'Speed-up (FLOPs)', 'Training FLOPs', 'Wall time', 'Active time'].map((t, i) =>
      h('th', { text: t, class: i > 0 ? 'number' : '', ...(i === 3 ? { title: speedupHelp } : i === 5 ? { title: flopsSpeedupHelp } : {}) }),
    ),
  );
  table.append(h('thead', {}, head));
  const body = h('tbody');
  for (const row of reach.rows) {
    const run = runsById.get(row.run);
    const swatch = h('span', { class: 'swatch' });
    swatch.style.background = colors.run(run?.color ?? 0);
    const name = h('td', {}, swatch, ' ', run?.label ?? row.run);
    if (!row.reached) {
      body.append(h('tr', { attrs: { 'data-run': row.run } }, name, h('td', { attrs: { colspan: '8' } }, row.best !== undefined ? `not reached (best so far ${score(row.best)})` : 'no point of this metric')));
      continue;
    }
    // Both read the same way: the baseline's ÷ this run's, above 1.00× = this run needed less.
    const speedup = (axis: 'examples_seen' | 'flops'): string => {
      const base = baselineRow?.reached ? baselineRow[axis] : undefined;
      const own = row[axis];
      return base && own ? `${(base / own).toFixed(2)}×` : '–';
    };
    const cells = [
      row.step !== undefined ? String(row.step) : '–',
      row.examples_seen !== undefined ? si(row.examples_seen) : '–',
      speedup('examples_seen'),
      row.flops !== undefined ? si(row.flops) : '–',
      speedup('flops'),
      row.flops_train !== undefined ? si(row.flops_train) : '–',
      row.wall_s !== undefined ? duration(row.wall_s) : '–',
      row.active_s !== undefined ? duration(row.active_s) : '–',
    ];
    body.append(h('tr', { attrs: { 'data-run': row.run } }, name, ...cells.map((text) => h('td', { class: 'number', text }))));
  }
  table.append(body);
  reachTable.append(caption, table);
}

// ---- messages from the host ----------------------------------------------------------

function handle(message: DashboardHostMessage): void {
  switch (message.type) {
    case 'snapshot': {
      const { runs: nextRuns, xAxis, logX, charts: chartData, heatmap: heatmapData, reach: reachData } = message.payload;
      dataAxis = xAxis;
      dataLogX = logX;
      setRuns(nextRuns);
      setCharts(chartData, true);
      renderHeatmap(heatmapData);
      reach = reachData;
      renderReach();
      app.classList.add('loaded');
      break;
    }
    case 'charts':
      dataAxis = message.payload.xAxis;
      dataLogX = message.payload.logX;
      setCharts(message.payload.charts, true);
      break;
    case 'delta': {
      const { runs: nextRuns, charts: replaced, patches } = message.payload;
      if (nextRuns) setRuns(nextRuns);
      if (replaced) setCharts(replaced, false);
      for (const patch of patches) charts.get(patch.metric)?.applyPatch(patch);
      if (nextRuns) for (const chart of charts.values()) chart.setContext(chartContext());
      break;
    }
    case 'heatmap':
      renderHeatmap(message.payload.heatmap);
      break;
    case 'reach':
      reach = message.payload;
      renderReach();
      break;
    case 'exported': {
      const { ok, path, cancelled, message: text } = message.payload;
      if (cancelled) break;
      showNotice(ok ? 'info' : 'error', ok ? `Saved ${path ?? ''}` : `Could not save: ${text ?? 'unknown error'}`);
      break;
    }
    case 'notice':
      showNotice(message.payload.level, message.payload.message);
      break;
    default: {
      const unreachable: never = message;
      throw new Error(`unhandled message ${JSON.stringify(unreachable)}`);
    }
  }
}

// ---- sizes and theme ----------------------------------------------------------------------

/** About one bucket per pixel of a chart's plot. */
function desiredBuckets(): number {
  const first = charts.values().next().value as ChartView | undefined;
  const width = first ? first.width() : Math.floor((chartsGrid.clientWidth || 800) / (chartsGrid.clientWidth > 900 ? 2 : 1)) - 40;
  return Math.max(100, Math.min(4000, Math.round(width)));
}

new ResizeObserver(() => {
  for (const chart of charts.values()) chart.resize();
  heatmap.draw();
  const buckets = desiredBuckets();
  if (Math.abs(buckets - view.buckets) / view.buckets > 0.15) changeView({ buckets }, 150);
}).observe(chartsGrid);

colors = themeColors();
onThemeChange(() => {
  colors = themeColors();
  for (const chart of charts.values()) chart.restyle(chartContext());
  heatmap.draw();
  renderLegend();
  renderReach();
});

onHostMessage(parseDashboardHostMessage, handle, (problem) => showNotice('error', `Ignored a malformed message from the extension: ${problem}`));
renderLegend();
view = { ...view, buckets: desiredBuckets() };
saveView();
host.post({ type: 'ready', payload: { protocol: webviewProtocolVersion, view } });
