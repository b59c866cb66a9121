// Stages what scripts/gpu/measure.sh runs on a Linux x86-64 machine that has
// an NVIDIA GPU but no Node.js and no node_modules (scripts/gpu/pack.sh packs
// the folder with the node binary):
//
//   scripts/bench-speed.js   bench:speed, bundled (esbuild) with Sift's sources
//   dist/cli.js              the sift CLI (for `sift doctor`), bundled the same way
//   scripts/pytorch/         the PyTorch port the benchmark runs beside Sift
//   node_modules/            only what the bundles load at run time: tfjs-core and
//                            its cpu, wasm and webgpu backends (each its Node build
//                            alone), seedrandom, and Dawn's `webgpu` with its
//                            linux-x64 dawn.node only
//
//   node scripts/gpu/bundle.mjs STAGE_DIR
//
// The tfjs packages stay external for the same reason as in scripts/build.mjs:
// a backend registers itself on the tfjs-core it requires. @napi-rs/image (a
// 20 MB native decoder) is replaced by a stub that throws when used: the
// benchmark's built-in data renders its images and decodes none.
import * as esbuild from 'esbuild';
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';

const require = createRequire(import.meta.url);
const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..', '..');
const stage = process.argv[2];
if (!stage) {
  process.stderr.write('usage: node scripts/gpu/bundle.mjs STAGE_DIR\n');
  process.exit(2);
}
fs.rmSync(stage, { recursive: true, force: true });
fs.mkdirSync(stage, { recursive: true });

const external = [
  'vscode',
  '@tensorflow/tfjs-core',
  '@tensorflow/tfjs-backend-cpu',
  '@tensorflow/tfjs-backend-wasm',
  '@tensorflow/tfjs-backend-webgpu',
  '@tensorflow/tfjs-node',
  '@tensorflow/tfjs-node-gpu',
  'webgpu',
  'tsx',
];

const plugins = [
  {
    // As scripts/build.mjs: tfjs-core's gradient registrations are ES modules only, so they are bundled.
    name: 'bundle-tfjs-gradients',
    setup(build) {
      build.onResolve({ filter: /^@tensorflow\/tfjs-core\/dist\/register_all_gradients$/ }, () => ({
        path: require.resolve('@tensorflow/tfjs-core/dist/register_all_gradients.js', { paths: [root] }),
      }));
    },
  },
  {
    name: 'stub-napi-image',
    setup(build) {
      build.onResolve({ filter: /^@napi-rs\/image$/ }, () => ({ path: 'napi-image-stub', namespace: 'stub' }));
      build.onLoad({ filter: /.*/, namespace: 'stub' }, () => ({
        contents: `export class Transformer { constructor() { throw new Error('@napi-rs/image is not in the GPU bundle (scripts/gpu/bundle.mjs): it decodes no images'); } }`,
        loader: 'js',
      }));
    },
  },
];

const entries = [
  { in: 'scripts/bench-speed.ts', out: 'scripts/bench-speed.js' },
  { in: 'src/cli/main.ts', out: 'dist/cli.js' },
];
for (const entry of entries) {
  await esbuild.build({
    absWorkingDir: root,
    entryPoints: [entry.in],
    outfile: path.join(stage, entry.out),
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    sourcemap: true,
    external,
    plugins,
    logLevel: 'warning',
  });
}

// The PyTorch port, beside the benchmark as in the repository (it finds it at scripts/pytorch/).
fs.mkdirSync(path.join(stage, 'scripts', 'pytorch'), { recursive: true });
fs.copyFileSync(path.join(root, 'scripts', 'pytorch', 'sift_torch.py'), path.join(stage, 'scripts', 'pytorch', 'sift_torch.py'));

/** Files of each run-time package the bundles load (relative to the package folder; a trailing / copies a folder). */
const packages = {
  '@tensorflow/tfjs-core': ['package.json', 'LICENSE', 'dist/tf-core.node.js'],
  '@tensorflow/tfjs-backend-cpu': ['package.json', 'LICENSE', 'dist/tf-backend-cpu.node.js'],
  '@tensorflow/tfjs-backend-wasm': ['package.json', 'LICENSE', 'dist/tf-backend-wasm.node.js', 'dist/tfjs-backend-wasm.wasm', 'dist/tfjs-backend-wasm-simd.wasm', 'dist/tfjs-backend-wasm-threaded-simd.wasm'],
  '@tensorflow/tfjs-backend-webgpu': ['package.json', 'LICENSE', 'dist/tf-backend-webgpu.node.js'],
  // tfjs-backend-cpu requires it.
  seedrandom: ['package.json', 'LICENSE', 'index.js', 'seedrandom.js', 'lib/'],
  webgpu: ['package.json', 'LICENSE.md', 'index.js', 'dist/linux-x64/dawn.node'],
};
for (const [name, files] of Object.entries(packages)) {
  const from = path.dirname(require.resolve(`${name}/package.json`, { paths: [root] }));
  const to = path.join(stage, 'node_modules', name);
  for (const file of files) {
    const source = path.join(from, file);
    if (!fs.existsSync(source)) {
      if (file.startsWith('LICENSE')) continue;
      throw new Error(`${name}: ${file} is missing in ${from}`);
    }
    fs.mkdirSync(path.dirname(path.join(to, file)), { recursive: true });
    fs.cpSync(source, path.join(to, file), { recursive: file.endsWith('/') });
  }
}
process.stdout.write(`staged the bundle in ${stage}\n`);
