import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, test } from 'node:test';
import { Transformer } from '@napi-rs/image';
import type { ImageTextDataset } from '../../src/core/data/types';
import type { SelectionLine } from '../../src/core/runs/record';
import { InspectorModel, pickSplits, stepRanges, stepView } from '../../src/panels/inspector';
import { encodePng, resolveDataSpec, ThumbnailService } from '../../src/panels/thumbnails';
import { defaultInspectorView, parseInspectorHostMessage, type InspectorHostMessage } from '../../src/protocol/webview';
import { GREEN, png, RED, tempDir, writeTar } from './data-fixtures';
import { fixtureData, tmpDir, writeFixtureRun } from './panels-fixtures';

function valid(message: InspectorHostMessage): InspectorHostMessage {
  const parsed = parseInspectorHostMessage(JSON.parse(JSON.stringify(message)));
  assert.ok(parsed.ok, parsed.ok ? '' : parsed.problem);
  return message;
}

const line: SelectionLine = {
  step: 7,
  ids: ['10', '11', '12', '13'],
  learner_loss: [3, 2.5, 2, 1.5],
  reference_loss: [2, 2, 2, 2],
  learnability: [1, 0.5, 0, -0.5],
  pick_logit: [1, 0.5, 0.75, 1.5],
  candidates: 20,
  pool_hist: { lo: -1, hi: 1, counts: [5, 5, 5, 5] },
  pool_noisy: 0.25,
};
const pairs = new Map([
  ['10', { caption: 'a red square', label: 'square', noisy: false }],
  ['11', { caption: '<b>bold?</b>', noisy: true }],
  ['12', { caption: 'a ring' }],
]);

describe('step view', () => {
  test('picks in draw order with their scores, captions and noise flags; an unknown id is marked missing', () => {
    const view = valid({ type: 'step', payload: stepView('run', line, pairs, { method: 'jest', chunks: 2, jointNormalization: 'sum' }) });
    const step = (view as Extract<InspectorHostMessage, { type: 'step' }>).payload;
    assert.equal(step.candidates, 20);
    assert.equal(step.rejected, null, 'not recorded today');
    assert.deepEqual(step.chosen.map((p) => [p.id, p.order, p.caption]), [['10', 0, 'a red square'], ['11', 1, '<b>bold?</b>'], ['12', 2, 'a ring'], ['13', 3, '']]);
    assert.deepEqual(step.chosen[0].scores, { learnerLoss: 3, referenceLoss: 2, learnability: 1, pickLogit: 1 });
    assert.equal(step.chosen[1].noisy, true);
    assert.equal(step.chosen[3].missing, true);
    assert.equal(step.poolNoisy, 0.25);
  });

  test('the pick logit splits into own score and batch-mates by chunk (sum and mean normalization)', () => {
    const scores = line.ids.map((_, k) => ({ learnability: line.learnability![k], pickLogit: line.pick_logit![k], learnerLoss: line.learner_loss![k], referenceLoss: 2 }));
    const sum = pickSplits(line, { method: 'jest', chunks: 2, jointNormalization: 'sum' }, scores)!;
    assert.deepEqual(sum.map((s) => [s.chunk, s.drawnBefore, s.own, s.fromMates, s.scale, s.exact]), [
      [0, 0, 1, 0, 1, false],
      [0, 0, 0.5, 0, 1, false],
      [1, 2, 0, 0.75, 1, false],
      [1, 2, -0.5, 2, 1, false],
    ]);
    const mean = pickSplits(line, { method: 'jest', chunks: 2, jointNormalization: 'mean' }, scores)!;
    assert.deepEqual(mean.slice(2).map((s) => [s.scale, s.fromMates]), [[5, 3.75], [5, 8]]);
    const hard = pickSplits(line, { method: 'easy-reference', chunks: 4, jointNormalization: 'sum' }, scores)!;
    assert.equal(hard[0].own, -2);
    assert.equal(pickSplits({ step: 1, ids: ['1'] }, { method: 'uniform', chunks: 4, jointNormalization: 'sum' }, [{}]), undefined);
    assert.deepEqual(pickSplits(line, { method: 'independent', chunks: 2, jointNormalization: 'sum' }, scores)!.map((s) => s.chunk), [0, 0, 0, 0]);
  });

  test('recorded rejects and exact contributions slot in; malformed contributions are ignored', () => {
    const contributions = line.ids.map((_, k) => ({ own: line.learnability![k], from: k >= 2 ? ([[0, 0.5], [1, 0.25]] as [number, number][]) : [] }));
    const extended: SelectionLine = { ...line, rejected: { ids: ['12'], learnability: [-0.9] }, contributions };
    const view = stepView('run', extended, pairs, { method: 'jest', chunks: 2, jointNormalization: 'sum' });
    valid({ type: 'step', payload: view });
    assert.deepEqual(view.rejected?.map((p) => [p.id, p.order, p.scores.learnability]), [['12', -1, -0.9]]);
    assert.equal(view.contributions?.length, 4);
    assert.deepEqual([view.chosen[3].split?.exact, view.chosen[3].split?.fromMates], [true, 0.75]);
    const broken = stepView('run', { ...line, contributions: [{ own: 1, from: [[9, 1]] }] as never }, pairs, { method: 'jest', chunks: 2, jointNormalization: 'sum' });
    assert.equal(broken.contributions, undefined);
    assert.equal(broken.chosen[3].split?.exact, false);
  });

  test('steps compress to ranges', () => {
    assert.deepEqual(stepRanges([1, 2, 3, 7, 9, 10]), [[1, 3], [7, 7], [9, 10]]);
    assert.deepEqual(stepRanges([]), []);
  });
});

describe('ThumbnailService', () => {
  test('PNG thumbnails of built-in pairs at the asked size, cached; captions by id; unknown ids named', async () => {
    const service = new ThumbnailService();
    const [first, missing] = await service.png(fixtureData, ['5', 'nope'], 48);
    assert.ok(first && first.byteLength > 100);
    assert.equal(missing, undefined);
    const meta = new Transformer(first!).metadataSync();
    assert.deepEqual([meta.width, meta.height], [48, 48]);
    assert.equal(service.cacheSize.entries, 1);
    const [again] = await service.png(fixtureData, ['5'], 48);
    assert.equal(again, first, 'served from the cache');
    const texts = await service.pairs(fixtureData, ['5', 'nope']);
    assert.ok(texts.get('5')!.caption.length > 0);
    assert.equal(typeof texts.get('5')!.noisy, 'boolean');
    assert.equal(texts.get('nope'), undefined);
    const entries = await service.images(fixtureData, ['5', 'nope'], 48);
    assert.match(entries[0].uri!, /^data:image\/png;base64,/);
    assert.match(entries[1].problem!, /No pair with id nope/);
    await service.close();
  });

  test('images inside WebDataset tar shards', async () => {
    const dir = await tempDir('sift-thumbs-');
    await writeTar(path.join(dir, 'shards', '00000.tar'), [
      ['cat.png', png(20, 10, RED)],
      ['cat.txt', 'a red cat'],
      ['dog.png', png(10, 10, GREEN)],
      ['dog.txt', '<script>dog</script>'],
    ]);
    const service = new ThumbnailService();
    const spec = path.join(dir, 'shards');
    const [cat, dog] = await service.png(spec, ['cat', 'dog'], 16);
    const pixels = (bytes: Uint8Array) => new Transformer(bytes).rawPixelsSync();
    assert.deepEqual([...pixels(cat!).subarray(0, 3)], [255, 0, 0]);
    assert.deepEqual([...pixels(dog!).subarray(0, 3)], [0, 255, 0]);
    assert.equal((await service.pairs(spec, ['dog'])).get('dog')?.caption, '<script>dog</script>');
    await service.close();
  });

  test('the cache keeps within its byte budget, dropping the least recently used', async () => {
    const pngBytes = await encodePng(new Float32Array(8 * 8 * 3).fill(0.5), 8);
    const fake = (size: number): ImageTextDataset =>
      ({
        size: 100,
        resolution: size,
        id: (i: number) => String(i),
        caption: (i: number) => `caption ${i}`,
        label: () => undefined,
        noisy: () => undefined,
        loadImages: async (indices: readonly number[]) => new Float32Array(indices.length * size * size * 3).fill(0.25),
        close: async () => {},
      }) as unknown as ImageTextDataset;
    const service = new ThumbnailService({ open: async (_spec, { resolution }) => fake(resolution), cacheBytes: pngBytes.byteLength * 3 + 10 });
    await service.png('fake', ['1', '2', '3'], 8);
    await service.png('fake', ['1'], 8);
    await service.png('fake', ['4'], 8);
    assert.equal(service.cacheSize.entries, 3);
    assert.ok(service.cacheSize.bytes <= pngBytes.byteLength * 3 + 10);
    await service.close();
  });

  test('a relative data path resolves against the workspace folders', () => {
    assert.equal(resolveDataSpec('builtin:train', ['/ws']), 'builtin:train');
    assert.equal(resolveDataSpec('/abs/data', ['/ws']), '/abs/data');
    assert.equal(resolveDataSpec('data/x', ['/nowhere', '/also-nowhere']), path.resolve('/nowhere', 'data/x'));
    const root = tmpDir();
    assert.equal(resolveDataSpec(path.basename(root), ['/nowhere', path.dirname(root)]), root);
  });
});

describe('InspectorModel', () => {
  const root = tmpDir();
  const dir = writeFixtureRun(root, { id: 'jest', method: 'jest', steps: 30, pace: 1, status: 'running' });
  const thumbnails = new ThumbnailService();

  test('snapshot: the latest step (or the one restored), the run and its steps', async () => {
    const model = new InspectorModel(dir, { thumbnails });
    const [snapshot] = (await model.snapshot(defaultInspectorView)).map(valid) as Extract<InspectorHostMessage, { type: 'snapshot' }>[];
    assert.equal(snapshot.payload.view?.step, 15, 'a running fixture has half its steps');
    assert.deepEqual(snapshot.payload.stepRanges, [[1, 15]]);
    assert.equal(snapshot.payload.live, true);
    assert.equal(snapshot.payload.run.scored, true);
    assert.ok(snapshot.payload.view!.chosen.every((pair) => pair.caption.length > 0));
    const restored = (await model.snapshot({ ...defaultInspectorView, step: 4 })) as Extract<InspectorHostMessage, { type: 'snapshot' }>[];
    assert.equal(restored[0].payload.view?.step, 4);
  });

  test('select-step finds the step or the nearest before it; follow shows each new step', async () => {
    // Its own copy: the worker's lines are written to the file, as a worker does before reporting them.
    const dir = writeFixtureRun(tmpDir(), { id: 'jest', method: 'jest', steps: 30, pace: 1, status: 'running' });
    const file = path.join(dir, 'selections.jsonl');
    const write = (l: SelectionLine): SelectionLine => (fs.appendFileSync(file, `${JSON.stringify(l)}\n`), l);
    const model = new InspectorModel(dir, { thumbnails });
    const [step] = (await model.selectStep(100)).map(valid) as Extract<InspectorHostMessage, { type: 'step' }>[];
    assert.equal(step.payload.step, 15);
    assert.equal(((await model.selectStep(0))[0] as Extract<InspectorHostMessage, { type: 'step' }>).payload.step, 1);
    const next: SelectionLine = { ...line, step: 16, ids: ['1', '2', '3', '4'] };
    assert.deepEqual((await model.appendSelection(write(next))).map((m) => m.type), ['steps']);
    model.setFollow(true);
    const followed = (await model.appendSelection(write({ ...next, step: 17 }))).map(valid);
    assert.deepEqual(followed.map((m) => m.type), ['steps', 'step']);
    assert.deepEqual((followed[0] as Extract<InspectorHostMessage, { type: 'steps' }>).payload.stepRanges, [[1, 17]]);
    // A resume from step 9 replaces the file by the lines up to it, then writes step 10 again: steps past it are gone.
    const kept = fs.readFileSync(file, 'utf8').split('\n').filter((l) => l && JSON.parse(l).step <= 9);
    fs.writeFileSync(`${file}.tmp`, kept.map((l) => `${l}\n`).join(''));
    fs.renameSync(`${file}.tmp`, file);
    const resumed = (await model.appendSelection(write({ ...next, step: 10 })))[0] as Extract<InspectorHostMessage, { type: 'steps' }>;
    assert.deepEqual(resumed.payload.stepRanges, [[1, 10]]);
    assert.equal((model.updateStatus('finished') as Extract<InspectorHostMessage, { type: 'steps' }>).payload.live, false);
  });

  test('a step its worker wrote after the inspector opened is read from the file when shown', async () => {
    const live = writeFixtureRun(tmpDir(), { id: 'live', method: 'jest', steps: 5, pace: 1 });
    const model = new InspectorModel(live, { thumbnails });
    await model.snapshot(defaultInspectorView);
    const written: SelectionLine[] = [6, 7].map((step) => ({ ...line, step, ids: [String(step), '2', '3', '4'] }));
    for (const next of written) {
      fs.appendFileSync(path.join(live, 'selections.jsonl'), `${JSON.stringify(next)}\n`);
      await model.appendSelection(next);
    }
    const [six] = (await model.selectStep(6)).map(valid) as Extract<InspectorHostMessage, { type: 'step' }>[];
    assert.deepEqual(six.payload.chosen.map((pair) => pair.id), ['6', '2', '3', '4']);
    const [five] = (await model.selectStep(5)).map(valid) as Extract<InspectorHostMessage, { type: 'step' }>[];
    assert.equal(five.payload.step, 5);
  });

  test('a line reported while the index is read, and a resume that rewrote the file, both leave every step readable', async () => {
    const dir = writeFixtureRun(tmpDir(), { id: 'resumed', method: 'jest', steps: 6, pace: 1 });
    const file = path.join(dir, 'selections.jsonl');
    const lines = fs.readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as SelectionLine);
    const model = new InspectorModel(dir, { thumbnails });
    // Step 6 was written before it was reported, so the index reads it too: not a resume.
    await model.appendSelection(lines[5]);
    const shown = async (step: number): Promise<string[]> => {
      const [view] = (await model.selectStep(step)).map(valid) as Extract<InspectorHostMessage, { type: 'step' }>[];
      assert.equal(view?.type, 'step', `step ${step} shows`);
      assert.equal(view.payload.step, step);
      return view.payload.chosen.map((pair) => pair.id);
    };
    assert.deepEqual(await shown(5), lines[4].ids);
    // A resume from step 3: the file is replaced by its first three lines, then step 4 is trained again.
    const again: SelectionLine = { ...lines[3], ids: ['7', '8', '9', '10'] };
    const replacement = `${file}.new`;
    fs.writeFileSync(replacement, [...lines.slice(0, 3), again].map((l) => `${JSON.stringify(l)}\n`).join(''));
    fs.renameSync(replacement, file);
    const [steps] = (await model.appendSelection(again)).map(valid) as Extract<InspectorHostMessage, { type: 'steps' }>[];
    assert.deepEqual(steps.payload.stepRanges, [[1, 4]]);
    assert.deepEqual(await shown(2), lines[1].ids);
    // Step 5 again, after the next line: read from the rewritten file, at its new place.
    const five: SelectionLine = { ...lines[4], ids: ['11', '12', '13', '14'] };
    fs.appendFileSync(file, `${JSON.stringify(five)}\n`);
    await model.appendSelection(five);
    await model.appendSelection({ ...five, step: 6 });
    assert.deepEqual(await shown(4), ['7', '8', '9', '10']);
    assert.deepEqual(await shown(5), ['11', '12', '13', '14']);
  });

  test('thumbnails of a step come as PNG data URIs', async () => {
    const model = new InspectorModel(dir, { thumbnails });
    const [shown] = (await model.selectStep(5)) as Extract<InspectorHostMessage, { type: 'step' }>[];
    const images = valid(await model.images([shown.payload.chosen[0].id], 32)) as Extract<InspectorHostMessage, { type: 'images' }>;
    assert.match(images.payload.images[0].uri!, /^data:image\/png;base64,/);
  });

  test('a dataset that cannot be opened is a notice, and the step still shows its ids and scores', async () => {
    const broken = writeFixtureRun(tmpDir(), { id: 'broken', method: 'jest', steps: 3, pace: 1, config: { data: '/nowhere/at/all.jsonl' } });
    const model = new InspectorModel(broken, { thumbnails });
    const messages = (await model.selectStep(null)).map(valid);
    assert.equal(messages[0].type, 'notice');
    assert.match((messages[0] as Extract<InspectorHostMessage, { type: 'notice' }>).payload.message, /Cannot open the run's data/);
    const step = (messages[1] as Extract<InspectorHostMessage, { type: 'step' }>).payload;
    assert.ok(step.chosen.every((pair) => pair.missing && pair.scores.learnability !== undefined));
    await thumbnails.close();
  });
});
