/**
 * Resume and branch, in-process: where a run continues from, what a branch
 * records and changes (only a pin on its parent), lineage as a tree, and
 * that continued runs reproduce the uninterrupted run's metrics exactly.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { checkpointDir, listCheckpoints } from '../../src/core/runs/checkpoint';
import { readJsonl } from '../../src/core/runs/jsonl';
import { branchOverrides, createBranch, listRuns, parseSettings, resumePoint } from '../../src/core/runs/lineage';
import { readRunJson, RunRecord, type MetricLine } from '../../src/core/runs/record';
import { ConfigError } from '../../src/core/train/config';
import { resumeRun, trainRun, type RunControl } from '../../src/core/train/run';
import { formatRunTree } from '../../src/cli/runs';
import { metricsOf, tinyConfig, tmp, uninterruptedMetrics, withoutTimings } from './runs-helpers';

const config = tinyConfig('');
// Trained before the tests' own runs, not beside them: two in-process runs must not set up the backend at once.
let referenceRun: Promise<MetricLine[]> | undefined;
const reference = (): Promise<MetricLine[]> => (referenceRun ??= uninterruptedMetrics(config));

/** A control that leaves the run paused (checkpointed) once it reaches `step`. */
function suspendAt(step: number): RunControl {
  let current = 0;
  return {
    opened: (run) => {
      current = run.step;
    },
    atBoundary: async () => (current++ === step ? 'suspend' : 'continue'),
    writeFailed: async () => 'suspend',
  };
}

const after = (lines: MetricLine[], step: number): Record<string, unknown>[] => lines.filter((l) => l.step > step).map(withoutTimings);

test('resume continues from the newest whole checkpoint, drops the lines past it, and matches the uninterrupted run exactly', async () => {
  await reference();
  const runDir = path.join(tmp(), 'run');
  const paused = await trainRun({ ...config, runDir }, {}, suspendAt(23));
  assert.equal(paused.status, 'paused');
  assert.equal(readRunJson(runDir).status, 'paused');
  assert.deepEqual(listCheckpoints(runDir), [20, 23]);

  // As if the process had died after step 23's lines but before its checkpoint, mid-way through a line.
  fs.rmSync(checkpointDir(runDir, 23), { recursive: true });
  fs.appendFileSync(path.join(runDir, 'metrics.jsonl'), '{"type":"train","step":24,"lo');
  fs.appendFileSync(path.join(runDir, 'selections.jsonl'), '{"step":24,"ids":["1');
  assert.deepEqual(resumePoint(runDir, readRunJson(runDir)), { fromRunDir: runDir, step: 20 });

  const resumed = await resumeRun(runDir);
  assert.equal(resumed.status, 'finished');
  const lines = metricsOf(runDir);
  const trainSteps = lines.filter((l) => l.type === 'train').map((l) => l.step);
  assert.deepEqual(trainSteps, Array.from({ length: config.steps }, (_, i) => i + 1), 'every step once, in order');
  assert.deepEqual(lines.map(withoutTimings), (await reference()).map(withoutTimings));
  const selections = readJsonl<{ step: number }>(path.join(runDir, 'selections.jsonl'));
  assert.equal(selections.tornTail, false);
  assert.deepEqual(selections.rows.map((r) => r.step), trainSteps);
  assert.equal(readRunJson(runDir).status, 'finished');
  await assert.rejects(resumeRun(runDir), (error: Error) => error instanceof ConfigError && /already finished/.test(error.message));
});

test('branches: the record, the pin on the parent, exact continuation, a branch of a branch, and the tree', async () => {
  await reference();
  const root = tmp();
  const parentDir = path.join(root, 'parent');
  await trainRun({ ...config, runDir: parentDir }, {}, suspendAt(20));
  assert.deepEqual(listCheckpoints(parentDir), [10, 20]);

  const parentFiles = (): Record<string, string> => ({
    metrics: fs.readFileSync(path.join(parentDir, 'metrics.jsonl'), 'utf8'),
    tensors: fs.readFileSync(path.join(checkpointDir(parentDir, 10), 'tensors.bin')).toString('base64'),
  });
  const before = { json: readRunJson(parentDir), files: parentFiles() };

  // Errors a user can make, in their terms.
  assert.throws(() => createBranch({ parentDir, atStep: 15, overrides: {} }), /no checkpoint at step 15\. Kept checkpoints: 10, 20\./);
  assert.throws(() => createBranch({ parentDir, atStep: 10, overrides: { imageWidth: 32 } }), /cannot change imageWidth/);
  assert.throws(() => createBranch({ parentDir, atStep: 10, overrides: { steps: 10 } }), /starts at 10/);
  assert.throws(() => createBranch({ parentDir: path.join(root, 'nothing'), atStep: 10, overrides: {} }), /holds no run/);

  const sameDir = createBranch({ parentDir, atStep: 10, overrides: {}, runDir: path.join(root, 'same') });
  const lowerLrDir = createBranch({ parentDir, atStep: 10, overrides: branchOverrides(undefined, ['learning-rate=0.001']) });
  assert.equal(path.dirname(lowerLrDir), path.resolve(root), 'beside the parent by default');

  // The parent gained a pin and nothing else.
  const afterBranch = readRunJson(parentDir);
  assert.deepEqual(afterBranch.pinnedCheckpoints, [10]);
  assert.deepEqual({ ...afterBranch, pinnedCheckpoints: undefined, updated: undefined }, { ...before.json, pinnedCheckpoints: undefined, updated: undefined });
  assert.deepEqual(parentFiles(), before.files);

  const lowerLr = readRunJson(lowerLrDir);
  assert.equal(lowerLr.parent, 'parent');
  assert.equal(lowerLr.forkStep, 10);
  assert.equal(lowerLr.checkpointUsed, path.join('..', 'parent', 'checkpoints', 'step-10'));
  assert.deepEqual(lowerLr.configDiff, { learningRate: { from: config.learningRate, to: 0.001 } });
  assert.deepEqual(readRunJson(sameDir).configDiff, {});

  // The parent finishes; pruning keeps the newest two and the pinned branch point.
  assert.equal((await resumeRun(parentDir)).status, 'finished');
  assert.deepEqual(listCheckpoints(parentDir), [10, 30, 40]);

  // A branch with nothing changed continues exactly as the parent did; its file holds only its own steps.
  await resumeRun(sameDir);
  const sameLines = metricsOf(sameDir);
  assert.equal(sameLines[0].step, 11);
  assert.deepEqual(sameLines.map(withoutTimings), after(await reference(), 10));

  // A changed learning rate: step 11's loss is the parent's (computed before the first update), later ones differ.
  await resumeRun(lowerLrDir);
  const lowerLines = metricsOf(lowerLrDir).filter((l) => l.type === 'train');
  const parentTrain = metricsOf(parentDir).filter((l) => l.type === 'train');
  assert.equal(lowerLines[0].loss, parentTrain[10].loss);
  assert.notEqual(lowerLines[1].loss, parentTrain[11].loss);

  // A branch of a branch.
  const grandchildDir = createBranch({ parentDir: sameDir, atStep: 30, overrides: { steps: 45 } });
  await resumeRun(grandchildDir);
  assert.equal(metricsOf(grandchildDir).filter((l) => l.type === 'train').at(-1)?.step, 45);
  assert.deepEqual(readRunJson(sameDir).pinnedCheckpoints, [30]);

  const forest = listRuns(root);
  assert.equal(forest.length, 1);
  const [parent] = forest;
  assert.equal(parent.id, 'parent');
  assert.deepEqual(parent.children.map((c) => c.id).sort(), [path.basename(lowerLrDir), 'same'].sort());
  const same = parent.children.find((c) => c.id === 'same')!;
  assert.deepEqual(same.children.map((c) => c.id), [path.basename(grandchildDir)]);
  assert.equal(same.step, 40);
  assert.equal(same.forkStep, 10);
  assert.ok(same.bestI2tR1 !== undefined);

  const text = formatRunTree(forest);
  const lines = text.split('\n');
  assert.match(lines[0], /^run\s+status\s+method\s+step\s+best i2t R@1\s+from$/);
  assert.match(text, /\n└─ same\s+finished\s+uniform\s+40\/40\s+\S+%\s+parent@10/);
  assert.match(text, new RegExp(`\\n   └─ ${path.basename(grandchildDir)}\\s+finished\\s+uniform\\s+45/45\\s+\\S+%\\s+same@30`));
});

test('--set values parse as JSON where they can, else as strings, and are validated', () => {
  assert.deepEqual(parseSettings(['steps=800', 'init-bias=null', 'evalData=', 'method=jest', 'zeroshotTemplate="a {label}"', 'x=true']), {
    steps: 800,
    initBias: null,
    evalData: '',
    method: 'jest',
    zeroshotTemplate: 'a {label}',
    x: true,
  });
  assert.throws(() => parseSettings(['steps']), /expected key=value/);
  assert.throws(() => branchOverrides(undefined, ['stepz=3']), /unknown setting "stepz". Did you mean "steps"\?/);
  assert.throws(() => branchOverrides(undefined, ['steps=many']), /"steps" is "many"; expected a whole number/);
  assert.deepEqual(branchOverrides({ steps: 100, seed: 1 }, ['seed=2']), { steps: 100, seed: 2 });
});

test('pins a branch adds survive the parent process rewriting its run.json', () => {
  const dir = path.join(tmp(), 'run');
  const record = RunRecord.create(dir, config);
  RunRecord.pin(dir, 7);
  record.update({ status: 'running' });
  record.close();
  assert.deepEqual(readRunJson(dir).pinnedCheckpoints, [7]);
  assert.deepEqual([...record.pinnedCheckpoints()], [7]);
});

test('a run another live process is training is not resumed beside it', async () => {
  const dir = path.join(tmp(), 'run');
  const record = RunRecord.create(dir, config);
  record.update({ status: 'running', pid: process.ppid });
  record.close();
  await assert.rejects(resumeRun(dir), new RegExp(`is being trained by process ${process.ppid} \\(status: running\\)`));
});
