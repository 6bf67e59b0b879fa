/**
 * The one normalization routine behind every op of this package, written
 * with tf ops only (so it runs, and differentiates, on every backend,
 * tfjs-node included) and carrying an analytic gradient through
 * `tf.customGrad`.
 *
 * Each op describes its work as a {@link NormPlan}: a view of x (a reshape,
 * never a transpose), the axes of that view the statistics are taken over,
 * and the shape gamma/beta take in that view. The caller validates; this
 * file only computes.
 *
 * Numerics. Statistics accumulate in float32 tensors (the cpu backend sums
 * in float64 inside its kernels). The variance uses the corrected two-pass
 * algorithm (Chan, Golub & LeVeque): with d = x - mean1 (exact when x is
 * near its mean) and mean2 = mean(d), var = mean(d^2) - mean2^2. mean2 is
 * tiny, so nothing cancels catastrophically, unlike E[x^2] - E[x]^2; and
 * (d - mean2) recovers the mean's rounding error, which matters when the
 * mean is large against the spread (mean 1e3, std 1e-2). A set whose
 * variance + epsilon is exactly 0 gets an inverse standard deviation of 0,
 * so a constant input with epsilon 0 gives beta, not NaN.
 */
import * as tf from '@tensorflow/tfjs';

import {MODES, NormMode, NormPlan, numStats, sizeOf, statsShapeOf} from '../kernels/contract';
import {fusedNorm, fusedNormGrad, fusedSave} from '../kernels/index';

import {fullSize, maskView, prepareMask, SetOps, setOps} from './mask';

export type {NormMode, NormPlan} from '../kernels/contract';

/** Broadcast shape of two shapes of equal rank. */
function broadcast(left: readonly number[], right: readonly number[]): number[] {
  return left.map((d, i) => Math.max(d, right[i]));
}

/**
 * tf.where on tensors of one shape, run on their flat views: the webgl and
 * webgpu backends implement Select only up to rank 4, and the views here
 * reach rank 6.
 */
function select(cond: tf.Tensor, ifTrue: tf.Tensor, ifFalse: tf.Tensor): tf.Tensor {
  if (ifTrue.rank <= 4) return tf.where(cond, ifTrue, ifFalse);
  return tf.reshape(tf.where(tf.reshape(cond, [-1]), tf.reshape(ifTrue, [-1]), tf.reshape(ifFalse, [-1])), ifTrue.shape);
}

/**
 * 1 / x, and 0 where x is 0. The reciprocal is taken of x with 1 put where
 * x is 0, so that its gradient there is 0 too, not 0 * Inf = NaN (this
 * routine is differentiated twice when a gradient is).
 */
function safeReciprocal(x: tf.Tensor): tf.Tensor {
  const pos = positive(x);
  return select(pos, tf.reciprocal(select(pos, x, tf.onesLike(x))), tf.zerosLike(x));
}

/**
 * Whether a tape is recording right now. In a gradient function that means
 * the gradient being computed will itself be differentiated (tf.grad of a
 * function that calls tf.grad: gradient penalties, Hessian-vector products).
 */
export function taping(): boolean {
  return tf.engine().isTapeOn();
}

/**
 * fn(t) as a constant to the tape: computed out of its sight, with a zero
 * gradient for t. For what has no gradient (comparisons) or cancels out
 * (the rescaling divisor); without a recording tape, plainly fn(t).
 */
export function untaped(t: tf.Tensor, fn: (t: tf.Tensor) => tf.Tensor): tf.Tensor {
  if (!taping()) return fn(t);
  const constant = tf.customGrad((...args: Array<tf.Tensor|tf.GradSaveFunc>) => {
    const input = args[0] as tf.Tensor;
    // zeros of the input's shape, not zerosLike(input): it may be disposed by
    // the time a second-order backward runs, and tfjs-node's ZerosLike reads
    // its input.
    return {value: fn(input), gradFunc: () => tf.zeros(input.shape, input.dtype)};
  });
  return constant(t);
}

/** t > 0, as a constant to the tape (a comparison has no gradient). */
function positive(t: tf.Tensor): tf.Tensor {
  return untaped(t, (v) => tf.greater(v, 0));
}

/**
 * True where the active backend stores tensors in float16: WebGL without
 * float32 render targets (WEBGL_RENDER_FLOAT32_ENABLED false, as on many
 * phones). There any square above 65504 (a deviation above 256) overflows
 * to Inf, so the statistics are taken of values rescaled into [-1, 1].
 */
function halfFloatStorage(): boolean {
  return tf.getBackend() === 'webgl' && !tf.env().getBool('WEBGL_RENDER_FLOAT32_ENABLED');
}

/**
 * The per-set divisor v is rescaled by before its moments are taken, so
 * that no sum or square overflows or underflows: on float16 storage
 * max(max|v|, 1) (squares above 65504 overflow); on float32 storage a
 * power of two (an exact division) where max|v| is above 2^32 or below
 * 2^-32 (squares overflow at |v| > 1.8e19 and underflow below 1e-19), its
 * exponent capped at 127 (2^128 is Inf), and 1 elsewhere; on float32
 * storage never below `floor` (see epsilonFloor). `halfToo` false: 1 on
 * float16 storage.
 */
function rescale(v: tf.Tensor, axes: number[], halfToo = true, floor: tf.Tensor|number = 0): tf.Tensor {
  const divisor = (t: tf.Tensor) => {
    const maxAbs = tf.max(tf.abs(t), axes, true);
    if (halfFloatStorage()) return halfToo ? tf.maximum(maxAbs, 1) : tf.onesLike(maxAbs);
    // Only ops docs/backends.md lists: min(e, 127) = -max(-e, -127);
    // "above 2^32 or below 2^-32" = max(m, 1 / m) > 2^32 (Inf for m = 0,
    // which keeps 1).
    const exponent = tf.neg(tf.maximum(tf.neg(tf.ceil(tf.div(tf.log(maxAbs), Math.LN2))), -127));
    const pow2 = tf.pow(tf.scalar(2), exponent);
    const ones = tf.onesLike(maxAbs);
    const extreme = tf.greater(tf.maximum(maxAbs, tf.reciprocal(maxAbs)), 2 ** 32);
    const chosen = select(extreme, select(tf.greater(maxAbs, 0), pow2, ones), ones);
    return floor === 0 ? chosen : tf.maximum(chosen, floor);
  };
  // The divisor cancels out of every result, so it is a constant to a tape
  // (the gradient of log(max|v|) would be NaN for an all-zero set).
  return untaped(v, divisor);
}

/**
 * The least divisor a set may be rescaled by for epsilon: a power of two
 * near sqrt(epsilon) * 2^-60, so that the scaled epsilon terms,
 * (sqrt(eps) / divisor)^2 and eps / divisor, stay below 2^120 (finite). A spread far
 * below that is negligible against epsilon, so its squares may underflow.
 * 0 (no floor) where that power of two is below float32's range.
 */
function epsilonFloor(epsilon: number): number {
  return epsilon > 0 ? Math.fround(2 ** (Math.floor(Math.log2(Math.sqrt(epsilon))) - 60)) : 0;
}

/**
 * k = divisor * rsqrt(ms * divisor^2 + eps) for the moment ms of
 * v / divisor, without forming divisor^2 or 1 / divisor (either can
 * overflow): rsqrt(ms + (sqrt(eps) / divisor)^2); 0 where the sum is 0.
 * What v / divisor is multiplied by; inv = k / divisor.
 */
function rsqrtScaled(ms: tf.Tensor, epsilon: number, divisor: tf.Tensor): tf.Tensor {
  const t = tf.div(Math.sqrt(epsilon), divisor);
  if (halfFloatStorage()) {
    // float16 storage: p would overflow at 2^16 (a set of x rescaled into
    // [-1, 1] whose moment is below float16's range), so the terms as they are.
    const ve = tf.add(ms, tf.square(t));
    const pos = positive(ve);
    return select(pos, tf.rsqrt(select(pos, ve, tf.onesLike(ve))), tf.zerosLike(ve));
  }
  // Both terms times p^2, p a power of two near 1 / max(sqrt(ms), t), and
  // rsqrt times p (the same value for any p): a set rescaled by a large
  // divisor (a constant set at 1e20: ms = 0, t = 1.7e-24) would otherwise
  // square t into a denormal or 0, and k = rsqrt(t^2) would lose its bits
  // or be 0 (dx of that set 0 instead of gamma * (dy - mean dy) / sqrt(eps)).
  const p = untaped(ms, (m) => {
    // log2 of max(sqrt(ms), t) without squaring t (log(0) = -Inf for ms = 0 picks t).
    const l = tf.maximum(tf.div(tf.log(m), 2 * Math.LN2), tf.div(tf.log(t), Math.LN2));
    // 2^-ceil(l), the exponent in [-126, 126] (2^127 * 2^127 would overflow in the squares below).
    const e = tf.maximum(tf.neg(tf.maximum(tf.ceil(l), -126)), -126);
    return tf.pow(tf.scalar(2), e);
  });
  const tp = tf.mul(t, p);
  const ve = tf.add(tf.mul(tf.mul(ms, p), p), tf.square(tp));
  const pos = positive(ve);
  // rsqrt of 1 where the sum is 0, so that the gradient there is 0, not NaN.
  return select(pos, tf.mul(tf.rsqrt(select(pos, ve, tf.onesLike(ve))), p), tf.zerosLike(ve));
}

/**
 * Centered statistics, taken of x scaled by two powers of two (exact):
 * xDivisor brings x into range, so that its sum and x - mean cannot
 * overflow (64 values of 1e37, [3.4e38, -3.4e38]); dDivisor the
 * deviations, so that their squares neither overflow nor underflow (a
 * spread of 1e-25 or a denormal one). With divisor = xDivisor * dDivisor:
 * ds = (x / xDivisor - m1s) / dDivisor, m2s = mean(ds), the variance of ds,
 * and k, what (ds - m2s) is multiplied by to give xhat (inv * divisor,
 * finite where inv itself is not). Also the statistics the forward saves:
 * m1 = m1s * xDivisor, m2 = m2s * divisor, inv = rsqrt(var + eps), or
 * 1 / (std + eps) in stdEps mode, where invStd = 1 / std is also returned,
 * and kStd = invStd * divisor (finite where invStd is not).
 */
function centered(xv: tf.Tensor, plan: NormPlan, set: SetOps) {
  const axes = plan.reduceAxes;
  const floor = epsilonFloor(plan.epsilon);
  const xDivisor = rescale(set.valid(xv), axes, false, floor);
  const xs = tf.div(xv, xDivisor);
  const m1s = set.avg(xs);
  const d = tf.sub(xs, m1s);
  const dDivisor = rescale(set.valid(d), axes, true, floor === 0 ? 0 : tf.div(floor, xDivisor));
  const ds = tf.div(d, dDivisor);
  const divisor = tf.mul(xDivisor, dDivisor);
  const m2s = set.avg(ds);
  const m1 = tf.mul(m1s, xDivisor);
  const m2 = tf.mul(m2s, divisor);
  const variance = tf.relu(tf.sub(set.avg(tf.square(ds)), tf.square(m2s)));
  const common = {m1, m2, xs, dDivisor, divisor, ds, m2s, variance};
  if (MODES[plan.mode].epsilonOn === 'variance') {
    const k = rsqrtScaled(variance, plan.epsilon, divisor);
    return {...common, inv: tf.div(k, divisor), invStd: null, k, kStd: null};
  }
  const pos = positive(variance);
  const sds = select(pos, tf.sqrt(select(pos, variance, tf.onesLike(variance))), tf.zerosLike(variance));
  const k = safeReciprocal(tf.add(sds, tf.div(plan.epsilon, divisor)));
  return {...common, inv: tf.div(k, divisor), invStd: safeReciprocal(tf.mul(sds, divisor)), k, kStd: safeReciprocal(sds)};
}

/** The highest rank TensorFlow's CPU broadcasting handles (tfjs-node's 'tensorflow' backend). */
const TF_MAX_BROADCAST_RANK = 5;

/**
 * On the 'tensorflow' backend, a view above rank 5 (a LayerNormalization
 * axis list that alternates with the kept axes of a rank-6 input) cannot be
 * broadcast against its statistics: TensorFlow's CPU broadcasting stops at
 * rank 5. There, and only there, x (and gamma, beta, mask) is transposed so
 * the kept axes come first and the statistics axes last, runs of axes of
 * the same kind are merged, normalize() runs on that view of rank <= 4 and
 * the result is transposed back (autodiff carries the gradient through the
 * transposes). Returns null where no lowering is needed or possible.
 */
function normalizeLowered(
    x: tf.Tensor, plan: NormPlan, gamma: tf.Tensor|null|undefined, beta: tf.Tensor|null|undefined,
    mask: tf.Tensor|null|undefined): tf.Tensor|null {
  const {viewShape, reduceAxes, paramViewShape} = plan;
  if (viewShape.length <= TF_MAX_BROADCAST_RANK || tf.getBackend() !== 'tensorflow') return null;
  const sortedReduce = [...reduceAxes].sort((p, q) => p - q);
  const keep = viewShape.map((_, i) => i).filter((i) => !sortedReduce.includes(i));
  const perm = [...keep, ...sortedReduce];
  const tShape = perm.map((i) => viewShape[i]);
  const tParam = perm.map((i) => paramViewShape[i]);
  const view: number[] = [];
  const param: number[] = [];
  const reduce: boolean[] = [];
  let lastKey = '';
  perm.forEach((axis, j) => {
    if (tShape[j] === 1) return;
    const isReduce = sortedReduce.includes(axis);
    const key = `${isReduce}/${tParam[j] === 1}`;
    if (key === lastKey) {
      view[view.length - 1] *= tShape[j];
      param[param.length - 1] *= tParam[j];
    } else {
      view.push(tShape[j]);
      param.push(tParam[j]);
      reduce.push(isReduce);
      lastKey = key;
    }
  });
  if (!reduce.includes(true)) {
    view.push(1);
    param.push(1);
    reduce.push(true);
  }
  if (view.length > TF_MAX_BROADCAST_RANK) return null;
  const lowered: NormPlan = {
    ...plan, viewShape: view, paramViewShape: param,
    reduceAxes: reduce.flatMap((r, i) => (r ? [i] : [])),
  };
  const inverse = perm.map((_, i) => perm.indexOf(i));
  return tf.tidy(() => {
    const toView = (t: tf.Tensor, from: number[], to: number[]) => tf.reshape(tf.transpose(tf.reshape(t, from), perm), to);
    const y = normalize(
        toView(x, viewShape, view), lowered, gamma != null ? toView(gamma, paramViewShape, param) : null,
        beta != null ? toView(beta, paramViewShape, param) : null,
        mask != null ? toView(fullSize(mask, x.shape), viewShape, view) : null);
    return tf.reshape(tf.transpose(tf.reshape(y, tShape), inverse), x.shape);
  });
}

/**
 * The statistics of the sets, for a caller that needs them besides y
 * (BatchNormalization's moving averages): the mean and the population
 * variance (divided by the count, not count - 1), each shaped like
 * plan.viewShape with the reduced axes set to 1, as tensors or read into
 * float64 arrays (`values`: for backends whose data is on the CPU, where
 * reading is cheaper than a few small ops).
 */
export interface Moments {
  mean(): tf.Tensor;
  variance(): tf.Tensor;
  values(): {mean: Float64Array, variance: Float64Array};
  /**
   * The fused forward's own statistics, [m1, m2, inv] (mean = m1 + m2,
   * inv = 1 / sqrt(variance + epsilon), 0 where that is 0), shaped as
   * mean() and owned by the forward (not to be disposed); null where the
   * statistics came from the tf-op path. For a caller that turns them into
   * what it needs in one kernel instead of mean() and variance()'s ops.
   */
  saved(): tf.Tensor[]|null;
}

/**
 * Receives the sets' {@link Moments}, inside the forward, once, where no
 * tape records (nothing done here costs the gradient anything, and the
 * statistics are constants to it); tensors made there are disposed after
 * the call (tf.keep what must outlive it). Only in 'center' mode.
 */
export type MomentsSink = (moments: Moments) => void;

function sinkMoments(
    sink: MomentsSink, m1: tf.Tensor, m2: tf.Tensor, variance: () => tf.Tensor,
    values: () => Float64Array, saved: tf.Tensor[]|null): void {
  tf.tidy(() => {
    sink({
      mean: () => tf.add(m1, m2),
      variance,
      saved: () => saved,
      values: () => {
        // Plain loops: Float64Array.from with a map function takes the
        // iterator path (tens of microseconds a call on C values, per step).
        const hi = m1.dataSync();
        const lo = m2.dataSync();
        const mean = new Float64Array(hi.length);
        for (let i = 0; i < hi.length; i++) mean[i] = hi[i] + lo[i];
        return {mean, variance: values()};
      },
    });
  });
}

/**
 * The variance from a fused kernel's inv = rsqrt(var + eps) (rounded to
 * float32 from float64): 1 / inv^2 - eps, within 2 float32 ulps of
 * var + eps; 0 where inv is 0 (var + eps = 0) or the difference rounds below
 * 0. Never differentiated (see MomentsSink), so the Inf of 1 / 0 is simply
 * replaced.
 */
function varianceFromInv(inv: tf.Tensor, epsilon: number, m1: tf.Tensor, m2: tf.Tensor): tf.Tensor {
  const v = select(tf.greater(inv, 0), tf.relu(tf.sub(tf.reciprocal(tf.square(inv)), epsilon)), tf.zerosLike(inv));
  // A NaN or Inf in a set leaves the fused forward's inv 0: its variance is NaN then, as the tf-op path's.
  return select(tf.isFinite(tf.add(m1, m2)), v, tf.fill(v.shape, NaN));
}

/**
 * One set's variance from the fused forward's statistics, in float64: mean =
 * m1 + m2, inv = 1 / sqrt(variance + epsilon) (0 where the variance is 0,
 * and for a set with a NaN or Inf, whose variance is NaN, as the tf-op
 * path's).
 */
export function varianceOfSet(mean: number, inv: number, epsilon: number): number {
  if (!Number.isFinite(mean)) return NaN;
  return inv > 0 ? Math.max(1 / (inv * inv) - epsilon, 0) : 0;
}

/** varianceFromInv in float64 on the values. */
function varianceFromInvValues(inv: tf.Tensor, epsilon: number, m1: tf.Tensor, m2: tf.Tensor): Float64Array {
  const s = inv.dataSync();
  const hi = m1.dataSync();
  const lo = m2.dataSync();
  const out = new Float64Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = varianceOfSet(hi[i] + lo[i], s[i], epsilon);
  return out;
}

/**
 * Normalizes x according to plan, with optional gamma and beta (their own
 * shapes are kept; they are reshaped to plan.paramViewShape inside), and an
 * optional mask (float32, x's rank, broadcasting against x, nonzero = valid;
 * see prepareMask in mask.ts):
 * masked positions are left out of the statistics and are normalized with
 * the statistics of the valid ones. With `moments`, the sets' mean and
 * variance are handed to it too (see {@link MomentsSink}).
 */
export function normalize(
    x: tf.Tensor, plan: NormPlan, gamma?: tf.Tensor|null, beta?: tf.Tensor|null,
    mask?: tf.Tensor|null, moments?: MomentsSink): tf.Tensor {
  const lowered = moments ? null : normalizeLowered(x, plan, gamma, beta, mask);
  if (lowered != null) return lowered;
  // Whether anything will read the statistics: a gradient (a tape records
  // this call; inside the customGrad below none appears to) or the sink.
  const taped = taping();
  const withStats = taped || moments != null;
  // No tape records this call (inference): the fused kernel straight
  // through the engine, without tf.customGrad's closures, scope and
  // bookkeeping (nothing would ever call its gradient). y is the same
  // tensor customGrad would return.
  // Whether the fused kernel was asked here and had nothing for this call
  // (no kernel for the plan, or it declined the data): not asked again below.
  const directTried = !taped && mask == null;
  if (directTried) {
    const direct = fusedNorm(x, plan, gamma, beta, withStats);
    if (direct != null) {
      if (moments && plan.mode === 'center') {
        const inv = direct.stats[2];
        const [m1, m2] = direct.stats;
        sinkMoments(moments, m1, m2, () => varianceFromInv(inv, plan.epsilon, m1, m2),
                    () => varianceFromInvValues(inv, plan.epsilon, m1, m2), direct.stats.slice(0, 3));
      }
      tf.dispose(direct.stats);
      return direct.y;
    }
  }
  const hasGamma = gamma != null;
  const hasBeta = beta != null;
  const hasMask = mask != null;
  const inputs: tf.Tensor[] = [x];
  if (hasGamma) inputs.push(gamma);
  if (hasBeta) inputs.push(beta);
  const {viewShape, reduceAxes, paramViewShape, mode} = plan;
  const statsShape = statsShapeOf(plan);
  // Fold gamma into a per-set scale when that tensor is smaller than x:
  // y = d * scale + shift costs two full-size ops instead of four.
  const fold = sizeOf(broadcast(statsShape, paramViewShape)) < sizeOf(viewShape);
  const paramAxes: number[] = [];
  paramViewShape.forEach((d, i) => {
    if (d === 1) paramAxes.push(i);
  });
  const f = tf.customGrad((...args: Array<tf.Tensor|tf.GradSaveFunc>) => {
    const save = args[args.length - 1] as tf.GradSaveFunc;
    const xin = args[0] as tf.Tensor;
    const g = hasGamma ? args[1] as tf.Tensor : null;
    const b = hasBeta ? args[hasGamma ? 2 : 1] as tf.Tensor : null;
    const gradFunc = (dy: tf.Tensor, saved: tf.Tensor[]) =>
        backward(dy, saved, plan, paramAxes, hasGamma, hasBeta, hasMask, gamma?.shape, beta?.shape);
    // A fused kernel of the active backend, when it has one for this plan
    // (src/kernels): same outputs and saved statistics, same backward
    // (without a tape recording, or a moments sink, it returns y alone).
    // Masked statistics always take the tf-op path; an untaped call whose
    // direct fused attempt above returned nothing takes it too.
    const fused = hasMask || directTried ? null : fusedNorm(xin, plan, g, b, withStats);
    if (fused != null) {
      if (moments && mode === 'center') {
        const inv = fused.stats[2];
        const [m1, m2] = fused.stats;
        sinkMoments(moments, m1, m2, () => varianceFromInv(inv, plan.epsilon, m1, m2),
                    () => varianceFromInvValues(inv, plan.epsilon, m1, m2), fused.stats.slice(0, 3));
      }
      fusedSave(save, g ? [xin, ...fused.stats, g] : [xin, ...fused.stats]);
      return {value: fused.y, gradFunc};
    }
    const mv = hasMask ? maskView(mask, xin.shape, viewShape) : null;
    const set = setOps(reduceAxes, viewShape, mv);
    // Saved after the statistics: the mask (if any), then gamma (if any).
    const extras = [...(mv ? [mv] : []), ...(g ? [g] : [])];
    const xv = tf.reshape(xin, viewShape);
    const gv = g ? paramView(g, paramViewShape) : null;
    const bv = b ? paramView(b, paramViewShape) : null;
    let y: tf.Tensor;
    if (MODES[mode].subtractsMean) {
      // In scaled terms (see centered): xhat = (ds - m2s) * k.
      const {m1, m2, inv, invStd, ds, m2s, k, variance, divisor} = centered(xv, plan, set);
      if (moments && mode === 'center') {
        const v = () => tf.mul(tf.mul(variance, divisor), divisor);
        sinkMoments(moments, m1, m2, v, () => Float64Array.from(tf.tidy(v).dataSync()), null);
      }
      if (fold) {
        const scale = gv ? tf.mul(k, gv) : k;
        const shiftNeg = tf.mul(m2s, scale);
        const shift = bv ? tf.sub(bv, shiftNeg) : tf.neg(shiftNeg);
        y = tf.add(tf.mul(ds, scale), shift);
      } else {
        const xhat = tf.mul(tf.sub(ds, m2s), k);
        const scaled = gv ? tf.mul(xhat, gv) : xhat;
        y = bv ? tf.add(scaled, bv) : scaled;
      }
      const stats = invStd ? [xin, m1, m2, inv, invStd] : [xin, m1, m2, inv];
      save([...stats, ...extras]);
    } else {
      // y = x * s in scaled terms: (x / divisor) * k, with s = k / divisor.
      let xsv: tf.Tensor;
      let k: tf.Tensor;
      if (!MODES[mode].centred) {
        const divisor = rescale(set.valid(xv), reduceAxes, true, epsilonFloor(plan.epsilon));
        xsv = tf.div(xv, divisor);
        k = rsqrtScaled(set.avg(tf.square(xsv)), plan.epsilon, divisor);
        save([xin, tf.div(k, divisor), ...extras]);
      } else {
        const c = centered(xv, plan, set);
        xsv = tf.div(c.xs, c.dDivisor);
        k = c.k;
        save([xin, c.m1, c.m2, c.inv, ...extras]);
      }
      const scale = gv && fold ? tf.mul(k, gv) : k;
      y = tf.mul(xsv, scale);
      if (gv && !fold) y = tf.mul(y, gv);
      if (bv) y = tf.add(y, bv);
    }
    return {value: tf.reshape(y, xin.shape), gradFunc};
  });
  return f(...inputs);
}

/**
 * gamma or beta reshaped to the plan's parameter view. When the parameter's
 * own shape is not that view less its 1s (a LayerNormalization weight held
 * in the axis list's order, e.g. [4, 2] for axis [2, 0], viewed as
 * [2, 1, 4]), the view is materialized by a transpose of the flat values
 * (same order, a new tensor): on webgl in tfjs 4.22 a reshaped view of such
 * a weight, broadcast in a packed multiply, read the wrong values (dx off by
 * 0.69 in the parity case 'random/layer [2,3,4] axis=[2,0] scale').
 */
function paramView(t: tf.Tensor, paramViewShape: number[]): tf.Tensor {
  const squeezed = paramViewShape.filter((d) => d !== 1);
  const own = t.shape.filter((d) => d !== 1);
  if (own.length === squeezed.length && own.every((d, i) => d === squeezed[i])) return tf.reshape(t, paramViewShape);
  return tf.reshape(tf.transpose(tf.reshape(t, [1, -1])), paramViewShape);
}

/**
 * What the backward works with, per set, in terms that stay finite wherever
 * the gradient does: xhat = dc * k and xn = xr * k (or xhat), and
 * dx = kOut * (...) / divisor. From x (backStatsOf), in the scaled terms of
 * centered(): dc = (x - mean) / divisor, xr = x / divisor,
 * k = kOut = inv * divisor, kStd = invStd * divisor (stdEps), divisor a
 * power of two. From the saved statistics (savedBackStats): divisor = null
 * (1) and kOut = inv.
 */
interface BackStats {
  k: tf.Tensor;
  kOut: tf.Tensor;
  divisor: tf.Tensor|null;
  dc: tf.Tensor|null;
  xr: tf.Tensor|null;
  kStd: tf.Tensor|null;
}

/** The backward's statistics, recomputed from the view xv in scaled tf ops (differentiable). */
function backStatsOf(xv: tf.Tensor, plan: NormPlan, set: SetOps): BackStats {
  if (!MODES[plan.mode].centred) {
    const divisor = rescale(set.valid(xv), plan.reduceAxes, true, epsilonFloor(plan.epsilon));
    const xr = tf.div(xv, divisor);
    const k = rsqrtScaled(set.avg(tf.square(xr)), plan.epsilon, divisor);
    return {k, kOut: k, divisor, dc: null, xr, kStd: null};
  }
  const c = centered(xv, plan, set);
  return {
    k: c.k, kOut: c.k, divisor: c.divisor, dc: tf.sub(c.ds, c.m2s),
    xr: MODES[plan.mode].subtractsMean ? null : tf.div(c.xs, c.dDivisor), kStd: c.kStd,
  };
}

/**
 * The backward's statistics from the saved ones ([m1, m2, inv] or [s]),
 * for 'center', 'rmsScaling' and 'rms' with epsilon >= MIN_SAVED_EPSILON
 * (so inv is finite). The deviation is taken of halves,
 * dc = x / 2 - m1 / 2 - m2 / 2 with k = 2 * inv: x - m1 overflows for
 * values within a factor 2 of the float32 maximum, their halves cannot
 * (halving is exact except for the last bit of a denormal x, below what
 * epsilon lets matter).
 */
function savedBackStats(xv: tf.Tensor, stats: tf.Tensor[], mode: NormMode): BackStats {
  if (!MODES[mode].centred) return {k: stats[0], kOut: stats[0], divisor: null, dc: null, xr: xv, kStd: null};
  const [m1, m2, inv] = stats;
  const xr = tf.mul(xv, 0.5);
  const dc = tf.sub(tf.sub(xr, tf.mul(m1, 0.5)), tf.mul(m2, 0.5));
  return {k: tf.mul(inv, 2), kOut: inv, divisor: null, dc, xr, kStd: null};
}

/**
 * Below this epsilon a saved inverse standard deviation can overflow float32
 * (1 / sqrt(var + eps) > 3.4e38 needs var + eps < 8.6e-78: a denormal
 * spread), and the backward recomputes its statistics from x.
 */
const MIN_SAVED_EPSILON = 1e-76;

function backward(
    dy: tf.Tensor, saved: tf.Tensor[], plan: NormPlan, paramAxes: number[], hasGamma: boolean,
    hasBeta: boolean, hasMask: boolean, gammaShape?: number[], betaShape?: number[]): tf.Tensor[] {
  // A backward that a tape records (its result will be differentiated:
  // tf.grad of a function that calls tf.grad) runs in differentiable tf ops
  // and recomputes the statistics from x: the saved ones are constants to
  // the tape, and the fused backward kernel has no gradient of its own. The
  // saved x and gamma are the engine's clones of the inputs, which the tape
  // links to them, so second (and higher) derivatives reach x and gamma.
  const recorded = taping();
  // The fused backward of the active backend, when it has one (src/kernels);
  // masked statistics always take the tf-op path.
  const fused = hasMask || recorded ? null : fusedNormGrad(dy, saved, plan, hasGamma, hasBeta, gammaShape, betaShape);
  if (fused != null) return fused;
  const {viewShape, reduceAxes, paramViewShape, mode} = plan;
  const xin = saved[0];
  const g = hasGamma ? saved[saved.length - 1] : null;
  const set = setOps(reduceAxes, viewShape, hasMask ? saved[saved.length - (hasGamma ? 2 : 1)] : null);
  // With a mask, x and dy at masked positions are replaced by 0 before any
  // arithmetic: the outputs there are don't-cares (as Keras treats masked
  // steps), so no masked value, even NaN or Inf, reaches dx of a valid
  // position, dgamma or dbeta (0 * NaN in a sum would); dx there is 0.
  const xv = set.valid(tf.reshape(xin, viewShape));
  const dyv = set.valid(tf.reshape(dy, viewShape));
  const info = MODES[mode];
  // From x (scaled) when taped, when epsilon is so small that the saved
  // 1 / std can overflow, and in stdEps mode (its saved 1 / std overflows for
  // a denormal spread whatever epsilon is); else from the saved statistics.
  const fromX = recorded || plan.epsilon < MIN_SAVED_EPSILON || info.epsilonOn === 'std';
  const bs = fromX ? backStatsOf(xv, plan, set) : savedBackStats(xv, saved.slice(1, 1 + numStats(mode)), mode);
  const gdy = g ? tf.mul(dyv, paramView(g, paramViewShape)) : dyv;
  let inner: tf.Tensor;
  // xn is what gamma multiplies: dgamma = sum(dy * xn).
  let xn: tf.Tensor;
  if (info.subtractsMean) {
    // dx = inv * (g - mean(g)) - xhat * mean(g * xhat) * c, where c = inv
    // for rsqrt(var + eps) and c = 1 / std for 1 / (std + eps); here
    // inv = kOut / divisor and 1 / std = kStd / divisor.
    xn = tf.mul(bs.dc as tf.Tensor, bs.k);
    const mg = set.spread(gdy);
    const mgx = set.spread(tf.mul(gdy, xn));
    inner = info.epsilonOn === 'variance' ? tf.mul(bs.kOut, tf.sub(tf.sub(gdy, mg), tf.mul(xn, mgx))) :
                                tf.sub(tf.mul(bs.kOut, tf.sub(gdy, mg)), tf.mul(xn, tf.mul(mgx, bs.kStd as tf.Tensor)));
  } else if (!info.centred) {
    xn = tf.mul(bs.xr as tf.Tensor, bs.k);
    inner = tf.mul(bs.kOut, tf.sub(gdy, tf.mul(xn, set.spread(tf.mul(gdy, xn)))));
  } else {
    // y = x * s * gamma, s = rsqrt(var + eps):
    // dx = s * (g - xhat * mean(g * x * s)), xhat = (x - mean) * s.
    xn = tf.mul(bs.xr as tf.Tensor, bs.k);
    const xhat = tf.mul(bs.dc as tf.Tensor, bs.k);
    inner = tf.mul(bs.kOut, tf.sub(gdy, tf.mul(xhat, set.spread(tf.mul(gdy, xn)))));
  }
  // Divided by a power of two last: exact, or the correctly rounded +-Inf
  // (0) where the gradient itself exceeds (underflows) float32.
  const dx = bs.divisor ? tf.div(inner, bs.divisor) : inner;
  // Sums over the axes gamma/beta broadcast along (none when they cover x).
  const toParam = (t: tf.Tensor, shape: number[]) =>
      tf.reshape(paramAxes.length > 0 ? tf.sum(t, paramAxes) : t, shape);
  const grads = [tf.reshape(dx, xin.shape)];
  if (hasGamma) grads.push(toParam(tf.mul(dyv, xn), gammaShape as number[]));
  if (hasBeta) grads.push(toParam(dyv, betaShape as number[]));
  return grads;
}

/** normalize() with a caller's mask (any accepted form), disposing the prepared mask afterwards. */
export function normalizeMasked(
    who: string, x: tf.Tensor, plan: NormPlan, gamma: tf.Tensor|null|undefined, beta: tf.Tensor|null|undefined,
    mask: tf.Tensor|null|undefined, moments?: MomentsSink): tf.Tensor {
  const m = prepareMask(who, mask, x.shape);
  try {
    return normalize(x, plan, gamma, beta, m, moments);
  } finally {
    m?.dispose();
  }
}
