import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { openDataset } from '../../src/core/data/open.ts';
import { DataError } from '../../src/core/data/types.ts';
import { BLUE, GREEN, RED, pixelAt, png, tempDir, writeFiles } from './data-fixtures.ts';

const RES = 4;
let dir: string;

before(async () => {
  dir = await tempDir();
  const cut = png(RES, RES, RED);
  await writeFiles(dir, {
    'img/red.png': png(RES, RES, RED),
    'img/green.png': png(RES, RES, GREEN),
    'img/blue.png': png(RES, RES, BLUE),
    'img/cut.png': cut.subarray(0, cut.length - 20),
    'img/junk.png': 'junk',
  });
});

test('a CSV with quoted, multi-line captions: ids = 0-based data rows, where = 1-based file lines', async () => {
  const csv = [
    'Caption,IMAGE,label,noisy,extra', // header: any order, any case, extra columns ignored
    '"a red square, bright",img/red.png,red,false,x', // line 2, id 0
    '"a green ""square""',
    'on two lines",img/green.png,green,1,x', // lines 3-4, id 1
    '', // blank line: not a row
    'blue with a stray " quote,img/blue.png,,,', // line 6, id 2
  ].join('\n');
  await writeFiles(dir, { 'good.csv': csv });
  const ds = await openDataset(path.join(dir, 'good.csv'), { resolution: RES });
  try {
    assert.equal(ds.format, 'csv');
    assert.equal(ds.size, 3);
    assert.deepEqual([0, 1, 2].map((i) => ds.id(i)), ['0', '1', '2']);
    assert.deepEqual([0, 1, 2].map((i) => ds.caption(i)), ['a red square, bright', 'a green "square"\non two lines', 'blue with a stray " quote']);
    assert.deepEqual([0, 1, 2].map((i) => ds.label(i)), ['red', 'green', undefined]);
    assert.deepEqual([0, 1, 2].map((i) => ds.noisy(i)), [false, true, undefined]);
    const images = await ds.loadImages([2, 1, 0]);
    assert.deepEqual([0, 1, 2].map((k) => pixelAt(images, RES, k)), [[0, 0, 1], [0, 1, 0], [1, 0, 0]]);
  } finally {
    await ds.close();
  }
});

test('every bad CSV row is skipped and counted, with its line', async () => {
  const rows = [
    Buffer.from('image,caption,label,noisy\n'),
    Buffer.from('img/red.png,ok red,red,\n'), // line 2, id 0: usable
    Buffer.from('img/missing.png,gone,,\n'), // 3 missing-file
    Buffer.from('img/junk.png,junk,,\n'), // 4 corrupt-image
    Buffer.from('img/cut.png,cut,,\n'), // 5 corrupt-image (truncated)
    Buffer.from('img/red.png,   ,,\n'), // 6 empty-caption
    Buffer.from(`img/red.png,${'y'.repeat(100 * 1024)},,\n`), // 7 caption-too-long
    Buffer.from('img/red.png\n'), // 8 missing-field (short row)
    Buffer.concat([Buffer.from('img/red.png,na'), Buffer.from([0xef, 0xbb]), Buffer.from('ve,,\n')]), // 9 non-utf8
    Buffer.from('../escape.png,out,,\n'), // 10 path-escapes-dataset
    Buffer.from('/abs/red.png,abs,,\n'), // 11 path-escapes-dataset
    Buffer.from('img/red.png,flag,,maybe\n'), // 12 wrong-field-type
    Buffer.from(',no image,,\n'), // 13 missing-field
    Buffer.from('img/blue.png,ok blue,blue,\n'), // 14, id 12: usable
    Buffer.from('img/green.png,"never closed,green,\n'), // 15: unclosed quote swallows the rest
    Buffer.from('img/green.png,lost,green,\n'),
  ];
  await writeFiles(dir, { 'bad.csv': Buffer.concat(rows) });
  const ds = await openDataset(path.join(dir, 'bad.csv'), { resolution: RES, maxReportedSkips: 100 });
  try {
    assert.deepEqual([ds.id(0), ds.id(1)], ['0', '12']);
    assert.deepEqual(ds.skips.counts, {
      'missing-file': 1,
      'corrupt-image': 2,
      'empty-caption': 1,
      'caption-too-long': 1,
      'missing-field': 2,
      'non-utf8': 1,
      'path-escapes-dataset': 2,
      'wrong-field-type': 1,
      unreadable: 1,
    });
    assert.equal(ds.skips.rowsSeen, 14); // 13 parsed data rows + the unparseable tail
    assert.deepEqual(
      ds.skips.first.map((s) => `${s.where} ${s.reason}`).slice(0, 12),
      [
        'bad.csv:3 missing-file',
        'bad.csv:4 corrupt-image',
        'bad.csv:5 corrupt-image',
        'bad.csv:6 empty-caption',
        'bad.csv:7 caption-too-long',
        'bad.csv:8 missing-field',
        'bad.csv:9 non-utf8',
        'bad.csv:10 path-escapes-dataset',
        'bad.csv:11 path-escapes-dataset',
        'bad.csv:12 wrong-field-type',
        'bad.csv:13 missing-field',
        'bad.csv:15 unreadable',
      ],
    );
    assert.match(ds.skips.first[11].detail, /malformed CSV row.*quote/i);
  } finally {
    await ds.close();
  }
});

test('a TSV reads the same way', async () => {
  await writeFiles(dir, {
    'rows.tsv': 'image\tcaption\tlabel\nimg/red.png\ta "quoted" red, with comma\tred\nimg/nothere.png\tx\t\nimg/blue.png\tblue\tblue\n',
  });
  const ds = await openDataset(path.join(dir, 'rows.tsv'), { resolution: RES });
  try {
    assert.equal(ds.format, 'tsv');
    assert.deepEqual([ds.id(0), ds.id(1)], ['0', '2']);
    assert.equal(ds.caption(0), 'a "quoted" red, with comma');
    assert.deepEqual(ds.skips.first.map((s) => s.where), ['rows.tsv:3']);
  } finally {
    await ds.close();
  }
});

test('a header without image or caption columns is a DataError that says what to add', async () => {
  await writeFiles(dir, { 'nohead.csv': 'img/red.png,a red square\n' });
  await assert.rejects(openDataset(path.join(dir, 'nohead.csv'), { resolution: RES }), (err: Error) => {
    assert.ok(err instanceof DataError);
    assert.match(err.message, /nohead\.csv: the first line must be a header naming the columns image and caption/);
    assert.match(err.message, /missing image and caption/);
    return true;
  });
  await writeFiles(dir, { 'empty.csv': '' });
  await assert.rejects(openDataset(path.join(dir, 'empty.csv'), { resolution: RES }), /empty\.csv: zero usable rows/);
});

test('a CSV with only bad rows: zero usable rows, with reasons', async () => {
  await writeFiles(dir, { 'allbad.csv': 'image,caption\nimg/junk.png,junk\nimg/none.png,none\n' });
  await assert.rejects(openDataset(path.join(dir, 'allbad.csv'), { resolution: RES }), (err: Error) => {
    assert.match(err.message, /allbad\.csv: zero usable rows out of 2/);
    assert.match(err.message, /corrupt-image ×1 — first at allbad\.csv:2/);
    assert.match(err.message, /missing-file ×1 — first at allbad\.csv:3/);
    return true;
  });
});
