import * as tf from '@tensorflow/tfjs';

import {argError, checkEpsilon, checkFloatTensor, checkOptionKeys, resolveAxes} from './validate';

/** Options of {@link unitNorm}. */
export interface UnitNormOptions {
  /** Axis or axes whose L2 norm becomes 1 (negative allowed). Default -1. */
  axis?: number|number[];
  /**
   * Lower bound of the norm: `y = x / max(||x||, epsilon)`. Default 1e-6,
   * what Keras 3's UnitNormalization uses (it bounds the squared sum by
   * 1e-12). Keras's `ops.normalize` defaults to 1e-7.
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
 * `maximum` passes no gradient to the bound. Finite everywhere.
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
  const epsilon = checkEpsilon(who, opts.epsilon ?? 1e-6);
  const f = tf.customGrad((...args: Array<tf.Tensor|tf.GradSaveFunc>) => {
    const input = args[0] as tf.Tensor;
    const save = args[1] as tf.GradSaveFunc;
    // In units of m = max|x| (1 where x = 0): y = (x / m) / max(||x / m||, epsilon / m).
    const [y, m, denom, small] = tf.tidy(() => {
      const mx = tf.max(tf.abs(input), axes, true);
      const safeM = tf.where(tf.greater(mx, 0), mx, tf.onesLike(mx));
      const xs = tf.div(input, safeM);
      const rn = tf.sqrt(tf.sum(tf.square(xs), axes, true));
      const bound = tf.div(tf.scalar(epsilon), safeM);
      return [tf.div(xs, tf.maximum(rn, bound)), safeM, tf.maximum(rn, bound), tf.less(rn, bound)];
    });
    save([y, m, denom, small]);
    return {
      value: y,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [ys, ms, ds, smalls] = saved;
        return tf.tidy(() => {
          const projected = tf.sub(dy, tf.mul(ys, tf.sum(tf.mul(dy, ys), axes, true)));
          return tf.div(tf.div(tf.where(tf.broadcastTo(smalls, dy.shape), dy, projected), ds), ms);
        });
      },
    };
  });
  return f(x) as tf.Tensor<R>;
}
