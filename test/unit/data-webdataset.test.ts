import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { openDataset } from '../../src/core/data/open.ts';
import { expandBraces, isBracePattern } from '../../src/core/data/sources/shards.ts';
import { TarStore } from '../../src/core/data/sources/tarstore.ts';
import { DataError } from '../../src/core/data/types.ts';
import { BLUE, GREEN, RED, greyPng, jpeg, pixelAt, png, tempDir, webp, writeTar } from './data-fixtures.ts';

const RES = 6;
let dir: string;
let shards: string;
const LONG_KEY = `deep/dir/${'k'.repeat(120)}`; // > 100 chars: tar-stream writes a pax header

before(async () => {
  dir = await tempDir();
  shards = path.join(dir, 'shards');
  const cut = png(RES, RES, RED);
  await writeTar(path.join(shards, '00000.tar'), [
    ['s0000.png', png(RES, RES, RED)],
    ['s0000.txt', 'a red square\n'],
    ['s0000.json', JSON.stringify({ label: 'red', url: 'http://x' })],
    ['s0001.jpg', jpeg(12, 12, GREEN)],
    ['s0001.txt', 'a green square'],
    ['s0001.json', JSON.stringify({ label: 'green', noisy: true })],
    ['s0002.txt', 'caption without an image'],
    ['s0003.png', png(RES, RES, RED)],
    ['s0004.png', Buffer.from('corrupt')],
    ['s0004.txt', 'corrupt image'],
    ['s0005.png', cut.subarray(0, cut.length - 20)],
    ['s0005.txt', 'truncated image'],
    ['s0006.png', png(RES, RES, RED)],
    ['s0006.txt', '  \n'],
    ['s0007.png', png(RES, RES, RED)],
    ['s0007.txt', Buffer.from([0x61, 0xff, 0x62])],
    ['s0008.png', png(RES, RES, RED)],
    ['s0008.txt', 'bad json'],
    ['s0008.json', '{"label": '],
    ['s0009.png', png(RES, RES, RED)],
    ['s0009.txt', 'label of the wrong type'],
    ['s0009.json', JSON.stringify({ label: { name: 'red' } })],
    ['s0010.png', png(RES, RES, RED)],
    ['s0010.txt', 'z'.repeat(100 * 1024)],
  ]);
  await writeTar(path.join(shards, '00001.tar'), [
    ['s0011.webp', webp(RES, RES, BLUE)],
    ['s0011.txt', 'a blue square'],
    ['s0011.json', JSON.stringify({ label: 'blue' })],
    ['s0000.png', png(RES, RES, GREEN)], // the same key as in shard 0
    ['s0000.txt', 'duplicate'],
    [`${LONG_KEY}.png`, png(RES, RES, GREEN)],
    [`${LONG_KEY}.txt`, 'a long key'],
    ['./s0012.png', greyPng(10, 14, 60)],
    ['./s0012.txt', 'a grey rectangle'],
    ['./s0012.url.txt', 'http://example.com/ignored'],
    ['./s0012.cls', '3'],
  ]);
});

const ids = (ds: { size: number; id(i: number): string }): string[] => [...Array(ds.size).keys()].map((i) => ds.id(i));

test('one .tar: samples keyed by their key, captions from .txt, label and noisy from .json', async () => {
  const ds = await openDataset(path.join(shards, '00000.tar'), { resolution: RES });
  try {
    assert.equal(ds.format, 'webdataset');
    assert.deepEqual(ids(ds), ['s0000', 's0001']);
    assert.deepEqual([ds.caption(0), ds.caption(1)], ['a red square', 'a green square']);
    assert.deepEqual([ds.label(0), ds.label(1)], ['red', 'green']);
    assert.deepEqual([ds.noisy(0), ds.noisy(1)], [undefined, true]);
  } finally {
    await ds.close();
  }
});

test('every bad sample is skipped and counted, reported as shard.tar:key', async () => {
  const ds = await openDataset(path.join(shards, '00000.tar'), { resolution: RES, maxReportedSkips: 20 });
  try {
    assert.equal(ds.skips.rowsSeen, 11);
    assert.equal(ds.skips.rowsUsed, 2);
    assert.deepEqual(ds.skips.counts, {
      'missing-file': 2,
      'corrupt-image': 2,
      'empty-caption': 1,
      'non-utf8': 1,
      'invalid-json': 1,
      'wrong-field-type': 1,
      'caption-too-long': 1,
    });
    assert.deepEqual(
      ds.skips.first.map((s) => `${s.where} ${s.reason}`),
      [
        '00000.tar:s0002 missing-file',
        '00000.tar:s0003 missing-file',
        '00000.tar:s0004 corrupt-image',
        '00000.tar:s0005 corrupt-image',
        '00000.tar:s0006 empty-caption',
        '00000.tar:s0007 non-utf8',
        '00000.tar:s0008 invalid-json',
        '00000.tar:s0009 wrong-field-type',
        '00000.tar:s0010 caption-too-long',
      ],
    );
    assert.match(ds.skips.first[0].detail, /no image/);
    assert.match(ds.skips.first[1].detail, /no \.txt caption/);
  } finally {
    await ds.close();
  }
});

test('a folder of shards, and the same shards as a brace pattern, give the same dataset', async () => {
  const fromFolder = await openDataset(shards, { resolution: RES, maxReportedSkips: 20 });
  const fromPattern = await openDataset(path.join(shards, '{00000..00001}.tar'), { resolution: RES });
  try {
    const expected = ['s0000', 's0001', 's0011', LONG_KEY, 's0012'];
    assert.deepEqual(ids(fromFolder), expected);
    assert.deepEqual(ids(fromPattern), expected);
    assert.equal(fromFolder.skips.counts['duplicate-key'], 1);
    const dup = fromFolder.skips.first.find((s) => s.reason === 'duplicate-key')!;
    assert.equal(dup.where, '00001.tar:s0000');
    assert.match(dup.detail, /already used at 00000\.tar:s0000/);
    assert.deepEqual([fromFolder.label(2), fromFolder.label(4)], ['blue', undefined]);
  } finally {
    await fromFolder.close();
    await fromPattern.close();
  }
});

test('loadImages reads members back at their offsets (pax headers included), in order', async () => {
  const shard1 = await fs.readFile(path.join(shards, '00001.tar'));
  assert.ok(shard1.includes('PaxHeader'), 'the fixture should exercise a pax long-name header');
  // cacheBytes 0: every image is re-read from its shard.
  const ds = await openDataset(shards, { resolution: RES, cacheBytes: 0 });
  try {
    const images = await ds.loadImages([4, 3, 2, 1, 0, 2]);
    const grey = 60 / 255;
    const expected = [[grey, grey, grey], [0, 1, 0], [0, 0, 1], [0, 1, 0], [1, 0, 0], [0, 0, 1]];
    expected.forEach((rgb, k) => {
      const px = pixelAt(images, RES, k, RES * RES - 1);
      px.forEach((v, c) => assert.ok(Math.abs(v - rgb[c]) < 0.02, `image ${k}: ${px} vs ${rgb}`));
    });
  } finally {
    await ds.close();
  }
});

test('a missing shard in a pattern, a cut-short shard and a non-tar are each one skip; the rest is used', async () => {
  const bad = path.join(dir, 'bad');
  await fs.mkdir(bad, { recursive: true });
  await fs.copyFile(path.join(shards, '00000.tar'), path.join(bad, 'a-0.tar'));
  const whole = await fs.readFile(path.join(shards, '00001.tar'));
  await fs.writeFile(path.join(bad, 'a-1.tar'), whole.subarray(0, 512 * 7 + 100)); // cut inside a member
  await fs.writeFile(path.join(bad, 'a-2.tar'), 'this is not a tar file at all, just text '.repeat(20));
  const ds = await openDataset(path.join(bad, 'a-{0..3}.tar'), { resolution: RES, maxReportedSkips: 50 });
  try {
    assert.deepEqual(ids(ds), ['s0000', 's0001', 's0011']);
    const shardSkips = ds.skips.first.filter((s) => !s.where.includes(':'));
    assert.deepEqual(shardSkips.map((s) => `${s.where} ${s.reason}`), ['a-1.tar unreadable', 'a-2.tar unreadable', 'a-3.tar missing-file']);
    assert.match(shardSkips[0].detail, /corrupt or cut short after 1 complete sample \(/);
    assert.match(shardSkips[2].detail, /shard not found/);
  } finally {
    await ds.close();
  }
});

test('shards with no usable sample: a DataError naming the pattern and the reasons', async () => {
  const empty = path.join(dir, 'empty');
  await writeTar(path.join(empty, 'e-0.tar'), [
    ['x.txt', 'no image'],
    ['y.png', png(RES, RES, RED)],
  ]);
  const spec = path.join(empty, 'e-{0..1}.tar');
  await assert.rejects(openDataset(spec, { resolution: RES }), (err: Error) => {
    assert.ok(err instanceof DataError);
    assert.ok(err.message.startsWith(`${spec}: zero usable rows out of 2`), err.message);
    assert.match(err.message, /missing-file ×3 — first at e-0\.tar:x: sample has no image/);
    return true;
  });
});

test('progress counts samples while indexing and ends at (size, size)', async () => {
  const calls: [number, number | undefined][] = [];
  const ds = await openDataset(shards, { resolution: RES, onProgress: (d, t) => calls.push([d, t]) });
  await ds.close();
  assert.deepEqual(calls[0], [0, undefined]);
  assert.deepEqual(calls.at(-1), [5, 5]);
});

test('brace patterns expand like img2dataset writes them', () => {
  assert.deepEqual(expandBraces('s/{00000..00002}.tar'), ['s/00000.tar', 's/00001.tar', 's/00002.tar']);
  assert.deepEqual(expandBraces('{8..11}.tar'), ['8.tar', '9.tar', '10.tar', '11.tar']);
  assert.deepEqual(expandBraces('{train,val}-{0..1}.tar'), ['train-0.tar', 'train-1.tar', 'val-0.tar', 'val-1.tar']);
  assert.ok(isBracePattern('x/{0..3}.tar'));
  assert.ok(!isBracePattern('x/{notapattern}.tar'));
  assert.throws(() => expandBraces('{0..3.tar'), DataError);
  assert.throws(() => expandBraces('{0..99999999}.tar'), /more than/);
});

test('the tar reader keeps at most its bound of shards open', async () => {
  const many = path.join(dir, 'many');
  const files: string[] = [];
  for (let s = 0; s < 6; s++) {
    const file = path.join(many, `${s}.tar`);
    files.push(file);
    await writeTar(file, [[`k${s}.txt`, `shard ${s}`]]);
  }
  const store = new TarStore(files, 2);
  for (let s = 0; s < 6; s++) store.add(s, 512, 7, `${s}.tar:k${s}`);
  const read = await Promise.all([0, 1, 2, 3, 4, 5, 0, 5].map((i) => store.read(i)));
  assert.deepEqual(read.map((b) => Buffer.from(b).toString()), ['shard 0', 'shard 1', 'shard 2', 'shard 3', 'shard 4', 'shard 5', 'shard 0', 'shard 5']);
  assert.ok((store as unknown as { open: Map<number, unknown> }).open.size <= 2);
  await store.close();
});
