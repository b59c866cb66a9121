import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeImage, decodeImageFloat, decodeRgb, resizeToSquare } from '../../src/core/data/decode.ts';
import { BLUE, GREEN, RED, greyPng, jpeg, png, webp } from './data-fixtures.ts';

function near(actual: ArrayLike<number>, expected: readonly number[], tolerance: number, what: string): void {
  for (let i = 0; i < expected.length; i++) {
    assert.ok(Math.abs(actual[i] - expected[i]) <= tolerance, `${what}[${i}]: ${actual[i]} vs ${expected[i]}`);
  }
}

test('a solid red PNG decodes to [1, 0, 0] everywhere, HWC at the resolution', () => {
  const out = decodeImageFloat(png(28, 28, RED), 28);
  assert.equal(out.length, 28 * 28 * 3);
  for (let p = 0; p < 28 * 28; p++) assert.deepEqual(Array.from(out.subarray(p * 3, p * 3 + 3)), [1, 0, 0]);
});

test('JPEG and WebP decode to their colour', () => {
  near(decodeImageFloat(jpeg(16, 16, BLUE), 8), [0, 0, 1], 0.02, 'jpeg');
  near(decodeImageFloat(webp(12, 12, GREEN), 8), [0, 1, 0], 0, 'webp');
});

test('greyscale (with or without alpha) becomes three equal channels', () => {
  const grey = greyPng(10, 10, 128);
  const out = decodeImageFloat(grey, 10);
  near(out, [128 / 255, 128 / 255, 128 / 255], 1e-6, 'grey');
});

test('alpha is dropped, like PIL convert("RGB")', () => {
  const { data } = decodeRgb(png(4, 4, [10, 20, 30]));
  assert.deepEqual(Array.from(data.subarray(0, 3)), [10, 20, 30]);
});

test('a wide image is centre-cropped to a square, then resized', () => {
  // 30×10: left third red, middle third green, right third blue → the
  // central 10×10 square is all green.
  const wide = png(30, 10, (x) => (x < 10 ? RED : x < 20 ? GREEN : BLUE));
  const out = decodeImageFloat(wide, 5);
  for (let p = 0; p < 25; p++) near(out.subarray(p * 3), [0, 1, 0], 0, `pixel ${p}`);
});

test('shrinking averages areas; enlarging interpolates', () => {
  // 4×4 checker of black and white 2×2 blocks → 2×2 keeps the blocks exactly.
  const blocks = png(4, 4, (x, y) => ((x >> 1) + (y >> 1)) % 2 === 0 ? [0, 0, 0] : [255, 255, 255]);
  assert.deepEqual(Array.from(decodeImage(blocks, 2)), [0, 0, 0, 255, 255, 255, 255, 255, 255, 0, 0, 0]);
  // A 1-pixel-wide stripe pattern shrunk by 2 averages to mid-grey.
  const stripes = png(4, 4, (x) => (x % 2 === 0 ? [0, 0, 0] : [255, 255, 255]));
  assert.deepEqual(Array.from(decodeImage(stripes, 2)), Array(12).fill(128));
  // Enlarging a solid image stays solid; a 2-pixel ramp gains in-between values.
  assert.deepEqual(Array.from(decodeImage(png(3, 3, RED), 7).subarray(0, 6)), [255, 0, 0, 255, 0, 0]);
  const ramp = resizeToSquare({ width: 2, height: 2, data: Uint8Array.from([0, 0, 0, 200, 200, 200, 0, 0, 0, 200, 200, 200]) }, 4);
  const firstRow = Array.from(ramp.subarray(0, 12)).filter((_, i) => i % 3 === 0);
  assert.deepEqual(firstRow, [0, 50, 150, 200]);
});

test('non-integer scale factors keep weights summing to one', () => {
  const out = decodeImage(png(29, 29, [77, 150, 200]), 11);
  for (let i = 0; i < out.length; i += 3) assert.deepEqual(Array.from(out.subarray(i, i + 3)), [77, 150, 200]);
});

test('corrupt, truncated and empty bytes throw', () => {
  const good = png(8, 8, RED);
  assert.throws(() => decodeImage(good.subarray(0, good.length - 20), 8), /end of file|truncat|failed|invalid/i);
  assert.throws(() => decodeImage(Buffer.from('definitely not an image'), 8), /not a PNG, JPEG or WebP/);
  assert.throws(() => decodeImage(new Uint8Array(0), 8), /empty/);
  const jpg = jpeg(16, 16, RED);
  assert.throws(() => decodeImage(jpg.subarray(0, jpg.length - 30), 8), /truncated/);
  const wp = webp(16, 16, RED);
  assert.throws(() => decodeImage(wp.subarray(0, wp.length - 10), 8));
});

test('a bad resolution is refused', () => {
  assert.throws(() => decodeImage(png(4, 4, RED), 0), RangeError);
  assert.throws(() => decodeImage(png(4, 4, RED), 2.5), RangeError);
});
