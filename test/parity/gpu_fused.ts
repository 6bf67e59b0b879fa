/**
 * The fused GPU kernels (src/kernels/webgl.ts, webgpu.ts) against the
 * tf-op path of the same backend (flag TFJS_NORMALIZATION_FUSED false) and
 * the float64 reference, on the active backend. Run in the browser page
 * (test/browser/page.ts) on webgl, webgpu and half-float webgl.
 *
 * For every op, mode and layout: whether the fused kernels ran (tf.profile's
 * kernel names: the forward, and the backward where the backend has one:
 * webgpu), y, dx, dgamma and dbeta of sum(y * dy) on both paths, y and the
 * gradients against float64 (the analytic gradient, {@link refGrads}), and
 * tf.memory().numTensors around each run. Plus the fidelity case: mean 1e3,
 * std 1e-2 against float64.
 */
import type * as TfModule from '@tensorflow/tfjs';

import {axesCase, groupCase, instanceCase, MatrixCase} from '../case_matrix';
import {channelSpec, normals, refForward, refGrads64, RefSpec, rng} from '../reference';
import {maxErr, type Lib, type TF} from './suite';

type Tensor = TfModule.Tensor;

export const FUSED_KERNEL_NAME = 'TfjsNormalizationFusedNorm';
export const FUSED_GRAD_KERNEL_NAME = 'TfjsNormalizationFusedNormGrad';
const FLAG = 'TFJS_NORMALIZATION_FUSED';
const SIMD_FLAG = 'TFJS_NORMALIZATION_SIMD';

export interface FusedRecord {
  case: string;
  /** The fused kernel ran with the flag on. */
  fused: boolean;
  /** The fused kernel ran with the flag off (must be false). */
  fusedWhenOff: boolean;
  /** The fused backward kernel ran for tf.grads, flag on / flag off. */
  gradFused: boolean;
  gradFusedWhenOff: boolean;
  /** max err of y, dx, dgamma, dbeta: fused path against the tf-op path. */
  errVsTfop: number;
  worstVsTfop: string;
  /** max err of y against float64. */
  errVsRef: number;
  /** max err of dx, dgamma, dbeta (fused path) against the float64 analytic gradient. */
  errGradVsRef: number;
  worstGradVsRef: string;
  leaked: number;
  error?: string;
}

export interface GpuCase {
  name: string;
  shape: number[];
  paramShape: number[];
  gamma: boolean;
  beta: boolean;
  mean?: number;
  std?: number;
  spec: RefSpec;
  op: (lib: Lib, x: Tensor, g?: Tensor, b?: Tensor) => Tensor;
}

const EPS = 1e-3;

/** A case of the matrix (test/case_matrix.ts) under this suite's name, passing gamma and beta or not. */
const fromMatrix = (name: string, c: MatrixCase, gamma: boolean, beta: boolean): GpuCase => ({
  name, shape: c.shape, paramShape: c.paramShape ?? [], gamma, beta, spec: c.spec,
  op: (lib, x, g, b) => c.runWith(lib)(x, g, b),
});

/** Every op, mode and layout the fused kernels take, and the fidelity cases (also test/parity/wasm_simd.ts's). */
export function fusedCases(): GpuCase[] {
  const opts = {epsilon: EPS};
  const gn = (shape: number[], groups: number, axis: number, gamma = true, beta = true): GpuCase =>
    fromMatrix(`gn${JSON.stringify(shape)}g${groups}a${axis}`, groupCase(shape, groups, axis, opts), gamma, beta);
  const inorm = (shape: number[], axis: number): GpuCase =>
    fromMatrix(`in${JSON.stringify(shape)}a${axis}`, instanceCase(shape, axis, opts), true, true);
  const ln = (shape: number[], axes: number[], gamma = true, beta = true, rmsScaling = false): GpuCase => fromMatrix(
      `ln${JSON.stringify(shape)}${JSON.stringify(axes)}${rmsScaling ? 'rmsScaling' : ''}${gamma ? 'G' : ''}${beta ? 'B' : ''}`,
      axesCase(shape, axes, rmsScaling ? 'rmsScaling' : 'center', opts), gamma, beta);
  const rms = (shape: number[], axes: number[], gamma = true): GpuCase =>
    fromMatrix(`rms${JSON.stringify(shape)}${JSON.stringify(axes)}${gamma ? 'G' : ''}`, axesCase(shape, axes, 'rms', opts), gamma, false);
  // keras-contrib's instance norm ('stdEps'): the page runs it through ContribInstanceNormalization.
  const contrib = (shape: number[]): GpuCase => fromMatrix(
      `contribIN(stdEps)${JSON.stringify(shape)}`,
      groupCase(shape, shape[shape.length - 1], -1, {...opts, affine: false}, 'stdEps'), false, false);
  // Batch norm: one set per channel (the webgpu backward's sets-are-params route).
  const bn = (shape: number[], axis: number, gamma = true, beta = true): GpuCase => {
    const a = axis < 0 ? axis + shape.length : axis;
    return {
      name: `bn${JSON.stringify(shape)}a${axis}${gamma ? 'G' : ''}${beta ? 'B' : ''}`, shape, paramShape: [shape[a]], gamma, beta,
      spec: channelSpec(shape, axis, EPS), op: (lib, x, g, b) => lib.ops.batchNorm(x, {axis, epsilon: EPS, gamma: g, beta: b}),
    };
  };
  return [
    bn([8, 6, 5, 16], -1), bn([3, 8, 5, 7], 1), bn([37, 70], 1, false, true), bn([5, 300], -1, true, false),
    gn([2, 4, 4, 8], 4, 3), gn([2, 8, 3, 5], 2, 1), gn([2, 16, 16, 8], 2, 3), gn([3, 7, 6], 3, 2, false, true),
    inorm([2, 5, 5, 6], 3), inorm([2, 6, 20], 1),
    ln([3, 5, 300], [2]), ln([2, 3, 4, 5], [1, 3]), ln([3, 4, 5], [0, 2]), ln([6, 33], [1], false, false),
    ln([4, 50], [1], true, false, true), ln([2, 3, 4, 5], [0, 2]),
    rms([4, 300], [1]), rms([2, 3, 40], [1, 2], false),
    contrib([2, 4, 4, 3]),
    {...ln([64, 768], [1], false, false), name: 'fidelity ln[64,768] mean 1e3 std 1e-2', mean: 1e3, std: 1e-2},
    {...gn([2, 16, 16, 64], 32, 3, false, false), name: 'fidelity gn[2,16,16,64]g32 mean 1e3 std 1e-2', mean: 1e3, std: 1e-2},
  ];
}

/**
 * The analytic gradient of sum(y * dy) in float64 (the derivative of
 * refForward, not core.ts's code: test/reference.ts's refGrads64), with
 * dgamma and dbeta only where the case has gamma and beta.
 */
export function refGrads(
    spec: RefSpec, x: ArrayLike<number>, dy: ArrayLike<number>, gamma: ArrayLike<number>|null,
    hasBeta: boolean): {dx: Float64Array, dgamma?: Float64Array, dbeta?: Float64Array} {
  const g = refGrads64(spec, x, dy, gamma);
  return {dx: g.dx, dgamma: gamma ? g.dgamma : undefined, dbeta: hasBeta ? g.dbeta : undefined};
}

/**
 * One path of case c: TFJS_NORMALIZATION_FUSED set to `on` (and, where
 * given, TFJS_NORMALIZATION_SIMD to `simd`), y, then the gradients of
 * sum(y * dy); `count` (optional) is read before the forward, between it
 * and the backward, and after (test/parity/wasm_simd.ts: calls into the
 * SIMD module).
 */
export async function runPath(
    tf: TF, lib: Lib, c: GpuCase, on: boolean, seed: number, opts: {simd?: boolean, count?: () => number} = {}) {
  tf.env().set(FLAG, on);
  if (opts.simd != null) tf.env().set(SIMD_FLAG, opts.simd);
  const count = opts.count ?? (() => 0);
  // Every tensor this run makes, disposed in the finally even when the op throws.
  const made: Tensor[] = [];
  const keep = <T extends Tensor|undefined>(t: T): T => {
    if (t) made.push(t);
    return t;
  };
  try {
    const n = c.shape.reduce((a, b) => a * b, 1);
    const xv = normals(rng(seed), n, c.mean ?? 0.3, c.std ?? 1.5);
    const x = keep(tf.tensor(xv, c.shape));
    const dy = keep(tf.tensor(normals(rng(seed + 1), n), c.shape));
    const p = c.paramShape.reduce((a, b) => a * b, 1);
    const g = keep(c.gamma ? tf.tensor(normals(rng(seed + 2), p, 1, 0.5), c.paramShape) : undefined);
    const b = keep(c.beta ? tf.tensor(normals(rng(seed + 3), p), c.paramShape) : undefined);
    let y: Tensor|null = null;
    const c0 = count();
    const prof = await tf.profile(() => {
      y = keep(c.op(lib, x, g, b));
      return y;
    });
    const c1 = count();
    const args = [x, ...(g ? [g] : []), ...(b ? [b] : [])];
    let grads: Tensor[] = [];
    const gprof = await tf.profile(() => {
      grads = tf.grads((...a: Tensor[]) =>
        tf.sum(tf.mul(c.op(lib, a[0], g ? a[1] : undefined, b ? a[g ? 2 : 1] : undefined), dy)))(args);
      made.push(...grads);
      return grads;
    });
    const c2 = count();
    const read = async (t?: Tensor) => (t ? await t.data() as Float32Array : undefined);
    const out = {
      y: await read(y as unknown as Tensor), dx: await read(grads[0]), dgamma: await read(g ? grads[1] : undefined),
      dbeta: await read(b ? grads[g ? 2 : 1] : undefined),
    };
    const gv = g ? await g.data() : null;
    const bv = b ? await b.data() : null;
    const dyv = await dy.data();
    return {
      out, xv, dyv, gv, bv, fused: prof.kernelNames.includes(FUSED_KERNEL_NAME),
      gradFused: gprof.kernelNames.includes(FUSED_GRAD_KERNEL_NAME), forwardCount: c1 - c0, backwardCount: c2 - c1,
    };
  } finally {
    tf.dispose(made);
    tf.env().set(FLAG, true);
    if (opts.simd != null) tf.env().set(SIMD_FLAG, true);
  }
}

/**
 * Runs every case on the active backend. On webgl the fused forward of row
 * layouts is opt-in (TFJS_NORMALIZATION_WEBGL_ROWS); `webglRows` (default
 * true) turns it on for the check so that kernel is tested too.
 */
export async function runFusedGpuCheck(tf: TF, lib: Lib, opts: {only?: string[], webglRows?: boolean} = {}): Promise<FusedRecord[]> {
  tf.env().set('TFJS_NORMALIZATION_WEBGL_ROWS', opts.webglRows ?? true);
  try {
    return await runCases(tf, lib, opts);
  } finally {
    tf.env().set('TFJS_NORMALIZATION_WEBGL_ROWS', false);
  }
}

async function runCases(tf: TF, lib: Lib, opts: {only?: string[]}): Promise<FusedRecord[]> {
  const records: FusedRecord[] = [];
  let seed = 100;
  for (const c of fusedCases()) {
    if (opts.only && !opts.only.some((o) => c.name.startsWith(o))) continue;
    seed += 10;
    const before = tf.memory().numTensors;
    try {
      const f = await runPath(tf, lib, c, true, seed);
      const t = await runPath(tf, lib, c, false, seed);
      let errVsTfop = 0;
      let worstVsTfop = 'y';
      for (const q of ['y', 'dx', 'dgamma', 'dbeta'] as const) {
        const e = maxErr(f.out[q], t.out[q]);
        if (!(e <= errVsTfop)) {
          errVsTfop = e;
          worstVsTfop = q;
        }
      }
      const ref = refForward(c.spec, f.xv, f.gv, f.bv);
      const refG = refGrads(c.spec, f.xv, f.dyv, f.gv, c.beta);
      let errGradVsRef = 0;
      let worstGradVsRef = 'dx';
      for (const q of ['dx', 'dgamma', 'dbeta'] as const) {
        const e = maxErr(f.out[q], refG[q]);
        if (!(e <= errGradVsRef)) {
          errGradVsRef = e;
          worstGradVsRef = q;
        }
      }
      records.push({
        case: c.name, fused: f.fused, fusedWhenOff: t.fused, gradFused: f.gradFused, gradFusedWhenOff: t.gradFused,
        errVsTfop, worstVsTfop, errVsRef: maxErr(f.out.y, ref), errGradVsRef, worstGradVsRef,
        leaked: tf.memory().numTensors - before,
      });
    } catch (e) {
      records.push({
        case: c.name, fused: false, fusedWhenOff: false, gradFused: false, gradFusedWhenOff: false, errVsTfop: Infinity,
        worstVsTfop: '-', errVsRef: Infinity, errGradVsRef: Infinity, worstGradVsRef: '-', leaked: tf.memory().numTensors - before, error: (e as Error).message,
      });
    }
  }
  return records;
}
