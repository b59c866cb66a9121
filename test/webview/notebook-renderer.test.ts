/**
 * The notebook renderer's bundle in headless Chromium, loaded as the editor
 * loads it (an ES module whose `activate` gets a renderer context with
 * messaging) under a CSP stricter than the notebook's own (scripts and
 * stylesheets from the server only, images only as data: URIs), with the
 * real host side (NotebookOutputHost on fixture run folders, the thumbnail
 * service on built-in data) answering its messages: a run output, a compare
 * output, live deltas while a run trains, a replaced output keeping its
 * charts, and outputs it cannot read. Screenshots in test-results/.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Page } from 'playwright-core';
import { makeNonce } from '../../src/panels/html';
import { ThumbnailService } from '../../src/panels/thumbnails';
import { readRunJson } from '../../src/core/runs/record';
import type { LiveRun, ManagerEvent } from '../../src/extension/runManager';
import { NotebookOutputHost, type LiveRuns } from '../../src/notebook/outputHost';
import { compareOutput, runOutput, type CellOutput } from '../../src/notebook/outputs';
import { parseNotebookRendererMessage, runOutputMime, type NotebookRendererMessage, type RunOutputData } from '../../src/protocol/notebook';
import { evalLine, tmpDir, trainLine, writeFixtureRun, writeFixtureRuns } from '../unit/panels-fixtures';
import { Rng } from '../../src/core/random';
import { canvasInk, launch, screenshot, startServer, type Browser, type Theme } from './harness';

let browser: Browser;
let server: Awaited<ReturnType<typeof startServer>>;
let root: string;
const thumbnails = new ThumbnailService();

before(async () => {
  server = await startServer();
  browser = await launch();
  root = tmpDir('sift-notebook-renderer-');
  writeFixtureRuns(root, 200);
  writeFixtureRun(root, { id: 'live', method: 'jest', filterRatio: 0.8, steps: 200, pace: 1.9, status: 'running' });
});

after(async () => {
  await browser?.close();
  await server?.close();
  await thumbnails.close();
});

const bodyClass: Record<Theme, string> = { light: 'vscode-light', dark: 'vscode-dark', 'high-contrast': 'vscode-high-contrast' };

/** The page the editor's notebook webview would be: the theme's variables, a container, the renderer module activated with a messaging context. */
function pageHtml(origin: string, theme: Theme, messaging: boolean): string {
  const nonce = makeNonce();
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; style-src ${origin} 'nonce-${nonce}'; script-src ${origin} 'nonce-${nonce}'">
<link rel="stylesheet" href="${origin}/test/webview/themes/${theme}.css">
<style nonce="${nonce}">
  /* What the editor's notebook webview gives the page: the editor's background, text and font. */
  body { margin: 0; padding: 8px 20px; background: var(--vscode-editor-background); color: var(--vscode-foreground); font-family: var(--vscode-font-family); font-size: var(--vscode-font-size); }
  .output { margin-bottom: 16px; }
</style>
</head>
<body class="${bodyClass[theme]}" data-vscode-theme-kind="${bodyClass[theme]}">
<div id="container"></div>
<script type="module" nonce="${nonce}">
import { activate } from '${origin}/dist/webview/notebook-renderer.js';
const listeners = [];
window.__siftViolations = [];
document.addEventListener('securitypolicyviolation', (event) => window.__siftViolations.push(event.violatedDirective + ' ' + event.blockedURI));
window.__siftReceive = (message) => listeners.forEach((listener) => listener(message));
const context = { workspace: { isTrusted: true } };
${messaging ? `context.postMessage = (message) => window.__siftPost(JSON.parse(JSON.stringify(message)));
context.onDidReceiveMessage = (listener) => { listeners.push(listener); return { dispose() {} }; };` : ''}
const api = await activate(context);
window.__siftRender = async (id, mime, data) => {
  let element = document.getElementById(id);
  if (!element) {
    element = document.createElement('div');
    element.id = id;
    element.className = 'output';
    document.getElementById('container').appendChild(element);
  }
  await api.renderOutputItem({ id, mime, json: () => data, text: () => JSON.stringify(data) }, element, new AbortController().signal);
};
window.__siftDispose = (id) => api.disposeOutputItem(id);
window.__siftReady = true;
</script>
</body>
</html>`;
}

/** Emits manager events for the live fixture run, as the RunManager would while its worker trains. */
class FakeRuns implements LiveRuns {
  readonly live = new Map<string, LiveRun>();
  private readonly listeners = new Set<(event: ManagerEvent) => void>();

  onEvent(listener: (event: ManagerEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  find(dir: string): LiveRun | undefined {
    return this.live.get(path.resolve(dir));
  }

  emit(event: ManagerEvent): void {
    for (const listener of this.listeners) listener(event);
  }
}

interface RendererPage {
  page: Page;
  posted: NotebookRendererMessage[];
  errors: string[];
  host: NotebookOutputHost<Page>;
  runs: FakeRuns;
  render: (id: string, output: CellOutput) => Promise<void>;
  violations: () => Promise<string[]>;
}

async function openRenderer(theme: Theme, messaging = true): Promise<RendererPage> {
  const page = await browser.context.newPage();
  await page.setViewportSize({ width: 1100, height: 900 });
  const posted: NotebookRendererMessage[] = [];
  const errors: string[] = [];
  const runs = new FakeRuns();
  const host = new NotebookOutputHost<Page>((target, message) => void target.evaluate((m) => (window as unknown as { __siftReceive: (m: unknown) => void }).__siftReceive(m), message), {
    runs,
    thumbnails,
    baseDirs: () => [],
    flushMs: 50,
    batchIntervalMs: 0,
  });
  page.on('pageerror', (error) => errors.push(`pageerror: ${error.message}`));
  page.on('console', (message) => {
    if (message.type() === 'error') errors.push(`console: ${message.text()}`);
  });
  await page.exposeFunction('__siftPost', async (raw: unknown) => {
    const parsed = parseNotebookRendererMessage(raw);
    assert.ok(parsed.ok, parsed.ok ? '' : parsed.problem);
    posted.push(parsed.message);
    if (parsed.message.type === 'watch') await host.watch(page, root, parsed.message.payload);
    else if (parsed.message.type === 'unwatch') host.unwatch(page, parsed.message.payload.key);
  });
  const url = `${server.origin}/notebook-${theme}`;
  await page.route(url, (route) => route.fulfill({ contentType: 'text/html; charset=utf-8', body: pageHtml(server.origin, theme, messaging) }));
  await page.goto(url);
  await page.waitForFunction(() => (window as unknown as { __siftReady?: boolean }).__siftReady === true);
  return {
    page,
    posted,
    errors,
    host,
    runs,
    render: (id, output) => page.evaluate(([i, m, d]) => (window as unknown as { __siftRender: (...a: unknown[]) => Promise<void> }).__siftRender(i, m, d), [id, output.mime, output.data] as const),
    violations: () => page.evaluate(() => (window as unknown as { __siftViolations: string[] }).__siftViolations),
  };
}

const output = (id: string, info: { cell?: RunOutputData['cell']; label?: string; message?: string } = {}): CellOutput =>
  runOutput(path.join(root, id), readRunJson(path.join(root, id)), { cell: info.cell ?? 'run', label: info.label, message: info.message, notebookDir: root });

describe('notebook renderer', () => {
  test('a run output: header, curves, summary table, the last batch and links, in three themes', async () => {
    for (const theme of ['dark', 'light', 'high-contrast'] as const) {
      const r = await openRenderer(theme);
      const { page } = r;
      await r.render('out-1', output('jest-f80', { label: 'jest' }));
      await page.locator('#out-1 .chart canvas').first().waitFor();
      await page.waitForFunction(() => document.querySelector('#out-1')?.shadowRoot?.querySelectorAll('.thumb img').length === 16);
      assert.equal(await page.locator('#out-1 .run-name').textContent(), '@jest');
      assert.equal(await page.locator('#out-1 .status').textContent(), 'finished');
      assert.equal(await page.locator('#out-1 .out-head .number').textContent(), 'step 200 / 200');
      assert.deepEqual(await page.locator('#out-1 .chart-title').allTextContents(), ['Train loss', 'Image → text recall@1']);
      assert.equal(await page.locator('#out-1 .chart-actions').count(), 0, 'no export buttons in a notebook');
      assert.ok((await canvasInk(page, '#out-1 [data-metric="loss"] canvas')) > 0.02, 'the loss curve is drawn');
      assert.ok((await canvasInk(page, '#out-1 [data-metric="i2t_r1"] canvas')) > 0.02, 'the recall curve is drawn');
      const headers = await page.locator('#out-1 table.summary th').allTextContents();
      assert.deepEqual(headers, ['examples', 'FLOPs', 'time', 'train loss', 'i2t R@1', 'i2t R@5', 't2i R@1', 't2i R@5', 'zero-shot']);
      assert.match((await page.locator('#out-1 .strip-head').textContent())!, /Batch trained at step 200.*first 16 pairs/);
      const captions = await page.locator('#out-1 .thumb img').evaluateAll((images) => images.map((image) => (image as HTMLImageElement).alt));
      assert.ok(captions.every((caption) => caption.length > 0), 'every thumbnail has its caption');

      await page.locator('#out-1 .link-button', { hasText: 'Inspect Batch' }).click();
      await page.locator('#out-1 .link-button', { hasText: 'Open Dashboard' }).click();
      const opens = r.posted.filter((m) => m.type === 'open');
      assert.deepEqual(opens, [
        { type: 'open', payload: { action: 'inspect', dirs: ['jest-f80'] } },
        { type: 'open', payload: { action: 'dashboard', dirs: ['jest-f80'] } },
      ]);
      assert.deepEqual(await r.violations(), []);
      assert.deepEqual(r.errors, []);
      await screenshot(page, `notebook-run-${theme}`);
      r.host.dispose();
      await page.close();
    }
  });

  test('a compare output: the target, one row per run with its speed-up, the runs\' curves', async () => {
    const r = await openRenderer('dark');
    const { page } = r;
    const dirs = ['uniform', 'jest-f80', 'jest-f50'].map((id) => path.join(root, id));
    await r.render('cmp', await compareOutput(dirs, ['uniform', 'jest', undefined], { metric: 'i2t_r1', notebookDir: root }));
    await page.locator('#cmp .chart canvas').first().waitFor();
    assert.match((await page.locator('#cmp .out-head').textContent())!, /Compare: Image → text recall@1target ≥ [\d.]+% \(final i2t_r1 of uniform\)/);
    const rows = await page.locator('#cmp tbody tr').allTextContents();
    assert.equal(rows.length, 3);
    assert.match(rows[0], /^@uniformuniform–/);
    assert.match(rows[1], /^@jestjest0\.8/);
    assert.match(rows[2], /^jest-f50jest0\.5/);
    assert.ok((await page.locator('#cmp td.better').count()) >= 1, 'a run that beat uniform is marked');
    assert.deepEqual(await page.locator('#cmp .chart-title').allTextContents(), ['Image → text recall@1', 'Train loss']);
    assert.ok((await canvasInk(page, '#cmp [data-metric="i2t_r1"] canvas')) > 0.02);
    await page.waitForFunction(() => document.querySelector('#cmp')?.shadowRoot?.querySelectorAll('.swatch[style]').length === 3);
    await page.locator('#cmp .link-button', { hasText: 'Open Dashboard' }).click();
    assert.deepEqual(r.posted.at(-1), { type: 'open', payload: { action: 'dashboard', dirs: ['uniform', 'jest-f80', 'jest-f50'] } });
    assert.deepEqual(await r.violations(), []);
    assert.deepEqual(r.errors, []);
    await screenshot(page, 'notebook-compare-dark');
    r.host.dispose();
    await page.close();
  });

  test('a run that distils from its reference also shows its distillation terms; one that does not, only loss and recall', async () => {
    writeFixtureRun(root, { id: 'jest-distill3', method: 'jest', filterRatio: 0.8, steps: 200, pace: 2, config: { distill: 3, distillFeatures: 20, reference: '../reference' } });
    const r = await openRenderer('dark');
    const { page } = r;
    await r.render('out-d', output('jest-distill3', { label: 'distilled' }));
    await page.locator('#out-d [data-metric="feature_loss"] canvas').waitFor();
    assert.deepEqual(await page.locator('#out-d .chart-title').allTextContents(), ['Train loss', 'Image → text recall@1', 'Distillation loss (KL to the reference)', 'Feature distillation loss (1 − cos to the reference)']);
    for (const metric of ['distill_loss', 'feature_loss']) assert.ok((await canvasInk(page, `#out-d [data-metric="${metric}"] canvas`)) > 0.02, `${metric} is drawn`);
    // The x-axis is the one the host decimated onto (FLOPs, as on the dashboard), and the readout says so.
    await page.locator('#out-d [data-metric="loss"] .u-over').hover({ position: { x: 200, y: 60 } });
    await page.waitForFunction(() => document.querySelector('#out-d')?.shadowRoot?.querySelector('[data-metric="loss"] .readout')?.textContent?.startsWith('FLOPs (total) '));
    await r.render('out-p', output('jest-f80', { label: 'plain' }));
    await page.locator('#out-p [data-metric="i2t_r1"] canvas').waitFor();
    assert.deepEqual(await page.locator('#out-p .chart-title').allTextContents(), ['Train loss', 'Image → text recall@1']);
    assert.deepEqual(r.errors, []);
    await screenshot(page, 'notebook-run-distill-dark');
    await page.close();
  });

  test('while the run trains its curves grow from the host\'s deltas; replaced data keeps the charts', async () => {
    const r = await openRenderer('dark');
    const { page, runs } = r;
    const dir = path.join(root, 'live');
    const run: LiveRun = { key: 1, request: { kind: 'resume', runDir: dir }, cwd: root, state: 'running', step: 100, totalSteps: 200, run: { id: 'live', dir, parent: null, forkStep: null } };
    runs.live.set(dir, run);
    await r.render('live-out', { ...output('live', { label: 'live' }), data: { ...(output('live').data as RunOutputData), label: 'live', status: 'running' } });
    await page.locator('#live-out [data-metric="loss"] canvas').waitFor();
    const inkBefore = await canvasInk(page, '#live-out [data-metric="loss"] canvas');
    const canvasId = await page.locator('#live-out [data-metric="loss"] canvas').evaluate((canvas) => ((canvas as HTMLCanvasElement & { __id?: number }).__id = 7));

    // The worker's next lines, as the manager relays them.
    const rng = new Rng(1);
    const last = JSON.parse(fs.readFileSync(path.join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').filter((l: string) => l.includes('"train"')).pop()!);
    const counters = { examples_seen: last.examples_seen, examples_scored: last.examples_scored, flops_train: last.flops_train, flops_score: last.flops_score, flops_reference: last.flops_reference, wall_s: last.wall_s, active_s: last.active_s };
    for (let step = 101; step <= 160; step++) {
      run.step = step;
      runs.emit({ type: 'worker', run, event: { type: 'metrics', line: trainLine(step, { method: 'jest', pace: 1.9, steps: 200 }, counters, 16, 80, rng) } });
      if (step % 20 === 0) runs.emit({ type: 'worker', run, event: { type: 'metrics', line: evalLine(step, { pace: 1.9, steps: 200 }, counters) } });
      runs.emit({ type: 'changed', run });
    }
    await page.waitForFunction(() => document.querySelector('#live-out')?.shadowRoot?.querySelector('.out-head .number')?.textContent === 'step 160 / 200');
    assert.equal(await page.locator('#live-out .status').textContent(), 'running');
    let inkAfter = inkBefore;
    for (let tries = 0; tries < 40 && inkAfter <= inkBefore; tries++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      inkAfter = await canvasInk(page, '#live-out [data-metric="loss"] canvas');
    }
    assert.ok(inkAfter > inkBefore, `the curve grew (${inkBefore} → ${inkAfter})`);
    assert.ok(r.posted.some((m) => m.type === 'watch' && m.payload.dirs[0] === 'live'));

    // The controller replaces the output's data as the run moves on: same output, same charts.
    await r.render('live-out', { ...output('live'), data: { ...(output('live').data as RunOutputData), label: 'live', status: 'running', step: 160, message: 'still training' } });
    assert.equal(await page.locator('#live-out [data-metric="loss"] canvas').evaluate((canvas) => (canvas as HTMLCanvasElement & { __id?: number }).__id), canvasId, 'the chart was kept');
    assert.equal(await page.locator('#live-out .notice:not(.hidden)').first().textContent(), 'still training');
    assert.equal(r.posted.filter((m) => m.type === 'watch').length, 1, 'no second watch');
    await screenshot(page, 'notebook-run-live-dark');

    // The run ends: the header follows the record.
    runs.live.delete(dir);
    run.state = 'finished';
    runs.emit({ type: 'exited', run });
    await r.render('live-out', { ...output('live'), data: { ...(output('live').data as RunOutputData), label: 'live', status: 'finished', step: 200 } });
    assert.equal(await page.locator('#live-out .status').textContent(), 'finished');
    await page.evaluate(() => (window as unknown as { __siftDispose: (id: string) => void }).__siftDispose('live-out'));
    assert.deepEqual(r.posted.at(-1), { type: 'unwatch', payload: { key: 'live-out' } });
    assert.deepEqual(r.errors, []);
    r.host.dispose();
    await page.close();
  });

  test('outputs it cannot read say so; a malformed host message is ignored; without messaging the saved data still shows', async () => {
    const r = await openRenderer('dark');
    const { page } = r;
    await r.render('bad', { mime: runOutputMime, data: { version: 1, cell: 'run', id: 'x' } });
    assert.match((await page.locator('#bad .notice.error').textContent())!, /^Sift cannot show this output: run output: "dir" is undefined; expected a run folder\.$/);
    await r.render('gone', { ...output('uniform'), data: { ...(output('uniform').data as RunOutputData), dir: 'no-such-run' } });
    await page.waitForFunction(() => !document.querySelector('#gone')?.shadowRoot?.querySelector('.notice.warning')?.classList.contains('hidden'));
    assert.match((await page.locator('#gone .notice.warning').textContent())!, /no-such-run: .*holds no run.*Run the cell again/);
    await page.evaluate(() => (window as unknown as { __siftReceive: (m: unknown) => void }).__siftReceive({ type: 'snapshot', payload: { key: 'gone', runs: 'nope' } }));
    assert.deepEqual(r.errors, []);
    r.host.dispose();
    await page.close();

    const offline = await openRenderer('light', false);
    await offline.render('saved', output('jest-f50', { label: 'f50', message: 'Stopped at step 120, checkpointed.' }));
    assert.equal(await offline.page.locator('#saved .run-name').textContent(), '@f50');
    assert.equal(await offline.page.locator('#saved table.summary td').count(), 9);
    assert.equal(await offline.page.locator('#saved .chart').count(), 0);
    assert.equal(await offline.page.locator('#saved .link-button:disabled').count(), 3);
    assert.deepEqual(offline.errors, []);
    await screenshot(offline.page, 'notebook-run-saved-light');
    offline.host.dispose();
    await offline.page.close();
  });
});
