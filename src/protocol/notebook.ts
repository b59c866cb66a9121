/**
 * Sift notebooks (`*.siftnb`): what a cell's output saves, and the messages
 * between the extension host and the notebook renderer that draws those
 * outputs (DESIGN.md, "Messages").
 *
 * An output saves data, never drawings: a run's id, folder and summary
 * numbers, a comparison's table. The renderer draws the output from that
 * data at once (the table, the status) and, where the host answers, asks it
 * for the rest — the curves, decimated from the run folders as the
 * dashboard's are, then live deltas while the run trains, and the thumbnails
 * of the last batch — so a reopened notebook re-renders from the runs on disk.
 *
 * Renderer messaging: the renderer sends `watch` for each output it shows
 * (keyed by the output's id), the host answers `snapshot`, then `delta`s
 * and `batch`es while a run trains, until `unwatch`. Everything that crosses
 * is validated by its receiver with the parsers below. This module is
 * imported by both sides (the renderer bundles it): no Node or editor imports.
 */
import {
  curveMetrics,
  defaultDashboardView,
  parseDashboardHostMessage,
  thumbnailSize,
  type ChartData,
  type ChartPatch,
  type CurveMetric,
  type DashboardHostMessage,
  type RunInfo,
  type XAxis,
} from './webview';
import { checkFields, describe, isFiniteNumber, isNullableNumber, isObject, isStep, isString, type Fields, type Parsed } from './check';

/** The notebook type (package.json, contributes.notebooks) and its renderer's id (contributes.notebookRenderer). */
export const notebookType = 'sift-notebook';
export const notebookRendererId = 'sift.notebook-renderer';

/** Bumped when an output's data or a message changes shape. */
export const notebookProtocolVersion = 1;

/** What a notebook's curves are drawn against: the host decimates onto it and the renderer labels it (the dashboard's default). */
export const notebookXAxis: XAxis = defaultDashboardView.xAxis;

/** Output mimes the renderer draws. Errors use the editor's own error mime. */
export const runOutputMime = 'application/vnd.sift.run+json';
export const compareOutputMime = 'application/vnd.sift.compare+json';
export const errorOutputMime = 'application/vnd.code.notebook.error';

/** Metrics a run output's summary table shows, in its order. */
export const summaryMetrics = ['i2t_r1', 'i2t_r5', 't2i_r1', 't2i_r5', 'zeroshot_acc'] as const;
export type SummaryMetric = (typeof summaryMetrics)[number];

/** The numbers a run output saves: its newest eval and how far it trained. */
export interface RunSummary {
  examples_seen?: number;
  flops?: number;
  wall_s?: number;
  loss?: number;
  /** Step of the eval the metrics come from. */
  eval_step?: number;
  metrics: Partial<Record<SummaryMetric, number>>;
}

/**
 * What a run, reference or branch cell's output saves. `dir` is the run
 * folder relative to the notebook's folder (with `/`), or absolute when it
 * lies elsewhere, so a notebook and its runs can move together.
 */
export interface RunOutputData {
  version: number;
  cell: 'run' | 'reference' | 'branch';
  label?: string;
  id: string;
  dir: string;
  method: string;
  /** run.json's status, or the live run's state while it trains. */
  status: string;
  step: number;
  totalSteps: number;
  parent?: { id: string; step: number };
  summary: RunSummary;
  /** A sentence for the user (how it ended, what to do next). */
  message?: string;
}

export interface CompareRow {
  /** The cell label it was referred to by, when it was "@label". */
  label?: string;
  id: string;
  dir: string;
  method: string;
  filterRatio?: number;
  status: string;
  final?: number;
  examplesToTarget: number | null;
  examplesSpeedup: number | null;
  flopsToTarget: number | null;
  flopsSpeedup: number | null;
}

/** What a compare cell's output saves: the table `sift compare` prints, as data. */
export interface CompareOutputData {
  version: number;
  metric: CurveMetric;
  target: number;
  targetFrom: string;
  rows: CompareRow[];
}

// ---- renderer ⇄ host -----------------------------------------------------------

/** The last trained batch of a run, for the output's thumbnail strip. */
export interface BatchStrip {
  run: string;
  step: number;
  /** Pairs in draw order: the image (a data: URI) or why there is none, and the caption as text. */
  pairs: { id: string; caption: string; noisy?: boolean; uri?: string; problem?: string }[];
}

/** Most pairs a strip shows, and the size the host renders them at. */
export const batchStripPairs = 16;
export const batchStripSize = Math.min(64, thumbnailSize);

export type NotebookRendererMessage =
  /** Renderer → host, for each output it draws: the runs (saved `dir`s) and charts it wants. Answered by `snapshot`. */
  | { type: 'watch'; payload: { protocol: number; key: string; dirs: string[]; metrics: CurveMetric[]; buckets: number; batch: boolean } }
  /** Renderer → host: the output is gone (cleared, re-run, scrolled far away); stop sending its deltas. */
  | { type: 'unwatch'; payload: { key: string } }
  /** Renderer → host: a link of an output (Open Dashboard, Inspect Batch, Reveal Run) on these saved `dir`s. */
  | { type: 'open'; payload: { action: 'dashboard' | 'inspect' | 'reveal'; dirs: string[] } };

export type NotebookHostMessage =
  /** Host → renderer, after `watch`: the runs as they are now and their charts. */
  | { type: 'snapshot'; payload: { key: string; runs: RunInfo[]; charts: ChartData[]; live: boolean; problem?: string } }
  /** Host → renderer, while a run trains: the dashboard's deltas, for the charts this output shows. */
  | { type: 'delta'; payload: { key: string; runs?: RunInfo[]; charts?: ChartData[]; patches: ChartPatch[]; live: boolean } }
  /** Host → renderer: the last trained batch (after `snapshot`, then as new batches come while it trains). */
  | { type: 'batch'; payload: { key: string; batch: BatchStrip } };

// ---- validation ------------------------------------------------------------------

const isStringList = (value: unknown): boolean => Array.isArray(value) && value.every(isString);

const checkSummary = (value: unknown, what: string): string | undefined =>
  checkFields(value, what, [
    ['examples_seen', isFiniteNumber, 'a number', true],
    ['flops', isFiniteNumber, 'a number', true],
    ['wall_s', isFiniteNumber, 'a number', true],
    ['loss', isFiniteNumber, 'a number', true],
    ['eval_step', isStep, 'a step', true],
    ['metrics', (v) => isObject(v) && Object.entries(v).every(([k, x]) => (summaryMetrics as readonly string[]).includes(k) && isFiniteNumber(x)), `numbers for ${summaryMetrics.join(', ')}`],
  ]);

/** Validates a run output's saved data (it comes from a file anyone may have edited). */
export function parseRunOutput(value: unknown): Parsed<RunOutputData> {
  const problem =
    checkFields(value, 'run output', [
      ['version', (v) => v === notebookProtocolVersion, `${notebookProtocolVersion}`],
      ['cell', (v) => v === 'run' || v === 'reference' || v === 'branch', 'run, reference or branch'],
      ['label', isString, 'text', true],
      ['id', isString, 'a run id'],
      ['dir', (v) => isString(v) && v !== '', 'a run folder'],
      ['method', isString, 'text'],
      ['status', isString, 'text'],
      ['step', isStep, 'a step'],
      ['totalSteps', isStep, 'a step count'],
      ['parent', (v) => isObject(v) && isString(v.id) && isStep(v.step), '{ id, step }', true],
      ['message', isString, 'text', true],
    ]) ?? checkSummary((value as Fields).summary, 'run output.summary');
  return problem === undefined ? { ok: true, message: value as RunOutputData } : { ok: false, problem };
}

/** Validates a compare output's saved data. */
export function parseCompareOutput(value: unknown): Parsed<CompareOutputData> {
  let problem = checkFields(value, 'compare output', [
    ['version', (v) => v === notebookProtocolVersion, `${notebookProtocolVersion}`],
    ['metric', (v) => (curveMetrics as readonly unknown[]).includes(v), `one of ${curveMetrics.join(', ')}`],
    ['target', isFiniteNumber, 'a number'],
    ['targetFrom', isString, 'text'],
    ['rows', Array.isArray, 'a list'],
  ]);
  const rows = problem === undefined ? ((value as Fields).rows as unknown[]) : [];
  for (let i = 0; problem === undefined && i < rows.length; i++) {
    problem = checkFields(rows[i], `compare output.rows[${i}]`, [
      ['label', isString, 'text', true],
      ['id', isString, 'a run id'],
      ['dir', isString, 'a run folder'],
      ['method', isString, 'text'],
      ['filterRatio', isFiniteNumber, 'a number', true],
      ['status', isString, 'text'],
      ['final', isFiniteNumber, 'a number', true],
      ['examplesToTarget', isNullableNumber, 'a number or null'],
      ['examplesSpeedup', isNullableNumber, 'a number or null'],
      ['flopsToTarget', isNullableNumber, 'a number or null'],
      ['flopsSpeedup', isNullableNumber, 'a number or null'],
    ]);
  }
  return problem === undefined ? { ok: true, message: value as CompareOutputData } : { ok: false, problem };
}

const isKey = (v: unknown): boolean => isString(v) && v.length > 0 && v.length <= 200;
const isMetricList = (v: unknown): boolean => Array.isArray(v) && v.length > 0 && v.every((m) => (curveMetrics as readonly unknown[]).includes(m));
const isDirList = (v: unknown): boolean => isStringList(v) && (v as string[]).length > 0 && (v as string[]).length <= 64 && (v as string[]).every((d) => d !== '');

/** Validates a message the host received from the renderer. */
export function parseNotebookRendererMessage(value: unknown): Parsed<NotebookRendererMessage> {
  if (!isObject(value) || !isString(value.type)) return { ok: false, problem: `renderer → host: a message must be { type, payload }, not ${describe(value)}.` };
  const what = `renderer → host "${value.type}" payload`;
  let problem: string | undefined;
  switch (value.type) {
    case 'watch':
      problem = checkFields(value.payload, what, [
        ['protocol', (v) => v === notebookProtocolVersion, `protocol ${notebookProtocolVersion} (the renderer and the extension come from different Sift builds: reload the window)`],
        ['key', isKey, 'an output id'],
        ['dirs', isDirList, 'one to 64 run folders'],
        ['metrics', isMetricList, `some of ${curveMetrics.join(', ')}`],
        ['buckets', (v) => isStep(v) && (v as number) >= 10 && (v as number) <= 10000, 'a whole number from 10 to 10000'],
        ['batch', (v) => typeof v === 'boolean', 'true or false'],
      ]);
      break;
    case 'unwatch':
      problem = checkFields(value.payload, what, [['key', isKey, 'an output id']]);
      break;
    case 'open':
      problem = checkFields(value.payload, what, [
        ['action', (v) => v === 'dashboard' || v === 'inspect' || v === 'reveal', 'dashboard, inspect or reveal'],
        ['dirs', isDirList, 'one to 64 run folders'],
      ]);
      break;
    default:
      return { ok: false, problem: `renderer → host: unknown message type ${describe(value.type)}; known: watch, unwatch, open.` };
  }
  return problem === undefined ? { ok: true, message: value as NotebookRendererMessage } : { ok: false, problem };
}

/** The dashboard's checkers, for the parts of a notebook message that are the dashboard's (runs, charts, patches). */
function checkDashboardParts(payload: Fields, what: string): string | undefined {
  const delta: DashboardHostMessage = { type: 'delta', payload: { patches: (payload.patches ?? []) as ChartPatch[] } };
  if (payload.runs !== undefined) delta.payload.runs = payload.runs as RunInfo[];
  if (payload.charts !== undefined) delta.payload.charts = payload.charts as ChartData[];
  const parsed = parseDashboardHostMessage(delta);
  return parsed.ok ? undefined : `${what}: ${parsed.problem}`;
}

const checkBatch = (value: unknown, what: string): string | undefined => {
  const problem = checkFields(value, what, [
    ['run', isString, 'a run id'],
    ['step', isStep, 'a step'],
    ['pairs', (v) => Array.isArray(v) && v.length <= batchStripPairs, `at most ${batchStripPairs} pairs`],
  ]);
  if (problem !== undefined) return problem;
  const pairs = (value as Fields).pairs as unknown[];
  for (let i = 0; i < pairs.length; i++) {
    const pairProblem = checkFields(pairs[i], `${what}.pairs[${i}]`, [
      ['id', isString, 'text'],
      ['caption', isString, 'text'],
      ['noisy', (v) => typeof v === 'boolean', 'true or false', true],
      ['uri', (v) => isString(v) && v.startsWith('data:image/png;base64,'), 'a data:image/png URI', true],
      ['problem', isString, 'text', true],
    ]);
    if (pairProblem !== undefined) return pairProblem;
  }
  return undefined;
};

/** Validates a message the renderer received from the host. */
export function parseNotebookHostMessage(value: unknown): Parsed<NotebookHostMessage> {
  if (!isObject(value) || !isString(value.type)) return { ok: false, problem: `host → renderer: a message must be { type, payload }, not ${describe(value)}.` };
  const what = `host → renderer "${value.type}" payload`;
  let problem: string | undefined;
  switch (value.type) {
    case 'snapshot':
      problem =
        checkFields(value.payload, what, [
          ['key', isKey, 'an output id'],
          ['runs', Array.isArray, 'a list of runs'],
          ['charts', Array.isArray, 'a list of charts'],
          ['live', (v) => typeof v === 'boolean', 'true or false'],
          ['problem', isString, 'text', true],
        ]) ?? checkDashboardParts(value.payload as Fields, what);
      break;
    case 'delta':
      problem =
        checkFields(value.payload, what, [
          ['key', isKey, 'an output id'],
          ['patches', Array.isArray, 'a list of patches'],
          ['live', (v) => typeof v === 'boolean', 'true or false'],
        ]) ?? checkDashboardParts(value.payload as Fields, what);
      break;
    case 'batch':
      problem = checkFields(value.payload, what, [['key', isKey, 'an output id']]) ?? checkBatch((value.payload as Fields).batch, `${what}.batch`);
      break;
    default:
      return { ok: false, problem: `host → renderer: unknown message type ${describe(value.type)}; known: snapshot, delta, batch.` };
  }
  return problem === undefined ? { ok: true, message: value as NotebookHostMessage } : { ok: false, problem };
}
