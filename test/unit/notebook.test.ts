import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseNotebook, serializeNotebook } from '../../src/notebook/format';
import { parseCell, resolveRef } from '../../src/notebook/cells';

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
