/**
 * The panels' host classes with a stand-in for the editor (fake-vscode.ts):
 * a training run's deltas go to a panel's webview only once it said `ready`
 * and got its snapshot, and not while the panel is hidden (its webview is
 * torn down then; see webviewOptions in src/extension/panels/webview.ts).
 */
import './fake-vscode';
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { MetricLine, SelectionLine } from '../../src/core/runs/record';
import { DashboardPanel } from '../../src/extension/panels/dashboardPanel';
import { InspectorPanel } from '../../src/extension/panels/inspectorPanel';
import type { PanelContext } from '../../src/extension/panels/webview';
import type { LiveRun, ManagerEvent, RunManager } from '../../src/extension/runManager';
import { defaultDashboardView, defaultInspectorView, webviewProtocolVersion } from '../../src/protocol/webview';
import { workerProtocolVersion, type WorkerEvent } from '../../src/protocol/worker';
import { FakePanel, fakeUri } from './fake-vscode';
import { tmpDir, writeFixtureRun } from './panels-fixtures';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
/** Longer than both panels' delta interval (250 ms). */
const quiet = 700;

class FakeManager {
  private readonly listeners = new Set<(event: ManagerEvent) => void>();

  onEvent(listener: (event: ManagerEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  report(run: { id: string; dir: string }, event: WorkerEvent): void {
    for (const listener of this.listeners) listener({ type: 'worker', run: { run } as LiveRun, event });
  }
}

const manager = new FakeManager();
const context: PanelContext = {
  extensionUri: fakeUri('/extension'),
  manager: manager as unknown as RunManager,
  log: { info: () => {}, warn: () => {}, error: () => {} } as unknown as PanelContext['log'],
  workspaceFolders: () => [],
};

const root = tmpDir();
const dir = writeFixtureRun(root, { id: 'live', method: 'jest', steps: 40, pace: 1, status: 'running' });
const run = { id: 'live', dir };
const lastLine = <T>(file: string, keep: (line: T) => boolean = () => true): T =>
  fs
    .readFileSync(path.join(dir, file), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((text) => JSON.parse(text) as T)
    .filter(keep)
    .at(-1)!;
let metric = lastLine<MetricLine>('metrics.jsonl', (line) => line.type === 'train');
let selection = lastLine<SelectionLine>('selections.jsonl');

/** The run's worker reports its next step: a metrics line and a selections line. */
function step(): void {
  metric = { ...metric, step: metric.step + 1 };
  selection = { ...selection, step: selection.step + 1 };
  manager.report(run, { type: 'metrics', line: metric });
  manager.report(run, { type: 'selection', line: selection as unknown as Record<string, unknown> });
}

async function posted(panel: FakePanel, type: string): Promise<void> {
  for (const deadline = Date.now() + 5000; !panel.posted.some((message) => message.type === type); await sleep(20)) {
    assert.ok(Date.now() < deadline, `no ${type} was posted`);
  }
}

after(() => fs.rmSync(root, { recursive: true, force: true }));

test('a dashboard posts deltas from its snapshot on, and none while hidden', async () => {
  const fake = new FakePanel();
  const dashboard = DashboardPanel.revive(fake.panel, context, { runDirs: [dir] });
  try {
    fake.say({ type: 'ready', payload: { protocol: webviewProtocolVersion, view: defaultDashboardView } });
    await posted(fake, 'snapshot');
    step();
    await sleep(quiet);
    assert.ok(fake.take().includes('delta'), 'a shown dashboard follows the run');

    fake.show(false);
    for (let i = 0; i < 5; i++) step();
    await sleep(quiet);
    assert.deepEqual(fake.take(), [], 'nothing goes to the torn-down webview of a hidden dashboard');

    // Shown again, its webview reloads and says ready: a snapshot with the steps it missed, then deltas.
    fake.show(true);
    fake.say({ type: 'ready', payload: { protocol: webviewProtocolVersion, view: defaultDashboardView } });
    await posted(fake, 'snapshot');
    step();
    await sleep(quiet);
    assert.ok(fake.take().includes('delta'));
  } finally {
    dashboard.dispose();
  }
});

test('the batch inspector posts no steps before its webview said ready, nor while hidden', async () => {
  const fake = new FakePanel();
  const inspector = InspectorPanel.revive(fake.panel, context, { runDir: dir });
  try {
    for (let i = 0; i < 5; i++) step();
    await sleep(quiet);
    assert.deepEqual(fake.take(), [], 'the webview is still loading: the snapshot at ready will hold these steps');

    fake.say({ type: 'ready', payload: { protocol: webviewProtocolVersion, view: defaultInspectorView } });
    await posted(fake, 'snapshot');
    fake.take();
    step();
    await sleep(quiet);
    assert.deepEqual(fake.take(), ['steps'], 'a shown inspector follows the run');

    fake.show(false);
    for (let i = 0; i < 5; i++) step();
    manager.report(run, { type: 'status', protocol: workerProtocolVersion, state: 'paused', step: selection.step, totalSteps: 40 });
    await sleep(quiet);
    assert.deepEqual(fake.take(), [], 'nothing goes to the torn-down webview of a hidden inspector');
  } finally {
    inspector.dispose();
  }
});
