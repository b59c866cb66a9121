import { test } from 'node:test';
import assert from 'node:assert/strict';
import { distinctCaptions, retrievalMetrics, zeroShotAccuracy } from '../../src/core/train/eval';

test('retrieval recall counts a hit by caption text, so duplicate captions neither help nor hurt', () => {
  // Rows 0 and 1 share the caption "a"; row 2 has "b". 2-d embeddings.
  const { texts, textOf } = distinctCaptions(['a', 'a', 'b']);
  assert.deepEqual(texts, ['a', 'b']);
  assert.deepEqual([...textOf], [0, 0, 1]);
  const textEmbeddings = new Float32Array([1, 0, 0, 1]); // "a" → x axis, "b" → y axis
  // Image 0 and 2 point at their caption; image 1 points at "b" (a miss).
  const imageEmbeddings = new Float32Array([1, 0, 0, 1, 0, 1]);
  const m = retrievalMetrics(imageEmbeddings, textEmbeddings, textOf, 2);
  assert.equal(m.i2t_r1, 2 / 3);
  assert.equal(m.i2t_r5, 1); // only two texts: everything is in the top 5
  // Text "a": best image is row 0 (caption "a") → hit for rows 0 and 1. Text "b": best image is row 1 (tie with row 2; earlier row kept) whose caption is "a" → miss at 1, hit at 5.
  assert.equal(m.t2i_r1, 2 / 3);
  assert.equal(m.t2i_r5, 1);
});

test('a tie with a wrong caption is not an image-to-text hit', () => {
  const { textOf } = distinctCaptions(['a', 'b']);
  const textEmbeddings = new Float32Array([1, 0, 1, 0]); // both texts identical
  const imageEmbeddings = new Float32Array([1, 0, 1, 0]);
  const m = retrievalMetrics(imageEmbeddings, textEmbeddings, textOf, 2);
  assert.equal(m.i2t_r1, 0);
});

test('zero-shot accuracy picks the nearest class prompt and ignores unlabelled rows', () => {
  const prompts = new Float32Array([1, 0, 0, 1]); // class "cat" → x, "dog" → y
  const images = new Float32Array([0.9, 0.1, 0.2, 0.8, 0.7, 0.3, 1, 0]);
  const acc = zeroShotAccuracy(images, ['cat', 'dog', 'dog', undefined], prompts, ['cat', 'dog'], 2);
  assert.equal(acc, 2 / 3);
  assert.equal(zeroShotAccuracy(images, [undefined, undefined, undefined, undefined], prompts, ['cat', 'dog'], 2), undefined);
});
