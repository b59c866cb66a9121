import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend } from '../../src/core/backend';
import { distillationLoss, featureDistillationLoss, sigmoidLoss, softmaxLoss } from '../../src/core/model/losses';

before(async () => {
  await selectBackend('wasm');
});

const softplus = (x: number): number => Math.log1p(Math.exp(x));

// Two unit vectors per side, at known angles: cosines are easy to write down.
const image = [
  [1, 0],
  [0, 1],
];
const text = [
  [Math.SQRT1_2, Math.SQRT1_2],
  [0, 1],
];
// cos(image i, text j)
const cos = [
  [Math.SQRT1_2, 0],
  [Math.SQRT1_2, 1],
];

test('sigmoid loss matches SigLIP eq. 1 computed by hand', () => {
  const t = 10;
  const b = -3;
  const expectedPairs = cos.map((row, i) => row.map((c, j) => softplus(-(i === j ? 1 : -1) * (t * c + b))));
  const expectedLoss = expectedPairs.flat().reduce((a, x) => a + x, 0) / 2;
  const { loss, pairLoss } = tf.tidy(() => {
    const out = sigmoidLoss(tf.tensor2d(image), tf.tensor2d(text), tf.scalar(t), tf.scalar(b));
    return { loss: out.loss.dataSync()[0], pairLoss: out.pairLoss.arraySync() };
  });
  assert.ok(Math.abs(loss - expectedLoss) < 1e-4, `loss ${loss} vs ${expectedLoss}`);
  pairLoss.forEach((row, i) => row.forEach((value, j) => assert.ok(Math.abs(value - expectedPairs[i][j]) < 1e-4, `pair ${i},${j}`)));
});

test('softmax loss matches CLIP cross-entropy both ways computed by hand', () => {
  const t = 5;
  const logits = cos.map((row) => row.map((c) => t * c));
  const lse = (xs: number[]): number => Math.log(xs.reduce((a, x) => a + Math.exp(x), 0));
  const rowLse = logits.map(lse);
  const columnLse = [0, 1].map((j) => lse(logits.map((row) => row[j])));
  const perExample = [0, 1].map((i) => 0.5 * (rowLse[i] - logits[i][i] + (columnLse[i] - logits[i][i])));
  const expectedLoss = (perExample[0] + perExample[1]) / 2;
  const { loss, pairLoss } = tf.tidy(() => {
    const out = softmaxLoss(tf.tensor2d(image), tf.tensor2d(text), tf.scalar(t));
    return { loss: out.loss.dataSync()[0], pairLoss: out.pairLoss.arraySync() };
  });
  assert.ok(Math.abs(loss - expectedLoss) < 1e-4, `loss ${loss} vs ${expectedLoss}`);
  assert.ok(Math.abs(pairLoss[0][0] - perExample[0]) < 1e-4);
  assert.ok(Math.abs(pairLoss[1][1] - perExample[1]) < 1e-4);
  // Off the diagonal: the loss if caption 1 were image 0's positive.
  const off = 0.5 * (rowLse[0] - logits[0][1] + (columnLse[1] - logits[0][1]));
  assert.ok(Math.abs(pairLoss[0][1] - off) < 1e-4);
});

test('both losses have gradients on the wasm backend (no logSigmoid trap)', () => {
  for (const kind of ['sigmoid', 'softmax'] as const) {
    const grads = tf.tidy(() => {
      const g = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
        kind === 'sigmoid' ? sigmoidLoss(a as tf.Tensor2D, b as tf.Tensor2D, tf.scalar(10), tf.scalar(-2)).loss : softmaxLoss(a as tf.Tensor2D, b as tf.Tensor2D, tf.scalar(10)).loss,
      );
      return g([tf.tensor2d(image), tf.tensor2d(text)]).map((x) => x.arraySync() as number[][]);
    });
    for (const grad of grads) for (const v of grad.flat()) assert.ok(Number.isFinite(v), `${kind} gradient finite`);
    assert.ok(grads[0].flat().some((v) => Math.abs(v) > 1e-6), `${kind} gradient non-zero`);
  }
});

test('distillation: 0 where the learner agrees with its teacher, above 0 where not, and the sigmoid gradient pulls each pair probability to the teacher\'s', () => {
  const teacher = [
    [2, -1, -3],
    [-2, 1.5, -0.5],
    [-4, 0, 3],
  ];
  const learner = [
    [0.5, 0.2, -1],
    [1, -2, 0.3],
    [-1, -1, 1],
  ];
  const sigma = (x: number): number => 1 / (1 + Math.exp(-x));
  for (const kind of ['sigmoid', 'softmax'] as const) {
    const [same, apart, grad] = tf.tidy(() => {
      const r = tf.tensor2d(teacher);
      const same = distillationLoss(kind, tf.tensor2d(teacher), r).dataSync()[0];
      const apart = distillationLoss(kind, tf.tensor2d(learner), r).dataSync()[0];
      const grad = tf.grad((l: tf.Tensor) => distillationLoss(kind, l as tf.Tensor2D, r))(tf.tensor2d(learner)).arraySync() as number[][];
      return [same, apart, grad];
    });
    assert.ok(Math.abs(same) < 1e-5, `${kind}: ${same} at agreement`);
    assert.ok(apart > 0.1, `${kind}: ${apart} apart`);
    if (kind === 'sigmoid') {
      // d/dl KL(σ(r) ‖ σ(l)) = σ(l) − σ(r), over the batch of 3.
      learner.forEach((row, i) => row.forEach((l, j) => assert.ok(Math.abs(grad[i][j] - (sigma(l) - sigma(teacher[i][j])) / 3) < 1e-5, `pair ${i},${j}`)));
    } else {
      // A step against the gradient brings the learner closer to its teacher.
      const stepped = learner.map((row, i) => row.map((l, j) => l - 0.5 * grad[i][j]));
      const closer = tf.tidy(() => distillationLoss(kind, tf.tensor2d(stepped), tf.tensor2d(teacher)).dataSync()[0]);
      assert.ok(closer < apart, `softmax: ${closer} after a step, ${apart} before`);
    }
  }
});

test("feature distillation is 1 − cosine to the teacher's embeddings, per tower, averaged over the batch", () => {
  // Learner image rows vs teacher's: identical (1 − cos 0), orthogonal (1); text rows: at 45° (1 − √½) and opposite (2).
  const teacherImage = [
    [1, 0],
    [1, 0],
  ];
  const teacherText = [
    [0, 1],
    [-1, 0],
  ];
  const learnerImage = [
    [1, 0],
    [0, 1],
  ];
  const learnerText = [
    [Math.SQRT1_2, Math.SQRT1_2],
    [1, 0],
  ];
  const expected = (0 + 1 + (1 - Math.SQRT1_2) + 2) / (2 * 2);
  const [value, same, grad] = tf.tidy(() => {
    const [ti, tt] = [tf.tensor2d(teacherImage), tf.tensor2d(teacherText)];
    const value = featureDistillationLoss(tf.tensor2d(learnerImage), tf.tensor2d(learnerText), ti, tt).dataSync()[0];
    const same = featureDistillationLoss(ti, tt, ti, tt).dataSync()[0];
    const grad = tf.grad((x: tf.Tensor) => featureDistillationLoss(x as tf.Tensor2D, tf.tensor2d(learnerText), ti, tt))(tf.tensor2d(learnerImage)).arraySync() as number[][];
    return [value, same, grad] as const;
  });
  assert.ok(Math.abs(value - expected) < 1e-6, `${value} against ${expected}`);
  assert.equal(same, 0);
  // d/de ‖e − t‖² / (4 · batch) = (e − t) / 4: the image that already agrees gets no pull, the orthogonal one is pulled towards its teacher.
  assert.deepEqual(grad[0], [0, 0]);
  assert.ok(Math.abs(grad[1][0] - -0.25) < 1e-6 && Math.abs(grad[1][1] - 0.25) < 1e-6, JSON.stringify(grad[1]));
});
