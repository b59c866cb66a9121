/**
 * Chooses the TensorFlow.js backend a run uses, in the order DESIGN.md gives:
 * tfjs-node-gpu (CUDA) → webgpu (Dawn: Vulkan, Metal or Direct3D 12) →
 * tfjs-node (native CPU) → wasm → cpu, unless one is pinned. Each attempt is
 * recorded with the exact reason it was skipped, so `sift doctor`, the run
 * record and the editor can say why a run is slow.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';

import { replaceWasmKernel, useNativeMatMul, type NativeMatMulStatus, type WasmBackendInternals } from './nativeMatMul';

export { backendNames, type BackendChoice, type BackendName } from './backendNames';
import { backendNames, type BackendChoice, type BackendName } from './backendNames';

/** The WebGPU adapter Dawn offers, as its GPUAdapterInfo describes it. */
export interface WebGpuAdapter {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  /** Dawn's own flag: a fallback adapter, i.e. an implementation on the CPU. */
  isFallbackAdapter: boolean;
  /**
   * A software rasteriser (Mesa's lavapipe/llvmpipe, SwiftShader, Windows'
   * WARP), by Dawn's flag or by its name: it runs the webgpu backend, but
   * slower than wasm, so `auto` passes over it.
   */
  software: boolean;
}

export interface BackendAttempt {
  name: BackendName;
  /** `skipped`: it loads, but `auto` passed over it (webgpu with only a software adapter). */
  outcome: 'chosen' | 'available' | 'skipped' | 'failed' | 'not-tried';
  /** Why it failed, was skipped or not tried, in the user's terms; for an available software adapter, why `auto` passes over it. */
  reason?: string;
  /** What to do about it, where there is something to do. */
  fix?: string;
  /** webgpu only: the adapter found, when there is one. */
  adapter?: WebGpuAdapter;
}

export interface BackendReport {
  chosen: BackendName;
  /** tfjs's own name for the registered backend (`tensorflow`, `webgpu`, `wasm`, `cpu`). */
  tfBackend: string;
  attempts: BackendAttempt[];
  /** Set when the choice will make training much slower than it could be. */
  warning?: string;
  /** wasm only: whether its matMuls run through the native BLAS addon (nativeMatMul.ts), or why not. */
  matMul?: NativeMatMulStatus;
  /** TensorFlow.js flags set from SIFT_TFJS_FLAGS (tuning a backend, e.g. WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE). */
  flags?: Record<string, number | boolean>;
}

/**
 * SIFT_TFJS_FLAGS="NAME=value,NAME=value": TensorFlow.js flags for the chosen
 * backend (tfjs reads them from the page URL in a browser; in Node nothing
 * does). Values are numbers or true/false; a flag tfjs does not know is an
 * error that lists the ones it does.
 */
export function applyTfjsFlags(text = process.env.SIFT_TFJS_FLAGS ?? ''): Record<string, number | boolean> | undefined {
  if (text.trim() === '') return undefined;
  const known = Object.keys(tf.env().getFlags()).concat(Object.keys((tf.env() as unknown as { flagRegistry: Record<string, unknown> }).flagRegistry ?? {}));
  const flags: Record<string, number | boolean> = {};
  for (const item of text.split(',').map((part) => part.trim()).filter(Boolean)) {
    const match = /^([A-Z0-9_]+)=(true|false|-?\d+(?:\.\d+)?)$/.exec(item);
    if (!match) throw new Error(`SIFT_TFJS_FLAGS: "${item}" is not NAME=value (value a number, true or false); e.g. SIFT_TFJS_FLAGS="WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE=64".`);
    const [, name, raw] = match;
    if (!known.includes(name)) throw new Error(`SIFT_TFJS_FLAGS: TensorFlow.js has no flag ${name} on the ${tf.getBackend()} backend; it has: ${[...new Set(known)].sort().join(', ')}.`);
    flags[name] = raw === 'true' ? true : raw === 'false' ? false : Number(raw);
    tf.env().set(name, flags[name]);
  }
  return flags;
}

const requireFromHere = createRequire(__filename);

/** Which npm package provides each backend, and tfjs's name for it once registered. */
const packages: Record<BackendName, { pkg: string; tfName: string }> = {
  'node-gpu': { pkg: '@tensorflow/tfjs-node-gpu', tfName: 'tensorflow' },
  webgpu: { pkg: '@tensorflow/tfjs-backend-webgpu', tfName: 'webgpu' },
  node: { pkg: '@tensorflow/tfjs-node', tfName: 'tensorflow' },
  wasm: { pkg: '@tensorflow/tfjs-backend-wasm', tfName: 'wasm' },
  cpu: { pkg: '@tensorflow/tfjs-backend-cpu', tfName: 'cpu' },
};

/** Dawn's Node binding: the npm package `webgpu`. */
const dawnPackage = 'webgpu';
/** The versions to install for the webgpu backend, as a fix names them. */
const webGpuInstall = `npm install ${dawnPackage}@0.6 ${packages.webgpu.pkg}@4.22.0`;

/** A backend that cannot be used here, with the reason and fix already in the user's terms. */
class BackendUnavailable extends Error {
  constructor(
    readonly reason: string,
    readonly fix?: string,
  ) {
    super(reason);
  }
}

function explainLoadError(name: BackendName, error: unknown): { reason: string; fix?: string } {
  if (error instanceof BackendUnavailable) return { reason: error.reason, fix: error.fix };
  const message = error instanceof Error ? error.message.split('\n')[0] : String(error);
  if (name === 'webgpu') return explainWebGpuError(message);
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

// ---- webgpu through Dawn ------------------------------------------------------------------

/** The parts of Dawn's WebGPU objects Sift reads (the full types live in @webgpu/types, which Sift does not compile against). */
interface DawnAdapterInfo {
  vendor?: string;
  architecture?: string;
  device?: string;
  description?: string;
  isFallbackAdapter?: boolean;
}
interface DawnAdapter {
  info?: DawnAdapterInfo;
  /** Where older WebGPU implementations put the flag. */
  isFallbackAdapter?: boolean;
}
interface DawnGpu {
  requestAdapter(options?: { powerPreference?: 'low-power' | 'high-performance' }): Promise<DawnAdapter | null>;
}
interface DawnBinding {
  /** A WebGPU entry point (what a browser calls `navigator.gpu`); the strings are Dawn toggles. */
  create(flags: string[]): DawnGpu;
  /** The WebGPU interfaces and constant namespaces a browser has as globals (GPUBufferUsage, GPUMapMode, …). */
  globals: Record<string, unknown>;
}

/**
 * Dawn's entry point, made once and kept for the life of the process: the
 * device tfjs creates belongs to it, and it must not be collected while the
 * backend is registered.
 */
let dawn: DawnGpu | undefined;
let adapterSearch: Promise<WebGpuAdapter> | undefined;

/** Names that give away a software rasteriser, in case an implementation does not set isFallbackAdapter. */
const softwareAdapterName = /llvmpipe|lavapipe|swiftshader|software|microsoft basic render|\bwarp\b/i;

/**
 * tfjs-backend-webgpu is written for a browser: it registers itself only if
 * `navigator.gpu` exists when it loads, and its kernels use the WebGPU
 * constant namespaces (GPUBufferUsage, GPUMapMode, GPUTextureUsage,
 * GPUShaderStage) as globals. Dawn's binding provides both; Node ≥ 21 has a
 * `navigator` of its own, Node 20 none.
 */
function installWebGpuGlobals(gpu: DawnGpu, globals: Record<string, unknown>): void {
  const scope = globalThis as Record<string, unknown>;
  for (const [name, value] of Object.entries(globals)) {
    if (!(name in scope)) Object.defineProperty(scope, name, { value, writable: true, configurable: true, enumerable: false });
  }
  const navigator = scope.navigator as Record<string, unknown> | undefined;
  if (navigator === undefined) Object.defineProperty(scope, 'navigator', { value: { gpu }, writable: true, configurable: true, enumerable: false });
  else if (!navigator.gpu) Object.defineProperty(navigator, 'gpu', { value: gpu, configurable: true, enumerable: true });
}

async function loadDawn(): Promise<DawnGpu> {
  if (dawn) return dawn;
  let entry: string;
  try {
    entry = requireFromHere.resolve(dawnPackage);
    requireFromHere.resolve(`${packages.webgpu.pkg}/package.json`);
  } catch (error) {
    throw new BackendUnavailable(
      `the webgpu backend's packages are not installed (optional dependencies: ${dawnPackage}, Dawn's Node binding, and ${packages.webgpu.pkg}): ${(error as Error).message.split('\n')[0]}.`,
      webGpuInstall,
    );
  }
  let binding: DawnBinding;
  try {
    // `webgpu` is an ES module: import() loads it from CommonJS too. The
    // specifier is a computed file URL, so the bundler leaves it to run time.
    binding = (await import(pathToFileURL(entry).href)) as DawnBinding;
  } catch (error) {
    const message = (error as Error).message.split('\n')[0];
    throw new BackendUnavailable(`Dawn's native binding (dawn.node in ${dawnPackage}) did not load: ${message}`, dawnLoadFix());
  }
  let gpu: DawnGpu;
  try {
    gpu = binding.create([]);
  } catch (error) {
    throw new BackendUnavailable(`Dawn could not start: ${(error as Error).message.split('\n')[0]}`, webGpuFix());
  }
  installWebGpuGlobals(gpu, binding.globals);
  dawn = gpu;
  return gpu;
}

function dawnLoadFix(): string {
  switch (process.platform) {
    case 'darwin':
      return `npm 11 holds back the ${dawnPackage} package's install script, which lifts macOS's quarantine from dawn.node: allow it (npm install-scripts approve ${dawnPackage}, then npm rebuild ${dawnPackage}), or run xattr -d com.apple.quarantine node_modules/${dawnPackage}/dist/darwin-universal/dawn.node.`;
    case 'win32':
      return `reinstall it (npm rebuild ${dawnPackage}); dawn.node needs the d3dcompiler_47.dll and dxcompiler.dll shipped beside it in node_modules/${dawnPackage}/dist.`;
    default:
      return `reinstall it (${webGpuInstall}); dawn.node is built for linux-x64 and linux-arm64 with a recent glibc.`;
  }
}

/** The Vulkan pieces present on Linux: the loader library and the drivers (ICDs) it would offer Dawn. */
function linuxVulkan(): { loader: boolean; drivers: string[] } {
  const libraryDirs = ['/usr/lib/x86_64-linux-gnu', '/usr/lib/aarch64-linux-gnu', '/usr/lib64', '/usr/lib', '/lib/x86_64-linux-gnu', '/lib/aarch64-linux-gnu', '/lib64', '/usr/local/lib'];
  for (const dir of (process.env.LD_LIBRARY_PATH ?? '').split(':')) if (dir) libraryDirs.unshift(dir);
  const loader = libraryDirs.some((dir) => fs.existsSync(path.join(dir, 'libvulkan.so.1')));
  const listed = process.env.VK_DRIVER_FILES ?? process.env.VK_ICD_FILENAMES;
  if (listed) return { loader, drivers: listed.split(':').filter((file) => fs.existsSync(file)).map((file) => path.basename(file)) };
  const dataDirs = [process.env.XDG_CONFIG_HOME, ...(process.env.XDG_CONFIG_DIRS ?? '/etc/xdg').split(':'), '/etc', process.env.XDG_DATA_HOME, ...(process.env.XDG_DATA_DIRS ?? '/usr/local/share:/usr/share').split(':')];
  const drivers = new Set<string>();
  for (const dir of dataDirs) {
    if (!dir) continue;
    try {
      for (const file of fs.readdirSync(path.join(dir, 'vulkan', 'icd.d'))) if (file.endsWith('.json')) drivers.add(file);
    } catch {
      // No drivers in this folder.
    }
  }
  return { loader, drivers: [...drivers].sort() };
}

/**
 * How to get a hardware WebGPU adapter on an operating system: what `sift
 * doctor` prints when there is none, or only a software one.
 */
export function webGpuFix(platform: NodeJS.Platform = process.platform): string {
  switch (platform) {
    case 'darwin':
      return `Metal is built into macOS (11 or newer), so any Mac's GPU serves; there is no driver to install. If dawn.node does not load, let the ${dawnPackage} package's install script run, which npm 11 holds back: npm install-scripts approve ${dawnPackage}, then npm rebuild ${dawnPackage}.`;
    case 'win32':
      return "Dawn uses Direct3D 12: install the GPU vendor's current driver (Windows 10 or newer) and check with dxdiag. The Microsoft Basic Render Driver is a software adapter; in a VM or over remote desktop the GPU may not be offered.";
    default:
      return "Install your GPU's driver with Vulkan support and the Vulkan loader (Debian/Ubuntu: apt-get install libvulkan1 mesa-vulkan-drivers for AMD and Intel; NVIDIA's driver brings its own Vulkan driver), then check with vulkaninfo --summary. Without a GPU, Mesa 24 or newer provides a software Vulkan device (lavapipe) that runs the webgpu backend for testing, slower than wasm (Debian bookworm: mesa-vulkan-drivers from bookworm-backports).";
  }
}

/** Why Dawn offered no adapter, and the fix for this operating system. */
function noAdapter(): BackendUnavailable {
  switch (process.platform) {
    case 'darwin':
      return new BackendUnavailable('Dawn found no WebGPU adapter (Metal): a VM or remote session without GPU access offers none.', webGpuFix());
    case 'win32':
      return new BackendUnavailable('Dawn found no WebGPU adapter (Direct3D 12).', webGpuFix());
    default: {
      const { loader, drivers } = linuxVulkan();
      const found = !loader
        ? 'the Vulkan loader (libvulkan.so.1) is not installed'
        : drivers.length === 0
          ? 'no Vulkan driver is installed'
          : `Dawn accepted none of the Vulkan drivers installed (${drivers.join(', ')}): a GPU driver without Vulkan 1.1, or Mesa's software Vulkan (lavapipe) older than Mesa 24`;
      return new BackendUnavailable(`Dawn found no WebGPU adapter: ${found}.`, webGpuFix());
    }
  }
}

/**
 * Finds the adapter tfjs will use (it asks for the high-performance one, as
 * here), once per process. Throws BackendUnavailable when there is none.
 */
export function findWebGpuAdapter(): Promise<WebGpuAdapter> {
  adapterSearch ??= (async () => {
    const gpu = await loadDawn();
    const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
    if (!adapter) throw noAdapter();
    const info = adapter.info ?? {};
    const described: Omit<WebGpuAdapter, 'software'> = {
      vendor: info.vendor ?? '',
      architecture: info.architecture ?? '',
      device: info.device ?? '',
      description: info.description ?? '',
      isFallbackAdapter: Boolean(info.isFallbackAdapter ?? adapter.isFallbackAdapter),
    };
    const software = described.isFallbackAdapter || softwareAdapterName.test([described.vendor, described.architecture, described.device, described.description].join(' '));
    return { ...described, software };
  })();
  return adapterSearch;
}

/** How an adapter reads in a report: its description, else vendor and device. */
export function adapterLabel(adapter: WebGpuAdapter): string {
  const name = adapter.description || [adapter.vendor, adapter.device].filter(Boolean).join(' ') || 'unnamed adapter';
  return `${name}${adapter.software ? ', a software adapter' : ''}`;
}

function softwareReason(adapter: WebGpuAdapter): string {
  return `the only WebGPU adapter is a software one (${adapter.description || adapter.device}): it emulates a GPU on the CPU and trains slower than wasm, so auto passes over it; pin the backend to webgpu to use it anyway (e.g. to test the webgpu path).`;
}

/**
 * tfjs-backend-webgpu reads a tensor synchronously (dataSync, arraySync)
 * through a browser's OffscreenCanvas, which Node lacks: there it fails with
 * "OffscreenCanvas is not defined". Say what is wrong instead, and skip its
 * advice to use the async APIs, which is printed before the failure.
 */
function explainSyncReads(): void {
  const backend = tf.backend() as unknown as { readSync(dataId: object): unknown; hasReadSyncWarned?: boolean; siftSyncReads?: boolean };
  if (backend.siftSyncReads) return;
  const readSync = backend.readSync.bind(backend);
  backend.hasReadSyncWarned = true;
  backend.readSync = (dataId: object): unknown => {
    try {
      return readSync(dataId);
    } catch (error) {
      if (error instanceof ReferenceError && /OffscreenCanvas/.test(error.message)) {
        throw new Error('The webgpu backend cannot read a tensor synchronously in Node (dataSync or arraySync on a GPU tensor). This is a bug in Sift: that code must use await tensor.data(). Meanwhile, choose another backend (--backend wasm).', { cause: error });
      }
      throw error;
    }
  };
  backend.siftSyncReads = true;
}

/** The webgpu backend as its kernels see it: helpers Sift's kernel fixes below call. */
type WebGpuKernelBackend = tf.KernelBackend & {
  device: { limits: { maxStorageBuffersPerShaderStage: number } };
  makeTensorInfo(shape: number[], dtype: tf.DataType, values: Float32Array): tf.TensorInfo;
};

/** Replaces a registered kernel of the webgpu backend by a wrapper around it. */
function wrapWebGpuKernel(name: string, wrap: (original: tf.KernelConfig['kernelFunc']) => tf.KernelConfig['kernelFunc']): void {
  const kernel = tf.getKernel(name, 'webgpu');
  if (!kernel) return;
  tf.unregisterKernel(name, 'webgpu');
  tf.registerKernel({ ...kernel, kernelFunc: wrap(kernel.kernelFunc) });
}

/**
 * Two defects of tfjs-backend-webgpu 4.22 that Sift's model runs into, fixed
 * around the kernels. Without them Dawn reports validation errors and the
 * affected results are silently garbage.
 *
 * Cast: int32 and bool become float32 by relabelling the buffer (its
 * contents stay integers), leaving each kernel to convert when it reads. The
 * general transpose (rank 3 and up) does not: its shader fails to compile
 * ("type mismatch … expected 'f32', got 'i32'"). Reductions over a
 * non-innermost axis transpose first, so the text tower's sum of its padding
 * mask over tokens went wrong. Here that cast is a real conversion: x · 1.0
 * runs a kernel that writes a float32 buffer.
 *
 * AddN: one shader binds every input as a storage buffer, and a device
 * allows 8 per shader stage unless more are asked for (tfjs does not ask).
 * The optimizer's global gradient norm adds one term per parameter (~40).
 * Here many inputs are added in groups that fit.
 */
let kernelsPatched = false;
function patchWebGpuKernels(): void {
  if (kernelsPatched) return;
  const multiply = tf.getKernel('Multiply', 'webgpu');
  if (multiply) {
    wrapWebGpuKernel('Cast', (cast) => (args) => {
      const x = args.inputs.x as tf.TensorInfo;
      if ((args.attrs as { dtype?: tf.DataType }).dtype !== 'float32' || (x.dtype !== 'int32' && x.dtype !== 'bool')) return cast(args);
      const backend = args.backend as WebGpuKernelBackend;
      const one = backend.makeTensorInfo([], 'float32', new Float32Array([1]));
      try {
        return multiply.kernelFunc({ inputs: { a: x, b: one }, backend, attrs: {} });
      } finally {
        backend.disposeData(one.dataId);
      }
    });
  }
  wrapWebGpuKernel('AddN', (addN) => (args) => {
    const backend = args.backend as WebGpuKernelBackend;
    // One storage buffer is the output.
    const group = Math.max(2, backend.device.limits.maxStorageBuffersPerShaderStage - 1);
    let terms = Object.values(args.inputs) as tf.TensorInfo[];
    if (terms.length <= group) return addN(args);
    const partials: tf.TensorInfo[] = [];
    while (terms.length > group) {
      const next: tf.TensorInfo[] = [];
      for (let i = 0; i < terms.length; i += group) {
        const chunk = terms.slice(i, i + group);
        if (chunk.length === 1) next.push(chunk[0]);
        else {
          const sum = addN({ inputs: chunk as unknown as tf.NamedTensorInfoMap, backend, attrs: {} }) as tf.TensorInfo;
          partials.push(sum);
          next.push(sum);
        }
      }
      terms = next;
    }
    try {
      return addN({ inputs: terms as unknown as tf.NamedTensorInfoMap, backend, attrs: {} });
    } finally {
      for (const partial of partials) backend.disposeData(partial.dataId);
    }
  });
  kernelsPatched = true;
}

/** Errors the WebGPU device reported that no error scope caught: each means a kernel's result is wrong. */
const deviceErrors: string[] = [];
let deviceWatched: object | undefined;

/** The uncaptured errors of the webgpu backend's device so far (a kernel tfjs could not compile or run). */
export function webGpuDeviceErrors(): readonly string[] {
  return deviceErrors;
}

function recordDeviceErrors(): void {
  const device = (tf.backend() as unknown as { device?: { addEventListener?(type: string, listener: (event: { error?: { message?: string } }) => void): void } }).device;
  if (!device?.addEventListener || deviceWatched === device) return;
  device.addEventListener('uncapturederror', (event) => {
    const message = (event.error?.message ?? 'unknown error').split('\n')[0];
    // Dawn prints each one in its own terms; say once what it means here.
    if (deviceErrors.length === 0) {
      process.stderr.write(`sift: the webgpu backend's device reported an error (${message}): results computed since are wrong. Train on another backend (--backend wasm) and report this.\n`);
    }
    if (deviceErrors.length < 20) deviceErrors.push(message);
  });
  deviceWatched = device;
}

// ---- loading ------------------------------------------------------------------------------------

async function tryBackend(name: BackendName): Promise<void> {
  const { pkg, tfName } = packages[name];
  if (name === 'wasm') {
    const wasm = requireFromHere(pkg) as typeof import('@tensorflow/tfjs-backend-wasm');
    // In Node the .wasm binaries are read from the package's dist folder.
    const dist = path.join(path.dirname(requireFromHere.resolve(`${pkg}/package.json`)), 'dist') + path.sep;
    wasm.setWasmPaths(dist);
  } else if (name === 'webgpu') {
    // The globals must be in place before the package loads: it registers itself only if navigator.gpu exists.
    await findWebGpuAdapter();
    requireFromHere(pkg);
    patchWebGpuKernels();
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
  if (name === 'webgpu') {
    explainSyncReads();
    recordDeviceErrors();
  }
  // A small op proves the kernels actually run (a broken native install can
  // register and then fail). 64×64 so that webgpu runs it on the GPU rather
  // than handing a tiny input to its CPU kernels; read asynchronously, as
  // webgpu in Node cannot read synchronously.
  const product = tf.tidy(() => tf.matMul(tf.ones([64, 64]), tf.ones([64, 64])));
  let probe: number;
  try {
    probe = (await product.data())[0];
  } finally {
    product.dispose();
  }
  if (probe !== 64) throw new Error(`the '${tfName}' backend computed a wrong result in a self-test`);
}

let current: BackendReport | undefined;

/**
 * Loads a backend and makes it tfjs's current one. With 'auto' the first that
 * works wins, except webgpu on a software adapter (slower than wasm); a pinned
 * name is the only one tried, and its failure is an error.
 */
export async function selectBackend(choice: BackendChoice = 'auto'): Promise<BackendReport> {
  if (current && (choice === 'auto' || choice === current.chosen)) {
    // Something (a test comparing backends) may have switched tfjs since; the report must stay true.
    if (tf.getBackend() !== current.tfBackend) await tf.setBackend(current.tfBackend);
    return current;
  }
  const order: BackendName[] = choice === 'auto' ? [...backendNames] : [choice];
  const attempts: BackendAttempt[] = [];
  let chosen: BackendName | undefined;
  let adapter: WebGpuAdapter | undefined;
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
      if (name === 'webgpu') {
        adapter = await findWebGpuAdapter();
        if (adapter.software && choice === 'auto') {
          attempts.push({ name, outcome: 'skipped', reason: softwareReason(adapter), adapter });
          continue;
        }
      }
      await tryBackend(name);
      chosen = name;
      attempts.push({ name, outcome: 'chosen', ...(name === 'webgpu' ? { adapter } : {}) });
    } catch (error) {
      attempts.push({ name, outcome: 'failed', ...explainLoadError(name, error), ...(name === 'webgpu' && adapter ? { adapter } : {}) });
    }
  }
  if (!chosen) {
    const lines = attempts.map((a) => `  ${a.name}: ${a.reason ?? a.outcome}${a.fix ? ` (fix: ${a.fix})` : ''}`);
    throw new Error(`No TensorFlow.js backend could be loaded:\n${lines.join('\n')}`);
  }
  let warning: string | undefined;
  if (chosen === 'cpu') warning = 'Training runs on the pure-JavaScript cpu backend, about 30× slower than wasm. Check why wasm failed above.';
  else if (chosen === 'webgpu' && adapter?.software) {
    warning = `Training runs on a software WebGPU adapter (${adapter.description || adapter.device}), which emulates a GPU on the CPU: slower than wasm. Fine for testing the webgpu path; choose auto or wasm to train.`;
  }
  // Only the chosen backend's kernels are swapped: wasm's matMul through the native BLAS where it is built.
  const matMul = chosen === 'wasm' ? useNativeMatMul() : undefined;
  if (chosen === 'wasm') {
    shareWasmIdentity();
    gatherWasmRows();
  }
  const flags = applyTfjsFlags();
  current = { chosen, tfBackend: tf.getBackend(), attempts, warning, ...(matMul ? { matMul } : {}), ...(flags ? { flags } : {}) };
  return current;
}

let identityShared = false;

/**
 * wasm's Identity kernel copies its input (tfjs-backend-wasm 4.22), and tfjs
 * runs it for every tensor a custom gradient saves for the backward pass:
 * ~250 copies a training step of the default model, 7 ms of 70. Like the cpu
 * backend's Identity and wasm's own Reshape, this one shares the input's data
 * and counts a reference instead. Sound because no kernel writes a tensor in
 * place (a variable's assign takes new data too).
 */
function shareWasmIdentity(): void {
  if (identityShared) return;
  identityShared = replaceWasmKernel('Identity', (copying) => (args) => {
    const x = args.inputs.x as tf.TensorInfo;
    if (x.dtype === 'string') return copying(args);
    (args.backend as unknown as { incRef(dataId: object): void }).incRef(x.dataId);
    return { dataId: x.dataId, shape: [...x.shape], dtype: x.dtype };
  });
}

let rowsGathered = false;

/**
 * wasm's GatherV2 (tfjs-backend-wasm 4.22) walks its output element by
 * element, recomputing every index: the caption tokens' embedding lookup of
 * a scored super-batch (320 × 16 rows of 64) took 13 ms, more than the text
 * tower's matMuls. A gather along the first axis is a row copy per index;
 * this one does those copies in the wasm memory. Other gathers (another
 * axis, batch dimensions, 1- or 8-byte types, an index out of range) keep
 * wasm's kernel, and with it its behaviour.
 */
function gatherWasmRows(): void {
  if (rowsGathered) return;
  rowsGathered = replaceWasmKernel('GatherV2', (elementwise) => (args) => {
    const { x, indices } = args.inputs as { x: tf.TensorInfo; indices: tf.TensorInfo };
    const { axis, batchDims } = args.attrs as unknown as { axis: number; batchDims: number };
    const rank = x.shape.length;
    if (rank === 0 || (axis !== 0 && axis !== -rank) || batchDims !== 0 || indices.dtype !== 'int32' || (x.dtype !== 'float32' && x.dtype !== 'int32')) return elementwise(args);
    const wasm = args.backend as unknown as WasmBackendInternals;
    const offset = (t: tf.TensorInfo): number => wasm.dataIdMap.get(t.dataId)!.memoryOffset;
    const rows = x.shape[0];
    const count = indices.shape.reduce((a, b) => a * b, 1);
    const rowBytes = x.shape.slice(1).reduce((a, b) => a * b, 1) * 4;
    const ids = (): Int32Array => new Int32Array(wasm.wasm.HEAPU8.buffer, offset(indices), count);
    if (count === 0 || rowBytes === 0 || ids().some((id) => id < 0 || id >= rows)) return elementwise(args);
    const out = wasm.makeOutput([...indices.shape, ...x.shape.slice(1)], x.dtype);
    // Read the memory after makeOutput: an allocation may have grown (and replaced) it.
    const heap = wasm.wasm.HEAPU8;
    const source = offset(x);
    let target = offset(out);
    for (const id of ids()) {
      heap.copyWithin(target, source + id * rowBytes, source + (id + 1) * rowBytes);
      target += rowBytes;
    }
    return out;
  });
}

/** Probes every backend without changing the current one: what `sift doctor` shows. */
export async function probeBackends(): Promise<BackendAttempt[]> {
  const before = tf.getBackend();
  const attempts: BackendAttempt[] = [];
  for (const name of backendNames) {
    let adapter: WebGpuAdapter | undefined;
    try {
      if (name === 'webgpu') adapter = await findWebGpuAdapter();
      await tryBackend(name);
      attempts.push({ name, outcome: 'available', ...(adapter ? { adapter, ...(adapter.software ? { reason: softwareReason(adapter) } : {}) } : {}) });
    } catch (error) {
      attempts.push({ name, outcome: 'failed', ...explainLoadError(name, error), ...(adapter ? { adapter } : {}) });
    }
  }
  if (before) await tf.setBackend(before);
  return attempts;
}

function explainWebGpuError(message: string): { reason: string; fix?: string } {
  if (/requestDevice|device/i.test(message)) {
    return { reason: `the WebGPU adapter was found but tfjs could not open a device on it: ${message}`, fix: 'update the GPU driver; on Linux, Mesa 24 or newer.' };
  }
  return { reason: `the webgpu backend did not start: ${message}` };
}

export function parseBackendChoice(value: string, field = 'backend'): BackendChoice {
  if (value === 'auto' || (backendNames as readonly string[]).includes(value)) return value as BackendChoice;
  throw new Error(`${field}: '${value}' is not a backend. Use one of: auto, ${backendNames.join(', ')}.`);
}
