/**
 * Checkpoints: `checkpoints/step-<N>/` holds `state.json` (counters, rng and
 * data-order state, the manifest of tensors) and `tensors.bin` (every weight
 * and optimizer slot as little-endian float32, in manifest order). It is
 * written under a temporary name and renamed, so a checkpoint is whole or
 * absent — a crash mid-write leaves only a `.tmp-` folder, which readers
 * ignore and the next write removes.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { SavedParam } from '../model/params';
import { asWriteError, writeFileAtomic } from './jsonl';

export interface TensorEntry {
  name: string;
  shape: number[];
  /** Offset in floats into tensors.bin. */
  offset: number;
}

export interface CheckpointFile<State> {
  version: 1;
  step: number;
  state: State;
  params: TensorEntry[];
  optimizer: TensorEntry[];
}

export interface Checkpoint<State> {
  step: number;
  state: State;
  params: SavedParam[];
  optimizer: SavedParam[];
}

const CHECKPOINTS = 'checkpoints';
const STEP_PREFIX = 'step-';

export function checkpointDir(runDir: string, step: number): string {
  return path.join(runDir, CHECKPOINTS, `${STEP_PREFIX}${step}`);
}

/** Steps of the whole checkpoints of a run, ascending. */
export function listCheckpoints(runDir: string): number[] {
  let names: string[];
  try {
    names = fs.readdirSync(path.join(runDir, CHECKPOINTS));
  } catch {
    return [];
  }
  return names
    .filter((name) => name.startsWith(STEP_PREFIX) && /^\d+$/.test(name.slice(STEP_PREFIX.length)))
    .filter((name) => fs.existsSync(path.join(runDir, CHECKPOINTS, name, 'state.json')))
    .map((name) => Number(name.slice(STEP_PREFIX.length)))
    .sort((a, b) => a - b);
}

function pack(tensors: SavedParam[], start: number): { entries: TensorEntry[]; floats: number } {
  let offset = start;
  const entries = tensors.map((t) => {
    const entry = { name: t.name, shape: t.shape, offset };
    offset += t.values.length;
    return entry;
  });
  return { entries, floats: offset - start };
}

/**
 * Test hook: SIFT_TEST_SLOW_CHECKPOINT_MS sleeps (blocking) between writing
 * tensors.bin and state.json, so a crash test can kill the writer mid-checkpoint.
 */
const slowCheckpointMs = Number(process.env.SIFT_TEST_SLOW_CHECKPOINT_MS ?? 0);

/** Writes a checkpoint atomically; returns its folder and size in bytes. */
export function writeCheckpoint<State>(runDir: string, checkpoint: Checkpoint<State>): { dir: string; bytes: number } {
  const root = path.join(runDir, CHECKPOINTS);
  const final = checkpointDir(runDir, checkpoint.step);
  const temp = path.join(root, `.tmp-${STEP_PREFIX}${checkpoint.step}-${process.pid}`);
  try {
    fs.mkdirSync(root, { recursive: true });
    fs.rmSync(temp, { recursive: true, force: true });
    fs.mkdirSync(temp);
  } catch (error) {
    throw asWriteError(error, temp);
  }
  const params = pack(checkpoint.params, 0);
  const optimizer = pack(checkpoint.optimizer, params.floats);
  const all = new Float32Array(params.floats + optimizer.floats);
  for (const [i, t] of [...checkpoint.params, ...checkpoint.optimizer].entries()) {
    const entry = i < params.entries.length ? params.entries[i] : optimizer.entries[i - params.entries.length];
    all.set(t.values, entry.offset);
  }
  const bytes = new Uint8Array(all.buffer);
  writeFileAtomic(path.join(temp, 'tensors.bin'), bytes);
  if (slowCheckpointMs > 0) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, slowCheckpointMs);
  const file: CheckpointFile<State> = { version: 1, step: checkpoint.step, state: checkpoint.state, params: params.entries, optimizer: optimizer.entries };
  const json = JSON.stringify(file);
  // state.json last: its presence is what marks a checkpoint whole.
  writeFileAtomic(path.join(temp, 'state.json'), json);
  try {
    fs.rmSync(final, { recursive: true, force: true });
    fs.renameSync(temp, final);
  } catch (error) {
    throw asWriteError(error, final);
  }
  return { dir: final, bytes: bytes.byteLength + json.length };
}

export function readCheckpoint<State>(runDir: string, step: number): Checkpoint<State> {
  const dir = checkpointDir(runDir, step);
  const file = JSON.parse(fs.readFileSync(path.join(dir, 'state.json'), 'utf8')) as CheckpointFile<State>;
  if (file.version !== 1) throw new Error(`${dir}: checkpoint version ${String(file.version)} is not one this Sift reads.`);
  const buffer = fs.readFileSync(path.join(dir, 'tensors.bin'));
  const floats = new Float32Array(buffer.buffer.slice(buffer.byteOffset, buffer.byteOffset + buffer.byteLength));
  const unpack = (entries: TensorEntry[]): SavedParam[] =>
    entries.map((e) => {
      const size = e.shape.reduce((a, b) => a * b, 1);
      if (e.offset + size > floats.length) throw new Error(`${dir}: tensors.bin is shorter than its manifest (${e.name}). The checkpoint is damaged.`);
      return { name: e.name, shape: e.shape, values: floats.slice(e.offset, e.offset + size) };
    });
  return { step: file.step, state: file.state, params: unpack(file.params), optimizer: unpack(file.optimizer) };
}

/** Deletes all but the newest `keep` checkpoints, sparing the steps in `pinned` (branch points). */
export function pruneCheckpoints(runDir: string, keep: number, pinned: ReadonlySet<number> = new Set()): void {
  const steps = listCheckpoints(runDir);
  const doomed = steps.slice(0, Math.max(0, steps.length - keep)).filter((step) => !pinned.has(step));
  for (const step of doomed) fs.rmSync(checkpointDir(runDir, step), { recursive: true, force: true });
  const root = path.join(runDir, CHECKPOINTS);
  for (const name of fs.existsSync(root) ? fs.readdirSync(root) : []) {
    if (name.startsWith('.tmp-')) fs.rmSync(path.join(root, name), { recursive: true, force: true });
  }
}
