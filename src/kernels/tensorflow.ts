/**
 * The fused kernels of tfjs-node's 'tensorflow' backend: the forward and the
 * backward of core.ts as short chains of native TensorFlow ops, run by name
 * through the backend (`executeSingleOutput`, as tfjs-node's own kernels
 * do), instead of the twenty-odd tfjs ops of the tf-op path.
 *
 * Nothing here imports @tensorflow/tfjs-node (an optional peer): the
 * kernels are registered for the backend name 'tensorflow' and receive the
 * backend object from tfjs when that backend exists and runs them.
 *
 * Layout. The view of the plan is merged (adjacent axes of the same kind
 * become one) and, where the statistics axes alternate with kept ones and
 * the innermost axis is a statistics axis (channels-last GroupNorm: [N, HW,
 * G, C/G]), that innermost axis is kept in the full-size ops ("partials":
 * per-channel moments over [N, HW, C], combined per group on the small
 * tensor): TensorFlow's CPU broadcasting and reductions are several times
 * slower on rank-4 alternating patterns than on [N, HW, C] against
 * [N, 1, C].
 *
 * Numerics: the full-size ops run in float32; the per-set statistics are
 * formed on the host in float64 from the per-partial means read back (a
 * few hundred floats; tfjs-node runs eagerly and synchronously anyway).
 * The moments are those of d = x - shift, shift 0 at first: where a set's
 * mean of d is more than 2 standard deviations from 0 (E[d^2] - mean(d)^2
 * would cancel: mean 1e3, std 1e-2, where FusedBatchNormV3 on the raw
 * values lost 2.6e-3), d is taken again around the mean found, rounded to
 * float32 so that x - shift is exact near it (at most three passes). The
 * kernel declines with {@link TensorflowKernelDeclined} (the dispatch,
 * ./dispatch.ts, then runs the tf-op path of core.ts, which rescales by
 * powers of two) where a moment is not finite (NaN or Inf in x, squares
 * that overflow float32), where a 1 / std is outside [2^-40, 2^40] or 0
 * (spreads below about 1e-12, a constant set with epsilon 0), or where the
 * mean does not settle in three passes.
 */
import * as tf from '@tensorflow/tfjs';

import {
  attrsOf, BackwardAttrs, cachedByLayout, FusedBackend, FusedKernelDeclined, isNormMode, MODES, NormPlan, sizeOf, StatName, statIndex,
  statsShapeOf,
} from './contract';
import {kernelTrace} from './trace';

/** The constants of tfjs-node's native binding this file uses. */
interface TfBinding {
  TF_FLOAT: number;
  TF_INT32: number;
  TF_ATTR_TYPE: number;
  TF_ATTR_BOOL: number;
}

interface OpAttr {
  name: string;
  type: number;
  value: number|boolean;
}

/** What tfjs-node's NodeJSKernelBackend offers a kernel. */
interface TensorflowBackendLike {
  binding: TfBinding;
  executeSingleOutput(name: string, attrs: OpAttr[], inputs: tf.TensorInfo[]): tf.Tensor;
}

/**
 * Thrown by a kernel of this file where its float32 chain is not safe for
 * the data (see the file's comment); the dispatch catches it and takes the
 * tf-op path.
 */
export class TensorflowKernelDeclined extends FusedKernelDeclined {
  constructor(why: string) {
    super(`tensorflow: ${why}`);
    this.name = 'TensorflowKernelDeclined';
  }
}

/** Native ops by name, float32, through the backend. */
class Native {
  private readonly T: OpAttr;
  private readonly idx: OpAttr;

  constructor(private readonly be: TensorflowBackendLike) {
    const b = be.binding;
    this.T = {name: 'T', type: b.TF_ATTR_TYPE, value: b.TF_FLOAT};
    this.idx = {name: 'Tidx', type: b.TF_ATTR_TYPE, value: b.TF_INT32};
  }

  private run(name: string, inputs: tf.TensorInfo[], attrs: OpAttr[] = [this.T]): tf.Tensor {
    return this.be.executeSingleOutput(name, attrs, inputs);
  }

  private ints(v: number[]): tf.Tensor {
    return tf.tensor1d(v, 'int32');
  }

  sub(a: tf.TensorInfo, b: tf.TensorInfo): tf.Tensor {
    return this.run('Sub', [a, b]);
  }
  mul(a: tf.TensorInfo, b: tf.TensorInfo): tf.Tensor {
    return this.run('Mul', [a, b]);
  }
  add(a: tf.TensorInfo, b: tf.TensorInfo): tf.Tensor {
    return this.run('AddV2', [a, b]);
  }
  square(a: tf.TensorInfo): tf.Tensor {
    return this.run('Square', [a]);
  }
  private reduce(name: 'Mean'|'Sum', x: tf.TensorInfo, axes: number[]): tf.Tensor {
    const keep: OpAttr = {name: 'keep_dims', type: this.be.binding.TF_ATTR_BOOL, value: true};
    return this.run(name, [x, this.ints(axes)], [keep, this.T, this.idx]);
  }
  mean(x: tf.TensorInfo, axes: number[]): tf.Tensor {
    return axes.length === 0 ? this.reshape(x, x.shape) : this.reduce('Mean', x, axes);
  }
  sum(x: tf.TensorInfo, axes: number[]): tf.Tensor {
    return axes.length === 0 ? this.reshape(x, x.shape) : this.reduce('Sum', x, axes);
  }
  reshape(x: tf.TensorInfo, shape: number[]): tf.Tensor {
    const tshape: OpAttr = {name: 'Tshape', type: this.be.binding.TF_ATTR_TYPE, value: this.be.binding.TF_INT32};
    return this.run('Reshape', [x, this.ints(shape)], [this.T, tshape]);
  }
  /** The elements at index 0 of `axes` (the other axes whole). */
  first(x: tf.TensorInfo, axes: number[]): tf.Tensor {
    const index: OpAttr = {name: 'Index', type: this.be.binding.TF_ATTR_TYPE, value: this.be.binding.TF_INT32};
    const size = x.shape.map((d, i) => (axes.includes(i) ? 1 : d));
    return this.run('Slice', [x, this.ints(x.shape.map(() => 0)), this.ints(size)], [this.T, index]);
  }
}

interface Axis {
  size: number;
  reduced: boolean;
  /** gamma/beta vary along it (paramViewShape is the axis' size there, 1 elsewhere). */
  param: boolean;
}

/** Drops size-1 axes and merges neighbours of the same kind. */
function merge(axes: Axis[]): Axis[] {
  const out: Axis[] = [];
  for (const a of axes) {
    if (a.size === 1) continue;
    const last = out[out.length - 1];
    if (last && last.reduced === a.reduced && last.param === a.param) {
      last.size *= a.size;
    } else {
      out.push({...a});
    }
  }
  return out;
}

/**
 * Where the full-size ops run: x viewed as `work`, the moments taken over
 * `workReduce`, giving per-partial tensors of shape `workStats`: element i
 * of it belongs to set floor(i / r) (r = 1 without partials), and the sets
 * are in the order of the plan's statistics (`statsShape`).
 */
interface TfLayout {
  work: number[];
  workReduce: number[];
  workStats: number[];
  statsShape: number[];
  numSets: number;
  /** Partials per set (the innermost statistics axis kept in the full-size ops), 1 without. */
  r: number;
  /** Positions of x behind each element of workStats. */
  count: number;
  paramWork: number[];
  /** Axes of `work` that gamma/beta broadcast along (dgamma, dbeta sum over them). */
  paramAxes: number[];
  /**
   * gamma/beta are constant over each element of workStats (they vary only
   * along kept axes): then y and dx take per-element scale and shift
   * tensors computed here, and dgamma/dbeta come from the per-partial sums.
   * wsParam: the gamma index of each element of workStats.
   */
  fold: boolean;
  wsParam: Int32Array;
}

const layoutOf: (plan: NormPlan) => TfLayout|null = cachedByLayout(computeLayout);

function computeLayout(plan: NormPlan): TfLayout|null {
  const {viewShape, reduceAxes, paramViewShape} = plan;
  if (paramViewShape.length !== viewShape.length) return null;
  if (paramViewShape.some((d, i) => d !== 1 && d !== viewShape[i])) return null;
  const merged = merge(viewShape.map((size, i) => ({
    size, reduced: reduceAxes.includes(i), param: paramViewShape[i] !== 1 && size !== 1,
  })));
  if (!merged.some((a) => a.reduced)) merged.push({size: 1, reduced: true, param: false});
  const statsShape = statsShapeOf(plan);
  const total = sizeOf(viewShape);
  const last = merged.length - 1;
  const keptSize = sizeOf(merged.filter((a) => !a.reduced).map((a) => a.size));
  // Partials: the innermost axis is a statistics axis on its own (a kept
  // axis before it) and there are statistics axes further out.
  const usePartials = merged.length >= 3 && merged[last].reduced && !merged[last - 1].reduced &&
      merged.filter((a) => a.reduced).length >= 2 && 2 * keptSize * merged[last].size <= total;
  const r = usePartials ? merged[last].size : 1;
  const work = usePartials ? merge(merged.map((a, i) => (i === last ? {...a, reduced: false} : a))) : merged;
  if (work.length > 5) return null;  // TensorFlow's CPU broadcasting stops at rank 5
  const workShape = work.map((a) => a.size);
  const workReduce = work.flatMap((a, i) => (a.reduced ? [i] : []));
  const workStats = work.map((a) => (a.reduced ? 1 : a.size));
  const paramWork = work.map((a) => (a.param ? a.size : 1));
  const paramAxes = work.flatMap((a, i) => (!a.param ? [i] : []));
  const fold = work.every((a) => !(a.reduced && a.param));
  const wsSize = sizeOf(workStats);
  const wsParam = new Int32Array(fold ? wsSize : 0);
  if (fold) {
    // Row-major strides of paramWork, 0 along its broadcast axes.
    const pStride: number[] = new Array<number>(work.length).fill(0);
    let acc = 1;
    for (let i = work.length - 1; i >= 0; i--) {
      if (paramWork[i] !== 1) {
        pStride[i] = acc;
        acc *= paramWork[i];
      }
    }
    for (let f = 0; f < wsSize; f++) {
      let rem = f;
      let p = 0;
      for (let i = work.length - 1; i >= 0; i--) {
        const c = rem % workStats[i];
        rem = (rem - c) / workStats[i];
        p += c * pStride[i];
      }
      wsParam[f] = p;
    }
  }
  return {
    work: workShape, workReduce, workStats, statsShape, numSets: wsSize / r, r, count: total / wsSize, paramWork,
    paramAxes, fold, wsParam,
  };
}

/**
 * Whether the 'tensorflow' kernels take this plan: a known mode, a view
 * whose gamma/beta shape broadcasts axis by axis, and a merged working view
 * of rank <= 5. The data can still make a kernel decline (see
 * {@link TensorflowKernelDeclined}).
 */
export function tensorflowAccepts(plan: NormPlan): boolean {
  return isNormMode(plan.mode) && layoutOf(plan) != null;
}

/** Which backward a plan takes ('folded' or 'general'), null where the kernels decline it: for tests. */
export function tensorflowBackwardKind(plan: NormPlan): 'folded'|'general'|null {
  const L = layoutOf(plan);
  return L == null ? null : L.fold ? 'folded' : 'general';
}

/** The forward reads ForwardAttrs' fields of these, the backward all. */
type Attrs = BackwardAttrs;

function readFloats(t: tf.TensorInfo): Float32Array {
  const v = tf.engine().readSync(t.dataId);
  return v instanceof Float32Array ? v : Float32Array.from(v as ArrayLike<number>);
}

/** The mean over each set's partials of v (workStats order), optionally weighted by w[wsParam[i]]. */
function perSet(L: TfLayout, v: Float32Array, w: Float32Array|null = null): Float64Array {
  const out = new Float64Array(L.numSets);
  for (let s = 0, i = 0; s < L.numSets; s++) {
    let acc = 0;
    for (let k = 0; k < L.r; k++, i++) acc += w ? w[L.wsParam[i]] * v[i] : v[i];
    out[s] = acc / L.r;
  }
  return out;
}

/** A workStats tensor from fn(set, element). */
function wsTensor(L: TfLayout, fn: (set: number, i: number) => number): tf.Tensor {
  const out = new Float32Array(L.numSets * L.r);
  for (let i = 0; i < out.length; i++) out[i] = fn(Math.floor(i / L.r), i);
  return tf.tensor(out, L.workStats, 'float32');
}

/** The safe range of a saved 1 / std (or 1 / rms), as for the SIMD loops. */
const inRange = (v: number) => v >= 2 ** -40 && v <= 2 ** 40;

function checkInv(inv: ArrayLike<number>, what: string): void {
  for (let i = 0; i < inv.length; i++) {
    if (!inRange(inv[i])) throw new TensorflowKernelDeclined(`${what} ${inv[i]} outside [2^-40, 2^40]`);
  }
}

/** Runs fn in a tidy scope, counting declines. */
function counted(fn: () => tf.Tensor[]): tf.Tensor[] {
  return tf.tidy(() => {
    try {
      return fn();
    } catch (e) {
      if (e instanceof TensorflowKernelDeclined && kernelTrace) kernelTrace.tensorflow.declined++;
      throw e;
    }
  });
}

/** The forward kernel: y, then the statistics core.ts saves ([m1, m2, inv], [.., invStd] or [s]). */
export const tensorflowForward: tf.KernelFunc = ({inputs, backend, attrs}) => {
  const a = attrsOf<Attrs>(attrs);
  const L = layoutOf(a);
  if (!L) throw new TensorflowKernelDeclined('layout');
  const n = new Native(backend as unknown as TensorflowBackendLike);
  const {x, gamma, beta} = inputs as Record<string, tf.TensorInfo>;
  const out = counted(() => forward(n, L, a, x, a.hasGamma ? gamma : null, a.hasBeta ? beta : null));
  if (kernelTrace) kernelTrace.tensorflow.forward++;
  return out;
};

function forward(
    n: Native, L: TfLayout, a: Attrs, x: tf.TensorInfo, gamma: tf.TensorInfo|null,
    beta: tf.TensorInfo|null): tf.Tensor[] {
  const xw = n.reshape(x, L.work);
  const R = L.workReduce;
  const S = L.numSets;
  const statsOut = (v: ArrayLike<number>) => tf.tensor(Float32Array.from(v), L.statsShape, 'float32');
  // gamma/beta on the host where they fold into per-element scale and shift.
  const gv = gamma && L.fold ? readFloats(gamma) : null;
  const bv = beta && L.fold ? readFloats(beta) : null;
  const gw = gamma && !L.fold ? n.reshape(gamma, L.paramWork) : null;
  const bw = beta && !L.fold ? n.reshape(beta, L.paramWork) : null;
  const {centred, subtractsMean, epsilonOn, stats} = MODES[a.mode];
  // Centred moments of d = x - shift (shift 0 first): while a set's mean
  // of d is more than 2 standard deviations from 0, E[d^2] - mean(d)^2
  // would cancel, so d is taken again around the mean found (float32, so
  // that x - shift is exact near it); each pass gains several digits.
  const shift = new Float64Array(S);
  const epsVar = epsilonOn === 'std' ? 0 : a.epsilon;
  let d = xw;
  let e2: Float64Array;
  let md: Float64Array;
  for (let pass = 0; ; pass++) {
    e2 = perSet(L, readFloats(n.mean(n.square(d), R)));
    md = centred ? perSet(L, readFloats(n.mean(d, R))) : new Float64Array(S);
    let settled = true;
    for (let s = 0; s < S; s++) {
      if (!Number.isFinite(e2[s]) || !Number.isFinite(md[s])) throw new TensorflowKernelDeclined('moments that are not finite');
      if (md[s] * md[s] > 4 * (Math.max(e2[s] - md[s] * md[s], 0) + epsVar)) settled = false;
    }
    if (settled) break;
    if (pass === 2) throw new TensorflowKernelDeclined('a mean that does not settle in three passes');
    for (let s = 0; s < S; s++) shift[s] = Math.fround(shift[s] + md[s]);
    if (kernelTrace) kernelTrace.tensorflow.extraPasses++;
    d = n.sub(xw, wsTensor(L, (s) => shift[s]));
  }
  const inv = new Float64Array(S);
  const invStd = epsilonOn === 'std' ? new Float64Array(S) : null;
  for (let s = 0; s < S; s++) {
    const v = centred ? Math.max(e2[s] - md[s] * md[s], 0) : e2[s];
    if (invStd) {
      const sd = Math.sqrt(v);
      inv[s] = Math.fround(1 / (sd + a.epsilon));
      invStd[s] = Math.fround(1 / sd);
    } else {
      inv[s] = Math.fround(1 / Math.sqrt(v + a.epsilon));
    }
  }
  checkInv(inv, centred ? '1 / std' : '1 / rms');
  if (invStd) checkInv(invStd, '1 / std');
  const g = (i: number) => (gv ? gv[L.wsParam[i]] : 1);
  const b = (i: number) => (bv ? bv[L.wsParam[i]] : 0);
  let y: tf.Tensor;
  if (!a.hasGamma && !a.hasBeta || L.fold) {
    if (!subtractsMean) {
      // y = x * (s * gamma) + beta
      y = n.mul(xw, wsTensor(L, (s, i) => inv[s] * g(i)));
      if (a.hasBeta) y = n.add(y, wsTensor(L, (_, i) => b(i)));
    } else {
      // y = d * scale + (beta - md * scale), scale = inv * gamma.
      y = n.add(n.mul(d, wsTensor(L, (s, i) => inv[s] * g(i))), wsTensor(L, (s, i) => b(i) - md[s] * inv[s] * g(i)));
    }
  } else {
    let t: tf.Tensor;
    if (!subtractsMean) {
      t = n.mul(xw, wsTensor(L, (s) => inv[s]));
    } else {
      t = n.add(n.mul(d, wsTensor(L, (s) => inv[s])), wsTensor(L, (s) => -md[s] * inv[s]));
    }
    if (gw) t = n.mul(t, gw);
    y = bw ? n.add(t, bw) : t;
  }
  // m1: the mean rounded to float32; m2: its rounding error (saved by the centred modes).
  const m1 = new Float32Array(S);
  const m2 = new Float32Array(S);
  for (let s = 0; s < S; s++) {
    const mean = shift[s] + md[s];
    m1[s] = mean;
    m2[s] = mean - m1[s];
  }
  const saved: Record<StatName, ArrayLike<number>|null> = {m1, m2, inv, invStd, s: inv};
  return [n.reshape(y, x.shape), ...stats.map((name) => statsOut(saved[name] as ArrayLike<number>))];
}

/**
 * The backward kernel: from dy, x, the saved statistics (s0, s1, ...) and
 * gamma, the gradients [dx, dgamma?, dbeta?] (the formulas of core.ts's
 * tf-op backward). Declines (the tf-op backward runs) where the saved
 * 1 / std is outside the safe range (statistics the tf-op forward saved
 * for data this kernel's forward declined).
 */
export const tensorflowBackward: tf.KernelFunc = ({inputs, backend, attrs}) => {
  const a = attrsOf<Attrs>(attrs);
  const L = layoutOf(a);
  if (!L) throw new TensorflowKernelDeclined('layout');
  const n = new Native(backend as unknown as TensorflowBackendLike);
  const ins = inputs as Record<string, tf.TensorInfo>;
  const out = counted(() => (L.fold ? backwardFolded(n, L, a, ins) : backwardGeneral(n, L, a, ins)));
  if (kernelTrace) kernelTrace.tensorflow.backward++;
  return out;
};

interface SavedStats {
  m1: Float32Array|null;
  m2: Float32Array|null;
  /** inv (centred modes) or s (rms). */
  inv: Float32Array;
  /** What xhat * mean(g * xhat) is multiplied by: invStd (stdEps), inv otherwise. */
  k: Float32Array;
}

/** The saved statistics by name (inputs s0, s1, ... in the order of MODES[mode].stats). */
function savedStats(a: Attrs, ins: Record<string, tf.TensorInfo>): SavedStats {
  const read = (name: StatName): Float32Array|null => {
    const i = statIndex(a.mode, name);
    return i < 0 ? null : readFloats(ins[`s${i}`]);
  };
  const inv = (read('inv') ?? read('s')) as Float32Array;
  checkInv(inv, MODES[a.mode].centred ? 'saved 1 / std' : 'saved 1 / rms');
  const invStd = read('invStd');
  if (invStd) checkInv(invStd, 'saved 1 / std');
  return {m1: read('m1'), m2: read('m2'), inv, k: invStd ?? inv};
}

/**
 * The saved mean as the backward uses it: m1 and m2 as saved; or, where
 * every set's mean is within 2 of its standard deviations (1 / inv) of 0,
 * m1 null (x is used as it is) and m2 the whole mean (m1 + m2). null, null
 * for rms (no mean).
 */
function splitMean(st: SavedStats): {m1: Float32Array|null, m2: Float64Array|null} {
  const {m1, m2, inv} = st;
  if (!m1 || !m2) return {m1: null, m2: null};
  const whole = Float64Array.from(m1, (v, s) => v + m2[s]);
  const near = whole.every((v, s) => (v * inv[s]) ** 2 <= 4);
  return near ? {m1: null, m2: whole} : {m1, m2: Float64Array.from(m2)};
}

/**
 * gamma constant over each partial: with t = x - m1 and per-partial means
 * of dy and dy * t, dx = dy * A + t * B + C (A per partial, B and C per
 * set), and dgamma, dbeta are sums of the per-partial means: three
 * full-size ops besides dx's four.
 */
function backwardFolded(n: Native, L: TfLayout, a: Attrs, ins: Record<string, tf.TensorInfo>): tf.Tensor[] {
  const R = L.workReduce;
  const st = savedStats(a, ins);
  const xw = n.reshape(ins.x, L.work);
  const dyw = n.reshape(ins.dy, L.work);
  const gv = a.hasGamma ? readFloats(ins.gamma) : null;
  // t = x - m1, the mean split as m1 + m2; or, where every set's mean is
  // within 2 standard deviations of 0 (no cancellation), t = x itself with
  // m1 = 0 and m2 the whole mean: one full-size op fewer.
  const {m1, m2} = splitMean(st);
  const t = m1 ? n.sub(xw, wsTensor(L, (s) => m1[s])) : xw;
  const pdy = readFloats(n.mean(dyw, R));
  const pdt = readFloats(n.mean(n.mul(dyw, t), R));
  const mg = perSet(L, pdy, gv);
  const mgt = perSet(L, pdt, gv);
  const S = L.numSets;
  const {subtractsMean} = MODES[a.mode];
  const B = new Float64Array(S);
  const C = new Float64Array(S);
  for (let s = 0; s < S; s++) {
    const inv = st.inv[s];
    const m2s = m2 ? m2[s] : 0;
    if (subtractsMean) {
      // dx = inv * (g - mg) - xhat * mean(g * xhat) * k, xhat = (t - m2) * inv.
      const mgx = inv * (mgt[s] - m2s * mg[s]);
      B[s] = -inv * mgx * st.k[s];
      C[s] = -inv * mg[s] - B[s] * m2s;
    } else {
      // no mean subtracted (rms, rmsScaling): dx = s * (g - xhat * mean(g * x * s)), x = t + m1, xhat = (t - m2) * s (rms: xhat = x * s).
      const M = inv * (mgt[s] + (m1 ? m1[s] * mg[s] : 0));
      B[s] = -inv * inv * M;
      C[s] = -B[s] * m2s;
    }
  }
  const A = wsTensor(L, (s, i) => st.inv[s] * (gv ? gv[L.wsParam[i]] : 1));
  let dx = n.add(n.mul(dyw, A), n.mul(t, wsTensor(L, (s) => B[s])));
  if (m2) dx = n.add(dx, wsTensor(L, (s) => C[s]));
  const grads = [n.reshape(dx, ins.x.shape)];
  const paramSums = (fn: (s: number, i: number) => number, shape: number[]) => {
    const out = new Float64Array(sizeOf(shape));
    for (let i = 0; i < L.numSets * L.r; i++) out[L.wsParam[i]] += L.count * fn(Math.floor(i / L.r), i);
    return tf.tensor(Float32Array.from(out), shape, 'float32');
  };
  if (a.hasGamma) {
    // sum(dy * xn): xn = (t - m2) * inv (centred), x * s = (t + m1) * s (no mean subtracted).
    grads.push(paramSums((s, i) => {
      const inv = st.inv[s];
      if (subtractsMean) return inv * (pdt[i] - (m2 ? m2[s] : 0) * pdy[i]);
      return inv * (pdt[i] + (m1 ? m1[s] * pdy[i] : 0));
    }, a.gammaShape));
  }
  if (a.hasBeta) grads.push(paramSums((_, i) => pdy[i], a.betaShape));
  return grads;
}

/** gamma varying inside the partials (LayerNorm over the last axis): the chain of core.ts in native ops. */
function backwardGeneral(n: Native, L: TfLayout, a: Attrs, ins: Record<string, tf.TensorInfo>): tf.Tensor[] {
  const R = L.workReduce;
  const st = savedStats(a, ins);
  const xw = n.reshape(ins.x, L.work);
  const dyw = n.reshape(ins.dy, L.work);
  const gw = a.hasGamma ? n.reshape(ins.gamma, L.paramWork) : null;
  const g = gw ? n.mul(dyw, gw) : dyw;
  const invT = wsTensor(L, (s) => st.inv[s]);
  const {centred, subtractsMean} = MODES[a.mode];
  let xhat: tf.Tensor;
  let xn: tf.Tensor;
  if (!centred) {
    xhat = xn = n.mul(xw, invT);
  } else {
    const {m1, m2} = splitMean(st);
    const mm2 = m2 as Float64Array;
    // xhat = ((x - m1) - m2) * inv, or x * inv - m2 * inv where m1 = 0 (see splitMean).
    xhat = m1 ? n.mul(n.sub(n.sub(xw, wsTensor(L, (s) => m1[s])), wsTensor(L, (s) => mm2[s])), invT) :
                n.add(n.mul(xw, invT), wsTensor(L, (s) => -mm2[s] * st.inv[s]));
    xn = subtractsMean ? xhat : n.mul(xw, invT);
  }
  const mgx = perSet(L, readFloats(n.mean(n.mul(g, xn), R)));
  let dx: tf.Tensor;
  if (subtractsMean) {
    // dx = inv * (g - mg) - xhat * mgx * k
    const mg = perSet(L, readFloats(n.mean(g, R)));
    dx = n.add(n.add(n.mul(g, invT), n.mul(xhat, wsTensor(L, (s) => -mgx[s] * st.k[s]))),
        wsTensor(L, (s) => -st.inv[s] * mg[s]));
  } else {
    // dx = s * (g - xhat * mean(g * xn))
    dx = n.add(n.mul(g, invT), n.mul(xhat, wsTensor(L, (s) => -st.inv[s] * mgx[s])));
  }
  const grads = [n.reshape(dx, ins.x.shape)];
  if (a.hasGamma) grads.push(n.reshape(n.sum(n.mul(dyw, xn), L.paramAxes), a.gammaShape));
  if (a.hasBeta) grads.push(n.reshape(n.sum(dyw, L.paramAxes), a.betaShape));
  return grads;
}

/** The 'tensorflow' backend's record (./index.ts registers it). */
export const tensorflowBackend: FusedBackend = {
  backend: 'tensorflow',
  forward: tensorflowForward,
  backward: tensorflowBackward,
  accepts: (plan) => tensorflowAccepts(plan),
};
