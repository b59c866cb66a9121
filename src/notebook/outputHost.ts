/**
 * The host's side of the notebook renderer's messages (src/protocol/notebook.ts):
 * for each output the renderer draws, the curves of its runs — read from the
 * run folders and decimated by the dashboard's own model, so a chart in a
 * notebook and in the dashboard are one piece of code — then, while a run
 * trains, the model's deltas from the worker's lines, and the thumbnails of
 * its last trained batch.
 *
 * `Target` is whatever the host posts to (the notebook editor); no editor
 * imports, so it is tested with plain Node tests against fixture runs.
 */
import { lastSelection, lineageOf } from '../panels/runs';
import { DashboardModel } from '../panels/dashboard';
import { resolveDataSpec, type ThumbnailService } from '../panels/thumbnails';
import { readRunJson, type MetricLine, type SelectionLine } from '../core/runs/record';
import type { LiveRun, ManagerEvent } from '../extension/runManager';
import { defaultDashboardView, type CurveMetric, type DashboardView } from '../protocol/webview';
import { batchStripPairs, batchStripSize, notebookXAxis, type BatchStrip, type NotebookHostMessage, type NotebookRendererMessage } from '../protocol/notebook';
import { resolveSavedDir } from './outputs';

/** What the host needs of the run manager. */
export interface LiveRuns {
  onEvent(listener: (event: ManagerEvent) => void): () => void;
  find(dir: string): LiveRun | undefined;
}

export interface OutputHostOptions {
  runs: LiveRuns;
  thumbnails: ThumbnailService;
  /** Folders a run's relative `data` resolves against (the workspace folders), besides the notebook's. */
  baseDirs: () => readonly string[];
  /** How often live deltas are sent. */
  flushMs?: number;
  /** Least time between two thumbnail strips of a training run. */
  batchIntervalMs?: number;
}

interface Watch<Target> {
  target: Target;
  key: string;
  notebookDir: string;
  metrics: CurveMetric[];
  model: DashboardModel;
  /** run folder → id, for the runs this output shows. */
  runs: Map<string, string>;
  batch: boolean;
  /** The run whose batches the strip shows (the first), its newest selection, and when a strip was last sent. */
  batchRun?: { dir: string; id: string; data: string; pending?: SelectionLine; sentAt: number };
}

type WatchPayload = Extract<NotebookRendererMessage, { type: 'watch' }>['payload'];

export class NotebookOutputHost<Target> {
  /** Per target (editor), its outputs by key. */
  private readonly byTarget = new Map<Target, Map<string, Watch<Target>>>();
  private readonly unsubscribe: () => void;
  private timer: ReturnType<typeof setInterval> | undefined;
  private readonly options: Required<OutputHostOptions>;

  constructor(
    private readonly post: (target: Target, message: NotebookHostMessage) => void,
    options: OutputHostOptions,
  ) {
    this.options = { flushMs: 250, batchIntervalMs: 3000, ...options };
    this.unsubscribe = options.runs.onEvent((event) => this.take(event));
  }

  /** The answer to `watch`: posts the snapshot, then the strip of the last batch (its images take a moment). */
  async watch(target: Target, notebookDir: string, payload: WatchPayload): Promise<void> {
    const model = new DashboardModel();
    const runs = new Map<string, string>();
    const problems: string[] = [];
    // Watching before the runs are read: what their workers report meanwhile is kept by the model.
    const watch: Watch<Target> = { target, key: payload.key, notebookDir, metrics: payload.metrics, model, runs, batch: payload.batch };
    let watches = this.byTarget.get(target);
    if (!watches) this.byTarget.set(target, (watches = new Map()));
    watches.set(payload.key, watch);
    for (const saved of payload.dirs) {
      const dir = resolveSavedDir(saved, notebookDir);
      try {
        runs.set(dir, readRunJson(dir).id);
        await model.addRun(dir);
      } catch (error) {
        runs.delete(dir);
        problems.push(`${saved}: ${(error as Error).message} (moved or deleted? Run the cell again.)`);
      }
    }
    // No heatmap in a notebook output: a run id that matches none keeps the model from building one.
    const view: DashboardView = { ...defaultDashboardView, xAxis: notebookXAxis, buckets: payload.buckets, heatmapRun: '' };
    const snapshot = await model.snapshot(view);
    if (snapshot.type !== 'snapshot') return;
    this.post(target, {
      type: 'snapshot',
      payload: {
        key: payload.key,
        runs: snapshot.payload.runs,
        charts: snapshot.payload.charts.filter((chart) => watch.metrics.includes(chart.metric)),
        live: this.live(watch),
        ...(problems.length ? { problem: problems.join('\n') } : {}),
      },
    });
    this.schedule();
    const [first] = runs;
    if (!payload.batch || !first) return;
    const [dir, id] = first;
    try {
      const json = readRunJson(dir);
      watch.batchRun = { dir, id, data: resolveDataSpec(json.config.data, [...this.options.baseDirs(), notebookDir]), sentAt: 0 };
      const last = await lastSelection(lineageOf(dir, json));
      if (last) await this.sendBatch(watch, last);
    } catch {
      // No strip: the curves and table still show.
    }
  }

  unwatch(target: Target, key: string): void {
    this.byTarget.get(target)?.delete(key);
    this.schedule();
  }

  /** The editor closed: forget its outputs. */
  forget(target: Target): void {
    this.byTarget.delete(target);
    this.schedule();
  }

  /** The targets with outputs watched. */
  get targets(): Target[] {
    return [...this.byTarget.keys()];
  }

  private get watches(): Watch<Target>[] {
    return [...this.byTarget.values()].flatMap((watches) => [...watches.values()]);
  }

  /** Sends what changed since the last flush (the timer calls it; tests call it directly). */
  flush(): void {
    const now = Date.now();
    for (const watch of this.watches) {
      const live = this.live(watch);
      for (const message of watch.model.flush()) {
        if (message.type !== 'delta') continue;
        const { runs, charts, patches } = message.payload;
        const wanted = (metric: CurveMetric): boolean => watch.metrics.includes(metric);
        const chartsShown = charts?.filter((chart) => wanted(chart.metric));
        const patchesShown = patches.filter((patch) => wanted(patch.metric));
        if (!runs && !chartsShown?.length && patchesShown.length === 0) continue;
        this.post(watch.target, {
          type: 'delta',
          payload: { key: watch.key, ...(runs ? { runs } : {}), ...(chartsShown?.length ? { charts: chartsShown } : {}), patches: patchesShown, live },
        });
      }
      const strip = watch.batchRun;
      if (strip?.pending && now - strip.sentAt >= this.options.batchIntervalMs) {
        const line = strip.pending;
        strip.pending = undefined;
        void this.sendBatch(watch, line);
      }
    }
    this.schedule();
  }

  dispose(): void {
    this.unsubscribe();
    clearInterval(this.timer);
    this.timer = undefined;
    this.byTarget.clear();
  }

  // ---- internals -------------------------------------------------------------

  private live(watch: Watch<Target>): boolean {
    return [...watch.runs.keys()].some((dir) => this.options.runs.find(dir) !== undefined);
  }

  /** A worker event reaches every output that shows its run. */
  private take(event: ManagerEvent): void {
    const dir = event.run.run?.dir;
    if (!dir) return;
    for (const watch of this.watches) {
      const id = watch.runs.get(dir);
      if (id === undefined) continue;
      switch (event.type) {
        case 'changed':
          watch.model.updateRun(id, { status: event.run.state, step: event.run.step });
          break;
        case 'worker':
          if (event.event.type === 'metrics') watch.model.appendMetric(id, event.event.line as MetricLine);
          else if (event.event.type === 'selection' && watch.batchRun?.dir === dir) watch.batchRun.pending = event.event.line as unknown as SelectionLine;
          break;
        case 'exited': {
          // The record's final word (finished, failed, interrupted…), and the strip of the last batch now.
          let status: string = event.run.state;
          try {
            status = readRunJson(dir).status;
          } catch {
            // Keep the last state the worker reported.
          }
          watch.model.updateRun(id, { status });
          if (watch.batchRun) watch.batchRun.sentAt = 0;
          break;
        }
        default: {
          const unreachable: never = event;
          throw new Error(`unknown manager event ${JSON.stringify(unreachable)}`);
        }
      }
    }
    this.schedule();
  }

  private async sendBatch(watch: Watch<Target>, line: SelectionLine): Promise<void> {
    const strip = watch.batchRun;
    if (!strip || !Array.isArray(line.ids)) return;
    strip.sentAt = Date.now();
    const ids = line.ids.slice(0, batchStripPairs);
    const { thumbnails } = this.options;
    let pairs: BatchStrip['pairs'];
    try {
      const [texts, images] = await Promise.all([thumbnails.pairs(strip.data, ids), thumbnails.images(strip.data, ids, batchStripSize)]);
      pairs = ids.map((id, i) => {
        const text = texts.get(id);
        const image = images[i];
        return {
          id,
          caption: text?.caption ?? '',
          ...(text?.noisy !== undefined ? { noisy: text.noisy } : {}),
          ...(image?.uri ? { uri: image.uri } : { problem: image?.problem ?? 'no image' }),
        };
      });
    } catch (error) {
      pairs = ids.map((id) => ({ id, caption: '', problem: (error as Error).message }));
    }
    if (this.byTarget.get(watch.target)?.get(watch.key) !== watch) return;
    this.post(watch.target, { type: 'batch', payload: { key: watch.key, batch: { run: strip.id, step: line.step, pairs } } });
  }

  /** The flush timer runs while some watched run trains or has news to send. */
  private schedule(): void {
    const needed = this.watches.some((watch) => this.live(watch) || watch.batchRun?.pending !== undefined);
    if (needed && !this.timer) {
      this.timer = setInterval(() => this.flush(), this.options.flushMs);
      this.timer.unref?.();
    } else if (!needed && this.timer) {
      // One last flush sends what the end of a run changed.
      clearInterval(this.timer);
      this.timer = undefined;
      this.flush();
    }
  }
}
