/**
 * `sift export`: the picks of a selecting run, ranked and written as
 * WebDataset shards or a captions folder that Sift's own readers open again
 * with the same captions and pixels (rendered data) or bytes (file data).
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import * as tar from 'tar-stream';
import { exportCommand } from '../../src/cli/export';
import { openDataset } from '../../src/core/data/open';
import { holdOut } from '../../src/core/data/subset';
import type { ImageTextDataset } from '../../src/core/data/types';
import { applyRule, exportSubset, rankPicks, type ExportFormat, type ExportManifest } from '../../src/core/runs/export';
import type { RunJson, SelectionLine } from '../../src/core/runs/record';
import { ConfigError, resolveConfig, type TrainConfig } from '../../src/core/train/config';
import { jpeg, jsonl, png, tempDir, writeFiles, writeTar } from './data-fixtures';

const resolution = 8;

/** A run folder as the trainer leaves it: run.json and the given selections lines (no weights needed). */
async function fakeRun(config: Partial<TrainConfig>, lines: SelectionLine[], extra: Partial<RunJson> = {}): Promise<string> {
  const dir = path.join(await tempDir('sift-export-run-'), 'run');
  fs.mkdirSync(dir);
  const now = new Date().toISOString();
  const json: RunJson = {
    id: path.basename(dir),
    kind: 'train',
    status: 'finished',
    created: now,
    updated: now,
    config: resolveConfig({ imageSize: resolution, patchSize: 4, method: 'jest', reference: '/nowhere', ...config }),
    seed: 0,
    parent: null,
    forkStep: null,
    ...extra,
  };
  fs.writeFileSync(path.join(dir, 'run.json'), JSON.stringify(json));
  fs.writeFileSync(path.join(dir, 'selections.jsonl'), lines.map((line) => JSON.stringify(line) + '\n').join(''));
  return dir;
}

/** A scored step's line: picks with learner and reference losses (learnability their difference). */
function picked(step: number, ids: string[], learner: number[], reference: number[]): SelectionLine {
  return {
    step,
    ids,
    pick_logit: ids.map(() => 0),
    candidates: ids.length * 4,
    learner_loss: learner,
    reference_loss: reference,
    learnability: learner.map((l, k) => Math.round((l - reference[k]) * 1e4) / 1e4),
  };
}

const outDir = async (): Promise<string> => path.join(await tempDir('sift-export-out-'), 'subset');
const manifestOf = (dir: string): ExportManifest => JSON.parse(fs.readFileSync(path.join(dir, 'export.json'), 'utf8')) as ExportManifest;

/** The members of every .tar in a folder, by name. */
async function tarMembers(dir: string): Promise<Map<string, Buffer>> {
  const members = new Map<string, Buffer>();
  for (const name of fs.readdirSync(dir).filter((n) => n.endsWith('.tar')).sort()) {
    const extract = tar.extract();
    fs.createReadStream(path.join(dir, name)).pipe(extract);
    for await (const entry of extract) {
      const chunks: Buffer[] = [];
      for await (const chunk of entry) chunks.push(chunk as Buffer);
      members.set(entry.header.name, Buffer.concat(chunks));
    }
  }
  return members;
}

/** Source index of each exported row, through its recorded source_id. */
function sourceIndex(source: ImageTextDataset): Map<string, number> {
  return new Map([...Array(source.size).keys()].map((i) => [source.id(i), i]));
}

/** The exported rows' source ids, in the export's order: from the rows (jsonl) or the .json members (webdataset). */
async function exportedIds(dir: string, format: ExportFormat): Promise<string[]> {
  if (format === 'jsonl') return fs.readFileSync(path.join(dir, 'captions.jsonl'), 'utf8').trim().split('\n').map((line) => (JSON.parse(line) as { source_id: string }).source_id);
  const members = await tarMembers(dir);
  return [...members].filter(([name]) => name.endsWith('.json')).sort(([a], [b]) => (a < b ? -1 : 1)).map(([, bytes]) => (JSON.parse(bytes.toString('utf8')) as { source_id: string }).source_id);
}

test('picks are ranked by how often, then how early, then how learnable; uniform batches and repeated steps do not count twice', async () => {
  const dir = await fakeRun({ data: 'builtin:train?size=40' }, [
    picked(1, ['3', '5', '7'], [2, 3, 4], [1, 1, 1]),
    picked(2, ['5', '9', '3'], [2, 2, 2], [1, 0.5, 1]),
    // A uniform batch of a selecting run (it passed its reference): ids only, not picks.
    { step: 3, ids: ['11', '12', '13'] },
    picked(4, ['7', '1', '2'], [9, 9, 9], [9, 9, 9]),
    // Step 4 again (a resumed run's log): the newer line counts, once.
    picked(4, ['5', '1', '2'], [5, 1, 1], [1, 1, 0]),
  ]);
  const ranked = await rankPicks(dir);
  assert.equal(ranked.selectedSteps, 3);
  assert.equal(ranked.uniformSteps, 1);
  assert.equal(ranked.picks, 9);
  assert.deepEqual(
    ranked.pairs.map((p) => [p.id, p.times_picked, p.first_step]),
    [
      ['5', 3, 1],
      ['3', 2, 1],
      ['7', 1, 1],
      ['9', 1, 2],
      ['2', 1, 4], // learnability 1 ranks above '1' (0) at the same count and first step
      ['1', 1, 4],
    ],
  );
  const five = ranked.pairs[0];
  assert.equal(five.mean_learner_loss, Math.round(((3 + 2 + 5) / 3) * 1e4) / 1e4, 'means are kept to 4 decimals');
  assert.equal(five.mean_reference_loss, 1);
  assert.equal(five.mean_learnability, 2.3333);
  assert.equal(five.last_step, 4);

  assert.deepEqual(applyRule(ranked.pairs, { kind: 'top-fraction', fraction: 0.5 }).map((p) => p.id), ['5', '3', '7']);
  assert.deepEqual(applyRule(ranked.pairs, { kind: 'top-fraction', fraction: 0.01 }).map((p) => p.id), ['5'], 'at least one pair');
  assert.deepEqual(applyRule(ranked.pairs, { kind: 'top-fraction', fraction: 1 }).length, 6);
  assert.deepEqual(applyRule(ranked.pairs, { kind: 'min-learnability', min: 2 }).map((p) => [p.id, p.mean_learnability]), [
    ['5', 2.3333],
    ['7', 3],
  ]);
  assert.throws(() => applyRule(ranked.pairs, { kind: 'min-learnability', min: 10 }), (error: unknown) => error instanceof ConfigError && /no picked pair has a mean learnability of 10 or more \(the 6 picked pairs range from 0 to 3\)/.test(error.message));
  const noLearnability = ranked.pairs.map(({ mean_learnability: _, ...rest }) => rest);
  assert.throws(() => applyRule(noLearnability, { kind: 'min-learnability', min: 0 }, dir), /records none .*Use --top-fraction instead/);
});

test("a branch's picks are its parent's up to the fork step, then its own", async () => {
  const parent = await fakeRun({ data: 'builtin:train?size=40' }, [picked(1, ['1'], [2], [1]), picked(2, ['2'], [2], [1]), picked(3, ['3'], [2], [1])]);
  const branch = path.join(path.dirname(parent), 'branch');
  fs.mkdirSync(branch);
  const json = { ...(JSON.parse(fs.readFileSync(path.join(parent, 'run.json'), 'utf8')) as RunJson), id: 'branch', parent: path.basename(parent), forkStep: 2 };
  fs.writeFileSync(path.join(branch, 'run.json'), JSON.stringify(json));
  fs.writeFileSync(path.join(branch, 'selections.jsonl'), [picked(3, ['9'], [2], [1]), picked(4, ['1'], [2], [1])].map((line) => JSON.stringify(line) + '\n').join(''));
  const ranked = await rankPicks(branch);
  assert.equal(ranked.selectedSteps, 4);
  assert.deepEqual(ranked.pairs.map((p) => [p.id, p.times_picked, p.first_step]), [['1', 2, 1], ['2', 1, 2], ['9', 1, 3]]);
});

for (const format of ['webdataset', 'jsonl'] as const) {
  test(`built-in data exported as ${format} re-reads through Sift's reader with the same captions, labels and pixels`, async () => {
    const data = 'builtin:train?size=60';
    const dir = await fakeRun({ data }, [picked(1, ['4', '17', '30'], [3, 2, 1], [1, 1, 1]), picked(2, ['17', '52', '0'], [2, 2, 2], [1, 1, 1]), picked(3, ['17', '4', '59'], [2, 2, 2], [1, 1, 1])]);
    const out = await outDir();
    const manifest = await exportSubset({ runDir: dir, out, rule: { kind: 'all' }, format, shardSize: 4 });
    assert.equal(manifest.counts.exported, 6);
    assert.equal(manifest.counts.picked_pairs, 6);
    assert.equal(manifest.source.data, data);
    assert.equal(manifest.source.pool_size, 60);
    assert.deepEqual(manifestOf(out), manifest);
    assert.deepEqual(fs.readdirSync(path.dirname(out)), ['subset'], 'no temporary folder left beside it');
    const pattern = manifest.files.pattern;
    if (format === 'webdataset') {
      assert.deepEqual(manifest.files, { shards: ['000000.tar', '000001.tar'], pattern: '{000000..000001}.tar' });
      const members = [...(await tarMembers(out)).keys()];
      assert.deepEqual(members.slice(0, 3), ['000000.png', '000000.txt', '000000.json'], 'a sample is adjacent members, keyed by rank');
    } else {
      assert.deepEqual(manifest.files, { captions: 'captions.jsonl' });
    }
    assert.deepEqual(await exportedIds(out, format), ['17', '4', '30', '0', '52', '59'], 'a tie in count, first step and learnability goes by id');

    const source = await openDataset(data, { resolution });
    // The shard folder and the brace pattern (open_clip's --train-data form) both open.
    const specs = format === 'webdataset' ? [out, path.join(out, pattern!)] : [out];
    for (const spec of specs) {
      const exported = await openDataset(spec, { resolution });
      assert.equal(exported.format, format === 'webdataset' ? 'webdataset' : 'folder');
      assert.equal(exported.size, 6);
      assert.equal(exported.skips.rowsSeen, 6, 'nothing skipped');
      const ids = await exportedIds(out, format);
      const at = sourceIndex(source);
      const sourcePixels = await source.loadImages(ids.map((id) => at.get(id)!));
      const exportedPixels = await exported.loadImages([...Array(6).keys()]);
      for (let k = 0; k < 6; k++) {
        const i = at.get(ids[k])!;
        assert.equal(exported.caption(k), source.caption(i));
        assert.equal(exported.label(k), source.label(i));
        assert.equal(exported.noisy(k), source.noisy(i));
      }
      // PNG holds 8 bits a channel: the rendered floats, rounded.
      assert.deepEqual(Array.from(exportedPixels, (v) => Math.round(v * 255)), Array.from(sourcePixels, (v) => Math.round(Math.min(1, Math.max(0, v)) * 255)));
      await exported.close();
    }
  });
}

for (const format of ['webdataset', 'jsonl'] as const) {
  test(`file data exported as ${format} keeps each image's bytes, and a WebDataset source exports too`, async () => {
    const root = await tempDir('sift-export-data-');
    const images: Record<string, Buffer> = {
      'a.png': png(12, 10, [200, 10, 10]),
      'b.jpg': jpeg(16, 16, [10, 200, 10]),
      'c.png': png(9, 9, (x, y) => [x * 20, y * 20, 90]),
      'd.jpg': jpeg(10, 14, [10, 10, 200]),
    };
    const rows = Object.keys(images).map((image, k) => ({ image: `img/${image}`, caption: `caption ${k}`, label: `class ${k % 2}` }));
    await writeFiles(path.join(root, 'folder'), { 'captions.jsonl': jsonl(rows), ...Object.fromEntries(Object.entries(images).map(([name, bytes]) => [`img/${name}`, bytes])) });
    await writeTar(
      path.join(root, 'shards', '00000.tar'),
      Object.entries(images).flatMap(([name, bytes], k): [string, string | Uint8Array][] => [
        [`s${k}.${name.split('.')[1]}`, bytes],
        [`s${k}.txt`, `caption ${k}`],
      ]),
    );
    const sources = [
      { data: path.join(root, 'folder'), ids: ['2', '0', '3'], files: ['c.png', 'a.png', 'd.jpg'] },
      { data: path.join(root, 'shards'), ids: ['s1', 's3'], files: ['b.jpg', 'd.jpg'] },
    ];
    for (const { data, ids, files } of sources) {
      const dir = await fakeRun({ data, evalData: 'builtin:eval?size=4' }, [picked(1, ids, ids.map((_, k) => 5 - k), ids.map(() => 1))]);
      const out = await outDir();
      const manifest = await exportSubset({ runDir: dir, out, rule: { kind: 'all' }, format });
      assert.match(manifest.images, /byte for byte/);
      const exported = await openDataset(out, { resolution });
      assert.equal(exported.size, ids.length);
      const bytes =
        format === 'jsonl'
          ? fs.readFileSync(path.join(out, 'captions.jsonl'), 'utf8').trim().split('\n').map((line) => fs.readFileSync(path.join(out, (JSON.parse(line) as { image: string }).image)))
          : [...(await tarMembers(out))].filter(([name]) => /\.(png|jpg)$/.test(name)).map(([, b]) => b);
      assert.deepEqual(bytes, files.map((file) => images[file]), 'the original files, byte for byte, in rank order');
      const extensions = format === 'jsonl' ? fs.readdirSync(path.join(out, 'images')).map((name) => name.split('.')[1]) : [...(await tarMembers(out)).keys()].filter((n) => !/\.(txt|json)$/.test(n)).map((n) => n.split('.')[1]);
      assert.deepEqual(extensions, files.map((file) => file.split('.')[1]), 'named for what they hold');
      files.forEach((file, k) => assert.equal(exported.caption(k), `caption ${Object.keys(images).indexOf(file)}`));
      await exported.close();
    }
  });
}

test('--random draws from the training pool only (never the held-out eval split) and records the scores of pairs the run picked', async () => {
  const data = 'builtin:train?size=80';
  const dir = await fakeRun({ data, evalData: '', evalFraction: 0.25, seed: 3 }, [picked(1, ['1', '2'], [2, 2], [1, 1])]);
  const out = await outDir();
  const manifest = await exportSubset({ runDir: dir, out, rule: { kind: 'random', count: 60, seed: 5 }, format: 'jsonl' });
  assert.equal(manifest.source.pool_size, 60);
  assert.equal(manifest.source.eval_held_out, true);
  const base = await openDataset(data, { resolution });
  const heldOut = holdOut(base, 0.25, 3).heldOut;
  const held = new Set([...Array(heldOut.size).keys()].map((i) => heldOut.id(i)));
  const rows = fs.readFileSync(path.join(out, 'captions.jsonl'), 'utf8').trim().split('\n').map((line) => JSON.parse(line) as { source_id: string; times_picked: number });
  assert.equal(rows.length, 60);
  assert.equal(new Set(rows.map((r) => r.source_id)).size, 60);
  assert.ok(rows.every((r) => !held.has(r.source_id)), 'no held-out pair');
  assert.deepEqual(rows.filter((r) => r.times_picked > 0).map((r) => r.source_id).sort(), ['1', '2']);
  // Seeded: the same draw again.
  const again = await outDir();
  await exportSubset({ runDir: dir, out: again, rule: { kind: 'random', count: 60, seed: 5 }, format: 'jsonl' });
  assert.deepEqual(await exportedIds(again, 'jsonl'), rows.map((r) => r.source_id));
  await assert.rejects(exportSubset({ runDir: dir, out: await outDir(), rule: { kind: 'random', count: 61, seed: 5 }, format: 'jsonl' }), /has only 60 pairs/);
});

test('errors name the file or flag and the fix', async () => {
  const data = 'builtin:train?size=30';
  const out = await outDir();
  const run = (config: Partial<TrainConfig>, lines: SelectionLine[]): Promise<string> => fakeRun({ data, ...config }, lines);
  const rejects = (promise: Promise<unknown>, pattern: RegExp): Promise<void> => assert.rejects(promise, (error: unknown) => error instanceof ConfigError && pattern.test(error.message));

  const uniform = await run({ method: 'uniform', reference: '' }, [{ step: 1, ids: ['1', '2'] }]);
  await rejects(exportSubset({ runDir: uniform, out, rule: { kind: 'all' }, format: 'jsonl' }), /is a uniform run \(run\.json: config\.method is "uniform"\).*nothing was selected.*--method jest.*--random N/);
  // A random sample of a uniform run's pool is allowed (the control).
  assert.equal((await exportSubset({ runDir: uniform, out, rule: { kind: 'random', count: 5, seed: 0 }, format: 'jsonl' })).counts.exported, 5);

  const empty = await run({}, []);
  await rejects(exportSubset({ runDir: empty, out: await outDir(), rule: { kind: 'all' }, format: 'jsonl' }), /nothing to export: .*selections\.jsonl has no steps yet/);
  const onlyUniform = await run({}, [{ step: 1, ids: ['1'] }, { step: 2, ids: ['2'] }]);
  await rejects(exportSubset({ runDir: onlyUniform, out: await outDir(), rule: { kind: 'all' }, format: 'jsonl' }), /the 2 steps in .*selections\.jsonl all trained on uniform batches/);
  await rejects(exportSubset({ runDir: path.join(out, 'nope'), out: await outDir(), rule: { kind: 'all' }, format: 'jsonl' }), /holds no run \(there is no run\.json\)/);

  const good = await run({}, [picked(1, ['1', '2'], [2, 2], [1, 1])]);
  // `out` holds the export above: refused without --force; --force replaces an earlier export.
  await rejects(exportSubset({ runDir: good, out, rule: { kind: 'all' }, format: 'jsonl' }), /--out .* exists and is not empty .*--force/);
  const replaced = await exportSubset({ runDir: good, out, rule: { kind: 'all' }, format: 'webdataset', force: true });
  assert.equal(replaced.counts.exported, 2);
  assert.deepEqual(fs.readdirSync(out).sort(), ['000000.tar', 'export.json'], 'nothing of the earlier export is left');
  const foreign = await outDir();
  await writeFiles(foreign, { 'notes.txt': 'mine' });
  await rejects(exportSubset({ runDir: good, out: foreign, rule: { kind: 'all' }, format: 'jsonl', force: true }), /holds no export\.json.*--force only replaces those/);
  assert.equal(fs.readFileSync(path.join(foreign, 'notes.txt'), 'utf8'), 'mine');

  await rejects(exportSubset({ runDir: good, out: await outDir(), rule: { kind: 'top-fraction', fraction: 0 }, format: 'jsonl' }), /--top-fraction must be a number above 0 and at most 1/);
  await rejects(exportSubset({ runDir: good, out: await outDir(), rule: { kind: 'all' }, format: 'parquet' as ExportFormat }), /--format must be one of webdataset, jsonl/);
  const moved = await run({ data: path.join(out, 'gone') }, [picked(1, ['1'], [2], [1])]);
  await rejects(exportSubset({ runDir: moved, out: await outDir(), rule: { kind: 'all' }, format: 'jsonl' }), /Cannot open the run's data .*gone \(run\.json config\.data; if it moved, pass --data with where it is now\): .*no such file or folder/s);
  const stranger = await run({}, [picked(1, ['1', 'x9'], [2, 2], [1, 1])]);
  await rejects(exportSubset({ runDir: stranger, out: await outDir(), rule: { kind: 'all' }, format: 'jsonl' }), /1 of the 2 pairs to export \(e\.g\. id "x9" .*\) are not in builtin:train\?size=30/);

  // The CLI: one rule at most, --out required.
  await rejects(exportCommand([good, '--out', await outDir(), '--top-fraction', '0.5', '--min-learnability', '1']), /--top-fraction and --min-learnability cannot be combined/);
  await rejects(exportCommand([good, '--out', await outDir(), '--top-fraction', '0.5', '--random', '3']), /cannot be combined/);
  await rejects(exportCommand([good]), /needs --out DIR/);
  await rejects(exportCommand([good, '--out', await outDir(), '--seed', '2']), /--seed only applies to --random N/);
  await rejects(exportCommand([good, '--out', await outDir(), '--top-fraction', 'half']), /--top-fraction: "half" is not a number/);
});
