/**
 * Data-parallel training across worker threads (src/core/train/replicas.ts):
 * the threads' gradients and embeddings equal the single-thread ones, a run
 * repeats bit for bit with the same thread count, and follows the same curve
 * with another.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend } from '../../src/core/backend';
import { DualEncoder, patchify } from '../../src/core/model/dualEncoder';
import { contrastiveLoss, type LossKind } from '../../src/core/model/losses';
import { Rng } from '../../src/core/random';
import { resolveConfig, defaultTrainConfig, modelConfigFor } from '../../src/core/train/config';
import { candidateMatrices, embedShard, type Candidates, type Shard } from '../../src/core/train/replicaProtocol';
import { localEmbedder, ReplicaPool, threadsFor } from '../../src/core/train/replicas';
import { Learner } from '../../src/core/train/learner';
import { AdamW } from '../../src/core/train/optimizer';
import { trainRun } from '../../src/core/train/run';
import { readJsonl } from '../../src/core/runs/jsonl';
import type { MetricLine, RunJson, TrainMetrics } from '../../src/core/runs/record';
import { tinyModel } from '../tinyModel';

before(async () => {
  await selectBackend('wasm');
});

const config = { ...defaultTrainConfig, ...tinyModel, imageSize: 16, patchSize: 4, textLength: 6 };
const vocab = 40;

function randomShard(rows: number, lowRes: number, seed: number): Shard {
  const rng = new Rng(seed);
  const pixels = Float32Array.from({ length: rows * config.imageSize ** 2 * 3 }, () => rng.next());
  const ids = Int32Array.from({ length: rows * config.textLength }, (_, i) => (i % config.textLength < 4 ? 1 + Math.floor(rng.next() * (vocab - 1)) : 0));
  const full = rows - lowRes;
  const floats = config.imageSize ** 2 * 3;
  const images = [patchify(pixels.subarray(0, full * floats), full, config.imageSize, config.patchSize, 1)];
  if (lowRes) images.push(patchify(pixels.subarray(full * floats), lowRes, config.imageSize, config.patchSize, 2));
  return { images, ids, texts: rows };
}

/** Largest |a − b| over the largest |b| (or `floor`, for values that are float noise around 0). */
function maxRelativeDifference(a: Float32Array, b: Float32Array, floor = 1e-12): number {
  assert.equal(a.length, b.length);
  let scale = 0;
  let worst = 0;
  for (let i = 0; i < a.length; i++) scale = Math.max(scale, Math.abs(b[i]));
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
  return worst / Math.max(scale, floor);
}

for (const loss of ['sigmoid', 'softmax'] as LossKind[]) {
  test(`${loss} loss: gradients summed over 3 threads (13 rows, 4 at half resolution) equal one thread's, and embeddings match`, async () => {
    const model = new DualEncoder(modelConfigFor(config, vocab), new Rng(3));
    const pool = await ReplicaPool.start(model, 3, 'wasm');
    try {
      const shard = randomShard(13, 4, 11);
      const { grads: expected } = tf.variableGrads(() => {
        const { image, text } = embedShard(model, shard);
        return contrastiveLoss(loss, image!, text!, model.temperature, model.bias).loss;
      });
      const flat = await pool.gradients(shard, (image, text) =>
        tf.tidy(() => {
          const [dImage, dText] = tf.grads((x: tf.Tensor, y: tf.Tensor) => contrastiveLoss(loss, x as tf.Tensor2D, y as tf.Tensor2D, model.temperature, model.bias).loss)([
            tf.tensor2d(image, [13, config.embedDim]),
            tf.tensor2d(text, [13, config.embedDim]),
          ]);
          return { dImage: dImage.dataSync() as Float32Array, dText: dText.dataSync() as Float32Array };
        }),
      );
      // Some gradients are float noise around 0 (a token-mixing output bias feeds a layer norm that removes it): compare those on the scale of the largest gradient.
      const largest = Math.max(...Object.values(expected).map((g) => tf.max(tf.abs(g)).dataSync()[0]));
      let offset = 0;
      let compared = 0;
      for (const variable of model.params.variables.values()) {
        const want = expected[variable.name];
        const got = flat.subarray(offset, offset + variable.size);
        offset += variable.size;
        if (variable.name.includes('logit/')) continue; // the main thread's own share, not the threads'
        assert.ok(want, `${variable.name} has a gradient`);
        const difference = maxRelativeDifference(got, want.dataSync() as Float32Array, 1e-3 * largest);
        assert.ok(difference < 1e-4, `${variable.name}: relative difference ${difference}`);
        compared++;
      }
      assert.ok(compared > 20, `compared ${compared} variables`);
      tf.dispose(Object.values(expected));

      const local = await localEmbedder(model).embed(shard);
      const threaded = await pool.embed(shard);
      assert.ok(maxRelativeDifference(threaded.image!, local.image!) < 1e-6);
      assert.ok(maxRelativeDifference(threaded.text!, local.text!) < 1e-6);
    } finally {
      await pool.close();
      model.dispose();
    }
  });
}

test('with a teacher to distill from, the learner\'s loss, both distillation terms and gradients over 3 threads equal one thread\'s', async () => {
  const shard = randomShard(9, 3, 5);
  const rng = new Rng(8);
  const unitRows = (): Float32Array => {
    const dim = config.embedDim;
    const out = Float32Array.from({ length: 9 * dim }, () => rng.next() - 0.5);
    for (let row = 0; row < 9; row++) {
      const v = out.subarray(row * dim, (row + 1) * dim);
      const norm = Math.hypot(...v);
      v.forEach((x, i) => (v[i] = x / norm));
    }
    return out;
  };
  const teacher = { logits: Float32Array.from({ length: 81 }, () => rng.next() * 6 - 3), weight: 2, features: { image: unitRows(), text: unitRows(), weight: 5 } };
  const run = async (threads: number) => {
    const model = new DualEncoder(modelConfigFor(config, vocab), new Rng(3));
    const optimizer = new AdamW({ learningRate: 1e-3, beta1: 0.9, beta2: 0.98, epsilon: 1e-8, weightDecay: 0, clipNorm: 1, warmupSteps: 1, totalSteps: 1, minLrRatio: 1 }, model.params.variables);
    const { learner } = await Learner.create(model, optimizer, 'sigmoid', 'wasm', threads, 9);
    try {
      const plain = await learner.gradients(shard);
      tf.dispose(Object.values(plain.grads));
      const { loss, distillLoss, featureLoss, grads } = await learner.gradients(shard, teacher);
      // In the model's variable order: names differ between two models of one process.
      const flat = [...model.params.variables.values()].map((variable) => grads[variable.name].dataSync() as Float32Array);
      tf.dispose(Object.values(grads));
      return { plainLoss: plain.loss, loss, distillLoss, featureLoss, flat };
    } finally {
      await learner.close();
      model.dispose();
    }
  };
  const one = await run(1);
  const three = await run(3);
  assert.equal(one.loss, one.plainLoss, 'loss stays the contrastive loss');
  assert.ok(one.distillLoss !== undefined && one.distillLoss > 0);
  assert.ok(one.featureLoss !== undefined && one.featureLoss > 0.5 && one.featureLoss < 1.5, `random unit vectors are near orthogonal: ${one.featureLoss}`);
  assert.ok(Math.abs(three.loss - one.loss) < 1e-5 && Math.abs(three.distillLoss! - one.distillLoss!) < 1e-5, `${three.loss}/${three.distillLoss} vs ${one.loss}/${one.distillLoss}`);
  assert.ok(Math.abs(three.featureLoss! - one.featureLoss!) < 1e-5, `${three.featureLoss} vs ${one.featureLoss}`);
  const largest = Math.max(...one.flat.map((g) => Math.max(...g.map(Math.abs))));
  assert.equal(three.flat.length, one.flat.length);
  one.flat.forEach((want, k) => {
    const difference = maxRelativeDifference(three.flat[k], want, 1e-3 * largest);
    assert.ok(difference < 1e-4, `variable ${k}: relative difference ${difference}`);
  });
});

test('a failure while the main thread computes the loss reaches the caller, and the pool keeps working', async () => {
  const model = new DualEncoder(modelConfigFor(config, vocab), new Rng(4));
  const pool = await ReplicaPool.start(model, 2, 'wasm');
  try {
    const shard = randomShard(6, 0, 5);
    await assert.rejects(
      pool.gradients(shard, () => {
        throw new Error('loss exploded');
      }),
      /loss exploded/,
    );
    const zeros = (image: Float32Array, text: Float32Array) => ({ dImage: new Float32Array(image.length), dText: new Float32Array(text.length) });
    const flat = await pool.gradients(shard, zeros);
    assert.equal(flat.length, model.params.count());
    assert.ok(flat.every((g) => g === 0));
  } finally {
    await pool.close();
    model.dispose();
  }
});

test('the scoring thread computes a super-batch\'s matrices bit for bit as the training thread does; a bad request names the scoring thread and leaves it working', async () => {
  const model = new DualEncoder(modelConfigFor(config, vocab), new Rng(6));
  const pool = await ReplicaPool.start(model, 1, 'wasm', 'scoring');
  try {
    const count = 10;
    const rng = new Rng(7);
    const dim = model.config.embedDim;
    const pixels = Float32Array.from({ length: count * config.imageSize ** 2 * 3 }, () => rng.next());
    // Four distinct captions shared by the ten images, and a stand-in reference's rows.
    const ids = Int32Array.from({ length: 4 * config.textLength }, (_, i) => (i % config.textLength < 3 ? 1 + ((i * 5) % (vocab - 1)) : 0));
    const textOf = Int32Array.from({ length: count }, (_, row) => row % 4);
    const reference = { image: Float32Array.from({ length: count * dim }, () => rng.next() - 0.5), text: Float32Array.from({ length: count * dim }, () => rng.next() - 0.5), temperature: 8, bias: -3 };
    const candidates: Candidates = { count, loss: 'sigmoid', learner: { pixels, imageSize: config.imageSize, patchSize: config.patchSize, scale: 2, ids, texts: 4, textOf }, reference };

    const threaded = await pool.score(candidates);
    const local = tf.tidy(() => {
      const { image, text } = embedShard(model, { images: [patchify(pixels, count, config.imageSize, config.patchSize, 2)], ids, texts: 4 });
      const out = candidateMatrices(candidates, { image: image!, text: text!, temperature: model.temperature, bias: model.bias });
      return [...out.learner!, ...out.reference!].map((t) => t.dataSync() as Float32Array);
    });
    assert.deepEqual([threaded.learner!.pairLoss.values, threaded.learner!.logits.values, threaded.reference!.pairLoss.values, threaded.reference!.logits.values], local);
    assert.equal(threaded.learner!.pairLoss.size, count);
    assert.equal(local[0].length, count * count);

    await assert.rejects(pool.score({ ...candidates, learner: { ...candidates.learner!, ids: ids.subarray(0, 5) } }), /^Error: the scoring thread failed: /);
    assert.deepEqual(await pool.score(candidates), threaded);
  } finally {
    await pool.close();
    model.dispose();
  }
});

test('threads: auto gives each thread enough of a step to pay for itself, up to one per core; non-CPU backends train on one', () => {
  assert.equal(threadsFor(3, 'wasm', 1e6).threads, 3, 'a set count is kept');
  const small = threadsFor(0, 'wasm', 2.2e9);
  assert.equal(small.threads, 1, small.reason);
  assert.match(small.reason, /2\.2 GFLOP/);
  const large = threadsFor(0, 'wasm', 62e9);
  assert.ok(large.threads >= Math.min(2, os.availableParallelism()) && large.threads <= 8, large.reason);
  assert.equal(threadsFor(4, 'node').threads, 1);
  assert.equal(threadsFor(0, 'webgpu', 62e9).threads, 1);
});

const tmp = (): string => fs.mkdtempSync(path.join(os.tmpdir(), 'sift-threads-'));

async function losses(threads: number, extra: Record<string, unknown> = {}): Promise<{ losses: number[]; run: RunJson }> {
  const runDir = path.join(tmp(), `t${threads}`);
  const run = resolveConfig({ ...tinyModel, data: 'builtin:train?size=300', evalData: 'builtin:eval?size=40', steps: 8, evalEvery: 8, batchSize: 12, threads, runDir, ...extra });
  const result = await trainRun(run, {});
  assert.equal(result.status, 'finished');
  const { rows } = readJsonl<MetricLine>(path.join(runDir, 'metrics.jsonl'));
  return {
    losses: rows.filter((r): r is TrainMetrics => r.type === 'train').map((r) => r.loss),
    run: JSON.parse(fs.readFileSync(path.join(runDir, 'run.json'), 'utf8')) as RunJson,
  };
}

test('the same seed and thread count repeat every loss bit for bit; another thread count follows the same curve', async () => {
  const two = await losses(2, { lowResFraction: 0.25 });
  const twoAgain = await losses(2, { lowResFraction: 0.25 });
  const one = await losses(1, { lowResFraction: 0.25 });
  const three = await losses(3, { lowResFraction: 0.25 });
  assert.equal(two.run.backend?.threads, 2);
  assert.equal(one.run.backend?.threads, 1);
  assert.deepEqual(twoAgain.losses, two.losses, 'bit for bit with 2 threads');
  for (const other of [one, three]) {
    other.losses.forEach((loss, i) => assert.ok(Math.abs(loss - two.losses[i]) < 2e-3 * Math.abs(two.losses[i]), `step ${i + 1}: ${loss} vs ${two.losses[i]} (threads ${other.run.backend?.threads})`));
  }
  assert.ok(two.losses[7] < two.losses[0], `the loss falls: ${two.losses.join(', ')}`);
});
