import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { JsonlWriter, readJsonl, readJsonlSpan, scanJsonl, writeFileAtomic, type JsonlSpan } from '../../src/core/runs/jsonl';

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

test('scanJsonl reads a file chunk by chunk: every whole line once, where it lies; a torn tail waits; reading continues where it stopped', async () => {
  const file = path.join(tmp(), 'selections.jsonl');
  // Lines longer and shorter than a chunk, and multi-byte text, so lines straddle chunk ends.
  const rows = Array.from({ length: 40 }, (_, i) => ({ step: i + 1, caption: `${'é'.repeat(i * 3)}${i}` }));
  fs.writeFileSync(file, `${rows.map((r) => JSON.stringify(r)).join('\n')}\n\n{"step":41,"cap`);
  const seen: { text: string; span: JsonlSpan }[] = [];
  const end = await scanJsonl(file, (text, span) => seen.push({ text, span }), undefined, 16);
  assert.deepEqual(seen.map(({ text }) => JSON.parse(text).step), rows.map((r) => r.step), 'the torn line is not visited');
  for (const { text, span } of seen) assert.equal((await readJsonlSpan<{ caption: string }>(file, span)).caption, JSON.parse(text).caption);
  assert.equal(seen[39].span.lineNumber, 40);
  // The writer finishes the line and adds one: a scan from `end` sees just those, with their line numbers.
  fs.appendFileSync(file, 'tion":"x"}\n{"step":42}\n');
  const more: JsonlSpan[] = [];
  const after = await scanJsonl(file, (_, span) => more.push(span), end, 16);
  assert.deepEqual(more.map((span) => span.lineNumber), [42, 43], 'the blank line 41 counts, and is skipped');
  assert.deepEqual(await readJsonlSpan(file, more[1]), { step: 42 });
  assert.equal(after.offset, fs.statSync(file).size);
  assert.deepEqual(await scanJsonl(path.join(tmp(), 'none.jsonl'), () => assert.fail('nothing to visit')), { offset: 0, lineNumber: 0 });
});
