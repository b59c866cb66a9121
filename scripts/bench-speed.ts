/**
 * bench:speed — throughput of the default model on this machine, each figure
 * measured side by side in one process: training (full and half resolution),
 * scoring (learner forward over a super-batch, full and half), and loading
 * built-in images. Writes
 * bench-results/speed.{json,md}.
 *
 *   npm run bench:speed [-- --backend wasm --batch-size 64 --super-batch 320]
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import { parseBackendChoice, selectBackend } from '../src/core/backend';
import { openDataset } from '../src/core/data/open';
import { Tokenizer } from '../src/core/data/tokenizer';
import { DualEncoder, forwardFlops, patchify } from '../src/core/model/dualEncoder';
import { contrastiveLoss } from '../src/core/model/losses';
import { Rng } from '../src/core/random';
import { defaultTrainConfig, modelConfigFor } from '../src/core/train/config';
import { AdamW } from '../src/core/train/optimizer';

const { values } = parseArgs({
  options: {
    backend: { type: 'string', default: 'auto' },
    'batch-size': { type: 'string', default: '64' },
    'super-batch': { type: 'string', default: '320' },
    repeats: { type: 'string', default: '8' },
    out: { type: 'string', default: 'bench-results' },
  },
});

/** Median seconds of `repeats` runs of fn after one warm-up. */
async function time(fn: () => Promise<void> | void, repeats: number): Promise<number> {
  await fn();
  const samples: number[] = [];
  for (let i = 0; i < repeats; i++) {
    const start = performance.now();
    await fn();
    samples.push((performance.now() - start) / 1000);
  }
  samples.sort((a, b) => a - b);
  return samples[Math.floor(samples.length / 2)];
}

async function main(): Promise<void> {
  const backend = await selectBackend(parseBackendChoice(values.backend!));
  const batch = Number(values['batch-size']);
  const superBatch = Number(values['super-batch']);
  const repeats = Number(values.repeats);
  const config = { ...defaultTrainConfig, batchSize: batch };
  const data = await openDataset('builtin:train?size=2000', { resolution: config.imageSize });
  const captions = Array.from({ length: data.size }, (_, i) => data.caption(i));
  const tokenizer = Tokenizer.build(captions, { maxVocab: config.maxVocab, maxLength: config.textLength });
  const model = new DualEncoder(modelConfigFor(config, tokenizer.size), new Rng(0));
  const optimizer = new AdamW({ learningRate: 1e-3, beta1: 0.9, beta2: 0.98, epsilon: 1e-8, weightDecay: 1e-4, clipNorm: 1, warmupSteps: 10, totalSteps: 1000, minLrRatio: 0.1 }, model.params.variables);
  const rows = (n: number): number[] => Array.from({ length: n }, (_, i) => i);
  const trainPixels = await data.loadImages(rows(batch));
  const trainIds = tokenizer.encodeBatch(captions.slice(0, batch));
  const scorePixels = await data.loadImages(rows(superBatch));
  const scoreIds = tokenizer.encodeBatch(captions.slice(0, superBatch));
  let step = 0;

  const trainAt = (scale: number) => () => {
    const patches = patchify(trainPixels, batch, config.imageSize, config.patchSize, scale);
    const { value, grads } = tf.variableGrads(() => contrastiveLoss('sigmoid', model.embedImages(patches), model.embedTexts(trainIds, batch), model.temperature, model.bias).loss);
    value.dataSync();
    optimizer.apply(grads, step++);
    tf.dispose([value, ...Object.values(grads)]);
  };
  const scoreAt = (scale: number) => () =>
    tf.tidy(() => {
      const patches = patchify(scorePixels, superBatch, config.imageSize, config.patchSize, scale);
      contrastiveLoss('sigmoid', model.embedImages(patches), model.embedTexts(scoreIds, superBatch), model.temperature, model.bias).pairLoss.dataSync();
    });
  const loadPixels = async (): Promise<void> => {
    await data.loadImages(rows(superBatch));
  };

  const figures: Record<string, { seconds: number; examplesPerSecond: number; gflops: number }> = {};
  const record = (name: string, seconds: number, examples: number, flops: number): void => {
    figures[name] = { seconds, examplesPerSecond: examples / seconds, gflops: flops / seconds / 1e9 };
  };
  const full = forwardFlops(model.config, 1);
  const half = forwardFlops(model.config, 2);
  record('train (full resolution)', await time(trainAt(1), repeats), batch, 3 * (full.image + full.text) * batch);
  record('train (half resolution)', await time(trainAt(2), repeats), batch, 3 * (half.image + half.text) * batch);
  record('score super-batch (full resolution)', await time(scoreAt(1), repeats), superBatch, (full.image + full.text) * superBatch);
  record('score super-batch (half resolution)', await time(scoreAt(2), repeats), superBatch, (half.image + half.text) * superBatch);
  record('load + render built-in images', await time(loadPixels, repeats), superBatch, 0);

  const result = {
    benchmark: 'speed',
    date: new Date().toISOString(),
    machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model, node: process.version },
    backend: backend.chosen,
    model: { parameters: model.params.count(), forwardMflopsPerExample: (full.image + full.text) / 1e6, halfResForwardMflopsPerExample: (half.image + half.text) / 1e6 },
    batch,
    superBatch,
    figures,
    // FINDINGS.md, same kind of 2-core machine: a PyTorch (OpenBLAS) model of 45 MFLOP/example forward.
    yardstick: { trainedExamplesPerSecond: 500, scoredExamplesPerSecond: [2900, 3200], forwardMflopsPerExample: 45 },
  };
  const rowsMd = Object.entries(figures).map(([name, f]) => `| ${name} | ${(1000 * f.seconds).toFixed(1)} ms | ${f.examplesPerSecond ? f.examplesPerSecond.toFixed(0) : '–'} | ${f.gflops ? f.gflops.toFixed(2) : '–'} |`);
  const markdown = [
    `# bench:speed — ${backend.chosen} backend, ${result.model.parameters} parameters, ${result.model.forwardMflopsPerExample.toFixed(1)} MFLOP/example forward (${result.model.halfResForwardMflopsPerExample.toFixed(1)} at half resolution)`,
    '',
    '| what | median time | examples/s | GFLOP/s |',
    '| --- | --- | --- | --- |',
    ...rowsMd,
    '',
    'Yardstick (FINDINGS.md, PyTorch on the same kind of machine, 45 MFLOP/example): ~500 trained and ~2,900–3,200 scored examples/s.',
  ].join('\n');
  fs.mkdirSync(values.out!, { recursive: true });
  fs.writeFileSync(path.join(values.out!, 'speed.json'), JSON.stringify(result, null, 2) + '\n');
  fs.writeFileSync(path.join(values.out!, 'speed.md'), markdown + '\n');
  process.stdout.write(`${markdown}\n\nWritten ${path.join(values.out!, 'speed.json')} and .md\n`);
  optimizer.dispose();
  model.dispose();
  await data.close();
}

main().catch((error) => {
  process.stderr.write(`bench:speed: ${(error as Error).stack}\n`);
  process.exit(1);
});
