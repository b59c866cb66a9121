import { test } from 'node:test';
import assert from 'node:assert/strict';
import { OOV_ID, PAD_ID, Tokenizer } from '../../src/core/data/tokenizer';

const captions = ['Two small red triangles above a blue circle', 'a large green square', 'a small red circle'];

test('round-trips known captions through ids, lower-cased', () => {
  const tokenizer = Tokenizer.build(captions, { maxVocab: 100, maxLength: 16 });
  for (const caption of captions) assert.equal(tokenizer.decode(tokenizer.encode(caption)), caption.toLowerCase());
});

test('unknown words map to <unk>, long captions are truncated, batches are padded', () => {
  const tokenizer = Tokenizer.build(captions, { maxVocab: 100, maxLength: 4 });
  assert.deepEqual(tokenizer.encode('a purple circle'), [tokenizer.encode('a')[0], OOV_ID, tokenizer.encode('circle')[0]]);
  assert.equal(tokenizer.encode('two small red triangles above a blue circle').length, 4);
  const batch = tokenizer.encodeBatch(['a', 'a large green square']);
  assert.equal(batch.length, 8);
  assert.deepEqual([...batch.slice(1, 4)], [PAD_ID, PAD_ID, PAD_ID]);
});

test('the vocabulary keeps the most frequent words and is deterministic', () => {
  const small = Tokenizer.build(captions, { maxVocab: 4, maxLength: 8 });
  assert.equal(small.size, 4);
  // "a" (3×) and then "circle"/"red"/"small" (2× each, alphabetical) win.
  assert.deepEqual(small.vocab.slice(2), ['a', 'circle']);
  assert.deepEqual(Tokenizer.build(captions, { maxVocab: 4, maxLength: 8 }).vocab, small.vocab);
});

test('saves and restores through JSON (what the run folder keeps)', () => {
  const tokenizer = Tokenizer.build(captions, { maxVocab: 100, maxLength: 16 });
  const restored = Tokenizer.fromJson(JSON.parse(JSON.stringify(tokenizer.toJson())));
  assert.deepEqual(restored.encode(captions[0]), tokenizer.encode(captions[0]));
  assert.throws(() => Tokenizer.fromJson({ type: 'word', maxLength: 4, vocab: ['x'] }), /must start with <pad>/);
});
