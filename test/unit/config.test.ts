import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError, defaultTrainConfig, resolveConfig, savedConfig, validateConfig } from '../../src/core/train/config';

test('a typo in a setting is named, with the closest real one', () => {
  assert.throws(() => validateConfig({ batchSzie: 32 }, 'run.sift.json'), (error: Error) => {
    assert.ok(error instanceof ConfigError);
    assert.match(error.message, /run\.sift\.json: unknown setting "batchSzie"\. Did you mean "batchSize"\?/);
    return true;
  });
});

test('wrong types and ranges name the field and what it takes', () => {
  assert.throws(() => validateConfig({ steps: '100' }, 'cfg.json'), /cfg\.json: "steps" is "100"; expected a whole number ≥ 1/);
  assert.throws(() => validateConfig({ learningRate: -1 }, 'cfg.json'), /"learningRate" is -1; expected a number from 0 to 1/);
  assert.throws(() => validateConfig({ loss: 'hinge' }, 'cfg.json'), /expected one of sigmoid, softmax/);
  assert.throws(() => validateConfig({ backend: 'tpu' }, 'cfg.json'), /one of auto, node-gpu, webgpu, node, wasm, cpu/);
});

test('layers override in order: defaults < file < flags', () => {
  const config = resolveConfig(validateConfig({ steps: 50, batchSize: 16 }, 'file'), validateConfig({ steps: 7 }, 'flags'));
  assert.equal(config.steps, 7);
  assert.equal(config.batchSize, 16);
  assert.equal(config.learningRate, defaultTrainConfig.learningRate);
});

test('image size must allow half-resolution scoring', () => {
  assert.throws(() => resolveConfig({ imageSize: 36, patchSize: 4 }), /multiple of 2 × patchSize/);
});

test('a run written before learnerWeight existed resumes and branches with the learnability it started with (w = 1), a new run gets the default', () => {
  const old = { method: 'jest' as const, reference: '/runs/ref', steps: 100 };
  assert.equal(savedConfig(old).learnerWeight, 1);
  assert.equal(savedConfig({ ...old, learnerWeight: 0.5 }).learnerWeight, 0.5);
  assert.equal(resolveConfig(old).learnerWeight, defaultTrainConfig.learnerWeight);
  assert.notEqual(defaultTrainConfig.learnerWeight, 1);
});
