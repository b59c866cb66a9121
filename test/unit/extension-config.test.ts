/**
 * Settings and run configurations as the editor reads them, the JSON schema
 * the editor applies to `*.sift.json` (it must match the config fields), the
 * manifest's settings (they must match what the code reads), and the GPU
 * check's report.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { DoctorReport } from '../../src/cli/main';
import { ConfigError, configHelp, configKeys, defaultTrainConfig, fieldKinds, validateConfig } from '../../src/core/train/config';
import { backendForRuns, doctorMarkdown } from '../../src/extension/doctor';
import { backendChoice, configTemplates, defaultSettings, newRunConfig, readSettings, referenceRunConfig, runConfigFromFile } from '../../src/extension/runConfig';
import { configSchema, schemaFile, schemaText } from '../../scripts/config-schema';
import { tmp } from './runs-helpers';

const repo = path.resolve(__dirname, '..', '..');
const manifest = JSON.parse(fs.readFileSync(path.join(repo, 'package.json'), 'utf8'));

test('settings: gpu means node-gpu; bad values fall back to the default and are named', () => {
  assert.equal(backendChoice('gpu'), 'node-gpu');
  assert.equal(backendChoice('wasm'), 'wasm');
  const values: Record<string, unknown> = { backend: 'tpu', runsFolder: 'runs', evalInterval: 0, checkpointInterval: 50 };
  const { settings, problems } = readSettings((key) => values[key] as never);
  assert.deepEqual(settings, { ...defaultSettings, runsFolder: 'runs', checkpointInterval: 50 });
  assert.deepEqual(problems, ['sift.backend is "tpu"; using "auto".', 'sift.evalInterval is 0; using 100.']);
});

test('the manifest contributes exactly the settings the code reads, with the same defaults', () => {
  const properties = manifest.contributes.configuration.properties as Record<string, { default: unknown; enum?: string[] }>;
  assert.deepEqual(Object.keys(properties).sort(), Object.keys(defaultSettings).map((key) => `sift.${key}`).sort());
  for (const [key, value] of Object.entries(defaultSettings)) {
    const declared = properties[`sift.${key}`].default;
    assert.equal(key === 'runsFolder' ? path.normalize(String(declared)) : declared, value, key);
  }
  assert.deepEqual(properties['sift.backend'].enum, ['auto', 'gpu', 'webgpu', 'node', 'wasm', 'cpu']);
});

test('every command is contributed with a title in the Sift category, and every menu names a contributed command', () => {
  const commands = manifest.contributes.commands as { command: string; title: string; category: string }[];
  const ids = new Set(commands.map((c) => c.command));
  for (const command of commands) assert.equal(command.category, 'Sift', command.command);
  const titles = commands.map((c) => c.title);
  for (const title of ['Start Training Run…', 'Train Reference Model…', 'Pause Run', 'Resume Run', 'Stop Run', 'Branch Run from Checkpoint…', 'Open Dashboard', 'Inspect Selected Batch', 'Compare Runs…', 'Export Curated Subset…', 'Check GPU Setup', 'New Run Configuration']) {
    assert.ok(titles.includes(title), title);
  }
  for (const [menu, entries] of Object.entries(manifest.contributes.menus as Record<string, { command: string }[]>)) {
    for (const entry of entries) assert.ok(ids.has(entry.command), `${menu}: ${entry.command}`);
  }
  const registered = fs.readFileSync(path.join(repo, 'src', 'extension', 'commands.ts'), 'utf8');
  for (const id of ids) assert.match(registered, new RegExp(`register\\('${id.replace('.', '\\.')}'`), `${id} is registered`);
  for (const step of manifest.contributes.walkthroughs[0].steps) assert.ok(fs.existsSync(path.join(repo, step.media.markdown)), step.media.markdown);
});

test('a config file layers over the settings; the runs folder names the run; errors name file and field', () => {
  const workspace = tmp('sift-ws-');
  const settings = { ...defaultSettings, backend: 'gpu' as const, evalInterval: 7 };
  const config = newRunConfig({ steps: 20, checkpointEvery: 5 }, 'a.sift.json', { settings, workspace, runId: 'r1' });
  assert.equal(config.steps, 20);
  assert.equal(config.evalEvery, 7, 'from the settings');
  assert.equal(config.checkpointEvery, 5, 'the file wins over the settings');
  assert.equal(config.backend, 'node-gpu');
  assert.equal(config.runDir, path.join(workspace, '.sift', 'runs', 'r1'));
  assert.equal(newRunConfig({ backend: 'cpu', runDir: 'mine' }, 'a', { settings, workspace }).backend, 'cpu');
  assert.equal(newRunConfig({ runDir: 'mine' }, 'a', { settings, workspace }).runDir, 'mine', 'relative to the workspace, where the worker runs');

  const file = path.join(workspace, 'bad.sift.json');
  fs.writeFileSync(file, JSON.stringify({ batchSize: 'big' }));
  assert.throws(() => runConfigFromFile(file, { settings, workspace }), (error: unknown) => error instanceof ConfigError && /^bad\.sift\.json: "batchSize" is "big"; expected a whole number ≥ 2\.$/.test(error.message));
  fs.writeFileSync(file, JSON.stringify({ batchSise: 8 }));
  assert.throws(() => runConfigFromFile(file, { settings, workspace }), /unknown setting "batchSise". Did you mean "batchSize"\?/);
  fs.writeFileSync(file, '{ "steps": 3,');
  assert.throws(() => runConfigFromFile(file, { settings, workspace }), /cannot read the config file/);
  assert.throws(() => newRunConfig({ method: 'jest' }, 'j', { settings, workspace }), /reference model/);

  const reference = referenceRunConfig({ method: 'jest', reference: 'x', imageWidth: 16, runDir: 'learner' }, 'j', 'builtin:curated', { settings, workspace, runId: 'r2' });
  assert.equal(reference.method, 'uniform');
  assert.equal(reference.data, 'builtin:curated');
  assert.equal(reference.imageWidth, 16, 'the learner config’s model shape');
  assert.equal(reference.runDir, path.join(workspace, '.sift', 'runs', 'ref-r2'));
});

test('every template is a valid config', () => {
  for (const template of configTemplates) {
    assert.ok(template.name.endsWith('.sift.json'));
    const config = validateConfig(template.config as Record<string, unknown>, template.name);
    if (config.method === 'jest') assert.ok(config.reference);
    else newRunConfig(config as Record<string, unknown>, template.name, { settings: defaultSettings, workspace: '/ws' });
  }
});

test('the JSON schema of *.sift.json matches the config fields and is up to date on disk', () => {
  const schema = configSchema() as { properties: Record<string, { type: unknown; description: string; default: unknown; enum?: unknown[]; minimum?: number; maximum?: number }>; additionalProperties: boolean };
  assert.deepEqual(Object.keys(schema.properties).filter((key) => key !== '$schema').sort(), [...configKeys].sort());
  assert.equal(schema.additionalProperties, false);
  for (const key of configKeys) {
    const property = schema.properties[key];
    assert.ok(property.description.toLowerCase().startsWith(configHelp[key].slice(0, 10).toLowerCase()), key);
    assert.deepEqual(property.default, defaultTrainConfig[key], key);
    const kind = fieldKinds[key];
    if (kind.kind === 'enum') assert.deepEqual(property.enum, [...kind.values], key);
    if (kind.kind === 'int') assert.equal(property.minimum, kind.min, key);
    if (kind.kind === 'number') assert.deepEqual([property.minimum, property.maximum], [kind.min, kind.max], key);
  }
  assert.equal(fs.readFileSync(schemaFile, 'utf8'), schemaText(), 'schemas/sift-config.schema.json is stale: npm run build regenerates it');
  const contributed = manifest.contributes.jsonValidation[0];
  assert.equal(contributed.fileMatch, '*.sift.json');
  assert.equal(path.resolve(repo, contributed.url), schemaFile);
});

const report = (gpu: 'available' | 'failed'): DoctorReport => ({
  attempts: [
    { name: 'node-gpu', outcome: gpu, ...(gpu === 'failed' ? { reason: 'the CUDA libraries did not load: libcudart.so.11.0', fix: 'tfjs-node-gpu 4.22 needs CUDA 11.2 and cuDNN 8.1 on LD_LIBRARY_PATH' } : {}) },
    { name: 'node', outcome: 'failed', reason: '@tensorflow/tfjs-node is not installed', fix: 'npm install @tensorflow/tfjs-node@4.22.0' },
    { name: 'wasm', outcome: 'available' },
    { name: 'cpu', outcome: 'available' },
  ],
  chosen: gpu === 'available' ? 'node-gpu' : 'wasm',
  node: 'v20.0.0',
  platform: 'linux-x64',
});

test('the GPU check says what loaded, what failed with the fix, and which backend runs will use', () => {
  const context = { setting: 'auto' as const, extensionPath: '/ext', ldLibraryPath: undefined, gpu: { found: true, gpus: ['GPU 0: NVIDIA H200'] } };
  const markdown = doctorMarkdown(report('failed'), context);
  assert.match(markdown, /\*\*Runs will use: `wasm`\.\*\*/);
  assert.match(markdown, /\| `node-gpu` \| `@tensorflow\/tfjs-node-gpu` \| failed \| the CUDA libraries did not load: libcudart\.so\.11\.0 \|/);
  assert.match(markdown, /\*\*CUDA 11\.2\*\* and \*\*cuDNN 8\.1\*\*/);
  assert.match(markdown, /`LD_LIBRARY_PATH=` \(unset\)/);
  assert.match(markdown, /GPU 0: NVIDIA H200/);
  assert.match(markdown, /cd "\/ext" && npm install --no-save @tensorflow\/tfjs-node-gpu@4\.22\.0/);

  assert.deepEqual(backendForRuns(report('failed'), 'gpu').backend, null, 'a pinned backend that does not load: no run starts');
  assert.match(backendForRuns(report('failed'), 'gpu').explanation, /does not load here/);
  assert.equal(backendForRuns(report('failed'), 'cpu').backend, 'cpu');
  assert.doesNotMatch(markdown, /matMul:/, 'no matMul line when the check did not report one');
  const fast = doctorMarkdown({ ...report('failed'), matMul: { active: true, blas: 'OpenBLAS' }, threads: { threads: 2, reason: 'auto: up to one per core (2)' } }, context);
  assert.match(fast, /- matMul: native OpenBLAS/);
  assert.match(fast, /- threads: 2 \(auto: up to one per core \(2\); a run's `threads` setting changes it\)/);
  const slow = doctorMarkdown({ ...report('failed'), matMul: { active: false, reason: 'the native matMul addon is not built.', fix: 'apt-get install libopenblas-dev, then npm run build:native' } }, context);
  assert.match(slow, /- matMul: wasm SIMD — the native matMul addon is not built\. Fix: apt-get install libopenblas-dev/);
  const withGpu = doctorMarkdown(report('available'), context);
  assert.match(withGpu, /Runs will use: `node-gpu`/);
  assert.doesNotMatch(withGpu, /Training on an NVIDIA GPU/);
});
