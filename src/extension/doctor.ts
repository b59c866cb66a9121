/**
 * Check GPU Setup: every TensorFlow.js backend is tried in a child process
 * (`sift doctor --json`; a native backend that crashes while loading takes
 * only that process down), and the outcome becomes a Markdown report: what
 * loaded, what failed and how to fix it, and which backend runs will use
 * under the `sift.backend` setting.
 *
 * No editor imports: the extension opens the Markdown it returns.
 */
import { execFile, fork } from 'node:child_process';
import type { DoctorReport } from '../cli/main';
import type { BackendAttempt, BackendName } from '../core/backend';
import { backendChoice, type BackendSetting } from './runConfig';

/** Runs `node <cli> doctor --json` and parses its report; rejects with what went wrong in the user's terms. */
export function probeInChildProcess(cli: string, options: { cwd?: string; timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): Promise<DoctorReport> {
  return new Promise((resolve, reject) => {
    const child = fork(cli, ['doctor', '--json'], { cwd: options.cwd, env: options.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe', 'ipc'], execArgv: [] });
    let stdout = '';
    let stderr = '';
    child.stdout?.setEncoding('utf8').on('data', (text: string) => (stdout += text));
    child.stderr?.setEncoding('utf8').on('data', (text: string) => (stderr += text));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`The backend check took longer than ${(options.timeoutMs ?? 120_000) / 1000} s and was stopped.`));
    }, options.timeoutMs ?? 120_000);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(new Error(`The backend check could not start: ${error.message}`));
    });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      const line = stdout.trim().split('\n').at(-1) ?? '';
      try {
        resolve(JSON.parse(line) as DoctorReport);
      } catch {
        const how = signal ? `was killed by ${signal} (a native backend may have crashed while loading)` : `exited with code ${code}`;
        reject(new Error(`The backend check ${how}.${stderr.trim() ? `\n${stderr.trim().split('\n').slice(-8).join('\n')}` : ''}`));
      }
    });
  });
}

/** Whether `nvidia-smi` answers, and the GPUs it lists: tells a missing driver from missing CUDA libraries. */
export function nvidiaSmi(): Promise<{ found: boolean; gpus: string[] }> {
  return new Promise((resolve) => {
    execFile('nvidia-smi', ['-L'], { timeout: 10_000 }, (error, stdout) => {
      if (error) resolve({ found: false, gpus: [] });
      else resolve({ found: true, gpus: stdout.split('\n').filter((line) => line.trim() !== '') });
    });
  });
}

export interface DoctorContext {
  setting: BackendSetting;
  /** Where the extension is installed: the native backends are npm packages installed there. */
  extensionPath: string;
  ldLibraryPath: string | undefined;
  gpu: { found: boolean; gpus: string[] };
}

const outcomeMark: Record<BackendAttempt['outcome'], string> = { chosen: '**loads**', available: '**loads**', skipped: 'loads, passed over', failed: 'failed', 'not-tried': 'not tried' };

/** Which backend a run will use under the setting, and whether it can start at all. */
export function backendForRuns(report: DoctorReport, setting: BackendSetting): { backend: BackendName | null; explanation: string } {
  const choice = backendChoice(setting);
  if (choice === 'auto') {
    if (!report.chosen) return { backend: null, explanation: 'No backend loads, so no run can start.' };
    // A software WebGPU adapter loads but is slower than wasm: auto passes over it.
    const software = report.chosen !== 'webgpu' && report.attempts.some((a) => a.name === 'webgpu' && a.outcome === 'available' && a.adapter?.software);
    return {
      backend: report.chosen,
      explanation: `\`sift.backend\` is \`auto\`: the first backend that loads, in the order above${software ? ', passing over `webgpu`, whose only adapter is a software one (slower than wasm)' : ''}.`,
    };
  }
  const attempt = report.attempts.find((a) => a.name === choice);
  return attempt?.outcome === 'available'
    ? { backend: choice, explanation: `\`sift.backend\` pins \`${setting}\`.` }
    : { backend: null, explanation: `\`sift.backend\` pins \`${setting}\`, which does not load here: runs will fail to start. Fix it as below, or set \`sift.backend\` to \`auto\`.` };
}

/** How fast the chosen CPU backend runs: its matMul kernel and the trainer's threads (as `sift doctor` prints them). */
function speedLines(report: DoctorReport, backend: BackendName | null): string[] {
  if (!backend || backend !== report.chosen) return [];
  const lines: string[] = [];
  if (report.matMul) {
    const { active, blas, reason, fix } = report.matMul;
    lines.push('', active ? `- matMul: native ${blas} (the wasm backend's matrix products run through it).` : `- matMul: wasm SIMD — ${reason ?? 'the native matMul is off'}${/\.$/.test(reason ?? '') ? '' : '.'}${fix ? ` Fix: ${fix}` : ''}`);
  }
  if (report.threads) lines.push(`${lines.length === 0 ? '\n' : ''}- threads: ${report.threads.threads} (${report.threads.reason}; a run's \`threads\` setting changes it).`);
  return lines;
}

export function doctorMarkdown(report: DoctorReport, context: DoctorContext): string {
  const runs = backendForRuns(report, context.setting);
  const lines = [
    '# Sift: GPU and backend check',
    '',
    `Each TensorFlow.js backend was loaded in a separate process (Node ${report.node}, ${report.platform}) and made to run a small matrix product.`,
    '',
    `**Runs will use: ${runs.backend ? `\`${runs.backend}\`` : 'nothing'}.** ${runs.explanation}`,
    ...speedLines(report, runs.backend),
    '',
    '| backend | package | result | why |',
    '|---|---|---|---|',
  ];
  const packages: Record<BackendName, string> = {
    'node-gpu': '@tensorflow/tfjs-node-gpu',
    webgpu: '@tensorflow/tfjs-backend-webgpu` + `webgpu',
    node: '@tensorflow/tfjs-node',
    wasm: '@tensorflow/tfjs-backend-wasm',
    cpu: '@tensorflow/tfjs-backend-cpu',
  };
  const cell = (text: string | undefined): string => (text ?? '').replace(/\|/g, '\\|').replace(/\n/g, ' ');
  for (const attempt of report.attempts) lines.push(`| \`${attempt.name}\` | \`${packages[attempt.name]}\` | ${outcomeMark[attempt.outcome]} | ${cell(attempt.reason)} |`);
  if (report.warning) lines.push('', `> **Warning:** ${report.warning}`);

  const failed = report.attempts.filter((a) => a.outcome === 'failed');
  if (failed.length > 0) {
    lines.push('', '## Fixes', '');
    for (const attempt of failed) lines.push(`- **${attempt.name}**: ${attempt.fix ?? 'see the reason above.'}`);
  }

  const gpu = report.attempts.find((a) => a.name === 'node-gpu');
  if (gpu && gpu.outcome !== 'available') {
    lines.push(
      '',
      '## Training on an NVIDIA GPU',
      '',
      '`@tensorflow/tfjs-node-gpu` 4.22 is an optional dependency: its install downloads libtensorflow, so it is not shipped with the extension. To use a GPU:',
      '',
      `1. A working NVIDIA driver: \`nvidia-smi\` ${context.gpu.found ? `answers here (${context.gpu.gpus.map((g) => `\`${g}\``).join(', ') || 'no GPU listed'}).` : '**does not answer here**: install the driver first.'}`,
      '2. **CUDA 11.2** and **cuDNN 8.1** — the versions libtensorflow 2.9 in tfjs-node-gpu 4.22 is built against (newer CUDA major versions do not load).',
      `3. Their libraries on \`LD_LIBRARY_PATH\` of the editor, e.g. \`export LD_LIBRARY_PATH=/usr/local/cuda-11.2/lib64:/usr/local/cuda/extras/CUPTI/lib64:$LD_LIBRARY_PATH\`, then start the editor from that shell. Now: \`LD_LIBRARY_PATH=${context.ldLibraryPath ?? ''}\`${context.ldLibraryPath ? '' : ' (unset)'}.`,
      `4. Install the package beside the extension, on a machine that can download libtensorflow: \`cd "${context.extensionPath}" && npm install --no-save @tensorflow/tfjs-node-gpu@4.22.0\`.`,
      '5. Reload the window and run **Sift: Check GPU Setup** again.',
    );
  }
  lines.push(...webGpuSection(report, context));
  lines.push('', 'Set `sift.backend` to pin a backend (`gpu` means `node-gpu`); `auto` takes the first that loads, in the order of the table, except `webgpu` on a software adapter.', '');
  return lines.join('\n');
}

/** The WebGPU adapter, or why there is none and the fix for this system; nothing for reports without it (older CLIs). */
function webGpuSection(report: DoctorReport, context: DoctorContext): string[] {
  const status = report.webgpu;
  if (!status) return [];
  const lines = ['', '## WebGPU', ''];
  const adapter = status.adapter;
  if (adapter) {
    const kind = adapter.software ? '**a software adapter**: it emulates a GPU on the CPU and trains slower than `wasm`' : 'a hardware adapter';
    lines.push(
      `Dawn offers ${kind}.`,
      '',
      '| vendor | architecture | device | description | fallback adapter |',
      '|---|---|---|---|---|',
      `| ${[adapter.vendor, adapter.architecture, adapter.device, adapter.description].map((text) => text.replace(/\|/g, '\\|') || '—').join(' | ')} | ${adapter.isFallbackAdapter ? 'yes' : 'no'} |`,
    );
    if (adapter.software) lines.push('', '`auto` passes over it; set `sift.backend` to `webgpu` to use it anyway, e.g. to test the webgpu path.');
  } else {
    lines.push(`No WebGPU adapter: ${status.reason ?? 'the webgpu backend did not load.'}`);
  }
  if (status.fix && (!adapter || adapter.software)) lines.push('', `**${adapter ? 'For a GPU' : 'Fix'}:** ${status.fix}`);
  const attempt = report.attempts.find((a) => a.name === 'webgpu');
  if (attempt?.outcome === 'failed' && /not installed/.test(attempt.reason ?? '')) {
    lines.push('', `The webgpu backend's packages are not shipped with the extension. Install them beside it: \`cd "${context.extensionPath}" && npm install --no-save webgpu@0.6 @tensorflow/tfjs-backend-webgpu@4.22.0\`, then reload the window.`);
  }
  return lines;
}
