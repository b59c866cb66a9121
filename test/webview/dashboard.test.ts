/**
 * The dashboard bundle in headless Chromium, with the real host-side model
 * (DashboardModel on fixture run folders) answering its messages: what a
 * user sees after load, switching the x-axis, smoothing, hiding a run,
 * exporting, live deltas, and that the CSP holds. Screenshots go to
 * test-results/ in light, dark and high-contrast themes.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { DashboardModel } from '../../src/panels/dashboard';
import { parseDashboardWebviewMessage, type DashboardState, type DashboardView } from '../../src/protocol/webview';
import { evalLine, tmpDir, trainLine, writeFixtureRun, writeFixtureRuns } from '../unit/panels-fixtures';
import { Rng } from '../../src/core/random';
import { canvasInk, launch, openPanel, screenshot, startServer, type Browser, type PanelPage, type Theme } from './harness';

let browser: Browser;
let server: Awaited<ReturnType<typeof startServer>>;
let root: string;

before(async () => {
  server = await startServer();
  browser = await launch();
  root = tmpDir();
  writeFixtureRuns(root);
});

after(async () => {
  await browser?.close();
  await server?.close();
});

/** Plays the host: validates each message and answers with the model, as the panel class will. */
function hostFor(model: DashboardModel, exports: unknown[] = []) {
  return async (raw: unknown, panel: PanelPage): Promise<void> => {
    const parsed = parseDashboardWebviewMessage(raw);
    assert.ok(parsed.ok, parsed.ok ? '' : parsed.problem);
    const message = parsed.message;
    switch (message.type) {
      case 'ready':
        await panel.send(await model.snapshot(message.payload.view));
        break;
      case 'view':
        for (const reply of await model.setView(message.payload.view)) await panel.send(reply);
        break;
      case 'export-csv':
      case 'export-png':
      case 'inspect':
        exports.push(message);
        break;
    }
  };
}

async function modelWithRuns(dirs = ['uniform', 'jest-f80', 'jest-f50', 'independent', 'jest-f90-branch']): Promise<DashboardModel> {
  const model = new DashboardModel({ heatmapIntervalMs: 0 });
  for (const id of dirs) await model.addRun(`${root}/${id}`);
  return model;
}

async function openDashboard(theme: Theme, model?: DashboardModel, exports: unknown[] = [], savedState?: unknown): Promise<PanelPage> {
  model ??= await modelWithRuns();
  const panel = await openPanel(browser, server.origin, 'dashboard', theme, hostFor(model, exports), savedState);
  await panel.page.waitForSelector('.app.loaded');
  await panel.page.waitForSelector('.chart canvas');
  return panel;
}

describe('dashboard webview', () => {
  test('shows every run, the curves, the heatmap and examples-to-reach; screenshots in three themes', async () => {
    for (const theme of ['dark', 'light', 'high-contrast'] as const) {
      const panel = await openDashboard(theme);
      const { page } = panel;
      const legend = await page.locator('.legend-item').allTextContents();
      assert.equal(legend.length, 5);
      assert.ok(legend.some((text) => text.includes('jest-f90-branch') && text.includes('branch of jest-f80 at step 200')));
      // The config diff against the baseline (the first run, uniform).
      assert.ok(legend.some((text) => text.includes('jest-f80') && text.includes('method uniform → jest')), legend.join('\n'));
      const titles = await page.locator('.chart-title').allTextContents();
      assert.deepEqual(titles, ['Train loss', 'Image → text recall@1', 'Image → text recall@5', 'Text → image recall@1', 'Text → image recall@5', 'Zero-shot accuracy']);
      assert.ok((await canvasInk(page, '[data-metric="loss"] canvas')) > 0.02, 'the loss chart is drawn');
      assert.ok((await canvasInk(page, '#learnability canvas')) > 0.2, 'the heatmap is drawn');
      const reach = await page.locator('#reach-table tbody tr').allTextContents();
      assert.equal(reach.length, 5);
      assert.ok(reach.some((row) => row.startsWith(' jest-f80') || row.includes('jest-f80')));
      // Speed-up as sift compare gives it: the baseline's examples ÷ the run's (JEST learns faster per example here).
      const speedup = async (run: string): Promise<number> => Number.parseFloat((await page.locator(`#reach-table tr[data-run="${run}"] td:nth-child(4)`).textContent())!);
      assert.equal(await speedup('uniform'), 1);
      assert.ok((await speedup('jest-f80')) > 1.2, `jest-f80 ${await speedup('jest-f80')}×`);
      // FLOPs speed-up beside it, read the same way (the baseline's ÷ the run's), and FLOPs is the charts' default x-axis.
      assert.equal(Number.parseFloat((await page.locator('#reach-table tr[data-run="uniform"] td:nth-child(6)').textContent())!), 1);
      assert.match((await page.locator('#reach-table th:nth-child(6)').textContent())!, /Speed-up \(FLOPs\)/);
      assert.equal(await page.$eval('#x-axis', (element) => (element as HTMLElement & { value: string }).value), 'flops');
      assert.deepEqual(panel.dialogs, []);
      assert.deepEqual(await panel.violations(), []);
      assert.deepEqual(panel.errors, []);
      await screenshot(page, `dashboard-${theme}`);
      await page.close();
    }
  });

  test('switching the x-axis to FLOPs asks the host and redraws against FLOPs', async () => {
    const panel = await openDashboard('dark');
    const { page } = panel;
    await page.locator('#x-axis').click();
    await page.locator('#x-axis').getByRole('option', { name: 'FLOPs (training only)' }).click();
    const viewMessage = await panel.waitForPost('view');
    assert.equal((viewMessage.payload as { view: DashboardView }).view.xAxis, 'flops_train');
    // Hovering the plot reads out the x under the pointer, on the new axis.
    const over = page.locator('[data-metric="loss"] .u-over');
    await over.hover({ position: { x: 200, y: 60 } });
    await page.waitForFunction(() => document.querySelector('[data-metric="loss"] .readout')?.textContent?.startsWith('FLOPs (training only) '));
    const linear = await page.$eval('[data-metric="loss"] canvas', (canvas) => (canvas as HTMLCanvasElement).toDataURL());
    await page.locator('#log-x').click();
    const logView = await panel.waitForPost('view', 1);
    assert.equal((logView.payload as { view: DashboardView }).view.logX, true);
    await page.waitForFunction((before) => (document.querySelector('[data-metric="loss"] canvas') as HTMLCanvasElement).toDataURL() !== before, linear);
    assert.ok((await canvasInk(page, '[data-metric="loss"] canvas')) > 0.02);
    await screenshot(page, 'dashboard-flops-log-dark');
    assert.deepEqual(panel.errors, []);
    await page.close();
  });

  test('smoothing redraws at once, keeps the raw curve, and is saved as view state', async () => {
    const panel = await openDashboard('light');
    const { page } = panel;
    const before = await canvasInk(page, '[data-metric="loss"] canvas');
    await page.locator('#smoothing').fill('0.95');
    await page.waitForFunction(() => document.querySelector('#smoothing-value')?.textContent === '0.950');
    const saved = await page.evaluate(() => (window as unknown as { __siftState: DashboardState }).__siftState);
    assert.equal(saved.view.smoothing, 0.95);
    assert.equal(saved.runDirs.length, 5, 'the runs shown, for the host to re-open after a reload');
    const smoothed = await canvasInk(page, '[data-metric="loss"] canvas');
    assert.ok(smoothed > 0.02 && Math.abs(smoothed - before) > 1e-4, `the chart changed (${before} → ${smoothed})`);
    await page.locator('#smoothing').fill('0');
    await page.waitForFunction(() => document.querySelector('#smoothing-value')?.textContent === '0.000');
    assert.ok((await canvasInk(page, '[data-metric="loss"] canvas')) > 0.02, 'raw curve drawn without smoothing');
    await page.close();
  });

  test('the view state survives a reload: a restored view is sent with ready', async () => {
    const saved = { view: { xAxis: 'examples_seen', logX: false, buckets: 500, smoothing: 0.3, baseline: 'jest-f80', hidden: ['independent'], heatmapRun: 'jest-f50', reach: { metric: 'loss', target: 2 } } };
    const panel = await openDashboard('dark', await modelWithRuns(), [], saved);
    const ready = (panel.posted[0] as { type: string; payload: { view: DashboardView } }).payload.view;
    assert.equal(ready.xAxis, 'examples_seen');
    assert.equal(ready.baseline, 'jest-f80');
    assert.deepEqual(ready.hidden, ['independent']);
    assert.equal(await panel.page.locator('#smoothing-value').textContent(), '0.300');
    assert.ok((await panel.page.locator('.legend-item.off').allTextContents())[0].includes('independent'));
    assert.ok((await panel.page.locator('#reach-table p').textContent())!.includes('at or below 2'));
    await panel.page.close();
  });

  test('hiding a run from the legend asks the host to leave it out', async () => {
    const panel = await openDashboard('dark');
    await panel.page.locator('.legend-item[data-run="uniform"]').click();
    const view = (await panel.waitForPost('view')).payload as { view: DashboardView };
    assert.deepEqual(view.view.hidden, ['uniform']);
    await panel.page.waitForSelector('.legend-item.off[data-run="uniform"]');
    await panel.page.waitForFunction(() => document.querySelectorAll('#reach-table tbody tr').length === 4);
    await panel.page.close();
  });

  test('CSV and PNG exports are posted to the host with the data', async () => {
    const exports: { type: string; payload: { suggestedName: string; csv?: string; pngBase64?: string } }[] = [];
    const panel = await openDashboard('dark', await modelWithRuns(), exports);
    await panel.page.locator('[data-metric="i2t_r1"] [data-export="csv"]').click();
    await panel.page.locator('[data-metric="i2t_r1"] [data-export="png"]').click();
    await panel.waitForPost('export-png');
    const csv = exports.find((m) => m.type === 'export-csv')!;
    // Against the default x-axis, FLOPs.
    assert.equal(csv.payload.suggestedName, 'i2t_r1-vs-flops.csv');
    const lines = csv.payload.csv!.trim().split('\n');
    assert.ok(lines[0].startsWith('FLOPs (total),uniform last,uniform min,uniform max,uniform mean,uniform smoothed'), lines[0]);
    assert.ok(lines.length > 10);
    const png = Buffer.from(exports.find((m) => m.type === 'export-png')!.payload.pngBase64!, 'base64');
    assert.deepEqual([...png.subarray(1, 4)], [...Buffer.from('PNG')]);
    await panel.send({ type: 'exported', payload: { ok: true, path: '/tmp/i2t_r1.png' } });
    await panel.page.waitForFunction(() => document.querySelector('#notice')?.textContent === 'Saved /tmp/i2t_r1.png');
    await panel.page.close();
  });

  test('a curve of one eval so far shows it as a marker (a lone point has no line)', async () => {
    const oneEvalRoot = tmpDir();
    // Running, half its 400 steps written, evals every 150: one eval, at step 150.
    writeFixtureRun(oneEvalRoot, { id: 'early', method: 'uniform', steps: 400, pace: 1, status: 'running', evalEvery: 150 });
    const model = new DashboardModel({ heatmapIntervalMs: 0 });
    await model.addRun(`${oneEvalRoot}/early`);
    const panel = await openDashboard('dark', model);
    // Pixels in a run colour (saturated), not the grid's or the axes' greys.
    const coloured = (selector: string): Promise<number> =>
      panel.page.$eval(selector, (element) => {
        const canvas = element as HTMLCanvasElement;
        const { data } = canvas.getContext('2d')!.getImageData(0, 0, canvas.width, canvas.height);
        let count = 0;
        for (let i = 0; i < data.length; i += 4) if (data[i + 3] > 200 && Math.max(data[i], data[i + 1], data[i + 2]) - Math.min(data[i], data[i + 1], data[i + 2]) > 80) count++;
        return count;
      });
    await panel.page.waitForSelector('[data-metric="i2t_r1"] canvas');
    assert.ok((await coloured('[data-metric="i2t_r1"] canvas')) >= 9, 'the single eval is drawn');
    await screenshot(panel.page, 'dashboard-one-eval-dark');
    await panel.page.close();
  });

  test('a run that distils from its reference gets a chart for each distillation term, and examples-to-reach can read them downwards', async () => {
    const distillRoot = tmpDir();
    writeFixtureRun(distillRoot, { id: 'uniform', method: 'uniform', steps: 200, pace: 1 });
    writeFixtureRun(distillRoot, { id: 'jest-distill3', method: 'jest', steps: 200, pace: 2, config: { distill: 3, distillFeatures: 20, reference: '../reference' } });
    const model = new DashboardModel({ heatmapIntervalMs: 0 });
    for (const id of ['uniform', 'jest-distill3']) await model.addRun(`${distillRoot}/${id}`);
    const panel = await openDashboard('dark', model);
    const { page } = panel;
    const titles = await page.locator('.chart-title').allTextContents();
    assert.deepEqual(titles.slice(-2), ['Distillation loss (KL to the reference)', 'Feature distillation loss (1 − cos to the reference)'], titles.join(' | '));
    assert.ok((await canvasInk(page, '[data-metric="distill_loss"] canvas')) > 0.02, 'the pair term is drawn');
    assert.ok((await canvasInk(page, '[data-metric="feature_loss"] canvas')) > 0.02, 'the feature term is drawn');
    // The legend says which run distils (its config against the baseline's).
    assert.ok((await page.locator('.legend-item[data-run="jest-distill3"]').textContent())!.includes('distill 0 → 3'));
    assert.ok((await page.locator('.legend-item[data-run="jest-distill3"]').textContent())!.includes('distillFeatures 0 → 20'));
    // Examples-to-reach on the term: the baseline (uniform) has none, so the user enters a target; lower is better.
    await page.locator('#reach-metric').click();
    await page.locator('#reach-metric').getByRole('option', { name: 'Distillation loss (KL to the reference)' }).click();
    await page.waitForFunction(() => document.querySelector('#reach-table')?.textContent?.includes('Enter a target value'));
    await page.locator('#reach-target input').fill('0.2');
    await page.locator('#reach-target input').press('Enter');
    await page.waitForFunction(() => document.querySelector('#reach-table')?.textContent?.includes('at or below 0.2'));
    const row = (await page.locator('#reach-table tr[data-run="jest-distill3"]').textContent())!;
    assert.doesNotMatch(row, /not reached/, row);
    assert.match((await page.locator('#reach-table').textContent())!, /distillation loss \(KL to the reference\) is at or below 0\.2.*on the smoothed curve/);
    assert.match((await page.locator('#reach-table tr[data-run="uniform"]').textContent())!, /no point of this metric/, 'uniform has no term');
    await screenshot(page, 'dashboard-distill-dark');
    assert.deepEqual(panel.errors, []);
    await page.close();
  });

  test('live deltas from a training run extend its curves', async () => {
    const liveRoot = tmpDir();
    writeFixtureRun(liveRoot, { id: 'live', method: 'jest', steps: 400, pace: 2, status: 'running' });
    const model = new DashboardModel({ heatmapIntervalMs: 0 });
    await model.addRun(`${liveRoot}/live`);
    const panel = await openDashboard('dark', model);
    const stepText = async (): Promise<string> => (await panel.page.locator('.legend-item[data-run="live"]').textContent()) ?? '';
    assert.ok((await stepText()).includes('step 200 / 400'));
    const rng = new Rng(1);
    const counters = { examples_seen: 3200, examples_scored: 16000, flops_train: 0, flops_score: 0, flops_reference: 0, wall_s: 20, active_s: 18 };
    for (let step = 201; step <= 260; step++) {
      model.appendMetric('live', trainLine(step, { method: 'jest', pace: 2, steps: 400 }, counters, 16, 80, rng));
      if (step % 20 === 0) model.appendMetric('live', evalLine(step, { pace: 2, steps: 400 }, counters));
      if (step % 15 === 0) for (const message of model.flush()) await panel.send(message);
    }
    for (const message of model.flush()) await panel.send(message);
    await panel.page.waitForFunction(() => document.querySelector('.legend-item[data-run="live"]')?.textContent?.includes('step 260 / 400'));
    assert.deepEqual(panel.errors, []);
    await panel.page.close();
  });

  test('a malformed host message is reported, not acted on', async () => {
    const panel = await openDashboard('dark');
    await panel.send({ type: 'delta', payload: { patches: [{ metric: 'loss', from: 5, count: 2, series: [] }] } });
    await panel.page.waitForFunction(() => document.querySelector('#notice')?.textContent?.includes('Ignored a malformed message'));
    assert.deepEqual(panel.errors, []);
    await panel.page.close();
  });
});
