/**
 * The dual encoder: an MLP-Mixer image tower (Tolstikhin et al. 2021) and a
 * Mixer text tower, each projected to a shared space and L2-normalised, with a
 * learned temperature and bias (SigLIP, Zhai et al. 2023, §3).
 *
 * Why a Mixer and not a ViT or a CNN: on the wasm backend only unbatched 2-D
 * matMul is fast (~20 GFLOP/s). Attention needs batched matmuls (~1.5 GFLOP/s,
 * measured) and a CNN's Conv2DBackpropFilter has no wasm kernel; a Mixer is
 * nothing but 2-D matmuls, layer norms and transposes.
 *
 * Resolution is a run-time choice (Flexi-JEST scores at low resolution on the
 * same weights): at scale s the image is downsampled s× and cut into the same
 * p×p patches, giving T/s² tokens. Token-mixing weights are mapped to the
 * coarse grid exactly as if every coarse token were replicated over the s×s
 * fine tokens it covers (first layer: rows summed) and every coarse output
 * were the mean of those fine outputs (second layer: columns averaged). The
 * mapping is differentiable, so low-resolution training updates the shared
 * weights.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Rng } from '../random';
import { addToEach, dense, embed, gelu, l2Normalize, layerNorm } from './ops';
import { ParamStore } from './params';

export { defaultModelConfig, type ModelConfig } from './modelConfig';
import type { ModelConfig } from './modelConfig';

/** Input of the image tower: patches already cut from the images (no gradient flows into pixels). */
export interface PatchBatch {
  /** [count, tokens, patch·patch·3] row-major. */
  patches: Float32Array;
  count: number;
  /** 1 = full resolution, 2 = half. */
  scale: number;
}

export interface Embeddings {
  image: tf.Tensor2D;
  text: tf.Tensor2D;
}

/** Cuts HWC images into patches, downsampling by `scale` (box filter) first. Pure JS: inputs need no gradient. */
export function patchify(images: Float32Array, count: number, imageSize: number, patchSize: number, scale: number): PatchBatch {
  const side = imageSize / scale;
  const grid = side / patchSize;
  if (!Number.isInteger(side) || !Number.isInteger(grid)) {
    throw new Error(`image size ${imageSize} at scale ${scale} is not a whole number of ${patchSize}px patches`);
  }
  const patchLength = patchSize * patchSize * 3;
  const tokens = grid * grid;
  const patches = new Float32Array(count * tokens * patchLength);
  const inv = 1 / (scale * scale);
  for (let n = 0; n < count; n++) {
    const imageBase = n * imageSize * imageSize * 3;
    for (let y = 0; y < side; y++) {
      for (let x = 0; x < side; x++) {
        const token = Math.floor(y / patchSize) * grid + Math.floor(x / patchSize);
        const within = ((y % patchSize) * patchSize + (x % patchSize)) * 3;
        const out = (n * tokens + token) * patchLength + within;
        for (let c = 0; c < 3; c++) {
          let sum = 0;
          for (let dy = 0; dy < scale; dy++) {
            for (let dx = 0; dx < scale; dx++) {
              sum += images[imageBase + ((y * scale + dy) * imageSize + (x * scale + dx)) * 3 + c];
            }
          }
          patches[out + c] = sum * inv;
        }
      }
    }
  }
  return { patches, count, scale };
}

/** [coarse tokens, fine tokens] 0/1 matrix: which fine tokens each coarse token covers. */
function replicationMatrix(fineGrid: number, scale: number): Float32Array {
  const coarseGrid = fineGrid / scale;
  const fineTokens = fineGrid * fineGrid;
  const matrix = new Float32Array(coarseGrid * coarseGrid * fineTokens);
  for (let y = 0; y < fineGrid; y++) {
    for (let x = 0; x < fineGrid; x++) {
      const coarse = Math.floor(y / scale) * coarseGrid + Math.floor(x / scale);
      matrix[coarse * fineTokens + y * fineGrid + x] = 1;
    }
  }
  return matrix;
}

interface MixerShape {
  prefix: string;
  tokens: number;
  width: number;
  tokenHidden: number;
  channelHidden: number;
  depth: number;
}

export class DualEncoder {
  readonly params: ParamStore;
  private readonly replication = new Map<number, tf.Tensor2D>();

  constructor(
    readonly config: ModelConfig,
    rng: Rng,
  ) {
    const c = config;
    if (c.imageSize % c.patchSize !== 0) throw new Error(`imageSize ${c.imageSize} is not a multiple of patchSize ${c.patchSize}`);
    this.params = new ParamStore(rng);
    const p = this.params;
    const patchLength = c.patchSize * c.patchSize * 3;
    p.create('image/patch/w', [patchLength, c.imageWidth], { kind: 'normal', std: Math.sqrt(1 / patchLength) });
    p.create('image/patch/b', [c.imageWidth], { kind: 'zeros' });
    p.create('image/pos', [this.imageTokens, c.imageWidth], { kind: 'normal', std: 0.02 });
    this.createMixer(this.imageMixer);
    p.create('image/head/w', [c.imageWidth, c.embedDim], { kind: 'normal', std: Math.sqrt(1 / c.imageWidth) });

    p.create('text/embed', [c.vocabSize, c.textWidth], { kind: 'normal', std: 0.02 });
    p.create('text/pos', [c.textLength, c.textWidth], { kind: 'normal', std: 0.02 });
    this.createMixer(this.textMixer);
    p.create('text/head/w', [c.textWidth, c.embedDim], { kind: 'normal', std: Math.sqrt(1 / c.textWidth) });

    p.create('logit/log_temperature', [], { kind: 'constant', value: Math.log(c.initTemperature) });
    p.create('logit/bias', [], { kind: 'constant', value: c.initBias });
  }

  get imageTokens(): number {
    return (this.config.imageSize / this.config.patchSize) ** 2;
  }

  private get imageMixer(): MixerShape {
    const c = this.config;
    return { prefix: 'image', tokens: this.imageTokens, width: c.imageWidth, tokenHidden: c.imageTokenHidden, channelHidden: c.imageChannelHidden, depth: c.imageDepth };
  }

  private get textMixer(): MixerShape {
    const c = this.config;
    return { prefix: 'text', tokens: c.textLength, width: c.textWidth, tokenHidden: c.textTokenHidden, channelHidden: c.textChannelHidden, depth: c.textDepth };
  }

  private createMixer(shape: MixerShape): void {
    const p = this.params;
    for (let block = 0; block < shape.depth; block++) {
      const name = `${shape.prefix}/block${block}`;
      p.create(`${name}/ln1/g`, [shape.width], { kind: 'ones' });
      p.create(`${name}/ln1/b`, [shape.width], { kind: 'zeros' });
      p.create(`${name}/token/w1`, [shape.tokens, shape.tokenHidden], { kind: 'normal', std: Math.sqrt(1 / shape.tokens) });
      p.create(`${name}/token/b1`, [shape.tokenHidden], { kind: 'zeros' });
      p.create(`${name}/token/w2`, [shape.tokenHidden, shape.tokens], { kind: 'normal', std: Math.sqrt(1 / shape.tokenHidden) / shape.depth });
      p.create(`${name}/token/b2`, [shape.tokens], { kind: 'zeros' });
      p.create(`${name}/ln2/g`, [shape.width], { kind: 'ones' });
      p.create(`${name}/ln2/b`, [shape.width], { kind: 'zeros' });
      p.create(`${name}/channel/w1`, [shape.width, shape.channelHidden], { kind: 'normal', std: Math.sqrt(1 / shape.width) });
      p.create(`${name}/channel/b1`, [shape.channelHidden], { kind: 'zeros' });
      p.create(`${name}/channel/w2`, [shape.channelHidden, shape.width], { kind: 'normal', std: Math.sqrt(1 / shape.channelHidden) / shape.depth });
      p.create(`${name}/channel/b2`, [shape.width], { kind: 'zeros' });
    }
    p.create(`${shape.prefix}/ln_out/g`, [shape.width], { kind: 'ones' });
    p.create(`${shape.prefix}/ln_out/b`, [shape.width], { kind: 'zeros' });
  }

  /** The replication matrix for a scale, kept for the model's lifetime. */
  private replicate(scale: number): tf.Tensor2D {
    let matrix = this.replication.get(scale);
    if (!matrix) {
      const grid = this.config.imageSize / this.config.patchSize;
      const coarse = (grid / scale) ** 2;
      matrix = tf.keep(tf.tensor2d(replicationMatrix(grid, scale), [coarse, grid * grid]));
      this.replication.set(scale, matrix);
    }
    return matrix;
  }

  /** x: [batch, tokens, width] → same shape. `scale` > 1 maps token-mixing weights to the coarse grid. */
  private mixer(x: tf.Tensor, shape: MixerShape, scale: number): tf.Tensor {
    const p = this.params;
    const [batch, tokens, width] = x.shape;
    const up = scale > 1 ? this.replicate(scale) : undefined;
    const area = scale * scale;
    for (let block = 0; block < shape.depth; block++) {
      const name = `${shape.prefix}/block${block}`;
      let w1 = p.get(`${name}/token/w1`) as tf.Tensor2D;
      let w2 = p.get(`${name}/token/w2`) as tf.Tensor2D;
      let b2 = p.get(`${name}/token/b2`) as tf.Tensor1D;
      if (up) {
        w1 = tf.matMul(up, w1);
        const down = tf.div(tf.transpose(up), area) as tf.Tensor2D;
        w2 = tf.matMul(w2, down);
        b2 = tf.reshape(tf.matMul(tf.reshape(b2, [1, -1]) as tf.Tensor2D, down), [-1]) as tf.Tensor1D;
      }
      // Token mixing: an MLP across tokens, shared by every channel.
      const normed = layerNorm(x, p.get(`${name}/ln1/g`) as tf.Tensor1D, p.get(`${name}/ln1/b`) as tf.Tensor1D);
      const byChannel = tf.reshape(tf.transpose(normed, [0, 2, 1]), [batch * width, tokens]);
      const hidden = gelu(dense(byChannel, w1, p.get(`${name}/token/b1`) as tf.Tensor1D));
      const mixed = tf.transpose(tf.reshape(dense(hidden, w2, b2), [batch, width, tokens]), [0, 2, 1]);
      x = tf.add(x, mixed);
      // Channel mixing: an MLP across channels, shared by every token.
      const normed2 = layerNorm(x, p.get(`${name}/ln2/g`) as tf.Tensor1D, p.get(`${name}/ln2/b`) as tf.Tensor1D);
      const hidden2 = gelu(dense(normed2, p.get(`${name}/channel/w1`) as tf.Tensor2D, p.get(`${name}/channel/b1`) as tf.Tensor1D));
      x = tf.add(x, dense(hidden2, p.get(`${name}/channel/w2`) as tf.Tensor2D, p.get(`${name}/channel/b2`) as tf.Tensor1D));
    }
    return layerNorm(x, p.get(`${shape.prefix}/ln_out/g`) as tf.Tensor1D, p.get(`${shape.prefix}/ln_out/b`) as tf.Tensor1D);
  }

  /** L2-normalised image embeddings [count, embedDim]. */
  embedImages(batch: PatchBatch): tf.Tensor2D {
    const c = this.config;
    const p = this.params;
    const tokens = this.imageTokens / (batch.scale * batch.scale);
    const patchLength = c.patchSize * c.patchSize * 3;
    const patches = tf.tensor3d(batch.patches, [batch.count, tokens, patchLength]);
    let position = p.get('image/pos') as tf.Tensor2D;
    if (batch.scale > 1) position = tf.div(tf.matMul(this.replicate(batch.scale), position), batch.scale * batch.scale);
    const x = addToEach(dense(patches, p.get('image/patch/w') as tf.Tensor2D, p.get('image/patch/b') as tf.Tensor1D), position);
    const mixed = this.mixer(x, this.imageMixer, batch.scale);
    const pooled = tf.mean(mixed, 1) as tf.Tensor2D;
    return l2Normalize(dense(pooled, p.get('image/head/w') as tf.Tensor2D) as tf.Tensor2D);
  }

  /** L2-normalised text embeddings [count, embedDim] from padded token ids [count, textLength]. */
  embedTexts(ids: Int32Array, count: number): tf.Tensor2D {
    const c = this.config;
    const p = this.params;
    const idTensor = tf.tensor2d(ids, [count, c.textLength], 'int32');
    const x = addToEach(embed(p.get('text/embed') as tf.Tensor2D, idTensor), p.get('text/pos'));
    const mixed = this.mixer(x, this.textMixer, 1);
    // Mean over the caption's real tokens only; padding carries no meaning.
    const mask = tf.expandDims(tf.cast(tf.notEqual(idTensor, 0), 'float32'), 2);
    const pooled = tf.div(tf.sum(tf.mul(mixed, mask), 1), tf.maximum(tf.sum(mask, 1), 1)) as tf.Tensor2D;
    return l2Normalize(dense(pooled, p.get('text/head/w') as tf.Tensor2D) as tf.Tensor2D);
  }

  get temperature(): tf.Tensor {
    return tf.exp(this.params.get('logit/log_temperature'));
  }

  get bias(): tf.Tensor {
    return this.params.get('logit/bias');
  }

  dispose(): void {
    this.params.dispose();
    for (const matrix of this.replication.values()) matrix.dispose();
    this.replication.clear();
  }
}

/** Multiply-adds ×2 of every matmul of one example's forward pass through a Mixer tower. */
function mixerFlops(tokens: number, shape: Omit<MixerShape, 'prefix' | 'tokens'>): number {
  const tokenMixing = 2 * shape.width * (2 * tokens * shape.tokenHidden);
  const channelMixing = 2 * tokens * (2 * shape.width * shape.channelHidden);
  return shape.depth * (tokenMixing + channelMixing);
}

/**
 * Forward FLOPs of one example (matmuls, which dominate; elementwise ops are
 * left out). Training costs 3× forward (backward ≈ 2× forward).
 */
export function forwardFlops(config: ModelConfig, scale = 1): { image: number; text: number } {
  const c = config;
  const tokens = (c.imageSize / c.patchSize / scale) ** 2;
  const patchLength = c.patchSize * c.patchSize * 3;
  const image =
    2 * tokens * patchLength * c.imageWidth +
    mixerFlops(tokens, { width: c.imageWidth, tokenHidden: c.imageTokenHidden, channelHidden: c.imageChannelHidden, depth: c.imageDepth }) +
    2 * c.imageWidth * c.embedDim;
  const text =
    mixerFlops(c.textLength, { width: c.textWidth, tokenHidden: c.textTokenHidden, channelHidden: c.textChannelHidden, depth: c.textDepth }) +
    2 * c.textWidth * c.embedDim;
  return { image, text };
}

/** FLOPs of the batch × batch similarity matrix of a contrastive loss. */
export function similarityFlops(rows: number, columns: number, embedDim: number): number {
  return 2 * rows * columns * embedDim;
}
