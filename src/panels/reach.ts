/**
 * "Examples to reach X": for each run, the first recorded point where a
 * metric reached a target value (at or above it for accuracies, at or below
 * for the loss), with every x there — examples seen, FLOPs, time — so runs
 * that spend their compute differently compare on equal terms. The loss is
 * taken through the same debiased EMA the user sees (raw per-step loss is
 * too noisy for a first crossing to mean anything); evals are used as they are.
 */
import { lowerIsBetter, perStepMetrics, xAxes, type CurveMetric, type ReachResult, type ReachRow } from '../protocol/webview';
import { debiasedEma, type RawSeries } from './curves';

/** The values the target is compared with: the per-step metrics smoothed, the evals raw. */
function comparedValues(metric: CurveMetric, raw: RawSeries, smoothing: number): number[] {
  return perStepMetrics.has(metric) && smoothing > 0 ? (debiasedEma(raw.value, smoothing) as number[]) : raw.value;
}

export function reachRow(run: string, metric: CurveMetric, raw: RawSeries, target: number, smoothing: number): ReachRow {
  const values = comparedValues(metric, raw, smoothing);
  const lower = lowerIsBetter.has(metric);
  let best: number | undefined;
  for (let i = 0; i < values.length; i++) {
    const value = values[i];
    if (lower ? value <= target : value >= target) {
      const row: ReachRow = { run, reached: true, value };
      for (const axis of xAxes) if (Number.isFinite(raw[axis][i])) row[axis] = raw[axis][i];
      return row;
    }
    if (best === undefined || (lower ? value < best : value > best)) best = value;
  }
  return best === undefined ? { run, reached: false } : { run, reached: false, best };
}

/**
 * Rows for `runs` (in order). Without a target, the baseline's final value is
 * the target (as `sift compare` does: what the others needed to reach it).
 * Null when there is no target to be had (no baseline point yet).
 */
export function examplesToReach(
  runs: readonly { id: string; series: RawSeries }[],
  metric: CurveMetric,
  target: number | null,
  options: { baseline: string | null; smoothing: number },
): ReachResult | null {
  let value = target;
  const fromBaseline = value === null;
  if (value === null) {
    const baseline = runs.find((run) => run.id === options.baseline) ?? runs[0];
    if (!baseline || baseline.series.value.length === 0) return null;
    const values = comparedValues(metric, baseline.series, options.smoothing);
    value = values[values.length - 1];
  }
  return { metric, target: value, fromBaseline, rows: runs.map((run) => reachRow(run.id, metric, run.series, value, options.smoothing)) };
}
