import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { openDataset } from '../../src/core/data/open.ts';
import { DataError } from '../../src/core/data/types.ts';
import { RED, jsonl, png, tempDir, writeFiles, writeTar } from './data-fixtures.ts';

const RES = 4;
let dir: string;

before(async () => {
  dir = await tempDir();
  const red = png(RES, RES, RED);
  await writeFiles(dir, {
    'folder/a.png': red,
    'folder/captions.jsonl': jsonl([{ image: 'a.png', caption: 'red' }]),
    'rows.jsonl': jsonl([{ image: 'folder/a.png', caption: 'red' }]),
    'rows.csv': 'image,caption\nfolder/a.png,red\n',
    'rows.tsv': 'image\tcaption\nfolder/a.png\tred\n',
    'empty/readme.md': 'nothing here',
    'notes.txt': 'not a dataset',
    'shards.tar.gz': 'compressed',
  });
  await writeTar(path.join(dir, 'tars', 'x-0.tar'), [
    ['k.png', red],
    ['k.txt', 'red'],
  ]);
});

test('the format is detected from the path', async () => {
  const cases: [string, string][] = [
    ['folder', 'folder'],
    ['rows.jsonl', 'jsonl'],
    ['rows.csv', 'csv'],
    ['rows.tsv', 'tsv'],
    ['tars/x-0.tar', 'webdataset'],
    ['tars', 'webdataset'],
    ['tars/x-{0..0}.tar', 'webdataset'],
  ];
  for (const [spec, format] of cases) {
    const ds = await openDataset(path.join(dir, spec), { resolution: RES });
    try {
      assert.equal(ds.format, format, spec);
      assert.equal(ds.size, 1, spec);
      assert.equal(ds.caption(0), 'red', spec);
    } finally {
      await ds.close();
    }
  }
});

test('builtin: specs go to the built-in synthetic data', async () => {
  const ds = await openDataset('builtin:train', { resolution: RES });
  try {
    assert.equal(ds.format, 'builtin');
  } finally {
    await ds.close();
  }
});

test('paths Sift cannot read are DataErrors that name them and list the formats', async () => {
  const expectError = async (spec: string, pattern: RegExp): Promise<void> => {
    await assert.rejects(openDataset(spec, { resolution: RES }), (err: Error) => {
      assert.ok(err instanceof DataError, `${spec}: ${err}`);
      assert.ok(err.message.includes(spec), err.message);
      assert.match(err.message, pattern);
      return true;
    });
  };
  const accepted = /captions\.jsonl[\s\S]*\.jsonl[\s\S]*\.csv or \.tsv[\s\S]*\.tar/;
  await expectError(path.join(dir, 'does-not-exist'), /no such file or folder/);
  await expectError(path.join(dir, 'does-not-exist'), accepted);
  await expectError(path.join(dir, 'empty'), /neither a captions\.jsonl nor \.tar shards/);
  await expectError(path.join(dir, 'notes.txt'), /not a format Sift reads/);
  await expectError(path.join(dir, 'notes.txt'), accepted);
  await expectError(path.join(dir, 'shards.tar.gz'), /decompress them first/);
  await expectError(path.join(dir, '{a,b}.zip'), /must name \.tar shards/);
});

test('a resolution that is not a positive whole number is refused', async () => {
  await assert.rejects(openDataset(path.join(dir, 'folder'), { resolution: 0 }), /positive whole number/);
});
