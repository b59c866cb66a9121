/**
 * What a notebook saves and what its renderer is sent: run folders saved
 * relative to the notebook, "@label"s found in the cells above, and the
 * output host's snapshot, live deltas (only the charts an output shows),
 * thumbnail strip and forgetting, on fixture runs.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readRunJson } from '../../src/core/runs/record';
import { Rng } from '../../src/core/random';
import type { LiveRun, ManagerEvent } from '../../src/extension/runManager';
import { NotebookOutputHost, type LiveRuns } from '../../src/notebook/outputHost';
import { labelledRuns, labelOf, lastLines, runOutput, savedDir } from '../../src/notebook/outputs';
import { ThumbnailService } from '../../src/panels/thumbnails';
import { notebookProtocolVersion, parseNotebookHostMessage, parseRunOutput, type NotebookHostMessage, type RunOutputData } from '../../src/protocol/notebook';
import { tmpDir, trainLine, writeFixtureRun } from './panels-fixtures';

const thumbnails = new ThumbnailService();
after(() => thumbnails.close());

const root = tmpDir('sift-notebook-outputs-');
const runsDir = path.join(root, '.sift', 'runs');
writeFixtureRun(runsDir, { id: 'uniform', method: 'uniform', steps: 60, pace: 1 });
writeFixtureRun(runsDir, { id: 'live', method: 'jest', steps: 60, pace: 1.8, status: 'running' });

test('run folders are saved relative to the notebook; labels come from the nearest earlier cell that ran', () => {
  assert.equal(savedDir(path.join(root, '.sift', 'runs', 'a'), path.join(root, 'notebooks')), '../.sift/runs/a');
  assert.equal(savedDir(root, root), '.');
  assert.equal(labelOf('{"label": "ref", "steps": 3'), undefined, 'broken JSON has no label');
  assert.equal(labelOf('{"label": "ref", "batchSzie": 3}'), 'ref', 'a cell with a bad setting still names its label');
  const output = (id: string) => runOutput(path.join(runsDir, id), readRunJson(path.join(runsDir, id)), { cell: 'run', notebookDir: root });
  const runs = labelledRuns(
    [
      { source: '{"label": "a"}', outputs: [output('uniform')] },
      { source: '{"label": "b"}', outputs: [] },
      { source: '{"label": "a"}', outputs: [output('live')] },
      { source: '{"compare": ["@a"]}', outputs: [] },
    ],
    root,
  );
  assert.deepEqual([...runs], [['a', path.join(runsDir, 'live')]]);
  const data = output('uniform').data as RunOutputData;
  assert.ok(parseRunOutput(data).ok);
  assert.equal(data.dir, '.sift/runs/uniform');
  assert.deepEqual(Object.keys(data.summary.metrics), ['i2t_r1', 'i2t_r5', 't2i_r1', 't2i_r5', 'zeroshot_acc']);
});

class FakeRuns implements LiveRuns {
  readonly live = new Map<string, LiveRun>();
  readonly listeners = new Set<(event: ManagerEvent) => void>();
  onEvent(listener: (event: ManagerEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
  find(dir: string): LiveRun | undefined {
    return this.live.get(dir);
  }
  emit(event: ManagerEvent): void {
    for (const listener of this.listeners) listener(event);
  }
}

test('the newest train and eval lines are read from the end of a long log, a line being written skipped', () => {
  const dir = tmpDir();
  const train = (step: number): string => JSON.stringify({ type: 'train', step, loss: 1 / step, padding: 'x'.repeat(200) });
  const evalAt = (step: number): string => JSON.stringify({ type: 'eval', step, i2t_r1: step / 1e4 });
  // One eval, then 2,000 train lines (about 450 KB) after it: the eval lies several 64 KiB blocks back.
  const lines = [train(1), evalAt(1), ...Array.from({ length: 2000 }, (_, i) => train(i + 2))];
  fs.writeFileSync(path.join(dir, 'metrics.jsonl'), `${lines.join('\n')}\n{"type":"train","step":2002,"lo`);
  const last = lastLines(dir);
  assert.equal(last.train?.step, 2001);
  assert.equal(last.eval?.step, 1);
  assert.deepEqual(lastLines(tmpDir()), {}, 'no log yet');
});

test('the output host: a snapshot of the charts asked for, live deltas while the run trains, the last batch, then nothing once forgotten', async () => {
  const runs = new FakeRuns();
  const sent: { target: string; message: NotebookHostMessage }[] = [];
  const host = new NotebookOutputHost<string>(
    (target, message) => {
      const parsed = parseNotebookHostMessage(JSON.parse(JSON.stringify(message)));
      assert.ok(parsed.ok, parsed.ok ? '' : parsed.problem);
      sent.push({ target, message });
    },
    { runs, thumbnails, baseDirs: () => [], flushMs: 10_000, batchIntervalMs: 0 },
  );
  const dir = path.join(runsDir, 'live');
  const run: LiveRun = { key: 1, request: { kind: 'resume', runDir: dir }, cwd: root, state: 'running', step: 30, totalSteps: 60, run: { id: 'live', dir, parent: null, forkStep: null } };
  runs.live.set(dir, run);

  await host.watch('editor-1', root, { protocol: notebookProtocolVersion, key: 'out-1', dirs: ['.sift/runs/live', '.sift/runs/missing'], metrics: ['loss'], buckets: 200, batch: true });
  const snapshot = sent.find((s) => s.message.type === 'snapshot')!.message as Extract<NotebookHostMessage, { type: 'snapshot' }>;
  assert.deepEqual(snapshot.payload.charts.map((c) => c.metric), ['loss'], 'only the charts the output shows');
  assert.equal(snapshot.payload.live, true);
  assert.match(snapshot.payload.problem ?? '', /^\.sift\/runs\/missing: .*holds no run.*Run the cell again\.\)$/);
  const batch = sent.find((s) => s.message.type === 'batch')?.message as Extract<NotebookHostMessage, { type: 'batch' }>;
  assert.ok(batch, 'the strip of the last batch');
  assert.equal(batch.payload.batch.step, 30);
  assert.equal(batch.payload.batch.pairs.length, 16);
  assert.ok(batch.payload.batch.pairs.every((pair) => pair.uri?.startsWith('data:image/png;base64,') && pair.caption.length > 0));

  // The worker's next steps: one delta with the loss patch and the runs' step; no recall chart (not asked for).
  sent.length = 0;
  const counters = { examples_seen: 480, examples_scored: 2400, flops_train: 1, flops_score: 1, flops_reference: 1, wall_s: 10, active_s: 10 };
  const rng = new Rng(3);
  for (let step = 31; step <= 35; step++) {
    run.step = step;
    runs.emit({ type: 'worker', run, event: { type: 'metrics', line: trainLine(step, { method: 'jest', pace: 1.8, steps: 60 }, counters, 16, 80, rng) } });
    runs.emit({ type: 'changed', run });
  }
  runs.emit({ type: 'worker', run, event: { type: 'selection', line: { step: 35, ids: ['1', '2', '3'] } } });
  host.flush();
  const delta = sent.find((s) => s.message.type === 'delta')?.message as Extract<NotebookHostMessage, { type: 'delta' }>;
  assert.ok(delta, JSON.stringify(sent.map((s) => s.message.type)));
  assert.ok(delta.payload.patches.every((p) => p.metric === 'loss') && delta.payload.patches.length + (delta.payload.charts?.length ?? 0) > 0);
  assert.equal(delta.payload.runs?.[0].step, 35);
  await new Promise((resolve) => setTimeout(resolve, 200));
  const strip = sent.filter((s) => s.message.type === 'batch').at(-1)?.message as Extract<NotebookHostMessage, { type: 'batch' }>;
  assert.equal(strip?.payload.batch.step, 35, 'a new strip as the run trains');

  // The run ends, the editor goes away: nothing more is sent for it.
  runs.live.delete(dir);
  run.state = 'finished';
  runs.emit({ type: 'exited', run });
  host.forget('editor-1');
  sent.length = 0;
  runs.emit({ type: 'worker', run, event: { type: 'metrics', line: trainLine(36, { method: 'jest', pace: 1.8, steps: 60 }, counters, 16, 80, rng) } });
  host.flush();
  assert.deepEqual(sent, []);
  assert.deepEqual(host.targets, []);
  host.dispose();
});
