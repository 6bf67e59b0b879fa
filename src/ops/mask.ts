/**
 * Masks: a caller's mask checked and turned into what the normalization
 * takes, and the reductions over a statistics set that leave masked
 * positions out. Shared by normalize() (core.ts) and by
 * InstanceNormalization's running statistics.
 *
 * A prepared mask is float32, 1 where valid and 0 where masked, of x's rank
 * but only as large as it must be: the mask's own shape with trailing 1s
 * (it broadcasts against x; no full-size tensor is made). In a plan's view
 * it takes {@link maskView}'s shape: the view's leading axes that the mask
 * spans, 1 after them.
 */
import * as tf from '@tensorflow/tfjs';

const prod = (s: readonly number[]): number => s.reduce((p, d) => p * d, 1);

/**
 * Checks a caller's mask and prepares it (see the file's header). Its shape
 * must be a prefix of x's shape (as tfjs propagates them: [batch, time] for
 * [batch, time, features]) or x's shape; its dtype bool, float32 or int32;
 * nonzero means valid. Returns null for no mask.
 */
export function prepareMask(who: string, mask: tf.Tensor|null|undefined, shape: readonly number[]): tf.Tensor|null {
  if (mask == null) return null;
  if (!(mask instanceof tf.Tensor)) {
    throw new Error(`${who}: argument 'mask' must be a tf.Tensor (bool or float32); received ${typeof mask}.`);
  }
  if (!['bool', 'float32', 'int32'].includes(mask.dtype)) {
    throw new Error(`${who}: argument 'mask' must have dtype bool, float32 or int32; received '${mask.dtype}'.`);
  }
  const prefix = shape.slice(0, mask.rank);
  if (mask.rank < 1 || mask.rank > shape.length || mask.shape.some((d, i) => d !== prefix[i])) {
    throw new Error(
        `${who}: argument 'mask' must have a shape that is a prefix of the input's shape ${JSON.stringify(shape)} ` +
        `(e.g. [batch, time]); received shape ${JSON.stringify(mask.shape)}.`);
  }
  return tf.tidy(() => tf.reshape(
      tf.cast(tf.notEqual(mask, 0), 'float32'), [...mask.shape, ...new Array<number>(shape.length - mask.rank).fill(1)]));
}

/**
 * A prepared mask (x's rank, broadcasting against x of shape `shape`) in a
 * plan's view `viewShape` (a reshape of x): the view's leading axes up to
 * the one holding the mask's last non-1 axis keep their size (a view axis
 * that merges masked and unmasked axes is filled by broadcasting only as far
 * as it reaches), the rest are 1. A mask of x's full size is simply
 * reshaped.
 */
export function maskView(mask: tf.Tensor, shape: readonly number[], viewShape: readonly number[]): tf.Tensor {
  if (prod(mask.shape) === prod(viewShape) || prod(viewShape) === 0) {
    return tf.reshape(mask.size === prod(viewShape) ? mask : fullSize(mask, shape), viewShape as number[]);
  }
  // k: x's axes the mask spans (after them it is 1); the smallest prefixes of
  // x (e axes) and of the view (j axes) that cover them and hold the same elements.
  let k = mask.rank;
  while (k > 0 && mask.shape[k - 1] === 1) k--;
  let e = 0;
  let j = 0;
  let px = 1;
  let pv = 1;
  while (e < k) px *= shape[e++];
  for (;;) {
    while (pv < px) pv *= viewShape[j++];
    if (pv === px) break;
    px *= shape[e++];
  }
  const spanned = fullSize(tf.reshape(mask, mask.shape.slice(0, e)), shape.slice(0, e));
  return tf.reshape(spanned, [...viewShape.slice(0, j), ...new Array<number>(viewShape.length - j).fill(1)]);
}

/**
 * A mask broadcast to `shape` (the same rank) by an add to zeros: only ops
 * of the tf-op path's list (docs/backends.md), no Tile.
 */
export function fullSize(mask: tf.Tensor, shape: readonly number[]): tf.Tensor {
  return tf.add(tf.zeros(shape as number[]), mask);
}

/** tf.where on tensors of one shape, on flat views above rank 4 (webgl and webgpu Select stop at rank 4). */
function select(cond: tf.Tensor, a: tf.Tensor, b: tf.Tensor): tf.Tensor {
  if (a.rank <= 4) return tf.where(cond, a, b);
  return tf.reshape(tf.where(tf.reshape(cond, [-1]), tf.reshape(a, [-1]), tf.reshape(b, [-1])), a.shape);
}

/**
 * The reductions over a statistics set (the axes R of a view), with or
 * without a mask:
 * - avg(t): the mean of t over the set's valid positions;
 * - valid(t): t with masked positions replaced by 0 (so garbage in padding,
 *   even Inf or NaN, never reaches a statistic);
 * - spread(t): what the gradient subtracts at each position: mean(t) over
 *   the set without a mask; (m / count) * sum(t) over the whole set with one
 *   (masked positions' outputs depend on the statistics too, but only valid
 *   positions move them);
 * - count(): the number of valid positions of each set (statistics shape).
 * Without a mask they are exactly tf.mean, the identity and tf.mean, so the
 * unmasked path is unchanged.
 */
export interface SetOps {
  avg(t: tf.Tensor): tf.Tensor;
  valid(t: tf.Tensor): tf.Tensor;
  spread(t: tf.Tensor): tf.Tensor;
  count(): tf.Tensor;
}

/**
 * The {@link SetOps} of the sets over axes R of a view of shape
 * `viewShape`, for a mask in that view ({@link maskView}'s shape: 1 on the
 * axes where it broadcasts), from its weight (1 valid, 0 masked) and count
 * (the valid positions per set); the condition is made at full size once,
 * where a position is selected.
 */
export function setOps(R: number[], viewShape: readonly number[], mask: tf.Tensor|null): SetOps {
  if (mask == null) {
    return {
      avg: (t) => tf.mean(t, R, true), valid: (t) => t, spread: (t) => tf.mean(t, R, true),
      count: () => tf.fill(viewShape.map((d, i) => (R.includes(i) ? 1 : d)), prod(R.map((r) => viewShape[r]))),
    };
  }
  const weight = tf.cast(tf.greater(mask, 0), 'float32');
  // Axes of the set along which the mask broadcasts count each valid position that many times.
  const repeat = prod(R.filter((r) => mask.shape[r] === 1).map((r) => viewShape[r]));
  const summed = tf.sum(weight, R, true);
  const count = repeat === 1 ? summed : tf.mul(summed, repeat);
  const n = tf.maximum(count, 1);
  const coef = tf.div(weight, n);
  // The condition at the view's full size, made once (every t here is of the view's shape).
  let full: {cond: tf.Tensor, zero: tf.Tensor}|null = null;
  const valid = (t: tf.Tensor) => {
    full ??= {cond: tf.greater(weight.size === t.size ? weight : fullSize(weight, t.shape), 0), zero: tf.zerosLike(t)};
    return select(full.cond, t, full.zero);
  };
  return {
    avg: (t) => tf.div(tf.sum(valid(t), R, true), n),
    valid,
    spread: (t) => tf.mul(coef, tf.sum(t, R, true)),
    count: () => {
      const statsShape = viewShape.map((d, i) => (R.includes(i) ? 1 : d));
      return count.size === prod(statsShape) ? count : fullSize(count, statsShape);
    },
  };
}
