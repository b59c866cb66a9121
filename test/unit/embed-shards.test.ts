/**
 * Issue 13, part 2: the reference's pool embeddings in shards (`sift embed
 * --shard i/N`). The assembled cache equals the single-process one byte for
 * byte; a run finds it complete and embeds nothing; with a shard missing the
 * run embeds that one itself and says so.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { openDataset } from '../../src/core/data/open';
import type { ImageTextDataset } from '../../src/core/data/types';
import { embedChunkRows, parseShard, shardDirOf, shardRange, shardsPresent, writeShard, type EmbedTarget } from '../../src/core/train/embedShards';
import { resolveConfig, resolutionScale, type TrainConfig } from '../../src/core/train/config';
import { loadReference, referenceCacheFile, referenceEmbeddings, type ReferenceModel } from '../../src/core/train/reference';
import { trainRun } from '../../src/core/train/run';
import { tinyModel } from '../tinyModel';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'sift-embed-'));
const referenceDir = path.join(root, 'reference');
const pool = 'builtin:train?size=300';
const tiny: Partial<TrainConfig> = { ...tinyModel, evalData: 'builtin:eval?size=32', evalSize: 32 };

before(async () => {
  await trainRun(resolveConfig(tiny, { data: 'builtin:curated?size=200', steps: 2, evalEvery: 2, runDir: referenceDir }));
});

async function withTarget<T>(fn: (target: EmbedTarget, reference: ReferenceModel, dataset: ImageTextDataset) => Promise<T>): Promise<T> {
  const reference = loadReference(referenceDir);
  const dataset = await openDataset(pool, { resolution: reference.model.config.imageSize });
  const scale = resolutionScale(resolveConfig(tiny).referenceResolution);
  try {
    return await fn({ model: reference.model, tokenizer: reference.tokenizer, dataset, scale, cacheFile: referenceCacheFile(reference, dataset, scale), referenceStep: reference.step }, reference, dataset);
  } finally {
    reference.model.dispose();
    await dataset.close();
  }
}

function clearCache(): void {
  fs.rmSync(path.join(referenceDir, 'embeddings'), { recursive: true, force: true });
}

/** The single-process cache's bytes (what a run writes on first use). */
async function singleProcessCache(): Promise<Buffer> {
  clearCache();
  return withTarget(async (target, reference, dataset) => {
    const embeddings = await referenceEmbeddings(reference, dataset, undefined, target.scale);
    assert.equal(embeddings.computed, true);
    assert.equal(embeddings.cacheFile, target.cacheFile);
    return fs.readFileSync(target.cacheFile);
  });
}

test('shards are contiguous runs of whole chunks that cover the pool once', () => {
  for (const [size, count] of [[300, 3], [300, 1], [300, 5], [1000, 7], [embedChunkRows, 2], [0, 2]]) {
    let next = 0;
    for (let i = 0; i < count; i++) {
      const { start, end } = shardRange(size, i, count);
      assert.equal(start, next);
      assert.ok(end >= start);
      assert.ok(start % embedChunkRows === 0 || start === size);
      next = end;
    }
    assert.equal(next, size);
  }
  assert.deepEqual(parseShard('2/4'), { index: 2, count: 4 });
  assert.throws(() => parseShard('4/4'), /0 ≤ i < N/);
  assert.throws(() => parseShard('1'), /i\/N/);
});

test('the cache assembled from 3 shards (and from 1, and from 5) equals the single-process cache byte for byte', async () => {
  const single = await singleProcessCache();
  assert.ok(300 > 2 * embedChunkRows, 'the pool spans three chunks, so each of 3 shards holds one');
  for (const count of [3, 1, 5]) {
    clearCache();
    await withTarget(async (target) => {
      for (let index = 0; index < count; index++) {
        const result = await writeShard(target, index, count);
        assert.equal(result.skipped, false);
        // Only the shard that completes the set assembles the cache; the shard files go with it.
        assert.equal(result.assembled, index === count - 1, `shard ${index}/${count}`);
      }
      assert.ok(!fs.existsSync(shardDirOf(target.cacheFile)));
      assert.ok(single.equals(fs.readFileSync(target.cacheFile)), `${count} shards: the assembled cache differs from the single-process one`);
      const meta = JSON.parse(fs.readFileSync(target.cacheFile.replace(/\.bin$/, '.json'), 'utf8')) as { assembledFromShards: number; size: number };
      assert.equal(meta.assembledFromShards, count);
      assert.equal(meta.size, 300);
    });
  }
});

test('a run finds an assembled cache complete and embeds nothing; with a shard missing it embeds that one and says so', async () => {
  const single = await singleProcessCache();
  const runConfig = (runDir: string): TrainConfig => resolveConfig(tiny, { data: pool, method: 'jest', filterRatio: 0.5, reference: referenceDir, steps: 1, evalEvery: 1, runDir });

  // Shards 0 and 2 of 3 written (say, a job array whose task 1 was killed).
  clearCache();
  await withTarget(async (target) => {
    await writeShard(target, 0, 3);
    await writeShard(target, 2, 3);
    assert.deepEqual(shardsPresent(target).get(3), [0, 2]);
  });
  const partial: string[] = [];
  const progress: number[] = [];
  await trainRun(runConfig(path.join(root, 'partial')), { onStage: (message) => partial.push(message), onProgress: (stage, done) => /^Embedding/.test(stage) && progress.push(done) });
  const note = partial.find((message) => message.startsWith('Reference embeddings'));
  assert.match(note ?? '', /computed and cached \(shards 0\/3, 2\/3 read from sift embed's cache; 1\/3 missing, embedded here\)/);
  const [start, end] = [shardRange(300, 1, 3).start, shardRange(300, 1, 3).end];
  assert.equal(Math.max(...progress), end - start, 'only the missing shard is embedded');
  await withTarget(async (target) => assert.ok(single.equals(fs.readFileSync(target.cacheFile))));

  // All three present: assembled, read, nothing embedded.
  clearCache();
  await withTarget(async (target) => {
    for (let index = 0; index < 3; index++) await writeShard(target, index, 3);
  });
  const complete: string[] = [];
  const embedded: string[] = [];
  await trainRun(runConfig(path.join(root, 'complete')), { onStage: (message) => complete.push(message), onProgress: (stage) => embedded.push(stage) });
  assert.match(complete.find((message) => message.startsWith('Reference embeddings')) ?? '', /^Reference embeddings read from cache \(assembled from 3 shards written by sift embed\)/);
  assert.deepEqual(embedded.filter((stage) => /Embedding/.test(stage)), []);
});

test('sift embed --shard i/N through the CLI fills the cache a training run with the same data options reads', async () => {
  const single = await singleProcessCache();
  clearCache();
  const cliEntry = path.resolve(__dirname, '../../src/cli/main.ts');
  const loader = pathToFileURL(require.resolve('tsx')).href;
  const options = ['--reference', referenceDir, '--data', pool, '--eval-data', 'builtin:eval?size=32', '--backend', 'wasm'];
  const embed = (args: string[]): Promise<string> =>
    new Promise((resolve, reject) => {
      const child = spawn(process.execPath, ['--import', loader, cliEntry, 'embed', ...args], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
      child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      child.on('error', reject);
      child.on('close', (code) => (code === 0 ? resolve(stdout) : reject(new Error(`sift embed ${args.join(' ')} exited ${code}: ${stderr}`))));
    });
  const outputs: string[] = [];
  for (const shard of ['0/3', '1/3', '2/3']) outputs.push(await embed([...options, '--shard', shard]));
  assert.match(outputs[0], /Shard 0\/3: embedded pairs 0–128/);
  assert.match(outputs[0], /Waiting for shards 1\/3, 2\/3/);
  assert.match(outputs[2], /All 3 shards present: assembled the cache/);
  await withTarget(async (target) => assert.ok(single.equals(fs.readFileSync(target.cacheFile)), 'the CLI-assembled cache differs from the single-process one'));

  // With --eval-data '' a run holds out part of --data and embeds the rest: so does sift embed, and the run reads what it wrote.
  const heldOut = await embed(['--reference', referenceDir, '--data', pool, '--eval-data=', '--backend', 'wasm']);
  assert.match(heldOut, /Reference embeddings computed and cached in/);
  const stages: string[] = [];
  await trainRun(resolveConfig(tiny, { evalData: '', evalSize: 16, data: pool, method: 'jest', filterRatio: 0.5, reference: referenceDir, steps: 1, evalEvery: 1, runDir: path.join(root, 'held-out') }), { onStage: (message) => stages.push(message) });
  assert.match(stages.find((message) => message.startsWith('Reference embeddings')) ?? '', /^Reference embeddings read from cache:/);
});
