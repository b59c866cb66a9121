/**
 * The wasm backend's matMul, run by the machine's own BLAS where Sift's small
 * native addon (native/sift_blas.c) is built: the wasm backend keeps tensors
 * in its WebAssembly memory, and the addon multiplies them there in place with
 * OpenBLAS (Linux) or Accelerate (macOS). Everything else stays on wasm.
 *
 * Why: a 1024³ matMul runs at ~30 GFLOP/s in wasm SIMD and ~180 GFLOP/s in
 * OpenBLAS on one core of the same machine (measured, docs/results.md);
 * matMuls are most of a training step. Without the addon (not built, no BLAS,
 * the .vsix) the wasm kernel runs as before.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';

interface BlasAddon {
  sgemm(memory: ArrayBuffer, a: number, b: number, out: number, batch: number, m: number, n: number, k: number, transposeA: boolean, transposeB: boolean): void;
  setThreads(threads: number): void;
  blas: string;
}

export interface NativeMatMulStatus {
  active: boolean;
  /** The BLAS behind it (OpenBLAS, Accelerate) when active. */
  blas?: string;
  /** Why it is not active, in the user's terms. */
  reason?: string;
  fix?: string;
}

/** The parts of tfjs-backend-wasm's backend object the kernel reads. */
interface WasmBackendInternals {
  wasm: { HEAPU8: Uint8Array };
  dataIdMap: { get(dataId: object): { memoryOffset: number } | undefined };
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
}

const addonRelative = path.join('native', 'build', 'Release', 'sift_blas.node');

/** native/build/Release/sift_blas.node under the package root (this file lies in dist/ or src/core/). */
function findAddon(): string | undefined {
  let dir = path.dirname(__filename);
  for (let up = 0; up < 4; up++) {
    const candidate = path.join(dir, addonRelative);
    if (fs.existsSync(candidate)) return candidate;
    dir = path.dirname(dir);
  }
  return undefined;
}

let status: NativeMatMulStatus | undefined;

/** Whether matMuls with a transpose flag are as fast as without: always off wasm, and on wasm through the native BLAS (wasm's own kernel falls to a naive loop for them). */
export function transposeFlagsAreFast(): boolean {
  return tf.getBackend() !== 'wasm' || status?.active === true;
}

function product(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/**
 * Makes the wasm backend's BatchMatMul run through the native BLAS, once per
 * process (each replica thread calls it too). `SIFT_NATIVE_MATMUL=0` keeps
 * wasm's own kernel (to compare the two).
 */
export function useNativeMatMul(): NativeMatMulStatus {
  if (status) return status;
  if (process.env.SIFT_NATIVE_MATMUL === '0') return (status = { active: false, reason: 'turned off by SIFT_NATIVE_MATMUL=0' });
  const file = findAddon();
  if (!file) {
    return (status = {
      active: false,
      reason: 'the native matMul addon is not built (matMuls run in wasm SIMD, several times slower than a native BLAS)',
      fix: process.platform === 'darwin' ? 'npm run build:native (uses Accelerate)' : 'apt-get install libopenblas-dev (or your distribution\'s OpenBLAS headers), then npm run build:native',
    });
  }
  let addon: BlasAddon;
  try {
    // A native addon loads only through require; its path is found at run time.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    addon = require(file) as BlasAddon;
  } catch (error) {
    return (status = { active: false, reason: `the native matMul addon ${file} did not load: ${(error as Error).message.split('\n')[0]}`, fix: 'npm run build:native' });
  }
  const wasmMatMul = tf.getKernel('BatchMatMul', 'wasm');
  if (!wasmMatMul) return (status = { active: false, reason: 'the wasm backend is not registered' });
  // Replica threads parallelise whole steps; one BLAS thread each keeps the cores from being oversubscribed.
  addon.setThreads(1);
  tf.unregisterKernel('BatchMatMul', 'wasm');
  tf.registerKernel({
    kernelName: 'BatchMatMul',
    backendName: 'wasm',
    kernelFunc: (args) => {
      const a = args.inputs.a as tf.TensorInfo;
      const b = args.inputs.b as tf.TensorInfo;
      const { transposeA, transposeB } = args.attrs as { transposeA: boolean; transposeB: boolean };
      const batch = product(a.shape.slice(0, -2));
      const rankA = a.shape.length;
      const rankB = b.shape.length;
      const m = transposeA ? a.shape[rankA - 1] : a.shape[rankA - 2];
      const k = transposeA ? a.shape[rankA - 2] : a.shape[rankA - 1];
      const n = transposeB ? b.shape[rankB - 2] : b.shape[rankB - 1];
      // Broadcast batches, other dtypes and empty operands keep wasm's kernel.
      if (rankA < 2 || rankB < 2 || batch !== product(b.shape.slice(0, -2)) || a.dtype !== 'float32' || b.dtype !== 'float32' || m * n * k === 0) {
        return wasmMatMul.kernelFunc(args);
      }
      const backend = args.backend as unknown as WasmBackendInternals;
      const out = backend.makeOutput([...a.shape.slice(0, -2), m, n], 'float32');
      const offset = (t: tf.TensorInfo): number => backend.dataIdMap.get(t.dataId)!.memoryOffset;
      // Read the memory after makeOutput: an allocation may have grown (and replaced) it.
      addon.sgemm(backend.wasm.HEAPU8.buffer as ArrayBuffer, offset(a), offset(b), offset(out), batch, m, n, k, transposeA, transposeB);
      return out;
    },
  });
  return (status = { active: true, blas: addon.blas });
}
