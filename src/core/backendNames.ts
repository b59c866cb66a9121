/**
 * The TensorFlow.js backends Sift knows, in the order it tries them
 * (backend.ts loads them). Apart from the loader so that reading a config
 * does not load TensorFlow.js.
 */
export const backendNames = ['node-gpu', 'node', 'wasm', 'cpu'] as const;
export type BackendName = (typeof backendNames)[number];
export type BackendChoice = BackendName | 'auto';
