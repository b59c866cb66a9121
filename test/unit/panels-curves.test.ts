import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { appendLine, assignColors, bucketOf, bucketX, ChartDecimator, debiasedEma, emptyRunSeries, makeGrid, seriesOf, type RawSeries } from '../../src/panels/curves';
import { paletteSize } from '../../src/protocol/webview';
import type { EvalMetrics, TrainMetrics } from '../../src/core/runs/record';

const train = (step: number, loss: number, extra: Partial<TrainMetrics> = {}): TrainMetrics =>
  ({ type: 'train', step, examples_seen: step * 10, examples_scored: 0, flops: step * 100, flops_train: step * 50, flops_score: 0, flops_reference: 0, wall_s: step, active_s: step / 2, loss, ...extra }) as TrainMetrics;
const evalAt = (step: number, r1: number): EvalMetrics =>
  ({ type: 'eval', step, examples_seen: step * 10, flops: step * 100, flops_train: step * 50, wall_s: step, active_s: step / 2, i2t_r1: r1, i2t_r5: r1, t2i_r1: r1, t2i_r5: r1, eval_examples: 10, chance_r1: 0.1 }) as EvalMetrics;

describe('raw series', () => {
  test('train lines give the loss, eval lines the recalls; zero-shot only when recorded; non-finite values are left out', () => {
    const series = seriesOf([train(1, 2), train(2, NaN), evalAt(2, 0.5), { ...evalAt(4, 0.6), zeroshot_acc: 0.3 }, train(3, 1.5)]);
    assert.deepEqual(series.loss.step, [1, 3]);
    assert.deepEqual(series.loss.value, [2, 1.5]);
    assert.deepEqual(series.loss.examples_seen, [10, 30]);
    assert.deepEqual(series.i2t_r1.value, [0.5, 0.6]);
    assert.deepEqual(series.zeroshot_acc.step, [4]);
    assert.deepEqual(series.zeroshot_acc.flops_train, [200]);
    assert.deepEqual(series.distill_loss.value, [], 'no distillation term: no points');
  });

  test("a run that distils draws its distillation term from the train lines, beside the loss", () => {
    const series = seriesOf([train(1, 2, { distill_loss: 0.4 }), train(2, 1.8, { distill_loss: NaN }), evalAt(2, 0.5), train(3, 1.5, { distill_loss: 0.25 })]);
    assert.deepEqual(series.distill_loss.step, [1, 3]);
    assert.deepEqual(series.distill_loss.value, [0.4, 0.25]);
    assert.deepEqual(series.distill_loss.flops, [100, 300]);
    assert.deepEqual(appendLine(emptyRunSeries(), train(4, 1.4, { distill_loss: 0.2 })), ['loss', 'distill_loss']);
    assert.deepEqual(appendLine(emptyRunSeries(), train(5, 1.3, { distill_loss: 0.2, feature_loss: 0.1 })), ['loss', 'distill_loss', 'feature_loss']);
  });

  test('appendLine reports the metrics it added to', () => {
    const series = emptyRunSeries();
    assert.deepEqual(appendLine(series, train(1, 3)), ['loss']);
    assert.deepEqual(appendLine(series, evalAt(1, 0.2)), ['i2t_r1', 'i2t_r5', 't2i_r1', 't2i_r5']);
  });
});

describe('grid', () => {
  test('covers the data with one bucket per pixel, the top value in the last bucket', () => {
    const { grid, capacity } = makeGrid(0, 100, 10, false);
    assert.deepEqual(grid, { lo: 0, width: 10, log: false });
    assert.equal(capacity, 11);
    assert.equal(bucketOf(grid, 0), 0);
    assert.equal(bucketOf(grid, 99.9), 9);
    assert.equal(bucketOf(grid, 100), 10);
    assert.equal(bucketOf(grid, -1), -1);
    assert.equal(bucketX(grid, 0), 5);
  });

  test('log grids are even in log10(x) and draw at the geometric centre', () => {
    const { grid } = makeGrid(0, 4, 4, true);
    assert.equal(bucketX(grid, 0), 10 ** 0.5);
    assert.ok(Math.abs(bucketX(grid, 3) - 10 ** 3.5) < 1e-6);
  });

  test('headroom leaves spare buckets for a run that trains; a single point still gets a grid', () => {
    assert.equal(makeGrid(0, 100, 100, false, 0.25).capacity, 126);
    const single = makeGrid(5, 5, 100, false);
    assert.ok(single.grid.width > 0);
  });
});

/** Raw series of one metric from (x, value) pairs, x on every axis. */
function raw(points: [number, number][]): RawSeries {
  const xs = points.map(([x]) => x);
  return { step: xs, examples_seen: xs.map((x) => x * 10), flops: xs, flops_train: xs, wall_s: xs, active_s: xs, value: points.map(([, v]) => v) };
}

describe('ChartDecimator', () => {
  test('keeps min, max, last, mean and count per bucket on one grid shared by the runs', () => {
    const a = raw(Array.from({ length: 100 }, (_, i) => [i + 1, i % 10] as [number, number]));
    const b = raw([
      [50, 7],
      [200, 1],
    ]);
    const chart = ChartDecimator.build('loss', 'step', new Map([['a', a], ['b', b]]), { buckets: 20, log: false });
    const data = chart.data();
    assert.equal(data.grid.lo, 1);
    assert.ok(Math.abs(data.grid.width - 199 / 20) < 1e-12);
    assert.equal(data.count, 21);
    const [sa, sb] = data.series;
    assert.equal(sa.run, 'a');
    // Bucket 0 holds steps 1..10 of run a: values 0..9.
    assert.deepEqual([sa.min[0], sa.max[0], sa.last[0], sa.mean[0], sa.n[0]], [0, 9, 9, 4.5, 10]);
    assert.equal(sa.n.reduce((s, n) => s + n, 0), 100);
    assert.equal(sa.last[20], null);
    assert.deepEqual(sb.n.filter((n) => n > 0), [1, 1]);
    assert.equal(sb.last[20], 1);
  });

  test('runs without a point of the metric are left out', () => {
    const chart = ChartDecimator.build('i2t_r1', 'step', new Map([['a', raw([[1, 1]])], ['empty', raw([])]]), { buckets: 10, log: false });
    assert.deepEqual(chart.runIds, ['a']);
  });

  test('a live point updates its bucket and the patch starts there; one past the grid asks for a rebuild', () => {
    const chart = ChartDecimator.build('loss', 'step', new Map([['a', raw([[0, 1], [100, 2]])]]), { buckets: 10, log: false, headroom: 0.5 });
    chart.data();
    assert.equal(chart.patch(), undefined);
    assert.equal(chart.add('a', 105, 0.5), true);
    assert.equal(chart.add('a', 109, 0.25), true);
    const patch = chart.patch()!;
    assert.equal(patch.from, 10);
    assert.equal(patch.count, 11);
    assert.deepEqual(patch.series[0].min, [0.25]);
    assert.deepEqual(patch.series[0].max, [2]);
    assert.deepEqual(patch.series[0].last, [0.25]);
    assert.deepEqual(patch.series[0].n, [3]);
    assert.equal(chart.patch(), undefined);
    assert.equal(chart.add('a', 10_000, 1), false, 'past the headroom');
    assert.equal(chart.add('other', 5, 1), false, 'a run new to the chart');
  });

  test('a log axis leaves out x ≤ 0', () => {
    const chart = ChartDecimator.build('loss', 'flops', new Map([['a', raw([[0, 9], [1, 1], [10, 2], [100, 3]])]]), { buckets: 2, log: true });
    const data = chart.data();
    assert.equal(data.series[0].n.reduce((s, n) => s + n, 0), 3);
    assert.equal(chart.add('a', 0, 5), true, 'dropped, not a rebuild');
  });

  test('decimating 100k points per run for five runs stays cheap', () => {
    const runs = new Map<string, RawSeries>();
    for (let r = 0; r < 5; r++) runs.set(`r${r}`, raw(Array.from({ length: 100_000 }, (_, i) => [i + 1, Math.sin(i / 100) + r] as [number, number])));
    const chart = ChartDecimator.build('loss', 'step', runs, { buckets: 1000, log: false });
    const data = chart.data();
    assert.equal(data.count, 1001);
    for (const series of data.series) assert.equal(series.n.reduce((s, n) => s + n, 0), 100_000);
  });
});

describe('assignColors', () => {
  test('new runs take the lowest free slots; a run keeps its slot when others come and go', () => {
    const first = assignColors(['a', 'b', 'c']);
    assert.deepEqual([...first.values()], [0, 1, 2]);
    const second = assignColors(['c', 'd'], first);
    assert.equal(second.get('c'), 2);
    assert.equal(second.get('d'), 0);
    const many = assignColors(Array.from({ length: paletteSize + 2 }, (_, i) => `run${i}`));
    assert.equal(new Set(many.values()).size, paletteSize);
  });
});

describe('debiasedEma', () => {
  test('starts at the first value (debiased) and is the identity without smoothing', () => {
    assert.deepEqual(debiasedEma([4, 2], 0), [4, 2]);
    const smoothed = debiasedEma([4, 2, null, 2], 0.5);
    assert.equal(smoothed[0], 4);
    assert.ok(Math.abs(smoothed[1]! - (0.5 * 0.5 * 4 + 0.5 * 2) / 0.75) < 1e-12);
    assert.equal(smoothed[2], null);
  });

  test('a bucket of n equal points weighs as those n points', () => {
    const rawValues = [1, 1, 1, 5, 5, 2];
    const expanded = debiasedEma(rawValues, 0.9);
    const bucketed = debiasedEma([1, 5, 2], 0.9, [3, 2, 1]);
    assert.ok(Math.abs(expanded[2]! - bucketed[0]!) < 1e-12);
    assert.ok(Math.abs(expanded[4]! - bucketed[1]!) < 1e-12);
    assert.ok(Math.abs(expanded[5]! - bucketed[2]!) < 1e-12);
  });
});


