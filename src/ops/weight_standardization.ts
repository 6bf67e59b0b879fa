import * as tf from '@tensorflow/tfjs';

import {untaped} from './core';
import {argError, checkEpsilon, checkFloatTensor, checkIntegerAxis, checkOptionKeys, resolveAxis, show} from './validate';

/** Options of {@link weightStandardization}. */
export interface WeightStandardizationOptions {
  /**
   * The output-channel axis of the kernel (default -1: tfjs's conv kernels
   * are [..., inChannels, outChannels]). Each slice along it is
   * standardized on its own, over every other axis.
   */
  axis?: number;
  /** Added to the variance (default 1e-5). */
  epsilon?: number;
}

/** The keys of WeightStandardizationOptions. */
export const WEIGHT_STANDARDIZATION_KEYS = ['axis', 'epsilon'] as const;

/** The default epsilon of weight standardization. */
export const WS_EPSILON = 1e-5;

/**
 * Weight Standardization (Qiao et al., 2019, "Micro-Batch Training with
 * Batch-Channel Normalization and Weight Standardization"): a conv kernel
 * standardized per output channel,
 * `W' = (W - mean(W)) / sqrt(var(W) + epsilon)`, mean and (biased)
 * variance over every axis of the kernel but `axis` (the output channel).
 *
 * Built from differentiable tf ops, so gradients (of any order) flow
 * through the standardization to the raw kernel on every backend.
 * The kernel needs at least two elements per output channel (one element
 * standardizes to 0 whatever it is).
 */
export function weightStandardization<R extends tf.Rank>(kernel: tf.Tensor<R>, opts: WeightStandardizationOptions = {}): tf.Tensor<R> {
  const who = 'weightStandardization';
  checkOptionKeys(who, 'opts', opts, WEIGHT_STANDARDIZATION_KEYS);
  checkFloatTensor(who, 'kernel', kernel);
  const epsilon = checkEpsilon(who, opts.epsilon ?? WS_EPSILON);
  const axisArg = checkIntegerAxis(who, 'axis', opts.axis ?? -1);
  if (kernel.rank < 2) {
    throw argError(who, 'kernel', `a tensor of shape ${show(kernel.shape)}`,
                   'a kernel of rank >= 2 (e.g. [kernelSize, inChannels, outChannels])');
  }
  const axis = resolveAxis(who, 'axis', axisArg, kernel.rank);
  const reduce = kernel.shape.map((_, i) => i).filter((i) => i !== axis);
  const fanIn = reduce.reduce((s, i) => s * kernel.shape[i], 1);
  if (fanIn < 2) {
    throw new Error(
        `${who}: argument 'kernel' must have at least 2 elements per output channel (axis ${axisArg}) to be ` +
        `standardized; received shape ${show(kernel.shape)} (${fanIn} per channel).`);
  }
  return tf.tidy(() => {
    // In units of s = max(max|W|, sqrt(epsilon)) per output channel (1 where both are 0), so that no
    // square overflows (|W| > 1.8e19) or underflows float32: W' = (W/s - mean(W/s)) * rsqrt(var(W/s) +
    // epsilon / s²), the same value for any s; s is a constant to the tape (its gradient would cancel).
    const s = untaped(kernel, (v) => {
      const m = tf.maximum(tf.max(tf.abs(v), reduce, true), Math.sqrt(epsilon));
      return tf.where(tf.greater(m, 0), m, tf.onesLike(m));
    });
    const scaled = tf.div(kernel, s);
    const centered = tf.sub(scaled, tf.mean(scaled, reduce, true));
    const variance = tf.mean(tf.square(centered), reduce, true);
    return tf.mul(centered, tf.rsqrt(tf.add(variance, tf.div(tf.div(epsilon, s), s)))) as tf.Tensor<R>;
  });
}
