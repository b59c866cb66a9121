/**
 * Data-parallel training on the CPU cores: worker threads, each holding a
 * replica of the learner on its own wasm (or cpu) backend.
 *
 * A contrastive loss couples every pair of the batch, so the batch cannot
 * simply be cut into independent losses. A step goes:
 * 1. each thread embeds its share of the batch's rows inside a gradient tape
 *    and hands the embeddings to the main thread;
 * 2. the main thread assembles the whole batch's embeddings, computes the loss
 *    and d loss / d embedding (and the gradients of temperature and bias);
 * 3. each thread, still inside its tape, takes the gradient of Σ e·(d loss/de)
 *    over its rows: the vector-Jacobian product of its towers, i.e. its share
 *    of the parameter gradient (the chunked-loss idea of big_vision's SigLIP);
 * 4. the main thread sums the shares in thread order (the same N gives the
 *    same floats, bit for bit) and applies one optimizer step to the master
 *    weights, which it then publishes to the threads through shared memory.
 * Every forward pass happens once. Forward-only work (scoring a super-batch,
 * eval, reference embeddings) is split the same way.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs-core';
import type { BackendName } from '../backend';
import type { DualEncoder } from '../model/dualEncoder';
import { embedShard, type CandidateScores, type Candidates, type ReplicaReply, type ReplicaRequest, type Shard } from './replicaProtocol';

/** Image and caption embeddings, row-major [rows, embedDim]. */
export interface ShardEmbeddings {
  image?: Float32Array;
  text?: Float32Array;
}

/** Runs forward passes: in this thread (`localEmbedder`) or across the replica threads. */
export interface Embedder {
  embed(shard: Shard): Promise<ShardEmbeddings>;
}

export function localEmbedder(model: DualEncoder): Embedder {
  return {
    // Read back asynchronously: the webgpu backend cannot read a tensor synchronously in Node.
    embed: async (shard) => {
      const { image, text } = tf.tidy(() => embedShard(model, shard));
      try {
        return { image: (await image?.data()) as Float32Array | undefined, text: (await text?.data()) as Float32Array | undefined };
      } finally {
        tf.dispose([image, text].filter((t) => t !== undefined));
      }
    },
  };
}

/** Most threads `auto` uses. */
const maxAutoThreads = 8;

/**
 * Training work (FLOPs, forward and backward) `auto` gives each thread a step
 * at least. Every replica pays the whole step's ~1,300 kernel dispatches
 * whatever its share of rows, so small steps lose by splitting. Measured on 2
 * cores with the native matMul (`npm run bench:speed -- --compare-threads
 * 1,2`, docs/results.md): the default model at b = 64 (2.1 GFLOP a step) ran
 * 0.87× as fast on 2 threads as on 1; at b = 256 (8.6 GFLOP) 1.22× faster;
 * the large preset (63 GFLOP) 1.46× faster.
 */
const autoFlopsPerThread = 4e9;

/**
 * The threads a run uses: `requested`, or for 0 (auto) one per core (at most
 * 8) but no more than gives each `autoFlopsPerThread` of a step's training
 * work (`stepFlops`); always 1 on backends that are not CPU ones.
 */
export function threadsFor(requested: number, backend: BackendName, stepFlops?: number): { threads: number; reason: string } {
  if (backend !== 'wasm' && backend !== 'cpu') {
    return { threads: 1, reason: `the ${backend} backend runs its own kernels in parallel; data-parallel threads are for the wasm and cpu backends` };
  }
  const cores = cpuCores();
  if (requested > 0) return { threads: requested, reason: requested > cores ? `set to ${requested} (more than the ${cores} cores here)` : `set to ${requested}` };
  const byCores = Math.max(1, Math.min(cores, maxAutoThreads));
  if (stepFlops === undefined) return { threads: byCores, reason: `auto: up to one per core (${cores}${cores > maxAutoThreads ? `, at most ${maxAutoThreads}` : ''}), fewer when a step is too small to split` };
  const byWork = Math.max(1, Math.floor(stepFlops / autoFlopsPerThread));
  const threads = Math.min(byCores, byWork);
  const why = threads < byCores ? `a step's ${(stepFlops / 1e9).toFixed(1)} GFLOP of training gives ${threads === 1 ? 'one thread' : `${threads} threads`} at least ${autoFlopsPerThread / 1e9} GFLOP each` : `one per core`;
  return { threads, reason: `auto: ${cores} cores; ${why}` };
}

function cpuCores(): number {
  return typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
}

/**
 * Where `scoreAhead` scores the next super-batch while a step trains: on a
 * thread of its own where the backend is a CPU one and training leaves a
 * core free; otherwise in the training thread, before the step (the same
 * scores, no time saved). `SIFT_SCORE_THREAD=0` keeps it in the training
 * thread, to compare.
 */
export function scoringPlace(backend: BackendName, trainingThreads: number): { thread: boolean; reason: string } {
  if (backend !== 'wasm' && backend !== 'cpu') return { thread: false, reason: `scored in the training thread: the ${backend} backend runs one device's kernels` };
  if (process.env.SIFT_SCORE_THREAD === '0') return { thread: false, reason: 'scored in the training thread: turned off by SIFT_SCORE_THREAD=0' };
  const cores = cpuCores();
  if (trainingThreads >= cores) return { thread: false, reason: `scored in the training thread: training uses ${cores === 1 ? 'the only core' : `all ${cores} cores`}` };
  return { thread: true, reason: `the next super-batch is scored on core ${trainingThreads + 1} of ${cores} while the step trains` };
}

/**
 * dist/replica.js beside the bundle; otherwise (tests, development) the
 * TypeScript entry, loaded through tsx's require hook: a worker thread does
 * not inherit the `--import tsx` loader of its process.
 */
function replicaWorker(workerData: unknown): Worker {
  const here = path.dirname(__filename);
  const bundled = path.join(here, 'replica.js');
  if (fs.existsSync(bundled)) return new Worker(bundled, { workerData });
  const source = path.join(here, 'replicaThread.ts');
  const script = `require(${JSON.stringify(require.resolve('tsx/cjs/api'))}).register(); require(${JSON.stringify(source)});`;
  return new Worker(script, { eval: true, workerData });
}

/** Even contiguous ranges [start, end) of `rows` for `parts` parts (earlier parts get the remainder). */
function splitRange(rows: number, parts: number): [number, number][] {
  const ranges: [number, number][] = [];
  let start = 0;
  for (let k = 0; k < parts; k++) {
    const size = Math.floor(rows / parts) + (k < rows % parts ? 1 : 0);
    ranges.push([start, start + size]);
    start += size;
  }
  return ranges;
}

interface ShardPart {
  shard: Shard;
  /** Global positions of the part's image rows and caption rows, in the part's order. */
  imageRows: number[];
  textRows: number[];
}

/**
 * Cuts a shard into `parts`: each patch batch by rows, and the captions either
 * aligned with the image rows (a training batch: caption i belongs to image i)
 * or split on their own (eval: distinct captions).
 */
function splitShard(shard: Shard, parts: number, textLength: number): ShardPart[] {
  const imageTotal = shard.images.reduce((sum, b) => sum + b.count, 0);
  const aligned = shard.ids !== undefined && shard.texts === imageTotal && imageTotal > 0;
  const out: ShardPart[] = Array.from({ length: parts }, () => ({ shard: { images: [], texts: 0 }, imageRows: [], textRows: [] }));
  let base = 0;
  for (const batch of shard.images) {
    const perImage = batch.patches.length / batch.count;
    splitRange(batch.count, parts).forEach(([start, end], k) => {
      if (end === start) return;
      // A copy, not a view: posting a view to a thread would copy its whole buffer.
      out[k].shard.images.push({ patches: batch.patches.slice(start * perImage, end * perImage), count: end - start, scale: batch.scale });
      for (let row = start; row < end; row++) out[k].imageRows.push(base + row);
    });
    base += batch.count;
  }
  if (shard.ids) {
    const ranges = aligned ? out.map((part) => part.imageRows) : splitRange(shard.texts, parts).map(([start, end]) => Array.from({ length: end - start }, (_, i) => start + i));
    ranges.forEach((rows, k) => {
      if (rows.length === 0) return;
      const ids = new Int32Array(rows.length * textLength);
      rows.forEach((row, n) => ids.set(shard.ids!.subarray(row * textLength, (row + 1) * textLength), n * textLength));
      out[k].shard.ids = ids;
      out[k].shard.texts = rows.length;
      out[k].textRows = rows;
    });
  }
  return out;
}

/** Writes each row of `values` (the part's rows, in order) to its global position in `into`. */
function scatterRows(values: Float32Array, rows: readonly number[], dim: number, into: Float32Array): void {
  rows.forEach((row, n) => into.set(values.subarray(n * dim, (n + 1) * dim), row * dim));
}

/** The rows `rows` of `from`, in that order. */
function gatherRows(from: Float32Array, rows: readonly number[], dim: number, into: Float32Array, at = 0): void {
  rows.forEach((row, n) => into.set(from.subarray(row * dim, (row + 1) * dim), at + n * dim));
}

interface Pending {
  onEmbedded?: (reply: Extract<ReplicaReply, { type: 'embedded' }>) => void;
  resolve: (reply: ReplicaReply) => void;
  reject: (error: Error) => void;
}

class ReplicaThread {
  private readonly pending = new Map<number, Pending>();
  private failure: Error | undefined;

  constructor(
    readonly worker: Worker,
    /** What error messages call it: "training thread 2", "the scoring thread". */
    readonly name: string,
  ) {
    worker.on('message', (reply: ReplicaReply) => {
      const waiting = this.pending.get(reply.id);
      if (!waiting) return;
      if (reply.type === 'embedded' && waiting.onEmbedded) {
        const onEmbedded = waiting.onEmbedded;
        waiting.onEmbedded = undefined;
        onEmbedded(reply);
        return;
      }
      this.pending.delete(reply.id);
      if (reply.type === 'failed') waiting.reject(new Error(`${this.name} failed: ${reply.message}`));
      else waiting.resolve(reply);
    });
    const fail = (error: Error): void => {
      this.failure = error;
      for (const waiting of this.pending.values()) waiting.reject(error);
      this.pending.clear();
    };
    worker.on('error', (error) => fail(new Error(`${name} crashed: ${error.message}`)));
    worker.on('exit', (code) => fail(new Error(`${name} exited (code ${code})`)));
  }

  request(message: ReplicaRequest, onEmbedded?: Pending['onEmbedded']): Promise<ReplicaReply> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.pending.set(message.id, { resolve, reject, onEmbedded });
      this.worker.postMessage(message);
    });
  }
}

/** d loss / d embedding of the whole batch, computed by the main thread from every row's embeddings. */
export type UpstreamGradient = (image: Float32Array, text: Float32Array) => { dImage: Float32Array; dText: Float32Array };

export class ReplicaPool implements Embedder {
  private nextId = 0;
  private closed = false;

  private constructor(
    private readonly threads: ReplicaThread[],
    private readonly control: Int32Array,
    private readonly weights: Float32Array,
    private readonly model: DualEncoder,
  ) {}

  /** Starts `threads` replica threads of `model` on `backend` and gives them its current weights; `role` names them in errors. */
  static async start(model: DualEncoder, threads: number, backend: BackendName, role: 'training' | 'scoring' = 'training'): Promise<ReplicaPool> {
    const parameters = model.params.count();
    const control = new Int32Array(new SharedArrayBuffer(4));
    const weights = new Float32Array(new SharedArrayBuffer(parameters * 4));
    const workers = Array.from({ length: threads }, (_, index) => new ReplicaThread(replicaWorker({ modelConfig: model.config, backend, control: control.buffer, weights: weights.buffer }), role === 'scoring' ? 'the scoring thread' : `training thread ${index + 1}`));
    const pool = new ReplicaPool(workers, control, weights, model);
    pool.publish();
    // The first request loads each thread's backend and model; fail here, not mid-step.
    await Promise.all(workers.map((thread) => thread.request({ type: 'embed', id: pool.nextId++, shard: { images: [], texts: 0 } })));
    return pool;
  }

  get size(): number {
    return this.threads.length;
  }

  /** Copies the master model's weights to shared memory; each thread loads them before its next request. */
  publish(): void {
    let offset = 0;
    for (const variable of this.model.params.variables.values()) {
      this.weights.set(variable.dataSync() as Float32Array, offset);
      offset += variable.size;
    }
    Atomics.add(this.control, 0, 1);
  }

  async embed(shard: Shard): Promise<ShardEmbeddings> {
    const dim = this.model.config.embedDim;
    const parts = splitShard(shard, this.threads.length, this.model.config.textLength);
    const imageRows = shard.images.reduce((sum, b) => sum + b.count, 0);
    const image = imageRows ? new Float32Array(imageRows * dim) : undefined;
    const text = shard.ids ? new Float32Array(shard.texts * dim) : undefined;
    await Promise.all(
      parts.map(async (part, k) => {
        if (part.imageRows.length === 0 && part.textRows.length === 0) return;
        const reply = await this.threads[k].request({ type: 'embed', id: this.nextId++, shard: part.shard });
        if (reply.type !== 'embedded') throw new Error(`${this.threads[k].name} answered ${reply.type} to embed`);
        if (image && reply.image) scatterRows(reply.image, part.imageRows, dim, image);
        if (text && reply.text) scatterRows(reply.text, part.textRows, dim, text);
      }),
    );
    return { image, text };
  }

  /** A candidate set's matrices (`candidateMatrices`), computed whole on the first thread: the patchify, both towers and both losses. */
  async score(candidates: Candidates): Promise<CandidateScores> {
    const reply = await this.threads[0].request({ type: 'score', id: this.nextId++, candidates });
    if (reply.type !== 'scored') throw new Error(`${this.threads[0].name} answered ${reply.type} to score`);
    return reply.scores;
  }

  /**
   * The summed parameter gradient of a training batch (flat, in the model's
   * variable order) given `upstream`, which turns the whole batch's
   * embeddings into d loss / d embedding. Each row's caption must be aligned
   * with its image (shard.texts = image rows).
   */
  async gradients(shard: Shard, upstream: UpstreamGradient): Promise<Float32Array> {
    const dim = this.model.config.embedDim;
    const parameters = this.weights.length;
    const rows = shard.texts;
    const parts = splitShard(shard, this.threads.length, this.model.config.textLength).map((part, k) => ({ part, thread: this.threads[k] })).filter(({ part }) => part.imageRows.length > 0);
    const image = new Float32Array(rows * dim);
    const text = new Float32Array(rows * dim);
    const exchanges = parts.map(({ part }) => ({
      signal: new Int32Array(new SharedArrayBuffer(4)),
      upstream: new Float32Array(new SharedArrayBuffer(2 * part.imageRows.length * dim * 4)),
    }));
    let embedded = 0;
    let release: () => void = () => undefined;
    const allEmbedded = new Promise<void>((resolve) => (release = resolve));
    const replies = parts.map(({ part, thread }, k) =>
      thread.request(
        { type: 'gradients', id: this.nextId++, shard: part.shard, signal: exchanges[k].signal.buffer as SharedArrayBuffer, upstream: exchanges[k].upstream.buffer as SharedArrayBuffer, parameters },
        (reply) => {
          scatterRows(reply.image!, part.imageRows, dim, image);
          scatterRows(reply.text!, part.textRows, dim, text);
          if (++embedded === parts.length) release();
        },
      ),
    );
    const abandon = (): void => {
      for (const { signal } of exchanges) {
        Atomics.store(signal, 0, 2);
        Atomics.notify(signal, 0);
      }
    };
    try {
      // A thread that fails before handing over its embeddings ends the wait too.
      await Promise.race([allEmbedded, Promise.all(replies).then(() => undefined)]);
      if (embedded !== parts.length) throw new Error('a training thread finished a step without its embeddings');
      const { dImage, dText } = upstream(image, text);
      parts.forEach(({ part }, k) => {
        gatherRows(dImage, part.imageRows, dim, exchanges[k].upstream);
        gatherRows(dText, part.textRows, dim, exchanges[k].upstream, part.imageRows.length * dim);
        Atomics.store(exchanges[k].signal, 0, 1);
        Atomics.notify(exchanges[k].signal, 0);
      });
    } catch (error) {
      abandon();
      await Promise.allSettled(replies);
      throw error;
    }
    const flats = await Promise.all(replies);
    // Summed in thread order, so a run with the same number of threads repeats bit for bit.
    const total = new Float32Array(parameters);
    for (const reply of flats) {
      if (reply.type !== 'gradients') throw new Error(`a training thread answered ${reply.type} to gradients`);
      for (let i = 0; i < parameters; i++) total[i] += reply.flat[i];
    }
    return total;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all(this.threads.map((thread) => thread.worker.terminate()));
  }
}
