/**
 * The TensorFlow.js backends Sift knows, in the order it tries them
 * (backend.ts loads them). Apart from the loader so that reading a config
 * does not load TensorFlow.js.
 *
 * `webgpu` (Dawn, through Vulkan, Metal or Direct3D 12) comes after CUDA and
 * before the CPU backends: any real GPU beats them. A software WebGPU adapter
 * does not, so `auto` passes over one (backend.ts).
 */
export const backendNames = ['node-gpu', 'webgpu', 'node', 'wasm', 'cpu'] as const;
export type BackendName = (typeof backendNames)[number];
export type BackendChoice = BackendName | 'auto';
