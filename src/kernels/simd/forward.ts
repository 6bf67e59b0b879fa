/**
 * The fused forward on the WebAssembly SIMD loops of norm.wat: the same
 * two passes as compute.ts's JS loops (statistics, then y) with the same
 * statistics outputs; JS only merges per-row or per-column partial sums
 * into sets (Chan's update, float64) and prepares y's coefficients.
 *
 * - 'row' layouts: rowMoments gives each row's shifted sum and sum of
 *   squares; applyRows writes y, for gamma/beta that vary along the row
 *   (runLength = 1) or are constant over runs of runLength elements (group norm
 *   channels-first: a row is the channels of a group, each a run of H*W).
 * - 'column' layouts: per stretch of rows with the same statistics sets
 *   (group/instance norm channels-last: the H*W positions of one sample),
 *   colMoments gives each column's shifted sums; applyCols writes
 *   y = (x - P) * A + C with per-column coefficients.
 *
 * A row layout whose gamma/beta index is not pb + j / runLength falls back to the
 * JS loops ({@link simdPlanOf} returns null).
 */
import {align16, MODES, NormMode} from '../contract';
import {finalizeSets, merge, mergeColumns} from '../compute';
import type {FusedLayout} from '../layout';
import type {SimdEngine} from './engine';

export interface SimdPlan {
  /** Row layouts: gamma/beta element j of a row is rowParam + floor(j / runLength). */
  runLength: number;
  /** Column layouts: first row of each stretch with the same sets, then `rows`. */
  momentSegs: Int32Array;
  /** Column layouts: first row of each stretch with the same sets and parameters, then `rows`. */
  applySegs: Int32Array;
  /**
   * Column layouts whose sets each lie in one stretch of momentSegs, as
   * contiguous ranges (group and instance norm channels-last: a sample's
   * groups): per stretch, its first set and one past its last. The forward
   * then writes y stretch by stretch right after its statistics, while the
   * stretch is still in cache. null: some set spans several stretches.
   */
  stretchSets: Int32Array|null;
}

const plans = new WeakMap<FusedLayout, SimdPlan|null>();

function stretches(rows: number, differs: (r: number) => boolean): Int32Array {
  const starts = [0];
  for (let r = 1; r < rows; r++) if (differs(r)) starts.push(r);
  starts.push(rows);
  return Int32Array.from(starts);
}

/** The SIMD plan of a layout, or null where the SIMD loops do not cover it. */
export function simdPlanOf(L: FusedLayout): SimdPlan|null {
  let p = plans.get(L);
  if (p === undefined) {
    p = buildPlan(L);
    plans.set(L, p);
  }
  return p;
}

function buildPlan(L: FusedLayout): SimdPlan|null {
  const {B, rows, rowSet, rowParam, colParam} = L;
  if (L.kind === 'row') {
    let runLength = 1;
    while (runLength < B && colParam[runLength] === colParam[0]) runLength++;
    if (colParam[0] !== 0 || B % runLength !== 0) return null;
    for (let j = 0; j < B; j++) {
      if (colParam[j] !== Math.floor(j / runLength)) return null;
    }
    const none = new Int32Array(0);
    return {runLength, momentSegs: none, applySegs: none, stretchSets: null};
  }
  const momentSegs = stretches(rows, (r) => rowSet[r] !== rowSet[r - 1]);
  return {
    runLength: 0,
    momentSegs,
    applySegs: stretches(rows, (r) => rowSet[r] !== rowSet[r - 1] || rowParam[r] !== rowParam[r - 1]),
    stretchSets: setsPerStretch(L, momentSegs),
  };
}

/**
 * Per stretch of `segs`, the range of sets its columns touch, when every
 * set is touched by exactly one stretch and each stretch's sets are a
 * contiguous range; else null.
 */
function setsPerStretch(L: FusedLayout, segs: Int32Array): Int32Array|null {
  const owner = new Int32Array(L.numSets).fill(-1);
  const ranges = new Int32Array(2 * (segs.length - 1));
  for (let i = 0; i + 1 < segs.length; i++) {
    const sb = L.rowSet[segs[i]];
    let lo = Infinity;
    let hi = -Infinity;
    for (let j = 0; j < L.B; j++) {
      const s = sb + L.colSet[j];
      if (owner[s] !== -1 && owner[s] !== i) return null;
      owner[s] = i;
      lo = Math.min(lo, s);
      hi = Math.max(hi, s + 1);
    }
    for (let s = lo; s < hi; s++) if (owner[s] !== i) return null;
    ranges[2 * i] = lo;
    ranges[2 * i + 1] = hi;
  }
  return ranges;
}

/** Runs fn for each stretch of rows in `segs` (starts, then the end): its first row, its length, its sets' and parameters' offsets. */
export function eachStretch(
    L: FusedLayout, segs: Int32Array, fn: (r0: number, n: number, sb: number, pb: number) => void): void {
  for (let i = 0; i + 1 < segs.length; i++) {
    const r0 = segs[i];
    fn(r0, segs[i + 1] - r0, L.rowSet[r0], L.rowParam[r0]);
  }
}

/**
 * JS-side work arrays of a layout, made once and reused by every call of
 * it (the kernels run synchronously and never inside one another, so one
 * set per layout serves all; a fresh typed array is an off-heap allocation
 * and zero fill a call, several a kernel): `count` arrays of `n` elements
 * under `tag`, zeroed on each take.
 */
const workCache = new WeakMap<FusedLayout, Map<string, Array<Float32Array|Float64Array>>>();

export function workArrays<T extends Float32Array|Float64Array>(
    L: FusedLayout, tag: string, Ctor: {new(n: number): T}, count: number, n: number): T[] {
  let byTag = workCache.get(L);
  if (byTag == null) {
    byTag = new Map();
    workCache.set(L, byTag);
  }
  let arrays = byTag.get(tag) as T[]|undefined;
  if (arrays == null || arrays.length !== count || arrays[0].length !== n) {
    arrays = Array.from({length: count}, () => new Ctor(n));
    byTag.set(tag, arrays);
  } else {
    for (const a of arrays) a.fill(0);
  }
  return arrays;
}

/** `count` consecutive arrays of n elements of type Ctor in buf from byte offset `at` (their pointers: byteOffset). */
export function consecutive<T extends Float32Array|Float64Array>(
    Ctor: {new(buf: ArrayBuffer, offset: number, n: number): T, BYTES_PER_ELEMENT: number}, buf: ArrayBuffer,
    at: number, n: number, count: number): T[] {
  return Array.from({length: count}, (_, i) => new Ctor(buf, at + i * n * Ctor.BYTES_PER_ELEMENT, n));
}

/** The forward's work area: per row 16 bytes (row layouts); per column the f64 K, S1, S2 and colMoments's f32 Kf. */
function workBytes(L: FusedLayout): number {
  return L.kind === 'row' ? 16 * L.rows : align16(24 * L.B) + 4 * L.B;
}

/** Scratch bytes {@link simdForward} needs, given which of gamma and beta are missing. */
export function simdScratchBytes(L: FusedLayout, hasGamma: boolean, hasBeta: boolean): number {
  return align16(workBytes(L)) + (hasGamma ? 0 : align16(4 * L.paramSize)) + (hasBeta ? 0 : align16(4 * L.paramSize));
}

/** Byte offsets, in the engine's memory, of the arrays of one forward. */
export interface SimdPointers {
  x: number;
  y: number;
  /** null: no gamma (ones are written into the scratch). */
  g: number|null;
  /** null: no beta (zeros are written into the scratch). */
  b: number|null;
  /** {@link simdScratchBytes} bytes, 16-byte aligned. */
  scratch: number;
}

/**
 * Runs the fused forward on the engine's memory: y at ptr.y, the
 * statistics into `stats` (JS arrays or views of the memory, as
 * compute.ts's fusedForward fills them). Allocates nothing in the memory,
 * so views taken before stay valid.
 */
export function simdForward(
    eng: SimdEngine, L: FusedLayout, sp: SimdPlan, ptr: SimdPointers, mode: NormMode, epsilon: number,
    stats: Float32Array[]): void {
  const {fns} = eng;
  const buf = eng.memory.buffer;
  const {B, rows, rowSet, rowParam, colSet, colParam, numSets, paramSize} = L;
  const rms = !MODES[mode].centred;
  const shift = rms ? 0 : 1;
  const work = ptr.scratch;
  let extra = work + align16(workBytes(L));
  let g = ptr.g;
  if (g == null) {
    g = extra;
    new Float32Array(buf, g, paramSize).fill(1);
    extra += align16(4 * paramSize);
  }
  let b = ptr.b;
  if (b == null) {
    b = extra;
    new Float32Array(buf, b, paramSize).fill(0);
  }
  const [count, mean, m2, mu, scale] = workArrays(L, 'forward', Float64Array, 5, numSets);

  if (L.kind === 'row') {
    fns.rowMoments(ptr.x, rows, B, shift, work);
    const out = new Float64Array(buf, work, 2 * rows);
    const xv = new Float32Array(buf, ptr.x, L.size);
    for (let r = 0; r < rows; r++) {
      const s1 = out[2 * r];
      const s2 = out[2 * r + 1];
      if (rms) {
        m2[rowSet[r]] += s2;
      } else {
        merge(count, mean, m2, rowSet[r], B, xv[r * B] + s1 / B, Math.max(0, s2 - (s1 * s1) / B));
      }
    }
    finalizeSets(mean, m2, L, mode, epsilon, stats, mu, scale, 0, numSets);
    const fi = new Float32Array(buf, work, 4 * rows);
    const ii = new Int32Array(buf, work, 4 * rows);
    for (let r = 0; r < rows; r++) {
      const s = rowSet[r];
      const P = Math.fround(mu[s]);
      fi[4 * r] = P;
      fi[4 * r + 1] = scale[s];
      fi[4 * r + 2] = -(mu[s] - P) * scale[s];
      ii[4 * r + 3] = rowParam[r];
    }
    fns.applyRows(ptr.x, ptr.y, rows, B, sp.runLength, work, g, b);
    return;
  }

  // Column layouts. The statistics' f64 arrays and y's f32 coefficients
  // share the work area (the coefficients are written after the sums are
  // read); colMoments's f32 shifts after them.
  const [Kv, S1v, S2v] = consecutive(Float64Array, buf, work, B, 3);
  const Kf = work + align16(24 * B);
  const [Pv, Av, Cv] = consecutive(Float32Array, buf, work, B, 3);
  const gv = new Float32Array(buf, g, paramSize);
  const bv = new Float32Array(buf, b, paramSize);
  const moments = (r0: number, n: number, sb: number) => {
    fns.colMoments(ptr.x + 4 * r0 * B, n, B, shift, Kv.byteOffset, S1v.byteOffset, S2v.byteOffset, Kf);
    mergeColumns(count, mean, m2, L, sb, n, Kv, S1v, S2v, rms);
  };
  const applyStretch = (r0: number, n: number, sb: number, pb: number) => {
    for (let j = 0; j < B; j++) {
      const s = sb + colSet[j];
      const p = pb + colParam[j];
      const m = mu[s];
      const pm = Math.fround(m);
      const k = scale[s] * gv[p];
      Pv[j] = pm;
      Av[j] = k;
      Cv[j] = bv[p] - (m - pm) * k;
    }
    fns.applyCols(ptr.x + 4 * r0 * B, ptr.y + 4 * r0 * B, n, B, Pv.byteOffset, Av.byteOffset, Cv.byteOffset);
  };
  const ranges = sp.stretchSets;
  if (ranges == null) {
    eachStretch(L, sp.momentSegs, moments);
    finalizeSets(mean, m2, L, mode, epsilon, stats, mu, scale, 0, numSets);
    eachStretch(L, sp.applySegs, applyStretch);
    return;
  }
  // Each stretch's sets are complete after its own statistics pass: y for
  // that stretch at once, while its rows are still in cache.
  const {momentSegs, applySegs} = sp;
  let a = 0;
  for (let i = 0; i + 1 < momentSegs.length; i++) {
    const r0 = momentSegs[i];
    const r1 = momentSegs[i + 1];
    moments(r0, r1 - r0, rowSet[r0]);
    finalizeSets(mean, m2, L, mode, epsilon, stats, mu, scale, ranges[2 * i], ranges[2 * i + 1]);
    for (; a + 1 < applySegs.length && applySegs[a] < r1; a++) {
      const q0 = applySegs[a];
      applyStretch(q0, applySegs[a + 1] - q0, rowSet[q0], rowParam[q0]);
    }
  }
}
