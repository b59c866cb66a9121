import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseNotebook, serializeNotebook } from '../../src/notebook/format';
import { parseCell, resolveRef, type CellRequest } from '../../src/notebook/cells';
import { fromEditorNotebook, toEditorNotebook, unknownFieldsKey } from '../../src/notebook/editorData';
import { configKeys } from '../../src/core/train/config';
import { notebookCellSchema, notebookSchemaFile, notebookSchemaText } from '../../scripts/notebook-schema';

const file = JSON.stringify({
  version: 1,
  metadata: { title: 'JEST vs uniform', futureNotebookField: [1, 2] },
  cells: [
    { kind: 'markdown', language: 'markdown', source: ['# Curation', 'with *JEST*'] },
    {
      kind: 'code',
      language: 'json',
      source: ['{', '  "label": "ref",', '  "kind": "reference",', '  "steps": 400', '}'],
      outputs: [{ mime: 'application/vnd.sift.run+json', data: { runDir: '.sift/runs/ref', status: 'finished' }, futureOutputField: true }],
      metadata: { executionOrder: 1, runStartTime: 5 },
      futureCellField: { keep: 'me' },
    },
  ],
  futureTopField: 'kept',
});

test('a notebook round-trips, keeping every field it does not know', () => {
  const notebook = parseNotebook(file, 'demo.siftnb');
  assert.equal(notebook.cells.length, 2);
  assert.equal(notebook.cells[0].source, '# Curation\nwith *JEST*');
  assert.equal(notebook.cells[1].outputs[0].futureOutputField, true);
  const again = JSON.parse(serializeNotebook(notebook));
  assert.deepEqual(again, JSON.parse(file));
  assert.equal(serializeNotebook(parseNotebook(serializeNotebook(notebook))), serializeNotebook(notebook), 'stable');
});

test('sources are saved one line per entry so git diffs stay small', () => {
  const text = serializeNotebook(parseNotebook(file));
  assert.ok(text.includes('"source": [\n        "{",\n        "  \\"label\\": \\"ref\\",",'), text);
});

test('bad files are errors that name the cell and the fix; an empty file is an empty notebook', () => {
  assert.deepEqual(parseNotebook('').cells, []);
  assert.throws(() => parseNotebook('{"cells": [{"kind": "python"}]}', 'x.siftnb'), /x\.siftnb: cell 1: "kind" must be "markdown" or "code"/);
  assert.throws(() => parseNotebook('{', 'x.siftnb'), /x\.siftnb: not valid JSON .*Text Editor/);
  assert.throws(() => parseNotebook('{"version": 9, "cells": []}', 'x.siftnb'), /newer Sift/);
});

test('code cells parse into run, reference, branch and compare requests', () => {
  assert.deepEqual(parseCell('{"label": "jest", "method": "jest", "reference": "@ref", "steps": 300}', 'cell 2'), {
    type: 'run',
    label: 'jest',
    reference: false,
    config: { method: 'jest', reference: '@ref', steps: 300 },
  });
  assert.equal((parseCell('{"kind": "reference", "steps": 10}', 'c') as { reference: boolean }).reference, true);
  assert.deepEqual(parseCell('{"branch": "@jest", "at_step": 200, "set": {"filterRatio": 0.5}, "label": "f05"}', 'c'), {
    type: 'branch',
    label: 'f05',
    parent: '@jest',
    atStep: 200,
    set: { filterRatio: 0.5 },
  });
  assert.deepEqual(parseCell('{"compare": ["@uniform", "@jest"], "target_metric": "t2i_r1"}', 'c'), { type: 'compare', runs: ['@uniform', '@jest'], metric: 't2i_r1', target: undefined });
});

test('cell errors are readable and name the cell', () => {
  assert.throws(() => parseCell('{"batchSzie": 3}', 'cell 4'), /cell 4: unknown setting "batchSzie"\. Did you mean "batchSize"\?/);
  assert.throws(() => parseCell('{"branch": "@a"}', 'cell 5'), /cell 5: "at_step" must be the checkpoint step/);
  assert.throws(() => parseCell('{"branch": "@a", "at_step": 2, "set": {"steps": "many"}}', 'cell 6'), /cell 6 "set": "steps" is "many"/);
  assert.throws(() => parseCell('{"compare": []}', 'cell 7'), /cell 7: "compare" must list runs/);
  assert.throws(() => parseCell('[1]', 'cell 8'), /cell 8: a cell holds one JSON object/);
  assert.throws(() => parseCell('{"label": "has space"}', 'cell 9'), /"label" must be a name/);
});

test('@labels resolve to the runs earlier cells produced', () => {
  const runs = new Map([['ref', '/w/.sift/runs/a']]);
  assert.equal(resolveRef('@ref', runs, 'c'), '/w/.sift/runs/a');
  assert.equal(resolveRef('/some/run', runs, 'c'), '/some/run');
  assert.throws(() => resolveRef('@jest', runs, 'cell 3'), /cell 3: no earlier cell labelled "jest" has run yet\. Known: @ref\./);
});

test('through the editor and back, a notebook keeps every field, outputs as data and the last execution', () => {
  const notebook = parseNotebook(file, 'demo.siftnb');
  const editor = toEditorNotebook(notebook);
  const [, code] = editor.cells;
  assert.equal(code.kind, 'code');
  assert.equal(code.languageId, 'json');
  assert.deepEqual(JSON.parse(new TextDecoder().decode(code.outputs[0].items[0].data)), { runDir: '.sift/runs/ref', status: 'finished' });
  assert.deepEqual(code.outputs[0].metadata, { futureOutputField: true }, "an output's unknown fields ride in its metadata");
  assert.deepEqual(code.metadata[unknownFieldsKey], { futureCellField: { keep: 'me' } });
  assert.deepEqual(editor.metadata[unknownFieldsKey], { futureTopField: 'kept' });
  assert.equal(serializeNotebook(fromEditorNotebook(editor)), serializeNotebook(notebook), 'unchanged when nothing ran');

  // The cell runs: the editor's execution summary is saved, the output replaced.
  code.executionSummary = { executionOrder: 3, success: true, timing: { startTime: 1000, endTime: 5000 } };
  code.outputs = [{ items: [{ mime: 'application/vnd.sift.run+json', data: new TextEncoder().encode('{"id":"r2"}') }] }, { items: [{ mime: 'text/plain', data: new TextEncoder().encode('hello\nworld') }] }, { items: [{ mime: 'image/png', data: new Uint8Array([137, 80, 78, 71]) }] }];
  const saved = JSON.parse(serializeNotebook(fromEditorNotebook(editor)));
  assert.deepEqual(saved.cells[1].metadata.execution, { order: 3, success: true, start: 1000, end: 5000 });
  assert.deepEqual(saved.cells[1].outputs, [
    { mime: 'application/vnd.sift.run+json', data: { id: 'r2' } },
    { mime: 'text/plain', data: 'hello\nworld' },
    { mime: 'image/png', data: 'iVBORw==', encoding: 'base64' },
  ]);
  assert.equal(saved.cells[1].futureCellField.keep, 'me');
  assert.equal(saved.futureTopField, 'kept');
  // And back into the editor: the execution order and timing show again, the bytes are the same.
  const reopened = toEditorNotebook(parseNotebook(JSON.stringify(saved)));
  assert.deepEqual(reopened.cells[1].executionSummary, { executionOrder: 3, success: true, timing: { startTime: 1000, endTime: 5000 } });
  assert.deepEqual([...reopened.cells[1].outputs[2].items[0].data], [137, 80, 78, 71]);
  assert.equal(new TextDecoder().decode(reopened.cells[1].outputs[1].items[0].data), 'hello\nworld');
});

test('the starter notebook: reference, JEST, uniform and compare cells that parse, on built-in data, each label used below it', () => {
  const starter = parseNotebook(fs.readFileSync(path.join(__dirname, '..', '..', 'media', 'starter.siftnb'), 'utf8'), 'starter.siftnb');
  const requests = starter.cells.filter((cell) => cell.kind === 'code').map((cell, i) => parseCell(cell.source, `cell ${i + 1}`));
  assert.deepEqual(
    requests.map((r) => (r.type === 'run' ? `${r.reference ? 'reference' : r.config.method}:${r.label}` : r.type)),
    ['reference:ref', 'jest:jest', 'uniform:uniform', 'compare'],
  );
  const runs = requests.filter((r): r is Extract<CellRequest, { type: 'run' }> => r.type === 'run');
  assert.ok(runs.every((r) => String(r.config.data).startsWith('builtin:')));
  assert.equal(runs[1].config.reference, '@ref');
  assert.deepEqual((requests[3] as Extract<CellRequest, { type: 'compare' }>).runs, ['@uniform', '@jest']);
  assert.ok(starter.cells.every((cell) => cell.outputs.length === 0), 'a starter has no outputs');
});

test('the JSON schema of notebook cells: branch, compare or a run config with every *.sift.json setting; up to date on disk', () => {
  type Run = { properties: Record<string, unknown>; additionalProperties: boolean };
  const schema = notebookCellSchema() as { then: { required: string[] }; else: { then: { required: string[] }; else: { if: { required: string[] }; else: Run } } };
  assert.deepEqual(schema.then.required, ['branch', 'at_step']);
  assert.deepEqual(schema.else.then.required, ['compare']);
  // A .siftnb opened as text ({"version", "cells"}) is not flagged as a run config with unknown keys.
  assert.deepEqual(schema.else.else.if.required, ['cells']);
  const run = schema.else.else.else;
  assert.equal(run.additionalProperties, false);
  for (const key of [...configKeys, 'label', 'kind']) assert.ok(key in run.properties, key);
  assert.equal(fs.readFileSync(notebookSchemaFile, 'utf8'), notebookSchemaText(), 'schemas/sift-notebook-cell.schema.json is stale: npm run build regenerates it');
});
