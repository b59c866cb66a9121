/**
 * Scores of candidate batches (DESIGN.md, "The method"; Evans et al. 2024,
 * "Data curation via joint example selection further accelerates multimodal
 * learning", §3.1): built from the B × B per-pair loss matrices of the learner
 * and of the frozen reference model over one super-batch.
 */

export const scoreKinds = ['learnability', 'hard-learner', 'easy-reference'] as const;
export type ScoreKind = (typeof scoreKinds)[number];

/** A square matrix, row-major: entry (i, j) at i·size + j. Rows = images, columns = captions. */
export interface SquareMatrix {
  size: number;
  values: Float32Array;
}

/**
 * The per-pair score matrix S:
 * - learnability: w·L_learner − L_reference (hard for the learner, easy for the reference; §3.1 eq. 2 at w = 1),
 * - hard-learner: L_learner,
 * - easy-reference: −L_reference.
 */
export function scoreMatrix(kind: ScoreKind, learner: SquareMatrix | undefined, reference: SquareMatrix | undefined, learnerWeight = 1): SquareMatrix {
  const need = (m: SquareMatrix | undefined, what: string): SquareMatrix => {
    if (!m) throw new Error(`the ${kind} score needs the ${what} loss matrix`);
    return m;
  };
  switch (kind) {
    case 'learnability': {
      if (learnerWeight === 0) return scoreMatrix('easy-reference', learner, reference);
      const l = need(learner, 'learner');
      const r = need(reference, 'reference');
      if (l.size !== r.size) throw new Error(`learner (${l.size}) and reference (${r.size}) matrices differ in size`);
      const values = new Float32Array(l.values.length);
      for (let i = 0; i < values.length; i++) values[i] = learnerWeight * l.values[i] - r.values[i];
      return { size: l.size, values };
    }
    case 'hard-learner':
      return need(learner, 'learner');
    case 'easy-reference': {
      const r = need(reference, 'reference');
      return { size: r.size, values: r.values.map((v) => -v) };
    }
    default: {
      const unknown: never = kind;
      throw new Error(`unknown score ${String(unknown)}`);
    }
  }
}

/** The diagonal: each example's own score (its image against its own caption). */
export function diagonal(matrix: SquareMatrix): Float32Array {
  const out = new Float32Array(matrix.size);
  for (let i = 0; i < matrix.size; i++) out[i] = matrix.values[i * matrix.size + i];
  return out;
}

/** A fixed-bin histogram of values, with the range it covers. */
export interface Histogram {
  lo: number;
  hi: number;
  counts: number[];
}

export function histogram(values: ArrayLike<number>, bins = 16): Histogram {
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = 0; i < values.length; i++) {
    if (values[i] < lo) lo = values[i];
    if (values[i] > hi) hi = values[i];
  }
  const counts = new Array<number>(bins).fill(0);
  if (values.length === 0) return { lo: 0, hi: 0, counts };
  const width = hi > lo ? (hi - lo) / bins : 1;
  for (let i = 0; i < values.length; i++) counts[Math.min(bins - 1, Math.floor((values[i] - lo) / width))]++;
  return { lo, hi, counts };
}

/** Ranks (0-based; ties get their average rank). */
function ranks(values: ArrayLike<number>): Float64Array {
  const order = Array.from({ length: values.length }, (_, i) => i).sort((a, b) => values[a] - values[b]);
  const out = new Float64Array(values.length);
  for (let start = 0; start < order.length; ) {
    let end = start;
    while (end + 1 < order.length && values[order[end + 1]] === values[order[start]]) end++;
    for (let k = start; k <= end; k++) out[order[k]] = (start + end) / 2;
    start = end + 1;
  }
  return out;
}

/**
 * Spearman's rank correlation of two equally long lists (1 = same order,
 * 0 = unrelated): how far stale scores still rank candidates as fresh ones
 * do. NaN when either list is constant or shorter than 2.
 */
export function spearman(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`spearman: lengths differ (${a.length} vs ${b.length})`);
  const n = a.length;
  if (n < 2) return NaN;
  const ra = ranks(a);
  const rb = ranks(b);
  const mean = (n - 1) / 2;
  let cov = 0;
  let va = 0;
  let vb = 0;
  for (let i = 0; i < n; i++) {
    cov += (ra[i] - mean) * (rb[i] - mean);
    va += (ra[i] - mean) ** 2;
    vb += (rb[i] - mean) ** 2;
  }
  return va > 0 && vb > 0 ? cov / Math.sqrt(va * vb) : NaN;
}
