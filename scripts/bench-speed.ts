/**
 * bench:speed — throughput of Sift's model on this machine: training (full and
 * half resolution), scoring a super-batch (learner forward, full and half), a
 * whole JEST step (score the super-batch, select jointly, train), loading
 * built-in images, and the backend's matmul peak. Writes
 * bench-results/speed.{json,md}.
 *
 * With --vs-pytorch it also times the same model written in plain PyTorch
 * (scripts/pytorch/sift_torch.py, set up by scripts/pytorch/setup.sh): it
 * first checks the port against Sift on shared weights (same parameter names
 * and shapes, same losses and update), then, for each figure, alternates Sift
 * and PyTorch rounds so that both see the same load on a shared machine, and
 * reports each one's median, their ratio and each one's effective GFLOP/s.
 *
 *   npm run bench:speed [-- --backend wasm --batch-size 64 --filter-ratio 0.8]
 *   npm run bench:speed -- --vs-pytorch [--threads 2 --rounds 4 --model large]
 *
 * On a machine with an NVIDIA GPU: Sift on webgpu (Dawn on the Vulkan driver)
 * against PyTorch on CUDA, with any Python that has a CUDA torch:
 *
 *   npm run bench:speed -- --backend webgpu --vs-pytorch --torch-device cuda --torch-python python3 [--model wide]
 *
 * (scripts/gpu/measure.sh runs that from a packed bundle, scripts/gpu/pack.sh.)
 */
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as readline from 'node:readline';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import { adapterLabel, parseBackendChoice, selectBackend, type BackendName } from '../src/core/backend';
import { openDataset } from '../src/core/data/open';
import { Tokenizer } from '../src/core/data/tokenizer';
import { DualEncoder, forwardFlops, patchify, type ModelConfig } from '../src/core/model/dualEncoder';
import { contrastiveLoss } from '../src/core/model/losses';
import { Rng } from '../src/core/random';
import { scoreMatrix, type SquareMatrix } from '../src/core/selection/scores';
import { pairwiseScorer, selectJoint } from '../src/core/selection/selectors';
import { defaultTrainConfig, modelConfigFor, type TrainConfig } from '../src/core/train/config';
import { Learner } from '../src/core/train/learner';
import { AdamW, type OptimizerConfig } from '../src/core/train/optimizer';
import type { PairMatrices, Shard } from '../src/core/train/replicaProtocol';

const { values } = parseArgs({
  options: {
    backend: { type: 'string', default: 'auto' },
    'batch-size': { type: 'string', default: '64' },
    /** Super-batch B = round(b / (1 − F)); --super-batch overrides it. */
    'filter-ratio': { type: 'string', default: '0.8' },
    'super-batch': { type: 'string' },
    /** Timed runs per round (after one warm-up run). */
    repeats: { type: 'string' },
    /** Sift/PyTorch alternations per figure (--vs-pytorch). */
    rounds: { type: 'string' },
    model: { type: 'string', default: 'default' },
    'vs-pytorch': { type: 'boolean', default: false },
    /**
     * PyTorch's intra-op and BLAS threads. Sift's wasm backend runs on one
     * thread in Node, so when this is more than 1 a one-thread PyTorch is
     * timed as well (unless --no-single-thread).
     */
    threads: { type: 'string', default: String(os.cpus().length) },
    'no-single-thread': { type: 'boolean', default: false },
    /** Sift's data-parallel threads (0 = auto, as a run's default). */
    'sift-threads': { type: 'string', default: '0' },
    /** Instead of the figures: Sift's training step on each of these thread counts (e.g. 1,2), alternating, then exit. */
    'compare-threads': { type: 'string' },
    /** tuned (run.sh raises glibc's malloc thresholds), default (glibc as it comes) or tcmalloc (from setup.sh). */
    'torch-malloc': { type: 'string', default: 'tuned' },
    /** Where PyTorch runs: cpu, or cuda (one server; threads only set its host-side work). */
    'torch-device': { type: 'string', default: process.env.SIFT_TORCH_DEVICE ?? 'cpu' },
    /**
     * A Python with torch to run the port with directly (e.g. python3, or a
     * venv's), instead of scripts/pytorch/run.sh (Debian's torch with the
     * OpenBLAS from setup.sh). --torch-malloc then does not apply.
     */
    'torch-python': { type: 'string', default: process.env.SIFT_TORCH_PYTHON },
    /** Go on when the port check fails (the report says FAILED, with its numbers) instead of stopping. */
    'allow-port-mismatch': { type: 'boolean', default: false },
    /** Go on with Sift alone when PyTorch fails to start (the report says why) instead of stopping. */
    'torch-optional': { type: 'boolean', default: false },
    /**
     * Pause before each side's round: an idle PyTorch keeps its OpenBLAS
     * threads spinning for ~0.1 s after its last matmul, which would take CPU
     * from the Sift round that follows.
     */
    'settle-ms': { type: 'string', default: '250' },
    /** Size of the square matmul that measures each side's peak. */
    'matmul-size': { type: 'string', default: '1024' },
    out: { type: 'string', default: 'bench-results' },
  },
});

/** The optimizer both sides train with (Sift's AdamW settings; the schedule only sets the step size). */
const optimizerConfig: OptimizerConfig = { learningRate: 1e-3, beta1: 0.9, beta2: 0.98, epsilon: 1e-8, weightDecay: 1e-4, clipNorm: 1, warmupSteps: 10, totalSteps: 1000, minLrRatio: 0.1 };

/**
 * Model sizes: Sift's default, and a larger Mixer where matmuls weigh more in
 * the step (elementwise work grows with width, matmul work with width²): 4×
 * the channels and twice the blocks on 64 px images, 2.5 M parameters,
 * ~30× the FLOPs. 384 channels would be closer to a small ViT, but its
 * training step at b = 64 does not fit in the wasm backend's 4 GB heap.
 */
const modelPresets: Record<string, Partial<TrainConfig>> = {
  default: {},
  large: { imageSize: 64, patchSize: 8, imageWidth: 256, imageDepth: 6, textWidth: 256, textDepth: 2, embedDim: 128 },
  /** The large preset at 384 channels, about a small ViT's width: for GPUs (on wasm its step at b = 64 does not fit the 4 GB heap). */
  wide: { imageSize: 64, patchSize: 8, imageWidth: 384, imageDepth: 6, textWidth: 384, textDepth: 2, embedDim: 128 },
};

// ---- the Sift side ------------------------------------------------------------

/** What one side of the benchmark is given: the model, the optimizer, and a super-batch of real pairs. */
export interface SiftSideConfig {
  model: ModelConfig;
  optimizer: OptimizerConfig;
  /** Pairs trained per step (b). */
  batch: number;
  /** Candidates scored per JEST step (B); `train` uses the first `batch` of them. */
  superBatch: number;
  /** Chunks of the joint sampler. */
  chunks: number;
  seed: number;
  /** [superBatch, imageSize, imageSize, 3] floats in [0, 1], HWC. */
  pixels: Float32Array;
  /** [superBatch, textLength] padded token ids. */
  ids: Int32Array;
  backend: BackendName;
  /** Sift's threads (0 = auto, as a run). */
  threads: number;
}

export interface SiftSide {
  /** Threads the learner runs on. */
  threads: number;
  /** One optimizer step on `batch` pairs: forward, loss, backward, clip, AdamW. `scale` 2 = half resolution. */
  train(scale?: number): Promise<void>;
  /** The learner's forward over the super-batch and its B × B pair-loss matrix, read back to the host. */
  score(scale?: number): Promise<void>;
  /** score, joint selection of b of B by learnability (against a fixed reference matrix), train on them. */
  jestStep(): Promise<void>;
  parameters: number;
  shapes: Record<string, number[]>;
  dispose(): Promise<void> | void;
}

/**
 * ===== The Sift model and trainer under test =====
 * Everything the Sift figures time is built here; swap in another trainer
 * (a multi-threaded one, a worker pool) by returning other closures with the
 * same meaning. The PyTorch equivalence check below does not use this.
 */
export async function makeSiftSide(config: SiftSideConfig): Promise<SiftSide> {
  const { model: modelConfig, batch, superBatch } = config;
  const model = new DualEncoder(modelConfig, new Rng(config.seed));
  const optimizer = new AdamW(config.optimizer, model.params.variables);
  // The trainer's own Learner: the same step code, threads and kernels a run uses.
  const { learner, threads } = await Learner.create(model, optimizer, 'sigmoid', config.backend, config.threads, batch);
  const imageFloats = modelConfig.imageSize * modelConfig.imageSize * 3;
  const length = modelConfig.textLength;
  const trainPixels = config.pixels.subarray(0, batch * imageFloats);
  const trainIds = config.ids.subarray(0, batch * length);
  // A fixed stand-in for the reference model's pair losses: only the learner's work is timed (PyTorch's side does the same).
  const referenceRng = new Rng(config.seed + 1);
  const reference: SquareMatrix = { size: superBatch, values: Float32Array.from({ length: superBatch * superBatch }, () => 2 * referenceRng.next()) };
  const selectionRng = new Rng(config.seed + 2);
  let step = 0;

  const shardOf = (pixels: Float32Array, ids: Int32Array, count: number, scale: number): Shard => ({ images: [patchify(pixels, count, modelConfig.imageSize, modelConfig.patchSize, scale)], ids, texts: count });
  const trainOn = async (pixels: Float32Array, ids: Int32Array, count: number, scale: number): Promise<void> => {
    const { grads } = await learner.gradients(shardOf(pixels, ids, count, scale));
    await learner.apply(grads, step++);
  };
  const aligned = Int32Array.from({ length: superBatch }, (_, row) => row);
  const score = async (scale: number): Promise<PairMatrices> =>
    (await learner.score({ count: superBatch, loss: 'sigmoid', learner: { pixels: config.pixels, imageSize: modelConfig.imageSize, patchSize: modelConfig.patchSize, scale, ids: config.ids, texts: superBatch, textOf: aligned } })).learner!;

  return {
    threads,
    train: async (scale = 1) => trainOn(trainPixels, trainIds, batch, scale),
    score: async (scale = 1) => {
      await score(scale);
    },
    jestStep: async () => {
      const { pairLoss } = await score(1);
      const scorer = pairwiseScorer(scoreMatrix('learnability', pairLoss, reference));
      const { picked } = selectJoint(scorer, { count: batch, chunks: config.chunks, normalization: 'sum', temperature: 1 }, selectionRng);
      const pixels = new Float32Array(batch * imageFloats);
      const ids = new Int32Array(batch * length);
      picked.forEach((row, i) => {
        pixels.set(config.pixels.subarray(row * imageFloats, (row + 1) * imageFloats), i * imageFloats);
        ids.set(config.ids.subarray(row * length, (row + 1) * length), i * length);
      });
      await trainOn(pixels, ids, batch, 1);
    },
    parameters: model.params.count(),
    shapes: Object.fromEntries([...model.params.variables].map(([name, variable]) => [name, [...variable.shape]])),
    dispose: async () => {
      await learner.close();
      optimizer.dispose();
      model.dispose();
    },
  };
}
// ===== end of the Sift side =====

/**
 * Sift's training step on several thread counts, alternating rounds so that
 * each count sees the same load; writes bench-results/threads.{json,md}.
 */
async function compareThreads(counts: number[], base: SiftSideConfig, rounds: number, repeats: number): Promise<void> {
  const sides = [];
  for (const threads of counts) sides.push({ threads, side: await makeSiftSide({ ...base, threads }), samples: [] as number[] });
  for (let round = 0; round < rounds; round++) {
    for (const entry of sides) entry.samples.push(...(await timeSamples(() => entry.side.train(1), repeats)));
  }
  const perExample = forwardFlops(base.model);
  const stepGflop = (3 * (perExample.image + perExample.text) * base.batch) / 1e9;
  const baseline = median(sides[0].samples);
  const rows = sides.map(({ threads, samples }) => ({ threads, medianSeconds: median(samples), speedUp: baseline / median(samples), examplesPerSecond: base.batch / median(samples) }));
  const markdown = [
    `# bench:speed --compare-threads — training step, b = ${base.batch}, ${stepGflop.toFixed(1)} GFLOP a step, ${rounds} rounds × ${repeats} steps per thread count, alternating`,
    '',
    '| threads | median step | examples/s | speed-up over the first |',
    '| --- | --- | --- | --- |',
    ...rows.map((r) => `| ${r.threads} | ${(1000 * r.medianSeconds).toFixed(1)} ms | ${r.examplesPerSecond.toFixed(0)} | ${r.speedUp.toFixed(2)}× |`),
  ].join('\n');
  fs.mkdirSync(values.out!, { recursive: true });
  fs.writeFileSync(path.join(values.out!, 'threads.json'), JSON.stringify({ benchmark: 'threads', date: new Date().toISOString(), batch: base.batch, stepGflop, rows }, null, 2) + '\n');
  fs.writeFileSync(path.join(values.out!, 'threads.md'), markdown + '\n');
  process.stdout.write(`${markdown}\n\nWritten ${path.join(values.out!, 'threads.json')} and .md\n`);
  for (const { side } of sides) await side.dispose();
}

/** Seconds of `repeats` runs of fn after one warm-up run. */
async function timeSamples(fn: () => Promise<void> | void, repeats: number): Promise<number[]> {
  await fn();
  const samples: number[] = [];
  for (let i = 0; i < repeats; i++) {
    const start = performance.now();
    await fn();
    samples.push((performance.now() - start) / 1000);
  }
  return samples;
}

function median(samples: readonly number[]): number {
  const sorted = [...samples].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

/** The parts of tfjs-backend-webgpu's backend object that deviceIdle uses. */
interface WebGpuQueueInternals {
  commandEncoder?: unknown;
  endComputePassEncoder?(): void;
  submitQueue?(): void;
  queue?: { onSubmittedWorkDone?(): Promise<unknown> };
}

/**
 * Waits until the GPU has run everything queued so far (webgpu; nothing to
 * wait for on the CPU backends). Sift's steps read results back, which waits
 * for the work before them, but AdamW's update kernels are queued after the
 * last read: without this a timed step would leave them to the next one.
 */
async function deviceIdle(): Promise<void> {
  if (tf.getBackend() !== 'webgpu') return;
  const backend = tf.backend() as unknown as WebGpuQueueInternals;
  if (backend.commandEncoder) {
    // What tfjs itself does before a read: close the open pass and submit the recorded commands.
    backend.endComputePassEncoder?.();
    backend.submitQueue?.();
  }
  await backend.queue?.onSubmittedWorkDone?.();
}

/**
 * The backend's peak: seconds of one n×n·n×n float32 matMul, read back (on
 * the CPU backends), or waited for on the GPU (reading back n² floats would
 * time the transfer, which PyTorch's side does not do).
 */
function tfMatmul(n: number): () => Promise<void> {
  const rng = new Rng(7);
  const a = tf.tensor2d(Float32Array.from({ length: n * n }, () => rng.normal()), [n, n]);
  const b = tf.tensor2d(Float32Array.from({ length: n * n }, () => rng.normal()), [n, n]);
  const gpu = tf.getBackend() === 'webgpu';
  return async () => {
    const product = tf.matMul(a, b);
    if (gpu) await deviceIdle();
    else await product.data();
    product.dispose();
  };
}

// ---- the PyTorch side ------------------------------------------------------------

const torchDir = path.join(__dirname, 'pytorch');
const setupHint = 'set it up with: bash scripts/pytorch/setup.sh (as root; Debian bookworm)';

/**
 * Why PyTorch cannot run here, or undefined when it can: with `python` (a
 * Python given with --torch-python), whether it imports torch and, for a CUDA
 * device, sees one; else Debian's torch and the OpenBLAS run.sh needs.
 */
function torchUnavailable(python: string | undefined, device: string): string | undefined {
  if (python) {
    const probe = spawnSync(python, ['-c', `import torch, sys; sys.exit(0 if torch.device(${JSON.stringify(device)}).type != 'cuda' or torch.cuda.is_available() else 3)`], { encoding: 'utf8' });
    if (probe.error) return `${python} did not run: ${probe.error.message}`;
    if (probe.status === 3) return `${python}'s torch sees no CUDA device`;
    if (probe.status !== 0) return `${python} cannot import torch: ${probe.stderr.trim().split('\n').pop()}`;
    return undefined;
  }
  if (device !== 'cpu') return `--torch-device ${device} needs a Python whose torch has it: give --torch-python (run.sh runs Debian's CPU-only torch)`;
  const debian = '/usr/bin/python3';
  if (!fs.existsSync(debian)) return `${debian} does not exist; ${setupHint}`;
  const probe = spawnSync(debian, ['-c', 'import torch'], { encoding: 'utf8' });
  if (probe.status !== 0) return `${debian} cannot import torch; ${setupHint}`;
  const cache = path.join(__dirname, '..', '.cache', 'openblas');
  if (!fs.existsSync(cache)) return `no OpenBLAS in .cache/openblas (Debian's torch would use the reference BLAS, ~20x slower); ${setupHint}`;
  return undefined;
}

interface TorchAnswer {
  ok: boolean;
  error?: string;
  [key: string]: unknown;
}

/** The PyTorch server: one JSON command per line in, one JSON answer per line out. */
class TorchServer {
  private readonly answers: ((line: string) => void)[] = [];
  private exited: string | undefined;

  private constructor(private readonly child: ChildProcessWithoutNullStreams) {
    readline.createInterface({ input: child.stdout }).on('line', (line) => this.answers.shift()?.(line));
    child.stderr.on('data', (chunk: Buffer) => process.stderr.write(`[pytorch] ${chunk.toString()}`));
    const gone = (why: string): void => {
      this.exited ??= why;
      for (const answer of this.answers.splice(0)) answer(JSON.stringify({ ok: false, error: this.exited }));
    };
    child.on('exit', (code, signal) => gone(`the PyTorch server exited (${signal ?? `code ${code}`})`));
    child.on('error', (error) => gone(`the PyTorch server did not start: ${error.message}`));
    // Writing to a server that has exited fails with EPIPE: its exit already answers what was pending.
    child.stdin.on('error', () => undefined);
  }

  /** Through run.sh (Debian's torch, OpenBLAS, `malloc`), or with `python` directly when given. */
  static start(malloc: string, python?: string): TorchServer {
    const child = python
      ? spawn(python, [path.join(torchDir, 'sift_torch.py')], { stdio: ['pipe', 'pipe', 'pipe'] })
      : spawn('bash', [path.join(torchDir, 'run.sh')], { env: { ...process.env, SIFT_TORCH_MALLOC: malloc }, stdio: ['pipe', 'pipe', 'pipe'] });
    return new TorchServer(child);
  }

  async request<T = TorchAnswer>(command: Record<string, unknown>): Promise<T & TorchAnswer> {
    if (this.exited) throw new Error(this.exited);
    const line = await new Promise<string>((resolve) => {
      this.answers.push(resolve);
      this.child.stdin.write(JSON.stringify(command) + '\n');
    });
    const answer = JSON.parse(line) as T & TorchAnswer;
    if (!answer.ok) throw new Error(`PyTorch ${String(command.cmd)}: ${answer.error}`);
    return answer;
  }

  /** Ends the server without asking (one that failed or hangs). */
  kill(): void {
    if (!this.exited) this.child.kill('SIGKILL');
  }

  async close(): Promise<void> {
    if (this.exited) return;
    const gone = new Promise((resolve) => this.child.once('exit', resolve));
    await this.request({ cmd: 'quit' }).catch(() => undefined);
    await gone;
  }
}

const base64 = (array: Float32Array | Int32Array): string => Buffer.from(array.buffer, array.byteOffset, array.byteLength).toString('base64');
const fromBase64 = (text: string): Float32Array => {
  const bytes = Buffer.from(text, 'base64');
  return new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
};
const maxAbsDiff = (a: Float32Array, b: Float32Array): number => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);

interface PortCheck {
  examples: number;
  loss: { sift: number; pytorch: number };
  maxPairLossDiff: number;
  maxEmbeddingDiff: number;
  halfResolutionLoss: { sift: number; pytorch: number };
  gradNorm: { sift: number; pytorch: number };
  lossAfterStep: { sift: number; pytorch: number };
  /** The bounds checked: loss and gradient norm relative, pair losses and embeddings absolute. */
  tolerances: { loss: number; pairLoss: number; embedding: number; gradNorm: number; lossAfterStep: number };
  passed: boolean;
}

/**
 * The port check's bounds. CPU against CPU: float32 results of the same maths
 * in another order. With a GPU on either side (webgpu's WGSL, CUDA) ten times
 * looser: GPU kernels sum in other orders and tiles, and their exp/log/sqrt
 * are not correctly rounded (tfjs on lavapipe, a GPU emulated on the CPU,
 * already differed from tfjs's own cpu backend by up to 1e-4). Still far
 * below what the step itself changes (the last condition of checkPort).
 */
function portTolerances(gpu: boolean): PortCheck['tolerances'] {
  const scale = gpu ? 10 : 1;
  return { loss: 1e-4 * scale, pairLoss: 1e-3 * scale, embedding: 1e-4 * scale, gradNorm: 1e-3 * scale, lossAfterStep: 1e-3 * scale };
}

/**
 * Sift's weights into the PyTorch model, then the same examples through both:
 * losses, pair-loss matrices and embeddings at full and half resolution, and
 * one training step (gradient norm, loss after the update). Independent of
 * makeSiftSide, so it keeps checking the port when the Sift side changes.
 */
async function checkPort(torch: TorchServer, modelConfig: ModelConfig, pixels: Float32Array, ids: Int32Array, tolerances: PortCheck['tolerances']): Promise<PortCheck> {
  const imageFloats = modelConfig.imageSize * modelConfig.imageSize * 3;
  // 8 examples, or all there are when the super-batch is smaller (a dry run).
  const count = Math.min(8, pixels.length / imageFloats);
  const images = pixels.slice(0, count * imageFloats);
  const texts = ids.slice(0, count * modelConfig.textLength);
  const model = new DualEncoder(modelConfig, new Rng(123));
  // Past warm-up, so the update is a full-size step.
  const step = optimizerConfig.warmupSteps + 5;
  const optimizer = new AdamW(optimizerConfig, model.params.variables);
  try {
    const saved = await model.params.save();
    await torch.request({ cmd: 'load', step, params: Object.fromEntries(saved.map((p) => [p.name, base64(p.values)])) });
    // Reads are asynchronous, as in makeSiftSide: not every backend can read a tensor synchronously.
    const siftForward = async (scale: number): Promise<{ loss: number; pairLoss: Float32Array; image: Float32Array; text: Float32Array }> => {
      const outputs = tf.tidy(() => {
        const image = model.embedImages(patchify(images, count, modelConfig.imageSize, modelConfig.patchSize, scale));
        const text = model.embedTexts(texts, count);
        const out = contrastiveLoss('sigmoid', image, text, model.temperature, model.bias);
        return [out.loss, out.pairLoss, image, text];
      });
      const [loss, pairLoss, image, text] = (await Promise.all(outputs.map((t) => t.data()))) as Float32Array[];
      tf.dispose(outputs);
      return { loss: loss[0], pairLoss, image, text };
    };
    const torchForward = async (scale: number): Promise<{ loss: number; pairLoss: Float32Array; image: Float32Array; text: Float32Array }> => {
      const answer = await torch.request<{ loss: number; pairLoss: string; image: string; text: string }>({ cmd: 'forward', count, scale, images: base64(images), ids: base64(texts) });
      return { loss: answer.loss, pairLoss: fromBase64(answer.pairLoss), image: fromBase64(answer.image), text: fromBase64(answer.text) };
    };
    const sift = await siftForward(1);
    const pt = await torchForward(1);
    const siftHalf = await siftForward(2);
    const ptHalf = await torchForward(2);

    const { value, grads } = tf.variableGrads(() => contrastiveLoss('sigmoid', model.embedImages(patchify(images, count, modelConfig.imageSize, modelConfig.patchSize, 1)), model.embedTexts(texts, count), model.temperature, model.bias).loss);
    const siftNorm = await optimizer.apply(grads, step);
    tf.dispose([value, ...Object.values(grads)]);
    const ptStep = await torch.request<{ gradNorm: number }>({ cmd: 'train_once', count, images: base64(images), ids: base64(texts) });
    const siftAfter = (await siftForward(1)).loss;
    const ptAfter = (await torchForward(1)).loss;

    const check: PortCheck = {
      examples: count,
      loss: { sift: sift.loss, pytorch: pt.loss },
      maxPairLossDiff: maxAbsDiff(sift.pairLoss, pt.pairLoss),
      maxEmbeddingDiff: Math.max(maxAbsDiff(sift.image, pt.image), maxAbsDiff(sift.text, pt.text)),
      halfResolutionLoss: { sift: siftHalf.loss, pytorch: ptHalf.loss },
      gradNorm: { sift: siftNorm, pytorch: ptStep.gradNorm },
      lossAfterStep: { sift: siftAfter, pytorch: ptAfter },
      tolerances,
      passed: false,
    };
    const close = (a: number, b: number, tolerance: number): boolean => Math.abs(a - b) <= tolerance * Math.max(1, Math.abs(a));
    check.passed =
      close(sift.loss, pt.loss, tolerances.loss) &&
      check.maxPairLossDiff < tolerances.pairLoss &&
      check.maxEmbeddingDiff < tolerances.embedding &&
      close(siftHalf.loss, ptHalf.loss, tolerances.loss) &&
      close(siftNorm, ptStep.gradNorm, tolerances.gradNorm) &&
      close(siftAfter, ptAfter, tolerances.lossAfterStep) &&
      Math.abs(siftAfter - sift.loss) > 10 * Math.abs(siftAfter - ptAfter); // the step moved the loss far more than the sides differ
    return check;
  } finally {
    optimizer.dispose();
    model.dispose();
  }
}

// ---- the figures ---------------------------------------------------------------------

interface SideFigure {
  seconds: number;
  best: number;
  examplesPerSecond: number;
  gflops: number;
  roundMedians: number[];
}

interface TorchFigure extends SideFigure {
  threads: number;
  /** Sift examples/s ÷ PyTorch examples/s (medians); > 1 = Sift faster. */
  ratio: number;
  /** The same for each side's fastest run (the least disturbed by other load). */
  ratioOfBest: number;
}

interface Figure {
  name: string;
  /** What an "example" is for this figure. */
  unit: string;
  examples: number;
  flops: number;
  sift: SideFigure;
  pytorch: TorchFigure[];
}

function sideFigure(rounds: number[][], examples: number, flops: number): SideFigure {
  const all = rounds.flat();
  const seconds = median(all);
  return { seconds, best: Math.min(...all), examplesPerSecond: examples / seconds, gflops: flops / seconds / 1e9, roundMedians: rounds.map(median) };
}

async function main(): Promise<void> {
  const started = performance.now();
  const preset = modelPresets[values.model!];
  if (!preset) throw new Error(`--model ${values.model}: expected one of ${Object.keys(modelPresets).join(', ')}`);
  const large = values.model !== 'default';
  const batch = Number(values['batch-size']);
  const filterRatio = Number(values['filter-ratio']);
  const superBatch = values['super-batch'] ? Number(values['super-batch']) : Math.round(batch / (1 - filterRatio));
  const vsPytorch = values['vs-pytorch']!;
  // The larger models' steps take seconds each on wasm: fewer, so the whole run stays in minutes.
  const repeats = Number(values.repeats ?? (large ? 1 : vsPytorch ? 4 : 8));
  const rounds = vsPytorch ? Number(values.rounds ?? (large ? 3 : 4)) : 1;
  const threads = Number(values.threads);
  const matmulSize = Number(values['matmul-size']);
  const settleMs = vsPytorch ? Number(values['settle-ms']) : 0;
  const settle = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, settleMs));

  // Both sides' OpenBLAS picks its kernels for this processor: the PyTorch
  // side unsets these two (run.sh), and so does this process before the
  // native matMul addon loads OpenBLAS (an environment may pin an older core
  // type, which slows it by up to 2×). Node's process.env writes through to
  // the C environment that OpenBLAS reads.
  const pinnedBlas = ['OPENBLAS_CORETYPE', 'OPENBLAS_L2_SIZE'].filter((name) => process.env[name] !== undefined);
  for (const name of pinnedBlas) delete process.env[name];
  const backend = await selectBackend(parseBackendChoice(values.backend!));
  const config = { ...defaultTrainConfig, ...preset, batchSize: batch, filterRatio };
  const data = await openDataset(`builtin:train?size=${Math.max(2000, superBatch)}`, { resolution: config.imageSize });
  const captions = Array.from({ length: data.size }, (_, i) => data.caption(i));
  const tokenizer = Tokenizer.build(captions, { maxVocab: config.maxVocab, maxLength: config.textLength });
  const modelConfig = modelConfigFor(config, tokenizer.size);
  const rows = (n: number): number[] => Array.from({ length: n }, (_, i) => i);
  const pixels = await data.loadImages(rows(superBatch));
  const ids = tokenizer.encodeBatch(captions.slice(0, superBatch));

  if (values['compare-threads']) {
    await compareThreads(values['compare-threads'].split(',').map(Number), { model: modelConfig, optimizer: optimizerConfig, batch, superBatch, chunks: config.chunks, seed: 0, pixels, ids, backend: backend.chosen, threads: 0 }, Number(values.rounds ?? 3), repeats);
    await data.close();
    return;
  }
  const sift = await makeSiftSide({ model: modelConfig, optimizer: optimizerConfig, batch, superBatch, chunks: config.chunks, seed: 0, pixels, ids, backend: backend.chosen, threads: Number(values['sift-threads']) });
  const adapter = backend.attempts.find((a) => a.name === backend.chosen)?.adapter;
  if (adapter) process.stdout.write(`Sift on ${backend.chosen}: ${adapterLabel(adapter)} (vendor ${adapter.vendor || '?'}, architecture ${adapter.architecture || '?'})\n`);
  const torchDevice = values['torch-device']!;
  const torchPython = values['torch-python'] || undefined;
  const onGpu = backend.chosen === 'webgpu' || backend.chosen === 'node-gpu' || torchDevice !== 'cpu';

  // ---- PyTorch: start (one server per thread count), compare the models, check the port.
  const torches: { threads: number; server: TorchServer }[] = [];
  let torchInfo: Record<string, unknown> | undefined;
  let portCheck: PortCheck | undefined;
  let skipped: string | undefined;
  if (vsPytorch) {
    skipped = torchUnavailable(torchPython, torchDevice);
    if (skipped) {
      process.stderr.write(`bench:speed: skipping PyTorch: ${skipped}\n`);
    } else {
      // On a GPU one server: its threads only run the host side (launches, the joint sampler).
      const threadCounts = threads > 1 && !values['no-single-thread'] && torchDevice === 'cpu' ? [threads, 1] : [threads];
      try {
        for (const count of threadCounts) {
          const server = TorchServer.start(values['torch-malloc']!, torchPython);
          torches.push({ threads: count, server });
          const init = await server.request<{ parameters: number; shapes: Record<string, number[]>; torch: string; threads: number; blas: unknown; malloc: string; ompWaitPolicy: string; device: string; deviceName?: string; cuda?: string; capability?: string; matmulPrecision: string }>({ cmd: 'init', model: modelConfig, optimizer: optimizerConfig, threads: count, seed: 0, device: torchDevice });
          if (init.parameters !== sift.parameters) throw new Error(`PyTorch's model has ${init.parameters} parameters, Sift's ${sift.parameters}: the port is not the same model`);
          const mismatched = Object.entries(sift.shapes).filter(([name, shape]) => init.shapes[name]?.join('x') !== shape.join('x'));
          const extra = Object.keys(init.shapes).filter((name) => !(name in sift.shapes));
          if (mismatched.length || extra.length) {
            throw new Error(`PyTorch's parameters differ from Sift's: ${[...mismatched.map(([n, s]) => `${n} ${s.join('×')} vs ${init.shapes[n]?.join('×') ?? 'missing'}`), ...extra.map((n) => `${n} only in PyTorch`)].join('; ')}`);
          }
          if (!torchInfo) {
            torchInfo = { version: init.torch, device: init.device, deviceName: init.deviceName, cuda: init.cuda, capability: init.capability, matmulPrecision: init.matmulPrecision, python: torchPython ?? 'scripts/pytorch/run.sh', threads: threadCounts, blas: init.blas, malloc: torchPython ? `${init.malloc} (run directly, not through run.sh)` : init.malloc, ompWaitPolicy: init.ompWaitPolicy, parameters: init.parameters, sameNamesAndShapes: Object.keys(sift.shapes).length };
            portCheck = await checkPort(server, modelConfig, pixels, ids, portTolerances(onGpu));
            if (!portCheck.passed) {
              const why = `the PyTorch port does not compute what Sift does, so its times would compare different work: ${JSON.stringify(portCheck)}`;
              if (!values['allow-port-mismatch']) throw new Error(why);
              process.stderr.write(`bench:speed: WARNING (--allow-port-mismatch, going on): ${why}\n`);
            }
            process.stdout.write(`PyTorch ${init.torch} on ${init.deviceName ?? init.device}: ${init.parameters} parameters, every name and shape as Sift's; port check ${portCheck.passed ? 'passed' : 'FAILED'} (loss ${portCheck.loss.sift.toFixed(5)} vs ${portCheck.loss.pytorch.toFixed(5)}, max embedding diff ${portCheck.maxEmbeddingDiff.toExponential(1)}).\n`);
          }
        }
      } catch (error) {
        if (!values['torch-optional']) throw error;
        skipped = `PyTorch failed to start: ${(error as Error).message.split('\n')[0]}`;
        process.stderr.write(`bench:speed: --torch-optional, going on with Sift alone: ${skipped}\n`);
        for (const { server } of torches) server.kill();
        torches.length = 0;
      }
    }
  }

  // ---- the measurements: each figure alternates Sift and PyTorch rounds.
  const full = forwardFlops(modelConfig, 1);
  const half = forwardFlops(modelConfig, 2);
  const fullForward = full.image + full.text;
  const halfForward = half.image + half.text;
  const figures: Figure[] = [];
  const measure = async (name: string, unit: string, examples: number, flops: number, siftFn: () => Promise<void> | void, torchCommand?: Record<string, unknown>, siftRepeats = repeats): Promise<void> => {
    const siftRounds: number[][] = [];
    const torchRounds: number[][][] = torches.map(() => []);
    // On a GPU each timed run ends when the device has run all it queued.
    const siftRun = async (): Promise<void> => {
      await siftFn();
      await deviceIdle();
    };
    for (let round = 0; round < rounds; round++) {
      await settle();
      siftRounds.push(await timeSamples(siftRun, siftRepeats));
      if (!torchCommand) continue;
      for (const [i, { server }] of torches.entries()) {
        await settle();
        torchRounds[i].push((await server.request<{ samples: number[] }>({ ...torchCommand, repeats: siftRepeats })).samples);
      }
    }
    const siftFigure = sideFigure(siftRounds, examples, flops);
    const pytorch = torchCommand
      ? torches.map(({ threads: count }, i): TorchFigure => {
          const side = sideFigure(torchRounds[i], examples, flops);
          return { threads: count, ...side, ratio: siftFigure.examplesPerSecond / side.examplesPerSecond, ratioOfBest: side.best / siftFigure.best };
        })
      : [];
    figures.push({ name, unit, examples, flops, sift: siftFigure, pytorch });
    process.stdout.write(`  ${name}: Sift ${(1000 * siftFigure.seconds).toFixed(1)} ms${pytorch.map((p) => `, PyTorch ${p.threads}T ${(1000 * p.seconds).toFixed(1)} ms`).join('')}\n`);
  };
  await measure('train (full resolution)', 'trained pairs', batch, 3 * fullForward * batch, () => sift.train(1), { cmd: 'train', batch, scale: 1 });
  await measure('train (half resolution)', 'trained pairs', batch, 3 * halfForward * batch, () => sift.train(2), { cmd: 'train', batch, scale: 2 });
  await measure('score super-batch (full resolution)', 'scored candidates', superBatch, fullForward * superBatch, () => sift.score(1), { cmd: 'score', superBatch, scale: 1 });
  await measure('score super-batch (half resolution)', 'scored candidates', superBatch, halfForward * superBatch, () => sift.score(2), { cmd: 'score', superBatch, scale: 2 });
  await measure(`JEST step (F = ${filterRatio}: score ${superBatch}, select ${batch}, train)`, 'trained pairs', batch, fullForward * superBatch + 3 * fullForward * batch, () => sift.jestStep(), { cmd: 'jest_step', batch, superBatch, chunks: config.chunks });
  await measure(`matmul ${matmulSize}³ (peak)`, 'matmuls', 1, 2 * matmulSize ** 3, tfMatmul(matmulSize), { cmd: 'matmul', n: matmulSize }, Math.max(repeats, 5));
  if (!vsPytorch) {
    await measure('load + render built-in images', 'images', superBatch, 0, async () => void (await data.loadImages(rows(superBatch))));
  }

  // The per-op profile of a training step, on one thread (the least disturbed by other load) and, where
  // setup.sh fetched it, with tcmalloc: the profiler's own allocations make glibc fault pages in on every step.
  type Profile = { threads: number; malloc: string; stepMs: number; rows: { op: string; calls: number; selfMs: number; share: number }[]; table: string };
  let profile: Profile | undefined;
  if (torches.length && torchDevice === 'cpu') {
    const tcmalloc = !torchPython && fs.existsSync(path.join(__dirname, '..', '.cache', 'tcmalloc'));
    const server = tcmalloc ? TorchServer.start('tcmalloc', torchPython) : torches[torches.length - 1].server;
    const init = tcmalloc ? await server.request<{ malloc: string }>({ cmd: 'init', model: modelConfig, optimizer: optimizerConfig, threads: 1, seed: 0 }) : undefined;
    const answer = await server.request<Omit<Profile, 'threads' | 'malloc'>>({ cmd: 'profile', batch, steps: 5 });
    profile = { threads: tcmalloc ? 1 : torches[torches.length - 1].threads, malloc: init?.malloc ?? String(torchInfo?.malloc), ...answer };
    if (tcmalloc) await server.close();
  }
  for (const { server } of torches) await server.close();
  const torch = torches.length > 0;

  // ---- the report.
  const result = {
    benchmark: 'speed',
    date: new Date().toISOString(),
    machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model, node: process.version },
    backend: backend.chosen,
    /** webgpu: the adapter Dawn gave tfjs. */
    adapter,
    backendMatMul: backend.matMul,
    siftThreads: sift.threads,
    blasEnvironmentUnset: pinnedBlas,
    modelPreset: values.model,
    model: { ...modelConfig, parameters: sift.parameters, forwardMflopsPerExample: fullForward / 1e6, halfResForwardMflopsPerExample: halfForward / 1e6 },
    batch,
    superBatch,
    filterRatio,
    rounds,
    repeats,
    flopsNote: 'effective GFLOP/s = matmul FLOPs of the work (forwardFlops: train = 3 × forward, score = forward) ÷ median time',
    pytorch: vsPytorch ? (torch ? { ...torchInfo, portCheck, trainProfile: profile && { threads: profile.threads, malloc: profile.malloc, stepMs: profile.stepMs, rows: profile.rows } } : { skipped }) : undefined,
    figures,
    seconds: (performance.now() - started) / 1000,
  };

  const ms = (s: number): string => `${(1000 * s).toFixed(1)} ms`;
  const num = (x: number): string => (x >= 100 ? x.toFixed(0) : x.toFixed(1));
  const threadLabel = (count: number): string => (count === 1 ? '1 thread' : `${count} threads`);
  // A PyTorch column: its thread count on the CPU, its device on a GPU.
  const torchLabel = (count: number): string => (torchDevice === 'cpu' ? threadLabel(count) : torchDevice.split(':')[0].toUpperCase());
  const matMulNote = backend.matMul ? (backend.matMul.active ? `, matMuls through ${backend.matMul.blas ?? 'a native BLAS'}` : ', matMuls in wasm SIMD') : '';
  const adapterNote = adapter ? ` on ${adapterLabel(adapter)}` : '';
  const torchDeviceNote = torchDevice === 'cpu' ? torches.map((t) => threadLabel(t.threads)).join(', ') : `${torchDevice}: ${String(torchInfo?.deviceName ?? '?')}`;
  const title = `# bench:speed — Sift (${backend.chosen} backend${adapterNote}${matMulNote}, ${threadLabel(sift.threads)})${torch ? ` vs PyTorch ${String(torchInfo?.version)} (${torchDeviceNote})` : ''}, ${values.model} model: ${sift.parameters} parameters, ${(fullForward / 1e6).toFixed(1)} MFLOP/example forward (${(halfForward / 1e6).toFixed(1)} at half resolution)`;
  const lines = [title, ''];
  if (adapter) lines.push(`WebGPU adapter: ${adapterLabel(adapter)}; vendor ${adapter.vendor || '?'}, architecture ${adapter.architecture || '?'}, device ${adapter.device || '?'}.`, '');
  if (torch) {
    const header = ['what', 'Sift ex/s', ...torches.map((t) => `PyTorch ${torchLabel(t.threads)} ex/s`), ...torches.map((t) => `Sift/PyTorch ${torchLabel(t.threads)}`), 'Sift GFLOP/s', ...torches.map((t) => `PyTorch ${torchLabel(t.threads)} GFLOP/s`), 'Sift median', ...torches.map((t) => `PyTorch ${torchLabel(t.threads)} median`), ...torches.map((t) => `ratio of best runs (${torchLabel(t.threads)})`)];
    lines.push(
      `b = ${batch}, B = ${superBatch}; ${rounds} rounds × ${repeats} runs per side, Sift and PyTorch alternating; medians over all runs. Sift/PyTorch = Sift ex/s ÷ PyTorch ex/s (> 1: Sift faster).`,
      '',
      `| ${header.join(' | ')} |`,
      `| ${header.map(() => '---').join(' | ')} |`,
      ...figures.map((f) => {
        const exs = (side: SideFigure): string => (f.unit === 'matmuls' ? '–' : num(side.examplesPerSecond));
        const cells = [f.name, exs(f.sift), ...f.pytorch.map(exs), ...f.pytorch.map((p) => p.ratio.toFixed(2)), num(f.sift.gflops), ...f.pytorch.map((p) => num(p.gflops)), ms(f.sift.seconds), ...f.pytorch.map((p) => ms(p.seconds)), ...f.pytorch.map((p) => p.ratioOfBest.toFixed(2))];
        return `| ${cells.join(' | ')} |`;
      }),
      '',
      `JEST step examples/s counts the pairs trained (b per step). Sift trains with the trainer's own Learner on ${sift.threads} thread${sift.threads === 1 ? '' : 's'} (data-parallel replicas; one BLAS thread each when matMuls go native)${pinnedBlas.length ? `; ${pinnedBlas.join(' and ')} unset for both sides` : ''}. Effective GFLOP/s counts matmul FLOPs only (train = 3 × forward); the matmul row is each side's peak (${matmulSize}³ float32).${onGpu ? ' On a GPU every timed run ends when the device is done: Sift waits for the WebGPU queue to empty, PyTorch calls torch.cuda.synchronize().' : ''}`,
      '',
      torchDevice === 'cpu'
        ? `PyTorch: torch ${String(torchInfo?.version)}, BLAS ${JSON.stringify((torchInfo?.blas as { openblas?: { config: string } } | undefined)?.openblas?.config ?? torchInfo?.blas)}, malloc: ${String(torchInfo?.malloc)}, OMP_WAIT_POLICY ${String(torchInfo?.ompWaitPolicy)}.`
        : `PyTorch: torch ${String(torchInfo?.version)} on ${torchDevice} (${String(torchInfo?.deviceName)}, CUDA ${String(torchInfo?.cuda)}, compute capability ${String(torchInfo?.capability)}), matmuls in ${String(torchInfo?.matmulPrecision)}, ${threadLabel(torches[0].threads)} for the host side, run with ${String(torchInfo?.python)}.`,
      `Port check (${portCheck!.examples} examples, Sift's weights loaded into PyTorch): loss ${portCheck!.loss.sift.toFixed(6)} vs ${portCheck!.loss.pytorch.toFixed(6)}, max pair-loss diff ${portCheck!.maxPairLossDiff.toExponential(1)}, max embedding diff ${portCheck!.maxEmbeddingDiff.toExponential(1)}, half-res loss ${portCheck!.halfResolutionLoss.sift.toFixed(6)} vs ${portCheck!.halfResolutionLoss.pytorch.toFixed(6)}, gradient norm ${portCheck!.gradNorm.sift.toFixed(5)} vs ${portCheck!.gradNorm.pytorch.toFixed(5)}, loss after one AdamW step ${portCheck!.lossAfterStep.sift.toFixed(6)} vs ${portCheck!.lossAfterStep.pytorch.toFixed(6)}; bounds ${portCheck!.tolerances.loss} (loss, relative), ${portCheck!.tolerances.pairLoss} (pair losses), ${portCheck!.tolerances.embedding} (embeddings), ${portCheck!.tolerances.gradNorm} (gradient norm, loss after the step): ${portCheck!.passed ? 'passed' : 'FAILED'}.`,
    );
    if (profile) {
      lines.push(
        '',
        `PyTorch training step by op (torch.profiler, ${threadLabel(profile.threads)}, malloc: ${profile.malloc}; self CPU time, ${profile.stepMs.toFixed(1)} ms per step under the profiler):`,
        '',
        '| op | calls/step | self ms/step | share |',
        '| --- | --- | --- | --- |',
        ...profile.rows.slice(0, 10).map((r) => `| ${r.op} | ${(r.calls / 5).toFixed(0)} | ${r.selfMs.toFixed(1)} | ${(100 * r.share).toFixed(1)}% |`),
      );
    }
  } else {
    lines.push(
      '| what | median time | examples/s | GFLOP/s |',
      '| --- | --- | --- | --- |',
      ...figures.map((f) => `| ${f.name} | ${ms(f.sift.seconds)} | ${f.unit === 'matmuls' || !f.examples ? '–' : num(f.sift.examplesPerSecond)} | ${f.flops ? num(f.sift.gflops) : '–'} |`),
    );
    if (skipped) lines.push('', `PyTorch skipped: ${skipped}.`);
    else lines.push('', 'Side by side with the same model in PyTorch: npm run bench:speed -- --vs-pytorch (set up with bash scripts/pytorch/setup.sh).');
  }
  const markdown = lines.join('\n');
  fs.mkdirSync(values.out!, { recursive: true });
  fs.writeFileSync(path.join(values.out!, 'speed.json'), JSON.stringify(result, null, 2) + '\n');
  fs.writeFileSync(path.join(values.out!, 'speed.md'), markdown + '\n');
  process.stdout.write(`\n${markdown}\n\nWritten ${path.join(values.out!, 'speed.json')} and .md (${result.seconds.toFixed(0)} s)\n`);
  await sift.dispose();
  await data.close();
}

main().catch((error) => {
  process.stderr.write(`bench:speed: ${(error as Error).stack}\n`);
  process.exit(1);
});
