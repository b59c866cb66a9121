// Bundles each entry point with esbuild. Native and wasm packages stay external:
// they are loaded from node_modules at run time (and may be absent: optional deps).
import * as esbuild from 'esbuild';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

// TensorFlow.js packages stay external: a backend registers itself on the
// tfjs-core it requires, so the engine must load that same copy. The one
// exception is tfjs-core's gradient registrations, published only as ES
// modules: they are bundled, and register into tfjs's process-wide registry.
const external = [
  'vscode',
  '@napi-rs/image',
  '@tensorflow/tfjs-core',
  '@tensorflow/tfjs-backend-cpu',
  '@tensorflow/tfjs-backend-wasm',
  '@tensorflow/tfjs-node',
  '@tensorflow/tfjs-node-gpu',
  // Only resolved when the worker runs from TypeScript sources (tests); never bundled.
  'tsx',
];

// esbuild treats subpaths of an external package as external too; resolve
// this one to its file so it is bundled.
const bundleGradients = {
  name: 'bundle-tfjs-gradients',
  setup(build) {
    build.onResolve({ filter: /^@tensorflow\/tfjs-core\/dist\/register_all_gradients$/ }, () => ({
      path: require.resolve('@tensorflow/tfjs-core/dist/register_all_gradients.js'),
    }));
  },
};

const entries = [
  { in: 'src/cli/main.ts', out: 'dist/cli.js' },
  { in: 'src/extension/extension.ts', out: 'dist/extension.js' },
  // The training process the CLI and the editor fork; they find it beside themselves in dist/.
  { in: 'src/worker/main.ts', out: 'dist/worker.js' },
  // Data-parallel replicas of the learner: worker threads the training process starts from dist/.
  { in: 'src/core/train/replicaThread.ts', out: 'dist/replica.js' },
];

const watch = process.argv.includes('--watch');

/** Builds once, or keeps rebuilding on changes with --watch. */
async function buildOrWatch(options) {
  if (watch) await (await esbuild.context(options)).watch();
  else await esbuild.build(options);
}
for (const entry of entries) {
  const options = {
    entryPoints: [entry.in],
    outfile: entry.out,
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    sourcemap: true,
    external,
    plugins: [bundleGradients],
    logLevel: 'warning',
  };
  await buildOrWatch(options);
}

// The panels' browser code: one bundle per webview, each importing its own CSS,
// which esbuild writes beside it (dist/webview/<panel>.css).
const webviews = [
  { in: 'webview/dashboard/main.ts', out: 'dist/webview/dashboard.js' },
  { in: 'webview/inspector/main.ts', out: 'dist/webview/inspector.js' },
  // The notebook renderer is an ES module exporting `activate` (the editor imports it into the
  // notebook's output webview); it adopts its stylesheets in each output's shadow root, so they
  // are bundled as text.
  { in: 'webview/notebook/renderer.ts', out: 'dist/webview/notebook-renderer.js', format: 'esm', loader: { '.css': 'text' } },
];
for (const entry of webviews) {
  const options = {
    entryPoints: [entry.in],
    outfile: entry.out,
    bundle: true,
    platform: 'browser',
    format: entry.format ?? 'iife',
    ...(entry.loader ? { loader: entry.loader } : {}),
    target: 'chrome120',
    minify: true,
    sourcemap: true,
    logLevel: 'warning',
  };
  await buildOrWatch(options);
}
