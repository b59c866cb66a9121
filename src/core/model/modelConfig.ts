/**
 * The dual encoder's shape and its defaults, apart from the model code so
 * that reading a config (the editor, the schema generator) does not load
 * TensorFlow.js.
 */
export interface ModelConfig {
  /** Side of the square input image, pixels. */
  imageSize: number;
  /** Side of a square patch, pixels. imageSize must be a multiple of patchSize × 2 for half-resolution scoring. */
  patchSize: number;
  /** Channels of the image tower. */
  imageWidth: number;
  /** Mixer blocks in the image tower. */
  imageDepth: number;
  /** Hidden units of the image token-mixing MLP. */
  imageTokenHidden: number;
  /** Hidden units of the image channel-mixing MLP. */
  imageChannelHidden: number;
  /** Caption tokens kept (longer captions are truncated). */
  textLength: number;
  /** Channels of the text tower. */
  textWidth: number;
  /** Mixer blocks in the text tower. */
  textDepth: number;
  textTokenHidden: number;
  textChannelHidden: number;
  /** Vocabulary size (set from the tokenizer). */
  vocabSize: number;
  /** Dimension of the shared embedding space. */
  embedDim: number;
  /** Initial temperature t (logits = t·cos + b). SigLIP uses 10. */
  initTemperature: number;
  /** Initial bias b. SigLIP uses −10, which at batch 64 sits in a collapsed plateau (FINDINGS.md); −ln(batch) does not. */
  initBias: number;
}

export const defaultModelConfig: Omit<ModelConfig, 'vocabSize' | 'initBias'> = {
  imageSize: 32,
  patchSize: 4,
  imageWidth: 64,
  imageDepth: 3,
  imageTokenHidden: 64,
  imageChannelHidden: 128,
  textLength: 16,
  textWidth: 64,
  textDepth: 2,
  textTokenHidden: 32,
  textChannelHidden: 128,
  embedDim: 64,
  initTemperature: 10,
};
