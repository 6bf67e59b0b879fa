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
 * 'row' layouts (layer norm and RMS norm over the last axes, group norm
 * channels-first: a row lies in one set), the same two passes per row:
 * - runLength = 1 (gamma varies along the row): rowGradSums gives per row
 *   sum(g) and sum(g * xn), and accumulates dgamma = sum(dy * xn) and
 *   dbeta = sum(dy) per element of gamma, all in float64;
 * - runLength > 1 (gamma constant over runs of runLength elements): rowRunSums gives per
 *   run sum(dy) and sum(dy * (x - off)) in float64, merged here per set
 *   and per parameter.
 * Then applyGradRows: dx = dy * (gamma * inv) + (x - P) * V + W with the
 * per-row coefficients of the column pass.
 */
import {align16, MODES, NormMode, statIndex} from '../contract';
import type {FusedLayout} from '../layout';
import type {SimdEngine} from './engine';
import {setStats, toMeans} from '../compute';
import {consecutive, eachStretch, simdPlanOf, workArrays} from './forward';

/** Whether {@link simdBackward} covers a layout. */
export function simdBackwardCovers(L: FusedLayout): boolean {
  return simdPlanOf(L) != null;
}

/** Scratch bytes {@link simdBackward} needs, given whether gamma is missing. */
export function simdBackwardScratchBytes(L: FusedLayout, hasGamma: boolean): number {
  const ones = hasGamma ? 0 : align16(4 * L.paramSize);
  if (L.kind === 'row') {
    const sp = simdPlanOf(L);
    const runLength = sp ? sp.runLength : 1;
    const outs = runLength === 1 ? L.rows : L.rows * (L.B / runLength);
    return align16(32 * L.rows) + align16(16 * outs) + 2 * align16(8 * L.paramSize) + ones + align16(8 * L.B);
  }
  return align16(36 * L.B) + ones;
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
  if (sp == null) throw new Error('simdBackward: layout not covered');
  if (L.kind === 'row') {
    rowBackward(eng, L, sp.runLength, ptr, mode, stats, dgamma, dbeta);
    return;
  }
  const {fns} = eng;
  const buf = eng.memory.buffer;
  const {B, colSet, colParam, numSets, setSize, paramSize} = L;
  const w = ptr.scratch;
  let g = ptr.g;
  if (g == null) {
    g = w + align16(36 * B);
    new Float32Array(buf, g, paramSize).fill(1);
  }
  const [Pv, Uv, Vv, Wv] = consecutive(Float32Array, buf, w, B, 4);
  const [Dv, Ev] = consecutive(Float64Array, buf, w + 16 * B, B, 2);
  const gv = new Float32Array(buf, g, paramSize);

  const {inv, off, centre} = setStats(L, mode, stats);
  const [sg, sgx] = workArrays(L, 'backward', Float64Array, 2, numSets);
  const [dg, db] = workArrays(L, 'backwardParams', Float64Array, 2, paramSize);
  const segs = sp.applySegs;
  // Pass 1 in pieces of at most sumRows(B) rows (batch norm: all rows are one
  // stretch), from when colDySums walked eight-column strips down all the
  // rows of its call; it now walks blocks of 16 rows. The sums are additive.
  eachStretch(L, chunked(segs, sumRows(B)), (r0, n, sb, pb) => {
    for (let j = 0; j < B; j++) Pv[j] = off[sb + colSet[j]];
    fns.colDySums(ptr.x + 4 * r0 * B, ptr.dy + 4 * r0 * B, n, B, Pv.byteOffset, Dv.byteOffset, Ev.byteOffset);
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
  });
  const k = gradCoefficients(L, mode, stats, setSize, inv, centre, sg, sgx);
  eachStretch(L, segs, (r0, n, sb, pb) => {
    for (let j = 0; j < B; j++) {
      const s = sb + colSet[j];
      Pv[j] = k.P[s];
      Uv[j] = inv[s] * gv[pb + colParam[j]];
      Vv[j] = k.V[s];
      Wv[j] = k.W[s];
    }
    fns.applyGradCols(
        ptr.x + 4 * r0 * B, ptr.dy + 4 * r0 * B, ptr.dx + 4 * r0 * B, n, B, Pv.byteOffset, Uv.byteOffset,
        Vv.byteOffset, Wv.byteOffset);
  });
  if (dgamma) dgamma.set(dg);
  if (dbeta) dbeta.set(db);
}

/** Bytes of x (and as many of dy) one colDySums call walks at most: its strips then stay in L1/L2. */
const SUM_PIECE_BYTES = 1 << 18;

/** Rows of B floats in one colDySums call (at least 16, its block of rows). */
function sumRows(B: number): number {
  return Math.max(16, Math.floor(SUM_PIECE_BYTES / (4 * B)));
}

const chunkCache = new WeakMap<Int32Array, {max: number, segs: Int32Array}>();

/** `segs` (stretch starts, then the end) with every stretch longer than `max` rows split into pieces of `max` (cached). */
export function chunked(segs: Int32Array, max: number): Int32Array {
  const hit = chunkCache.get(segs);
  if (hit != null && hit.max === max) return hit.segs;
  const out: number[] = [];
  for (let i = 0; i + 1 < segs.length; i++) {
    for (let r = segs[i]; r < segs[i + 1]; r += max) out.push(r);
  }
  out.push(segs[segs.length - 1]);
  const split = out.length === segs.length ? segs : Int32Array.from(out);
  chunkCache.set(segs, {max, segs: split});
  return split;
}

/**
 * Per set, the coefficients of dx = dy * (gamma * inv) + (x - P) * V + W
 * (the formulas of fusedBackward regrouped): P the set's centre rounded to
 * float32, V = -inv * mean(g * xn) * k (k = inv, or 1 / std with epsilon
 * on the standard deviation), W = -inv * mean(g) (when y subtracts the
 * mean) + V * (P - centre). sg and sgx are the per-set sums of g and
 * g * xn; they are turned into means in place.
 */
function gradCoefficients(
    L: FusedLayout, mode: NormMode, stats: Float32Array[], setSize: number, inv: Float64Array, centre: Float64Array,
    sg: Float64Array, sgx: Float64Array): {P: Float64Array, V: Float64Array, W: Float64Array} {
  toMeans(setSize, sg, sgx);
  const withSg = MODES[mode].subtractsMean;
  const invStd = MODES[mode].epsilonOn === 'std' ? stats[statIndex(mode, 'invStd')] : null;
  const n = inv.length;
  const [P, V, W] = workArrays(L, 'gradCoefficients', Float64Array, 3, n);
  for (let s = 0; s < n; s++) {
    const iv = inv[s];
    const c = centre[s];
    const pc = Math.fround(c);
    const v = -iv * sgx[s] * (invStd ? invStd[s] : iv);
    P[s] = pc;
    V[s] = v;
    W[s] = (withSg ? -iv * sg[s] : 0) + v * (pc - c);
  }
  return {P, V, W};
}

/** {@link simdBackward} for row layouts (a row lies in one set; gamma index pb + j / runLength). */
function rowBackward(
    eng: SimdEngine, L: FusedLayout, runLength: number, ptr: SimdGradPointers, mode: NormMode, stats: Float32Array[],
    dgamma: Float32Array|null, dbeta: Float32Array|null): void {
  const {fns} = eng;
  const buf = eng.memory.buffer;
  const {B, rows, rowSet, rowParam, numSets, setSize, paramSize} = L;
  const nOut = runLength === 1 ? rows : rows * (B / runLength);
  const info = ptr.scratch;
  const out = info + align16(32 * rows);
  const DG = out + align16(16 * nOut);
  const DB = DG + align16(8 * paramSize);
  // rowGradSums's f32 block sums (2B floats), then ones for a missing gamma.
  const tmp = DB + align16(8 * paramSize);
  let g = ptr.g;
  if (g == null) {
    g = tmp + align16(8 * B);
    new Float32Array(buf, g, paramSize).fill(1);
  }
  const gv = new Float32Array(buf, g, paramSize);
  const {inv, off, centre} = setStats(L, mode, stats);
  const f64 = new Float64Array(buf, info, 4 * rows);
  const f32 = new Float32Array(buf, info, 8 * rows);
  const i32 = new Int32Array(buf, info, 8 * rows);
  for (let r = 0; r < rows; r++) {
    const s = rowSet[r];
    f64[4 * r] = off[s];
    f64[4 * r + 1] = inv[s];
    i32[8 * r + 4] = rowParam[r];
  }
  const [sg, sgx] = workArrays(L, 'backward', Float64Array, 2, numSets);
  const ov = new Float64Array(buf, out, 2 * nOut);
  let dg: Float64Array;
  let db: Float64Array;
  if (runLength === 1) {
    dg = new Float64Array(buf, DG, paramSize);
    db = new Float64Array(buf, DB, paramSize);
    dg.fill(0);
    db.fill(0);
    fns.rowGradSums(ptr.x, ptr.dy, rows, B, info, g, DG, DB, out, tmp);
    for (let r = 0; r < rows; r++) {
      const s = rowSet[r];
      sg[s] += ov[2 * r];
      sgx[s] += ov[2 * r + 1];
    }
  } else {
    [dg, db] = workArrays(L, 'backwardParams', Float64Array, 2, paramSize);
    fns.rowRunSums(ptr.x, ptr.dy, rows, B, runLength, info, out);
    const runs = B / runLength;
    let k = 0;
    for (let r = 0; r < rows; r++) {
      const s = rowSet[r];
      const iv = inv[s];
      for (let t = 0; t < runs; t++, k++) {
        const p = rowParam[r] + t;
        const d = ov[2 * k];
        const e = iv * ov[2 * k + 1];
        sg[s] += gv[p] * d;
        sgx[s] += gv[p] * e;
        dg[p] += e;
        db[p] += d;
      }
    }
  }
  if (dgamma) dgamma.set(dg);
  if (dbeta) dbeta.set(db);
  const k = gradCoefficients(L, mode, stats, setSize, inv, centre, sg, sgx);
  for (let r = 0; r < rows; r++) {
    const s = rowSet[r];
    f32[8 * r] = k.P[s];
    f32[8 * r + 1] = inv[s];
    f32[8 * r + 2] = k.V[s];
    f32[8 * r + 3] = k.W[s];
    i32[8 * r + 4] = rowParam[r];
  }
  fns.applyGradRows(ptr.x, ptr.dy, ptr.dx, rows, B, runLength, info, g);
}
