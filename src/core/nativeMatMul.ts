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
 *
 * The addon also fuses the model's elementwise work (kernels `SiftGelu`,
 * `SiftGeluGrad`, `SiftLayerNorm`, `SiftLayerNormGrad`, `SiftAffine`; ops.ts
 * uses them where `nativeKernels()`): wasm runs GELU as three kernels, its
 * gradient as six, a layer norm as nine, and at half-resolution scoring
 * those passes cost as much as the matMuls (docs/results.md).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';

interface BlasAddon {
  sgemm(memory: ArrayBuffer, a: number, b: number, out: number, batch: number, m: number, n: number, k: number, transposeA: boolean, transposeB: boolean): void;
  // The fused kernels; absent from addons built before they existed.
  gelu?(memory: ArrayBuffer, x: number, value: number, gate: number, count: number): void;
  geluGrad?(memory: ArrayBuffer, dy: number, x: number, gate: number, dx: number, count: number): void;
  layerNorm?(memory: ArrayBuffer, x: number, gain: number, bias: number, value: number, normed: number, inverseStd: number, rows: number, width: number, epsilon: number): void;
  layerNormGrad?(memory: ArrayBuffer, dy: number, gain: number, normed: number, inverseStd: number, dx: number, rows: number, width: number): void;
  affine?(memory: ArrayBuffer, x: number, w: number, b: number, out: number, m: number, n: number, k: number): void;
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

/** The parts of tfjs-backend-wasm's backend object Sift's kernels read. */
export interface WasmBackendInternals {
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
let fusedActive = false;

/** Whether the fused `Sift*` kernels are registered for the backend in use (wasm, with an addon that has them). */
export function nativeKernels(): boolean {
  return fusedActive && tf.getBackend() === 'wasm';
}

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
  const replaced = replaceWasmKernel('BatchMatMul', (wasmMatMul) => (args) => {
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
      return wasmMatMul(args);
    }
    const backend = args.backend as unknown as WasmBackendInternals;
    const out = backend.makeOutput([...a.shape.slice(0, -2), m, n], 'float32');
    const offset = (t: tf.TensorInfo): number => backend.dataIdMap.get(t.dataId)!.memoryOffset;
    // Read the memory after makeOutput: an allocation may have grown (and replaced) it.
    addon.sgemm(backend.wasm.HEAPU8.buffer as ArrayBuffer, offset(a), offset(b), offset(out), batch, m, n, k, transposeA, transposeB);
    return out;
  });
  if (!replaced) return (status = { active: false, reason: 'the wasm backend is not registered' });
  // Replica threads parallelise whole steps; one BLAS thread each keeps the cores from being oversubscribed.
  addon.setThreads(1);
  if (process.env.SIFT_NATIVE_FUSED !== '0') registerFused(addon);
  return (status = { active: true, blas: addon.blas });
}

/**
 * Swaps the wasm backend's kernel `kernelName` for `wrap(its own kernel)`, so
 * that the new one can fall back to it; false when wasm has no such kernel.
 */
export function replaceWasmKernel(kernelName: string, wrap: (original: tf.KernelFunc) => tf.KernelFunc): boolean {
  const original = tf.getKernel(kernelName, 'wasm');
  if (!original) return false;
  tf.unregisterKernel(kernelName, 'wasm');
  tf.registerKernel({ kernelName, backendName: 'wasm', kernelFunc: wrap(original.kernelFunc) });
  return true;
}

/** The fused kernels on the wasm backend, where the addon has them (`SIFT_NATIVE_FUSED=0` keeps tfjs's kernels, to compare). */
function registerFused(addon: BlasAddon): void {
  const { gelu, geluGrad, layerNorm, layerNormGrad, affine } = addon;
  if (!gelu || !geluGrad || !layerNorm || !layerNormGrad || !affine) return;
  // Each kernel allocates its outputs first, then reads the memory: an allocation may have grown (and replaced) it.
  const kernel = (kernelName: string, run: (wasm: WasmBackendInternals, inputs: Record<string, tf.TensorInfo>, at: (t: tf.TensorInfo) => number, attrs: Record<string, unknown>) => tf.TensorInfo | tf.TensorInfo[]): void => {
    tf.registerKernel({
      kernelName,
      backendName: 'wasm',
      kernelFunc: ({ inputs, backend, attrs }) => {
        const wasm = backend as unknown as WasmBackendInternals;
        return run(wasm, inputs as Record<string, tf.TensorInfo>, (t) => wasm.dataIdMap.get(t.dataId)!.memoryOffset, (attrs ?? {}) as Record<string, unknown>);
      },
    });
  };
  const memory = (wasm: WasmBackendInternals): ArrayBuffer => wasm.wasm.HEAPU8.buffer as ArrayBuffer;
  kernel('SiftGelu', (wasm, { x }, at) => {
    const value = wasm.makeOutput([...x.shape], 'float32');
    const gate = wasm.makeOutput([...x.shape], 'float32');
    gelu(memory(wasm), at(x), at(value), at(gate), product(x.shape));
    return [value, gate];
  });
  kernel('SiftGeluGrad', (wasm, { dy, x, gate }, at) => {
    const dx = wasm.makeOutput([...x.shape], 'float32');
    geluGrad(memory(wasm), at(dy), at(x), at(gate), at(dx), product(x.shape));
    return dx;
  });
  kernel('SiftLayerNorm', (wasm, { x, gain, bias }, at, { epsilon }) => {
    const [rows, width] = x.shape;
    const value = wasm.makeOutput([rows, width], 'float32');
    const normed = wasm.makeOutput([rows, width], 'float32');
    const inverseStd = wasm.makeOutput([rows, 1], 'float32');
    layerNorm(memory(wasm), at(x), at(gain), at(bias), at(value), at(normed), at(inverseStd), rows, width, epsilon as number);
    return [value, normed, inverseStd];
  });
  kernel('SiftLayerNormGrad', (wasm, { dy, gain, normed, inverseStd }, at) => {
    const [rows, width] = normed.shape;
    const dx = wasm.makeOutput([rows, width], 'float32');
    layerNormGrad(memory(wasm), at(dy), at(gain), at(normed), at(inverseStd), at(dx), rows, width);
    return dx;
  });
  kernel('SiftAffine', (wasm, { x, w, b }, at) => {
    const [m, k] = x.shape;
    const n = w.shape[1];
    const out = wasm.makeOutput([m, n], 'float32');
    affine(memory(wasm), at(x), at(w), at(b), at(out), m, n, k);
    return out;
  });
  fusedActive = true;
}
