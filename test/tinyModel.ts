/**
 * A dual encoder small enough that a training step takes milliseconds on the
 * wasm backend: what the unit, end-to-end and host-benchmark runs train when
 * they exercise runs, workers and panels rather than learning.
 */
import type { TrainConfig } from '../src/core/train/config';

export const tinyModel = {
  batchSize: 8,
  imageWidth: 16,
  textWidth: 16,
  imageDepth: 1,
  textDepth: 1,
  embedDim: 16,
  backend: 'wasm',
} as const satisfies Partial<TrainConfig>;
