/**
 * JEST end to end on small built-in data: a reference run, its cached pool
 * embeddings (and their invalidation), selecting runs of every method, and
 * the comparison.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { openDataset } from '../../src/core/data/open';
import { DualEncoder, forwardFlops } from '../../src/core/model/dualEncoder';
import { Rng } from '../../src/core/random';
import { defaultTrainConfig, modelConfigFor, referenceDefaults, resolveConfig, savedConfig, validateConfig, type TrainConfig } from '../../src/core/train/config';
import { embedCaptions } from '../../src/core/train/eval';
import { Learner } from '../../src/core/train/learner';
import { AdamW } from '../../src/core/train/optimizer';
import { loadReference, noiseSeparation, referenceEmbeddings } from '../../src/core/train/reference';
import { resumeRun, trainRun } from '../../src/core/train/run';
import { compareRuns, comparisonMarkdown } from '../../src/core/runs/compare';
import { readJsonl } from '../../src/core/runs/jsonl';
import { readRunJson, type MetricLine, type SelectionLine } from '../../src/core/runs/record';
import { stepView } from '../../src/panels/inspector';
import { tinyModel } from '../tinyModel';
import { jsonl, png, tempDir, writeFiles } from './data-fixtures';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'sift-jest-'));
const referenceDir = path.join(root, 'reference');

/** A model small enough that a step takes milliseconds. */
const tiny: Partial<TrainConfig> = {
  ...tinyModel,
  evalData: 'builtin:eval?size=48',
  evalSize: 48,
};

before(async () => {
  await trainRun(resolveConfig(tiny, { data: 'builtin:curated?size=200', steps: 4, evalEvery: 4, runDir: referenceDir }));
});

test('every selecting method trains, records its picks and counts scoring FLOPs apart', async () => {
  for (const method of ['jest', 'independent', 'hard-learner', 'easy-reference'] as const) {
    for (const loss of ['sigmoid', 'softmax'] as const) {
      const runDir = path.join(root, `${method}-${loss}`);
      await trainRun(resolveConfig(tiny, { data: 'builtin:train?size=300', method, loss, filterRatio: 0.5, chunks: 4, reference: referenceDir, steps: 3, evalEvery: 3, runDir }));
      const { rows: selections } = readJsonl<SelectionLine>(path.join(runDir, 'selections.jsonl'));
      assert.deepEqual(selections.map((s) => s.step), [1, 2, 3], `${method}/${loss}`);
      for (const line of selections) {
        assert.equal(line.ids.length, 8);
        assert.equal(new Set(line.ids).size, 8, 'picks are distinct');
        assert.equal(line.candidates, 16, 'super-batch = b / (1 - F)');
        assert.equal(line.pick_logit?.length, 8);
        if (method !== 'easy-reference') assert.equal(line.learner_loss?.length, 8);
        if (method !== 'hard-learner') assert.equal(line.reference_loss?.length, 8);
        const w = defaultTrainConfig.learnerWeight;
        if (line.learnability) line.learnability.forEach((l, i) => assert.ok(Math.abs(l - (w * line.learner_loss![i] - line.reference_loss![i])) < 0.02));
        assert.ok(JSON.stringify(line).length < 2048 * 8 / 64 + 600, 'compact line');
      }
      const trains = readJsonl<MetricLine>(path.join(runDir, 'metrics.jsonl')).rows.filter((r) => r.type === 'train');
      const last = trains[trains.length - 1];
      assert.ok(last.type === 'train');
      assert.equal(last.examples_seen, 24);
      assert.equal(last.examples_scored, 48);
      assert.ok(last.flops_score > 0 || method === 'easy-reference');
      assert.ok(last.flops_reference > 0 || method === 'hard-learner');
      assert.equal(last.flops, last.flops_train + last.flops_score + last.flops_reference);
      assert.ok(last.picked_noisy !== undefined, 'the built-in data know which pairs are noisy');
    }
  }
});

test('every superBatchEvery steps a selections line keeps the rejected candidates and the terms of each pick logit; the inspector shows them', async () => {
  for (const loss of ['sigmoid', 'softmax'] as const) {
    const runDir = path.join(root, `super-batch-${loss}`);
    await trainRun(resolveConfig(tiny, { data: 'builtin:train?size=300', method: 'jest', loss, filterRatio: 0.5, chunks: 4, reference: referenceDir, steps: 4, evalEvery: 4, superBatchEvery: 2, runDir }));
    const lines = readJsonl<SelectionLine>(path.join(runDir, 'selections.jsonl')).rows;
    assert.deepEqual(lines.map((line) => line.rejected !== undefined), [false, true, false, true], loss);
    for (const line of lines.filter((l) => l.rejected)) {
      const rejected = line.rejected!;
      assert.equal(rejected.ids.length, 8, 'the other half of the 16 candidates');
      assert.deepEqual(new Set([...line.ids, ...rejected.ids]).size, 16, 'picks and rejected are the whole super-batch');
      rejected.learnability!.forEach((l, i) => assert.ok(Math.abs(l - (defaultTrainConfig.learnerWeight * rejected.learner_loss![i] - rejected.reference_loss![i])) < 0.02));
      // Softmax batch scores are not sums of pair terms: only sigmoid runs split the logit exactly.
      if (loss === 'softmax') {
        assert.equal(line.contributions, undefined);
        continue;
      }
      const terms = line.contributions!;
      assert.equal(terms.length, 8);
      terms.forEach((entry, p) => {
        const drawnBefore = Math.floor(p / 2) * 2;
        assert.equal(entry.from.length, drawnBefore, `pick ${p} has every earlier-chunk batch-mate (fewer than 8)`);
        assert.ok(Math.abs(entry.own - line.learnability![p]) < 0.02, 'own = its learnability');
        const total = entry.own + entry.from.reduce((sum, [, term]) => sum + term, 0);
        assert.ok(Math.abs(total - line.pick_logit![p]) < 0.02 * (1 + Math.abs(line.pick_logit![p])), `pick ${p}: ${total} vs ${line.pick_logit![p]}`);
      });
      const view = stepView('run', line, new Map(), { method: 'jest', chunks: 4, jointNormalization: 'sum' });
      assert.equal(view.rejected?.length, 8);
      assert.ok(view.rejected!.every((item) => item.order === -1 && item.scores.learnability !== undefined));
      assert.ok(view.chosen.every((item) => item.split?.exact), 'every pick split exactly');
    }
  }
});

test('noise separation: the AUC of the positive-pair similarity, clean above swapped; ties count half; undefined without both kinds', () => {
  // 1-d embeddings: similarity = image × text.
  const embeddings = (sims: number[]) => ({ image: Float32Array.from(sims), text: Float32Array.from(sims.map(() => 1)), dim: 1 });
  assert.equal(noiseSeparation(embeddings([0.9, 0.8, 0.1, 0.2]), [false, false, true, true])?.auc, 1);
  assert.equal(noiseSeparation(embeddings([0.1, 0.2, 0.9, 0.8]), [false, false, true, true])?.auc, 0);
  // Clean {0.5, 0.9} vs swapped {0.5, 0.1}: pairs (0.5>0.1)=1, (0.5=0.5)=½, (0.9>0.5)=1, (0.9>0.1)=1 → 3.5 / 4.
  assert.deepEqual(noiseSeparation(embeddings([0.5, 0.9, 0.5, 0.1]), [false, false, true, true]), { auc: 0.875, clean: 2, noisy: 2 });
  assert.equal(noiseSeparation(embeddings([0.5, 0.9]), [false, false]), undefined);
  assert.equal(noiseSeparation(embeddings([0.5, 0.9]), [false, undefined]), undefined);
});

test('a JEST run on built-in data records how well its reference separates swapped captions, and compare reports it', async () => {
  const runDir = path.join(root, 'separation');
  const stages: string[] = [];
  await trainRun(resolveConfig(tiny, { data: 'builtin:train?size=300', method: 'jest', filterRatio: 0.5, reference: referenceDir, steps: 2, evalEvery: 2, runDir }), { onStage: (message) => stages.push(message) });
  const json = JSON.parse(fs.readFileSync(path.join(runDir, 'run.json'), 'utf8'));
  const auc = json.referenceRun.noiseAuc;
  assert.ok(typeof auc === 'number' && auc >= 0 && auc <= 1, `AUC ${auc}`);
  assert.ok(stages.some((stage) => /tells right captions from swapped ones with AUC 0\.\d{3} on this pool \(\d+ of 300 known swapped/.test(stage)), stages.join('\n'));
  const uniformDir = path.join(root, 'separation-uniform');
  await trainRun(resolveConfig(tiny, { data: 'builtin:train?size=300', steps: 2, evalEvery: 2, runDir: uniformDir }));
  const comparison = await compareRuns([uniformDir, runDir]);
  assert.equal(comparison.runs[1].referenceNoiseAuc, auc);
  assert.match(comparisonMarkdown(comparison), new RegExp(`right captions from swapped ones .*: separation ${auc.toFixed(3)}\\.`));
});

test('Flexi-JEST: low-resolution scoring and low-resolution training cost fewer FLOPs', async () => {
  const run = async (name: string, extra: Partial<TrainConfig>): Promise<{ score: number; train: number }> => {
    const runDir = path.join(root, name);
    await trainRun(resolveConfig(tiny, { data: 'builtin:train?size=300', method: 'jest', filterRatio: 0.5, reference: referenceDir, steps: 2, evalEvery: 2, runDir, ...extra }));
    const last = readJsonl<MetricLine>(path.join(runDir, 'metrics.jsonl')).rows.filter((r) => r.type === 'train').pop()!;
    assert.ok(last.type === 'train');
    return { score: last.flops_score, train: last.flops_train };
  };
  const full = await run('flexi-full', { scoreResolution: 'full' });
  const low = await run('flexi-low', { scoreResolution: 'low', lowResFraction: 0.5 });
  assert.ok(low.score < full.score * 0.7, `scoring FLOPs ${low.score} vs ${full.score}`);
  assert.ok(low.train < full.train, `training FLOPs ${low.train} vs ${full.train}`);
});

test('reference embeddings are cached, and rebuilt when a data row or the checkpoint changes', async () => {
  const dir = await tempDir('sift-refcache-');
  const rows = Array.from({ length: 12 }, (_, i) => ({ image: `${i}.png`, caption: `a picture number ${i}` }));
  const files: Record<string, string | Uint8Array> = { 'captions.jsonl': jsonl(rows) };
  rows.forEach((_, i) => (files[`${i}.png`] = png(8, 8, [i * 20, 100, 200 - i * 10])));
  await writeFiles(dir, files);
  const reference = loadReference(referenceDir);
  try {
    const embed = async (): Promise<boolean> => {
      const dataset = await openDataset(dir, { resolution: 32 });
      try {
        return (await referenceEmbeddings(reference, dataset)).computed;
      } finally {
        await dataset.close();
      }
    };
    assert.equal(await embed(), true, 'first use computes');
    assert.equal(await embed(), false, 'second use reads the cache');
    rows[5].caption = 'a changed caption';
    fs.writeFileSync(path.join(dir, 'captions.jsonl'), jsonl(rows));
    assert.equal(await embed(), true, 'a changed caption rebuilds');
    assert.equal(await embed(), false);
    fs.writeFileSync(path.join(dir, '7.png'), png(8, 8, [1, 2, 3]));
    assert.equal(await embed(), true, 'a changed image rebuilds');
  } finally {
    reference.model.dispose();
  }
  // A further-trained reference is another checkpoint: its digest differs, so nothing stale is served.
  const longer = path.join(root, 'reference-longer');
  await trainRun(resolveConfig(tiny, { data: 'builtin:curated?size=200', steps: 6, evalEvery: 6, runDir: longer }));
  const other = loadReference(longer);
  try {
    const dataset = await openDataset(dir, { resolution: 32 });
    const first = await referenceEmbeddings(other, dataset);
    assert.equal(first.computed, true);
    assert.notEqual(first.cacheFile, path.join(referenceDir, 'embeddings'));
    await dataset.close();
  } finally {
    other.model.dispose();
  }
});

test('learnerWeight 0 picks by the reference alone — the same batches as easy-reference, with no learner pass and no scoring FLOPs; a partial weight changes the picks', async () => {
  const pick = async (name: string, extra: Partial<TrainConfig>) => {
    const runDir = path.join(root, name);
    await trainRun(resolveConfig(tiny, { data: 'builtin:train?size=300', filterRatio: 0.5, chunks: 4, reference: referenceDir, steps: 3, evalEvery: 3, runDir }, extra));
    const trains = readJsonl<MetricLine>(path.join(runDir, 'metrics.jsonl')).rows.filter((r) => r.type === 'train');
    const last = trains[trains.length - 1];
    assert.ok(last.type === 'train');
    return { ids: readJsonl<SelectionLine>(path.join(runDir, 'selections.jsonl')).rows.map((s) => s.ids), flopsScore: last.flops_score };
  };
  const easy = await pick('w-easy', { method: 'easy-reference' });
  const w0 = await pick('w-0', { method: 'jest', learnerWeight: 0 });
  const w1 = await pick('w-1', { method: 'jest', learnerWeight: 1 });
  const half = await pick('w-half', { method: 'jest', learnerWeight: 0.5 });
  assert.deepEqual(w0.ids, easy.ids);
  assert.equal(w0.flopsScore, 0);
  assert.ok(half.flopsScore > 0 && half.flopsScore === w1.flopsScore, 'any weight above 0 pays for the learner pass');
  assert.notDeepEqual(half.ids, w1.ids);
  assert.notDeepEqual(half.ids, w0.ids);
  assert.throws(() => resolveConfig({ method: 'jest', reference: referenceDir, learnerWeight: 0, passedReference: 'mix' }), /learnerWeight 0 scores without the learner: set learnerWeight above 0 or passedReference keep/);
});

test('distill: the learner also fits its reference\'s pair probabilities on each batch — selected or uniform — with the same picks, a falling distill_loss and the reference\'s FLOPs counted; without a reference it is a config error', async () => {
  const run = async (name: string, extra: Partial<TrainConfig>) => {
    const runDir = path.join(root, name);
    await trainRun(resolveConfig(tiny, { data: 'builtin:train?size=300', filterRatio: 0.5, chunks: 4, reference: referenceDir, steps: 8, evalEvery: 8, runDir }, extra));
    const trains = readJsonl<MetricLine>(path.join(runDir, 'metrics.jsonl')).rows.flatMap((r) => (r.type === 'train' ? [r] : []));
    return { trains, ids: readJsonl<SelectionLine>(path.join(runDir, 'selections.jsonl')).rows.map((s) => s.ids) };
  };
  const plain = await run('distill-0', { method: 'jest', distill: 0 });
  const distilled = await run('distill-5', { method: 'jest', distill: 5 });
  assert.ok(plain.trains.every((line) => line.distill_loss === undefined));
  const kl = distilled.trains.map((line) => line.distill_loss);
  assert.ok(kl.every((value) => value !== undefined && Number.isFinite(value) && value >= 0), `distill_loss on every step: ${kl}`);
  assert.ok(kl[kl.length - 1]! < kl[0]! * 0.8, `the learner moves towards its reference: ${kl}`);
  assert.deepEqual(distilled.ids[0], plain.ids[0], 'the first picks are the same: distilling changes training, not the first scoring');
  assert.notEqual(distilled.trains[1].loss, plain.trains[1].loss);
  // The targets come from the reference's cached embeddings: only the b × b products are new.
  const extra = distilled.trains[7].flops_reference - plain.trains[7].flops_reference;
  assert.equal(extra, 8 * 2 * 8 * 8 * tiny.embedDim!, 'a b × b product of the reference\'s embeddings a step');
  assert.equal(distilled.trains[7].flops_train, plain.trains[7].flops_train);

  // Uniform batches distill too: the reference's pass is paid for the rows they train on.
  const uniform = await run('distill-uniform', { method: 'uniform', distill: 5 });
  assert.ok(uniform.trains.every((line) => line.distill_loss !== undefined && line.flops_score === 0));
  assert.ok(uniform.trains[7].flops_reference > 0);
  // compare measures against plain uniform, whatever the order, and names the distilling runs.
  await run('distill-plain-uniform', { method: 'uniform' });
  const comparison = await compareRuns(['distill-uniform', 'distill-plain-uniform', 'distill-5'].map((name) => path.join(root, name)));
  assert.equal(comparison.baseline, 'distill-plain-uniform');
  assert.deepEqual(comparison.runs.map((r) => r.method), ['uniform + distill 5', 'uniform', 'jest + distill 5']);
  assert.throws(() => resolveConfig({ method: 'uniform', distill: 1 }), /distill 1 fits the learner to the reference model's pair probabilities on each batch: give --reference RUN_DIR \(train one with: sift reference --run-dir RUN_DIR\), or set distill 0/);
});

test("distillFeatures: the learner's embeddings also fit the reference's own on each batch — a falling feature_loss, no FLOPs beyond the reference's pass, named by compare; a reference of another width is an error when asked for and skipped when not", async () => {
  const run = async (name: string, extra: Partial<TrainConfig>, reference = referenceDir) => {
    const runDir = path.join(root, name);
    const stages: string[] = [];
    await trainRun(resolveConfig(tiny, { data: 'builtin:train?size=300', filterRatio: 0.5, chunks: 4, reference, steps: 8, evalEvery: 8, runDir }, extra), { onStage: (stage) => stages.push(stage) });
    const trains = readJsonl<MetricLine>(path.join(runDir, 'metrics.jsonl')).rows.flatMap((r) => (r.type === 'train' ? [r] : []));
    return { trains, stages, config: readRunJson(runDir).config };
  };
  const plain = await run('features-0', { method: 'jest', distill: 0, distillFeatures: 0 });
  const fitted = await run('features-5', { method: 'jest', distill: 0, distillFeatures: 5 });
  assert.ok(plain.trains.every((line) => line.feature_loss === undefined && line.distill_loss === undefined));
  const term = fitted.trains.map((line) => line.feature_loss!);
  assert.ok(term.every((value) => Number.isFinite(value) && value >= 0 && value <= 2), `feature_loss (1 − cos) on every step: ${term}`);
  assert.ok(term[term.length - 1] < term[0] * 0.8, `the learner's embeddings move towards the reference's: ${term}`);
  assert.ok(fitted.trains.every((line) => line.distill_loss === undefined), 'distill 0: no pair term');
  assert.deepEqual(
    fitted.trains.map((line) => [line.flops_train, line.flops_score, line.flops_reference]),
    plain.trains.map((line) => [line.flops_train, line.flops_score, line.flops_reference]),
    'the targets are the cached embeddings of rows already scored: no FLOPs of their own',
  );
  const comparison = await compareRuns(['distill-plain-uniform', 'features-0', 'features-5', 'distill-5'].map((name) => path.join(root, name)));
  assert.deepEqual(comparison.runs.map((r) => r.method), ['uniform', 'jest', 'jest + features 5', 'jest + distill 5']);

  // A reference whose embeddings are wider than the learner's has nothing to fit them to.
  const wide = path.join(root, 'reference-wide');
  await trainRun(resolveConfig(tiny, referenceDefaults, { embedDim: 2 * tiny.embedDim!, data: 'builtin:curated?size=200', steps: 2, evalEvery: 2, runDir: wide }));
  await assert.rejects(run('features-wide', { method: 'jest', distillFeatures: 5 }, wide), /distillFeatures 5 fits the learner's 16-wide embeddings to the reference's, which are 32 wide: train the reference with the learner's embedDim, or set distillFeatures 0\./);
  const unset = await run('features-wide-unset', { method: 'jest' }, wide);
  assert.deepEqual([unset.config.distill, unset.config.distillFeatures], [0, 0]);
  assert.ok(unset.stages.some((stage) => /The reference's embeddings are 32 wide and the learner's 16: this run does not fit them \(distillFeatures 0\)/.test(stage)), unset.stages.join('\n'));
  assert.throws(() => resolveConfig({ method: 'uniform', distillFeatures: 1 }), /distillFeatures 1 fits the learner's embeddings to the reference model's on each batch: give --reference RUN_DIR/);
});

test('left unset, distillFeatures is 20 for a run selecting with a half-resolution-trained reference, saved in run.json, and distill 0; 0 with a full-resolution-only one (with a warning), for uniform, and for runs from before the setting', async () => {
  // A reference as sift reference trains it by default: half of each batch at half resolution.
  const halfRes = path.join(root, 'reference-halfres');
  await trainRun(resolveConfig(tiny, referenceDefaults, { data: 'builtin:curated?size=200', steps: 4, evalEvery: 4, runDir: halfRes }));
  const start = async (name: string, extra: Partial<TrainConfig>) => {
    const runDir = path.join(root, name);
    const warnings: string[] = [];
    await trainRun(resolveConfig(tiny, { data: 'builtin:train?size=300', filterRatio: 0.5, chunks: 4, steps: 2, evalEvery: 2, runDir }, extra), { onWarning: (message) => warnings.push(message) });
    const trains = readJsonl<MetricLine>(path.join(runDir, 'metrics.jsonl')).rows.flatMap((r) => (r.type === 'train' ? [r] : []));
    const { config } = readRunJson(runDir);
    const has = (key: 'distill_loss' | 'feature_loss') => trains.every((line) => line[key] !== undefined);
    return { distill: config.distill, features: config.distillFeatures, distilled: has('distill_loss'), fitted: has('feature_loss'), warnings };
  };
  const taught = await start('default-halfres', { method: 'jest', reference: halfRes });
  assert.deepEqual([taught.distill, taught.distilled, taught.features, taught.fitted], [0, false, 20, true]);
  assert.deepEqual(taught.warnings, []);
  const fullOnly = await start('default-fullres', { method: 'jest', reference: referenceDir });
  assert.deepEqual([fullOnly.distill, fullOnly.distilled, fullOnly.features, fullOnly.fitted], [0, false, 0, false]);
  assert.match(fullOnly.warnings.join('\n'), /trained at full resolution only; .* left unset, distillFeatures is 0 here instead of 20, because the targets would come from those embeddings\. Train the reference with --low-res-fraction 0\.5/);
  const asked = await start('asked-fullres', { method: 'jest', reference: referenceDir, distill: 3, distillFeatures: 5 });
  assert.deepEqual([asked.distill, asked.distilled, asked.features, asked.fitted], [3, true, 5, true], 'explicit weights are kept');
  assert.match(asked.warnings.join('\n'), /Its distillation targets \(distill 3, distillFeatures 5\) come from those embeddings too/);
  assert.doesNotMatch(asked.warnings.join('\n'), /left unset/);
  const uniform = await start('default-uniform', { method: 'uniform' });
  assert.deepEqual([uniform.distill, uniform.distilled, uniform.features, uniform.fitted], [0, false, 0, false], 'uniform needs no reference and stays the plain baseline');
  const resolved = resolveConfig({ reference: halfRes, method: 'easy-reference' });
  assert.deepEqual([resolved.distill, resolved.distillFeatures], [0, null], 'decided when the run starts, not before');
  // run.json of a JEST run written before runs distilled by default: resumed or branched, it still does not.
  const older: Partial<TrainConfig> = { ...resolveConfig({ method: 'jest', reference: halfRes }) };
  delete older.distill;
  delete older.distillFeatures;
  assert.deepEqual([savedConfig(older).distill, savedConfig(older).distillFeatures], [0, 0]);
  assert.equal(savedConfig({ ...older, distill: 3 }).distill, 3);
  assert.throws(() => validateConfig({ distill: 11 }, 'run.sift.json'), /run\.sift\.json: "distill" is 11; expected a number from 0 to 10\./);
  assert.throws(() => validateConfig({ distillFeatures: -1 }, 'run.sift.json'), /run\.sift\.json: "distillFeatures" is -1; expected a number from 0 to 100 or null\./);
});

test('a selecting method without a reference is a config error that says how to make one', () => {
  assert.throws(() => resolveConfig({ method: 'jest' }), /method "jest" scores with a reference model: give --reference RUN_DIR \(train one with: sift reference --run-dir RUN_DIR\)/);
});

test('compare: examples and FLOPs to reach uniform\'s final value, and the ratios', async () => {
  const uniformDir = path.join(root, 'cmp-uniform');
  const jestDir = path.join(root, 'cmp-jest');
  await trainRun(resolveConfig(tiny, { data: 'builtin:train?size=300', steps: 6, evalEvery: 2, runDir: uniformDir }));
  await trainRun(resolveConfig(tiny, { data: 'builtin:train?size=300', method: 'jest', filterRatio: 0.5, reference: referenceDir, steps: 6, evalEvery: 2, runDir: jestDir }));
  const comparison = await compareRuns([uniformDir, jestDir]);
  const [uniform, jest] = comparison.runs;
  assert.equal(comparison.metric, 'i2t_r1');
  assert.equal(comparison.target, uniform.final.i2t_r1);
  assert.ok(uniform.examplesToTarget !== null && uniform.examplesToTarget <= 48);
  assert.equal(uniform.examplesSpeedup, 1);
  if (jest.examplesToTarget !== null) assert.ok(Math.abs(jest.examplesSpeedup! - uniform.examplesToTarget / jest.examplesToTarget) < 1e-9);
  assert.ok(jest.flops > jest.examplesSeen, 'FLOPs recorded');
  assert.ok(jest.scoreShare !== undefined && jest.scoreShare > 0);
  // The paper's definition: against uniform's whole run, not its first crossing.
  assert.equal(uniform.examplesSpeedupBudget, uniform.examplesSeen / uniform.examplesToTarget);
  if (jest.examplesToTarget !== null) {
    assert.ok(Math.abs(jest.examplesSpeedupBudget! - uniform.examplesSeen / jest.examplesToTarget) < 1e-9);
    const split = jest.flopsToTargetSplit!;
    assert.ok(split.train > 0 && split.score > 0 && split.reference > 0);
  }
  assert.match(comparisonMarkdown(comparison), /Speed-ups read uniform ÷ run/);
});

test('quarter-resolution scoring and a low-resolution reference pass cost fewer FLOPs than half and full', async () => {
  const run = async (name: string, extra: Partial<TrainConfig>): Promise<{ score: number; reference: number }> => {
    const runDir = path.join(root, name);
    await trainRun(resolveConfig(tiny, { data: 'builtin:train?size=300', method: 'jest', filterRatio: 0.5, reference: referenceDir, steps: 2, evalEvery: 2, runDir, ...extra }));
    const last = readJsonl<MetricLine>(path.join(runDir, 'metrics.jsonl')).rows.filter((r) => r.type === 'train').pop()!;
    assert.ok(last.type === 'train');
    return { score: last.flops_score, reference: last.flops_reference };
  };
  const low = await run('res-low', { scoreResolution: 'low', referenceResolution: 'full' });
  const quarter = await run('res-quarter', { scoreResolution: 'quarter', referenceResolution: 'quarter' });
  const lowReference = await run('res-ref-low', { scoreResolution: 'quarter', referenceResolution: 'low' });
  assert.ok(quarter.score < low.score, `scoring FLOPs ${quarter.score} (quarter) vs ${low.score} (half)`);
  assert.ok(quarter.reference < lowReference.reference && lowReference.reference < low.reference, `reference FLOPs ${quarter.reference} < ${lowReference.reference} < ${low.reference}`);
  assert.throws(() => resolveConfig(tiny, { method: 'jest', reference: referenceDir, imageSize: 24, patchSize: 4, scoreResolution: 'quarter' }), /scoreResolution quarter needs imageSize \(24\) to be a multiple of 4 × patchSize/);
});

test('scoreEvery: one scored pool of B + (k − 1)·b serves k steps, no candidate is trained twice from it, staleness is measured, and a resumed run matches exactly', async () => {
  const config = resolveConfig(tiny, { data: 'builtin:train?size=300', method: 'jest', filterRatio: 0.5, scoreEvery: 3, reference: referenceDir, steps: 13, evalEvery: 13, checkpointEvery: 100, runDir: path.join(root, 'every3') });
  await trainRun(config);
  const { rows: selections } = readJsonl<SelectionLine>(path.join(config.runDir, 'selections.jsonl'));
  // Pool = 16 + 2 × 8 = 32; each step of a cycle sees 8 fewer open candidates.
  assert.deepEqual(selections.slice(0, 6).map((s) => s.candidates), [32, 24, 16, 32, 24, 16]);
  for (let cycle = 0; cycle < 4; cycle++) {
    const ids = selections.slice(cycle * 3, cycle * 3 + 3).flatMap((s) => s.ids);
    assert.equal(new Set(ids).size, ids.length, `cycle ${cycle}: every pick distinct`);
  }
  const trains = readJsonl<MetricLine>(path.join(config.runDir, 'metrics.jsonl')).rows.filter((r) => r.type === 'train');
  assert.deepEqual(trains.map((t) => (t.type === 'train' ? t.examples_scored : 0)).slice(0, 4), [32, 32, 32, 64], 'scored once a cycle');
  const rho = trains.flatMap((t) => (t.type === 'train' && t.staleness_rho !== undefined ? [t.step] : []));
  assert.deepEqual(rho, [3], 'the last step of every 4th cycle measures staleness');

  // Paused mid-cycle (after step 4 of a cycle that started at step 4), resumed: the same steps as in one go.
  const runDir = path.join(root, 'every3-resumed');
  let current = 0;
  await trainRun({ ...config, runDir }, {}, { opened: (run) => void (current = run.step), atBoundary: async () => (current++ === 4 ? 'suspend' : 'continue'), writeFailed: async () => 'suspend' });
  await resumeRun(runDir);
  const strip = (dir: string) => readJsonl<MetricLine>(path.join(dir, 'metrics.jsonl')).rows.map((l) => Object.fromEntries(Object.entries(l).filter(([key]) => !key.endsWith('_s'))));
  assert.deepEqual(strip(runDir), strip(config.runDir));
});

test('passedReference: once the learner beats its reference on clean-looking candidates, mix trains every other batch uniform', async () => {
  const runDir = path.join(root, 'passed-mix');
  await trainRun(resolveConfig(tiny, { data: 'builtin:train?size=300', method: 'jest', filterRatio: 0.5, passedReference: 'mix', reference: referenceDir, steps: 30, evalEvery: 30, runDir }));
  const trains = readJsonl<MetricLine>(path.join(runDir, 'metrics.jsonl')).rows.filter((r) => r.type === 'train');
  for (const t of trains) assert.ok(t.type === 'train' && t.reference_gap !== undefined);
  const uniformSteps = trains.flatMap((t) => (t.type === 'train' && t.uniform_batch ? [t.step] : []));
  // Whether the tiny learner passes its tiny reference is the data's business; if it does, the steps after alternate.
  if (uniformSteps.length > 0) {
    assert.ok(uniformSteps[0] > 20, 'not before the warm-up of 20 scored pools');
    uniformSteps.slice(1).forEach((step, i) => assert.equal(step - uniformSteps[i], 2));
  }
});

test('captions that repeat are embedded once per distinct text, in the reference pass and in scoring: the same scores, fewer FLOPs', async () => {
  // 200 pairs in two chunks of the reference's pass (128 + 72), five distinct captions, every image its own.
  const write = async (caption: (i: number) => string): Promise<string> => {
    const dir = await tempDir('sift-repeat-');
    const rows = Array.from({ length: 200 }, (_, i) => ({ image: `${i}.png`, caption: caption(i) }));
    const files: Record<string, string | Uint8Array> = { 'captions.jsonl': jsonl(rows) };
    rows.forEach((_, i) => (files[`${i}.png`] = png(8, 8, [(i * 37) % 256, (i * 11) % 256, 255 - (i % 256)])));
    await writeFiles(dir, files);
    return dir;
  };
  const templated = await write((i) => `a photo of kind ${i % 5}`);
  const unique = await write((i) => `a photo of kind ${i % 5} number ${i}`);

  // The reference's pass: rows with one text share one embedding, equal to that text embedded alone.
  const reference = loadReference(referenceDir);
  try {
    const dataset = await openDataset(templated, { resolution: 32 });
    const pass = await referenceEmbeddings(reference, dataset);
    assert.equal(pass.captionForwards, 10, 'five texts in each of two chunks');
    const dim = pass.dim;
    const alone = await embedCaptions(reference.model, reference.tokenizer, ['a photo of kind 3']);
    for (const row of [3, 8, 133, 198]) {
      const got = pass.text.subarray(row * dim, (row + 1) * dim);
      got.forEach((value, k) => assert.ok(Math.abs(value - alone[k]) < 1e-5, `row ${row}, component ${k}: ${value} vs ${alone[k]}`));
    }
    const flops = forwardFlops(reference.model.config);
    assert.ok(Math.abs(pass.forwardFlopsPerExample - (flops.image + (flops.text * 10) / 200)) < 1e-6);
    await dataset.close();
  } finally {
    reference.model.dispose();
  }

  // Learner scoring: the distinct captions with row → text indices give the matrices the aligned captions give.
  const config = resolveConfig(tiny, { data: templated });
  const model = new DualEncoder(modelConfigFor(config, 64), new Rng(3));
  const optimizer = new AdamW({ learningRate: 1e-3, beta1: 0.9, beta2: 0.98, epsilon: 1e-8, weightDecay: 0, clipNorm: 1, warmupSteps: 1, totalSteps: 1, minLrRatio: 1 }, model.params.variables);
  const { learner } = await Learner.create(model, optimizer, 'sigmoid', 'wasm', 1, 8);
  try {
    const size = 12;
    const rng = new Rng(5);
    const pixels = Float32Array.from({ length: size * config.imageSize * config.imageSize * 3 }, () => rng.next());
    const length = model.config.textLength;
    const textIds = Int32Array.from({ length: 3 * length }, (_, i) => (i % length < 4 ? 1 + ((i * 7) % 60) : 0));
    const textOf = Int32Array.from({ length: size }, (_, row) => row % 3);
    const aligned = new Int32Array(size * length);
    textOf.forEach((t, row) => aligned.set(textIds.subarray(t * length, (t + 1) * length), row * length));
    const images = { pixels, imageSize: config.imageSize, patchSize: config.patchSize, scale: 1 };
    const once = (await learner.score({ count: size, loss: 'sigmoid', learner: { ...images, ids: textIds, texts: 3, textOf } })).learner!;
    const each = (await learner.score({ count: size, loss: 'sigmoid', learner: { ...images, ids: aligned, texts: size, textOf: Int32Array.from({ length: size }, (_, row) => row) } })).learner!;
    assert.equal(once.pairLoss.size, size);
    once.pairLoss.values.forEach((value, k) => assert.ok(Math.abs(value - each.pairLoss.values[k]) < 1e-4, `pair loss ${k}: ${value} vs ${each.pairLoss.values[k]}`));
  } finally {
    await learner.close();
    model.dispose();
  }

  // A run on the templated captions pays less for scoring and for the reference's pass than one whose captions are all distinct.
  const cost = async (data: string, name: string): Promise<{ score: number; reference: number }> => {
    const runDir = path.join(root, name);
    await trainRun(resolveConfig(tiny, { data, method: 'jest', filterRatio: 0.5, reference: referenceDir, steps: 2, evalEvery: 2, runDir }));
    const last = readJsonl<MetricLine>(path.join(runDir, 'metrics.jsonl')).rows.filter((r) => r.type === 'train').pop()!;
    assert.ok(last.type === 'train');
    return { score: last.flops_score, reference: last.flops_reference };
  };
  const repeated = await cost(templated, 'captions-templated');
  const distinct = await cost(unique, 'captions-unique');
  assert.ok(repeated.score < distinct.score, `scoring FLOPs ${repeated.score} (5 texts) vs ${distinct.score} (all distinct)`);
  assert.ok(repeated.reference < distinct.reference, `reference FLOPs ${repeated.reference} vs ${distinct.reference}`);
});

test('scoreAhead: a thread of its own scores the next super-batch while a step trains; the picks are those of scoring it in the training thread, and a run paused with a pool under way resumes as if never stopped', async () => {
  const config = resolveConfig(tiny, { data: 'builtin:train?size=300', method: 'jest', filterRatio: 0.5, scoreAhead: 'on', threads: 1, reference: referenceDir, steps: 8, evalEvery: 8, checkpointEvery: 100, runDir: path.join(root, 'ahead') });
  const strip = (dir: string) => readJsonl<MetricLine>(path.join(dir, 'metrics.jsonl')).rows.map((l) => Object.fromEntries(Object.entries(l).filter(([key]) => !key.endsWith('_s'))));
  const picks = (dir: string) => readJsonl<SelectionLine>(path.join(dir, 'selections.jsonl')).rows.map((s) => [s.ids, s.learner_loss]);
  const scoring = (dir: string): string | undefined => JSON.parse(fs.readFileSync(path.join(dir, 'run.json'), 'utf8')).backend.scoring;
  const inThread = async (runConfig: TrainConfig): Promise<void> => {
    process.env.SIFT_SCORE_THREAD = '0';
    try {
      await trainRun(runConfig);
    } finally {
      delete process.env.SIFT_SCORE_THREAD;
    }
  };

  // One core: no thread to score on; the rest must hold all the same.
  const spare = os.availableParallelism() > 1;
  await trainRun(config);
  assert.match(scoring(config.runDir) ?? '', spare ? /the next super-batch is scored on core 2 of \d+ while the step trains/ : /training uses the only core/);
  const inline = path.join(root, 'ahead-inline');
  await inThread({ ...config, runDir: inline });
  assert.match(scoring(inline) ?? '', /in the training thread/);
  assert.deepEqual(picks(inline), picks(config.runDir));
  assert.deepEqual(strip(inline), strip(config.runDir));

  // scoreAhead off: each pool is scored with the weights it trains with, in the training thread.
  const current = path.join(root, 'ahead-off');
  await trainRun({ ...config, scoreAhead: 'off', runDir: current });
  assert.equal(scoring(current), undefined);
  // One step behind: from step 2 on the learner's losses differ (step 1's pool has the initial weights either way).
  const [aheadPicks, currentPicks] = [picks(config.runDir), picks(current)];
  assert.deepEqual(aheadPicks[0], currentPicks[0]);
  assert.notDeepEqual(aheadPicks.slice(1).map((p) => p[1]), currentPicks.slice(1).map((p) => p[1]));

  // Suspended after step 4, when step 5's pool was already under way: the checkpoint holds it, scored.
  const resumed = path.join(root, 'ahead-resumed');
  let at = 0;
  await trainRun({ ...config, runDir: resumed }, {}, { opened: (opened) => void (at = opened.step), atBoundary: async () => (at++ === 4 ? 'suspend' : 'continue'), writeFailed: async () => 'suspend' });
  await resumeRun(resumed);
  assert.deepEqual(picks(resumed), picks(config.runDir));
  assert.deepEqual(strip(resumed), strip(config.runDir));
});
