import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { JsonlWriter, readJsonl, writeFileAtomic } from '../../src/core/runs/jsonl';

const tmp = (): string => fs.mkdtempSync(path.join(os.tmpdir(), 'sift-jsonl-'));

test('a torn last line (a crash mid-write) is dropped and reported, the rest kept', () => {
  const file = path.join(tmp(), 'metrics.jsonl');
  const writer = new JsonlWriter(file);
  writer.append({ step: 1 });
  writer.append({ step: 2 });
  writer.close();
  fs.appendFileSync(file, '{"step": 3, "lo');
  const { rows, tornTail } = readJsonl<{ step: number }>(file);
  assert.deepEqual(rows.map((r) => r.step), [1, 2]);
  assert.equal(tornTail, true);
});

test('corruption before the last line is an error naming the file and line', () => {
  const file = path.join(tmp(), 'metrics.jsonl');
  fs.writeFileSync(file, '{"step":1}\nnot json\n{"step":3}\n');
  assert.throws(() => readJsonl(file), /metrics\.jsonl:2: not valid JSON/);
});

test('a missing file reads as empty; atomic writes leave no temp file', () => {
  const dir = tmp();
  assert.deepEqual(readJsonl(path.join(dir, 'none.jsonl')), { rows: [], tornTail: false });
  writeFileAtomic(path.join(dir, 'run.json'), '{"a":1}');
  assert.deepEqual(fs.readdirSync(dir), ['run.json']);
});
