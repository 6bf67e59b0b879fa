import * as tf from '@tensorflow/tfjs';

import {MomentsSink, NormPlan, normalizeMasked} from './core';
import {checkChannelsRank, checkEpsilon, checkFloatTensor, checkIntegerAxis, checkOptionKeys, checkParam, resolveAxis} from './validate';

/** Options of {@link batchNorm}. */
export interface BatchNormOptions {
  /** The channel axis (default -1, channels-last); the statistics are taken over every other axis. */
  axis?: number;
  /** Added to the variance (default 1e-3, as Keras). */
  epsilon?: number;
  /** Per-channel scale, shape [C]. */
  gamma?: tf.Tensor|null;
  /** Per-channel offset, shape [C]. */
  beta?: tf.Tensor|null;
  /**
   * Optional mask, shaped like a prefix of x's shape (Keras's BatchNormalization
   * takes one of rank x.rank - 1) or like x; nonzero = valid. Masked
   * positions are left out of the batch statistics and normalized with
   * those of the valid positions.
   */
  mask?: tf.Tensor|null;
}

/** The keys of BatchNormOptions. */
export const BATCH_NORM_KEYS = ['axis', 'epsilon', 'gamma', 'beta', 'mask'] as const;

/** A batch-statistics plan and its channel count C. */
export type BatchNormPlan = NormPlan&{channels: number};

/**
 * The plan for batch statistics of an input of this shape: x viewed as
 * [P, C, Q] (P = product of the axes before the channel axis, batch
 * included; Q = product of those after it; size-1 P and Q dropped), the
 * statistics over every axis of the view but C, gamma/beta along C.
 */
export function batchNormPlan(who: string, shape: readonly number[], axis: number, epsilon: number): BatchNormPlan {
  const rank = shape.length;
  checkChannelsRank(who, shape);
  const a = resolveAxis(who, 'axis', checkIntegerAxis(who, 'axis', axis), rank);
  const C = shape[a];
  const P = shape.slice(0, a).reduce((p, d) => p * d, 1);
  const Q = shape.slice(a + 1).reduce((p, d) => p * d, 1);
  const viewShape: number[] = [];
  const reduceAxes: number[] = [];
  if (a > 0) {
    reduceAxes.push(viewShape.length);
    viewShape.push(P);
  }
  viewShape.push(C);
  if (a < rank - 1) {
    reduceAxes.push(viewShape.length);
    viewShape.push(Q);
  }
  const paramViewShape = viewShape.map((d, i) => (reduceAxes.includes(i) ? 1 : d));
  return {viewShape, reduceAxes, paramViewShape, epsilon, mode: 'center', channels: C};
}

/**
 * Shared body of batchNorm and the BatchNormalization layer (errors name
 * `who`); `moments`, when given, is handed the batch mean and population
 * variance, shaped [C] (as tensors or values), inside the forward (see
 * {@link MomentsSink}).
 */
export function batchNormImpl(
    x: tf.Tensor, axis: number, epsilon: number, gamma: tf.Tensor|null|undefined, beta: tf.Tensor|null|undefined,
    who: string, mask?: tf.Tensor|null, moments?: MomentsSink): tf.Tensor {
  checkFloatTensor(who, 'x', x);
  const eps = checkEpsilon(who, epsilon);
  const plan = batchNormPlan(who, x.shape, axis, eps);
  checkParam(who, 'gamma', gamma, [plan.channels]);
  checkParam(who, 'beta', beta, [plan.channels]);
  return batchNormWithPlan(who, x, plan, gamma, beta, mask, moments);
}

/**
 * batchNormImpl past its checks, for a caller that made them once (the
 * layer: x float32, `plan` that of x's shape, gamma and beta of shape [C]).
 */
export function batchNormWithPlan(
    who: string, x: tf.Tensor, plan: BatchNormPlan, gamma: tf.Tensor|null|undefined, beta: tf.Tensor|null|undefined,
    mask?: tf.Tensor|null, moments?: MomentsSink): tf.Tensor {
  const C = [plan.channels];
  const sink: MomentsSink|undefined = moments && ((m) => moments({
    mean: () => tf.reshape(m.mean(), C), variance: () => tf.reshape(m.variance(), C), values: () => m.values(),
    // C elements each, in the plan's statistics shape (not reshaped: a kernel or a read takes them as they are).
    saved: () => m.saved(),
  }));
  return normalizeMasked(who, x, plan, gamma, beta, mask, sink);
}

/**
 * Batch normalization with batch statistics (training mode):
 * `y = (x - mean) / sqrt(var + epsilon) * gamma + beta`, the mean and the
 * population variance taken per channel over every other axis, batch
 * included. Differentiable (the gradient flows through the statistics),
 * through this package's fused kernels where the backend has them. For
 * inference with moving statistics, `tf.batchNorm` (channels-last) or the
 * BatchNormalization layer.
 */
export function batchNorm<R extends tf.Rank>(x: tf.Tensor<R>, opts: BatchNormOptions = {}): tf.Tensor<R> {
  checkOptionKeys('batchNorm', 'opts', opts, BATCH_NORM_KEYS, {
    hints: {
      momentum: 'batchNorm computes batch statistics only; the BatchNormalization layer keeps moving averages.',
      mean: 'For given statistics use tf.batchNorm.', variance: 'For given statistics use tf.batchNorm.',
    },
  });
  return batchNormImpl(x, opts.axis ?? -1, opts.epsilon ?? 1e-3, opts.gamma, opts.beta, 'batchNorm', opts.mask) as tf.Tensor<R>;
}

/**
 * Batch normalization with given statistics (inference: the
 * BatchNormalization layer's `training: false` and `trainable: false`):
 * `y = (x - mean) * rsqrt(variance + epsilon) * gamma + beta` along the
 * channel axis `axis` (resolved, in [0, rank)); mean, variance, gamma and
 * beta of shape [C], checked by the caller. Channels-last of rank <= 4 is
 * `tf.batchNorm` itself (the built-in layer's outputs, bit for bit);
 * elsewhere broadcast tf ops (the cpu backend's FusedBatchNorm steps
 * through reshaped [1, C, 1, 1] statistics along the flattened last axis:
 * wrong).
 *
 * `trainable: false` (a frozen layer: its weights constants to the tape, as
 * Keras's non-trainable weights): the gradient reaches x alone, dx = dy * s
 * with s = gamma * rsqrt(variance + epsilon) per channel, one full-size
 * product. Otherwise gamma, beta, mean and variance are differentiated too.
 * Channels-last: analytic, dbeta = sum(dy), dgamma = sum(dy * (x - mean)) *
 * rsqrt(variance + epsilon), dmean = -dbeta * s, dvariance = -dgamma * s *
 * rsqrt(variance + epsilon) / 2, the sums over the rows of the [M, C] view
 * as a product with a row of ones (tfjs's own FusedBatchNorm gradient tiles
 * the rsqrt to x's shape and takes x - mean whatever is asked: 125 ms on
 * cpu, 33 ms on wasm for a dx of [8,32,32,64]; sum over axis 0 of [M, C] is
 * 16 / 8 ms, the product 0.9 / 0.1 ms). Other axes: the tf ops' own
 * gradients, which compute only what is asked.
 * Differentiable again (second order) through the same tf ops.
 */
export function batchNormInference(
    x: tf.Tensor, mean: tf.Tensor, variance: tf.Tensor, gamma: tf.Tensor|null, beta: tf.Tensor|null, axis: number,
    epsilon: number, trainable: boolean): tf.Tensor {
  const rank = x.rank;
  const last = axis === rank - 1;
  const C = x.shape[axis];
  // x viewed as [P, C, Q] along another axis, the per-channel values as
  // [C, 1]; along the last, x as it is and the values as [C] (the same
  // arithmetic per element either way; on the cpu backend a product with
  // [1, 1, 1, C] costs 17 times one with [C], on wasm one with [1, C, 1, 1]
  // 6 times one with [C, 1] on the [P, C, Q] view).
  const product = (dims: number[]) => dims.reduce((p, d) => p * d, 1);
  const view = last ? x.shape : [product(x.shape.slice(0, axis)), C, product(x.shape.slice(axis + 1))];
  const shape = last ? [C] : [C, 1];
  const perChannel = (t: tf.Tensor, s: tf.Tensor) => tf.reshape(tf.mul(tf.reshape(t, view), tf.reshape(s, shape)), x.shape);
  const forward = (xin: tf.Tensor, m: tf.Tensor, v: tf.Tensor, g: tf.Tensor|null, b: tf.Tensor|null): tf.Tensor => {
    if (last && rank <= 4) return tf.batchNorm(xin, m, v, b ?? undefined, g ?? undefined, epsilon);
    const inv = tf.rsqrt(tf.add(v, epsilon));
    const scale = g ? tf.mul(inv, g) : inv;
    const y = tf.mul(tf.sub(tf.reshape(xin, view), tf.reshape(m, shape)), tf.reshape(scale, shape));
    return tf.reshape(b ? tf.add(y, tf.reshape(b, shape)) : y, x.shape);
  };
  if (!tf.engine().isTapeOn() || (trainable && !last)) return tf.tidy(() => forward(x, mean, variance, gamma, beta));
  const hasGamma = gamma != null;
  const hasBeta = beta != null;
  const inputs = trainable ? [x, mean, variance, ...(gamma ? [gamma] : []), ...(beta ? [beta] : [])] : [x];
  const f = tf.customGrad((...args: Array<tf.Tensor|tf.GradSaveFunc>) => {
    const save = args[args.length - 1] as tf.GradSaveFunc;
    const xin = args[0] as tf.Tensor;
    let k = 1;
    const m = trainable ? args[k++] as tf.Tensor : mean;
    const v = trainable ? args[k++] as tf.Tensor : variance;
    const g = trainable && hasGamma ? args[k++] as tf.Tensor : gamma;
    const b = trainable && hasBeta ? args[k++] as tf.Tensor : beta;
    // Saved: x, mean, variance, gamma (if any): the inputs themselves, so that
    // a second-order gradient reaches them through the backward's ops.
    save([xin, m, v, ...(g ? [g] : [])]);
    return {
      value: tf.tidy(() => forward(xin, m, v, g, b)),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.tidy(() => {
        const [xs, ms, vs] = saved;
        const gs = hasGamma ? saved[3] : null;
        const inv = tf.rsqrt(tf.add(vs, epsilon));
        const s = gs ? tf.mul(inv, gs) : inv;
        const dx = perChannel(dy, s);
        if (!trainable) return [dx];
        // Sums over the rows of the [M, C] view (last is true here).
        const ones = tf.ones([1, xs.size / C]);
        const rowSums = (t: tf.Tensor) => tf.reshape(tf.matMul(ones, tf.reshape(t, [-1, C])), [C]);
        const dbeta = rowSums(dy);
        const dgamma = tf.mul(rowSums(tf.mul(dy, tf.sub(xs, ms))), inv);
        const dmean = tf.neg(tf.mul(dbeta, s));
        const dvariance = tf.mul(tf.mul(tf.mul(dgamma, s), inv), -0.5);
        return [dx, tf.reshape(dmean, ms.shape), tf.reshape(dvariance, vs.shape),
          ...(gs ? [tf.reshape(dgamma, gs.shape)] : []), ...(hasBeta ? [dbeta] : [])];
      }),
    };
  });
  return f(...inputs);
}
