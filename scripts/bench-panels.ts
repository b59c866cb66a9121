/**
 * bench:panels — how long opening the panels on a long run keeps the
 * extension host busy. Writes a long JEST run the way the trainer does
 * (b = 64 of 320 candidates a step, the whole super-batch every 25 steps; by
 * default 20,000 steps, 2,000 with --quick), then times the host side of:
 *
 * - opening a dashboard on it (run folders read, curves decimated, the
 *   learnability heatmap built from every selections line);
 * - opening the batch inspector on it, and showing a step that keeps its
 *   super-batch;
 *
 * each as wall time and as the longest stretch the event loop could not run
 * (what a user feels as a frozen editor: a timer ticking every millisecond
 * measures it). Figures, not assertions. Writes bench-results/panels.{json,md}.
 *
 *   npm run bench:panels [-- --quick]
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DashboardModel } from '../src/panels/dashboard';
import { InspectorModel } from '../src/panels/inspector';
import { ThumbnailService } from '../src/panels/thumbnails';
import { defaultDashboardView, defaultInspectorView } from '../src/protocol/webview';
import { tmpDir, writeFixtureRun } from '../test/unit/panels-fixtures';

const quick = process.argv.includes('--quick');
const steps = quick ? 2000 : 20_000;
const batchSize = 64;
const superBatchEvery = 25;

interface Measured {
  wallMs: number;
  longestStallMs: number;
  heapMiB: number;
}

/** Runs `op`, ticking a 1 ms timer meanwhile: the longest gap between ticks is how long the host could not answer anything. */
async function measure(op: () => Promise<unknown>): Promise<Measured> {
  global.gc?.();
  const heapBefore = process.memoryUsage().heapUsed;
  let last = performance.now();
  let longest = 0;
  const ticker = setInterval(() => {
    const now = performance.now();
    longest = Math.max(longest, now - last);
    last = now;
  }, 1);
  const began = performance.now();
  await op();
  const wallMs = performance.now() - began;
  longest = Math.max(longest, performance.now() - last);
  clearInterval(ticker);
  const heapMiB = (process.memoryUsage().heapUsed - heapBefore) / 2 ** 20;
  return { wallMs: Math.round(wallMs), longestStallMs: Math.round(longest), heapMiB: Math.round(heapMiB) };
}

async function main(): Promise<void> {
  const root = tmpDir('sift-bench-panels-');
  process.stdout.write(`Writing a ${steps.toLocaleString('en-US')}-step JEST run…\n`);
  const dir = writeFixtureRun(root, {
    id: 'long',
    method: 'jest',
    steps,
    pace: 1.8,
    batchSize,
    filterRatio: 0.8,
    evalEvery: 100,
    config: { superBatchEvery, chunks: 16 },
    extraSelection: (line, rng) => {
      if (line.step % superBatchEvery !== 0) return {};
      const rejected = Array.from({ length: 256 }, () => String(rng.int(3000)));
      const scores = (): number[] => rejected.map(() => Math.round((2 + rng.normal()) * 1000) / 1000);
      return {
        rejected: { ids: rejected, learner_loss: scores(), reference_loss: scores(), learnability: scores() },
        contributions: line.ids.map((_, k) => ({ own: line.learnability![k], from: Array.from({ length: Math.min(8, Math.floor(k / 4) * 4) }, (_, m) => [m, Math.round(rng.normal() * 100) / 1000]), rest: 0.01 })),
      };
    },
  });
  const bytes = (file: string): number => fs.statSync(path.join(dir, file)).size;
  const files = { metricsMiB: bytes('metrics.jsonl') / 2 ** 20, selectionsMiB: bytes('selections.jsonl') / 2 ** 20 };
  const thumbnails = new ThumbnailService();
  const results: Record<string, Measured> = {};
  try {
    results['dashboard: open (runs, curves, heatmap)'] = await measure(async () => {
      const model = new DashboardModel({ heatmapIntervalMs: 0 });
      await model.addRun(dir);
      return model.snapshot(defaultDashboardView);
    });
    const inspector = new InspectorModel(dir, { thumbnails });
    results['inspector: open (latest step)'] = await measure(() => inspector.snapshot(defaultInspectorView));
    results['inspector: a step with its super-batch'] = await measure(() => inspector.selectStep(steps / 2));
  } finally {
    await thumbnails.close();
    fs.rmSync(root, { recursive: true, force: true });
  }
  const report = {
    what: `Host-side cost of opening the panels on a ${steps}-step JEST run (b = ${batchSize}, 320 candidates, the whole super-batch every ${superBatchEvery} steps). longestStallMs: the longest the event loop could not run, measured by a 1 ms timer.`,
    machine: `${os.cpus().length} × ${os.cpus()[0]?.model ?? '?'}, Node ${process.version}`,
    steps,
    files: { metricsMiB: Math.round(files.metricsMiB * 10) / 10, selectionsMiB: Math.round(files.selectionsMiB * 10) / 10 },
    results,
  };
  const table = [
    `Run: ${steps.toLocaleString('en-US')} steps; metrics.jsonl ${report.files.metricsMiB} MiB, selections.jsonl ${report.files.selectionsMiB} MiB.`,
    '',
    '| operation | wall | longest event-loop stall | heap growth |',
    '| --- | --- | --- | --- |',
    ...Object.entries(results).map(([name, r]) => `| ${name} | ${r.wallMs} ms | ${r.longestStallMs} ms | ${r.heapMiB} MiB |`),
  ].join('\n');
  fs.mkdirSync('bench-results', { recursive: true });
  fs.writeFileSync(path.join('bench-results', 'panels.json'), JSON.stringify(report, null, 2) + '\n');
  fs.writeFileSync(path.join('bench-results', 'panels.md'), table + '\n');
  process.stdout.write(`${table}\n\nWritten: bench-results/panels.json, bench-results/panels.md\n`);
}

main().catch((error) => {
  process.stderr.write(`${(error as Error).stack}\n`);
  process.exit(1);
});
