/**
 * The runs on disk, as the Runs view lists them: the folders under the runs
 * folder, read asynchronously so the extension host never blocks on them.
 * Each refresh rereads the small run.json files, but reads only the bytes
 * appended to a metrics.jsonl since the last refresh (a rewrite, as resume
 * does when it drops lines past its checkpoint, is noticed by the file
 * shrinking or changing identity and read again whole). Live progress comes
 * from worker events (RunManager); this is the record of everything else.
 *
 * No editor imports: it runs in plain Node tests and the host benchmark.
 */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { followJsonl, jsonlStart, type JsonlPosition } from '../core/runs/jsonl';
import { runForest, type RunListing } from '../core/runs/lineage';
import { orphaned, type MetricLine, type RunJson } from '../core/runs/record';

interface MetricsTail {
  /** How far metrics.jsonl was read: only what lies past it is read next time. */
  position: JsonlPosition;
  lastTrainStep: number | undefined;
  bestI2tR1: number | undefined;
}

export interface IndexedRun extends RunListing {
  json?: RunJson;
  children: IndexedRun[];
}

export class RunIndex {
  private readonly tails = new Map<string, MetricsTail>();
  private forest: IndexedRun[] = [];
  private readonly byDir = new Map<string, IndexedRun>();
  private refreshing: Promise<IndexedRun[]> | undefined;
  private again = false;

  constructor(readonly root: string) {}

  /** The runs as a tree, as of the last refresh. */
  get runs(): readonly IndexedRun[] {
    return this.forest;
  }

  /** Every run, parents before their branches. */
  flat(): IndexedRun[] {
    const out: IndexedRun[] = [];
    const visit = (run: IndexedRun): void => {
      out.push(run);
      run.children.forEach(visit);
    };
    this.forest.forEach(visit);
    return out;
  }

  get(dir: string): IndexedRun | undefined {
    return this.byDir.get(path.resolve(dir));
  }

  /** Rereads the folder. Calls made while one runs are folded into one more pass after it. */
  refresh(): Promise<IndexedRun[]> {
    if (this.refreshing) {
      this.again = true;
      return this.refreshing;
    }
    this.refreshing = (async () => {
      try {
        do {
          this.again = false;
          await this.scan();
        } while (this.again);
        return this.forest;
      } finally {
        this.refreshing = undefined;
      }
    })();
    return this.refreshing;
  }

  private async scan(): Promise<void> {
    let names: string[];
    try {
      names = await fs.readdir(this.root);
    } catch {
      names = [];
    }
    const listings = (await Promise.all(names.map((name) => this.describe(path.resolve(this.root, name))))).filter((run): run is IndexedRun => run !== undefined);
    const seen = new Set(listings.map((run) => run.dir));
    for (const dir of this.tails.keys()) if (!seen.has(dir)) this.tails.delete(dir);
    this.byDir.clear();
    for (const run of listings) this.byDir.set(run.dir, run);
    this.forest = runForest(listings) as IndexedRun[];
  }

  private async describe(dir: string): Promise<IndexedRun | undefined> {
    let text: string;
    try {
      text = await fs.readFile(path.join(dir, 'run.json'), 'utf8');
    } catch {
      return undefined;
    }
    let json: RunJson;
    try {
      json = JSON.parse(text) as RunJson;
    } catch {
      return { dir, id: path.basename(dir), status: 'unreadable', method: '?', step: 0, totalSteps: 0, parent: null, forkStep: null, created: '', children: [] };
    }
    const tail = await this.readMetrics(dir);
    if (orphaned(json)) {
      json = { ...json, status: 'interrupted', error: { message: `Its training process (pid ${json.pid}) ended without recording why, at step ${Math.max(json.forkStep ?? 0, tail?.lastTrainStep ?? 0)}. Resume it from its last checkpoint.` } };
    }
    return {
      dir,
      id: json.id,
      status: json.status,
      method: json.config?.method ?? '?',
      step: Math.max(json.forkStep ?? 0, tail?.lastTrainStep ?? 0),
      totalSteps: json.config?.steps ?? 0,
      bestI2tR1: tail?.bestI2tR1,
      parent: json.parent ?? null,
      forkStep: json.forkStep ?? null,
      created: json.created ?? '',
      children: [],
      json,
    };
  }

  private async readMetrics(dir: string): Promise<MetricsTail | undefined> {
    const file = path.join(dir, 'metrics.jsonl');
    const tail = this.tails.get(dir) ?? { position: jsonlStart, lastTrainStep: undefined, bestI2tR1: undefined };
    const reset = (): void => {
      tail.lastTrainStep = undefined;
      tail.bestI2tR1 = undefined;
    };
    // An unreadable log lists the run without its step and recall, as a missing one does.
    const position = await followJsonl(file, tail.position, (text) => absorb(tail, text), reset).catch(() => undefined);
    if (!position) {
      this.tails.delete(dir);
      return undefined;
    }
    tail.position = position;
    this.tails.set(dir, tail);
    return tail;
  }
}

function absorb(tail: MetricsTail, text: string): void {
  if (text.trim() === '') return;
  let line: MetricLine;
  try {
    line = JSON.parse(text) as MetricLine;
  } catch {
    // A damaged line: the listing goes on without it (resume rewrites the file).
    return;
  }
  if (line.type === 'train') tail.lastTrainStep = Math.max(tail.lastTrainStep ?? 0, line.step);
  if (line.type === 'eval' && (tail.bestI2tR1 === undefined || line.i2t_r1 > tail.bestI2tR1)) tail.bestI2tR1 = line.i2t_r1;
}
