/**
 * The batch inspector's host side: a step's selections line becomes the grid
 * the webview shows — each pick with its caption, scores and how its pick
 * logit splits into its own score and its batch-mates' contributions — and
 * the host's state of one inspector panel (`InspectorModel`), which answers
 * the webview's messages:
 *
 *     ready(view)       → snapshot(view)
 *     select-step(step) → selectStep(step)
 *     follow(on)        → setFollow(on)
 *     images(ids, size) → images(ids, size)
 *     worker selection  → appendSelection(line)      (steps, and the step when following)
 *     worker status     → updateStatus(status)
 *
 * Every `superBatchEvery` steps a selections line also carries the
 * super-batch's other candidates (`rejected`) and the terms of each pick
 * logit (`contributions`); other steps keep the picks and a histogram.
 */
import * as path from 'node:path';
import { jsonlStart } from '../core/runs/jsonl';
import type { RunJson, SelectionLine } from '../core/runs/record';
import { readRunJson } from '../core/runs/record';
import { chunkSizes } from '../core/selection/selectors';
import type { TrainConfig } from '../core/train/config';
import {
  webviewProtocolVersion,
  type InspectorHostMessage,
  type InspectorRun,
  type InspectorView,
  type PairItem,
  type PairScores,
  type PickContributions,
  type PickSplit,
  type StepView,
} from '../protocol/webview';
import { indexSelections, indexSelectionsTail, lineageOf, liveStatuses, readSelectionAt, type LineageLink, type SelectionSpan, type SelectionsTail } from './runs';
import { resolveDataSpec, type PairText, type ThumbnailService } from './thumbnails';


type SplitConfig = Pick<TrainConfig, 'method' | 'chunks' | 'jointNormalization'>;

const finite = (value: unknown): number | undefined => (typeof value === 'number' && Number.isFinite(value) ? value : undefined);

/** A pick's own score S_kk under the run's method (the diagonal of the score matrix the sampler used). */
function ownScore(method: string, scores: PairScores): number | undefined {
  switch (method) {
    case 'jest':
    case 'independent':
      return scores.learnability;
    case 'hard-learner':
      return scores.learnerLoss;
    case 'easy-reference':
      return scores.referenceLoss === undefined ? undefined : -scores.referenceLoss;
    default:
      return undefined;
  }
}

/**
 * How each pick's logit splits (see PickSplit). The first chunk is drawn by
 * own score alone; a pick of chunk c had every pick of chunks 0…c−1 before
 * it. Without exact contributions, what the batch-mates added is inferred as
 * pick_logit × scale − own score.
 */
export function pickSplits(line: SelectionLine, config: SplitConfig, scores: readonly PairScores[]): PickSplit[] | undefined {
  if (line.pick_logit === undefined || config.method === 'uniform') return undefined;
  const count = line.ids.length;
  const sizes = config.method === 'independent' ? [count] : chunkSizes(count, config.chunks);
  const contributions = validContributions(line.contributions, count) ? line.contributions : undefined;
  const splits: PickSplit[] = [];
  let drawnBefore = 0;
  for (const [chunk, size] of sizes.entries()) {
    for (let k = 0; k < size && splits.length < count; k++) {
      const p = splits.length;
      const scale = config.jointNormalization === 'mean' && chunk > 0 ? 1 + 2 * drawnBefore : 1;
      const exact = contributions?.[p];
      const own = exact?.own ?? ownScore(config.method, scores[p]);
      const logit = finite(line.pick_logit[p]);
      const split: PickSplit = { chunk, chunks: sizes.length, drawnBefore, scale, exact: exact !== undefined };
      if (own !== undefined) split.own = own;
      if (exact) split.fromMates = exact.from.reduce((sum, [, value]) => sum + value, exact.rest ?? 0);
      else if (own !== undefined && logit !== undefined) split.fromMates = chunk === 0 ? 0 : logit * scale - own;
      splits.push(split);
    }
    drawnBefore += size;
  }
  return splits;
}

function scoresAt(line: { learner_loss?: number[]; reference_loss?: number[]; learnability?: number[]; pick_logit?: number[] }, k: number): PairScores {
  const scores: PairScores = {};
  const set = (key: keyof PairScores, value: unknown): void => {
    const v = finite(value);
    if (v !== undefined) scores[key] = v;
  };
  set('learnerLoss', line.learner_loss?.[k]);
  set('referenceLoss', line.reference_loss?.[k]);
  set('learnability', line.learnability?.[k]);
  set('pickLogit', line.pick_logit?.[k]);
  return scores;
}

function pairItem(id: string, order: number, scores: PairScores, text: PairText | undefined): PairItem {
  const item: PairItem = { id, caption: text?.caption ?? '', order, scores };
  if (text === undefined) item.missing = true;
  if (text?.label !== undefined) item.label = text.label;
  if (text?.noisy !== undefined) item.noisy = text.noisy;
  return item;
}

/** The grid of one step: picks in draw order with their scores and splits, and the rejected candidates where recorded. */
export function stepView(run: string, line: SelectionLine, pairs: ReadonlyMap<string, PairText | undefined>, config: SplitConfig): StepView {
  const scores = line.ids.map((_, k) => scoresAt(line, k));
  const splits = pickSplits(line, config, scores);
  const chosen = line.ids.map((id, k) => {
    const item = pairItem(id, k, scores[k], pairs.get(id));
    if (splits?.[k]) item.split = splits[k];
    return item;
  });
  const rejected = line.rejected ? line.rejected.ids.map((id, k) => pairItem(id, -1, scoresAt(line.rejected!, k), pairs.get(id))) : null;
  const view: StepView = { run, step: line.step, chosen, rejected };
  if (finite(line.candidates) !== undefined) view.candidates = line.candidates;
  if (validContributions(line.contributions, line.ids.length)) view.contributions = line.contributions;
  if (line.pool_hist) view.poolHist = line.pool_hist;
  if (finite(line.pool_noisy) !== undefined) view.poolNoisy = line.pool_noisy;
  return view;
}

/** Contributions the view can use: one entry per pick, finite numbers, batch-mates that exist. */
function validContributions(value: PickContributions[] | undefined, count: number): value is PickContributions[] {
  return (
    Array.isArray(value) &&
    value.length === count &&
    value.every(
      (entry) =>
        finite(entry?.own) !== undefined &&
        (entry.rest === undefined || finite(entry.rest) !== undefined) &&
        Array.isArray(entry.from) &&
        entry.from.every((pair) => Array.isArray(pair) && Number.isInteger(pair[0]) && pair[0] >= 0 && pair[0] < count && finite(pair[1]) !== undefined),
    )
  );
}

/** Sorted steps as inclusive ranges: [1, 2, 3, 7] → [[1, 3], [7, 7]]. */
export function stepRanges(sortedSteps: Iterable<number>): [number, number][] {
  const ranges: [number, number][] = [];
  for (const step of sortedSteps) {
    const last = ranges[ranges.length - 1];
    if (last && step === last[1] + 1) last[1] = step;
    else if (!last || step > last[1]) ranges.push([step, step]);
  }
  return ranges;
}

/** Every id a step view needs text for: picks and recorded rejects. */
const idsOf = (line: SelectionLine): string[] => [...line.ids, ...(line.rejected?.ids ?? [])];

export interface InspectorModelOptions {
  thumbnails: ThumbnailService;
  /** Folders a relative `data` path is resolved against (the workspace folders); see resolveDataSpec. */
  baseDirs?: readonly string[];
}

/**
 * The host's state of one inspector panel: one run, where each step's
 * selections line lies (not the lines: a long run's are tens of megabytes;
 * a step's line is read when it is shown), the step shown.
 */
export class InspectorModel {
  private json: RunJson;
  private readonly chain: LineageLink[];
  private spans = new Map<number, SelectionSpan>();
  /** Where the run's own selections file was indexed to; `tailStale` once its worker wrote more. */
  private tail: SelectionsTail = { file: '', position: jsonlStart };
  private tailStale = false;
  /** The newest line its worker reported (what a live view shows next). */
  private latest: SelectionLine | undefined;
  private steps: number[] = [];
  private follow = false;
  /** The index of the selections files, read a chunk at a time; every answer waits for it. */
  private readonly indexed: Promise<void>;
  readonly dataSpec: string;

  constructor(
    readonly dir: string,
    private readonly options: InspectorModelOptions,
  ) {
    this.json = readRunJson(dir);
    this.chain = lineageOf(dir, this.json);
    this.dataSpec = resolveDataSpec(this.json.config.data, options.baseDirs ?? []);
    this.indexed = indexSelections(this.chain).then(({ spans, tail }) => {
      this.spans = spans;
      this.tail = tail;
      this.steps = [...spans.keys()].sort((a, b) => a - b);
    });
    // A failure shows as the answer's error; this only keeps it from being an unhandled rejection meanwhile.
    this.indexed.catch(() => undefined);
  }

  get runId(): string {
    return this.json.id;
  }

  get live(): boolean {
    return liveStatuses.has(this.json.status);
  }

  /** The answer to `ready`. */
  async snapshot(view: InspectorView): Promise<InspectorHostMessage[]> {
    await this.indexed;
    this.follow = view.follow;
    const { messages, step } = await this.viewOf(view.follow ? null : view.step);
    const run: InspectorRun = {
      id: this.json.id,
      dir: this.dir,
      label: this.json.id,
      method: this.json.config.method,
      status: this.json.status,
      dataset: this.json.config.data,
      scored: this.json.config.method !== 'uniform',
      // Uniform runs score no super-batch; runs from before the setting existed kept none.
      superBatchEvery: this.json.config.method === 'uniform' ? 0 : (this.json.config.superBatchEvery ?? 0),
    };
    return [...messages, { type: 'snapshot', payload: { protocol: webviewProtocolVersion, run, stepRanges: stepRanges(this.steps), live: this.live, view: step ?? null } }];
  }

  /** The answer to `select-step` (null: the latest). */
  async selectStep(step: number | null): Promise<InspectorHostMessage[]> {
    const { messages, step: view } = await this.viewOf(step);
    return view ? [...messages, { type: 'step', payload: view }] : messages;
  }

  setFollow(on: boolean): void {
    this.follow = on;
  }

  /** A selections line the run's worker just wrote: the steps grew; when following, the new step is shown. */
  async appendSelection(line: SelectionLine): Promise<InspectorHostMessage[]> {
    if (!Array.isArray(line.ids) || typeof line.step !== 'number') return [];
    await this.indexed;
    this.latest = line;
    const last = this.steps[this.steps.length - 1];
    if (last === undefined || line.step > last) {
      // A new step: its place in the file is read when a look-up needs it.
      this.steps.push(line.step);
      this.tailStale = true;
    } else {
      // A step the index read already (written before it was reported), or a resume, which rewrote the file
      // without the steps past its checkpoint: catching up tells which.
      await this.catchUp();
    }
    const out: InspectorHostMessage[] = [{ type: 'steps', payload: { stepRanges: stepRanges(this.steps), live: this.live } }];
    if (this.follow) out.push(...(await this.selectStep(line.step)));
    return out;
  }

  updateStatus(status: string): InspectorHostMessage {
    this.json = { ...this.json, status: status as RunJson['status'] };
    return { type: 'steps', payload: { stepRanges: stepRanges(this.steps), live: this.live, status } };
  }

  /** The answer to `images`. */
  async images(ids: readonly string[], size: number): Promise<InspectorHostMessage> {
    return { type: 'images', payload: { size, images: await this.options.thumbnails.images(this.dataSpec, ids, size) } };
  }

  /**
   * Indexes what the run's own selections file gained since it was last read;
   * a file replaced or cut shorter (a resume keeps only the lines up to its
   * checkpoint) is indexed again from its start.
   */
  private async catchUp(): Promise<void> {
    this.tail = await indexSelectionsTail(this.spans, this.tail);
    this.tailStale = false;
    this.steps = [...this.spans.keys()].sort((a, b) => a - b);
    if (this.latest && this.latest.step > (this.steps.at(-1) ?? -1)) this.steps.push(this.latest.step);
  }

  /** A step's selections line: the one just reported, else read from where the index says it lies. */
  private async lineAt(step: number): Promise<SelectionLine | undefined> {
    if (this.latest?.step === step) return this.latest;
    if (!this.spans.has(step) && this.tailStale) await this.catchUp();
    const span = this.spans.get(step);
    if (!span) return undefined;
    try {
      return await readSelectionAt(span);
    } catch {
      // The file changed under the index (rewritten by a resume): index it again and read once more.
      await this.catchUp();
      const again = this.spans.get(step);
      return again && readSelectionAt(again);
    }
  }

  private async viewOf(requested: number | null): Promise<{ messages: InspectorHostMessage[]; step?: StepView }> {
    await this.indexed;
    if (this.steps.length === 0) return { messages: [] };
    const step = requested === null ? this.steps[this.steps.length - 1] : nearestAtOrBefore(this.steps, requested);
    const line = await this.lineAt(step);
    if (!line) return { messages: [{ type: 'notice', payload: { level: 'error', message: `Step ${step}'s selections line is no longer in ${path.join(this.dir, 'selections.jsonl')} (was the run resumed or its folder rewritten?). Reopen the inspector.` } }] };
    let pairs: ReadonlyMap<string, PairText | undefined>;
    const messages: InspectorHostMessage[] = [];
    try {
      pairs = await this.options.thumbnails.pairs(this.dataSpec, idsOf(line));
    } catch (error) {
      pairs = new Map();
      messages.push({ type: 'notice', payload: { level: 'error', message: `Cannot open the run's data (${this.json.config.data}): ${(error as Error).message}` } });
    }
    return { messages, step: stepView(this.json.id, line, pairs, this.json.config) };
  }
}

/** The step itself when recorded, else the closest recorded one before it (the first when none is). */
function nearestAtOrBefore(sorted: readonly number[], step: number): number {
  let lo = 0;
  let hi = sorted.length - 1;
  if (step <= sorted[0]) return sorted[0];
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (sorted[mid] <= step) lo = mid;
    else hi = mid - 1;
  }
  return sorted[lo];
}
