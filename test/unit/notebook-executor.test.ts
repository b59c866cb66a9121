/**
 * The notebook's cell execution against real forked workers on built-in
 * data, through the editor's RunManager: a reference cell, a JEST run cell
 * that names the reference by "@label", a branch of it, a compare cell, a
 * cell with a bad setting (an error output, nothing started), interrupting a
 * run (paused, checkpointed) and running the cell again (asked: resume).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readRunJson } from '../../src/core/runs/record';
import { defaultSettings } from '../../src/extension/runConfig';
import { RunManager } from '../../src/extension/runManager';
import { NotebookExecutor, untrustedMessage, type CellInput, type CellIO, type CellResult } from '../../src/notebook/executor';
import type { CellOutput } from '../../src/notebook/outputs';
import { compareOutputMime, errorOutputMime, runOutputMime, type CompareOutputData, type RunOutputData } from '../../src/protocol/notebook';
import { WorkerClient } from '../../src/worker/client';
import { tinyModel } from '../tinyModel';
import { killWorkers, tmp } from './runs-helpers';

/** Model and data small enough that a run takes a few seconds on wasm. */
const tiny = {
  data: 'builtin:train?size=300',
  evalData: 'builtin:eval?size=32',
  ...tinyModel,
  evalEvery: 10,
  checkpointEvery: 10,
};

const cell = (index: number, json: unknown): CellInput => ({ index, source: JSON.stringify(json, null, 2), outputs: [] });

interface Recorded extends CellIO {
  outputs: CellOutput[];
  updates: number;
  questions: string[];
  abort: AbortController;
}

function io(answer: string | undefined = undefined): Recorded {
  const abort = new AbortController();
  const recorded: Recorded = {
    outputs: [],
    updates: 0,
    questions: [],
    abort,
    signal: abort.signal,
    replace(outputs) {
      recorded.outputs = outputs;
      recorded.updates++;
    },
    ask: async (message) => {
      recorded.questions.push(message);
      return answer;
    },
  };
  return recorded;
}

const runData = (outputs: readonly CellOutput[]): RunOutputData => {
  const output = outputs.find((o) => o.mime === runOutputMime);
  assert.ok(output, `a run output among ${JSON.stringify(outputs)}`);
  return output.data as RunOutputData;
};

let workspace: string;
let manager: RunManager;
let executor: NotebookExecutor;
let trusted = true;
const cells: CellInput[] = [];

/** Executes a cell as the controller does, with the cells above it; keeps its outputs as the notebook would. */
async function run(input: CellInput, recorded = io()): Promise<{ result: CellResult; io: Recorded }> {
  const result = await executor.execute(input, cells.slice(0, input.index), recorded);
  cells[input.index] = { ...input, outputs: recorded.outputs };
  return { result, io: recorded };
}

before(() => {
  workspace = tmp('sift-notebook-');
  manager = new RunManager(({ cwd }) => WorkerClient.start({ cwd }));
  executor = new NotebookExecutor({
    manager,
    cwd: workspace,
    notebookDir: path.join(workspace, 'notebooks'),
    settings: () => defaultSettings,
    trusted: () => trusted,
    updateIntervalMs: 200,
  });
});

after(async () => {
  await manager.shutdown(2000);
  killWorkers();
});

describe('notebook cells against real workers', { concurrency: false }, () => {
  test('a reference cell trains a reference model; its output saves the run, not its points', { timeout: 120_000 }, async () => {
    const { result, io: recorded } = await run(cell(0, { label: 'ref', kind: 'reference', ...tiny, data: 'builtin:curated?size=200', steps: 20 }));
    assert.equal(result, true);
    assert.ok(recorded.updates >= 2, 'the output was updated while it trained');
    const data = runData(recorded.outputs);
    assert.equal(data.cell, 'reference');
    assert.equal(data.label, 'ref');
    assert.equal(data.status, 'finished');
    assert.equal(data.step, 20);
    assert.match(data.dir, /^\.\.\/\.sift\/runs\/ref-.*-ref$/, 'saved relative to the notebook folder, named after the label');
    const json = readRunJson(path.resolve(workspace, 'notebooks', data.dir));
    assert.equal(json.config.method, 'uniform');
    assert.equal(json.config.data, 'builtin:curated?size=200');
    assert.ok(data.summary.metrics.i2t_r1 !== undefined && data.summary.eval_step === 20, JSON.stringify(data.summary));
    assert.ok(JSON.stringify(recorded.outputs).length < 1500, `small: ${JSON.stringify(recorded.outputs).length} bytes`);
  });

  test('a run cell resolves "@ref" to the run the reference cell made, and trains with JEST', { timeout: 120_000 }, async () => {
    const { result, io: recorded } = await run(cell(1, { label: 'jest', method: 'jest', reference: '@ref', filterRatio: 0.5, ...tiny, steps: 20 }));
    assert.equal(result, true, JSON.stringify(recorded.outputs));
    const data = runData(recorded.outputs);
    assert.equal(data.method, 'jest');
    const json = readRunJson(path.resolve(workspace, 'notebooks', data.dir));
    const ref = runData(cells[0].outputs);
    assert.equal(path.resolve(json.config.reference), path.resolve(workspace, 'notebooks', ref.dir));
  });

  test('a branch cell branches "@jest" at a kept checkpoint with changed settings', { timeout: 120_000 }, async () => {
    const { result, io: recorded } = await run(cell(2, { label: 'f08', branch: '@jest', at_step: 10, set: { filterRatio: 0.8, steps: 30 } }));
    assert.equal(result, true, JSON.stringify(recorded.outputs));
    const data = runData(recorded.outputs);
    assert.equal(data.cell, 'branch');
    assert.deepEqual(data.parent, { id: runData(cells[1].outputs).id, step: 10 });
    assert.equal(data.step, 30);
    const json = readRunJson(path.resolve(workspace, 'notebooks', data.dir));
    assert.equal(json.config.filterRatio, 0.8);
  });

  test('a branch at a step with no checkpoint is an error that names the kept ones', async () => {
    const { result, io: recorded } = await run(cell(3, { branch: '@jest', at_step: 7 }));
    assert.equal(result, false);
    assert.equal(recorded.outputs.length, 1);
    assert.equal(recorded.outputs[0].mime, errorOutputMime);
    assert.match((recorded.outputs[0].data as { message: string }).message, /cell 4: .* has no checkpoint at step 7\. Set "at_step" to one it kept: .*10.*20/);
  });

  test('a compare cell compares the labelled runs with a uniform baseline', { timeout: 120_000 }, async () => {
    await run(cell(4, { label: 'uniform', method: 'uniform', ...tiny, steps: 20 }));
    const { result, io: recorded } = await run(cell(5, { compare: ['@uniform', '@jest', '@f08'], target_metric: 'i2t_r5' }));
    assert.equal(result, true, JSON.stringify(recorded.outputs));
    assert.equal(recorded.outputs[0].mime, compareOutputMime);
    const data = recorded.outputs[0].data as CompareOutputData;
    assert.equal(data.metric, 'i2t_r5');
    assert.deepEqual(
      data.rows.map((row) => [row.label, row.method]),
      [
        ['uniform', 'uniform'],
        // A JEST run distils from its reference by default, and compare says so.
        ['jest', 'jest + features 20'],
        ['f08', 'jest + features 20'],
      ],
    );
    assert.match(data.targetFrom, /final i2t_r5 of .*-uniform/);
  });

  test('a bad setting or an unknown label is an error output of that cell; nothing starts', async () => {
    const before = fs.readdirSync(path.join(workspace, '.sift', 'runs')).length;
    const typo = await run(cell(6, { batchSzie: 8 }));
    assert.equal(typo.result, false);
    assert.equal(typo.io.outputs.length, 1);
    assert.equal(typo.io.outputs[0].mime, errorOutputMime);
    assert.equal((typo.io.outputs[0].data as { name: string }).name, 'Cell error');
    assert.match((typo.io.outputs[0].data as { message: string }).message, /^cell 7: unknown setting "batchSzie"\. Did you mean "batchSize"\?/);
    const unknown = await run(cell(7, { method: 'jest', reference: '@nope', ...tiny }));
    assert.match((unknown.io.outputs[0].data as { message: string }).message, /cell 8 "reference": no earlier cell labelled "nope" has run yet\. Known: @ref, @jest, @f08, @uniform\./);
    const broken = await run({ index: 8, source: '{ "steps": 10,', outputs: [] });
    assert.match((broken.io.outputs[0].data as { message: string }).message, /^cell 9: not valid JSON/);
    assert.equal(fs.readdirSync(path.join(workspace, '.sift', 'runs')).length, before);
  });

  test('bad data is reported by the worker as the cell\'s error, with the failed run', { timeout: 60_000 }, async () => {
    const { result, io: recorded } = await run(cell(9, { ...tiny, data: 'no-such-folder/captions.jsonl', steps: 5 }));
    assert.equal(result, false);
    const error = recorded.outputs.find((o) => o.mime === errorOutputMime);
    assert.ok(error, JSON.stringify(recorded.outputs));
    assert.match((error.data as { message: string }).message, /no-such-folder/);
  });

  test('in an untrusted workspace run cells refuse to start; compare cells still work', async () => {
    trusted = false;
    try {
      const refused = await run(cell(10, { ...tiny, steps: 5 }));
      assert.equal(refused.result, false);
      assert.equal((refused.io.outputs[0].data as { message: string }).message, untrustedMessage);
      const compared = await run(cell(11, { compare: ['@uniform', '@jest'] }));
      assert.equal(compared.result, true);
    } finally {
      trusted = true;
    }
  });

  test('interrupting a run cell pauses its run; running it again asks, and Resume continues that run', { timeout: 120_000 }, async () => {
    const input = cell(12, { label: 'long', ...tiny, steps: 4000, evalEvery: 1000 });
    const first = io();
    const execution = run(input, first);
    // Interrupt once it trains.
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline && !(first.outputs.length && runData(first.outputs).step >= 3)) await new Promise((resolve) => setTimeout(resolve, 50));
    first.abort.abort();
    const { result } = await execution;
    assert.equal(result, undefined);
    const paused = runData(first.outputs);
    assert.equal(paused.status, 'paused');
    assert.match(paused.message ?? '', /^Paused at step \d+ \(checkpoint at step \d+\)\. Run the cell again to resume it or start a new run\./);

    const again = io('Resume');
    const resumed = run({ ...input, outputs: first.outputs }, again);
    const deadline2 = Date.now() + 60_000;
    while (Date.now() < deadline2 && !(again.outputs.length && runData(again.outputs).status === 'running' && runData(again.outputs).step > paused.step)) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    assert.equal(again.questions.length, 1);
    assert.match(again.questions[0], new RegExp(`^${paused.id} is paused at step \\d+/4000\\. Resume it, or start a new run from this cell\\?`));
    assert.equal(runData(again.outputs).id, paused.id, 'the same run continues');
    again.abort.abort();
    assert.equal((await resumed).result, undefined);
    assert.equal(runData(again.outputs).status, 'paused');
  });
});
