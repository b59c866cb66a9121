/**
 * The run protocol's validators, both ways, and the worker session's answers
 * to commands that make no sense yet — all in-process, with a fake host.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseWorkerCommand, parseWorkerEvent, workerProtocolVersion, type WorkerEvent } from '../../src/protocol';
import { WorkerSession } from '../../src/worker/session';

const problem = (parsed: { ok: boolean; problem?: string }): string => (parsed.ok ? '' : (parsed.problem ?? ''));

test('commands: every valid one passes; malformed ones are rejected with the field named', () => {
  const valid: unknown[] = [
    { type: 'start', protocol: workerProtocolVersion, run: { kind: 'new', config: { steps: 10 } } },
    { type: 'start', protocol: workerProtocolVersion, run: { kind: 'resume', runDir: '.sift/runs/a' } },
    { type: 'branch', protocol: workerProtocolVersion, parentDir: '.sift/runs/a', atStep: 400, overrides: { learningRate: 0.001 } },
    { type: 'branch', protocol: workerProtocolVersion, parentDir: 'a', atStep: 0, overrides: {}, runDir: 'b' },
    { type: 'pause' },
    { type: 'resume' },
    { type: 'stop' },
    { type: 'checkpoint-now' },
    { type: 'shutdown' },
  ];
  for (const message of valid) assert.equal(parseWorkerCommand(message).ok, true, JSON.stringify(message));

  assert.match(problem(parseWorkerCommand(null)), /must be an object/);
  assert.match(problem(parseWorkerCommand([])), /must be an object/);
  assert.match(problem(parseWorkerCommand({ type: 'explode' })), /unknown command type "explode"; known: start, branch/);
  assert.match(problem(parseWorkerCommand({ type: 'start', run: { kind: 'resume', runDir: 'a' } })), /protocol version undefined; this side speaks 1/);
  assert.match(problem(parseWorkerCommand({ type: 'start', protocol: 1, run: { kind: 'resume' } })), /"run" is \{"kind":"resume"\}/);
  assert.match(problem(parseWorkerCommand({ type: 'branch', protocol: 1, parentDir: 'a', atStep: 2.5, overrides: {} })), /"atStep" is 2\.5/);
  assert.match(problem(parseWorkerCommand({ type: 'branch', protocol: 1, parentDir: 'a', atStep: 2, overrides: [] })), /"overrides"/);
  assert.match(problem(parseWorkerCommand({ type: 'branch', protocol: 1, parentDir: 'a', atStep: 2, overrides: {}, runDir: 3 })), /"runDir"/);
});

test('events: every valid one passes; malformed ones are rejected', () => {
  const run = { id: 'a', dir: '/r/a', parent: null, forkStep: null };
  const valid: unknown[] = [
    { type: 'status', protocol: 1, state: 'starting', step: 0, totalSteps: 0 },
    { type: 'status', protocol: 1, state: 'paused', reason: 'requested', run, step: 4, totalSteps: 10, checkpoint: { step: 4, dir: '/r/a/checkpoints/step-4', bytes: 10, ms: 1.5, written: true } },
    { type: 'metrics', line: { type: 'train', step: 1, loss: null } },
    { type: 'metrics', line: { type: 'eval', step: 10, i2t_r1: 0.5 } },
    { type: 'selection', line: { step: 1, ids: ['3'] } },
    { type: 'log', level: 'info', message: 'Indexing', progress: { done: 1, total: 2 } },
    { type: 'log', level: 'warning', message: 'slow' },
    { type: 'error', kind: 'write', message: 'disk full', detail: 'ENOSPC' },
  ];
  for (const message of valid) assert.equal(parseWorkerEvent(message).ok, true, JSON.stringify(message));

  assert.match(problem(parseWorkerEvent({ type: 'status', protocol: 1, state: 'sleeping', step: 0, totalSteps: 0 })), /"state" is "sleeping"/);
  assert.match(problem(parseWorkerEvent({ type: 'status', protocol: 2, state: 'running', step: 0, totalSteps: 0 })), /protocol version 2/);
  assert.match(problem(parseWorkerEvent({ type: 'status', protocol: 1, state: 'running', step: -1, totalSteps: 0 })), /"step"/);
  assert.match(problem(parseWorkerEvent({ type: 'status', protocol: 1, state: 'running', step: 1, totalSteps: 2, run: { id: 'a' } })), /"run"/);
  assert.match(problem(parseWorkerEvent({ type: 'metrics', line: { type: 'train' } })), /"line"/);
  assert.match(problem(parseWorkerEvent({ type: 'log', level: 'debug', message: 'x' })), /"level"/);
  assert.match(problem(parseWorkerEvent({ type: 'error', kind: 'oops', message: 'x' })), /"kind"/);
  assert.match(problem(parseWorkerEvent({ type: 'hello' })), /unknown event type "hello"/);
});

test('a session answers what it cannot do yet with error events, and shuts down at once when idle', () => {
  const sent: WorkerEvent[] = [];
  const exits: number[] = [];
  const session = new WorkerSession({ send: (event) => sent.push(event), exit: (code) => exits.push(code) });
  session.receive({ type: 'resume' });
  session.receive({ type: 'checkpoint-now' });
  session.receive({ type: 'stop' });
  session.receive(42);
  assert.deepEqual(
    sent.map((e) => (e.type === 'error' ? `${e.kind}: ${e.message}` : e.type)),
    [
      'command: Cannot resume: no run has been started.',
      'command: Cannot checkpoint-now: no run has been started.',
      'command: Cannot stop: no run has been started.',
      'protocol: The worker ignored a malformed message: a command must be an object, not 42.',
    ],
  );
  assert.deepEqual(exits, []);
  session.receive({ type: 'shutdown' });
  assert.deepEqual(exits, [0]);
});
