import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, test } from 'node:test';
import { Rng } from '../../src/core/random';
import type { MetricLine, SelectionLine } from '../../src/core/runs/record';
import { DashboardModel } from '../../src/panels/dashboard';
import { HeatmapBuilder } from '../../src/panels/heatmap';
import { examplesToReach, reachRow } from '../../src/panels/reach';
import { joinedMetrics, joinedSelections, lineageOf, parentDir } from '../../src/panels/runs';
import { seriesOf } from '../../src/panels/curves';
import { defaultDashboardView, parseDashboardHostMessage, type DashboardHostMessage, type DashboardView } from '../../src/protocol/webview';
import { evalLine, tmpDir, trainLine, writeFixtureRun, writeFixtureRuns } from './panels-fixtures';

const view = (patch: Partial<DashboardView> = {}): DashboardView => ({ ...defaultDashboardView, buckets: 200, ...patch });

/** Every message a model sends must pass the webview's validation. */
function valid(message: DashboardHostMessage): DashboardHostMessage {
  const parsed = parseDashboardHostMessage(JSON.parse(JSON.stringify(message)));
  assert.ok(parsed.ok, parsed.ok ? '' : parsed.problem);
  return message;
}

const ofType = <T extends DashboardHostMessage['type']>(messages: DashboardHostMessage[], type: T) => messages.find((m) => m.type === type) as Extract<DashboardHostMessage, { type: T }> | undefined;

describe('runs and lineage', () => {
  test("a branch's history is its parent's lines up to the fork step, then its own", async () => {
    const root = tmpDir();
    writeFixtureRun(root, { id: 'parent', method: 'jest', steps: 100, pace: 1 });
    const branch = writeFixtureRun(root, { id: 'branch', method: 'jest', filterRatio: 0.9, steps: 150, pace: 1.5, parent: { id: 'parent', forkStep: 40 } });
    const chain = lineageOf(branch);
    assert.deepEqual(chain.map((link) => [link.json.id, link.throughStep]), [['parent', 40], ['branch', Infinity]]);
    const lines = (await joinedMetrics(chain)).filter((line) => line.type === 'train');
    assert.deepEqual([lines[0].step, lines[39].step, lines[40].step, lines[lines.length - 1].step], [1, 40, 41, 150]);
    assert.equal(lines.length, 150);
    // The branch continues the parent's counters.
    assert.equal(lines[40].examples_seen, lines[39].examples_seen + 16);
    assert.equal((await joinedSelections(chain)).length, 150);
  });

  test('the parent is found beside the branch even without checkpointUsed; a missing parent ends the chain', () => {
    const root = tmpDir();
    writeFixtureRun(root, { id: 'p', method: 'uniform', steps: 10, pace: 1 });
    const dir = writeFixtureRun(root, { id: 'b', method: 'uniform', steps: 20, pace: 1, parent: { id: 'p', forkStep: 5 } });
    const json = JSON.parse(fs.readFileSync(path.join(dir, 'run.json'), 'utf8'));
    delete json.checkpointUsed;
    fs.writeFileSync(path.join(dir, 'run.json'), JSON.stringify(json));
    assert.equal(parentDir(dir, json), path.join(root, 'p'));
    fs.rmSync(path.join(root, 'p'), { recursive: true });
    assert.equal(lineageOf(dir).length, 1);
  });

  test('a torn last line is skipped, and a step written twice (a resume) keeps its newest line', async () => {
    const root = tmpDir();
    const dir = writeFixtureRun(root, { id: 'r', method: 'uniform', steps: 10, pace: 1 });
    const file = path.join(dir, 'metrics.jsonl');
    const rewritten = { ...JSON.parse(fs.readFileSync(file, 'utf8').split('\n')[0]), loss: 42 };
    fs.appendFileSync(file, JSON.stringify(rewritten) + '\n{"type":"train","st');
    const lines = (await joinedMetrics(lineageOf(dir))).filter((line) => line.type === 'train');
    assert.equal(lines.length, 10);
    assert.equal((lines[0] as { loss: number }).loss, 42);
  });
});

describe('heatmap', () => {
  const line = (step: number, lo: number, hi: number, counts: number[], learnability: number[]): SelectionLine => ({ step, ids: learnability.map(String), learnability, pool_hist: { lo, hi, counts } });

  test('rebins every step onto one score grid, each column a distribution; picks beside the pool', () => {
    const builder = new HeatmapBuilder();
    assert.equal(builder.add({ step: 1, ids: ['1'] }), false, 'uniform lines carry no scores');
    builder.add(line(1, 0, 1, [2, 2], [0.9]));
    builder.add(line(2, -1, 1, [1, 1, 1, 1], [0.1, -0.9]));
    const heatmap = builder.build('r', { rows: 4, columns: 10 })!;
    assert.equal(heatmap.stepLo.length, 2);
    assert.deepEqual([heatmap.scoreLo, heatmap.scoreHi], [-1, 1]);
    // Step 1: all its mass in the upper half (rows 2, 3), evenly.
    assert.deepEqual(heatmap.pool.slice(0, 4), [0, 0, 0.5, 0.5]);
    assert.deepEqual(heatmap.pool.slice(4, 8), [0.25, 0.25, 0.25, 0.25]);
    assert.deepEqual(heatmap.selected.slice(0, 4), [0, 0, 0, 1]);
    assert.deepEqual(heatmap.selected.slice(4, 8), [0.5, 0, 0.5, 0]);
  });

  test('pools steps into at most `columns` columns; a line at an earlier step (a resume) replaces from there', () => {
    const builder = new HeatmapBuilder();
    for (let step = 1; step <= 100; step++) builder.add(line(step, 0, 1, [1], [0.5]));
    const heatmap = builder.build('r', { rows: 2, columns: 10 })!;
    assert.equal(heatmap.stepLo.length, 10);
    assert.deepEqual([heatmap.stepLo[0], heatmap.stepHi[0], heatmap.stepHi[9]], [1, 10, 100]);
    builder.add(line(51, 0, 1, [1], [0.5]));
    assert.equal(builder.size, 51);
    assert.equal(new HeatmapBuilder().build('r'), null);
  });
});

describe('examples to reach', () => {
  const lines: MetricLine[] = [evalLine(10, { pace: 1, steps: 100 }, counters(160)), evalLine(20, { pace: 1, steps: 100 }, counters(320)), evalLine(30, { pace: 1, steps: 100 }, counters(480))];
  function counters(examples: number) {
    return { examples_seen: examples, examples_scored: 0, flops_train: examples * 9e6, flops_score: 0, flops_reference: 0, wall_s: examples / 10, active_s: examples / 20 };
  }

  test('the first point at or above the target, with every x there; not reached shows the best so far', () => {
    const series = seriesOf(lines).i2t_r1;
    const target = series.value[1];
    const row = reachRow('a', 'i2t_r1', series, target, 0);
    assert.deepEqual([row.reached, row.step, row.examples_seen, row.active_s], [true, 20, 320, 16]);
    const missed = reachRow('a', 'i2t_r1', series, 0.99, 0);
    assert.deepEqual([missed.reached, missed.best], [false, series.value[2]]);
  });

  test("without a target, the baseline's final value; the loss reaches downwards, on the smoothed curve", () => {
    const fast = seriesOf(lines).i2t_r1;
    const slow = { ...fast, value: fast.value.map((v) => v / 2) };
    const result = examplesToReach([{ id: 'slow', series: slow }, { id: 'fast', series: fast }], 'i2t_r1', null, { baseline: 'slow', smoothing: 0 })!;
    assert.equal(result.fromBaseline, true);
    assert.equal(result.target, slow.value[2]);
    assert.equal(result.rows[1].step, 20);
    const loss = seriesOf([1, 2, 3, 4].map((step) => trainLine(step, { method: 'uniform', pace: 1, steps: 4 }, counters(0), 16, 16, new Rng(step))));
    loss.loss.value = [3, 0.5, 3, 0.4];
    assert.equal(reachRow('l', 'loss', loss.loss, 1, 0).step, 2, 'raw: the noisy dip counts');
    assert.equal(reachRow('l', 'loss', loss.loss, 1, 0.3).reached, false, 'smoothed: it does not');
    assert.equal(examplesToReach([], 'loss', null, { baseline: null, smoothing: 0 }), null);
  });
});

describe('DashboardModel', () => {
  const root = tmpDir();
  const dirs = writeFixtureRuns(root, 300);

  test('the snapshot carries every run, one chart per metric on a shared grid, a heatmap and examples-to-reach', async () => {
    const model = new DashboardModel();
    for (const dir of dirs) await model.addRun(dir);
    const snapshot = valid(await model.snapshot(view())) as Extract<DashboardHostMessage, { type: 'snapshot' }>;
    const { runs, charts, heatmap, reach } = snapshot.payload;
    assert.deepEqual(runs.map((r) => [r.id, r.color]), [['uniform', 0], ['jest-f80', 1], ['jest-f50', 2], ['independent', 3], ['jest-f90-branch', 4]]);
    assert.deepEqual(charts.map((c) => c.metric), ['loss', 'i2t_r1', 'i2t_r5', 't2i_r1', 't2i_r5', 'zeroshot_acc']);
    const loss = charts[0];
    assert.equal(loss.series.length, 5);
    assert.ok(loss.count <= 201);
    for (const series of loss.series) assert.equal(series.n.reduce((s, n) => s + n, 0), 300, `${series.run}: every step once (a branch: its parent's 150, then its own)`);
    assert.equal(heatmap?.run, 'jest-f80', 'the first run that scores its batches');
    assert.equal(reach?.metric, 'i2t_r1');
    assert.equal(reach?.rows.length, 5);
  });

  test('a view change re-sends only what depends on it', async () => {
    const model = new DashboardModel();
    for (const dir of dirs) await model.addRun(dir);
    await model.snapshot(view());
    assert.deepEqual(await model.setView(view({ smoothing: 0.9 })), [], 'smoothing is drawn in the webview');
    const axis = (await model.setView(view({ smoothing: 0.9, xAxis: 'flops', logX: true }))).map(valid);
    assert.deepEqual(axis.map((m) => m.type), ['charts']);
    const charts = ofType(axis, 'charts')!.payload;
    assert.equal(charts.xAxis, 'flops');
    assert.equal(charts.charts[0].grid.log, true);
    const hidden = (await model.setView(view({ smoothing: 0.9, xAxis: 'flops', logX: true, hidden: ['uniform'] }))).map(valid);
    assert.deepEqual(hidden.map((m) => m.type), ['charts', 'reach']);
    assert.equal(ofType(hidden, 'charts')!.payload.charts[0].series.length, 4);
    const heat = (await model.setView(view({ smoothing: 0.9, xAxis: 'flops', logX: true, hidden: ['uniform'], heatmapRun: 'jest-f50' }))).map(valid);
    assert.equal(ofType(heat, 'heatmap')!.payload.heatmap?.run, 'jest-f50');
    const loss = (await model.setView(view({ smoothing: 0.9, xAxis: 'flops', logX: true, hidden: ['uniform'], heatmapRun: 'jest-f50', reach: { metric: 'loss', target: 2 } }))).map(valid);
    assert.deepEqual(loss.map((m) => m.type), ['reach']);
    assert.equal(ofType(loss, 'reach')!.payload?.target, 2);
  });

  test('live lines become patches of the buckets they touched; status changes update the runs', async () => {
    const liveRoot = tmpDir();
    const dir = writeFixtureRun(liveRoot, { id: 'live', method: 'jest', steps: 400, pace: 1, status: 'running' });
    const model = new DashboardModel({ heatmapIntervalMs: 0 });
    await model.addRun(dir);
    // Against steps: the appended lines below repeat the same counters, so only the step moves.
    const snapshot = (await model.snapshot(view({ heatmapRun: 'live', xAxis: 'step' }))) as Extract<DashboardHostMessage, { type: 'snapshot' }>;
    const lossCount = snapshot.payload.charts[0].count;
    assert.deepEqual(model.flush(), []);
    const counters = { examples_seen: 3200, examples_scored: 16000, flops_train: 0, flops_score: 0, flops_reference: 0, wall_s: 30, active_s: 30 };
    const rng = new Rng(3);
    model.appendMetric('live', trainLine(201, { method: 'jest', pace: 1, steps: 400 }, counters, 16, 80, rng));
    model.appendSelection('live', { step: 201, ids: ['1'], learnability: [0.1], pool_hist: { lo: -1, hi: 1, counts: [1, 1] } });
    const messages = model.flush().map(valid);
    const delta = ofType(messages, 'delta')!.payload;
    assert.equal(delta.runs?.[0].step, 201);
    const patch = delta.patches.find((p) => p.metric === 'loss')!;
    assert.ok(patch.from >= lossCount - 1 && patch.count >= patch.from + 1);
    assert.equal(ofType(messages, 'heatmap')!.payload.heatmap!.stepHi.at(-1), 201);
    model.updateRun('live', { status: 'finished' });
    assert.equal(ofType(model.flush(), 'delta')!.payload.runs?.[0].status, 'finished');
    // Far past the grid's headroom: the chart is redone whole.
    for (let step = 202; step <= 2000; step++) model.appendMetric('live', trainLine(step, { method: 'jest', pace: 1, steps: 400 }, counters, 16, 80, rng));
    const replaced = ofType(model.flush().map(valid), 'delta')!.payload;
    assert.equal(replaced.charts?.[0].metric, 'loss');
    assert.equal(replaced.charts![0].series[0].n.reduce((s, n) => s + n, 0), 2000);
    model.appendMetric('live', evalLine(2000, { pace: 1, steps: 400 }, counters));
    assert.ok(ofType(model.flush(), 'reach'));
  });

  test('a resumed run that writes a step again drops what lay past it', async () => {
    const liveRoot = tmpDir();
    const dir = writeFixtureRun(liveRoot, { id: 'again', method: 'uniform', steps: 100, pace: 1 });
    const model = new DashboardModel();
    await model.addRun(dir);
    await model.snapshot(view());
    const kept = fs.readFileSync(path.join(dir, 'metrics.jsonl'), 'utf8').split('\n').filter((l) => l && JSON.parse(l).step <= 50);
    fs.writeFileSync(path.join(dir, 'metrics.jsonl'), kept.join('\n') + '\n');
    model.appendMetric('again', JSON.parse(kept.filter((l) => JSON.parse(l).type === 'train').at(-1)!));
    const delta = ofType(model.flush().map(valid), 'delta')!.payload;
    assert.equal(delta.charts?.[0].series[0].n.reduce((s, n) => s + n, 0), 50);
  });

  test('what a worker reports while its run is being read is kept: new lines once, lines already read not twice, the status', async () => {
    const dir = writeFixtureRun(tmpDir(), { id: 'opening', method: 'uniform', steps: 100, pace: 1, status: 'running' });
    const written = fs.readFileSync(path.join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as MetricLine);
    const trains = written.filter((line) => line.type === 'train');
    const last = trains.at(-1)!;
    const model = new DashboardModel();
    const adding = model.addRun(dir);
    assert.ok(model.has('opening'), 'its events are taken while it loads');
    // The last line written (the read gets it too), then one written after the read passed: as a worker sends them.
    model.appendMetric('opening', last);
    model.appendMetric('opening', { ...last, step: last.step + 1, wall_s: last.wall_s + 1 });
    model.updateRun('opening', { status: 'finished' });
    await adding;
    const snapshot = valid(await model.snapshot(view())) as Extract<DashboardHostMessage, { type: 'snapshot' }>;
    const loss = snapshot.payload.charts.find((chart) => chart.metric === 'loss')!;
    assert.equal(loss.series[0].n.reduce((sum, n) => sum + n, 0), trains.length + 1);
    assert.equal(snapshot.payload.runs[0].status, 'finished');
    assert.equal(snapshot.payload.runs[0].step, last.step + 1);
  });

  test('a folder without a run is refused with a message', async () => {
    await assert.rejects(() => new DashboardModel().addRun(tmpDir()), /holds no run/);
  });
});
