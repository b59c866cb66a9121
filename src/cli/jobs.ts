/**
 * Runs `sift` subcommands as child processes, a few at a time: the demo and
 * bench:curation train several runs side by side (each TensorFlow.js wasm
 * process uses one core).
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';

export interface Job {
  name: string;
  /** Arguments after `sift`. */
  args: string[];
  /** Where the child's output goes. */
  log: string;
}

export interface JobResult {
  name: string;
  seconds: number;
}

/** Runs one job to completion; rejects (naming its log) if it fails. */
export function runJob(cli: string, job: Job, onDone?: (result: JobResult) => void): Promise<JobResult> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const log = fs.createWriteStream(job.log);
    const child = spawn(process.execPath, [cli, ...job.args], { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.pipe(log);
    child.stderr.pipe(log);
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      const result = { name: job.name, seconds: (Date.now() - started) / 1000 };
      if (code === 0) {
        onDone?.(result);
        resolve(result);
      } else {
        reject(new Error(`${job.name} failed (${signal ?? `exit ${code}`}); its output is in ${job.log}`));
      }
    });
  });
}

/** Runs the jobs `width` at a time, in order. */
export async function runJobs(cli: string, jobs: readonly Job[], width: number, onDone?: (result: JobResult) => void): Promise<JobResult[]> {
  const pending = [...jobs];
  const results: JobResult[] = [];
  const lanes = Array.from({ length: Math.max(1, width) }, async () => {
    while (pending.length) results.push(await runJob(cli, pending.shift()!, onDone));
  });
  await Promise.all(lanes);
  return results;
}
