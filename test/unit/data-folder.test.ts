import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { openDataset } from '../../src/core/data/open.ts';
import { DataError } from '../../src/core/data/types.ts';
import { DEFAULT_CACHE_BYTES, trainingCacheBytes } from '../../src/core/data/rows.ts';
import { BLUE, GREEN, RED, greyPng, jpeg, jsonl, pixelAt, png, tempDir, webp, writeFiles } from './data-fixtures.ts';

const RES = 8;
let root: string;
let folder: string;

const good = [
  { image: 'images/red.png', caption: 'a red square', label: 'red' },
  { image: 'images/green.jpg', caption: '  a green square ', label: 'green', noisy: true },
];

/** Every kind of bad row, one per line, between good ones. */
function captionLines(): (string | Buffer)[] {
  return [
    JSON.stringify(good[0]), // line 1, id 0
    JSON.stringify(good[1]), // line 2, id 1
    '', // line 3: blank, not a row
    JSON.stringify({ image: 'images/missing.png', caption: 'gone' }), // 4 missing-file
    JSON.stringify({ image: 'images/corrupt.png', caption: 'bad bytes' }), // 5 corrupt-image
    JSON.stringify({ image: 'images/truncated.png', caption: 'cut short' }), // 6 corrupt-image
    JSON.stringify({ image: 'images/red.png', caption: '   ' }), // 7 empty-caption
    JSON.stringify({ image: 'images/red.png', caption: 'x'.repeat(100 * 1024) }), // 8 caption-too-long
    '{"image": "images/red.png", "caption": oops', // 9 invalid-json
    JSON.stringify({ image: 'images/red.png', caption: 42 }), // 10 wrong-field-type
    JSON.stringify({ image: 'images/red.png' }), // 11 missing-field
    Buffer.concat([Buffer.from('{"image": "images/red.png", "caption": "caf'), Buffer.from([0xe9]), Buffer.from('"}')]), // 12 non-utf8
    JSON.stringify({ image: '../outside.png', caption: 'escapes' }), // 13 path-escapes-dataset
    JSON.stringify({ image: '/etc/hostname', caption: 'absolute' }), // 14 path-escapes-dataset
    JSON.stringify({ image: 'images/blue.webp', caption: 'a blue square' }), // 15, id 14
    JSON.stringify({ image: 'images/grey.png', caption: 'a grey rectangle', label: 7 }), // 16, id 15
    JSON.stringify({ image: 'images/red.png', caption: 'red again', noisy: 'yes' }), // 17 wrong-field-type
    JSON.stringify([1, 2]), // 18 wrong-field-type
  ];
}

function joinLines(lines: (string | Buffer)[]): Buffer {
  return Buffer.concat(lines.flatMap((line) => [Buffer.from(line), Buffer.from('\n')]));
}

before(async () => {
  root = await tempDir();
  folder = path.join(root, 'ds');
  const truncated = png(RES, RES, RED);
  await writeFiles(folder, {
    'images/red.png': png(RES, RES, RED),
    'images/green.jpg': jpeg(16, 16, GREEN),
    'images/blue.webp': webp(RES, RES, BLUE),
    'images/grey.png': greyPng(40, 20, 100),
    'images/corrupt.png': Buffer.from('this is not a png at all'),
    'images/truncated.png': truncated.subarray(0, truncated.length - 25),
    'captions.jsonl': joinLines(captionLines()),
  });
  await writeFiles(root, { 'outside.png': png(RES, RES, RED) });
});

test('a captions folder: usable rows, ids = 0-based lines, labels, noisy flags, captions trimmed', async () => {
  const ds = await openDataset(folder, { resolution: RES });
  try {
    assert.equal(ds.format, 'folder');
    assert.equal(ds.source, folder);
    assert.equal(ds.size, 4);
    assert.deepEqual([0, 1, 2, 3].map((i) => ds.id(i)), ['0', '1', '14', '15']);
    assert.deepEqual([0, 1, 2, 3].map((i) => ds.caption(i)), ['a red square', 'a green square', 'a blue square', 'a grey rectangle']);
    assert.deepEqual([0, 1, 2, 3].map((i) => ds.label(i)), ['red', 'green', undefined, '7']);
    assert.deepEqual([0, 1, 2, 3].map((i) => ds.noisy(i)), [undefined, true, undefined, undefined]);
    assert.equal(ds.resolution, RES);
  } finally {
    await ds.close();
  }
});

test('every bad row is skipped, counted by reason, and the first few reported with file:line', async () => {
  const ds = await openDataset(folder, { resolution: RES, maxReportedSkips: 20 });
  try {
    assert.equal(ds.skips.rowsSeen, 17);
    assert.equal(ds.skips.rowsUsed, 4);
    assert.deepEqual(ds.skips.counts, {
      'missing-file': 1,
      'corrupt-image': 2,
      'empty-caption': 1,
      'caption-too-long': 1,
      'invalid-json': 1,
      'wrong-field-type': 3,
      'missing-field': 1,
      'non-utf8': 1,
      'path-escapes-dataset': 2,
    });
    const where = ds.skips.first.map((s) => `${s.where} ${s.reason}`);
    assert.deepEqual(where, [
      'captions.jsonl:4 missing-file',
      'captions.jsonl:5 corrupt-image',
      'captions.jsonl:6 corrupt-image',
      'captions.jsonl:7 empty-caption',
      'captions.jsonl:8 caption-too-long',
      'captions.jsonl:9 invalid-json',
      'captions.jsonl:10 wrong-field-type',
      'captions.jsonl:11 missing-field',
      'captions.jsonl:12 non-utf8',
      'captions.jsonl:13 path-escapes-dataset',
      'captions.jsonl:14 path-escapes-dataset',
      'captions.jsonl:17 wrong-field-type',
      'captions.jsonl:18 wrong-field-type',
    ]);
    const detail = (line: number): string => ds.skips.first.find((s) => s.where === `captions.jsonl:${line}`)!.detail;
    assert.match(detail(4), /images\/missing\.png.*not found/);
    assert.match(detail(8), /102400 bytes; the limit is 4096/);
    assert.match(detail(10), /"caption" is a number/);
    assert.match(detail(11), /no "caption" field/);
    assert.match(detail(13), /outside the dataset folder/);
    assert.match(detail(14), /absolute/);
  } finally {
    await ds.close();
  }
});

test('by default only the first 5 skips are reported in full', async () => {
  const ds = await openDataset(folder, { resolution: RES });
  try {
    assert.equal(ds.skips.first.length, 5);
    assert.equal(Object.values(ds.skips.counts).reduce((a, b) => a + b, 0), 13);
  } finally {
    await ds.close();
  }
});

test('maxCaptionBytes is honoured', async () => {
  const ds = await openDataset(folder, { resolution: RES, maxCaptionBytes: 12 });
  try {
    // "a red square" is 12 bytes and stays; the three longer captions go.
    assert.deepEqual([...Array(ds.size).keys()].map((i) => ds.id(i)), ['0']);
    assert.equal(ds.skips.counts['caption-too-long'], 4);
  } finally {
    await ds.close();
  }
});

test('loadImages returns the right pixels, in the requested order, resized to the resolution', async () => {
  const ds = await openDataset(folder, { resolution: RES });
  try {
    const images = await ds.loadImages([3, 0, 2, 0, 1]);
    assert.equal(images.length, 5 * RES * RES * 3);
    const grey = 100 / 255;
    const expected = [[grey, grey, grey], [1, 0, 0], [0, 0, 1], [1, 0, 0], [0, 1, 0]];
    expected.forEach((rgb, k) => {
      for (const i of [0, RES * RES - 1]) {
        const px = pixelAt(images, RES, k, i);
        px.forEach((v, c) => assert.ok(Math.abs(v - rgb[c]) < 0.02, `image ${k} pixel ${i}: ${px} vs ${rgb}`));
      }
    });
  } finally {
    await ds.close();
  }
});

test('a tiny cache re-reads from disk and gives the same pixels', async () => {
  const big = await openDataset(folder, { resolution: RES });
  const tiny = await openDataset(folder, { resolution: RES, cacheBytes: RES * RES * 3 });
  try {
    const order = [0, 1, 2, 3, 2, 1, 0];
    assert.deepEqual(await tiny.loadImages(order), await big.loadImages(order));
    assert.deepEqual(await tiny.loadImages(order), await big.loadImages(order));
  } finally {
    await big.close();
    await tiny.close();
  }
});

test("a training run's image cache grows with the machine's memory, from 64 MiB to 1 GiB", () => {
  const GiB = 1024 ** 3;
  // A 16 GiB laptop holds 1 GiB of decoded images: Fashion-MNIST's 50,000-image pool (150 MB at 32 px) is read from disk once.
  assert.equal(trainingCacheBytes(16 * GiB), GiB);
  assert.equal(trainingCacheBytes(8 * GiB), GiB / 2);
  assert.equal(trainingCacheBytes(256 * GiB), GiB);
  assert.equal(trainingCacheBytes(GiB / 2), DEFAULT_CACHE_BYTES);
});

test('progress is reported while validating, ending at (total, total)', async () => {
  const calls: [number, number | undefined][] = [];
  const ds = await openDataset(folder, { resolution: RES, onProgress: (done, total) => calls.push([done, total]) });
  await ds.close();
  assert.ok(calls.length >= 2);
  assert.deepEqual(calls.at(-1), [7, 7]); // 7 rows pass the field checks and reach image validation
});

test('a .jsonl file: image paths relative to its folder, ids = 0-based lines', async () => {
  const dir = await tempDir();
  await writeFiles(dir, {
    'pics/a.png': png(RES, RES, RED),
    'pics/b.png': png(RES, RES, BLUE),
    'rows.jsonl': jsonl([
      { image: 'pics/a.png', caption: 'red' },
      'not json',
      { image: 'pics/b.png', caption: 'blue', label: 'b' },
    ]),
  });
  const ds = await openDataset(path.join(dir, 'rows.jsonl'), { resolution: RES });
  try {
    assert.equal(ds.format, 'jsonl');
    assert.deepEqual([ds.id(0), ds.id(1)], ['0', '2']);
    assert.equal(ds.label(1), 'b');
    assert.deepEqual(ds.skips.first.map((s) => s.where), ['rows.jsonl:2']);
    assert.deepEqual(pixelAt(await ds.loadImages([1]), RES, 0), [0, 0, 1]);
  } finally {
    await ds.close();
  }
});

test('zero usable rows: a DataError naming the file, the reasons and the first example', async () => {
  const dir = await tempDir();
  await writeFiles(dir, {
    'captions.jsonl': jsonl([
      { image: 'nope.png', caption: 'a' },
      { image: 'nope2.png', caption: 'b' },
      { image: 'x.png', caption: '' },
    ]),
  });
  await assert.rejects(openDataset(dir, { resolution: RES }), (err: Error) => {
    assert.ok(err instanceof DataError);
    assert.ok(err.message.includes(dir), err.message);
    assert.match(err.message, /zero usable rows out of 3/);
    assert.match(err.message, /missing-file ×2 — first at captions\.jsonl:1: image "nope\.png" not found/);
    assert.match(err.message, /empty-caption ×1/);
    return true;
  });
  await fs.writeFile(path.join(dir, 'captions.jsonl'), '\n\n');
  await assert.rejects(openDataset(dir, { resolution: RES }), /zero usable rows — the dataset has no rows at all/);
});

test('ids are stable across opens', async () => {
  const a = await openDataset(folder, { resolution: RES });
  const b = await openDataset(folder, { resolution: 4 });
  try {
    assert.deepEqual([...Array(a.size).keys()].map((i) => a.id(i)), [...Array(b.size).keys()].map((i) => b.id(i)));
  } finally {
    await a.close();
    await b.close();
  }
});

test('an image that changes or vanishes after open is a DataError naming it', async () => {
  const dir = await tempDir();
  await writeFiles(dir, {
    'a.png': png(RES, RES, RED),
    'b.png': png(RES, RES, GREEN),
    'captions.jsonl': jsonl([{ image: 'a.png', caption: 'red' }, { image: 'b.png', caption: 'green' }]),
  });
  const ds = await openDataset(dir, { resolution: RES, cacheBytes: 0 });
  try {
    await fs.writeFile(path.join(dir, 'a.png'), 'garbage');
    await assert.rejects(ds.loadImages([0]), (err: Error) => {
      assert.ok(err instanceof DataError);
      assert.match(err.message, /captions\.jsonl:1 \(.*a\.png\).*was valid when .* opened, but it no longer decodes/);
      return true;
    });
    await fs.rm(path.join(dir, 'b.png'));
    await assert.rejects(ds.loadImages([1]), /captions\.jsonl:2 .*can no longer be read/);
    await assert.rejects(ds.loadImages([2]), RangeError);
  } finally {
    await ds.close();
  }
  await assert.rejects(ds.loadImages([0]), /closed/);
});
