/**
 * A word-level tokenizer built from the training captions. It is saved with
 * the run (tokenizer.json), so a checkpoint's text tower always meets the ids
 * it was trained on.
 */

export const PAD_ID = 0;
export const OOV_ID = 1;
const PAD = '<pad>';
const OOV = '<unk>';

export interface TokenizerJson {
  type: 'word';
  maxLength: number;
  /** Token strings by id; ids 0 and 1 are padding and out-of-vocabulary. */
  vocab: string[];
}

/** Lower-cases and splits on anything that is not a letter, digit or apostrophe. */
export function splitWords(caption: string): string[] {
  return caption.toLowerCase().match(/[\p{L}\p{N}']+/gu) ?? [];
}

export class Tokenizer {
  private readonly ids: Map<string, number>;

  constructor(
    readonly vocab: readonly string[],
    readonly maxLength: number,
  ) {
    if (vocab[PAD_ID] !== PAD || vocab[OOV_ID] !== OOV) throw new Error('tokenizer vocab must start with <pad>, <unk>');
    this.ids = new Map(vocab.map((word, id) => [word, id]));
  }

  /** The most frequent words of the captions (ties broken alphabetically, so the result is deterministic). */
  static build(captions: Iterable<string>, options: { maxVocab: number; maxLength: number }): Tokenizer {
    const counts = new Map<string, number>();
    for (const caption of captions) {
      for (const word of splitWords(caption)) counts.set(word, (counts.get(word) ?? 0) + 1);
    }
    const words = [...counts.entries()]
      .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
      .slice(0, Math.max(0, options.maxVocab - 2))
      .map(([word]) => word);
    return new Tokenizer([PAD, OOV, ...words], options.maxLength);
  }

  static fromJson(json: TokenizerJson): Tokenizer {
    if (json.type !== 'word' || !Array.isArray(json.vocab) || !Number.isInteger(json.maxLength)) {
      throw new Error('tokenizer.json is not a Sift word tokenizer');
    }
    return new Tokenizer(json.vocab, json.maxLength);
  }

  toJson(): TokenizerJson {
    return { type: 'word', maxLength: this.maxLength, vocab: [...this.vocab] };
  }

  get size(): number {
    return this.vocab.length;
  }

  /** Ids of the caption's words, truncated to maxLength; unknown words map to <unk>. */
  encode(caption: string): number[] {
    return splitWords(caption)
      .slice(0, this.maxLength)
      .map((word) => this.ids.get(word) ?? OOV_ID);
  }

  /** Encodes many captions into one padded [count, maxLength] id array. */
  encodeBatch(captions: readonly string[]): Int32Array {
    const out = new Int32Array(captions.length * this.maxLength); // zeros are PAD_ID
    captions.forEach((caption, row) => out.set(this.encode(caption), row * this.maxLength));
    return out;
  }

  decode(ids: Iterable<number>): string {
    const words: string[] = [];
    for (const id of ids) {
      if (id === PAD_ID) continue;
      words.push(this.vocab[id] ?? OOV);
    }
    return words.join(' ');
  }
}
