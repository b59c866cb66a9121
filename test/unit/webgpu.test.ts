/**
 * The webgpu backend (Dawn) against the cpu backend, the reference: every op
 * and custom gradient the model is built from, both losses, the dual
 * encoder's forward and backward passes and an AdamW step give the same
 * values within a stated tolerance; `auto` passes over a software adapter;
 * and a short training run pinned to webgpu learns.
 *
 * Without a WebGPU adapter these tests skip, saying why. With
 * SIFT_REQUIRE_WEBGPU=1 (CI, which installs a software Vulkan device:
 * scripts/install-vulkan.sh) they fail instead, so the webgpu path is proven.
 *
 * Tolerance: the largest |webgpu − cpu| over an output, divided by the largest
 * |cpu| of that output (an error relative to the output's scale, so that
 * entries near zero after cancellation do not count as large relative
 * errors). float32 sums in another order differ by ~1e-7 relative per
 * addition; each bound below leaves room for the op's chain of them.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { findWebGpuAdapter, selectBackend, webGpuDeviceErrors, type BackendReport, type WebGpuAdapter } from '../../src/core/backend';
import { DualEncoder, patchify, type ModelConfig } from '../../src/core/model/dualEncoder';
import { defaultModelConfig } from '../../src/core/model/modelConfig';
import { softmaxLoss, sigmoidLoss } from '../../src/core/model/losses';
import { dense, embed, gelu, l2Normalize, layerNorm, matMul } from '../../src/core/model/ops';
import { Rng } from '../../src/core/random';
import { resolveConfig } from '../../src/core/train/config';
import { AdamW } from '../../src/core/train/optimizer';
import { trainRun } from '../../src/core/train/run';
import { readJsonl } from '../../src/core/runs/jsonl';
import type { EvalMetrics, MetricLine, RunJson, TrainMetrics } from '../../src/core/runs/record';
import { backendForRuns, doctorMarkdown } from '../../src/extension/doctor';
import type { DoctorReport } from '../../src/cli/main';

const required = process.env.SIFT_REQUIRE_WEBGPU === '1';
let adapter: WebGpuAdapter | undefined;
/** Why there is no WebGPU here, and the fix; undefined when there is an adapter. */
let unavailable: string | undefined;
let unavailableFix = '';
/** What `auto` chose before anything was pinned, and what pinning webgpu gave (or why it failed). */
let autoReport: BackendReport | undefined;
let pinned: BackendReport | Error | undefined;

before(async () => {
  try {
    adapter = await findWebGpuAdapter();
  } catch (error) {
    unavailable = (error as Error).message;
    const fix = (error as { fix?: string }).fix;
    if (fix) unavailableFix = ` Fix: ${fix}`;
    return;
  }
  // auto first: once a backend is pinned, later `auto` calls keep it.
  autoReport = await selectBackend('auto');
  pinned = await selectBackend('webgpu').catch((error: Error) => error);
  // cpu is the reference of every comparison below.
  await tf.setBackend('cpu');
});

/** A test that needs a WebGPU adapter: skipped without one, unless SIFT_REQUIRE_WEBGPU=1 makes that a failure. */
function gpuTest(name: string, body: () => Promise<void>): void {
  test(name, async (t) => {
    if (unavailable !== undefined) {
      if (required) assert.fail(`SIFT_REQUIRE_WEBGPU=1, but the webgpu backend cannot run here: ${unavailable}${unavailableFix}`);
      // The fix once, with the first skip.
      t.skip(`no WebGPU adapter here (SIFT_REQUIRE_WEBGPU=1 makes this a failure): ${unavailable}${unavailableFix}`);
      unavailableFix = '';
      return;
    }
    // An adapter, but a backend that does not start: a failure, not a skip.
    if (pinned instanceof Error) assert.fail(`a WebGPU adapter was found, but the webgpu backend did not start: ${pinned.message}`);
    const errorsBefore = webGpuDeviceErrors().length;
    await body();
    // A kernel that failed on the device leaves garbage that a loose comparison might let through; Dawn reports it asynchronously.
    await new Promise((resolve) => setTimeout(resolve, 10));
    assert.deepEqual(webGpuDeviceErrors().slice(errorsBefore), [], 'the WebGPU device reported errors');
  });
}

type Backend = 'cpu' | 'webgpu';

/** Runs `outputs` on a backend and reads every tensor back. Inputs must be made inside it: tensors belong to one backend. */
async function runOn(backend: Backend, outputs: () => tf.Tensor[]): Promise<Float32Array[]> {
  await tf.setBackend(backend);
  const tensors = tf.tidy(outputs);
  try {
    return (await Promise.all(tensors.map((t) => t.data()))) as Float32Array[];
  } finally {
    tf.dispose(tensors);
  }
}

const maxAbs = (values: Float32Array): number => values.reduce((m, v) => Math.max(m, Math.abs(v)), 0);

/**
 * max |webgpu − cpu| / max(max |cpu|, floor) over one output (NaN anywhere
 * gives NaN, which fails every bound). `floor` is for outputs that are zero
 * up to rounding, where the ratio to their own scale would compare noise with
 * noise.
 */
function relativeError(gpu: Float32Array, cpu: Float32Array, floor = 0): number {
  let worst = 0;
  for (let i = 0; i < cpu.length; i++) worst = Math.max(worst, Number.isNaN(gpu[i]) ? NaN : Math.abs(gpu[i] - cpu[i]));
  return worst / Math.max(maxAbs(cpu), floor, 1e-30);
}

function assertClose(what: string, names: string[], gpu: Float32Array[], cpu: Float32Array[], tolerance: number, floor = 0): void {
  assert.equal(gpu.length, cpu.length);
  gpu.forEach((values, i) => {
    assert.equal(values.length, cpu[i].length, `${what}: ${names[i]} has ${values.length} values on webgpu, ${cpu[i].length} on cpu`);
    const error = relativeError(values, cpu[i], floor);
    assert.ok(error <= tolerance, `${what}: ${names[i]} differs from cpu by ${error.toExponential(2)} of its scale (tolerance ${tolerance})`);
  });
}

/** The same computation on cpu and on webgpu, compared output by output. */
async function sameOnBoth(what: string, names: string[], outputs: () => tf.Tensor[], tolerance: number): Promise<void> {
  const cpu = await runOn('cpu', outputs);
  const gpu = await runOn('webgpu', outputs);
  assertClose(what, names, gpu, cpu, tolerance);
}

function normals(count: number, seed: number, scale = 1, offset = 0): Float32Array {
  const rng = new Rng(seed);
  return Float32Array.from({ length: count }, () => offset + scale * rng.normal());
}

/**
 * f's outputs and the gradients of Σ f(xs)·w for every input, w a fixed
 * random weighting (so every gradient entry is exercised, unlike a plain sum).
 */
function withGrads(f: (...xs: tf.Tensor[]) => tf.Tensor, makeInputs: () => tf.Tensor[], seed: number): () => tf.Tensor[] {
  return () => {
    const xs = makeInputs();
    const y = f(...xs);
    const w = tf.tensor(normals(y.size, seed), y.shape);
    const grads = tf.grads((...args: tf.Tensor[]) => tf.sum(tf.mul(f(...args), w)))(xs);
    return [y, ...grads];
  };
}

gpuTest('auto passes over a software WebGPU adapter and says why; a hardware one is taken', async () => {
  const report = autoReport!;
  const webgpu = report.attempts.find((a) => a.name === 'webgpu')!;
  if (adapter!.software) {
    assert.notEqual(report.chosen, 'webgpu', 'auto must not train on a software adapter: it is slower than wasm');
    assert.equal(webgpu.outcome, 'skipped');
    assert.match(webgpu.reason ?? '', /software/);
    assert.deepEqual(webgpu.adapter, adapter);
  } else if (report.chosen !== 'node-gpu') {
    assert.equal(report.chosen, 'webgpu', 'a hardware WebGPU adapter comes before the CPU backends');
  }
});

gpuTest('pinned, webgpu loads on any adapter and says so when it is a software one', async () => {
  const report = pinned as BackendReport;
  assert.equal(report.chosen, 'webgpu');
  assert.equal(report.tfBackend, 'webgpu');
  const attempt = report.attempts.find((a) => a.name === 'webgpu')!;
  assert.equal(attempt.outcome, 'chosen');
  assert.deepEqual(attempt.adapter, adapter, 'the adapter is recorded with the choice');
  if (adapter!.software) assert.match(report.warning ?? '', /software WebGPU adapter/);
  else assert.equal(report.warning, undefined);
});

gpuTest('matMul and its gradient match cpu (tolerance 1e-5)', async () => {
  // Sizes that are not multiples of any tile, so that edge handling is exercised.
  const a = normals(37 * 53, 1);
  const b = normals(53 * 29, 2);
  await sameOnBoth('matMul', ['a·b', 'd/da', 'd/db'], withGrads((x, y) => matMul(x as tf.Tensor2D, y as tf.Tensor2D), () => [tf.tensor2d(a, [37, 53]), tf.tensor2d(b, [53, 29])], 3), 1e-5);
});

gpuTest('dense (x·w + b on a rank-3 x) and its gradients match cpu (tolerance 1e-5)', async () => {
  const x = normals(4 * 9 * 24, 4);
  const w = normals(24 * 40, 5, 0.2);
  const b = normals(40, 6);
  await sameOnBoth(
    'dense',
    ['y', 'd/dx', 'd/dw', 'd/db'],
    withGrads((xs, ws, bs) => dense(xs, ws as tf.Tensor2D, bs as tf.Tensor1D), () => [tf.tensor3d(x, [4, 9, 24]), tf.tensor2d(w, [24, 40]), tf.tensor1d(b)], 7),
    1e-5,
  );
});

gpuTest('embed (gather, one-hot gradient with repeated ids) matches cpu (tolerance 1e-6)', async () => {
  const table = normals(50 * 12, 8);
  const rng = new Rng(9);
  // Few distinct ids, many repeats: the gradient accumulates several rows per id.
  const ids = Int32Array.from({ length: 6 * 7 }, () => rng.int(10) * 5);
  await sameOnBoth('embed', ['rows', 'd/dtable'], () => {
    const idTensor = tf.tensor2d(ids, [6, 7], 'int32');
    return withGrads((t) => embed(t as tf.Tensor2D, idTensor), () => [tf.tensor2d(table, [50, 12])], 10)();
  }, 1e-6);
});

gpuTest('layerNorm and its closed-form gradient match cpu (tolerance 1e-4)', async () => {
  // An offset and a spread, so that the mean and variance matter.
  const x = normals(5 * 7 * 32, 11, 3, 2);
  const gain = normals(32, 12, 0.5, 1);
  const bias = normals(32, 13, 0.1);
  await sameOnBoth(
    'layerNorm',
    ['y', 'd/dx', 'd/dgain', 'd/dbias'],
    withGrads((xs, g, b) => layerNorm(xs, g as tf.Tensor1D, b as tf.Tensor1D), () => [tf.tensor3d(x, [5, 7, 32]), tf.tensor1d(gain), tf.tensor1d(bias)], 14),
    1e-4,
  );
});

gpuTest('gelu and its gradient match cpu over [-6, 6] (tolerance 1e-5)', async () => {
  const x = Float32Array.from({ length: 1201 }, (_, i) => -6 + i / 100);
  await sameOnBoth('gelu', ['y', 'd/dx'], withGrads((xs) => gelu(xs), () => [tf.tensor1d(x)], 15), 1e-5);
});

gpuTest('l2Normalize and its gradient match cpu (tolerance 1e-5)', async () => {
  const x = normals(16 * 24, 16, 2);
  await sameOnBoth('l2Normalize', ['y', 'd/dx'], withGrads((xs) => l2Normalize(xs as tf.Tensor2D), () => [tf.tensor2d(x, [16, 24])], 17), 1e-5);
});

gpuTest('addN of more terms than one shader can bind (the gradient norm adds one per parameter) matches cpu (tolerance 1e-6)', async () => {
  const terms = Array.from({ length: 41 }, (_, k) => normals(300, 50 + k));
  await sameOnBoth('addN', ['sum'], () => [tf.addN(terms.map((t) => tf.tensor1d(t)))], 1e-6);
});

gpuTest('a bool mask cast to float32 and summed over a middle axis (the text tower\'s caption lengths) matches cpu exactly', async () => {
  const rng = new Rng(60);
  const ids = Int32Array.from({ length: 6 * 16 }, () => (rng.next() < 0.4 ? 0 : 1 + rng.int(50)));
  await sameOnBoth('mask', ['tokens per caption'], () => [tf.sum(tf.expandDims(tf.cast(tf.notEqual(tf.tensor2d(ids, [6, 16], 'int32'), 0), 'float32'), 2), 1)], 0);
});

/** Unit-norm embeddings for the losses: [16, 24] each, positives correlated with their images. */
function embeddingPair(seed: number): { image: Float32Array; text: Float32Array } {
  const image = normals(16 * 24, seed);
  const noise = normals(16 * 24, seed + 1);
  const text = image.map((v, i) => v + 0.7 * noise[i]);
  const normalize = (m: Float32Array): Float32Array => {
    for (let r = 0; r < 16; r++) {
      const row = m.subarray(r * 24, (r + 1) * 24);
      const norm = Math.hypot(...row);
      row.forEach((v, i) => (row[i] = v / norm));
    }
    return m;
  };
  return { image: normalize(image), text: normalize(text) };
}

gpuTest('sigmoid loss (SigLIP): loss, logits, pair losses and every gradient match cpu (tolerance 1e-4)', async () => {
  const { image, text } = embeddingPair(18);
  await sameOnBoth(
    'sigmoidLoss',
    ['loss', 'logits', 'pairLoss', 'd/dimage', 'd/dtext', 'd/dtemperature', 'd/dbias'],
    () => {
      const inputs = [tf.tensor2d(image, [16, 24]), tf.tensor2d(text, [16, 24]), tf.scalar(10), tf.scalar(-2.7)];
      const out = sigmoidLoss(inputs[0] as tf.Tensor2D, inputs[1] as tf.Tensor2D, inputs[2], inputs[3]);
      const grads = tf.grads((x: tf.Tensor, y: tf.Tensor, t: tf.Tensor, b: tf.Tensor) => sigmoidLoss(x as tf.Tensor2D, y as tf.Tensor2D, t, b).loss)(inputs);
      return [out.loss, out.logits, out.pairLoss, ...grads];
    },
    1e-4,
  );
});

gpuTest('softmax loss (CLIP): loss, logits, pair losses and every gradient match cpu (tolerance 1e-4)', async () => {
  const { image, text } = embeddingPair(20);
  await sameOnBoth(
    'softmaxLoss',
    ['loss', 'logits', 'pairLoss', 'd/dimage', 'd/dtext', 'd/dtemperature'],
    () => {
      const inputs = [tf.tensor2d(image, [16, 24]), tf.tensor2d(text, [16, 24]), tf.scalar(10)];
      const out = softmaxLoss(inputs[0] as tf.Tensor2D, inputs[1] as tf.Tensor2D, inputs[2]);
      const grads = tf.grads((x: tf.Tensor, y: tf.Tensor, t: tf.Tensor) => softmaxLoss(x as tf.Tensor2D, y as tf.Tensor2D, t).loss)(inputs);
      return [out.loss, out.logits, out.pairLoss, ...grads];
    },
    1e-4,
  );
});

/** A small dual encoder with every part of the default one: two Mixer blocks per tower, 8×8 patches grid, half-resolution path. */
const smallModel: ModelConfig = {
  ...defaultModelConfig,
  imageWidth: 32,
  imageDepth: 2,
  imageTokenHidden: 32,
  imageChannelHidden: 64,
  textWidth: 32,
  textDepth: 2,
  textTokenHidden: 16,
  textChannelHidden: 64,
  embedDim: 32,
  vocabSize: 60,
  initBias: -Math.log(8),
};
const batch = 8;
const pixels = Float32Array.from(normals(batch * smallModel.imageSize * smallModel.imageSize * 3, 21), (v) => 0.5 + 0.25 * v);
const ids = (() => {
  const rng = new Rng(22);
  // Captions of 5 to 16 tokens, padded with 0, so that the mean over real tokens is exercised.
  const out = new Int32Array(batch * smallModel.textLength);
  for (let n = 0; n < batch; n++) {
    const length = 5 + rng.int(smallModel.textLength - 4);
    for (let k = 0; k < length; k++) out[n * smallModel.textLength + k] = 1 + rng.int(smallModel.vocabSize - 1);
  }
  return out;
})();

/** The model built on the current backend from the same seed: identical weights on both. */
function withModel<T>(use: (model: DualEncoder) => T): T {
  const model = new DualEncoder(smallModel, new Rng(23));
  try {
    return use(model);
  } finally {
    model.dispose();
  }
}

gpuTest('the dual encoder forward pass (full and half resolution, both towers) matches cpu (tolerance 1e-4)', async () => {
  const forward = (): tf.Tensor[] =>
    withModel((model) => {
      const full = model.embedImages(patchify(pixels, batch, smallModel.imageSize, smallModel.patchSize, 1));
      const half = model.embedImages(patchify(pixels, batch, smallModel.imageSize, smallModel.patchSize, 2));
      const text = model.embedTexts(ids, batch);
      return [full, half, text, sigmoidLoss(full, text, model.temperature, model.bias).loss];
    });
  await sameOnBoth('DualEncoder forward', ['image embeddings', 'half-resolution image embeddings', 'text embeddings', 'loss'], forward, 1e-4);
});

gpuTest('variableGrads of the loss through the whole dual encoder match cpu, parameter by parameter (tolerance 2e-4)', async () => {
  const names: string[] = [];
  const gradients = (): tf.Tensor[] =>
    withModel((model) => {
      const patches = patchify(pixels, batch, smallModel.imageSize, smallModel.patchSize, 1);
      const { value, grads } = tf.variableGrads(() => sigmoidLoss(model.embedImages(patches), model.embedTexts(ids, batch), model.temperature, model.bias).loss);
      names.length = 0;
      const out: tf.Tensor[] = [value];
      names.push('loss');
      for (const [name, variable] of model.params.variables) {
        names.push(name);
        out.push(grads[variable.name]);
      }
      return out;
    });
  const cpu = await runOn('cpu', gradients);
  const gpu = await runOn('webgpu', gradients);
  assert.ok(names.length > 20, 'every parameter has a gradient');
  // Some gradients are zero but for rounding: a token-mixing output bias adds
  // the same value to every channel of a token, which the layer norms over
  // channels downstream remove. Those are held to the bound relative to a
  // thousandth of the largest gradient in the model instead of their own noise.
  const floor = 1e-3 * Math.max(...cpu.slice(1).map(maxAbs));
  assertClose('variableGrads', names, gpu, cpu, 2e-4, floor);
});

gpuTest('two AdamW steps (with gradient clipping and weight decay) give the same weights and norms as cpu (tolerance 1e-5)', async () => {
  const config = { learningRate: 1e-2, beta1: 0.9, beta2: 0.98, epsilon: 1e-8, weightDecay: 0.1, clipNorm: 1, warmupSteps: 1, totalSteps: 10, minLrRatio: 0.1 };
  const shapes: Record<string, number[]> = { w: [24, 16], b: [16], pos: [] };
  const norms: Record<Backend, number[]> = { cpu: [], webgpu: [] };
  const results: Partial<Record<Backend, Float32Array[]>> = {};
  for (const backend of ['cpu', 'webgpu'] as const) {
    await tf.setBackend(backend);
    const variables = new Map(Object.entries(shapes).map(([name, shape], k) => [name, tf.variable(tf.tensor(normals(shape.reduce((a, b) => a * b, 1), 30 + k), shape), true, `adamw-${backend}/${name}`)]));
    const optimizer = new AdamW(config, variables);
    try {
      for (let step = 0; step < 2; step++) {
        // Gradients large enough that clipping engages (global norm ≈ 20 > 1).
        const grads: tf.NamedTensorMap = {};
        [...variables.values()].forEach((v, k) => (grads[v.name] = tf.tensor(normals(v.size, 40 + 10 * step + k, 1.3), v.shape)));
        // apply reads the norm back; `await` serves whether it returns the number or a promise of it.
        norms[backend].push(await optimizer.apply(grads, step));
        tf.dispose(Object.values(grads));
      }
      results[backend] = (await Promise.all([...variables.values()].map((v) => v.data()))) as Float32Array[];
    } finally {
      optimizer.dispose();
      for (const v of variables.values()) v.dispose();
    }
  }
  assertClose('AdamW', Object.keys(shapes), results.webgpu!, results.cpu!, 1e-5);
  norms.cpu.forEach((norm, step) => assert.ok(Math.abs(norms.webgpu[step] - norm) <= 1e-5 * norm, `step ${step + 1}: gradient norm ${norms.webgpu[step]} on webgpu, ${norm} on cpu`));
  assert.ok(norms.cpu[0] > config.clipNorm, 'the gradients were clipped');
});

/** A 40-step run of a small model on a 64-pair set, which it is then evaluated on: the loss curve and final recall. */
async function shortRun(backend: 'webgpu' | 'wasm'): Promise<{ losses: number[]; final: EvalMetrics; chosen?: string }> {
  const runDir = path.join(fs.mkdtempSync(path.join(os.tmpdir(), `sift-${backend}-`)), 'run');
  const config = resolveConfig({
    // 40 steps are too few to generalise on the built-in data (recall on held-out pairs stays at chance on every
    // backend), but plenty to fit 64 pairs: recall on them is what shows that training works.
    data: 'builtin:curated?size=64',
    evalData: 'builtin:curated?size=64',
    steps: 40,
    batchSize: 32,
    warmupSteps: 5,
    evalEvery: 40,
    checkpointEvery: 40,
    imageWidth: 32,
    imageDepth: 1,
    textWidth: 32,
    textDepth: 1,
    embedDim: 32,
    threads: 1,
    backend,
    runDir,
  });
  const result = await trainRun(config);
  assert.equal(result.status, 'finished');
  const run = JSON.parse(fs.readFileSync(path.join(runDir, 'run.json'), 'utf8')) as RunJson;
  const { rows } = readJsonl<MetricLine>(path.join(runDir, 'metrics.jsonl'));
  const losses = rows.filter((r): r is TrainMetrics => r.type === 'train').map((r) => r.loss);
  const final = rows.filter((r): r is EvalMetrics => r.type === 'eval').at(-1)!;
  return { losses, final, chosen: run.backend?.chosen };
}

gpuTest('a 40-step run pinned to webgpu learns (the loss falls, recall is many times chance) and follows the same curve as wasm (tolerance 1e-3)', async () => {
  const gpu = await shortRun('webgpu');
  assert.equal(gpu.chosen, 'webgpu');
  assert.equal(gpu.losses.length, 40);
  assert.ok(gpu.losses.every(Number.isFinite), `every loss is finite: ${gpu.losses.join(', ')}`);
  const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
  const first = mean(gpu.losses.slice(0, 5));
  const last = mean(gpu.losses.slice(-5));
  assert.ok(last < 0.85 * first, `the loss falls: first 5 steps ${first.toFixed(3)}, last 5 ${last.toFixed(3)}`);
  const { final } = gpu;
  assert.equal(final.step, 40);
  // Chance is 1/64; wasm reaches ~17 and ~10 times that here.
  assert.ok(final.i2t_r1 >= 4 * final.chance_r1 && final.t2i_r1 >= 4 * final.chance_r1, `recall@1 at least 4× chance (${final.chance_r1.toFixed(3)}): image→text ${final.i2t_r1}, text→image ${final.t2i_r1}`);

  // The same run on wasm: float32 differences compound over 40 updates, but stay far below the loss's own movement.
  const wasm = await shortRun('wasm');
  const worst = Math.max(...gpu.losses.map((loss, i) => Math.abs(loss - wasm.losses[i]) / wasm.losses[i]));
  assert.ok(worst <= 1e-3, `per-step losses differ from wasm's by up to ${worst.toExponential(2)} (relative)`);
});

// ---- what Check GPU Setup shows (no GPU needed) ---------------------------------------

const llvmpipe: WebGpuAdapter = { vendor: 'mesa', architecture: 'software', device: 'llvmpipe', description: 'llvmpipe: Mesa 25.0.7', isFallbackAdapter: true, software: true };
const doctorReport = (webgpu: DoctorReport['webgpu'], outcome: 'available' | 'failed', reason?: string): DoctorReport => ({
  attempts: [
    { name: 'node-gpu', outcome: 'failed', reason: '@tensorflow/tfjs-node-gpu is not installed' },
    { name: 'webgpu', outcome, reason, adapter: webgpu?.adapter ?? undefined },
    { name: 'node', outcome: 'failed', reason: '@tensorflow/tfjs-node is not installed' },
    { name: 'wasm', outcome: 'available' },
    { name: 'cpu', outcome: 'available' },
  ],
  chosen: 'wasm',
  node: 'v20.0.0',
  platform: 'linux-x64',
  webgpu,
});
const context = { setting: 'auto' as const, extensionPath: '/ext', ldLibraryPath: undefined, gpu: { found: false, gpus: [] } };

test('Check GPU Setup shows a software adapter, why auto passes over it, and the way to a GPU', () => {
  const report = doctorReport({ adapter: llvmpipe, usedByAuto: false, reason: 'the only WebGPU adapter is a software one', fix: 'Install your GPU driver with Vulkan support' }, 'available', 'the only WebGPU adapter is a software one');
  const markdown = doctorMarkdown(report, context);
  assert.match(markdown, /## WebGPU/);
  assert.match(markdown, /\| mesa \| software \| llvmpipe \| llvmpipe: Mesa 25\.0\.7 \| yes \|/);
  assert.match(markdown, /\*\*a software adapter\*\*/);
  assert.match(markdown, /\*\*For a GPU:\*\* Install your GPU driver with Vulkan support/);
  assert.match(backendForRuns(report, 'auto').explanation, /passing over `webgpu`/);
  assert.equal(backendForRuns(report, 'webgpu').backend, 'webgpu', 'pinned, the software adapter is used');
});

test('Check GPU Setup says why there is no adapter, with the fix, and how to install the packages beside the extension', () => {
  const reason = "the webgpu backend's packages are not installed";
  const report = doctorReport({ adapter: null, usedByAuto: false, reason, fix: 'npm install webgpu@0.6 @tensorflow/tfjs-backend-webgpu@4.22.0' }, 'failed', reason);
  const markdown = doctorMarkdown(report, context);
  assert.match(markdown, /No WebGPU adapter: the webgpu backend's packages are not installed/);
  assert.match(markdown, /\*\*Fix:\*\* npm install webgpu@0\.6/);
  assert.match(markdown, /cd "\/ext" && npm install --no-save webgpu@0\.6 @tensorflow\/tfjs-backend-webgpu@4\.22\.0/);
  assert.equal(backendForRuns(report, 'webgpu').backend, null);
  // A report from a CLI before webgpu has no section and still renders.
  assert.doesNotMatch(doctorMarkdown({ ...report, webgpu: undefined }, context), /## WebGPU/);
});
