/**
 * The extension in a real VS Code (code-server, driven through chromium), as a
 * user sees it: a run started from the palette appears in the Runs view and the
 * status bar, pauses, resumes, branches at a kept checkpoint (the branch shows
 * under its parent), opens its dashboard and stops; a bad config shows its
 * error; Check GPU Setup writes its report; an untrusted workspace refuses to
 * start a run. Screenshots: test-results/e2e/*.png.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { tinyModel } from '../tinyModel';
import { readJsonWhenWritten, repoRoot, sleep, Workbench } from './workbench';

/**
 * A run of tiny models on small built-in data, long enough to act on while it
 * trains. At the tiny model's batch of 8 two such runs step ~85 times a second
 * each on the native matMul: the suite opens its panels under that flood of
 * step events. (It once left the batch inspector blank; the cause and fix are
 * in src/extension/panels/webview.ts, WebviewBoot, and in workbench.ts's
 * browser flags.)
 */
const tinyRun = {
  data: 'builtin:train?size=600',
  evalData: 'builtin:eval?size=64',
  ...tinyModel,
  steps: 6000,
  evalEvery: 200,
  checkpointEvery: 100,
  keepCheckpoints: 100,
};

function makeWorkspace(): string {
  const workspace = fs.mkdtempSync(path.join(os.tmpdir(), 'sift-e2e-ws-'));
  fs.writeFileSync(path.join(workspace, 'tiny.sift.json'), `${JSON.stringify(tinyRun, null, 2)}\n`);
  fs.writeFileSync(path.join(workspace, 'bad.sift.json'), `${JSON.stringify({ ...tinyRun, batchSize: 'big' }, null, 2)}\n`);
  return workspace;
}

const runsIn = (workspace: string): string[] => {
  const root = path.join(workspace, '.sift', 'runs');
  return fs.existsSync(root) ? fs.readdirSync(root).filter((name) => fs.existsSync(path.join(root, name, 'run.json'))) : [];
};

const readRun = (workspace: string, id: string): { status: string; parent: string | null; forkStep: number | null } =>
  JSON.parse(fs.readFileSync(path.join(workspace, '.sift', 'runs', id, 'run.json'), 'utf8'));

let workbench: Workbench | undefined;
let workspace = '';
const delayLog = path.join(os.tmpdir(), `sift-e2e-host-delay-${process.pid}.jsonl`);

before(async () => {
  fs.rmSync(delayLog, { force: true });
  workspace = makeWorkspace();
  workbench = await Workbench.open({ workspace, delayLog });
});

after(async () => {
  await workbench?.close();
});

const wb = (): Workbench => {
  if (!workbench) throw new Error('the workbench did not open');
  return workbench;
};

test('a run started from the palette shows in the Runs view and the status bar, pauses and resumes', { timeout: 240_000 }, async () => {
  await wb().showRunsView();
  await wb().screenshot('01-runs-view-empty');
  await wb().runCommand('Sift: Start Training Run…');
  await wb().waitForQuickInput(/Start a training run/);
  await wb().pick('tiny.sift.json');

  const running = await wb().waitForStatusBar(/Sift \d+\/6000 .*ex\/s/);
  assert.match(running, /ETA/);
  const rows = await wb().waitForRows((r) => r.some((row) => /running/.test(row.label)), 'a running run');
  assert.equal(rows.length, 1, JSON.stringify(rows));
  const [id] = runsIn(workspace);
  assert.ok(id, 'the run folder exists');
  assert.match(rows[0].label, new RegExp(`^${id}, running, uniform · \\d+/6000`));
  await wb().waitForStatusBar(/ · wasm/);
  await wb().screenshot('02-running');

  await wb().runCommand('Sift: Pause Run');
  await wb().waitForStatusBar(/Sift paused \d+\/6000/);
  await wb().waitForRows((r) => r.some((row) => row.label.startsWith(`${id}, paused`)), 'the run paused');
  assert.equal(readRun(workspace, id).status, 'paused');
  await wb().screenshot('03-paused');

  await wb().runCommand('Sift: Resume Run');
  await wb().waitForStatusBar(/Sift \d+\/6000 .*ex\/s/);
  await wb().waitForRows((r) => r.some((row) => row.label.startsWith(`${id}, running`)), 'the run running again');
});

test('a branch at a kept checkpoint shows under its parent; both stop', { timeout: 240_000 }, async () => {
  const [parent] = runsIn(workspace);
  // Wait for a checkpoint past the one the pause wrote.
  const checkpoints = (): number[] =>
    fs.existsSync(path.join(workspace, '.sift', 'runs', parent, 'checkpoints'))
      ? fs.readdirSync(path.join(workspace, '.sift', 'runs', parent, 'checkpoints')).filter((n) => /^step-\d+$/.test(n)).map((n) => Number(n.slice(5)))
      : [];
  const deadline = Date.now() + 60_000;
  while (checkpoints().filter((s) => s % 100 === 0).length === 0 && Date.now() < deadline) await sleep(250);
  const kept = checkpoints().filter((s) => s % 100 === 0);
  assert.ok(kept.length > 0, 'the parent has a checkpoint at a multiple of checkpointEvery');

  await wb().contextMenu(new RegExp(parent), 'Branch Run from Checkpoint…');
  await wb().waitForQuickInput(/from which checkpoint/);
  const newest = wb().quickInput.locator('.monaco-list-row', { hasText: 'newest' }).first();
  const forkStep = Number(/step (\d+)/.exec((await newest.textContent()) ?? '')?.[1]);
  assert.ok(forkStep >= 100, `the newest kept checkpoint (${forkStep})`);
  await wb().pick(new RegExp(`step ${forkStep}(?!\\d)`));
  await wb().waitForQuickInput(/settings to change/);
  await wb().answer('steps=6000 learningRate=0.001');
  // The parent still trains: starting another asks first.
  await wb().dialogButton('Start Alongside');

  // The row says where it forked from, also while it starts (its description then ends in the start-up stage).
  const rows = await wb().waitForRows((r) => r.length === 2 && r[1].level === 2 && /from step/.test(r[1].label), 'the branch under its parent, with its fork step');
  assert.match(rows[0].label, new RegExp(`^${parent}, `));
  assert.match(rows[1].label, new RegExp(`from step ${forkStep}(?!\\d)`));
  const child = runsIn(workspace).find((name) => name !== parent)!;
  assert.equal(readRun(workspace, child).parent, parent);
  assert.equal(readRun(workspace, child).forkStep, forkStep);
  await wb().waitForRows((r) => r.length === 2 && /, running, /.test(r[1].label), 'the branch running');
  await wb().screenshot('04-branch-under-parent');

  await wb().contextMenu(new RegExp(parent), 'Open Dashboard');
  await wb().webviewText(new RegExp(`${parent}uniform · running`), 30_000);
  // Opening it on the branch adds the branch to the same dashboard.
  await wb().contextMenu(new RegExp(child), 'Open Dashboard');
  const dashboard = await wb().webviewText(new RegExp(child), 30_000);
  assert.match(dashboard, new RegExp(parent), 'both runs are in the legend');
  await sleep(2000);
  await wb().screenshot('05-dashboard');

  await wb().contextMenu(new RegExp(parent), 'Inspect Selected Batch');
  await wb().webviewText(/\d+ steps? recorded/, 30_000);
  // The extension runs where the workspace is (code-server: the server; the browser is the UI):
  // the picks' thumbnails reach the browser as data, never as a path on the server's disk.
  const thumbsBy = Date.now() + 30_000;
  let sources: string[];
  while ((sources = await wb().webviewImageSources()).length === 0 && Date.now() < thumbsBy) await sleep(300);
  assert.ok(sources.length > 0, 'the inspector shows thumbnails');
  for (const source of sources) assert.match(source, /^data:image\//, `a webview image comes from the server as data: ${source.slice(0, 80)}`);
  await sleep(2000);
  await wb().screenshot('05b-inspector');

  // Two runs train: Stop asks which.
  await wb().runCommandAndPick('Sift: Stop Run', /Stop which run/, child);
  await wb().waitForRows((r) => r.length === 2 && /, stopped, /.test(r[1].label), 'the branch stopped');
  await wb().runCommand('Sift: Stop Run');
  await wb().waitForRows((r) => r.length === 2 && /, stopped, /.test(r[0].label), 'the parent stopped');
  await wb().waitForNotification(/stopped at step \d+, checkpointed/);
  assert.equal(readRun(workspace, parent).status, 'stopped');
  await wb().screenshot('06-stopped');
});

test('a bad config shows its error, naming the field', { timeout: 120_000 }, async () => {
  await wb().clearNotifications();
  const runsBefore = runsIn(workspace).length;
  await wb().runCommand('Sift: Start Training Run…');
  await wb().waitForQuickInput(/Start a training run/);
  await wb().pick('bad.sift.json');
  const toast = await wb().waitForNotification(/not valid/);
  assert.match((await toast.textContent()) ?? '', /"batchSize" is "big"; expected a whole number ≥ 2/);
  assert.equal(runsIn(workspace).length, runsBefore, 'no run folder was made');

  // The fix is one click away, and the editor marks the field with the config schema.
  await toast.locator('.monaco-button', { hasText: 'Open Configuration' }).click();
  const editor = wb().page.locator('.editor-instance .monaco-editor').first();
  // JSON schema problems are warnings in VS Code: a yellow squiggle under "big".
  await editor.locator('.squiggly-warning, .squiggly-error').first().waitFor({ timeout: 30_000 });
  await editor.locator('.view-line span', { hasText: '"steps"' }).first().hover();
  const hover = wb().page.locator('.monaco-hover', { hasText: 'Optimizer steps' }).first();
  await hover.waitFor({ timeout: 20_000 });
  assert.match((await hover.textContent()) ?? '', /Default: 600/);
  await wb().screenshot('07-bad-config');
});

test('New Run Configuration writes a config from a template and opens it', { timeout: 120_000 }, async () => {
  await wb().runCommand('Sift: New Run Configuration');
  await wb().waitForQuickInput(/New Run Configuration/);
  await wb().pick('Quick smoke test');
  await wb().answer('smoke.sift.json');
  const file = path.join(workspace, 'smoke.sift.json');
  const config = await readJsonWhenWritten<{ steps: number }>(file, 20_000);
  assert.equal(config.steps, 200);
  await wb().page.locator('.tab', { hasText: 'smoke.sift.json' }).first().waitFor({ timeout: 20_000 });
});

test('the getting-started walkthrough opens', { timeout: 120_000 }, async () => {
  await wb().runCommand('Welcome: Open Walkthrough...');
  await wb().pick('Get started with Sift');
  await wb().page.locator('.getting-started-step', { hasText: 'Check which backend will train' }).first().waitFor({ timeout: 30_000 });
  await sleep(1000);
  await wb().screenshot('10-walkthrough');
});

test('Check GPU Setup writes a report of every backend', { timeout: 120_000 }, async () => {
  await wb().clearNotifications();
  await wb().runCommand('Sift: Check GPU Setup');
  const text = await wb().webviewText(/Runs will use/, 90_000);
  assert.match(text, /Runs will use: wasm/);
  assert.match(text, /CUDA 11\.2/);
  await wb().screenshot('08-gpu-doctor');
});

// A figure, not a gate: timings on a shared machine are noise in a test. `npm run bench:host` is where the 50 ms budget is checked.
test('the extension host\'s event-loop delay while runs trained is recorded in bench-results/host-e2e.json', () => {
  const windows = fs
    .readFileSync(delayLog, 'utf8')
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as { liveRuns: number; p50: number; p99: number; max: number; resolutionMs: number });
  const training = windows.filter((w) => w.liveRuns > 0);
  assert.ok(training.length >= 3, `${training.length} two-second windows with a run training`);
  const p99s = training.map((w) => w.p99).sort((a, b) => a - b);
  const report = {
    windowsMs: training.map((w) => ({ p50: w.p50, p99: w.p99, max: w.max, liveRuns: w.liveRuns })),
    what: 'Event-loop delay of the real VS Code extension host (code-server 4.100.3) while the e2e scenario trained runs: start, pause, resume, a branch alongside, dashboard and inspector open, stop. monitorEventLoopDelay in the extension, 2 s windows; values include the 5 ms sampling interval.',
    windows: training.length,
    medianWindowP99Ms: p99s[Math.floor(p99s.length / 2)],
    worstWindowP99Ms: p99s[p99s.length - 1],
    worstMaxMs: Math.max(...training.map((w) => w.max)),
    budgetP99Ms: 50,
  };
  fs.mkdirSync(path.join(repoRoot, 'bench-results'), { recursive: true });
  fs.writeFileSync(path.join(repoRoot, 'bench-results', 'host-e2e.json'), `${JSON.stringify(report, null, 2)}\n`);
  assert.ok(training.every((w) => Number.isFinite(w.p99) && w.p99 > 0), JSON.stringify(report));
  process.stdout.write(`extension host event-loop delay p99: median window ${report.medianWindowP99Ms} ms, worst ${report.worstWindowP99Ms} ms\n`);
});
