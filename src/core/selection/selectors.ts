/**
 * Selectors: which b of the B candidates of a super-batch the learner trains on.
 *
 * Joint selection is the paper's blocked-Gibbs-style sampler (Evans et al.
 * 2024, §3.2 and Algorithm 1): the first chunk is drawn by each example's own
 * score, every later chunk by each candidate's conditional contribution to the
 * batch score given the examples already chosen. Chunks are drawn without
 * replacement from softmax(logits / temperature) with the Gumbel-top-k trick.
 *
 * The conditional logit of candidate k given the chosen set C is
 *   S_kk + Σ_{i∈C} (S_ik + S_ki)      (normalization 'sum', as in the paper)
 * It adds 2|C| off-diagonal terms to one diagonal term, so as C grows the
 * softmax sharpens and the diagonal (where a mismatched caption shows) weighs
 * less and less. 'mean' divides by the number of terms (1 + 2|C|), keeping
 * every chunk's logits on the scale of one pair's score. Which is better is
 * measured by bench:curation, not assumed.
 */
import type { BatchMateTerms } from '../runs/record';
import type { Rng } from '../random';
import { diagonal, type SquareMatrix } from './scores';

export type JointNormalization = 'sum' | 'mean';

export interface Selection {
  /** Positions in the super-batch, in the order they were drawn. */
  picked: number[];
  /** The (normalised, pre-temperature) logit each pick had when it was drawn: its "why". */
  pickLogit: number[];
}

export interface JointOptions {
  count: number;
  chunks: number;
  normalization: JointNormalization;
  /** Softmax temperature of each draw; → 0 approaches greedy top-k. */
  temperature: number;
  /** Candidates that may not be drawn (1 = excluded): those already trained on from a cached pool. */
  exclude?: Uint8Array;
}

function gumbel(rng: Rng): number {
  let u = rng.next();
  while (u <= 1e-12) u = rng.next();
  return -Math.log(-Math.log(u));
}

/** Draws `count` distinct unmasked positions from softmax(logits/temperature) without replacement (Gumbel-top-k). */
export function gumbelTopK(logits: ArrayLike<number>, count: number, masked: Uint8Array, temperature: number, rng: Rng): number[] {
  const keys: { position: number; key: number }[] = [];
  for (let k = 0; k < logits.length; k++) {
    // Draw the noise for every position so the rng stream does not depend on the mask.
    const noise = gumbel(rng);
    if (masked[k]) continue;
    keys.push({ position: k, key: logits[k] / temperature + noise });
  }
  if (keys.length < count) throw new Error(`cannot draw ${count} from ${keys.length} unmasked candidates`);
  keys.sort((a, b) => b.key - a.key);
  return keys.slice(0, count).map((entry) => entry.position);
}

/** Sizes of n chunks that add up to count (the first ones one larger when it does not divide). */
export function chunkSizes(count: number, chunks: number): number[] {
  const n = Math.max(1, Math.min(chunks, count));
  const base = Math.floor(count / n);
  return Array.from({ length: n }, (_, i) => base + (i < count % n ? 1 : 0));
}

/**
 * How a candidate's conditional logit is computed; `sigmoid` scores are sums
 * of independent pair terms, `softmax` ones are not (see softmaxConditional).
 */
export interface ConditionalScorer {
  size: number;
  /** Each candidate's score alone (the first chunk's logits). */
  own(): Float32Array;
  /** Adds `position` to the chosen set. */
  choose(position: number): void;
  /** Every candidate's marginal gain in batch score given the chosen set, and how many terms it sums. */
  conditional(): { gains: Float32Array; terms: number };
}

/** Pairwise-decomposable scores (sigmoid loss): gain_k = S_kk + Σ_{i∈C}(S_ik + S_ki), kept incrementally. */
export function pairwiseScorer(scores: SquareMatrix): ConditionalScorer {
  const { size, values } = scores;
  const own = diagonal(scores);
  const cross = new Float32Array(size);
  let chosen = 0;
  return {
    size,
    own: () => own,
    choose(i) {
      for (let k = 0; k < size; k++) cross[k] += values[i * size + k] + values[k * size + i];
      chosen++;
    },
    conditional() {
      const gains = new Float32Array(size);
      for (let k = 0; k < size; k++) gains[k] = own[k] + cross[k];
      return { gains, terms: 1 + 2 * chosen };
    },
  };
}

/**
 * Softmax (CLIP) scores restricted to the candidate sub-batch: the loss of a
 * batch C is Σ_{i∈C} ½[(lse_{j∈C} l_ij − l_ii) + (lse_{j∈C} l_ji − l_ii)], and a
 * candidate's gain is the change of that loss when it joins C, computed exactly
 * from the logit matrices. `sign` per model: +1 learner, −1 reference (learnability).
 */
export function softmaxScorer(models: { logits: SquareMatrix; sign: number }[], ownScores: Float32Array): ConditionalScorer {
  const size = ownScores.length;
  const chosenList: number[] = [];
  // Per model: for each chosen i, Σ_{j∈C} e^{l_ij} (rows) and Σ_{j∈C} e^{l_ji} (columns), shifted for stability.
  const state = models.map(() => ({ rowSums: new Map<number, number>(), columnSums: new Map<number, number>() }));
  const exp = (l: SquareMatrix, i: number, j: number): number => Math.exp(l.values[i * size + j]);
  return {
    size,
    own: () => ownScores,
    choose(position) {
      models.forEach(({ logits }, m) => {
        const s = state[m];
        for (const i of chosenList) {
          s.rowSums.set(i, s.rowSums.get(i)! + exp(logits, i, position));
          s.columnSums.set(i, s.columnSums.get(i)! + exp(logits, position, i));
        }
        let row = exp(logits, position, position);
        let column = row;
        for (const j of chosenList) {
          row += exp(logits, position, j);
          column += exp(logits, j, position);
        }
        s.rowSums.set(position, row);
        s.columnSums.set(position, column);
      });
      chosenList.push(position);
    },
    conditional() {
      const gains = new Float32Array(size);
      for (let k = 0; k < size; k++) {
        let gain = 0;
        models.forEach(({ logits, sign }, m) => {
          const s = state[m];
          const diag = logits.values[k * size + k];
          let row = Math.exp(diag);
          let column = row;
          let others = 0;
          for (const i of chosenList) {
            const toK = exp(logits, i, k);
            const fromK = exp(logits, k, i);
            row += fromK;
            column += toK;
            others += 0.5 * (Math.log1p(toK / s.rowSums.get(i)!) + Math.log1p(fromK / s.columnSums.get(i)!));
          }
          const ownLoss = 0.5 * (Math.log(row) - diag + (Math.log(column) - diag));
          gain += sign * (ownLoss + others);
        });
        gains[k] = gain;
      }
      return { gains, terms: 1 + 2 * chosenList.length };
    },
  };
}

/** Joint example selection: chunk by chunk, each drawn by conditional score given the chunks before. */
export function selectJoint(scorer: ConditionalScorer, options: JointOptions, rng: Rng): Selection {
  const { count, chunks, normalization, temperature, exclude } = options;
  if (count > scorer.size) throw new Error(`cannot select ${count} of ${scorer.size} candidates`);
  const masked = exclude ? Uint8Array.from(exclude) : new Uint8Array(scorer.size);
  const picked: number[] = [];
  const pickLogit: number[] = [];
  for (const [chunk, chunkSize] of chunkSizes(count, chunks).entries()) {
    let logits: Float32Array;
    if (chunk === 0) {
      logits = scorer.own();
    } else {
      const { gains, terms } = scorer.conditional();
      logits = normalization === 'mean' ? gains.map((g) => g / terms) : gains;
    }
    const drawn = gumbelTopK(logits, chunkSize, masked, temperature, rng);
    for (const position of drawn) {
      masked[position] = 1;
      picked.push(position);
      pickLogit.push(logits[position]);
    }
    for (const position of drawn) scorer.choose(position);
  }
  return { picked, pickLogit };
}

/** Independent selection (the ablation JEST is compared with): the top `count` own scores, `exclude`d candidates left out. */
export function selectIndependent(ownScores: ArrayLike<number>, count: number, exclude?: Uint8Array): Selection {
  const order = Array.from({ length: ownScores.length }, (_, i) => i)
    .filter((i) => !exclude?.[i])
    .sort((a, b) => ownScores[b] - ownScores[a] || a - b);
  if (order.length < count) throw new Error(`cannot select ${count} of ${order.length} candidates`);
  const picked = order.slice(0, count);
  return { picked, pickLogit: picked.map((i) => ownScores[i]) };
}

/**
 * Why each pick of a joint selection had its logit, for pairwise scores
 * (sigmoid loss): own score S_kk and the term S_ik + S_ki of every batch-mate
 * i drawn in an earlier chunk — the `keep` largest by magnitude, the others
 * summed into `rest`. own + Σ terms is the pick's logit under 'sum'
 * normalization (under 'mean' it is divided by 1 + 2·drawn before).
 */
export function batchMateTerms(scores: SquareMatrix, picked: readonly number[], sizes: readonly number[], keep: number): BatchMateTerms[] {
  const { size, values } = scores;
  const out: BatchMateTerms[] = [];
  let drawnBefore = 0;
  for (const chunkSize of sizes) {
    for (let n = 0; n < chunkSize && out.length < picked.length; n++) {
      const k = picked[out.length];
      const terms: [number, number][] = [];
      for (let m = 0; m < drawnBefore; m++) {
        const i = picked[m];
        terms.push([m, values[i * size + k] + values[k * size + i]]);
      }
      terms.sort((a, b) => Math.abs(b[1]) - Math.abs(a[1]) || a[0] - b[0]);
      const entry: BatchMateTerms = { own: values[k * size + k], from: terms.slice(0, keep) };
      if (terms.length > keep) entry.rest = terms.slice(keep).reduce((sum, [, term]) => sum + term, 0);
      out.push(entry);
    }
    drawnBefore += chunkSize;
  }
  return out;
}
