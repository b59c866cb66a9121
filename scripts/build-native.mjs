// Builds the optional native matMul addon (native/sift_blas.c) with node-gyp
// where a BLAS can be linked: OpenBLAS's headers on Linux, Accelerate on
// macOS. Without one it says so and Sift runs matMuls in wasm. A failed build
// is a warning, not an error, unless SIFT_REQUIRE_NATIVE=1 (CI).
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const native = path.join(root, 'native');
const addon = path.join(native, 'build', 'Release', 'sift_blas.node');
const required = process.env.SIFT_REQUIRE_NATIVE === '1';

function give(message) {
  if (required) {
    process.stderr.write(`build:native: ${message}\n`);
    process.exit(1);
  }
  process.stderr.write(`build:native: ${message} Matrix products will run in wasm (slower).\n`);
  process.exit(0);
}

const sources = ['sift_blas.c', 'binding.gyp'].map((f) => path.join(native, f));
if (fs.existsSync(addon) && sources.every((f) => fs.statSync(f).mtimeMs <= fs.statSync(addon).mtimeMs)) process.exit(0);

if (process.platform === 'linux') {
  const headers = ['/usr/include/cblas.h', '/usr/include/openblas/cblas.h', ...['x86_64', 'aarch64'].map((arch) => `/usr/include/${arch}-linux-gnu/openblas-pthread/cblas.h`)];
  if (!headers.some((h) => fs.existsSync(h))) give('no OpenBLAS headers (cblas.h) found: install them (Debian/Ubuntu: apt-get install libopenblas-dev), then npm run build:native.');
} else if (process.platform !== 'darwin') {
  give(`no native BLAS build for ${process.platform} yet.`);
}

// npm puts its own node-gyp on the PATH of every script it runs.
const result = spawnSync('node-gyp', ['rebuild', '--directory', native], { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8', shell: process.platform === 'win32' });
if (result.status !== 0) give(`node-gyp could not build native/sift_blas.c:\n${(result.stderr || result.error?.message || '').trim().split('\n').slice(-8).join('\n')}\n`);
process.stdout.write(`build:native: built ${path.relative(root, addon)}\n`);
