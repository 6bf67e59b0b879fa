/**
 * Turns a {@link NormPlan} into the flat description the fused loops walk:
 * x as `rows` rows of `B` contiguous elements (B = the product of some
 * trailing axes of the view), with, per row, the offset of its statistics
 * set and of its gamma/beta slice, and, per column of a row, the offset
 * added to those.
 *
 * Two shapes of loop cover every plan:
 * - `row`: the trailing axes are all reduced and hold at least
 *   {@link MIN_ROW} elements, so a row lies in one statistics set (layer
 *   norm over the last axes, RMS norm, group norm channels-first). Its
 *   statistics are plain scalar sums.
 * - `column`: a row spans several sets (group/instance norm channels-last:
 *   a row is the C channels of one position). Each column accumulates over
 *   consecutive rows of the same sets, and is folded into its set when the
 *   rows move on to other sets.
 */
import {cachedByLayout, NormPlan, sizeOf, statsShapeOf} from './contract';

export interface FusedLayout {
  kind: 'row'|'column';
  size: number;
  /** Number of statistics sets (the size of a statistics tensor). */
  numSets: number;
  /** Elements per set. */
  setSize: number;
  /** Elements of gamma/beta. */
  paramSize: number;
  /** Row length. */
  B: number;
  rows: number;
  /** Per row: offset of the row's statistics set(s). */
  rowSet: Int32Array;
  /** Per row: offset into gamma/beta. */
  rowParam: Int32Array;
  /** Per column: added to rowSet (all 0 for 'row'). */
  colSet: Int32Array;
  /** Per column: added to rowParam. */
  colParam: Int32Array;
  /** colParam[j] === j for all j (the common case: gamma varies along the row). */
  paramIdentity: boolean;
}

/** A row of fewer reduced elements than this is walked by columns instead. */
export const MIN_ROW = 16;
/** Column mode widens its rows to at least this many elements (when the view allows). */
const MIN_COLUMNS = 256;
/** ...but not past this many (unless the last axis alone is longer). */
const MAX_COLUMNS = 1 << 16;

interface Dim {
  size: number;
  reduce: boolean;
  sStride: number;
  pStride: number;
}

/** Row-major strides of a shape. */
export function strides(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i];
  }
  return s;
}

/** The layout of a plan (cached: plans repeat, one per layer and shape). */
export const layoutOf: (plan: NormPlan) => FusedLayout = cachedByLayout(buildLayout);

function buildLayout(plan: NormPlan): FusedLayout {
  const {viewShape, reduceAxes, paramViewShape} = plan;
  const statsShape = statsShapeOf(plan);
  const sStr = strides(statsShape);
  const pStr = strides(paramViewShape);
  // Size-1 axes dropped; neighbours with the same role and contiguous
  // strides merged.
  const dims: Dim[] = [];
  viewShape.forEach((size, i) => {
    if (size === 1) return;
    const reduce = reduceAxes.includes(i);
    const d: Dim = {size, reduce, sStride: reduce ? 0 : sStr[i], pStride: paramViewShape[i] === 1 ? 0 : pStr[i]};
    const last = dims[dims.length - 1];
    if (last && last.reduce === reduce && (last.sStride === 0) === (d.sStride === 0) &&
        (last.pStride === 0) === (d.pStride === 0) && last.sStride === d.sStride * size &&
        last.pStride === d.pStride * size) {
      last.size *= size;
      last.sStride = d.sStride;
      last.pStride = d.pStride;
    } else {
      dims.push(d);
    }
  });
  const size = sizeOf(viewShape);
  const numSets = sizeOf(statsShape);
  const paramSize = sizeOf(paramViewShape);

  // Trailing reduced axes: one row per stretch of a set?
  let nTrail = 0;
  let trailSize = 1;
  for (let i = dims.length - 1; i >= 0 && dims[i].reduce; i--) {
    nTrail++;
    trailSize *= dims[i].size;
  }
  let nBlock: number;
  let kind: 'row'|'column';
  if (nTrail > 0 && (trailSize >= MIN_ROW || nTrail === dims.length)) {
    kind = 'row';
    nBlock = nTrail;
  } else {
    // The block: the trailing reduced axes and the kept axis before them,
    // widened by further kept axes while short. Never a reduced axis
    // outside a kept one: rows of the same sets must follow each other.
    kind = 'column';
    nBlock = Math.min(dims.length, nTrail + 1);
    let b = dims.slice(dims.length - nBlock).reduce((p, d) => p * d.size, 1);
    for (let i = dims.length - nBlock - 1; i >= 0; i--) {
      if (dims[i].reduce || b >= MIN_COLUMNS || b * dims[i].size > MAX_COLUMNS) break;
      b *= dims[i].size;
      nBlock++;
    }
  }
  const outer = dims.slice(0, dims.length - nBlock);
  const block = dims.slice(dims.length - nBlock);
  const offsets = (ds: Dim[]) => {
    const n = ds.reduce((a, d) => a * d.size, 1);
    const s = new Int32Array(n);
    const p = new Int32Array(n);
    // Row-major walk of ds, accumulating both offsets.
    const idx = new Array<number>(ds.length).fill(0);
    for (let k = 0; k < n; k++) {
      let so = 0;
      let po = 0;
      for (let i = 0; i < ds.length; i++) {
        so += idx[i] * ds[i].sStride;
        po += idx[i] * ds[i].pStride;
      }
      s[k] = so;
      p[k] = po;
      for (let i = ds.length - 1; i >= 0; i--) {
        if (++idx[i] < ds[i].size) break;
        idx[i] = 0;
      }
    }
    return {s, p};
  };
  const rowsOff = offsets(outer);
  const colsOff = offsets(block);
  const B = colsOff.s.length;
  let paramIdentity = true;
  for (let j = 0; j < B; j++) {
    if (colsOff.p[j] !== j) {
      paramIdentity = false;
      break;
    }
  }
  return {
    kind,
    size,
    numSets,
    setSize: size / numSets,
    paramSize,
    B,
    rows: rowsOff.s.length,
    rowSet: rowsOff.s,
    rowParam: rowsOff.p,
    colSet: colsOff.s,
    colParam: colsOff.p,
    paramIdentity,
  };
}
