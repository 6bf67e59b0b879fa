/**
 * The plan description the GPU kernels (./webgl.ts, ./webgpu.ts) pass to
 * their shaders as uniforms, so that one compiled shader serves every plan
 * of the same mode (no compile per shape or per axis list).
 *
 * x is seen in its view shape (row-major, contiguous); size-1 axes are
 * dropped. Three descriptions of it:
 * - kept / reduced: adjacent axes of the same role merged; a statistics set
 *   is indexed row-major over the kept axes (the layout of the statistics
 *   tensors), an element of a set row-major over the reduced axes. Up to 4
 *   of each (ivec4 uniforms); more and the plan is declined.
 * - dims: for the normalize pass, axes merged only where the statistics and
 *   gamma/beta offsets stay linear; per axis its size, statistics stride and
 *   gamma/beta stride. Up to 8.
 *
 * Every set is cut into chunks of CHUNK elements: the reduction passes run
 * one invocation per (set, chunk), then one per set merges the chunks.
 */
import {cachedByLayout, NormPlan, sizeOf, statsShapeOf} from './contract';
import {strides} from './layout';

export const CHUNK = 256;
const MAX_SPLIT = 4;
const MAX_DIMS = 8;

export interface GpuPlan {
  size: number;
  numSets: number;
  setSize: number;
  paramSize: number;
  nChunks: number;
  /** Kept axes: sizes and x strides, padded in front with size 1, stride 0. */
  kSize: number[];
  kStride: number[];
  rSize: number[];
  rStride: number[];
  /** Normalize pass: number of axes, sizes, statistics strides, param strides (padded with 1, 0, 0). */
  nd: number;
  dSize: number[];
  dSStride: number[];
  dPStride: number[];
}


const pad = (v: number[], n: number, fill: number) => [...new Array<number>(n - v.length).fill(fill), ...v];

/** The plan's GPU description, or null when it has too many axes for the shaders. */
export const gpuPlanOf: (plan: NormPlan) => GpuPlan|null = cachedByLayout(build);

function build(plan: NormPlan): GpuPlan|null {
  const {viewShape, reduceAxes, paramViewShape} = plan;
  const statsShape = statsShapeOf(plan);
  const xStr = strides(viewShape);
  const sStr = strides(statsShape);
  const pStr = strides(paramViewShape);
  const size = sizeOf(viewShape);
  const numSets = sizeOf(statsShape);
  const paramSize = sizeOf(paramViewShape);
  if (size === 0 || size >= 2 ** 31) return null;
  const setSize = size / numSets;

  // Kept / reduced axes, each group merged where adjacent (x is row-major).
  const split = (reduce: boolean) => {
    const sizes: number[] = [];
    const strs: number[] = [];
    let prev = -2;
    viewShape.forEach((d, i) => {
      if (d === 1 || reduceAxes.includes(i) !== reduce) return;
      if (prev === i - 1 && sizes.length > 0) {
        sizes[sizes.length - 1] *= d;
        strs[strs.length - 1] = xStr[i];
      } else {
        sizes.push(d);
        strs.push(xStr[i]);
      }
      prev = i;
    });
    // Size-1 axes in between do not break adjacency.
    return {sizes, strs};
  };
  const kept = split(false);
  const red = split(true);
  if (kept.sizes.length > MAX_SPLIT || red.sizes.length > MAX_SPLIT) return null;

  // Normalize-pass axes.
  const dims: Array<{size: number, s: number, p: number}> = [];
  viewShape.forEach((d, i) => {
    if (d === 1) return;
    const s = reduceAxes.includes(i) ? 0 : sStr[i];
    const p = paramViewShape[i] === 1 ? 0 : pStr[i];
    const last = dims[dims.length - 1];
    if (last && last.s === s * d && last.p === p * d) {
      last.size *= d;
      last.s = s;
      last.p = p;
    } else {
      dims.push({size: d, s, p});
    }
  });
  if (dims.length > MAX_DIMS) return null;
  return {
    size, numSets, setSize, paramSize,
    nChunks: Math.ceil(setSize / CHUNK),
    kSize: pad(kept.sizes, MAX_SPLIT, 1), kStride: pad(kept.strs, MAX_SPLIT, 0),
    rSize: pad(red.sizes, MAX_SPLIT, 1), rStride: pad(red.strs, MAX_SPLIT, 0),
    nd: dims.length,
    dSize: pad(dims.map((d) => d.size), MAX_DIMS, 1),
    dSStride: pad(dims.map((d) => d.s), MAX_DIMS, 0),
    dPStride: pad(dims.map((d) => d.p), MAX_DIMS, 0),
  };
}
