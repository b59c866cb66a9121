/**
 * A training run, top to bottom: backend → data → tokenizer → model →
 * the step loop (with periodic eval) → summary. The CLI and the worker both
 * call `trainRun`; what the user sees comes back through `hooks`.
 */
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend } from '../backend';
import { openDataset } from '../data/open';
import { EpochSampler } from '../data/sampler';
import { holdOut } from '../data/subset';
import { Tokenizer } from '../data/tokenizer';
import type { ImageTextDataset } from '../data/types';
import { DualEncoder, defaultModelConfig, forwardFlops, patchify, similarityFlops, type ModelConfig } from '../model/dualEncoder';
import { contrastiveLoss } from '../model/losses';
import { Rng } from '../random';
import { newRunId, RunRecord, type DataSummary, type EvalMetrics, type TrainMetrics } from '../runs/record';
import type { TrainConfig } from './config';
import { evaluate, prepareEvalSet, type EvalSet } from './eval';
import { AdamW, learningRateAt } from './optimizer';

export interface TrainHooks {
  /** Plain-language progress of the slow set-up stages (indexing data, …). */
  onStage?: (message: string) => void;
  onTrain?: (line: TrainMetrics, totalSteps: number) => void;
  onEval?: (line: EvalMetrics) => void;
  /** A warning the user should see (skipped rows, slow backend, skipped step). */
  onWarning?: (message: string) => void;
}

export interface TrainResult {
  runDir: string;
  evals: EvalMetrics[];
  status: 'finished' | 'failed';
}

function summarise(dataset: ImageTextDataset): DataSummary {
  return { source: dataset.source, format: dataset.format, size: dataset.size, skips: dataset.skips };
}

function describeSkips(dataset: ImageTextDataset): string | undefined {
  const { skips } = dataset;
  const skipped = skips.rowsSeen - skips.rowsUsed;
  if (skipped === 0) return undefined;
  const reasons = Object.entries(skips.counts)
    .map(([reason, count]) => `${count} ${reason}`)
    .join(', ');
  const first = skips.first.map((row) => `  ${row.where}: ${row.reason}: ${row.detail}`).join('\n');
  return `${dataset.source}: skipped ${skipped} of ${skips.rowsSeen} rows (${reasons}). First:\n${first}`;
}

export function modelConfigFor(config: TrainConfig, vocabSize: number): ModelConfig {
  return {
    ...defaultModelConfig,
    imageSize: config.imageSize,
    patchSize: config.patchSize,
    imageWidth: config.imageWidth,
    imageDepth: config.imageDepth,
    imageTokenHidden: config.imageWidth,
    imageChannelHidden: config.imageWidth * 2,
    textWidth: config.textWidth,
    textDepth: config.textDepth,
    textLength: config.textLength,
    textChannelHidden: config.textWidth * 2,
    embedDim: config.embedDim,
    vocabSize,
    initBias: config.initBias ?? -Math.log(config.batchSize),
  };
}

export async function trainRun(config: TrainConfig, hooks: TrainHooks = {}): Promise<TrainResult> {
  const runDir = config.runDir || path.join('.sift', 'runs', newRunId());
  const record = RunRecord.create(runDir, config);
  const evals: EvalMetrics[] = [];
  let model: DualEncoder | undefined;
  let optimizer: AdamW | undefined;
  const datasets: ImageTextDataset[] = [];
  try {
    // ---- backend -------------------------------------------------------------
    const backend = await selectBackend(config.backend);
    record.update({ backend: { chosen: backend.chosen, attempts: backend.attempts, warning: backend.warning } });
    if (backend.warning) hooks.onWarning?.(backend.warning);

    // ---- data ----------------------------------------------------------------
    const open = async (spec: string, role: string): Promise<ImageTextDataset> => {
      hooks.onStage?.(`Indexing ${role} data ${spec}…`);
      const dataset = await openDataset(spec, { resolution: config.imageSize });
      datasets.push(dataset);
      const skips = describeSkips(dataset);
      if (skips) hooks.onWarning?.(skips);
      return dataset;
    };
    let train = await open(config.data, 'training');
    let evalData: ImageTextDataset;
    const evalHeldOut = !config.evalData;
    if (config.evalData) {
      evalData = await open(config.evalData, 'eval');
    } else {
      ({ train, heldOut: evalData } = holdOut(train, config.evalFraction, config.seed));
    }
    record.update({ data: { train: summarise(train), eval: summarise(evalData), evalHeldOut } });
    const rng = new Rng(config.seed);
    const evalPickRng = rng.fork();
    const evalSet: EvalSet = prepareEvalSet(evalData, config.evalSize, (n) => evalPickRng.shuffle([...Array(evalData.size).keys()]).slice(0, n));

    // ---- tokenizer and model -----------------------------------------------
    const captions = (function* () {
      for (let i = 0; i < train.size; i++) yield train.caption(i);
    })();
    const tokenizer = Tokenizer.build(captions, { maxVocab: config.maxVocab, maxLength: config.textLength });
    record.writeJson('tokenizer.json', tokenizer.toJson());
    const modelConfig = modelConfigFor(config, tokenizer.size);
    model = new DualEncoder(modelConfig, rng.fork());
    const flopsPerExample = forwardFlops(modelConfig);
    const forwardPerExample = flopsPerExample.image + flopsPerExample.text;
    // Training = forward + backward (≈ 2× forward), plus the batch × batch similarity both ways.
    const flopsPerStep = 3 * (forwardPerExample * config.batchSize + similarityFlops(config.batchSize, config.batchSize, modelConfig.embedDim));
    record.update({ model: { parameters: model.params.count(), forwardFlopsPerExample: forwardPerExample, vocabSize: tokenizer.size } });
    optimizer = new AdamW(
      {
        learningRate: config.learningRate,
        beta1: 0.9,
        beta2: 0.98,
        epsilon: 1e-8,
        weightDecay: config.weightDecay,
        clipNorm: 1,
        warmupSteps: config.warmupSteps,
        totalSteps: config.steps,
        minLrRatio: 0.05,
      },
      model.params.variables,
    );
    const sampler = new EpochSampler(train.size, rng.fork().nextUint32());

    // ---- the loop ------------------------------------------------------------
    record.update({ status: 'running' });
    const started = performance.now();
    const wallSeconds = (): number => (performance.now() - started) / 1000;
    let examplesSeen = 0;
    let flops = 0;
    let badSteps = 0;
    let skippedSteps = 0;
    const runEval = async (step: number): Promise<void> => {
      hooks.onStage?.(`Evaluating at step ${step} on ${evalSet.indices.length} pairs…`);
      const result = await evaluate(model!, tokenizer, evalSet, config.zeroshotTemplate);
      const line: EvalMetrics = { type: 'eval', step, examples_seen: examplesSeen, flops, wall_s: wallSeconds(), ...result };
      record.metrics.append(line);
      evals.push(line);
      hooks.onEval?.(line);
    };

    for (let step = 0; step < config.steps; step++) {
      const rows = sampler.next(config.batchSize);
      const pixels = await train.loadImages(rows);
      const ids = tokenizer.encodeBatch(rows.map((i) => train.caption(i)));
      const patches = patchify(pixels, rows.length, config.imageSize, config.patchSize, 1);
      const { value, grads } = tf.variableGrads(() => {
        const image = model!.embedImages(patches);
        const text = model!.embedTexts(ids, rows.length);
        return contrastiveLoss(config.loss, image, text, model!.temperature, model!.bias).loss;
      });
      const loss = (await value.data())[0];
      let gradNorm = NaN;
      if (Number.isFinite(loss)) {
        badSteps = 0;
        gradNorm = optimizer.apply(grads, step);
      } else {
        // NaN guard: skip the update, keep the weights; fail only if it persists.
        badSteps++;
        skippedSteps++;
        hooks.onWarning?.(`step ${step}: loss is ${loss}; the update was skipped (${badSteps} in a row).`);
        if (badSteps > config.maxBadSteps) {
          throw new Error(`The loss was not finite for ${badSteps} steps in a row (last at step ${step}). Lower learningRate (now ${config.learningRate}) or check the data.`);
        }
      }
      tf.dispose([value, ...Object.values(grads)]);
      examplesSeen += rows.length;
      flops += flopsPerStep;
      const [temperature, bias] = tf.tidy(() => [model!.temperature.dataSync()[0], model!.bias.dataSync()[0]]);
      const line: TrainMetrics = {
        type: 'train',
        step: step + 1,
        examples_seen: examplesSeen,
        flops,
        wall_s: wallSeconds(),
        loss,
        lr: learningRateAt(step, optimizer.config),
        grad_norm: gradNorm,
        temperature,
        bias,
      };
      record.metrics.append(line);
      hooks.onTrain?.(line, config.steps);
      if ((step + 1) % config.evalEvery === 0 || step + 1 === config.steps) await runEval(step + 1);
    }

    record.update({
      status: 'finished',
      summary: { steps: config.steps, examplesSeen, wallSeconds: wallSeconds(), finalEval: evals[evals.length - 1], skippedSteps },
    });
    return { runDir, evals, status: 'finished' };
  } catch (error) {
    const err = error as Error;
    record.update({ status: 'failed', error: { message: err.message, detail: err.stack } });
    throw Object.assign(err, { runDir });
  } finally {
    record.close();
    optimizer?.dispose();
    model?.dispose();
    await Promise.all(datasets.map((d) => d.close()));
  }
}
