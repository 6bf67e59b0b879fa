/**
 * The fused backward on the WebAssembly SIMD loops, for 'column' layouts
 * (group and instance norm channels-last, and the other layouts whose rows
 * span several sets): compute.ts's fusedBackward, the same formulas, with
 * the two passes over x and dy in norm.wat.
 *
 * Pass 1 (colDySums), per stretch of rows with the same sets and
 * parameters, per column: D = sum(dy) and E = sum(dy * (x - P)) with P
 * the column's set centre rounded to float32, in float64. Then, with
 * xn = (x - off) * inv: sum(dy * xn) = inv * (E - (off - P) * D), which
 * gives sum(g), sum(g * xn) per set and dgamma, dbeta per parameter.
 * Pass 2 (applyGradCols): dx = dy * U + (x - P) * V + W per column, the
 * formulas of fusedBackward regrouped:
 * U = inv * gamma, V = -inv * mean(g * xn) * k (k = inv, or 1 / std in
 * stdEps mode), W = -inv * mean(g) (center, stdEps) + V * (P - c), c the
 * set's mean (0 in rms mode).
 *
 * 'row' layouts keep the JS loops (not written yet).
 */
import type {NormMode} from '../../ops/core';
import type {FusedLayout} from '../layout';
import type {SimdEngine} from './engine';
import {simdPlanOf} from './forward';

const align16 = (n: number) => (n + 15) & ~15;

/** Whether {@link simdBackward} covers a layout. */
export function simdBackwardCovers(L: FusedLayout): boolean {
  return L.kind === 'column' && simdPlanOf(L) != null;
}

/** Scratch bytes {@link simdBackward} needs, given whether gamma is missing. */
export function simdBackwardScratchBytes(L: FusedLayout, hasGamma: boolean): number {
  return align16(36 * L.B) + (hasGamma ? 0 : align16(4 * L.paramSize));
}

export interface SimdGradPointers {
  x: number;
  dy: number;
  dx: number;
  /** null: no gamma (ones). */
  g: number|null;
  scratch: number;
}

/**
 * Runs the fused backward on the engine's memory: dx at ptr.dx; dgamma and
 * dbeta (when not null) and the statistics are JS arrays or views of the
 * memory. Allocates nothing in the memory.
 */
export function simdBackward(
    eng: SimdEngine, L: FusedLayout, ptr: SimdGradPointers, mode: NormMode, stats: Float32Array[],
    dgamma: Float32Array|null, dbeta: Float32Array|null): void {
  const sp = simdPlanOf(L);
  if (sp == null || L.kind !== 'column') throw new Error('simdBackward: layout not covered');
  const {fns} = eng;
  const buf = eng.memory.buffer;
  const {B, rowSet, rowParam, colSet, colParam, numSets, setSize, paramSize} = L;
  const w = ptr.scratch;
  const P = w;
  const U = w + 4 * B;
  const V = w + 8 * B;
  const W = w + 12 * B;
  const D = w + 16 * B;
  const E = w + 24 * B;
  let g = ptr.g;
  if (g == null) {
    g = w + align16(36 * B);
    new Float32Array(buf, g, paramSize).fill(1);
  }
  const Pv = new Float32Array(buf, P, B);
  const Uv = new Float32Array(buf, U, B);
  const Vv = new Float32Array(buf, V, B);
  const Wv = new Float32Array(buf, W, B);
  const Dv = new Float64Array(buf, D, B);
  const Ev = new Float64Array(buf, E, B);
  const gv = new Float32Array(buf, g, paramSize);

  const rms = mode === 'rms';
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
  const off = mode === 'center' || mode === 'stdEps' ? mean : new Float64Array(numSets);
  const sg = new Float64Array(numSets);
  const sgx = new Float64Array(numSets);
  const dg = new Float64Array(paramSize);
  const db = new Float64Array(paramSize);
  const segs = sp.applySegs;
  for (let i = 0; i + 1 < segs.length; i++) {
    const r0 = segs[i];
    const sb = rowSet[r0];
    const pb = rowParam[r0];
    for (let j = 0; j < B; j++) Pv[j] = off[sb + colSet[j]];
    fns.colDySums(ptr.x + 4 * r0 * B, ptr.dy + 4 * r0 * B, segs[i + 1] - r0, B, P, D, E);
    for (let j = 0; j < B; j++) {
      const s = sb + colSet[j];
      const p = pb + colParam[j];
      const d = Dv[j];
      const e = inv[s] * (Ev[j] - (off[s] - Pv[j]) * d);
      const gp = gv[p];
      sg[s] += gp * d;
      sgx[s] += gp * e;
      dg[p] += e;
      db[p] += d;
    }
  }
  for (let s = 0; s < numSets; s++) {
    sg[s] /= setSize;
    sgx[s] /= setSize;
  }
  const centre = rms ? off : mean;
  const withSg = mode === 'center' || mode === 'stdEps';
  const invStd = mode === 'stdEps' ? stats[3] : null;
  for (let i = 0; i + 1 < segs.length; i++) {
    const r0 = segs[i];
    const sb = rowSet[r0];
    const pb = rowParam[r0];
    for (let j = 0; j < B; j++) {
      const s = sb + colSet[j];
      const p = pb + colParam[j];
      const iv = inv[s];
      const c = centre[s];
      const pc = Math.fround(c);
      const v = -iv * sgx[s] * (invStd ? invStd[s] : iv);
      Pv[j] = pc;
      Uv[j] = iv * gv[p];
      Vv[j] = v;
      Wv[j] = (withSg ? -iv * sg[s] : 0) + v * (pc - c);
    }
    fns.applyGradCols(ptr.x + 4 * r0 * B, ptr.dy + 4 * r0 * B, ptr.dx + 4 * r0 * B, segs[i + 1] - r0, B, P, U, V, W);
  }
  if (dgamma) dgamma.set(dg);
  if (dbeta) dbeta.set(db);
}
