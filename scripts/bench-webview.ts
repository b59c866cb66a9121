/**
 * How fast the panels draw, in headless Chromium (Debian's), on this machine:
 *
 * - host: decimating 5 runs × 100k train points (and their evals) onto one grid per chart;
 * - dashboard: redrawing all charts for 5 runs × 100k points — a new x-axis
 *   (the whole `charts` message), a smoothing change, a live delta;
 * - inspector: rendering a step of 1,000 pairs (virtualised grid), and the
 *   frame times while scrolling through it with thumbnails.
 *
 * Each figure is the median of N runs, from the message's dispatch to the
 * frame after it is painted. Writes bench-results/webview.json and .md and
 * prints the table. Figures, not assertions: the tests never time anything.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ChartDecimator, type RawSeries } from '../src/panels/curves';
import { curveMetrics, defaultDashboardView, defaultInspectorView, thumbnailSize, webviewProtocolVersion, type ChartData, type CurveMetric, type DashboardHostMessage, type InspectorHostMessage, type PairItem, type XAxis } from '../src/protocol/webview';
import { encodePng } from '../src/panels/thumbnails';
import { launch, openPanel, repoRoot, startServer } from '../test/webview/harness';

const runs = 5;
const points = 100_000;
const evalEvery = 100;
const pairs = 1000;
const repeats = Number(process.env.SIFT_BENCH_REPEATS ?? 15);
const buckets = 600;

const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
};
const p95 = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.min(values.length - 1, Math.floor(values.length * 0.95))];
const round = (value: number): number => Math.round(value * 10) / 10;

/** Five runs' raw series: a noisy decaying loss every step, evals every 100 steps. */
function makeRuns(): Map<string, Record<CurveMetric, RawSeries>> {
  const out = new Map<string, Record<CurveMetric, RawSeries>>();
  for (let r = 0; r < runs; r++) {
    let seed = 12345 + r;
    const noise = (): number => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648 - 0.5) * 0.4;
    const column = (count: number, every: number, value: (step: number) => number): RawSeries => {
      const step = Array.from({ length: count }, (_, i) => (i + 1) * every);
      return {
        step,
        examples_seen: step.map((s) => s * 64),
        flops: step.map((s) => s * 64 * 3e6 * (1 + r * 0.5)),
        flops_train: step.map((s) => s * 64 * 3e6),
        wall_s: step.map((s) => s * 0.05 * (1 + r * 0.1)),
        active_s: step.map((s) => s * 0.045 * (1 + r * 0.1)),
        value: step.map(value),
      };
    };
    const pace = 1 + r * 0.3;
    const recall = (step: number): number => 0.6 * (1 - Math.exp((-3 * step * pace) / points));
    const series = Object.fromEntries(curveMetrics.map((metric) => [metric, column(points / evalEvery, evalEvery, recall)])) as Record<CurveMetric, RawSeries>;
    series.loss = column(points, 1, (step) => 1.2 + 2.5 * Math.exp((-3 * step * pace) / points) + noise());
    out.set(`run-${r}`, series);
  }
  return out;
}

function decimate(data: Map<string, Record<CurveMetric, RawSeries>>, axis: XAxis, log: boolean): ChartData[] {
  return curveMetrics.map((metric) => ChartDecimator.build(metric, axis, new Map([...data].map(([id, series]) => [id, series[metric]])), { buckets, log }).data());
}

async function main(): Promise<void> {
  const results: Record<string, unknown> = { machine: { cpus: (await import('node:os')).cpus().length, node: process.version }, runs, pointsPerRun: points, buckets, pairs, repeats };

  // ---- host: decimation ------------------------------------------------------
  const data = makeRuns();
  const hostTimes: number[] = [];
  let stepCharts: ChartData[] = [];
  for (let i = 0; i < 5; i++) {
    const start = performance.now();
    stepCharts = decimate(data, 'step', false);
    hostTimes.push(performance.now() - start);
  }
  const flopsCharts = decimate(data, 'flops', true);
  results.hostDecimateMs = round(median(hostTimes));

  const server = await startServer();
  const browser = await launch();
  try {
    // ---- dashboard -------------------------------------------------------------
    const runInfos = [...data.keys()].map((id, color) => ({ id, dir: `/runs/${id}`, label: id, method: 'jest', status: 'running', color, parent: null, forkStep: null, step: points, totalSteps: points, config: { method: 'jest' } }));
    const snapshot: DashboardHostMessage = { type: 'snapshot', payload: { protocol: webviewProtocolVersion, runs: runInfos, xAxis: 'step', logX: false, charts: stepCharts, heatmap: null, reach: null } };
    const dashboard = await openPanel(browser, server.origin, 'dashboard', 'dark', () => {}, { view: { ...defaultDashboardView, buckets } });
    await dashboard.waitForPost('ready');
    await dashboard.send(snapshot);
    await dashboard.page.waitForSelector('.chart canvas');
    const lastBucket = stepCharts[0].count - 1;
    const patch: DashboardHostMessage = {
      type: 'delta',
      payload: {
        patches: [{ metric: 'loss', from: lastBucket, count: lastBucket + 1, series: stepCharts[0].series.map((s) => ({ run: s.run, min: [1], max: [2], last: [1.5], mean: [1.5], n: [3] })) }],
      },
    };
    const examplesCharts = decimate(data, 'examples_seen', false);
    const charts = (xAxis: XAxis, logX: boolean, list: ChartData[]) => ({ type: 'charts', payload: { xAxis, logX, charts: list } });
    // In the page: dispatch a message as the host would. `work` ends when the handler, uPlot's
    // drawing (a microtask) and layout are done; `painted` at the next animation frame after that.
    const timeMessages = (list: unknown[], count: number) =>
      dashboard.page.evaluate(
        async ({ list, count }) => {
          const frame = (window as unknown as { __siftFrame: () => Promise<number> }).__siftFrame;
          const work: number[] = [];
          const painted: number[] = [];
          for (let i = 0; i < count; i++) {
            const data = list[i % list.length];
            await frame();
            const start = performance.now();
            window.dispatchEvent(new MessageEvent('message', { data }));
            await Promise.resolve();
            document.body.getBoundingClientRect();
            work.push(performance.now() - start);
            await frame();
            painted.push(performance.now() - start);
          }
          return { work, painted };
        },
        { list, count },
      );
    const axisSwitch = await timeMessages([charts('examples_seen', false, examplesCharts), charts('step', false, stepCharts)], repeats);
    const logSwitch = await timeMessages([charts('flops', true, flopsCharts), charts('step', false, stepCharts)], repeats);
    const delta = await timeMessages([patch], repeats);
    const smoothing = await dashboard.page.evaluate(async (count) => {
      const frame = (window as unknown as { __siftFrame: () => Promise<number> }).__siftFrame;
      const slider = document.querySelector('#smoothing') as HTMLInputElement;
      const work: number[] = [];
      const painted: number[] = [];
      for (let i = 0; i < count; i++) {
        await frame();
        const start = performance.now();
        // 0.9 ↔ 0.6: both smoothed, so the plots are redrawn, not rebuilt.
        slider.value = String(i % 2 === 0 ? 0.9 : 0.6);
        slider.dispatchEvent(new Event('input'));
        await Promise.resolve();
        document.body.getBoundingClientRect();
        work.push(performance.now() - start);
        await frame();
        painted.push(performance.now() - start);
      }
      return { work, painted };
    }, repeats);
    const figure = (times: { work: number[]; painted: number[] }) => ({ workMs: round(median(times.work)), paintedMs: round(median(times.painted)) });
    results.dashboardAxisSwitch = figure(axisSwitch);
    results.dashboardLogSwitch = figure(logSwitch);
    results.dashboardSmoothing = figure(smoothing);
    results.dashboardDelta = figure(delta);
    results.dashboardCharts = stepCharts.length;
    results.dashboardErrors = dashboard.errors;
    await dashboard.page.close();

    // ---- inspector ---------------------------------------------------------------
    const thumb = `data:image/png;base64,${Buffer.from(await encodePng(new Float32Array(thumbnailSize * thumbnailSize * 3).map((_, i) => (i % 7) / 7), thumbnailSize)).toString('base64')}`;
    const chosen: PairItem[] = Array.from({ length: pairs }, (_, k) => ({
      id: String(k),
      caption: `a ${['red', 'green', 'blue'][k % 3]} ${['square', 'ring', 'cross'][k % 5 % 3]} number ${k} on a ${k % 2 ? 'light' : 'dark'} background`,
      label: `class ${k % 10}`,
      noisy: k % 9 === 0,
      order: k,
      scores: { learnerLoss: 2 + Math.sin(k), referenceLoss: 2.5, learnability: Math.sin(k) - 0.5, pickLogit: Math.cos(k) },
      split: { chunk: Math.floor(k / 63), chunks: 16, drawnBefore: Math.floor(k / 63) * 63, own: Math.sin(k) - 0.5, fromMates: 0.2, scale: 1, exact: false },
    }));
    const step = { run: 'bench', step: 1, candidates: pairs * 5, chosen, rejected: null };
    const inspectorSnapshot: InspectorHostMessage = {
      type: 'snapshot',
      payload: { protocol: webviewProtocolVersion, run: { id: 'bench', dir: '/runs/bench', label: 'bench', method: 'jest', status: 'running', dataset: 'builtin:train', scored: true, superBatchEvery: 25 }, stepRanges: [[1, 100]], live: true, view: step },
    };
    const inspector = await openPanel(
      browser,
      server.origin,
      'inspector',
      'dark',
      async (message, panel) => {
        if (message.type === 'images') {
          const { ids, size } = message.payload as { ids: string[]; size: number };
          await panel.send({ type: 'images', payload: { size, images: ids.map((id) => ({ id, uri: thumb, width: size, height: size })) } });
        }
      },
      { view: defaultInspectorView },
    );
    await inspector.waitForPost('ready');
    const render = await inspector.page.evaluate(
      async ({ snapshot, count }) => {
        const frame = (window as unknown as { __siftFrame: () => Promise<number> }).__siftFrame;
        const work: number[] = [];
        const painted: number[] = [];
        for (let i = 0; i < count; i++) {
          await frame();
          const start = performance.now();
          window.dispatchEvent(new MessageEvent('message', { data: { type: 'step', payload: { ...snapshot.payload.view, step: i + 1 } } }));
          document.body.getBoundingClientRect();
          work.push(performance.now() - start);
          await frame();
          painted.push(performance.now() - start);
        }
        return { work, painted };
      },
      { snapshot: inspectorSnapshot as Extract<InspectorHostMessage, { type: 'snapshot' }>, count: repeats },
    );
    await inspector.send(inspectorSnapshot);
    await inspector.page.waitForSelector('.chosen .card img.thumb');
    const scroll = await inspector.page.evaluate(async () => {
      const frame = (window as unknown as { __siftFrame: () => Promise<number> }).__siftFrame;
      const viewport = document.querySelector('.chosen .grid-viewport') as HTMLElement;
      const frames: number[] = [];
      let last = await frame();
      for (let top = 0; top < viewport.scrollHeight - viewport.clientHeight; top += 120) {
        viewport.scrollTop = top;
        const now = await frame();
        frames.push(now - last);
        last = now;
      }
      return { frames, cards: document.querySelectorAll('.chosen .card').length };
    });
    results.inspectorRender = { workMs: round(median(render.work)), paintedMs: round(median(render.painted)) };
    results.inspectorScrollFrameMsMedian = round(median(scroll.frames));
    results.inspectorScrollFrameMsP95 = round(p95(scroll.frames));
    results.inspectorCardsInDom = scroll.cards;
    results.inspectorErrors = inspector.errors;
    await inspector.page.close();
  } finally {
    await browser.close();
    await server.close();
  }

  type Figure = { workMs: number; paintedMs: number };
  const cell = (f: unknown): string => `${(f as Figure).workMs} ms | ${(f as Figure).paintedMs} ms`;
  const table = [
    '| what | work | to next frame | budget |',
    '|---|---|---|---|',
    `| host: decimate ${runs} runs × ${points / 1000}k points onto ${curveMetrics.length} charts × ${buckets} buckets (Node) | ${results.hostDecimateMs} ms | – | – |`,
    `| dashboard: redraw ${curveMetrics.length} charts × ${runs} runs on a new x-axis | ${cell(results.dashboardAxisSwitch)} | ≤ 50 ms |`,
    `| dashboard: redraw on a smoothing change | ${cell(results.dashboardSmoothing)} | ≤ 50 ms |`,
    `| dashboard: rebuild the plots for log ↔ linear x | ${cell(results.dashboardLogSwitch)} | – |`,
    `| dashboard: apply a live delta | ${cell(results.dashboardDelta)} | – |`,
    `| inspector: render a step of ${pairs} pairs (virtualised) | ${cell(results.inspectorRender)} | ≤ 300 ms |`,
    `| inspector: scroll frame through ${pairs} pairs with thumbnails, median / p95 (${results.inspectorCardsInDom} cards in the DOM) | – | ${results.inspectorScrollFrameMsMedian} / ${results.inspectorScrollFrameMsP95} ms | one frame |`,
  ].join('\n');
  const out = path.join(repoRoot, 'bench-results');
  fs.mkdirSync(out, { recursive: true });
  fs.writeFileSync(path.join(out, 'webview.json'), JSON.stringify(results, null, 2) + '\n');
  fs.writeFileSync(path.join(out, 'webview.md'), `# Webview benchmarks\n\nMedian of ${repeats} runs each, headless Chromium without GPU, ${(results.machine as { cpus: number }).cpus} CPUs. Work: from dispatching the host's message to the end of drawing and layout; to next frame: until the following animation frame.\n\n${table}\n`);
  console.log(table);
  console.log(`\nwrote ${path.relative(process.cwd(), path.join(out, 'webview.json'))}`);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
