/**
 * Crash safety of a run on disk: the worker is SIGKILLed at random moments —
 * in the middle of writing a checkpoint, between and inside steps — and
 * resumed each time; a full disk pauses the run instead of losing it. After
 * all of it the run's metrics are exactly those of the uninterrupted run.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { listCheckpoints, readCheckpoint } from '../../src/core/runs/checkpoint';
import { asWriteError, readJsonl, WriteError } from '../../src/core/runs/jsonl';
import { readRunJson, type MetricLine } from '../../src/core/runs/record';
import { workerProtocolVersion, type WorkerCommand, type WorkerEvent } from '../../src/protocol/worker';
import { eventually, isStatus, isTrainStep, killWorkers, metricsOf, sleep, startWorker, tinyConfig, tmp, uninterruptedMetrics, withoutTimings } from './runs-helpers';

after(killWorkers);

const config = tinyConfig('', { steps: 60, checkpointEvery: 5, evalEvery: 20 });
let referenceRun: Promise<MetricLine[]> | undefined;
const reference = (): Promise<MetricLine[]> => (referenceRun ??= uninterruptedMetrics(config));
const slowCheckpointMs = 60;

/** Resolves once `check` holds, polling every few milliseconds. */
async function until(check: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(3);
  }
}

/** Whether process `pid` is caught writing the checkpoint of `step`: its temp folder holds tensors.bin but not yet state.json. */
function writingCheckpoint(runDir: string, step: number, pid: number): boolean {
  const temp = path.join(runDir, 'checkpoints', `.tmp-step-${step}-${pid}`);
  return fs.existsSync(path.join(temp, 'tensors.bin')) && !fs.existsSync(path.join(temp, 'state.json'));
}

/** What must hold on disk after any crash: every file readable, checkpoints whole, lines in order. */
function assertNothingCorrupt(runDir: string, context: string): void {
  const run = readRunJson(runDir);
  assert.equal(run.status, 'interrupted', context);
  const metrics = readJsonl<MetricLine>(path.join(runDir, 'metrics.jsonl'));
  const steps = metrics.rows.filter((l) => l.type === 'train').map((l) => l.step);
  assert.ok(
    steps.every((step, i) => step === i + 1),
    `${context}: train lines are steps 1..n once each, got ${steps.join(',')}`,
  );
  readJsonl(path.join(runDir, 'selections.jsonl'));
  for (const step of listCheckpoints(runDir)) {
    const checkpoint = readCheckpoint(runDir, step);
    assert.equal(checkpoint.step, step, context);
    assert.ok(checkpoint.params.length > 0, context);
  }
}

function start(runDir: string, fresh: boolean): WorkerCommand {
  return fresh
    ? { type: 'start', protocol: workerProtocolVersion, run: { kind: 'new', config: { ...config, runDir } } }
    : { type: 'start', protocol: workerProtocolVersion, run: { kind: 'resume', runDir } };
}

const continuedFrom = (events: WorkerEvent[]): number | undefined => {
  for (const event of events) {
    const match = event.type === 'log' ? /^Continuing from step (\d+)/.exec(event.message) : null;
    if (match) return Number(match[1]);
  }
  return undefined;
};

test('SIGKILL mid-checkpoint and at random moments: resume continues from the newest whole checkpoint and loses or repeats no line', async () => {
  const expected = await reference();
  const runDir = path.join(tmp('sift-crash-'), 'run');
  const log: string[] = [];
  let midCheckpointKills = 0;
  let kills = 0;
  for (let round = 0; round < 6; round++) {
    const newestWhole = listCheckpoints(runDir).at(-1);
    const { worker, events } = startWorker({ SIFT_TEST_SLOW_CHECKPOINT_MS: String(slowCheckpointMs) });
    worker.send(start(runDir, round === 0));
    await worker.waitFor(isTrainStep(1));
    const context = `round ${round} (${log.join('; ')})`;
    assert.equal(continuedFrom(events), newestWhole, `${context}: continues from the newest whole checkpoint`);
    const firstStep = events.find((e) => e.type === 'metrics')!;
    assert.equal(firstStep.type === 'metrics' && firstStep.line.step, (newestWhole ?? 0) + 1, context);

    // Even rounds: inside the 1st or 2nd checkpoint this worker writes. Odd rounds: 0-10 steps on, at a random moment of a step.
    let half: string | undefined;
    if (round % 2 === 0) {
      // A busy machine may let one checkpoint slip by unseen: then aim at the next.
      let step = (newestWhole ?? 0) + config.checkpointEvery * (1 + Math.floor(Math.random() * 2));
      let caught = false;
      await until(
        () => {
          caught = writingCheckpoint(runDir, step, worker.pid!);
          if (!caught && listCheckpoints(runDir).includes(step)) step += config.checkpointEvery;
          return caught || step > config.steps;
        },
        20_000,
        'a checkpoint being written',
      );
      if (caught) half = `the checkpoint of step ${step}`;
    } else {
      const step = worker.lastStep + Math.floor(Math.random() * 11);
      await until(() => worker.lastStep >= step, 20_000, `step ${step}`);
      await sleep(Math.random() * 30);
    }
    worker.kill('SIGKILL');
    const exit = await worker.exited;
    if (exit.clean) break;
    kills++;
    if (half) midCheckpointKills++;
    log.push(`killed at step ${worker.lastStep}${half ? ` inside ${half}` : ''}`);
    assert.equal(exit.markedInterrupted, true, context);
    if (half) assert.ok(!listCheckpoints(runDir).includes(Number(/step (\d+)/.exec(half)![1])), `${context}: a half-written checkpoint is not listed`);
    assertNothingCorrupt(runDir, context);
    // Every third round, also the torn line a kill inside a write leaves.
    if (round % 3 === 1) fs.appendFileSync(path.join(runDir, 'metrics.jsonl'), '{"type":"train","step":9');
  }
  assert.ok(kills >= 5, `the worker was killed ${kills} times (${log.join('; ')})`);
  assert.ok(midCheckpointKills >= 3, `${midCheckpointKills} kills landed mid-checkpoint`);

  const { worker } = startWorker();
  worker.send(start(runDir, false));
  const exit = await worker.exited;
  assert.equal(exit.lastStatus?.state, 'finished', log.join('; '));
  const lines = metricsOf(runDir);
  assert.deepEqual(lines.map(withoutTimings), expected.map(withoutTimings), `after: ${log.join('; ')}`);
  const selections = readJsonl<{ step: number }>(path.join(runDir, 'selections.jsonl')).rows.map((r) => r.step);
  assert.deepEqual(selections, Array.from({ length: config.steps }, (_, i) => i + 1));
});

test('a full disk pauses the run with a clear error, and it resumes from its newest whole checkpoint once there is space', async () => {
  const expected = await reference();
  const runDir = path.join(tmp('sift-crash-'), 'run');
  const diskFull = path.join(tmp('sift-crash-'), 'disk-is-full');
  const { worker, events } = startWorker({ SIFT_TEST_DISK_FULL: diskFull });
  worker.send(start(runDir, true));
  await worker.waitFor(isTrainStep(12));
  fs.writeFileSync(diskFull, '');
  const error = await eventually(events, (e) => e.type === 'error');
  assert.equal(error.type === 'error' && error.kind, 'write');
  assert.match(error.type === 'error' ? error.message : '', /Cannot write .*: the disk is full\. Free some space \(ENOSPC\), then resume the run\./);
  await eventually(events, isStatus('paused', 'write-failed'));

  // Paused, not lost: the worker waits, every file on disk is whole.
  const newestWhole = listCheckpoints(runDir).at(-1)!;
  assert.ok(newestWhole >= 10);
  const stepsSoFar = events.filter((e) => e.type === 'metrics').length;
  await sleep(300);
  assert.equal(events.filter((e) => e.type === 'metrics').length, stepsSoFar);
  readRunJson(runDir);
  readJsonl(path.join(runDir, 'metrics.jsonl'));
  readCheckpoint(runDir, newestWhole);

  fs.rmSync(diskFull);
  const resumedAt = events.length;
  worker.send({ type: 'resume' });
  const exit = await worker.exited;
  assert.equal(exit.lastStatus?.state, 'finished');
  assert.equal(continuedFrom(events.slice(resumedAt)), newestWhole);
  assert.deepEqual(metricsOf(runDir).map(withoutTimings), expected.map(withoutTimings));
  assert.equal(readRunJson(runDir).status, 'finished');
});

test('write failures the user can fix are told in their terms; others pass through unchanged', () => {
  const readOnly = asWriteError(Object.assign(new Error('EROFS: read-only file system'), { code: 'EROFS' }), '/runs/a/metrics.jsonl');
  assert.ok(readOnly instanceof WriteError);
  assert.equal((readOnly as WriteError).message, 'Cannot write /runs/a/metrics.jsonl: the file system is read-only. Make it writable (EROFS), then resume the run.');
  const denied = asWriteError(Object.assign(new Error('EACCES'), { code: 'EACCES' }), 'run.json');
  assert.match((denied as Error).message, /not writable\. Fix its permissions \(EACCES\)/);
  const bug = new TypeError('x is undefined');
  assert.equal(asWriteError(bug, 'run.json'), bug);
});
