import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../src/core/random';
import { diagonal, histogram, scoreMatrix, spearman, type SquareMatrix } from '../../src/core/selection/scores';
import { batchMateTerms, chunkSizes, gumbelTopK, pairwiseScorer, selectIndependent, selectJoint, softmaxScorer } from '../../src/core/selection/selectors';

function matrix(size: number, at: (i: number, j: number) => number): SquareMatrix {
  const values = new Float32Array(size * size);
  for (let i = 0; i < size; i++) for (let j = 0; j < size; j++) values[i * size + j] = at(i, j);
  return { size, values };
}

test('learnability is learner minus reference loss, per pair, on hand values', () => {
  const learner = { size: 2, values: new Float32Array([3, 1, 0.5, 2]) };
  const reference = { size: 2, values: new Float32Array([1, 1.5, 0.25, 4]) };
  assert.deepEqual([...scoreMatrix('learnability', learner, reference).values], [2, -0.5, 0.25, -2]);
  assert.deepEqual([...scoreMatrix('hard-learner', learner, reference).values], [3, 1, 0.5, 2]);
  assert.deepEqual([...scoreMatrix('easy-reference', learner, reference).values], [-1, -1.5, -0.25, -4]);
  assert.deepEqual([...scoreMatrix('learnability', learner, reference, 0.5).values], [0.5, -1, 0, -3], 'w · learner − reference');
  assert.deepEqual([...scoreMatrix('learnability', undefined, reference, 0).values], [-1, -1.5, -0.25, -4], 'w = 0 needs no learner matrix');
  assert.deepEqual([...diagonal(learner)], [3, 2]);
});

test('joint selection draws exactly b distinct candidates, deterministically for a seed', () => {
  const rng = new Rng(1);
  const scores = matrix(50, () => rng.normal());
  const run = (seed: number) => selectJoint(pairwiseScorer(scores), { count: 16, chunks: 4, normalization: 'sum', temperature: 1 }, new Rng(seed));
  const a = run(7);
  assert.equal(a.picked.length, 16);
  assert.equal(new Set(a.picked).size, 16);
  assert.ok(a.picked.every((p) => p >= 0 && p < 50));
  assert.deepEqual(run(7), a);
  assert.notDeepEqual(run(8).picked, a.picked);
  assert.deepEqual(chunkSizes(10, 4), [3, 3, 2, 2]);
});

test('masked candidates are never picked', () => {
  const masked = new Uint8Array(20);
  for (let k = 0; k < 20; k += 2) masked[k] = 1;
  const logits = Float32Array.from({ length: 20 }, (_, k) => (k % 2 === 0 ? 100 : 0)); // masked ones look best
  for (let seed = 0; seed < 20; seed++) {
    const drawn = gumbelTopK(logits, 10, masked, 1, new Rng(seed));
    assert.ok(drawn.every((k) => k % 2 === 1));
  }
});

test('a planted cluster of mutual hard negatives: joint selection finds it, independent selection does not', () => {
  // 64 candidates: 10 with a high own score, 38 ordinary, and 16 (the last ones) whose own
  // score is ordinary but whose pairwise scores with each other are high.
  const size = 64;
  const inCluster = (i: number): boolean => i >= 48;
  const scores = matrix(size, (i, j) => {
    if (i === j) return i < 10 ? 1.5 : 0.5;
    return inCluster(i) && inCluster(j) ? 3 : 0;
  });
  const independent = selectIndependent(diagonal(scores), 16);
  assert.equal(independent.picked.filter(inCluster).length, 0);
  let clusterShare = 0;
  const seeds = 20;
  for (let seed = 0; seed < seeds; seed++) {
    const joint = selectJoint(pairwiseScorer(scores), { count: 16, chunks: 8, normalization: 'sum', temperature: 1 }, new Rng(seed));
    clusterShare += joint.picked.filter(inCluster).length / 16 / seeds;
  }
  assert.ok(clusterShare > 0.6, `joint picked ${(100 * clusterShare).toFixed(0)}% cluster members`);
});

test('pairwise gains equal the change in the batch score sum', () => {
  const rng = new Rng(3);
  const scores = matrix(12, () => rng.normal());
  const scorer = pairwiseScorer(scores);
  const chosen = [2, 5, 7];
  for (const c of chosen) scorer.choose(c);
  const batchScore = (set: number[]): number => set.reduce((sum, i) => sum + set.reduce((s, j) => s + scores.values[i * 12 + j], 0), 0);
  const { gains, terms } = scorer.conditional();
  assert.equal(terms, 7);
  for (const k of [0, 3, 11]) assert.ok(Math.abs(gains[k] - (batchScore([...chosen, k]) - batchScore(chosen))) < 1e-4);
});

test('batch-mate terms add up to each pick logit: own score, the largest terms by name, the rest as one sum', () => {
  const rng = new Rng(5);
  const scores = matrix(40, () => rng.normal());
  const selection = selectJoint(pairwiseScorer(scores), { count: 16, chunks: 4, normalization: 'sum', temperature: 1 }, new Rng(6));
  const terms = batchMateTerms(scores, selection.picked, chunkSizes(16, 4), 3);
  assert.equal(terms.length, 16);
  terms.forEach((entry, p) => {
    const drawnBefore = Math.floor(p / 4) * 4;
    assert.equal(entry.from.length, Math.min(3, drawnBefore), `pick ${p}`);
    assert.equal(entry.rest !== undefined, drawnBefore > 3);
    const k = selection.picked[p];
    assert.equal(entry.own, scores.values[k * 40 + k]);
    for (const [m, term] of entry.from) {
      assert.ok(m < drawnBefore, 'only batch-mates of earlier chunks');
      const i = selection.picked[m];
      assert.ok(Math.abs(term - (scores.values[i * 40 + k] + scores.values[k * 40 + i])) < 1e-6);
    }
    const magnitudes = entry.from.map(([, term]) => Math.abs(term));
    assert.deepEqual(magnitudes, [...magnitudes].sort((a, b) => b - a), 'largest first');
    const total = entry.own + entry.from.reduce((sum, [, term]) => sum + term, 0) + (entry.rest ?? 0);
    assert.ok(Math.abs(total - selection.pickLogit[p]) < 1e-4, `pick ${p}: ${total} vs ${selection.pickLogit[p]}`);
  });
});

test('softmax gains equal the change in the sub-batch CLIP loss, learner minus reference', () => {
  const rng = new Rng(4);
  const learner = matrix(10, () => 3 * rng.normal());
  const reference = matrix(10, () => 3 * rng.normal());
  const clipLoss = (logits: SquareMatrix, set: number[]): number =>
    set.reduce((sum, i) => {
      const row = Math.log(set.reduce((s, j) => s + Math.exp(logits.values[i * 10 + j]), 0));
      const column = Math.log(set.reduce((s, j) => s + Math.exp(logits.values[j * 10 + i]), 0));
      const diag = logits.values[i * 10 + i];
      return sum + 0.5 * (row - diag + (column - diag));
    }, 0);
  const scorer = softmaxScorer(
    [
      { logits: learner, sign: 1 },
      { logits: reference, sign: -1 },
    ],
    new Float32Array(10),
  );
  const chosen = [1, 4, 8];
  for (const c of chosen) scorer.choose(c);
  const { gains } = scorer.conditional();
  for (const k of [0, 5, 9]) {
    const expected = clipLoss(learner, [...chosen, k]) - clipLoss(learner, chosen) - (clipLoss(reference, [...chosen, k]) - clipLoss(reference, chosen));
    assert.ok(Math.abs(gains[k] - expected) < 1e-3, `k=${k}: ${gains[k]} vs ${expected}`);
  }
});

test('histograms cover the range with the given bins', () => {
  const h = histogram([0, 1, 2, 3, 4], 4);
  assert.equal(h.lo, 0);
  assert.equal(h.hi, 4);
  assert.deepEqual(h.counts, [1, 1, 1, 2]);
});

test('spearman: 1 for the same order, -1 for the reverse, ties by average rank', () => {
  assert.equal(spearman([1, 2, 3, 4], [10, 20, 30, 40]), 1);
  assert.equal(spearman([1, 2, 3, 4], [4, 3, 2, 1]), -1);
  assert.ok(Math.abs(spearman([1, 2, 2, 3], [1, 2, 3, 4]) - 0.9486832980505138) < 1e-12);
  assert.ok(Number.isNaN(spearman([1, 1, 1], [1, 2, 3])));
});

test('excluded candidates are never drawn, jointly or independently', () => {
  const size = 12;
  const values = new Float32Array(size * size).map((_, i) => Math.sin(i));
  const exclude = new Uint8Array(size);
  [0, 3, 5, 7].forEach((i) => (exclude[i] = 1));
  // Give the excluded ones the best own scores: they would be drawn first otherwise.
  [0, 3, 5, 7].forEach((i) => (values[i * size + i] = 50));
  const joint = selectJoint(pairwiseScorer({ size, values }), { count: 8, chunks: 4, normalization: 'sum', temperature: 1, exclude }, new Rng(1));
  assert.equal(joint.picked.length, 8);
  assert.ok(joint.picked.every((p) => !exclude[p]));
  const independent = selectIndependent(diagonal({ size, values }), 8, exclude);
  assert.deepEqual([...independent.picked].sort((a, b) => a - b), [1, 2, 4, 6, 8, 9, 10, 11]);
  assert.throws(() => selectIndependent(diagonal({ size, values }), 9, exclude), /cannot select 9 of 8/);
});
