/**
 * Sift notebooks in a real VS Code (code-server, driven through chromium):
 * "Sift: New Sift Notebook" writes the starter notebook and opens it in the
 * notebook editor with the Sift kernel; "Run All" trains the reference, the
 * JEST run that names it by "@ref" and the uniform baseline in order, their
 * curves drawn live by the renderer, then compares them; the saved .siftnb
 * holds the outputs as small data, and an output's link opens the dashboard.
 * Run cells get the config schema's squiggles; Stop Execution pauses a cell's
 * run and running it again asks, then resumes that run.
 * Screenshots: test-results/e2e/notebook-*.png.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { FrameLocator, Locator } from 'playwright-core';
import { tinyModel } from '../tinyModel';
import { readJsonWhenWritten, sleep, Workbench } from './workbench';

let workbench: Workbench | undefined;
let workspace = '';

before(async () => {
  workspace = fs.mkdtempSync(path.join(os.tmpdir(), 'sift-e2e-notebook-'));
  workbench = await Workbench.open({ workspace, settings: { 'sift.backend': 'wasm', 'notebook.output.scrolling': false } });
});

after(async () => {
  await workbench?.close();
});

const wb = (): Workbench => {
  if (!workbench) throw new Error('the workbench did not open');
  return workbench;
};

/** The notebook's output webview: two iframes deep, as every webview. */
const outputs = (): FrameLocator => wb().page.frameLocator('iframe.webview.ready >> visible=true').frameLocator('iframe#active-frame');

const runsOf = (): { id: string; status: string; method: string }[] => {
  const root = path.join(workspace, '.sift', 'runs');
  if (!fs.existsSync(root)) return [];
  return fs
    .readdirSync(root)
    .filter((name) => fs.existsSync(path.join(root, name, 'run.json')))
    .map((name) => {
      const json = JSON.parse(fs.readFileSync(path.join(root, name, 'run.json'), 'utf8'));
      return { id: json.id, status: json.status, method: json.config.method };
    });
};

async function waitFor(what: string, check: () => boolean | Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await sleep(500);
  }
  const shot = await wb().screenshot(`failed-notebook-${what.replace(/\W+/g, '-')}`);
  throw new Error(`${what} did not happen within ${timeoutMs} ms (see ${shot}). Runs: ${JSON.stringify(runsOf())}`);
}

/** Scrolls the notebook's cell list: the wheel over its left gutter (over an output, the webview would take it). */
async function scrollNotebook(deltaY: number): Promise<void> {
  const list = wb().page.locator('.notebook-editor .monaco-list').first();
  const box = await list.boundingBox();
  if (!box) return;
  await wb().page.mouse.move(box.x + 6, box.y + Math.min(box.height, (wb().page.viewportSize()?.height ?? 900) - box.y) / 2);
  await wb().page.mouse.wheel(0, deltaY);
  await sleep(600);
}

/**
 * Scrolls the notebook step by step until `locator` (in the output webview) is
 * on screen: the editor renders outputs near the viewport only, and scrolling
 * happens in the editor, not in the webview.
 */
async function scrollTo(what: string, locator: Locator, timeoutMs = 120_000): Promise<void> {
  const height = wb().page.viewportSize()?.height ?? 900;
  await waitFor(what, async () => {
    const box = await locator.boundingBox({ timeout: 1000 }).catch(() => null);
    if (box && box.y >= 140 && box.y + Math.min(box.height, 250) <= height - 40) return true;
    await scrollNotebook(box && box.y < 140 ? -800 : 800);
    return false;
  }, timeoutMs);
}

interface SavedNotebook {
  cells: { outputs?: { mime: string; data: { status?: string } }[]; metadata?: { execution?: { order: number; start: number; end: number } } }[];
}

test('the starter notebook: Run All trains reference, JEST and uniform in order with live curves, then compares them; the saved file is small', { timeout: 900_000 }, async () => {
  await wb().runCommand('Sift: New Sift Notebook');
  const file = path.join(workspace, 'experiments.siftnb');
  // The first code cell's JSON in its editor, the markdown rendered in the notebook's webview.
  await wb().page.locator('.notebook-editor .view-lines', { hasText: '"kind": "reference"' }).first().waitFor({ timeout: 60_000 });
  assert.ok(fs.existsSync(file), 'the starter was written into the workspace folder');
  await outputs().locator('h1', { hasText: 'JEST on the built-in data' }).first().waitFor({ timeout: 30_000 });
  // The Sift kernel is preselected: its name shows in the notebook toolbar.
  await wb().page.locator('.notebook-toolbar-container', { hasText: 'Sift' }).first().waitFor({ timeout: 30_000 });
  await wb().screenshot('notebook-01-starter');

  await wb().runCommand('Notebook: Run All');
  // The reference trains first; its output draws curves as it goes.
  await waitFor('the reference run started', () => runsOf().some((run) => run.status === 'running'), 120_000);
  await scrollTo('the reference output with its loss curve', outputs().locator('.run-output [data-metric="loss"] canvas').first());
  await wb().screenshot('notebook-02-reference-training');

  // Then JEST (which needs the finished reference), then uniform.
  await waitFor('the JEST run started after the reference finished', () => runsOf().some((run) => run.method === 'jest'), 300_000);
  const jest = runsOf().find((run) => run.method === 'jest')!;
  assert.ok(runsOf().some((run) => run.id.endsWith('-ref') && run.status === 'finished'), 'the reference had finished');
  assert.match(jest.id, /-jest$/);
  await scrollTo('the JEST output with its loss curve', outputs().locator('.run-output', { hasText: '@jest' }).locator('[data-metric="loss"] canvas'));
  await wb().screenshot('notebook-03-jest-training');

  await waitFor('every run finished', () => {
    const runs = runsOf();
    return runs.length === 3 && runs.every((run) => run.status === 'finished');
  }, 600_000);
  // The compare cell runs last: its table lists the two labelled runs.
  const compare = outputs().locator('.compare-output');
  await scrollTo('the compare output', compare.locator('table'));
  const rows = await compare.locator('tbody tr').allTextContents();
  assert.equal(rows.length, 2, rows.join('\n'));
  assert.match(rows[0], /^@uniform/);
  assert.match(rows[1], /^@jest/);
  await compare.locator('[data-metric="i2t_r1"] canvas').waitFor({ timeout: 60_000 });
  await wb().screenshot('notebook-04-compared');

  // The whole notebook after Run All, in a window as tall as its cells and outputs.
  const contentHeight = await wb().page.locator('.notebook-editor .monaco-list-rows').first().evaluate((rows) => rows.getBoundingClientRect().height);
  await wb().page.setViewportSize({ width: 1400, height: Math.min(6000, Math.ceil(contentHeight) + 170) });
  await sleep(1500);
  // A click on a markdown cell selects it (not editing); Ctrl+Home then focuses the first cell and scrolls to the top.
  await outputs().locator('h2', { hasText: '4. Compare' }).first().click();
  await wb().page.keyboard.press('Control+Home');
  await wb().page.mouse.move(200, 600);
  await sleep(2500);
  await outputs().locator('.run-output', { hasText: '@ref' }).locator('[data-metric="loss"] canvas').waitFor({ timeout: 30_000 });
  await wb().screenshot('notebook-05-after-run-all');

  await wb().runCommand('File: Save');
  const saved = await readJsonWhenWritten<SavedNotebook>(file, 30_000, (json) => JSON.stringify(json).includes('application/vnd.sift.compare+json'));
  const outputsSaved = saved.cells.flatMap((cell) => cell.outputs ?? []);
  assert.deepEqual(
    outputsSaved.map((o) => o.mime),
    ['application/vnd.sift.run+json', 'application/vnd.sift.run+json', 'application/vnd.sift.run+json', 'application/vnd.sift.compare+json'],
  );
  assert.ok(outputsSaved.slice(0, 3).every((o) => o.data.status === 'finished'));
  const orders = saved.cells.flatMap((cell) => (cell.metadata?.execution ? [cell.metadata.execution.order] : []));
  assert.deepEqual(orders, [1, 2, 3, 4], 'execution order saved');
  const size = fs.statSync(file).size;
  process.stdout.write(`saved ${file}: ${size} bytes\n`);
  fs.mkdirSync(path.join(__dirname, '..', '..', 'test-results', 'e2e'), { recursive: true });
  fs.copyFileSync(file, path.join(__dirname, '..', '..', 'test-results', 'e2e', 'notebook-after-run-all.siftnb'));
  assert.ok(size < 20_000, `the saved notebook is small data, not points: ${size} bytes`);

  // An output's link opens the Runs view's panels on its runs (the whole notebook is still on screen).
  await outputs().locator('.compare-output .link-button', { hasText: 'Open Dashboard' }).click();
  await wb().page.locator('.tabs-container .tab', { hasText: 'Sift Dashboard' }).first().waitFor({ timeout: 30_000 });
  await wb().page.setViewportSize({ width: 1400, height: 900 });
  await sleep(2000);
  await wb().screenshot('notebook-07-dashboard-from-link');
});

test('run cells get the *.sift.json schema: a misspelt setting and a branch without "at_step" are flagged in the cell', { timeout: 180_000 }, async () => {
  const file = path.join(workspace, 'typos.siftnb');
  fs.writeFileSync(
    file,
    JSON.stringify({ version: 1, cells: [{ kind: 'code', language: 'json', source: ['{', '  "batchSzie": 8', '}'] }, { kind: 'code', language: 'json', source: ['{"branch": "@jest"}'] }] }),
  );
  await wb().page.locator('.explorer-folders-view .monaco-list-row', { hasText: 'typos.siftnb' }).first().dblclick({ timeout: 30_000 });
  await wb().page.locator('.notebook-editor .view-lines', { hasText: 'batchSzie' }).first().waitFor({ timeout: 60_000 });
  await wb().runCommand('View: Focus Problems (Errors, Warnings, Infos)');
  const problems = wb().page.locator('.markers-panel');
  await problems.locator('.monaco-list-row', { hasText: 'batchSzie' }).first().waitFor({ timeout: 60_000 });
  const text = (await problems.textContent()) ?? '';
  assert.match(text, /Property batchSzie is not allowed/);
  assert.match(text, /Missing property "at_step"/);
  await wb().screenshot('notebook-06-cell-schema');
});

test('Stop Execution pauses a cell\'s run; running the cell again asks, and Resume continues the same run', { timeout: 240_000 }, async () => {
  const file = path.join(workspace, 'long.siftnb');
  const config = { label: 'long', data: 'builtin:train?size=600', evalData: 'builtin:eval?size=64', ...tinyModel, steps: 20000, evalEvery: 500, checkpointEvery: 1000 };
  fs.writeFileSync(file, JSON.stringify({ version: 1, cells: [{ kind: 'code', language: 'json', source: JSON.stringify(config, null, 2).split('\n') }] }));
  await wb().runCommand('View: Close All Editors');
  await wb().page.locator('.explorer-folders-view .monaco-list-row', { hasText: 'long.siftnb' }).first().dblclick({ timeout: 30_000 });
  await wb().page.locator('.notebook-editor .view-lines', { hasText: '"label": "long"' }).first().waitFor({ timeout: 60_000 });
  const before = new Set(runsOf().map((run) => run.id));
  const longRun = (): { id: string; status: string } | undefined => runsOf().find((run) => !before.has(run.id));
  const stopButton = wb().page.locator('.notebook-toolbar-container .action-item', { hasText: 'Stop Execution' }).first();

  await wb().runCommand('Notebook: Run All');
  await waitFor('the long run trains', () => longRun()?.status === 'running', 120_000);
  await sleep(2000);
  await stopButton.click();
  await waitFor('the run paused', () => longRun()?.status === 'paused', 60_000);
  await outputs().locator('.run-output .notice', { hasText: /^Paused at step \d+ \(checkpoint at step \d+\)\. Run the cell again/ }).waitFor({ timeout: 30_000 });
  assert.equal(await outputs().locator('.run-output .status').textContent(), 'paused');
  await wb().screenshot('notebook-08-paused');

  await wb().runCommand('Notebook: Run All');
  const question = wb().page.locator('.monaco-dialog-box', { hasText: /is paused at step \d+\/20000\. Resume it, or start a new run from this cell\?/ });
  await question.waitFor({ timeout: 30_000 });
  await wb().screenshot('notebook-09-resume-or-new');
  await wb().dialogButton('Resume');
  await waitFor('the same run trains again', () => longRun()?.status === 'running', 60_000);
  assert.equal(runsOf().filter((run) => !before.has(run.id)).length, 1, 'no new run: the paused one continued');
  await stopButton.click();
  await waitFor('the run paused again', () => longRun()?.status === 'paused', 60_000);
});
