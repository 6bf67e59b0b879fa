import * as tf from '@tensorflow/tfjs';

import {fusedSave} from '../kernels/index';
import {taping, untaped} from './core';
import {argError, checkEpsilon, checkFloatTensor, checkOptionKeys, resolveAxes} from './validate';

/** The default norm bound of {@link unitNorm}, Keras 3's UnitNormalization's. */
export const UNIT_NORM_EPSILON = 1e-12;

/** Options of {@link unitNorm}. */
export interface UnitNormOptions {
  /** Axis or axes whose L2 norm becomes 1 (negative allowed). Default -1. */
  axis?: number|number[];
  /**
   * Lower bound of the norm: `y = x / max(||x||, epsilon)`. Default 1e-12,
   * what Keras 3's UnitNormalization uses (3.15: `ops.normalize(x, axis,
   * order=2, epsilon=1e-12)`, i.e. `x * min(rsqrt(sum(x²)), 1e12)`; Keras
   * before its move to `ops.normalize` bounded the squared sum by 1e-12, a
   * norm bound of 1e-6). Keras's `ops.normalize` defaults to 1e-7.
   */
  epsilon?: number;
}

/**
 * `x / max(||x||₂, epsilon)` over `axis`: Keras 3's `ops.normalize(x, axis,
 * order=2, epsilon)` and its UnitNormalization layer. It computes in units
 * of `m = max|x|` (`(x / m) / max(||x / m||, epsilon / m)`), so inputs whose
 * squares overflow float32 (|x| above ~1.8e19, where Keras's `sum(x²)` is
 * Inf and its output 0) or underflow it still give unit vectors.
 *
 * Gradient (analytic): where the norm exceeds epsilon,
 * `dx = (dy - y * sum(dy * y)) / ||x||`; where it does not (x = 0
 * included), the bound is a constant and `dx = dy / epsilon`, as Keras's
 * `minimum` passes no gradient to the bound. Finite everywhere. A backward
 * that a tape records recomputes from x in differentiable ops, so
 * second-order gradients (gradient penalties) reach x.
 */
export function unitNorm<R extends tf.Rank>(x: tf.Tensor<R>, opts: UnitNormOptions = {}): tf.Tensor<R> {
  return unitNormImpl(x, opts, 'unitNorm');
}

/** {@link unitNorm} with errors naming `who` (the op or a layer). */
export function unitNormImpl<R extends tf.Rank>(x: tf.Tensor<R>, opts: UnitNormOptions, who: string): tf.Tensor<R> {
  checkOptionKeys(who, 'opts', opts, ['axis', 'epsilon']);
  checkFloatTensor(who, 'x', x);
  if (x.rank === 0) throw argError(who, 'x', 'a scalar', 'a tensor of rank >= 1');
  const axes = resolveAxes(who, 'axis', opts.axis ?? -1, x.rank);
  const epsilon = checkEpsilon(who, opts.epsilon ?? UNIT_NORM_EPSILON);
  const f = tf.customGrad((...args: Array<tf.Tensor|tf.GradSaveFunc>) => {
    const input = args[0] as tf.Tensor;
    const save = args[1] as tf.GradSaveFunc;
    const [y, m, denom, small] = tf.tidy(() => {
      const p = unitNormParts(input, axes, epsilon);
      return [p.y, p.m, p.denom, p.small];
    });
    // x too, for a backward that a tape records (see below).
    fusedSave(save, [y, m, denom, small, input]);
    return {
      value: y,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.tidy(() => {
        // A recorded backward (tf.grad of a function that calls tf.grad) recomputes y, the norm and
        // the branch from the saved x in differentiable ops, so that the second derivatives reach x;
        // the saved ones are constants to the tape.
        const [ys, ms, ds, smalls] = taping() ? (() => {
          const p = unitNormParts(saved[4], axes, epsilon);
          return [p.y, p.m, p.denom, p.small];
        })() : saved;
        const projected = tf.sub(dy, tf.mul(ys, tf.sum(tf.mul(dy, ys), axes, true)));
        return tf.div(tf.div(tf.where(tf.broadcastTo(smalls, dy.shape), dy, projected), ds), ms);
      }),
    };
  });
  return f(x) as tf.Tensor<R>;
}

/**
 * The forward in units of m = max|x| (1 where x = 0): `y = (x / m) / denom`,
 * `denom = max(||x / m||, epsilon / m)`, `small` where the bound wins. m and
 * small are constants to a recording tape (y does not depend on m; a
 * comparison has no gradient), and the norm's square root is taken of 1
 * where the bound wins, so that no 0 * Inf (the root's gradient at 0)
 * reaches a second derivative.
 */
function unitNormParts(x: tf.Tensor, axes: number[], epsilon: number): {y: tf.Tensor, m: tf.Tensor, denom: tf.Tensor, small: tf.Tensor} {
  const m = untaped(x, (v) => {
    const mx = tf.max(tf.abs(v), axes, true);
    return tf.where(tf.greater(mx, 0), mx, tf.onesLike(mx));
  });
  const xs = tf.div(x, m);
  const ss = tf.sum(tf.square(xs), axes, true);
  const bound = tf.div(tf.scalar(epsilon), m);
  const small = untaped(ss, (v) => tf.less(tf.sqrt(v), bound));
  const rn = tf.sqrt(tf.where(small, tf.onesLike(ss), ss));
  const denom = tf.where(small, bound, rn);
  return {y: tf.div(xs, denom), m, denom, small};
}
