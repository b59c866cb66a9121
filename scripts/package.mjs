// npm run package: builds sift-<version>.vsix with @vscode/vsce (what goes in:
// .vscodeignore), then proves it works on its own: unpacks it into a temp
// folder outside the repository and runs the packaged CLI there — `doctor`
// (the shipped backends load) and a 20-step training run on built-in data
// (the worker, TensorFlow.js, wasm and image decoding resolve from the
// package's own node_modules).
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as os from 'node:os';
import * as path from 'node:path';

const require = createRequire(import.meta.url);
const yauzl = require('yauzl');
const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const { version } = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
const vsix = path.join(root, `sift-${version}.vsix`);

const vsce = path.join(root, 'node_modules', '@vscode', 'vsce', 'vsce');
// The manifest has no repository field (the project is not published from a public repository).
execFileSync(process.execPath, [vsce, 'package', '--allow-missing-repository', '--out', vsix], { cwd: root, stdio: 'inherit' });

function unzip(file, into) {
  return new Promise((resolve, reject) => {
    yauzl.open(file, { lazyEntries: true }, (error, zip) => {
      if (error) return reject(error);
      zip.on('error', reject);
      zip.on('end', resolve);
      zip.on('entry', (entry) => {
        const target = path.join(into, entry.fileName);
        if (!target.startsWith(into + path.sep)) return reject(new Error(`${entry.fileName} escapes the folder`));
        if (entry.fileName.endsWith('/')) {
          fs.mkdirSync(target, { recursive: true });
          return zip.readEntry();
        }
        fs.mkdirSync(path.dirname(target), { recursive: true });
        zip.openReadStream(entry, (streamError, stream) => {
          if (streamError) return reject(streamError);
          stream.pipe(fs.createWriteStream(target)).on('finish', () => zip.readEntry()).on('error', reject);
        });
      });
      zip.readEntry();
    });
  });
}

const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'sift-vsix-'));
try {
  await unzip(vsix, scratch);
  const cli = path.join(scratch, 'extension', 'dist', 'cli.js');
  const env = { ...process.env, NODE_PATH: '' };
  const doctor = execFileSync(process.execPath, [cli, 'doctor'], { cwd: scratch, env, encoding: 'utf8' });
  process.stdout.write(`\nThe packaged CLI, unpacked in ${scratch}:\n${doctor}`);
  if (!/Runs will use: (wasm|node|node-gpu)/.test(doctor)) throw new Error('the packaged extension loads no fast backend (wasm or native)');
  execFileSync(
    process.execPath,
    [cli, 'train', '--data', 'builtin:train?size=200', '--eval-data', 'builtin:eval?size=32', '--steps', '20', '--eval-every', '20', '--batch-size', '8', '--image-width', '16', '--text-width', '16', '--image-depth', '1', '--text-depth', '1', '--embed-dim', '16', '--run-dir', path.join(scratch, 'run')],
    { cwd: scratch, env, stdio: ['ignore', 'ignore', 'inherit'] },
  );
  const run = JSON.parse(fs.readFileSync(path.join(scratch, 'run', 'run.json'), 'utf8'));
  if (run.status !== 'finished') throw new Error(`the packaged CLI's training run ended ${run.status}`);
  const mb = (fs.statSync(vsix).size / 2 ** 20).toFixed(2);
  process.stdout.write(`\nThe packaged worker trained 20 steps on ${run.backend?.chosen}. ${path.relative(process.cwd(), vsix)}: ${mb} MiB.\n`);
} finally {
  fs.rmSync(scratch, { recursive: true, force: true });
}
