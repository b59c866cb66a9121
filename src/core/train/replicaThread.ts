/**
 * One replica of the learner in a worker thread (see replicas.ts for the
 * whole scheme). It holds its own TensorFlow.js (wasm or cpu) and a copy of
 * the model, takes the current weights from the shared buffer the main thread
 * publishes, and runs forward passes and its share of each training step.
 */
import { parentPort, workerData } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend, type BackendName } from '../backend';
import { DualEncoder } from '../model/dualEncoder';
import type { ModelConfig } from '../model/modelConfig';
import { Rng } from '../random';
import { candidateMatrices, candidateShard, embedShard, type CandidateScores, type ReplicaReply, type ReplicaRequest } from './replicaProtocol';

interface ReplicaInit {
  modelConfig: ModelConfig;
  backend: BackendName;
  /** [version, …] Int32; version bumps each time the main thread publishes weights. */
  control: SharedArrayBuffer;
  /** Every trainable variable, in the model's own order, as one Float32 vector. */
  weights: SharedArrayBuffer;
}

const init = workerData as ReplicaInit;
const port = parentPort!;
const control = new Int32Array(init.control);
const weights = new Float32Array(init.weights);
let model: DualEncoder | undefined;
let loadedVersion = -1;

/** Copies the published weights into this replica's variables when they changed. */
function syncWeights(replica: DualEncoder): void {
  const version = Atomics.load(control, 0);
  if (version === loadedVersion) return;
  let offset = 0;
  for (const variable of replica.params.variables.values()) {
    const values = weights.slice(offset, offset + variable.size);
    tf.tidy(() => variable.assign(tf.tensor(values, variable.shape)));
    offset += variable.size;
  }
  loadedVersion = version;
}

/**
 * The tensors `compute` returns (any may be absent), computed in a tidy and
 * read back to the host. Read after the tidy, not inside it: tidy would walk
 * every element of returned typed arrays in search of tensors (seconds a run
 * for a super-batch's 320 × 320 matrices).
 */
function readBack(compute: () => (tf.Tensor | undefined)[]): (Float32Array | undefined)[] {
  const tensors = tf.tidy(() => compute().map((t) => t ?? null) as tf.TensorContainer) as (tf.Tensor | null)[];
  try {
    return tensors.map((t) => (t ? (t.dataSync() as Float32Array) : undefined));
  } finally {
    tf.dispose(tensors.filter((t): t is tf.Tensor => t !== null));
  }
}

function reply(message: ReplicaReply, transfer: ArrayBuffer[] = []): void {
  port.postMessage(message, transfer);
}

async function handle(request: ReplicaRequest): Promise<void> {
  if (!model) {
    await selectBackend(init.backend);
    model = new DualEncoder(init.modelConfig, new Rng(0));
  }
  const replica = model;
  syncWeights(replica);
  switch (request.type) {
    case 'embed': {
      const [image, text] = readBack(() => {
        const { image, text } = embedShard(replica, request.shard);
        return [image, text];
      });
      // Copied, not transferred: on the cpu backend dataSync may hand out the tensor's own storage.
      reply({ type: 'embedded', id: request.id, image, text });
      return;
    }
    case 'score': {
      const { candidates } = request;
      const [learnerLoss, learnerLogits, referenceLoss, referenceLogits] = readBack(() => {
        let learner;
        if (candidates.learner) {
          const { image, text } = embedShard(replica, candidateShard(candidates.learner, candidates.count));
          learner = { image: image!, text: text!, temperature: replica.temperature, bias: replica.bias };
        }
        const out = candidateMatrices(candidates, learner);
        return [...(out.learner ?? [undefined, undefined]), ...(out.reference ?? [undefined, undefined])];
      });
      const square = (values: Float32Array) => ({ size: candidates.count, values });
      const scores: CandidateScores = {
        learner: learnerLoss && learnerLogits && { pairLoss: square(learnerLoss), logits: square(learnerLogits) },
        reference: referenceLoss && referenceLogits && { pairLoss: square(referenceLoss), logits: square(referenceLogits) },
      };
      reply({ type: 'scored', id: request.id, scores });
      return;
    }
    case 'gradients': {
      const signal = new Int32Array(request.signal);
      const upstream = new Float32Array(request.upstream);
      const { value, grads } = tf.variableGrads(() => {
        const { image, text } = embedShard(replica, request.shard);
        // The loss couples every pair of the whole batch: hand this shard's
        // embeddings to the main thread, and block (inside the gradient tape)
        // until it has written back d loss / d embedding for these rows.
        reply({ type: 'embedded', id: request.id, image: image!.dataSync() as Float32Array, text: text!.dataSync() as Float32Array });
        Atomics.wait(signal, 0, 0);
        if (Atomics.load(signal, 0) !== 1) throw new Error('the main thread abandoned the step');
        const rows = image!.shape[0];
        const dim = image!.shape[1];
        const dImage = tf.tensor2d(upstream.subarray(0, rows * dim), [rows, dim]);
        const dText = tf.tensor2d(upstream.subarray(rows * dim, 2 * rows * dim), [rows, dim]);
        // Σ e·de over both towers: its gradient is the vector-Jacobian product of the towers with the upstream gradient.
        return tf.add(tf.sum(tf.mul(image!, dImage)), tf.sum(tf.mul(text!, dText))) as tf.Scalar;
      });
      const flat = new Float32Array(request.parameters);
      let offset = 0;
      for (const variable of replica.params.variables.values()) {
        const grad = grads[variable.name];
        if (grad) flat.set(grad.dataSync() as Float32Array, offset);
        offset += variable.size;
      }
      tf.dispose([value, ...Object.values(grads)]);
      reply({ type: 'gradients', id: request.id, flat }, [flat.buffer]);
      return;
    }
    default: {
      const unknown: never = request;
      throw new Error(`unknown replica request ${JSON.stringify(unknown)}`);
    }
  }
}

// Requests are handled one at a time, in order.
let queue = Promise.resolve();
port.on('message', (request: ReplicaRequest) => {
  queue = queue.then(() =>
    handle(request).catch((error: unknown) => {
      reply({ type: 'failed', id: request.id, message: error instanceof Error ? (error.stack ?? error.message) : String(error) });
    }),
  );
});
