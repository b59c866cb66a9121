/**
 * The messages between the extension host and its two webview panels, the
 * dashboard and the batch inspector (DESIGN.md, "Messages"). Each direction of
 * each panel is one discriminated union on `type` with a `payload`; the comment
 * on each member says which side sends it.
 *
 * Lifecycle of both panels: the webview loads and sends `ready` with the view
 * state it restored (vscode.getState), the host answers with one `snapshot`,
 * then only deltas. The host owns the data; the webview keeps only its own
 * view state, and tells the host the parts of it that change what the host
 * sends (x-axis, grid width, the step shown…).
 *
 * Everything that crosses the boundary is validated by its receiver with the
 * parsers at the end of this file, which name the first field that is wrong.
 * This module is imported by both sides (the webview bundles it), so it holds
 * no Node or editor imports.
 */
import type { BatchMateTerms } from '../core/runs/record';
import { checkArray, checkObject, describe, isFiniteNumber, isNullableNumber, isObject, isStep, isString, type Parsed } from './check';

/** Bumped when a message changes shape; `ready` and `snapshot` carry it. */
export const webviewProtocolVersion = 1;

// ---- shared vocabulary -----------------------------------------------------

/** What a curve can be drawn against: every one is non-decreasing in the step. */
export const xAxes = ['step', 'examples_seen', 'flops', 'flops_train', 'wall_s', 'active_s'] as const;
export type XAxis = (typeof xAxes)[number];

/**
 * The curves of the dashboard: train loss (every step), the eval metrics (every evalEvery steps), and the
 * distillation terms of a run that distils from its reference (every step; no chart when no shown run has them).
 */
export const curveMetrics = ['loss', 'i2t_r1', 'i2t_r5', 't2i_r1', 't2i_r5', 'zeroshot_acc', 'distill_loss', 'feature_loss'] as const;
export type CurveMetric = (typeof curveMetrics)[number];

/** Metrics where lower is better (the others are accuracies). */
export const lowerIsBetter: ReadonlySet<CurveMetric> = new Set(['loss', 'distill_loss', 'feature_loss']);

/** Metrics recorded on every trained batch: noisy, so examples-to-reach compares their smoothed curve (the evals: raw). */
export const perStepMetrics: ReadonlySet<CurveMetric> = new Set(['loss', 'distill_loss', 'feature_loss']);

/** Slots of the run palette; the webview maps them to the theme's chart colours. */
export const paletteSize = 10;

/** EMA smoothing stays below 1 so the smoothed curve always moves. */
export const maxSmoothing = 0.999;

export interface RunInfo {
  id: string;
  /** The run's folder: what the host re-opens when it restores the panel after a reload. */
  dir: string;
  /** What the legend shows: the folder name, and the method. */
  label: string;
  method: string;
  status: string;
  /** Palette slot, stable for the run while the panel lives (see `assignColors`). */
  color: number;
  parent: string | null;
  forkStep: number | null;
  /** Last step recorded (a branch's own, or its fork step before it has any). */
  step: number;
  totalSteps: number;
  /** The resolved config, for the legend's diff against a baseline run. */
  config: Record<string, unknown>;
}

// ---- dashboard -------------------------------------------------------------

/**
 * A chart's x grid, shared by every run drawn in it. Bucket i covers
 * [lo + i·width, lo + (i+1)·width) in x, or in log10(x) when `log`.
 */
export interface Grid {
  lo: number;
  width: number;
  log: boolean;
}

/**
 * One run's points in a chart, decimated onto the chart's grid: per bucket the
 * min, max and last value (what a line at one point per pixel must show), and
 * the mean and count, which the webview's EMA needs to weigh a bucket as the
 * raw points it stands for. `null` (and n = 0) where the run has no point.
 */
export interface SeriesColumns {
  run: string;
  min: (number | null)[];
  max: (number | null)[];
  last: (number | null)[];
  mean: (number | null)[];
  n: number[];
}

export interface ChartData {
  metric: CurveMetric;
  grid: Grid;
  /** Buckets sent: 0 … count − 1 (up to the last one any run reaches). */
  count: number;
  series: SeriesColumns[];
}

/** A live update of one chart: buckets `from` … count − 1 replace what the webview had there. */
export interface ChartPatch {
  metric: CurveMetric;
  from: number;
  count: number;
  /** Columns of length count − from, one per run in the chart. */
  series: SeriesColumns[];
}

/**
 * Learnability over time for one run: the super-batch histograms as a
 * heatmap (steps × score bins) and, beside it, the same for the picks.
 * Values are shares of their column (each column sums to 1 or is empty).
 */
export interface Heatmap {
  run: string;
  /** Step range of each column: [stepLo[i], stepHi[i]]. */
  stepLo: number[];
  stepHi: number[];
  /** Score range of the rows; row 0 is the lowest bin. */
  scoreLo: number;
  scoreHi: number;
  rows: number;
  /** Column-major: value of column c, row r at [c * rows + r]. */
  pool: number[];
  selected: number[];
}

/** Where a run first reached the target value of a metric (or that it has not yet). */
export interface ReachRow {
  run: string;
  reached: boolean;
  step?: number;
  examples_seen?: number;
  flops?: number;
  flops_train?: number;
  wall_s?: number;
  active_s?: number;
  /** The value it reached there. */
  value?: number;
  /** The best value so far, when not reached. */
  best?: number;
}

export interface ReachResult {
  metric: CurveMetric;
  target: number;
  /** True when the target was the baseline's final value (the user left it empty). */
  fromBaseline: boolean;
  rows: ReachRow[];
}

/**
 * The dashboard's view state: kept by the webview (setState), mirrored to the
 * host when it changes. The webview saves `DashboardState`, which is what a
 * panel serializer's deserializeWebviewPanel receives after a reload.
 */
export interface DashboardView {
  xAxis: XAxis;
  logX: boolean;
  /** Grid buckets per chart: about one per pixel of plot width. */
  buckets: number;
  /** EMA weight in [0, maxSmoothing]; the host uses it for "examples to reach" on the loss. */
  smoothing: number;
  /** Run the legend diffs configs against and whose final value is the default target. */
  baseline: string | null;
  /** Runs hidden from the charts (legend toggles). */
  hidden: string[];
  /** Run whose learnability heatmap is shown. */
  heatmapRun: string | null;
  reach: { metric: CurveMetric; target: number | null };
}

/** What the dashboard webview saves with setState: its view, and the folders of the runs it showed. */
export interface DashboardState {
  view: DashboardView;
  runDirs: string[];
}

/** The view a dashboard starts with (before the webview restores its own). */
export const defaultDashboardView: DashboardView = {
  // FLOPs (scoring and the reference's pass included): what a selecting run really costs; examples hide its scoring (README, "Which x-axis to read").
  xAxis: 'flops',
  logX: false,
  buckets: 800,
  smoothing: 0.6,
  baseline: null,
  hidden: [],
  heatmapRun: null,
  reach: { metric: 'i2t_r1', target: null },
};

export interface DashboardSnapshot {
  protocol: number;
  runs: RunInfo[];
  /** The x-axis and scale the charts were decimated for. */
  xAxis: XAxis;
  logX: boolean;
  charts: ChartData[];
  heatmap: Heatmap | null;
  reach: ReachResult | null;
}

export type DashboardHostMessage =
  /** Host → dashboard, after `ready`: everything the view shows. */
  | { type: 'snapshot'; payload: DashboardSnapshot }
  /** Host → dashboard: charts redone whole (a new x-axis, log scale or width, or a grid that grew). */
  | { type: 'charts'; payload: { xAxis: XAxis; logX: boolean; charts: ChartData[] } }
  /**
   * Host → dashboard, while runs train: the runs' new status and step (all of
   * them, when any changed), charts redone whole (a run's first point in a
   * chart, or a point past the grid's end), and the buckets that changed.
   */
  | { type: 'delta'; payload: { runs?: RunInfo[]; charts?: ChartData[]; patches: ChartPatch[] } }
  /** Host → dashboard: the heatmap of `view.heatmapRun` (null: that run records no scores). */
  | { type: 'heatmap'; payload: { heatmap: Heatmap | null } }
  /** Host → dashboard: "examples to reach X" for the runs shown. */
  | { type: 'reach'; payload: ReachResult | null }
  /** Host → dashboard: how an export went (`path` when saved, `cancelled` when the user closed the dialog). */
  | { type: 'exported'; payload: { ok: boolean; path?: string; cancelled?: boolean; message?: string } }
  /** Host → dashboard: a problem the user should see (a run folder that cannot be read…). */
  | { type: 'notice'; payload: { level: 'info' | 'warning' | 'error'; message: string } };

export type DashboardWebviewMessage =
  /** Dashboard → host, once loaded: the view state it restored. Answered by `snapshot`. */
  | { type: 'ready'; payload: { protocol: number; view: DashboardView } }
  /** Dashboard → host: the view changed (the host re-sends what depends on it). */
  | { type: 'view'; payload: { view: DashboardView } }
  /** Dashboard → host: save a chart's data; the host shows the save dialog and answers `exported`. */
  | { type: 'export-csv'; payload: { suggestedName: string; csv: string } }
  /** Dashboard → host: save a chart as PNG (base64, no data: prefix); answered by `exported`. */
  | { type: 'export-png'; payload: { suggestedName: string; pngBase64: string } }
  /** Dashboard → host: open the batch inspector on this run and step (a click on the heatmap). */
  | { type: 'inspect'; payload: { run: string; step: number } };

// ---- batch inspector -------------------------------------------------------

/** The scores a pick carries (as recorded in selections.jsonl); absent for methods that do not score. */
export interface PairScores {
  learnerLoss?: number;
  referenceLoss?: number;
  learnability?: number;
  pickLogit?: number;
}

export const scoreKeys = ['learnerLoss', 'referenceLoss', 'learnability', 'pickLogit'] as const;
export type ScoreKey = (typeof scoreKeys)[number];

/**
 * How a pick's logit splits (DESIGN.md, "Joint selection"): its own score
 * S_kk and what the batch-mates drawn in earlier chunks added,
 * Σ_{i chosen before} (S_ik + S_ki); under 'mean' normalization the sum is
 * divided by `scale` = 1 + 2·drawnBefore. Inferred from the pick logit and
 * the own score unless `contributions` came with the step (then `exact`).
 */
export interface PickSplit {
  /** The chunk it was drawn in (0-based) of `chunks`. */
  chunk: number;
  chunks: number;
  /** Batch-mates drawn in earlier chunks. */
  drawnBefore: number;
  own?: number;
  fromMates?: number;
  scale: number;
  exact: boolean;
}

/**
 * Per pick, the terms of its pick logit, recorded by the trainer every
 * `superBatchEvery` steps (joint selection, sigmoid loss): `own` = S_kk,
 * `from` = [position in `chosen` of a batch-mate drawn before it, S_ik + S_ki]
 * for the largest few by magnitude, `rest` = the sum of the others.
 * Aligned with `StepView.chosen`.
 */
export type PickContributions = BatchMateTerms;

export interface PairItem {
  /** The dataset's id of the pair. */
  id: string;
  /** Dataset text: always rendered as text, never as HTML. */
  caption: string;
  label?: string;
  /** The data know the caption is wrong for the image (built-in data, where noise was injected). */
  noisy?: boolean;
  /** Position in draw order (0 = drawn first); rejected candidates: −1. */
  order: number;
  scores: PairScores;
  split?: PickSplit;
  /** The id was not found in the dataset (changed since the run?): no image, no caption. */
  missing?: boolean;
}

export interface StepView {
  run: string;
  step: number;
  /** Super-batch size (candidates scored), where recorded. */
  candidates?: number;
  chosen: PairItem[];
  /** The super-batch's candidates that were not picked; null: this run does not record them. */
  rejected: PairItem[] | null;
  contributions?: PickContributions[];
  poolHist?: { lo: number; hi: number; counts: number[] };
  /** Share of the super-batch known to be noisy. */
  poolNoisy?: number;
}

export interface InspectorRun {
  id: string;
  /** The run's folder: what the host re-opens when it restores the panel after a reload. */
  dir: string;
  label: string;
  method: string;
  status: string;
  /** The dataset the ids belong to (config.data). */
  dataset: string;
  /** Whether the run's selection lines carry scores (every method but uniform). */
  scored: boolean;
  /** Steps between those that keep the whole super-batch (rejected candidates, batch-mate terms); 0: never. */
  superBatchEvery: number;
}

/** Inspector view state kept by the webview; `step` and `follow` are mirrored to the host. */
export interface InspectorView {
  /** The step shown; null: the latest. */
  step: number | null;
  follow: boolean;
  sort: { key: ScoreKey | 'order'; descending: boolean };
  filter: { key: ScoreKey | null; min: number | null; max: number | null; text: string };
  /** Id of the pair open in the detail view. */
  detail: string | null;
}

/** What the inspector webview saves with setState: its view, and the folder of its run. */
export interface InspectorState {
  view: InspectorView;
  runDir: string | null;
}

export const defaultInspectorView: InspectorView = {
  step: null,
  follow: false,
  sort: { key: 'order', descending: false },
  filter: { key: null, min: null, max: null, text: '' },
  detail: null,
};

export interface InspectorSnapshot {
  protocol: number;
  run: InspectorRun;
  /** Steps with a selection line, as inclusive ranges [lo, hi]. */
  stepRanges: [number, number][];
  live: boolean;
  view: StepView | null;
}

/** A decoded, resized image as a data: URI (PNG), or why there is none. */
export interface ImageEntry {
  id: string;
  uri?: string;
  width?: number;
  height?: number;
  problem?: string;
}

export type InspectorHostMessage =
  /** Host → inspector, after `ready`: the run, its steps and the step asked for. */
  | { type: 'snapshot'; payload: InspectorSnapshot }
  /** Host → inspector: the pairs of one step (answers `select-step`, or a new step while following). */
  | { type: 'step'; payload: StepView }
  /** Host → inspector: steps recorded so far grew (the run trains) or the run's status changed. */
  | { type: 'steps'; payload: { stepRanges: [number, number][]; live: boolean; status?: string } }
  /** Host → inspector: images asked for with `images`, at that size. */
  | { type: 'images'; payload: { size: number; images: ImageEntry[] } }
  /** Host → inspector: a problem the user should see (the dataset cannot be opened…). */
  | { type: 'notice'; payload: { level: 'info' | 'warning' | 'error'; message: string } };

export type InspectorWebviewMessage =
  /** Inspector → host, once loaded: the view state it restored. Answered by `snapshot`. */
  | { type: 'ready'; payload: { protocol: number; view: InspectorView } }
  /** Inspector → host: show this step (null: the latest). Answered by `step`. */
  | { type: 'select-step'; payload: { step: number | null } }
  /** Inspector → host: follow the newest step while the run trains (or stop). */
  | { type: 'follow'; payload: { on: boolean } }
  /** Inspector → host: images of these pairs, `size` px square (thumbnails, or the detail view's). Answered by `images`. */
  | { type: 'images'; payload: { ids: string[]; size: number } };

/** Image sizes the host serves: a thumbnail and the detail view's. */
export const thumbnailSize = 96;
export const detailSize = 320;
export const maxImageSize = 512;
/** Most ids one `images` request may ask for. */
export const maxImagesPerRequest = 256;

// ---- validation ------------------------------------------------------------

const isNumberArray = (value: unknown): boolean => Array.isArray(value) && value.every(isFiniteNumber);
const isNullableNumberArray = (value: unknown): boolean => Array.isArray(value) && value.every(isNullableNumber);
const oneOf =
  <T>(values: readonly T[]) =>
  (value: unknown): boolean =>
    values.includes(value as T);

const checkDashboardView = (value: unknown, what: string): string | undefined =>
  checkObject(value, what, (check) =>
    check
      .field('xAxis', oneOf(xAxes), `one of ${xAxes.join(', ')}`)
      .field('logX', (v) => typeof v === 'boolean', 'true or false')
      .field('buckets', (v) => isStep(v) && (v as number) >= 10 && (v as number) <= 10000, 'a whole number from 10 to 10000')
      .field('smoothing', (v) => isFiniteNumber(v) && v >= 0 && v <= maxSmoothing, `a number from 0 to ${maxSmoothing}`)
      .field('baseline', (v) => v === null || isString(v), 'a run id or null')
      .field('hidden', (v) => Array.isArray(v) && v.every(isString), 'a list of run ids')
      .field('heatmapRun', (v) => v === null || isString(v), 'a run id or null')
      .nested('reach', (reach, inner) =>
        checkObject(reach, inner, (c) =>
          c.field('metric', oneOf(curveMetrics), `one of ${curveMetrics.join(', ')}`).field('target', isNullableNumber, 'a number or null'),
        ),
      ),
  );

const checkRunInfo = (value: unknown, what: string): string | undefined =>
  checkObject(value, what, (check) =>
    check
      .field('id', isString, 'text')
      .field('dir', isString, 'a folder')
      .field('label', isString, 'text')
      .field('method', isString, 'text')
      .field('status', isString, 'text')
      .field('color', (v) => isStep(v) && (v as number) < paletteSize, `a palette slot below ${paletteSize}`)
      .field('parent', (v) => v === null || isString(v), 'a run id or null')
      .field('forkStep', (v) => v === null || isStep(v), 'a step or null')
      .field('step', isStep, 'a step')
      .field('totalSteps', isStep, 'a step count')
      .field('config', isObject, 'an object'),
  );

const checkGrid = (value: unknown, what: string): string | undefined =>
  checkObject(value, what, (check) =>
    check
      .field('lo', isFiniteNumber, 'a number')
      .field('width', (v) => isFiniteNumber(v) && v > 0, 'a positive number')
      .field('log', (v) => typeof v === 'boolean', 'true or false'),
  );

function checkSeries(length: number) {
  return (value: unknown, what: string): string | undefined =>
    checkObject(value, what, (check) => {
      check.field('run', isString, 'a run id');
      for (const column of ['min', 'max', 'last', 'mean'] as const) {
        check.field(column, (v) => isNullableNumberArray(v) && (v as unknown[]).length === length, `${length} numbers or nulls`);
      }
      check.field('n', (v) => Array.isArray(v) && v.length === length && v.every(isStep), `${length} counts`);
    });
}

const checkChart = (value: unknown, what: string): string | undefined =>
  checkObject(value, what, (check, fields) => {
    check.field('metric', oneOf(curveMetrics), `one of ${curveMetrics.join(', ')}`).nested('grid', checkGrid).field('count', isStep, 'a bucket count');
    if (check.ok) check.nested('series', (v, inner) => checkArray(v, inner, checkSeries(fields.count as number)));
  });

const checkPatch = (value: unknown, what: string): string | undefined =>
  checkObject(value, what, (check, fields) => {
    check
      .field('metric', oneOf(curveMetrics), `one of ${curveMetrics.join(', ')}`)
      .field('from', isStep, 'a bucket index')
      .field('count', (v) => isStep(v) && (v as number) >= (fields.from as number), 'a bucket count ≥ from');
    if (check.ok) check.nested('series', (v, inner) => checkArray(v, inner, checkSeries((fields.count as number) - (fields.from as number))));
  });

const checkHeatmap = (value: unknown, what: string): string | undefined =>
  value === null
    ? undefined
    : checkObject(value, what, (check, fields) => {
        check
          .field('run', isString, 'a run id')
          .field('stepLo', isNumberArray, 'a list of steps')
          .field('stepHi', (v) => isNumberArray(v) && (v as number[]).length === (fields.stepLo as unknown[])?.length, 'as many steps as stepLo')
          .field('scoreLo', isFiniteNumber, 'a number')
          .field('scoreHi', isFiniteNumber, 'a number')
          .field('rows', isStep, 'a row count');
        const cells = check.ok ? (fields.stepLo as unknown[]).length * (fields.rows as number) : 0;
        check
          .field('pool', (v) => isNumberArray(v) && (v as number[]).length === cells, `${cells} numbers`)
          .field('selected', (v) => isNumberArray(v) && (v as number[]).length === cells, `${cells} numbers`);
      });

const checkReach = (value: unknown, what: string): string | undefined =>
  value === null
    ? undefined
    : checkObject(value, what, (check) =>
        check
          .field('metric', oneOf(curveMetrics), `one of ${curveMetrics.join(', ')}`)
          .field('target', isFiniteNumber, 'a number')
          .field('fromBaseline', (v) => typeof v === 'boolean', 'true or false')
          .nested('rows', (rows, inner) =>
            checkArray(rows, inner, (row, rowWhat) =>
              checkObject(row, rowWhat, (c) => {
                c.field('run', isString, 'a run id').field('reached', (v) => typeof v === 'boolean', 'true or false');
                for (const key of ['step', 'examples_seen', 'flops', 'flops_train', 'wall_s', 'active_s', 'value', 'best']) c.field(key, isFiniteNumber, 'a number', true);
              }),
            ),
          ),
      );

const checkNotice = (value: unknown, what: string): string | undefined =>
  checkObject(value, what, (check) => check.field('level', oneOf(['info', 'warning', 'error']), 'info, warning or error').field('message', isString, 'text'));

const checkProtocol = (value: unknown, what: string): string | undefined =>
  value === webviewProtocolVersion
    ? undefined
    : `${what}: protocol version ${describe(value)}; this side speaks ${webviewProtocolVersion}. The panel and the extension come from different Sift builds: reload the window.`;

/** Shared by the four parsers: the envelope, then the payload checked by the member's checker. */
function parseEnvelope<T>(value: unknown, side: string, checkers: Record<string, (payload: unknown, what: string) => string | undefined>): Parsed<T> {
  if (!isObject(value)) return { ok: false, problem: `${side}: a message must be an object, not ${describe(value)}.` };
  const type = value.type;
  if (typeof type !== 'string' || !Object.hasOwn(checkers, type)) {
    return { ok: false, problem: `${side}: unknown message type ${describe(type)}; known: ${Object.keys(checkers).join(', ')}.` };
  }
  const problem = checkers[type](value.payload, `${side} "${type}" payload`);
  return problem === undefined ? { ok: true, message: value as T } : { ok: false, problem };
}

// Each checker table is typed by its union's `type`s, so a new message that is not validated fails to compile.
type Checkers<M extends { type: string }> = Record<M['type'], (payload: unknown, what: string) => string | undefined>;

const dashboardHostCheckers: Checkers<DashboardHostMessage> = {
  snapshot: (payload, what) =>
    checkObject(payload, what, (check) =>
      check
        .nested('protocol', checkProtocol)
        .nested('runs', (v, inner) => checkArray(v, inner, checkRunInfo))
        .field('xAxis', oneOf(xAxes), `one of ${xAxes.join(', ')}`)
        .field('logX', (v) => typeof v === 'boolean', 'true or false')
        .nested('charts', (v, inner) => checkArray(v, inner, checkChart))
        .nested('heatmap', checkHeatmap)
        .nested('reach', checkReach),
    ),
  charts: (payload, what) =>
    checkObject(payload, what, (check) =>
      check
        .field('xAxis', oneOf(xAxes), `one of ${xAxes.join(', ')}`)
        .field('logX', (v) => typeof v === 'boolean', 'true or false')
        .nested('charts', (v, inner) => checkArray(v, inner, checkChart)),
    ),
  delta: (payload, what) =>
    checkObject(payload, what, (check) =>
      check
        .nested('runs', (v, inner) => checkArray(v, inner, checkRunInfo), true)
        .nested('charts', (v, inner) => checkArray(v, inner, checkChart), true)
        .nested('patches', (v, inner) => checkArray(v, inner, checkPatch)),
    ),
  heatmap: (payload, what) => checkObject(payload, what, (check) => check.nested('heatmap', checkHeatmap)),
  reach: checkReach,
  exported: (payload, what) =>
    checkObject(payload, what, (check) =>
      check
        .field('ok', (v) => typeof v === 'boolean', 'true or false')
        .field('path', isString, 'a path', true)
        .field('cancelled', (v) => typeof v === 'boolean', 'true or false', true)
        .field('message', isString, 'text', true),
    ),
  notice: checkNotice,
};

const dashboardWebviewCheckers: Checkers<DashboardWebviewMessage> = {
  ready: (payload, what) => checkObject(payload, what, (check) => check.nested('protocol', checkProtocol).nested('view', checkDashboardView)),
  view: (payload, what) => checkObject(payload, what, (check) => check.nested('view', checkDashboardView)),
  'export-csv': (payload, what) =>
    checkObject(payload, what, (check) => check.field('suggestedName', isString, 'a file name').field('csv', isString, 'CSV text')),
  'export-png': (payload, what) =>
    checkObject(payload, what, (check) =>
      check.field('suggestedName', isString, 'a file name').field('pngBase64', (v) => isString(v) && /^[A-Za-z0-9+/]*={0,2}$/.test(v), 'base64 PNG bytes'),
    ),
  inspect: (payload, what) => checkObject(payload, what, (check) => check.field('run', isString, 'a run id').field('step', isStep, 'a step')),
};

const checkScores = (value: unknown, what: string): string | undefined =>
  checkObject(value, what, (check) => {
    for (const key of scoreKeys) check.field(key, isFiniteNumber, 'a number', true);
  });

const checkSplit = (value: unknown, what: string): string | undefined =>
  checkObject(value, what, (check) =>
    check
      .field('chunk', isStep, 'a chunk index')
      .field('chunks', isStep, 'a chunk count')
      .field('drawnBefore', isStep, 'a count')
      .field('own', isFiniteNumber, 'a number', true)
      .field('fromMates', isFiniteNumber, 'a number', true)
      .field('scale', (v) => isFiniteNumber(v) && v > 0, 'a positive number')
      .field('exact', (v) => typeof v === 'boolean', 'true or false'),
  );

const checkPairItem = (value: unknown, what: string): string | undefined =>
  checkObject(value, what, (check) =>
    check
      .field('id', isString, 'text')
      .field('caption', isString, 'text')
      .field('label', isString, 'text', true)
      .field('noisy', (v) => typeof v === 'boolean', 'true or false', true)
      .field('order', (v) => Number.isInteger(v) && (v as number) >= -1, 'a draw position or -1')
      .nested('scores', checkScores)
      .nested('split', checkSplit, true)
      .field('missing', (v) => typeof v === 'boolean', 'true or false', true),
  );

const checkStepView = (value: unknown, what: string): string | undefined =>
  checkObject(value, what, (check, fields) => {
    check
      .field('run', isString, 'a run id')
      .field('step', isStep, 'a step')
      .field('candidates', isStep, 'a count', true)
      .nested('chosen', (v, inner) => checkArray(v, inner, checkPairItem))
      .nested('rejected', (v, inner) => (v === null ? undefined : checkArray(v, inner, checkPairItem)))
      .field('poolNoisy', isFiniteNumber, 'a share', true)
      .field(
        'poolHist',
        (v) => isObject(v) && isFiniteNumber(v.lo) && isFiniteNumber(v.hi) && isNumberArray(v.counts),
        '{ lo, hi, counts }',
        true,
      );
    const chosen = Array.isArray(fields.chosen) ? fields.chosen.length : 0;
    check.nested(
      'contributions',
      (v, inner) =>
        Array.isArray(v) && v.length !== chosen
          ? `${inner} has ${v.length} entries; expected one per chosen pair (${chosen}).`
          : checkArray(v, inner, (entry, entryWhat) =>
              checkObject(entry, entryWhat, (c) =>
                c
                  .field('own', isFiniteNumber, 'a number')
                  .field(
                    'from',
                    (from) => Array.isArray(from) && from.every((pair) => Array.isArray(pair) && pair.length === 2 && isStep(pair[0]) && (pair[0] as number) < chosen && isFiniteNumber(pair[1])),
                    `[position below ${chosen}, value] pairs`,
                  )
                  .field('rest', isFiniteNumber, 'a number', true),
              ),
            ),
      true,
    );
  });

const isStepRanges = (v: unknown): boolean => Array.isArray(v) && v.every((r) => Array.isArray(r) && r.length === 2 && isStep(r[0]) && isStep(r[1]) && r[0] <= r[1]);

const inspectorHostCheckers: Checkers<InspectorHostMessage> = {
  snapshot: (payload, what) =>
    checkObject(payload, what, (check) =>
      check
        .nested('protocol', checkProtocol)
        .nested('run', (v, inner) =>
          checkObject(v, inner, (c) =>
            c
              .field('id', isString, 'text')
              .field('dir', isString, 'a folder')
              .field('label', isString, 'text')
              .field('method', isString, 'text')
              .field('status', isString, 'text')
              .field('dataset', isString, 'text')
              .field('scored', (s) => typeof s === 'boolean', 'true or false')
              .field('superBatchEvery', (v) => Number.isInteger(v) && (v as number) >= 0, 'a whole number ≥ 0'),
          ),
        )
        .field('stepRanges', isStepRanges, 'a list of [lo, hi] step ranges')
        .field('live', (v) => typeof v === 'boolean', 'true or false')
        .nested('view', (v, inner) => (v === null ? undefined : checkStepView(v, inner))),
    ),
  step: checkStepView,
  steps: (payload, what) =>
    checkObject(payload, what, (check) =>
      check
        .field('stepRanges', isStepRanges, 'a list of [lo, hi] step ranges')
        .field('live', (v) => typeof v === 'boolean', 'true or false')
        .field('status', isString, 'text', true),
    ),
  images: (payload, what) =>
    checkObject(payload, what, (check) =>
      check.field('size', isStep, 'a size in pixels').nested('images', (v, inner) =>
        checkArray(v, inner, (entry, entryWhat) =>
          checkObject(entry, entryWhat, (c) =>
            c
              .field('id', isString, 'text')
              .field('uri', (u) => isString(u) && u.startsWith('data:image/png;base64,'), 'a data:image/png URI', true)
              .field('width', isStep, 'pixels', true)
              .field('height', isStep, 'pixels', true)
              .field('problem', isString, 'text', true),
          ),
        ),
      ),
    ),
  notice: checkNotice,
};

const checkInspectorView = (value: unknown, what: string): string | undefined =>
  checkObject(value, what, (check) =>
    check
      .field('step', (v) => v === null || isStep(v), 'a step or null')
      .field('follow', (v) => typeof v === 'boolean', 'true or false')
      .field('sort', (v) => isObject(v) && (v.key === 'order' || scoreKeys.includes(v.key as ScoreKey)) && typeof v.descending === 'boolean', `{ key: order or ${scoreKeys.join(', ')}, descending }`)
      .field(
        'filter',
        (v) => isObject(v) && (v.key === null || scoreKeys.includes(v.key as ScoreKey)) && isNullableNumber(v.min) && isNullableNumber(v.max) && isString(v.text),
        '{ key, min, max, text }',
      )
      .field('detail', (v) => v === null || isString(v), 'a pair id or null'),
  );

const inspectorWebviewCheckers: Checkers<InspectorWebviewMessage> = {
  ready: (payload, what) => checkObject(payload, what, (check) => check.nested('protocol', checkProtocol).nested('view', checkInspectorView)),
  'select-step': (payload, what) => checkObject(payload, what, (check) => check.field('step', (v) => v === null || isStep(v), 'a step or null')),
  follow: (payload, what) => checkObject(payload, what, (check) => check.field('on', (v) => typeof v === 'boolean', 'true or false')),
  images: (payload, what) =>
    checkObject(payload, what, (check) =>
      check
        .field('ids', (v) => Array.isArray(v) && v.length <= maxImagesPerRequest && v.every(isString), `at most ${maxImagesPerRequest} pair ids`)
        .field('size', (v) => isStep(v) && (v as number) >= 8 && (v as number) <= maxImageSize, `a size from 8 to ${maxImageSize}`),
    ),
};

/** Validates a message the dashboard webview received from the host. */
export const parseDashboardHostMessage = (value: unknown): Parsed<DashboardHostMessage> => parseEnvelope(value, 'host → dashboard', dashboardHostCheckers);
/** Validates a message the host received from the dashboard webview. */
export const parseDashboardWebviewMessage = (value: unknown): Parsed<DashboardWebviewMessage> => parseEnvelope(value, 'dashboard → host', dashboardWebviewCheckers);
/** Validates a message the inspector webview received from the host. */
export const parseInspectorHostMessage = (value: unknown): Parsed<InspectorHostMessage> => parseEnvelope(value, 'host → inspector', inspectorHostCheckers);
/** Validates a message the host received from the inspector webview. */
export const parseInspectorWebviewMessage = (value: unknown): Parsed<InspectorWebviewMessage> => parseEnvelope(value, 'inspector → host', inspectorWebviewCheckers);
