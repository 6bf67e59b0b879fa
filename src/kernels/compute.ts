/**
 * The fused normalization loops, on plain typed arrays: the cpu kernel runs
 * them on the backend's arrays, the wasm kernel on views of the wasm heap.
 *
 * Two passes over x: statistics, then y. All arithmetic is in float64 (JS
 * numbers). Statistics: each row (or, in column mode, each column over a
 * stretch of rows) is summed as shifted data, v = x - K with K its first
 * element, giving its mean and M2 = sum((x - mean)^2) = S2 - S1^2 / n
 * without cancellation (K is a sample of the same data, and float32
 * differences are exact in float64); the pieces of a set are merged with
 * Chan, Golub & LeVeque's pairwise update. Never E[x^2] - E[x]^2.
 *
 * Outputs follow the tf-op forward of core.ts, so its analytic backward
 * runs unchanged on them: m1 = the mean rounded to float32, m2 = the
 * rounding error (mean - m1), inv = 1 / sqrt(var + eps) (1 / (std + eps)
 * and invStd = 1 / std in stdEps mode), 0 where the denominator is 0; in
 * rms mode only s = 1 / sqrt(mean(x^2) + eps).
 */
import {MODES, NormMode} from './contract';
import type {FusedLayout} from './layout';

export interface FusedArrays {
  x: Float32Array;
  gamma: Float32Array|null;
  beta: Float32Array|null;
  y: Float32Array;
  /** MODES[mode].stats: one array of layout.numSets elements each. */
  stats: Float32Array[];
}

/** Per-set mean (float64) and second moment: M2 (centered) or sum of squares (rms). */
interface Moments {
  mean: Float64Array;
  m2: Float64Array;
}

function momentsRow(x: Float32Array, L: FusedLayout, rms: boolean): Moments {
  const {B, rows, rowSet, numSets} = L;
  const count = new Float64Array(numSets);
  const mean = new Float64Array(numSets);
  const m2 = new Float64Array(numSets);
  for (let r = 0; r < rows; r++) {
    const o = r * B;
    const s = rowSet[r];
    if (rms) {
      let a0 = 0;
      let a1 = 0;
      let j = 0;
      for (; j + 1 < B; j += 2) {
        const v0 = x[o + j];
        const v1 = x[o + j + 1];
        a0 += v0 * v0;
        a1 += v1 * v1;
      }
      if (j < B) a0 += x[o + j] * x[o + j];
      m2[s] += a0 + a1;
      continue;
    }
    const K = x[o];
    let s0 = 0;
    let s1 = 0;
    let q0 = 0;
    let q1 = 0;
    let j = 0;
    for (; j + 1 < B; j += 2) {
      const v0 = x[o + j] - K;
      const v1 = x[o + j + 1] - K;
      s0 += v0;
      s1 += v1;
      q0 += v0 * v0;
      q1 += v1 * v1;
    }
    if (j < B) {
      const v = x[o + j] - K;
      s0 += v;
      q0 += v * v;
    }
    const S1 = s0 + s1;
    const rowMean = K + S1 / B;
    const rowM2 = Math.max(0, q0 + q1 - (S1 * S1) / B);
    merge(count, mean, m2, s, B, rowMean, rowM2);
  }
  if (rms) {
    for (let s = 0; s < numSets; s++) mean[s] = 0;
  }
  return {mean, m2};
}

/** Chan et al.'s update: set s absorbs n elements of mean mu and M2 q. */
export function merge(
    count: Float64Array, mean: Float64Array, m2: Float64Array, s: number, n: number, mu: number, q: number): void {
  const na = count[s];
  if (na === 0) {
    count[s] = n;
    mean[s] = mu;
    m2[s] = q;
    return;
  }
  const tot = na + n;
  const delta = mu - mean[s];
  mean[s] += (delta * n) / tot;
  m2[s] += q + ((delta * delta) * na * n) / tot;
  count[s] = tot;
}

/**
 * Folds the per-column sums of one stretch of n rows (whose first row's
 * sets start at sb) into the sets: the sum of squares S2 (rms), or the
 * shifted sums S1, S2 around the column's first value K, merged with
 * {@link merge}. Shared by the JS loops and the SIMD ones (simd/forward.ts).
 */
export function mergeColumns(
    count: Float64Array, mean: Float64Array, m2: Float64Array, L: FusedLayout, sb: number, n: number,
    K: Float64Array, S1: Float64Array, S2: Float64Array, rms: boolean): void {
  for (let j = 0; j < L.B; j++) {
    const s = sb + L.colSet[j];
    if (rms) {
      m2[s] += S2[j];
    } else {
      merge(count, mean, m2, s, n, K[j] + S1[j] / n, Math.max(0, S2[j] - (S1[j] * S1[j]) / n));
    }
  }
}

function momentsColumn(x: Float32Array, L: FusedLayout, rms: boolean): Moments {
  const {B, rows, rowSet, numSets} = L;
  const count = new Float64Array(numSets);
  const mean = new Float64Array(numSets);
  const m2 = new Float64Array(numSets);
  const K = new Float64Array(B);
  const S1 = new Float64Array(B);
  const S2 = new Float64Array(B);
  let segStart = 0;
  const flush = (r: number) => {
    if (r > segStart) mergeColumns(count, mean, m2, L, rowSet[segStart], r - segStart, K, S1, S2, rms);
  };
  for (let r = 0; r < rows; r++) {
    const o = r * B;
    if (r === 0 || rowSet[r] !== rowSet[r - 1]) {
      flush(r);
      segStart = r;
      S1.fill(0);
      S2.fill(0);
      if (!rms) {
        for (let j = 0; j < B; j++) K[j] = x[o + j];
      }
    }
    if (rms) {
      for (let j = 0; j < B; j++) {
        const v = x[o + j];
        S2[j] += v * v;
      }
    } else {
      for (let j = 0; j < B; j++) {
        const v = x[o + j] - K[j];
        S1[j] += v;
        S2[j] += v * v;
      }
    }
  }
  flush(rows);
  return {mean, m2};
}

/**
 * Runs the fused forward: fills arr.y and arr.stats. `mode` and `epsilon`
 * as in the plan.
 */
export function fusedForward(arr: FusedArrays, L: FusedLayout, mode: NormMode, epsilon: number): void {
  const {x, y, stats} = arr;
  const rms = !MODES[mode].centred;
  const {mean, m2} = L.kind === 'row' ? momentsRow(x, L, rms) : momentsColumn(x, L, rms);
  const {mu, scale} = finalizeStats(mean, m2, L, mode, epsilon, stats);
  const g = arr.gamma ?? new Float32Array(L.paramSize).fill(1);
  const b = arr.beta ?? new Float32Array(L.paramSize);
  if (L.kind === 'row') {
    applyRow(x, y, g, b, L, mu, scale);
  } else {
    applyColumn(x, y, g, b, L, mu, scale);
  }
}

/**
 * From per-set moments (mean and M2, or the sum of squares in rms mode),
 * fills the statistics outputs and returns, per set, what y subtracts (mu)
 * and what it multiplies by (scale): y = (x - mu) * scale * gamma + beta. Shared
 * by the JS loops and the WebAssembly SIMD ones (simd/forward.ts).
 */
export function finalizeStats(
    mean: Float64Array, m2: Float64Array, L: FusedLayout, mode: NormMode, epsilon: number,
    stats: Float32Array[]): {mu: Float64Array, scale: Float64Array} {
  // Per set: what (x - mu) is multiplied by.
  const mu = new Float64Array(L.numSets);
  const scale = new Float64Array(L.numSets);
  finalizeSets(mean, m2, L, mode, epsilon, stats, mu, scale, 0, L.numSets);
  return {mu, scale};
}

/** {@link finalizeStats} for the sets from..to - 1, into mu and scale. */
export function finalizeSets(
    mean: Float64Array, m2: Float64Array, L: FusedLayout, mode: NormMode, epsilon: number, stats: Float32Array[],
    mu: Float64Array, scale: Float64Array, from: number, to: number): void {
  const {setSize} = L;
  const {centred, subtractsMean, epsilonOn} = MODES[mode];
  for (let s = from; s < to; s++) {
    const v = m2[s] / setSize;
    if (!centred) {
      const ve = v + epsilon;
      const inv = ve > 0 ? 1 / Math.sqrt(ve) : 0;
      scale[s] = inv;
      stats[0][s] = inv;
      continue;
    }
    const m = mean[s];
    const m1 = Math.fround(m);
    stats[0][s] = m1;
    stats[1][s] = m - m1;
    let inv: number;
    if (epsilonOn === 'std') {
      const sd = Math.sqrt(v);
      inv = sd + epsilon > 0 ? 1 / (sd + epsilon) : 0;
      stats[3][s] = sd > 0 ? 1 / sd : 0;
    } else {
      const ve = v + epsilon;
      inv = ve > 0 ? 1 / Math.sqrt(ve) : 0;
    }
    stats[2][s] = inv;
    scale[s] = inv;
    // rmsScaling scales x itself, without subtracting the mean.
    mu[s] = subtractsMean ? m : 0;
  }
}

function applyRow(
    x: Float32Array, y: Float32Array, g: Float32Array, b: Float32Array, L: FusedLayout, mu: Float64Array,
    scale: Float64Array): void {
  const {B, rows, rowSet, rowParam, colParam, paramIdentity} = L;
  for (let r = 0; r < rows; r++) {
    const o = r * B;
    const s = rowSet[r];
    const m = mu[s];
    const iv = scale[s];
    const pb = rowParam[r];
    if (paramIdentity) {
      for (let j = 0; j < B; j++) y[o + j] = (x[o + j] - m) * (iv * g[pb + j]) + b[pb + j];
    } else {
      for (let j = 0; j < B; j++) {
        const p = pb + colParam[j];
        y[o + j] = (x[o + j] - m) * (iv * g[p]) + b[p];
      }
    }
  }
}

function applyColumn(
    x: Float32Array, y: Float32Array, g: Float32Array, b: Float32Array, L: FusedLayout, mu: Float64Array,
    scale: Float64Array): void {
  const {B, rows, rowSet, rowParam, colSet, colParam} = L;
  // y = (x - M[j]) * A[j] + C[j], recomputed when a row's sets or params
  // change. Not x * A + (beta - mu * A): for a set of equal values far from 0
  // (x * A >> beta) that cancels beta away.
  const M = new Float64Array(B);
  const A = new Float64Array(B);
  const C = new Float64Array(B);
  for (let r = 0; r < rows; r++) {
    const o = r * B;
    if (r === 0 || rowSet[r] !== rowSet[r - 1] || rowParam[r] !== rowParam[r - 1]) {
      const sb = rowSet[r];
      const pb = rowParam[r];
      for (let j = 0; j < B; j++) {
        const s = sb + colSet[j];
        const p = pb + colParam[j];
        M[j] = mu[s];
        A[j] = scale[s] * g[p];
        C[j] = b[p];
      }
    }
    for (let j = 0; j < B; j++) y[o + j] = (x[o + j] - M[j]) * A[j] + C[j];
  }
}

export interface FusedGradArrays {
  x: Float32Array;
  dy: Float32Array;
  gamma: Float32Array|null;
  /** The statistics of the forward, as core.ts saved them. */
  stats: Float32Array[];
  dx: Float32Array;
  /** Filled when not null: sum(dy * xn) per gamma element. */
  dgamma: Float32Array|null;
  /** Filled when not null: sum(dy) per beta element. */
  dbeta: Float32Array|null;
}

/** Runs fn for each row of a layout: its offset in x, its sets' offset, its parameters' offset. */
function eachRow(L: FusedLayout, fn: (o: number, sb: number, pb: number) => void): void {
  for (let r = 0; r < L.rows; r++) fn(r * L.B, L.rowSet[r], L.rowParam[r]);
}

/** Per-set sums divided by the set size, in place. */
export function toMeans(setSize: number, ...sums: Float64Array[]): void {
  for (const sum of sums) {
    for (let s = 0; s < sum.length; s++) sum[s] /= setSize;
  }
}

/** Per-set mean and inv from the saved statistics, and xn's offset (the mean, or 0). */
export function setStats(L: FusedLayout, mode: NormMode, stats: Float32Array[]) {
  const {numSets} = L;
  const rms = !MODES[mode].centred;
  const mean = new Float64Array(numSets);
  const inv = new Float64Array(numSets);
  for (let s = 0; s < numSets; s++) {
    if (rms) {
      inv[s] = stats[0][s];
    } else {
      mean[s] = stats[0][s] + stats[1][s];
      inv[s] = stats[2][s];
    }
  }
  const off = MODES[mode].subtractsMean ? mean : new Float64Array(numSets);
  return {mean, inv, off, centre: rms ? off : mean};
}

/**
 * The analytic backward of core.ts, fused: the same formulas, in float64.
 * With g = dy * gamma and xn what gamma multiplies:
 * - center: xn = (x - mean) * inv; dx = inv * (g - mean(g) - xn * mean(g * xn));
 * - stdEps: dx = inv * (g - mean(g)) - xn * mean(g * xn) * invStd;
 * - rms: xn = x * s; dx = s * (g - xn * mean(g * xn));
 * - rmsScaling: xn = x * s, xhat = (x - mean) * s; dx = s * (g - xhat * mean(g * xn)).
 * dgamma = sum(dy * xn), dbeta = sum(dy), over the axes they broadcast on.
 */
export function fusedBackward(arr: FusedGradArrays, L: FusedLayout, mode: NormMode, epsilon?: number): void {
  const {x, dy, stats, dx, dgamma, dbeta} = arr;
  const {B, colSet, colParam, numSets, setSize} = L;
  const g = arr.gamma ?? new Float32Array(L.paramSize).fill(1);
  const {mean, inv, off, centre} = setStats(L, mode, stats);
  const {centred, subtractsMean, epsilonOn} = MODES[mode];
  let invStd: ArrayLike<number>|null = epsilonOn === 'std' ? stats[3] : null;
  // A saved 1 / std that overflowed float32 (a spread below ~1e-38 with
  // epsilon 0): that set's statistics again, from x, in float64.
  const lost = (s: number) => !Number.isFinite(inv[s]) || (invStd != null && !Number.isFinite(invStd[s]));
  if (epsilon != null && Array.from({length: numSets}, (_, s) => s).some(lost)) {
    const mm = L.kind === 'row' ? momentsRow(x, L, !centred) : momentsColumn(x, L, !centred);
    const is = Float64Array.from(invStd ?? []);
    for (let s = 0; s < numSets; s++) {
      if (!lost(s)) continue;
      const v = mm.m2[s] / setSize;
      if (epsilonOn === 'std') {
        const sd = Math.sqrt(v);
        inv[s] = sd + epsilon > 0 ? 1 / (sd + epsilon) : 0;
        is[s] = sd > 0 ? 1 / sd : 0;
      } else {
        inv[s] = v + epsilon > 0 ? 1 / Math.sqrt(v + epsilon) : 0;
      }
      // off is mean itself in the centered modes (see setStats).
      if (centred) mean[s] = mm.mean[s];
    }
    if (invStd) invStd = is;
  }
  const sg = new Float64Array(numSets);
  const sgx = new Float64Array(numSets);
  const dg = new Float64Array(L.paramSize);
  const db = new Float64Array(L.paramSize);
  eachRow(L, (o, sb, pb) => {
    for (let j = 0; j < B; j++) {
      const s = sb + colSet[j];
      const p = pb + colParam[j];
      const d = dy[o + j];
      const xn = (x[o + j] - off[s]) * inv[s];
      const gd = d * g[p];
      sg[s] += gd;
      sgx[s] += gd * xn;
      dg[p] += d * xn;
      db[p] += d;
    }
  });
  toMeans(setSize, sg, sgx);
  eachRow(L, (o, sb, pb) => {
    for (let j = 0; j < B; j++) {
      const s = sb + colSet[j];
      const gd = dy[o + j] * g[pb + colParam[j]];
      const xv = x[o + j];
      const iv = inv[s];
      let v: number;
      if (invStd != null) {
        v = iv * (gd - sg[s]) - (xv - mean[s]) * iv * sgx[s] * invStd[s];
      } else if (subtractsMean) {
        v = iv * (gd - sg[s] - (xv - mean[s]) * iv * sgx[s]);
      } else {
        // xhat = (x - mean) * s (rmsScaling), x * s (rms: centre 0).
        v = iv * (gd - (xv - centre[s]) * iv * sgx[s]);
      }
      dx[o + j] = v;
    }
  });
  if (dgamma) dgamma.set(dg);
  if (dbeta) dbeta.set(db);
}
