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
