import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  COLOURS,
  SHAPES,
  captionDescribes,
  createSyntheticDataset,
  isSyntheticDataset,
  openBuiltin,
  type SyntheticDataset,
  type SyntheticOptions,
} from '../../src/core/data/synthetic.ts';
import { DataError } from '../../src/core/data/types.ts';

const range = (start: number, end: number): number[] => Array.from({ length: end - start }, (_, i) => start + i);

function dataset(overrides: Partial<SyntheticOptions> = {}): SyntheticDataset {
  return createSyntheticDataset({ seed: 3, size: 5000, resolution: 32, split: 'train', ...overrides });
}

test('the same seed gives identical captions and pixels; another seed does not', async () => {
  const a = dataset();
  const b = dataset();
  const c = dataset({ seed: 4 });
  const indices = range(0, 200);
  assert.deepEqual(indices.map((i) => a.caption(i)), indices.map((i) => b.caption(i)));
  assert.deepEqual(indices.map((i) => a.kind(i)), indices.map((i) => b.kind(i)));
  assert.deepEqual(await a.loadImages(indices), await b.loadImages(indices));
  const sameCaption = indices.filter((i) => a.caption(i) === c.caption(i)).length;
  assert.ok(sameCaption < 20, `${sameCaption} of 200 captions unchanged by the seed`);
  const pixelsA = await a.loadImages(range(0, 20));
  const pixelsC = await c.loadImages(range(0, 20));
  assert.notDeepEqual(pixelsA, pixelsC);
});

test('rows are random access: loading in any order or alone gives the same pixels', async () => {
  const ds = dataset();
  const size = 32 * 32 * 3;
  const batch = await ds.loadImages([17, 3, 4999, 17]);
  assert.equal(batch.length, 4 * size);
  for (const [n, index] of [17, 3, 4999, 17].entries()) {
    assert.deepEqual(batch.subarray(n * size, (n + 1) * size), await ds.loadImages([index]));
  }
  await assert.rejects(ds.loadImages([5000]), RangeError);
  assert.throws(() => ds.caption(-1), RangeError);
});

test('train, eval and curated splits share no scene', () => {
  const key = (ds: SyntheticDataset, i: number): string => JSON.stringify(ds.describe(i).scene);
  const train = dataset({ size: 3000 });
  const evalSplit = dataset({ split: 'eval', size: 1000 });
  const curated = dataset({ split: 'curated', size: 1000 });
  const trainScenes = new Set(range(0, 3000).map((i) => key(train, i)));
  const evalScenes = new Set(range(0, 1000).map((i) => key(evalSplit, i)));
  for (const i of range(0, 1000)) {
    assert.ok(!trainScenes.has(key(evalSplit, i)), `eval ${i} repeats a train scene`);
    assert.ok(!trainScenes.has(key(curated, i)), `curated ${i} repeats a train scene`);
    assert.ok(!evalScenes.has(key(curated, i)), `curated ${i} repeats an eval scene`);
  }
});

test('eval and curated come from the same distribution as train', () => {
  const layoutShares = (ds: SyntheticDataset): Record<string, number> => {
    const counts: Record<string, number> = {};
    for (const i of range(0, 2000)) {
      const layout = ds.describe(i).scene.layout;
      counts[layout] = (counts[layout] ?? 0) + 1 / 2000;
    }
    return counts;
  };
  const train = layoutShares(dataset());
  for (const split of ['eval', 'curated'] as const) {
    const other = layoutShares(dataset({ split }));
    for (const layout of ['single', 'count', 'pair']) {
      assert.ok(Math.abs(train[layout] - other[layout]) < 0.04, `${split} ${layout}: ${other[layout]} vs train ${train[layout]}`);
    }
  }
});

test('noise shares match the options on 5000 rows, and noisy() is kind() === swapped', () => {
  const ds = dataset();
  const counts = { clean: 0, swapped: 0, duplicate: 0, degraded: 0 };
  for (let i = 0; i < ds.size; i++) {
    const kind = ds.kind(i);
    counts[kind]++;
    assert.equal(ds.noisy(i), kind === 'swapped');
  }
  const share = (n: number): number => n / ds.size;
  console.log('noise shares on 5000 train rows:', Object.fromEntries(Object.entries(counts).map(([k, n]) => [k, share(n)])));
  assert.ok(Math.abs(share(counts.swapped) - 0.4) < 0.03, `swapped ${share(counts.swapped)}`);
  assert.ok(Math.abs(share(counts.duplicate) - 0.1) < 0.02, `duplicate ${share(counts.duplicate)}`);
  assert.ok(Math.abs(share(counts.degraded) - 0.1) < 0.02, `degraded ${share(counts.degraded)}`);

  const custom = dataset({ swapFraction: 0.2, duplicateFraction: 0, degradeFraction: 0.3 });
  const kinds = range(0, 5000).map((i) => custom.kind(i));
  assert.ok(Math.abs(kinds.filter((k) => k === 'swapped').length / 5000 - 0.2) < 0.03);
  assert.equal(kinds.filter((k) => k === 'duplicate').length, 0);
  assert.ok(Math.abs(kinds.filter((k) => k === 'degraded').length / 5000 - 0.3) < 0.03);
  // The noise plan never changes what row i shows.
  for (const i of range(0, 300)) {
    if (ds.kind(i) !== 'duplicate' && custom.kind(i) !== 'duplicate') {
      assert.deepEqual(ds.describe(i).scene, custom.describe(i).scene);
    }
  }

  for (const split of ['eval', 'curated'] as const) {
    const clean = dataset({ split, size: 1000 });
    for (let i = 0; i < clean.size; i++) {
      assert.equal(clean.kind(i), 'clean');
      assert.equal(clean.noisy(i), false);
    }
  }
});

test('a swapped caption describes another image, never its own', () => {
  const ds = dataset();
  let swapped = 0;
  for (let i = 0; i < ds.size; i++) {
    const row = ds.describe(i);
    assert.equal(row.caption, ds.caption(i));
    if (row.kind !== 'swapped') {
      assert.equal(row.caption, row.trueCaption, `row ${i} (${row.kind})`);
      continue;
    }
    swapped++;
    assert.notEqual(row.captionIndex, i);
    assert.notEqual(row.caption, row.trueCaption);
    assert.ok(!captionDescribes(ds.describe(row.captionIndex).scene, row.scene), `row ${i}: "${row.caption}" fits its image`);
  }
  assert.ok(swapped > 1500);
});

test('a near-duplicate shows an earlier row\'s scene with its caption, barely perturbed', async () => {
  const ds = dataset();
  const size = 32 * 32 * 3;
  const duplicates = range(0, 1000).filter((i) => ds.kind(i) === 'duplicate').slice(0, 40);
  assert.ok(duplicates.length > 20);
  for (const i of duplicates) {
    const row = ds.describe(i);
    assert.ok(row.sceneIndex < i);
    assert.equal(ds.caption(i), row.trueCaption);
    assert.equal(ds.label(i), `${row.scene.objects[0].colour} ${row.scene.objects[0].shape}`);
    // The earlier row may itself be degraded or a duplicate; compare against the clean render of its scene.
    const source = ds.describe(row.sceneIndex);
    assert.deepEqual(source.scene, row.scene);
    const [own, clean] = [await ds.loadImages([i]), await dataset({ swapFraction: 0, duplicateFraction: 0, degradeFraction: 0 }).loadImages([row.sceneIndex])];
    let diff = 0;
    for (let k = 0; k < size; k++) diff += Math.abs(own[k] - clean[k]);
    assert.ok(diff / size < 0.04, `duplicate ${i}: mean difference ${diff / size}`);
    assert.ok(diff > 0, `duplicate ${i} is an exact copy`);
  }
});

test('degraded rows keep their true caption and visibly change the pixels', async () => {
  const ds = dataset();
  const clean = dataset({ swapFraction: 0, duplicateFraction: 0, degradeFraction: 0 });
  const size = 32 * 32 * 3;
  const degraded = range(0, 600).filter((i) => ds.kind(i) === 'degraded');
  const seen = new Set<string>();
  for (const i of degraded) {
    const row = ds.describe(i);
    seen.add(row.degradation ?? 'none');
    assert.equal(ds.caption(i), row.trueCaption);
    assert.equal(ds.noisy(i), false);
    const [spoiled, original] = [await ds.loadImages([i]), await clean.loadImages([i])];
    let largest = 0;
    for (let k = 0; k < size; k++) largest = Math.max(largest, Math.abs(spoiled[k] - original[k]));
    assert.ok(largest > 0.15, `degraded ${i} (${row.degradation}) barely changed: at most ${largest}`);
  }
  assert.deepEqual([...seen].sort(), ['blur', 'low-contrast', 'noise']);
});

test('pixels are in [0, 1], HWC RGB, and no image is blank', async () => {
  for (const resolution of [16, 32, 64]) {
    const ds = dataset({ resolution, size: 300 });
    const pixels = await ds.loadImages(range(0, 300));
    const size = resolution * resolution * 3;
    assert.equal(pixels.length, 300 * size);
    for (let n = 0; n < 300; n++) {
      let min = Infinity;
      let max = -Infinity;
      for (let k = n * size; k < (n + 1) * size; k++) {
        const v = pixels[k];
        assert.ok(v >= 0 && v <= 1 && Number.isFinite(v), `image ${n} at ${resolution}px has value ${v}`);
        min = Math.min(min, v);
        max = Math.max(max, v);
      }
      assert.ok(max - min > 0.05, `image ${n} at ${resolution}px is blank (range ${max - min})`);
    }
  }
});

test('the named colours of the objects appear in the pixels', async () => {
  const ds = dataset({ split: 'eval', size: 400 });
  const pixels = await ds.loadImages(range(0, 400));
  const size = 32 * 32 * 3;
  for (let i = 0; i < 400; i++) {
    for (const object of ds.describe(i).scene.objects) {
      const [r, g, b] = COLOURS[object.colour];
      let matches = 0;
      for (let k = i * size; k < (i + 1) * size; k += 3) {
        const distance = Math.abs(pixels[k] - r) + Math.abs(pixels[k + 1] - g) + Math.abs(pixels[k + 2] - b);
        if (distance < 0.2) matches++;
      }
      // The smallest object (a small ring, cross or triangle) still covers a handful of pixels at 32 px.
      assert.ok(matches >= 4, `row ${i} "${ds.caption(i)}": only ${matches} ${object.colour} pixels`);
    }
  }
});

test('objects sit inside the image and apart from each other, relations hold', () => {
  const ds = dataset({ split: 'eval', size: 2000 });
  for (let i = 0; i < ds.size; i++) {
    const { scene } = ds.describe(i);
    for (const o of scene.objects) {
      assert.ok(o.x - o.radius >= 0 && o.x + o.radius <= 1 && o.y - o.radius >= 0 && o.y + o.radius <= 1, `row ${i} leaves the frame`);
    }
    for (const [a, b] of scene.objects.flatMap((a, j) => scene.objects.slice(j + 1).map((b) => [a, b] as const))) {
      const apart = Math.abs(a.x - b.x) >= a.radius + b.radius || Math.abs(a.y - b.y) >= a.radius + b.radius;
      assert.ok(apart, `row ${i}: objects overlap`);
    }
    if (scene.layout === 'pair') {
      const [s, o] = scene.objects;
      const dx = o.x - s.x;
      const dy = o.y - s.y;
      const holds = { above: dy > 0 && dy >= 2 * Math.abs(dx), below: dy < 0 && -dy >= 2 * Math.abs(dx), 'left of': dx > 0 && dx >= 2 * Math.abs(dy), 'right of': dx < 0 && -dx >= 2 * Math.abs(dy) };
      assert.ok(holds[scene.relation!], `row ${i}: "${ds.caption(i)}" with dx=${dx}, dy=${dy}`);
    }
  }
});

test('every resolution renders the same scene', async () => {
  const ds64 = dataset({ resolution: 64, size: 50 });
  const ds32 = dataset({ resolution: 32, size: 50 });
  const [big, small] = [await ds64.loadImages(range(0, 50)), await ds32.loadImages(range(0, 50))];
  let total = 0;
  let count = 0;
  for (let n = 0; n < 50; n++) {
    if (ds32.kind(n) === 'degraded' || ds32.kind(n) === 'duplicate') continue; // pixel noise differs per resolution
    for (let y = 0; y < 32; y++) {
      for (let x = 0; x < 32; x++) {
        for (let c = 0; c < 3; c++) {
          const at = (yy: number, xx: number): number => big[n * 64 * 64 * 3 + (yy * 64 + xx) * 3 + c];
          const pooled = (at(2 * y, 2 * x) + at(2 * y, 2 * x + 1) + at(2 * y + 1, 2 * x) + at(2 * y + 1, 2 * x + 1)) / 4;
          total += Math.abs(pooled - small[n * 32 * 32 * 3 + (y * 32 + x) * 3 + c]);
          count++;
        }
      }
    }
  }
  assert.ok(total / count < 0.02, `64 px pooled to 32 px differs from 32 px by ${total / count}`);
});

test('captions are compositional lower-case English from a small vocabulary, with thousands of distinct ones', () => {
  const ds = dataset({ size: 20000 });
  const vocabulary = new Set<string>();
  const captions = new Set<string>();
  for (let i = 0; i < ds.size; i++) {
    const caption = ds.caption(i);
    // Single objects are sometimes captioned tersely ("a circle", "a red circle", "a small circle").
    assert.match(caption, /^((a|two|three) (small|large) [a-z]+ [a-z]+( (above|below|left of|right of) a (small|large) [a-z]+ [a-z]+)?|a( (small|large))?( [a-z]+)? [a-z]+)( on a (light|dark) background)?$/);
    captions.add(caption);
    for (const word of caption.split(' ')) vocabulary.add(word);
  }
  console.log(`distinct captions in 20000 train rows: ${captions.size}; vocabulary: ${vocabulary.size} words`);
  assert.ok(captions.size > 3000);
  assert.ok(vocabulary.size < 40);
});

test('hard negatives: many caption pairs differ in exactly one word', () => {
  const ds = dataset({ split: 'eval', size: 2000 });
  const captions = [...new Set(range(0, 2000).map((i) => ds.caption(i)))].map((c) => c.split(' '));
  let oneWordApart = 0;
  for (let a = 0; a < captions.length; a++) {
    for (let b = a + 1; b < captions.length; b++) {
      if (captions[a].length !== captions[b].length) continue;
      let differences = 0;
      for (let k = 0; k < captions[a].length && differences < 2; k++) if (captions[a][k] !== captions[b][k]) differences++;
      if (differences === 1) oneWordApart++;
    }
  }
  console.log(`caption pairs one word apart among 2000 eval rows: ${oneWordApart}`);
  assert.ok(oneWordApart > 1000, `${oneWordApart}`);
});

test('labels are the colour and shape of the first object; ids, skips and source follow the interface', async () => {
  const ds = await openBuiltin('builtin:eval?size=300', { resolution: 32 });
  assert.ok(isSyntheticDataset(ds));
  assert.equal(ds.format, 'builtin');
  assert.equal(ds.source, 'builtin:eval?size=300');
  assert.equal(ds.size, 300);
  assert.equal(ds.resolution, 32);
  assert.deepEqual(ds.skips, { rowsSeen: 300, rowsUsed: 300, counts: {}, first: [] });
  const shapes = new Set<string>();
  for (let i = 0; i < ds.size; i++) {
    assert.equal(ds.id(i), String(i));
    const [colour, label] = ds.label(i)!.split(' ');
    assert.ok((SHAPES as readonly string[]).includes(label));
    assert.ok(ds.describe(i).scene.objects[0].colour === colour);
    // The first object's shape is the first shape word of the caption, whatever its detail.
    const firstShape = ds.caption(i).split(' ').find((word) => (SHAPES as readonly string[]).includes(word) || (SHAPES as readonly string[]).some((shape) => word.startsWith(shape)));
    assert.ok(firstShape?.startsWith(label), `${ds.caption(i)} → ${label}`);
    shapes.add(label);
  }
  assert.equal(shapes.size, SHAPES.length);
  await ds.close();
});

test('openBuiltin applies defaults and parameters', async () => {
  let progress: [number, number | undefined] | undefined;
  const train = await openBuiltin('builtin:train', { resolution: 16, onProgress: (done, total) => (progress = [done, total]) });
  assert.equal(train.size, 20000);
  assert.deepEqual(progress, [20000, 20000]);
  assert.equal((await openBuiltin('builtin:eval', { resolution: 16 })).size, 1000);
  assert.equal((await openBuiltin('builtin:curated', { resolution: 16 })).size, 4000);
  const custom = await openBuiltin('builtin:train?size=2000&seed=1&swap=0&dup=0.5&degrade=0', { resolution: 16 });
  assert.equal(custom.size, 2000);
  const kinds = range(0, 2000).map((i) => custom.kind(i));
  assert.ok(!kinds.includes('swapped') && !kinds.includes('degraded'));
  assert.ok(Math.abs(kinds.filter((k) => k === 'duplicate').length / 2000 - 0.5) < 0.05);
  const sameSeed = await openBuiltin('builtin:train?seed=1&size=2000', { resolution: 16 });
  assert.deepEqual(custom.describe(5).scene, sameSeed.describe(5).scene);
});

test('bad specs and options are DataErrors naming the parameter and what it accepts', async () => {
  const cases: [string, RegExp][] = [
    ['builtin:test', /builtin:train, builtin:eval or builtin:curated/],
    ['builtin', /builtin:train/],
    ['builtin:train?colour=red', /unknown parameter "colour".*size.*seed.*swap.*dup.*degrade/],
    ['builtin:train?size=abc', /size=abc.*whole number from 1/],
    ['builtin:train?size=0', /size=0.*whole number from 1/],
    ['builtin:train?size=1.5', /size.*whole number/],
    ['builtin:train?seed=-1', /seed=-1.*whole number from 0 to 4294967295/],
    ['builtin:train?swap=1.5', /swap=1\.5.*fraction from 0 to 1/],
    ['builtin:train?dup=', /dup=.*fraction/],
    ['builtin:train?degrade=x', /degrade=x.*fraction/],
    ['builtin:train?swap=0.6&dup=0.3&degrade=0.2', /at most 1/],
    ['builtin:eval?swap=0.1', /swap applies to builtin:train only/],
    ['builtin:train?size=10&size=20', /"size" is given twice/],
  ];
  for (const [spec, message] of cases) {
    await assert.rejects(openBuiltin(spec, { resolution: 32 }), (error: unknown) => {
      assert.ok(error instanceof DataError, `${spec}: ${String(error)}`);
      assert.match(error.message, message, spec);
      return true;
    });
  }
  assert.throws(() => dataset({ resolution: 0 }), /resolution must be a whole number/);
  assert.throws(() => dataset({ swapFraction: -0.1 }), /swap fraction must be a number from 0 to 1/);
  assert.throws(() => dataset({ split: 'curated', degradeFraction: 0.1 }), /train split only/);
  assert.throws(() => dataset({ split: 'nope' as never }), /unknown split "nope"/);
});

test('rendering speed (printed, not asserted)', async () => {
  for (const [split, resolution] of [['train', 32], ['eval', 32], ['eval', 16], ['eval', 64]] as const) {
    const ds = dataset({ split, resolution, size: 20000 });
    await ds.loadImages(range(0, 1000));
    const n = resolution === 64 ? 5000 : 20000;
    const start = performance.now();
    for (let first = 0; first < n; first += 500) await ds.loadImages(range(first, first + 500)); // super-batch-sized calls
    const seconds = (performance.now() - start) / 1000;
    console.log(`render ${split} at ${resolution}px: ${Math.round(n / seconds)} images/s`);
  }
});
