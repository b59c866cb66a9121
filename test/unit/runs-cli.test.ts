/**
 * The CLI end to end, as a user drives it: `sift train` through the worker,
 * Ctrl-C (SIGINT) to pause or stop, `sift resume`, `sift branch`, `sift runs`,
 * and the exit codes that say how each ended.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { listCheckpoints } from '../../src/core/runs/checkpoint';
import { readRunJson } from '../../src/core/runs/record';
import { tmp } from './runs-helpers';

const cliEntry = path.resolve(__dirname, '../../src/cli/main.ts');
const loader = pathToFileURL(require.resolve('tsx')).href;
const tiny = ['--data', 'builtin:train?size=300', '--eval-data', 'builtin:eval?size=32', '--batch-size', '8', '--image-width', '16', '--text-width', '16', '--image-depth', '1', '--text-depth', '1', '--embed-dim', '16', '--eval-every', '20', '--checkpoint-every', '10', '--backend', 'wasm'];

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `sift args` in `cwd` without a terminal; `onStderr` may interrupt it. */
function sift(cwd: string, args: string[], onStderr?: (text: string, pid: number) => void): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', loader, cliEntry, ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
      onStderr?.(stderr, child.pid!);
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/**
 * Sends SIGINT once the run has taken a step and, for `times` = 2, again as
 * soon as the CLI says it is pausing: the second press lands while the pause
 * is under way, as a user's quick double Ctrl-C does (a fixed delay raced the
 * pause: a tiny run could pause, checkpoint and exit 3 within it).
 */
function interruptAfterFirstStep(times: 1 | 2): (text: string, pid: number) => void {
  let sent = 0;
  return (text, pid) => {
    const due = sent === 0 ? /step 1\// : sent < times ? /Pausing at the next step/ : undefined;
    if (!due?.test(text)) return;
    sent++;
    process.kill(pid, 'SIGINT');
  };
}

test('sift: Ctrl-C pauses (exit 3), resume finishes (0), branch makes a tree (0, or 2 with the kept steps listed), runs shows it', async () => {
  const cwd = tmp('sift-cli-');
  const runDir = path.join('.sift', 'runs', 'first');
  const paused = await sift(cwd, ['train', ...tiny, '--steps', '60', '--run-dir', runDir], interruptAfterFirstStep(1));
  assert.equal(paused.code, 3, paused.stderr);
  assert.match(paused.stderr, /Paused at step \d+\. Continue it with: sift resume \.sift\/runs\/first/);
  const pausedRun = readRunJson(path.join(cwd, runDir));
  assert.equal(pausedRun.status, 'paused');

  const resumed = await sift(cwd, ['resume', runDir]);
  assert.equal(resumed.code, 0, resumed.stderr);
  assert.match(resumed.stderr, /Continuing from step \d+, its checkpoint\./);
  assert.match(resumed.stdout, /Run first finished: \.sift\/runs\/first/);

  const missing = await sift(cwd, ['branch', runDir, '--at-step', '15', '--set', 'learningRate=0.001']);
  assert.equal(missing.code, 2, missing.stderr);
  assert.match(missing.stderr, /no checkpoint at step 15\. Kept checkpoints: (\d+, )*50, 60\./);

  const kept = listCheckpoints(path.join(cwd, runDir));
  const branched = await sift(cwd, ['branch', runDir, '--at-step', String(kept[kept.length - 2]), '--set', 'learningRate=0.001', '--run-dir', path.join('.sift', 'runs', 'lower-lr')]);
  assert.equal(branched.code, 0, branched.stderr);
  assert.match(branched.stdout, /branch of first at step 50/);

  const listed = await sift(cwd, ['runs']);
  assert.equal(listed.code, 0);
  assert.match(listed.stdout, /^first\s+finished\s+uniform\s+60\/60/m);
  assert.match(listed.stdout, /^└─ lower-lr\s+finished\s+uniform\s+60\/60\s+\S+%\s+first@50$/m);
});

test('sift: a second Ctrl-C stops the run, checkpointed (exit 130); a folder that is no run is a usage error (exit 2)', async () => {
  const cwd = tmp('sift-cli-');
  const runDir = path.join('.sift', 'runs', 'stopped');
  const stopped = await sift(cwd, ['train', ...tiny, '--steps', '60', '--run-dir', runDir], interruptAfterFirstStep(2));
  assert.equal(stopped.code, 130, stopped.stderr);
  assert.match(stopped.stderr, /Stopped at step \d+, checkpointed\. Continue it with: sift resume/);
  assert.equal(readRunJson(path.join(cwd, runDir)).status, 'stopped');

  const notARun = await sift(cwd, ['resume', 'nowhere']);
  assert.equal(notARun.code, 2);
  assert.match(notARun.stderr, /nowhere holds no run/);
});

/** Whether process `pid` is alive. */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

test('sift: when the CLI is killed (kill -9), its worker does not train on alone: it checkpoints, leaves the run paused and exits; resume continues it', async () => {
  const cwd = tmp('sift-cli-');
  const runDir = path.join('.sift', 'runs', 'orphan');
  const killed = await sift(cwd, ['train', ...tiny, '--steps', '400', '--run-dir', runDir], (text, pid) => {
    if (/step 1\//.test(text) && alive(pid)) process.kill(pid, 'SIGKILL');
  });
  assert.equal(killed.code, null, 'the CLI died of the signal');
  const workerPid = readRunJson(path.join(cwd, runDir)).pid;
  assert.ok(typeof workerPid === 'number' && workerPid !== 0, 'run.json names the worker');
  const deadline = Date.now() + 60_000;
  while (alive(workerPid) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
  assert.equal(alive(workerPid), false, 'the worker left when its CLI died');
  const run = readRunJson(path.join(cwd, runDir));
  assert.equal(run.status, 'paused');
  const kept = listCheckpoints(path.join(cwd, runDir));
  assert.ok(kept.length > 0 && kept[kept.length - 1] < 400, `a checkpoint where it stopped (${kept.join(', ')})`);

  const resumed = await sift(cwd, ['resume', runDir]);
  assert.equal(resumed.code, 0, resumed.stderr);
  assert.match(resumed.stderr, new RegExp(`Continuing from step ${kept[kept.length - 1]}, its checkpoint\\.`));
  assert.equal(readRunJson(path.join(cwd, runDir)).status, 'finished');
});

test('sift compare --help says how to read the table; a wrong flag or no run folder is an error with that usage', async () => {
  const cwd = tmp('sift-compare-help-');
  const help = await sift(cwd, ['compare', '--help']);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /^Usage: sift compare RUN_DIR\.\.\./);
  assert.match(help.stdout, /uniform's ÷ the run's .* not the reference's own training/s);
  assert.match(help.stdout, /--target-metric +i2t_r1, i2t_r5, t2i_r1, t2i_r5, zeroshot_acc/);
  const wrong = await sift(cwd, ['compare', 'runs/a', '--traget', '0.1']);
  assert.equal(wrong.code, 2);
  assert.match(wrong.stderr, /Unknown option '--traget'[\s\S]*Usage: sift compare/);
  const none = await sift(cwd, ['compare']);
  assert.equal(none.code, 2);
  assert.match(none.stderr, /sift compare needs at least one run folder\.\n\nUsage: sift compare/);
});
