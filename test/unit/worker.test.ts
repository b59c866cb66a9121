/**
 * The training worker as a real forked process, driven over the run
 * protocol: pause costs nothing and resumes the very same run, stop and
 * checkpoint-now work at step boundaries, bad messages are answered and not
 * fatal, and a killed worker is noticed at once with its run marked interrupted.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { listCheckpoints } from '../../src/core/runs/checkpoint';
import { readRunJson } from '../../src/core/runs/record';
import { workerProtocolVersion, type StatusEvent } from '../../src/protocol/worker';
import { cpuTicks, killWorkers, isStatus, isTrainStep, metricsOf, sleep, startWorker, tinyConfig, tmp, uninterruptedMetrics, withoutTimings } from './runs-helpers';

after(killWorkers);

const config = tinyConfig('');
const reference = uninterruptedMetrics(config);

test('a paused worker waits without using CPU, and resuming continues the same run bit for bit', async () => {
  const runDir = path.join(tmp(), 'run');
  const { worker, events } = startWorker();
  // Malformed and out-of-place messages are answered with error events; the worker lives on.
  worker.sendRaw({ type: 'launch' });
  worker.sendRaw('pause');
  worker.sendRaw({ type: 'start', protocol: workerProtocolVersion + 1, run: { kind: 'new', config: {} } });
  worker.sendRaw({ type: 'branch', protocol: workerProtocolVersion, parentDir: 'x', atStep: -3, overrides: {} });
  worker.send({ type: 'pause' });
  worker.send({ type: 'start', protocol: workerProtocolVersion, run: { kind: 'new', config: { ...config, runDir } } });

  await worker.waitFor(isTrainStep(7));
  worker.send({ type: 'pause' });
  const paused = (await worker.waitFor(isStatus('paused', 'requested'))) as StatusEvent;
  const pausedAt = paused.step;
  assert.ok(pausedAt >= 7 && pausedAt < config.steps, `paused at ${pausedAt}`);
  assert.equal(paused.checkpoint?.step, pausedAt, 'a pause checkpoints');
  assert.ok(listCheckpoints(runDir).includes(pausedAt));
  assert.equal(readRunJson(runDir).status, 'paused');

  const linesBefore = events.filter((e) => e.type === 'metrics').length;
  const ticksBefore = cpuTicks(worker.pid!);
  await sleep(600);
  const ticksAfter = cpuTicks(worker.pid!);
  assert.equal(events.filter((e) => e.type === 'metrics').length, linesBefore, 'no steps while paused');
  if (ticksBefore !== undefined && ticksAfter !== undefined) {
    assert.ok(ticksAfter - ticksBefore <= 5, `a paused worker used ${ticksAfter - ticksBefore} CPU ticks in 600 ms`);
  }
  assert.equal(metricsOf(runDir).filter((l) => l.type === 'train').at(-1)?.step, pausedAt);

  // Checkpoint-now while paused reports the pause checkpoint (it is not written twice).
  worker.send({ type: 'checkpoint-now' });
  const again = (await worker.waitFor((e) => e.type === 'status' && e.state === 'paused')) as StatusEvent;
  assert.equal(again.checkpoint?.step, pausedAt);

  worker.send({ type: 'resume' });
  await worker.waitFor(isStatus('running'));
  const exit = await worker.exited;
  assert.equal(exit.clean, true);
  assert.equal(exit.lastStatus?.state, 'finished');
  assert.equal(exit.lastStatus?.reason, 'completed');

  const errors = events.filter((e) => e.type === 'error');
  assert.deepEqual(errors.map((e) => e.kind), ['protocol', 'protocol', 'protocol', 'protocol', 'command']);
  assert.match(errors[0].message, /unknown command type "launch"/);
  assert.match(errors[2].message, /protocol version/);
  assert.match(errors[3].message, /atStep/);

  const states = events.filter((e): e is StatusEvent => e.type === 'status').map((e) => e.state);
  assert.deepEqual([...new Set(states)], ['starting', 'running', 'paused', 'finished']);
  const got = metricsOf(runDir);
  assert.deepEqual(got.map(withoutTimings), (await reference).map(withoutTimings));
  assert.equal(readRunJson(runDir).status, 'finished');
});

test('checkpoint-now and stop act at the next step boundary; a stopped run ends checkpointed', async () => {
  const runDir = path.join(tmp(), 'run');
  const { worker } = startWorker();
  worker.send({ type: 'start', protocol: workerProtocolVersion, run: { kind: 'new', config: { ...config, runDir, checkpointEvery: 1000 } } });
  await worker.waitFor(isTrainStep(3));
  worker.send({ type: 'checkpoint-now' });
  const reported = (await worker.waitFor((e) => e.type === 'status' && e.checkpoint !== undefined)) as StatusEvent;
  assert.ok(reported.checkpoint!.written && reported.checkpoint!.bytes > 0 && reported.checkpoint!.ms > 0);
  assert.ok(listCheckpoints(runDir).includes(reported.checkpoint!.step));

  worker.send({ type: 'stop' });
  await worker.waitFor(isStatus('stopping'));
  const exit = await worker.exited;
  assert.equal(exit.clean, true);
  assert.equal(exit.lastStatus?.state, 'finished');
  assert.equal(exit.lastStatus?.reason, 'stopped');
  const stoppedAt = exit.lastStatus!.step;
  assert.ok(stoppedAt < config.steps);
  assert.equal(readRunJson(runDir).status, 'stopped');
  assert.equal(listCheckpoints(runDir).at(-1), stoppedAt);
});

test('a worker killed mid-run is noticed within a second and its run marked interrupted', async () => {
  const runDir = path.join(tmp(), 'run');
  const { worker } = startWorker();
  worker.send({ type: 'start', protocol: workerProtocolVersion, run: { kind: 'new', config: { ...config, runDir } } });
  await worker.waitFor(isTrainStep(5));
  const killedAt = Date.now();
  worker.kill('SIGKILL');
  const exit = await worker.exited;
  const noticedAfter = Date.now() - killedAt;
  assert.ok(noticedAfter < 1000, `noticed after ${noticedAfter} ms`);
  assert.equal(exit.clean, false);
  assert.equal(exit.signal, 'SIGKILL');
  assert.match(exit.reason ?? '', /killed \(SIGKILL\)/);
  assert.equal(exit.markedInterrupted, true);
  const run = readRunJson(runDir);
  assert.equal(run.status, 'interrupted');
  assert.match(run.error?.message ?? '', /SIGKILL/);
  assert.ok(fs.existsSync(path.join(runDir, 'metrics.jsonl')));
});

test('a branch command naming no run fails as a config error, not a crash', async () => {
  const { worker, events } = startWorker();
  const parentDir = path.join(tmp(), 'no-such-run');
  worker.send({ type: 'branch', protocol: workerProtocolVersion, parentDir, atStep: 10, overrides: {} });
  const exit = await worker.exited;
  assert.equal(exit.clean, true);
  assert.equal(exit.lastStatus?.state, 'failed');
  const error = events.find((e) => e.type === 'error');
  assert.equal(error?.type === 'error' && error.kind, 'config');
  assert.match(error?.type === 'error' ? error.message : '', /holds no run/);
});
