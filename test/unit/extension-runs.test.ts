/**
 * The editor's run logic without the editor: the RunManager with a fake
 * worker factory (one run trains at a time unless asked, commands reach the
 * right worker, state follows the worker's events, a dead worker is noticed)
 * and once against a real forked worker; the RunIndex reading runs from disk
 * incrementally; the Runs view's nodes and the status bar's text.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { StatusEvent, WorkerCommand, WorkerEvent } from '../../src/protocol/worker';
import { workerProtocolVersion } from '../../src/protocol/worker';
import type { WorkerExit } from '../../src/worker/client';
import { WorkerClient } from '../../src/worker/client';
import { Coalescer } from '../../src/extension/coalesce';
import { isResumable, runNodes, statusBarView, flatten } from '../../src/extension/present';
import { listRuns } from '../../src/core/runs/lineage';
import { RunIndex } from '../../src/extension/runIndex';
import { RunBusyError, RunManager, throughput, type WorkerLike } from '../../src/extension/runManager';
import { killWorkers, tinyConfig, tmp } from './runs-helpers';

after(killWorkers);

class FakeWorker implements WorkerLike {
  readonly sent: WorkerCommand[] = [];
  private readonly listeners = new Set<(event: WorkerEvent) => void>();
  private resolveExit!: (exit: WorkerExit) => void;
  readonly exited = new Promise<WorkerExit>((resolve) => (this.resolveExit = resolve));
  killed = false;

  constructor(readonly cwd: string) {}

  send(command: WorkerCommand): void {
    this.sent.push(command);
  }

  onEvent(listener: (event: WorkerEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  kill(): void {
    this.killed = true;
    this.exit({ code: null, signal: 'SIGKILL', clean: false, reason: 'killed', markedInterrupted: false });
  }

  emit(event: WorkerEvent): void {
    for (const listener of this.listeners) listener(event);
  }

  status(state: StatusEvent['state'], step: number, extra: Partial<StatusEvent> = {}): void {
    this.emit({ type: 'status', protocol: workerProtocolVersion, state, step, totalSteps: 100, run: { id: 'r1', dir: '/runs/r1', parent: null, forkStep: null }, ...extra });
  }

  exit(exit: WorkerExit): void {
    this.resolveExit(exit);
  }
}

function fakeManager(): { manager: RunManager; workers: FakeWorker[] } {
  const workers: FakeWorker[] = [];
  const manager = new RunManager(({ cwd }) => {
    const worker = new FakeWorker(cwd);
    workers.push(worker);
    return worker;
  });
  return { manager, workers };
}

const trainLine = (step: number, activeSeconds: number) => ({
  type: 'train' as const,
  step,
  examples_seen: step * 8,
  examples_scored: 0,
  flops: 0,
  flops_train: 0,
  flops_score: 0,
  flops_reference: 0,
  wall_s: activeSeconds,
  active_s: activeSeconds,
  loss: 1,
  lr: 0.001,
  grad_norm: 1,
  temperature: 10,
  bias: -2,
  step_s: 0.01,
  score_s: 0,
  select_s: 0,
  train_s: 0.01,
});

test('the manager sends the first command, follows status and metrics, and relays commands to the right worker', async () => {
  const { manager, workers } = fakeManager();
  const seen: string[] = [];
  manager.onEvent((event) => seen.push(event.type));
  const run = manager.start({ kind: 'new', config: { steps: 100 } }, { cwd: '/ws' });
  assert.equal(workers[0].cwd, '/ws');
  assert.deepEqual(workers[0].sent[0], { type: 'start', protocol: workerProtocolVersion, run: { kind: 'new', config: { steps: 100 } } });
  assert.equal(run.state, 'starting');

  workers[0].emit({ type: 'log', level: 'info', message: 'Indexing training data', progress: { done: 3, total: 10 } });
  assert.deepEqual(run.stage, { message: 'Indexing training data', progress: { done: 3, total: 10 } });
  workers[0].status('running', 0);
  assert.equal(run.run?.dir, '/runs/r1');
  assert.equal(run.stage, undefined);
  workers[0].emit({ type: 'metrics', line: trainLine(40, 4) });
  assert.equal(run.step, 40);
  assert.deepEqual(throughput(run), { examplesPerSecond: 80, etaSeconds: 6 });
  workers[0].emit({ type: 'metrics', line: { type: 'eval', step: 40, examples_seen: 320, flops: 0, flops_train: 0, wall_s: 4, active_s: 4, i2t_r1: 0.25, i2t_r5: 0.5, t2i_r1: 0.2, t2i_r5: 0.4, eval_examples: 64, chance_r1: 1 / 64 } });
  workers[0].emit({ type: 'metrics', line: { type: 'eval', step: 60, examples_seen: 480, flops: 0, flops_train: 0, wall_s: 6, active_s: 6, i2t_r1: 0.2, i2t_r5: 0.5, t2i_r1: 0.2, t2i_r5: 0.4, eval_examples: 64, chance_r1: 1 / 64 } });
  assert.equal(run.bestI2tR1, 0.25, 'the best eval, not the last');

  assert.equal(manager.find('/runs/r1'), run);
  assert.equal(manager.active, run);
  manager.pause(run);
  manager.resume(run);
  manager.stop(run);
  assert.deepEqual(workers[0].sent.slice(1).map((c) => c.type), ['pause', 'resume', 'stop']);
  assert.ok(seen.includes('changed') && seen.includes('worker'));

  workers[0].status('finished', 100, { reason: 'completed' });
  workers[0].exit({ code: 0, signal: null, clean: true, markedInterrupted: false });
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(manager.runs.length, 0);
  assert.equal(seen.at(-1), 'exited');
  assert.throws(() => manager.pause(run), /no worker any more/);
});

test('one run trains at a time unless the user asks for another alongside', () => {
  const { manager, workers } = fakeManager();
  const first = manager.start({ kind: 'new', config: {} }, { cwd: '/ws' });
  assert.throws(
    () => manager.start({ kind: 'new', config: {} }, { cwd: '/ws' }),
    (error: unknown) => error instanceof RunBusyError && error.training === first,
  );
  assert.equal(workers.length, 1, 'no worker was forked for the refused run');
  const second = manager.start({ kind: 'branch', parentDir: '/runs/r1', atStep: 10, overrides: { steps: 200 } }, { cwd: '/ws', alongside: true });
  assert.equal(workers[1].sent[0].type, 'branch');
  assert.equal(manager.active, second, 'the newest training run is the active one');

  // A paused run does not train: another may start without asking.
  workers[0].status('paused', 10, { reason: 'requested' });
  workers[1].status('paused', 12, { reason: 'requested', run: { id: 'b', dir: '/runs/b', parent: 'r1', forkStep: 10 } });
  assert.equal(manager.training, undefined);
  manager.start({ kind: 'resume', runDir: 'runs/other' }, { cwd: '/ws' });
  // The same folder twice in one window is refused.
  workers[2].status('paused', 1, { reason: 'requested' });
  assert.throws(() => manager.start({ kind: 'resume', runDir: '/runs/b' }, { cwd: '/ws' }), /already open/);
});

test('a worker that dies while training leaves its run failed, with the exit for the user', async () => {
  const { manager, workers } = fakeManager();
  const run = manager.start({ kind: 'new', config: {} }, { cwd: '/ws' });
  workers[0].status('running', 5);
  workers[0].exit({ code: null, signal: 'SIGSEGV', clean: false, reason: 'The training worker at step 5 crashed in native code (SIGSEGV).', markedInterrupted: true });
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(run.state, 'failed');
  assert.equal(run.exit?.markedInterrupted, true);
  assert.equal(manager.runs.length, 0);
});

test('shutdown asks every worker to checkpoint and kills those that do not exit in time', async () => {
  const { manager, workers } = fakeManager();
  manager.start({ kind: 'new', config: {} }, { cwd: '/ws' });
  manager.start({ kind: 'new', config: {} }, { cwd: '/ws', alongside: true });
  workers[0].send = (command) => {
    workers[0].sent.push(command);
    if (command.type === 'shutdown') workers[0].exit({ code: 0, signal: null, clean: true, markedInterrupted: false });
  };
  await manager.shutdown(50);
  assert.deepEqual(workers.map((w) => w.sent.at(-1)?.type), ['shutdown', 'shutdown']);
  assert.deepEqual(workers.map((w) => w.killed), [false, true]);
});

test('against a real worker: start, pause, resume and stop through the manager', { timeout: 120_000 }, async () => {
  const root = tmp('sift-ext-');
  const manager = new RunManager(({ cwd }) => WorkerClient.start({ cwd }));
  const run = manager.start({ kind: 'new', config: tinyConfig(path.join(root, 'a'), { steps: 400 }) }, { cwd: root });
  const when = (predicate: () => boolean): Promise<void> =>
    new Promise((resolve) => {
      const stop = manager.onEvent(() => {
        if (predicate()) {
          stop();
          resolve();
        }
      });
    });
  await when(() => run.step >= 5);
  manager.pause(run);
  await when(() => run.state === 'paused');
  assert.ok(run.checkpoint && run.checkpoint.step === run.step, 'a pause checkpoints');
  manager.resume(run);
  await when(() => run.state === 'running');
  manager.stop(run);
  await when(() => run.exit !== undefined);
  assert.equal(run.state, 'finished');
  assert.equal(run.reason, 'stopped');
  assert.equal(JSON.parse(fs.readFileSync(path.join(root, 'a', 'run.json'), 'utf8')).status, 'stopped');

  // The index lists it, with its last step read from metrics.jsonl.
  const index = new RunIndex(root);
  await index.refresh();
  const [listed] = index.runs;
  assert.equal(listed.id, 'a');
  assert.equal(listed.status, 'stopped');
  assert.equal(listed.step, run.step);
});

function writeRun(root: string, id: string, fields: Record<string, unknown> = {}, metrics: unknown[] = []): string {
  const dir = path.join(root, id);
  fs.mkdirSync(dir, { recursive: true });
  const json = { id, kind: 'train', status: 'finished', created: `2026-01-01T00:00:0${id.length}Z`, updated: '', config: { method: 'uniform', steps: 100 }, seed: 0, parent: null, forkStep: null, ...fields };
  fs.writeFileSync(path.join(dir, 'run.json'), JSON.stringify(json));
  fs.writeFileSync(path.join(dir, 'metrics.jsonl'), metrics.map((line) => JSON.stringify(line) + '\n').join(''));
  return dir;
}

test('a run whose run.json says running but whose process is gone shows as interrupted, with the reason', async () => {
  const root = tmp('sift-index-');
  // A process that has exited: its pid is free (until reused).
  const gone = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  const deadPid = Number(gone.stdout);
  writeRun(root, 'orphan', { status: 'running', pid: deadPid }, [{ type: 'train', step: 42 }]);
  writeRun(root, 'alive', { status: 'running', pid: process.pid });
  writeRun(root, 'paused', { status: 'paused', pid: deadPid });
  const index = new RunIndex(root);
  await index.refresh();
  const byId = new Map(index.runs.map((run) => [run.id, run]));
  assert.equal(byId.get('orphan')?.status, 'interrupted');
  assert.match(byId.get('orphan')?.json?.error?.message ?? '', new RegExp(`pid ${deadPid}\\) ended without recording why, at step 42\\. Resume it`));
  assert.equal(byId.get('alive')?.status, 'running', 'its process lives');
  assert.equal(byId.get('paused')?.status, 'paused', 'a paused run has no process to wait for');
  assert.equal(JSON.parse(fs.readFileSync(path.join(root, 'orphan', 'run.json'), 'utf8')).status, 'running', 'the file is left as it is');
  // `sift runs` says the same.
  assert.deepEqual(listRuns(root).map((run) => [run.id, run.status]).sort(), [['alive', 'running'], ['orphan', 'interrupted'], ['paused', 'paused']]);
});

test('the index reads runs as a tree and only the metrics appended since the last refresh', async () => {
  const root = tmp('sift-index-');
  const parent = writeRun(root, 'p', {}, [{ type: 'train', step: 10 }, { type: 'eval', step: 10, i2t_r1: 0.3 }]);
  writeRun(root, 'child', { parent: 'p', forkStep: 10, status: 'paused' });
  fs.mkdirSync(path.join(root, 'not-a-run'));
  fs.mkdirSync(path.join(root, 'broken'));
  fs.writeFileSync(path.join(root, 'broken', 'run.json'), '{');
  const index = new RunIndex(root);
  await index.refresh();
  const names = index.flat().map((run) => `${run.id}:${run.status}:${run.step}`);
  assert.deepEqual(names.sort(), ['broken:unreadable:0', 'child:paused:10', 'p:finished:10'].sort());
  const p = index.runs.find((run) => run.id === 'p')!;
  assert.equal(p.children[0].id, 'child');
  assert.equal(p.bestI2tR1, 0.3);

  // A line written in two parts (a torn tail) is read once it is whole.
  fs.appendFileSync(path.join(parent, 'metrics.jsonl'), '{"type":"train","step":20}\n{"type":"eval","step":20,"i2t');
  await index.refresh();
  assert.equal(index.get(parent)?.step, 20);
  fs.appendFileSync(path.join(parent, 'metrics.jsonl'), '_r1":0.5}\n');
  await index.refresh();
  assert.equal(index.get(parent)?.bestI2tR1, 0.5);

  // A rewrite (resume drops lines past its checkpoint) is read again whole.
  fs.writeFileSync(path.join(parent, 'metrics.jsonl.tmp'), '{"type":"train","step":5}\n');
  fs.renameSync(path.join(parent, 'metrics.jsonl.tmp'), path.join(parent, 'metrics.jsonl'));
  await index.refresh();
  assert.equal(index.get(parent)?.step, 5);
  assert.equal(index.get(parent)?.bestI2tR1, undefined);

  // Concurrent refreshes fold into one more pass.
  await Promise.all([index.refresh(), index.refresh(), index.refresh()]);
  assert.equal(index.flat().length, 3);
});

test('Runs view nodes: live state over the record, icons, context values, branches under parents', async () => {
  const root = tmp('sift-nodes-');
  writeRun(root, 'p', { status: 'running' }, [{ type: 'train', step: 10 }]);
  writeRun(root, 'b', { parent: 'p', forkStep: 10, status: 'interrupted', error: { message: 'killed' } }, [{ type: 'train', step: 30 }]);
  const index = new RunIndex(root);
  await index.refresh();
  const { manager, workers } = fakeManager();
  manager.start({ kind: 'resume', runDir: path.join(root, 'p') }, { cwd: root });
  workers[0].status('paused', 12, { reason: 'requested', run: { id: 'p', dir: path.join(root, 'p'), parent: null, forkStep: null } });
  const extra = manager.start({ kind: 'new', config: { method: 'jest' } }, { cwd: root });
  workers[1].emit({ type: 'log', level: 'info', message: 'Caching reference embeddings', progress: { done: 1, total: 4 } });

  const nodes = runNodes(index.runs, manager.runs);
  const [p, fresh] = nodes;
  assert.equal(p.status, 'paused');
  assert.equal(p.contextValue, 'run.paused.live');
  assert.equal(p.step, 12);
  assert.equal(p.icon.id, 'debug-pause');
  assert.equal(p.children[0].contextValue, 'run.interrupted.disk');
  assert.match(p.children[0].description, /uniform · 30\/100 · from step 10 · interrupted/);
  assert.match(p.children[0].tooltip, /killed/);
  assert.match(fresh.description, /^jest · \d+\/\d+ · Caching reference embeddings$/, 'a run without a folder yet shows its stage after what it is');
  assert.equal(fresh.contextValue, 'run.starting.live');
  assert.deepEqual(flatten(nodes).map((n) => n.label), ['p', 'b', 'new run']);
  assert.deepEqual(flatten(nodes).map(isResumable), [true, true, false]);
  assert.ok(extra);
});

test('the status bar shows step, examples/s, ETA and backend; the stage while starting', () => {
  const { manager, workers } = fakeManager();
  const run = manager.start({ kind: 'new', config: {} }, { cwd: '/ws' });
  workers[0].emit({ type: 'log', level: 'info', message: 'Caching reference embeddings', progress: { done: 50, total: 200 } });
  assert.match(statusBarView(run, undefined).text, /Caching reference embeddings 25%/);
  workers[0].status('running', 0);
  workers[0].emit({ type: 'metrics', line: trainLine(50, 5) });
  const view = statusBarView(run, 'wasm');
  assert.equal(view.text, '$(sync~spin) Sift 50/100 · 80 ex/s · ETA 5s · wasm');
  assert.match(view.tooltip, /Click to open the dashboard/);
  workers[0].status('paused', 50, { reason: 'write-failed' });
  assert.match(statusBarView(run, 'wasm').tooltip, /write failed/);
});

test('the coalescer runs at once, then folds requests within the interval into one', async () => {
  let calls = 0;
  const coalescer = new Coalescer(() => calls++, 40);
  coalescer.request();
  assert.equal(calls, 1);
  for (let i = 0; i < 50; i++) coalescer.request();
  assert.equal(calls, 1);
  await new Promise((resolve) => setTimeout(resolve, 70));
  assert.equal(calls, 2);
  coalescer.request();
  coalescer.flush();
  assert.equal(calls, 3);
  coalescer.dispose();
});
