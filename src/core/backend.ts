/**
 * Chooses the TensorFlow.js backend a run uses, in the order DESIGN.md gives:
 * tfjs-node-gpu (CUDA) → tfjs-node (native CPU) → wasm → cpu, unless one is
 * pinned. Each attempt is recorded with the exact reason it was skipped, so
 * `sift doctor`, the run record and the editor can say why a run is slow.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { createRequire } from 'node:module';
import * as path from 'node:path';

export { backendNames, type BackendChoice, type BackendName } from './backendNames';
import { backendNames, type BackendChoice, type BackendName } from './backendNames';

export interface BackendAttempt {
  name: BackendName;
  outcome: 'chosen' | 'available' | 'failed' | 'not-tried';
  /** Why it failed or was not tried, in the user's terms. */
  reason?: string;
  /** What to do about it, where there is something to do. */
  fix?: string;
}

export interface BackendReport {
  chosen: BackendName;
  /** tfjs's own name for the registered backend (`tensorflow`, `wasm`, `cpu`). */
  tfBackend: string;
  attempts: BackendAttempt[];
  /** Set when the choice will make training much slower than it could be. */
  warning?: string;
}

const requireFromHere = createRequire(__filename);

/** Which npm package provides each backend, and tfjs's name for it once registered. */
const packages: Record<BackendName, { pkg: string; tfName: string }> = {
  'node-gpu': { pkg: '@tensorflow/tfjs-node-gpu', tfName: 'tensorflow' },
  node: { pkg: '@tensorflow/tfjs-node', tfName: 'tensorflow' },
  wasm: { pkg: '@tensorflow/tfjs-backend-wasm', tfName: 'wasm' },
  cpu: { pkg: '@tensorflow/tfjs-backend-cpu', tfName: 'cpu' },
};

function explainLoadError(name: BackendName, error: unknown): { reason: string; fix?: string } {
  const message = error instanceof Error ? error.message.split('\n')[0] : String(error);
  const missingPackage = /Cannot find module '(@tensorflow\/[^'/]+)'/.exec(message);
  if (missingPackage && missingPackage[1] === packages[name].pkg) {
    return {
      reason: `${packages[name].pkg} is not installed (it is an optional dependency; its install downloads libtensorflow, which fails without access to that download).`,
      fix: `npm install ${packages[name].pkg}@4.22.0 on a machine that can download libtensorflow.`,
    };
  }
  if (name === 'node-gpu' && /libcud|libcublas|libcudnn|CUDA/i.test(message)) {
    return {
      reason: `the CUDA libraries did not load: ${message}`,
      fix: 'tfjs-node-gpu 4.22 needs CUDA 11.2 and cuDNN 8.1 on LD_LIBRARY_PATH (e.g. export LD_LIBRARY_PATH=/usr/local/cuda-11.2/lib64:$LD_LIBRARY_PATH).',
    };
  }
  if (/tfjs_binding|napi|\.node/.test(message)) {
    return {
      reason: `the native binding did not load: ${message}`,
      fix: `rebuild it: npm rebuild ${packages[name].pkg}`,
    };
  }
  return { reason: message };
}

/**
 * The wasm module's Emscripten glue installs process-wide uncaughtException
 * and unhandledRejection handlers that rethrow from inside its minified
 * source, so every later error would print 100 KB of it. Remove them.
 */
async function withoutProcessHandlers<T>(load: () => Promise<T>): Promise<T> {
  const exceptionHandlers = new Set(process.listeners('uncaughtException'));
  const rejectionHandlers = new Set(process.listeners('unhandledRejection'));
  try {
    return await load();
  } finally {
    for (const listener of process.listeners('uncaughtException')) {
      if (!exceptionHandlers.has(listener)) process.removeListener('uncaughtException', listener);
    }
    for (const listener of process.listeners('unhandledRejection')) {
      if (!rejectionHandlers.has(listener)) process.removeListener('unhandledRejection', listener);
    }
  }
}

async function tryBackend(name: BackendName): Promise<void> {
  const { pkg, tfName } = packages[name];
  if (name === 'wasm') {
    const wasm = requireFromHere(pkg) as typeof import('@tensorflow/tfjs-backend-wasm');
    // In Node the .wasm binaries are read from the package's dist folder.
    const dist = path.join(path.dirname(requireFromHere.resolve(`${pkg}/package.json`)), 'dist') + path.sep;
    wasm.setWasmPaths(dist);
  } else if (name !== 'cpu') {
    requireFromHere(pkg);
  }
  if (!tf.findBackendFactory(tfName)) throw new Error(`${pkg} loaded but registered no '${tfName}' backend`);
  const ok = await withoutProcessHandlers(() => tf.setBackend(tfName));
  if (!ok) throw new Error(`tfjs could not initialise the '${tfName}' backend`);
  await tf.ready();
  // The cpu backend greets its first use in Node with advice to install
  // tfjs-node; Sift's own report (doctor, run.json) already says that, with the reason.
  if (name === 'cpu') Object.assign(tf.backend(), { firstUse: false });
  // A tiny op proves the kernels actually run (a broken native install can register and then fail).
  const probe = tf.tidy(() => tf.matMul(tf.ones([2, 2]), tf.ones([2, 2])).dataSync()[0]);
  if (probe !== 2) throw new Error(`the '${tfName}' backend computed a wrong result in a self-test`);
}

let current: BackendReport | undefined;

/**
 * Loads a backend and makes it tfjs's current one. With 'auto' the first that
 * works wins; a pinned name is the only one tried, and its failure is an error.
 */
export async function selectBackend(choice: BackendChoice = 'auto'): Promise<BackendReport> {
  if (current && (choice === 'auto' || choice === current.chosen)) return current;
  const order: BackendName[] = choice === 'auto' ? [...backendNames] : [choice];
  const attempts: BackendAttempt[] = [];
  let chosen: BackendName | undefined;
  for (const name of backendNames) {
    if (!order.includes(name)) {
      attempts.push({ name, outcome: 'not-tried', reason: `the backend is pinned to '${choice}'` });
      continue;
    }
    if (chosen) {
      attempts.push({ name, outcome: 'not-tried', reason: `'${chosen}' comes first and loaded` });
      continue;
    }
    try {
      await tryBackend(name);
      chosen = name;
      attempts.push({ name, outcome: 'chosen' });
    } catch (error) {
      attempts.push({ name, outcome: 'failed', ...explainLoadError(name, error) });
    }
  }
  if (!chosen) {
    const lines = attempts.map((a) => `  ${a.name}: ${a.reason ?? a.outcome}${a.fix ? ` (fix: ${a.fix})` : ''}`);
    throw new Error(`No TensorFlow.js backend could be loaded:\n${lines.join('\n')}`);
  }
  const warning =
    chosen === 'cpu'
      ? 'Training runs on the pure-JavaScript cpu backend, about 30× slower than wasm. Check why wasm failed above.'
      : undefined;
  current = { chosen, tfBackend: tf.getBackend(), attempts, warning };
  return current;
}

/** Probes every backend without changing the current one: what `sift doctor` shows. */
export async function probeBackends(): Promise<BackendAttempt[]> {
  const before = tf.getBackend();
  const attempts: BackendAttempt[] = [];
  for (const name of backendNames) {
    try {
      await tryBackend(name);
      attempts.push({ name, outcome: 'available' });
    } catch (error) {
      attempts.push({ name, outcome: 'failed', ...explainLoadError(name, error) });
    }
  }
  if (before) await tf.setBackend(before);
  return attempts;
}

export function parseBackendChoice(value: string, field = 'backend'): BackendChoice {
  if (value === 'auto' || (backendNames as readonly string[]).includes(value)) return value as BackendChoice;
  throw new Error(`${field}: '${value}' is not a backend. Use one of: auto, ${backendNames.join(', ')}.`);
}
