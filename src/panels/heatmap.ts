/**
 * Learnability over time: each step's super-batch histogram (pool_hist in
 * selections.jsonl) and its picks' learnability, rebinned onto one score grid
 * shared by all steps and pooled into at most `columns` step ranges, each
 * column normalised to shares. The pool's heatmap and the picks' side by side
 * show where in the pool's distribution the selector took its batch from.
 */
import type { SelectionLine } from '../core/runs/record';
import type { Heatmap } from '../protocol/webview';

interface StepScores {
  step: number;
  lo: number;
  hi: number;
  counts: Float32Array;
  selected: Float32Array;
}

const isFiniteNumber = (value: unknown): value is number => typeof value === 'number' && Number.isFinite(value);

export class HeatmapBuilder {
  private readonly steps: StepScores[] = [];

  /** Takes a selection line; returns whether it carried a pool histogram (uniform runs' do not). */
  add(line: SelectionLine): boolean {
    const hist = line.pool_hist;
    if (!hist || !isFiniteNumber(hist.lo) || !isFiniteNumber(hist.hi) || !Array.isArray(hist.counts) || hist.counts.length === 0) return false;
    const previous = this.steps[this.steps.length - 1];
    // A resumed run rewrites steps past its checkpoint: a line at or before the last step replaces from there.
    if (previous && line.step <= previous.step) {
      const keep = this.steps.findIndex((s) => s.step >= line.step);
      this.steps.length = keep;
    }
    this.steps.push({
      step: line.step,
      lo: hist.lo,
      hi: hist.hi,
      counts: Float32Array.from(hist.counts, (c) => (isFiniteNumber(c) && c > 0 ? c : 0)),
      selected: Float32Array.from((line.learnability ?? []).filter(isFiniteNumber)),
    });
    return true;
  }

  get size(): number {
    return this.steps.length;
  }

  /** The heatmap of the steps so far, or null when none carried scores. */
  build(run: string, options: { columns?: number; rows?: number } = {}): Heatmap | null {
    const steps = this.steps;
    if (steps.length === 0) return null;
    const rows = options.rows ?? 40;
    const columns = Math.min(options.columns ?? 240, steps.length);
    let scoreLo = Infinity;
    let scoreHi = -Infinity;
    for (const s of steps) {
      scoreLo = Math.min(scoreLo, s.lo);
      scoreHi = Math.max(scoreHi, s.hi);
    }
    if (scoreHi <= scoreLo) scoreHi = scoreLo + 1;
    const rowWidth = (scoreHi - scoreLo) / rows;
    const rowOf = (score: number): number => Math.min(rows - 1, Math.max(0, Math.floor((score - scoreLo) / rowWidth)));

    const pool = new Float64Array(columns * rows);
    const selected = new Float64Array(columns * rows);
    const stepLo: number[] = [];
    const stepHi: number[] = [];
    for (let c = 0; c < columns; c++) {
      const first = Math.floor((c * steps.length) / columns);
      const end = Math.floor(((c + 1) * steps.length) / columns);
      stepLo.push(steps[first].step);
      stepHi.push(steps[end - 1].step);
      const base = c * rows;
      for (let i = first; i < end; i++) {
        const s = steps[i];
        spreadHistogram(s, scoreLo, rowWidth, rows, pool, base);
        for (const score of s.selected) selected[base + rowOf(score)] += 1;
      }
      normalise(pool, base, rows);
      normalise(selected, base, rows);
    }
    return { run, stepLo, stepHi, scoreLo, scoreHi, rows, pool: rounded(pool), selected: rounded(selected) };
  }
}

/** Adds a histogram's counts to the grid's rows, each bin spread over the rows it overlaps, by overlap. */
function spreadHistogram(s: StepScores, scoreLo: number, rowWidth: number, rows: number, out: Float64Array, base: number): void {
  const bins = s.counts.length;
  const binWidth = (s.hi - s.lo) / bins;
  for (let j = 0; j < bins; j++) {
    const count = s.counts[j];
    if (count === 0) continue;
    if (binWidth <= 0) {
      out[base + Math.min(rows - 1, Math.max(0, Math.floor((s.lo - scoreLo) / rowWidth)))] += count;
      continue;
    }
    const a = s.lo + j * binWidth;
    const b = a + binWidth;
    const firstRow = Math.max(0, Math.floor((a - scoreLo) / rowWidth));
    const lastRow = Math.min(rows - 1, Math.floor((b - scoreLo) / rowWidth - 1e-9));
    for (let r = firstRow; r <= lastRow; r++) {
      const overlap = Math.min(b, scoreLo + (r + 1) * rowWidth) - Math.max(a, scoreLo + r * rowWidth);
      if (overlap > 0) out[base + r] += (count * overlap) / binWidth;
    }
  }
}

function normalise(values: Float64Array, base: number, rows: number): void {
  let total = 0;
  for (let r = 0; r < rows; r++) total += values[base + r];
  if (total > 0) for (let r = 0; r < rows; r++) values[base + r] /= total;
}

/** Four significant digits: the colours cannot show more, and the message is a third the size. */
const rounded = (values: Float64Array): number[] => Array.from(values, (v) => (v === 0 ? 0 : Number(v.toPrecision(4))));
