import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { CLASSES, convert, encodeGreyPng, parseOptions } from '../../scripts/fashion-mnist.ts';
import type { ConvertOptions } from '../../scripts/fashion-mnist.ts';
import { decodeRgb } from '../../src/core/data/decode.ts';
import { openDataset } from '../../src/core/data/open.ts';
import type { ImageTextDataset } from '../../src/core/data/types.ts';
import { tempDir } from './data-fixtures.ts';

// A miniature Fashion-MNIST in the real IDX format: 6×6 images, pixel values
// that identify the image, labels cycling through the ten classes.
const SIDE = 6;
const TRAIN = 12;
const TEST = 5;
let source: string;

function idxImages(count: number, seed: number): Buffer {
  const header = Buffer.alloc(16);
  header.writeUInt32BE(0x803, 0);
  header.writeUInt32BE(count, 4);
  header.writeUInt32BE(SIDE, 8);
  header.writeUInt32BE(SIDE, 12);
  const pixels = Buffer.alloc(count * SIDE * SIDE);
  for (let i = 0; i < pixels.length; i++) pixels[i] = (i * 7 + seed) % 256;
  return zlib.gzipSync(Buffer.concat([header, pixels]));
}

function idxLabels(count: number): Buffer {
  const header = Buffer.alloc(8);
  header.writeUInt32BE(0x801, 0);
  header.writeUInt32BE(count, 4);
  return zlib.gzipSync(Buffer.concat([header, Buffer.from(Array.from({ length: count }, (_, i) => i % 10))]));
}

const options = (out: string, extra: Partial<ConvertOptions> = {}): ConvertOptions => ({
  source,
  out,
  swapFraction: 0.5,
  seed: 3,
  format: 'both',
  shardSize: 5,
  ...extra,
});

const all = <T>(ds: ImageTextDataset, f: (i: number) => T): T[] => [...Array(ds.size).keys()].map(f);

before(async () => {
  source = await tempDir('sift-fmnist-src-');
  await fs.writeFile(path.join(source, 'train-images-idx3-ubyte.gz'), idxImages(TRAIN, 1));
  await fs.writeFile(path.join(source, 'train-labels-idx1-ubyte.gz'), idxLabels(TRAIN));
  await fs.writeFile(path.join(source, 't10k-images-idx3-ubyte.gz'), idxImages(TEST, 2));
  await fs.writeFile(path.join(source, 't10k-labels-idx1-ubyte.gz'), idxLabels(TEST));
});

test('converts both splits to a captions folder and WebDataset shards that Sift opens', async () => {
  const out = await tempDir('sift-fmnist-out-');
  const summaries = await convert(options(out));
  assert.deepEqual(
    summaries.map((s) => [s.split, s.samples, s.noisy, s.shards && path.basename(s.shards)]),
    [
      ['train', TRAIN, 6, 'train-{00000..00002}.tar'],
      ['test', TEST, 0, 'test-{00000..00000}.tar'],
    ],
  );

  const folder = await openDataset(path.join(out, 'train'), { resolution: SIDE });
  const shards = await openDataset(summaries[0].shards!, { resolution: SIDE });
  try {
    assert.equal(folder.size, TRAIN);
    assert.equal(shards.size, TRAIN);
    assert.deepEqual(all(folder, (i) => folder.id(i)), all(folder, (i) => String(i)));
    assert.deepEqual(all(shards, (i) => shards.id(i)), all(shards, (i) => `train-${String(i).padStart(5, '0')}`));
    // The label is always the true class; a noisy caption names another one.
    assert.deepEqual(all(folder, (i) => folder.label(i)), all(folder, (i) => CLASSES[i % 10]));
    for (let i = 0; i < TRAIN; i++) {
      const namesTrueClass = folder.caption(i).endsWith(` ${CLASSES[i % 10]}`);
      assert.equal(namesTrueClass, !folder.noisy(i), `row ${i}: "${folder.caption(i)}"`);
      assert.doesNotMatch(folder.caption(i), /\ba [aeiou]/);
    }
    assert.equal(all(folder, (i) => folder.noisy(i)).filter(Boolean).length, 6);
    // Both formats carry the same rows and the same pixels.
    assert.deepEqual(all(shards, (i) => [shards.caption(i), shards.label(i), shards.noisy(i)]), all(folder, (i) => [folder.caption(i), folder.label(i), folder.noisy(i)]));
    const order = [11, 0, 5];
    const pixels = await folder.loadImages(order);
    assert.deepEqual(await shards.loadImages(order), pixels);
    // Pixel (x=2, y=1) of image 5 is IDX byte 5·36 + 8, greyscale → three channels.
    const expected = ((5 * 36 + 8) * 7 + 1) % 256;
    const at = 2 * SIDE * SIDE * 3 + (1 * SIDE + 2) * 3;
    assert.deepEqual(Array.from(pixels.subarray(at, at + 3)), [expected / 255, expected / 255, expected / 255].map(Math.fround));
  } finally {
    await folder.close();
    await shards.close();
  }

  const test = await openDataset(path.join(out, 'test'), { resolution: SIDE });
  try {
    assert.equal(test.size, TEST);
    assert.deepEqual(all(test, (i) => test.noisy(i)), Array(TEST).fill(false));
  } finally {
    await test.close();
  }
});

test('the same seed gives the same captions; another seed, other ones; limits and formats apply', async () => {
  const [a, b, c] = [await tempDir(), await tempDir(), await tempDir()];
  await convert(options(a, { format: 'folder' }));
  await convert(options(b, { format: 'folder' }));
  await convert(options(c, { format: 'webdataset', seed: 4, limitTrain: 4, limitTest: 2 }));
  const captions = (dir: string): Promise<string> => fs.readFile(path.join(dir, 'train', 'captions.jsonl'), 'utf8');
  assert.equal(await captions(a), await captions(b));
  assert.deepEqual((await fs.readdir(a)).sort(), ['test', 'train']);
  assert.deepEqual((await fs.readdir(c)).sort(), ['shards']);
  assert.deepEqual((await fs.readdir(path.join(c, 'shards'))).sort(), ['test-00000.tar', 'train-00000.tar']);
  await convert(options(a, { format: 'folder', seed: 4 }));
  assert.notEqual(await captions(a), await captions(b));
});

test('a missing source says how to install it', async () => {
  await assert.rejects(convert(options(await tempDir(), { source: '/nonexistent/fashion-mnist' })), /apt-get install dataset-fashion-mnist/);
});

test('command-line flags are parsed and checked', () => {
  const parsed = parseOptions(['--out', 'x', '--limit-train', '100', '--swap-fraction', '0.2', '--format', 'webdataset', '--seed', '7']);
  assert.equal(parsed.out, 'x');
  assert.equal(parsed.limitTrain, 100);
  assert.equal(parsed.limitTest, undefined);
  assert.equal(parsed.swapFraction, 0.2);
  assert.equal(parsed.format, 'webdataset');
  assert.equal(parsed.seed, 7);
  assert.equal(parsed.shardSize, 5000);
  assert.throws(() => parseOptions(['--format', 'zip']), /--format must be/);
  assert.throws(() => parseOptions(['--swap-fraction', '1.5']), /--swap-fraction/);
  assert.throws(() => parseOptions(['--limit-train', '-1']), /--limit-train/);
});

test('the greyscale PNG encoder round-trips through the decoder', () => {
  const pixels = Uint8Array.from({ length: 15 }, (_, i) => i * 17);
  const decoded = decodeRgb(encodeGreyPng(pixels, 5, 3));
  assert.equal(decoded.width, 5);
  assert.equal(decoded.height, 3);
  assert.deepEqual(Array.from(decoded.data).filter((_, i) => i % 3 === 0), Array.from(pixels));
});
