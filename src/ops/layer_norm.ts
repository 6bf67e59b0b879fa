import * as tf from '@tensorflow/tfjs';

import {MODES} from '../kernels/contract';
import {NormMode, NormPlan, normalizeMasked} from './core';
import {OP_DEFAULTS} from './defaults';
import {argError, checkBoolean, checkEpsilon, checkFloatTensor, checkOptionKeys, checkParam, resolveAxes} from './validate';

/** Options of {@link layerNorm}. */
export interface LayerNormOptions {
  /** Axis or axes to normalize over (any subset, unsorted, negative allowed). Default -1. */
  axis?: number|number[];
  /** Added to the variance (default 1e-3, as Keras). */
  epsilon?: number;
  /** Scale, shaped like the normalized axes in sorted axis order. */
  gamma?: tf.Tensor|null;
  /** Offset, shaped like gamma. Not allowed with rmsScaling. */
  beta?: tf.Tensor|null;
  /**
   * Keras's legacy `rms_scaling`: `y = x * rsqrt(var + epsilon) * gamma`
   * (centered variance, no mean subtraction, no beta). Default false.
   */
  rmsScaling?: boolean;
  /**
   * Optional mask, shaped like a prefix of x's shape (e.g. [batch, time]) or
   * like x; nonzero = valid. Masked positions are left out of the
   * statistics and normalized with those of the valid positions.
   */
  mask?: tf.Tensor|null;
}

/** Options of {@link rmsNorm}. */
export interface RmsNormOptions {
  /** Axis or axes to normalize over. Default -1. */
  axis?: number|number[];
  /** Added to mean(x^2) (default 1e-6, as Keras's RMSNormalization). */
  epsilon?: number;
  /** Scale, shaped like the normalized axes in sorted axis order. */
  gamma?: tf.Tensor|null;
  /** Optional mask (see LayerNormOptions.mask). */
  mask?: tf.Tensor|null;
}

/**
 * The plan for statistics over `axes` (sorted, non-negative): consecutive
 * axes with the same role are merged, so the view has the smallest rank.
 */
export function axesPlan(
    shape: readonly number[], axes: readonly number[], epsilon: number,
    mode: NormMode): NormPlan&{paramShape: number[]} {
  const viewShape: number[] = [];
  const member: boolean[] = [];
  shape.forEach((d, i) => {
    const inAxes = axes.includes(i);
    if (member.length > 0 && member[member.length - 1] === inAxes) {
      viewShape[viewShape.length - 1] *= d;
    } else {
      viewShape.push(d);
      member.push(inAxes);
    }
  });
  const reduceAxes = member.flatMap((m, i) => (m ? [i] : []));
  const paramViewShape = viewShape.map((d, i) => (member[i] ? d : 1));
  return {viewShape, reduceAxes, paramViewShape, epsilon, mode, paramShape: axes.map((a) => shape[a])};
}

/**
 * Shared body of layerNorm / rmsNorm and the layers once x (a float32
 * tensor), epsilon and the mode's beta are checked: the axes resolved
 * against x's rank, gamma/beta checked against their shape, then the
 * planned normalization. `who` names the caller in errors.
 */
export function axesNormImpl(
    x: tf.Tensor, axis: number|number[], epsilon: number, mode: NormMode, gamma: tf.Tensor|null|undefined,
    beta: tf.Tensor|null|undefined, who: string, mask?: tf.Tensor|null, paramsInListOrder = false): tf.Tensor {
  if (x.rank < 1) {
    throw new Error(`${who}: input must have rank >= 1; received a scalar.`);
  }
  const axes = resolveAxes(who, 'axis', axis, x.rank);
  const plan = axesPlan(x.shape, axes, epsilon, mode);
  // The layers hold gamma/beta in the axis list's order (Keras's and tfjs's
  // convention); the normalization reshapes (never transposes) them onto the
  // axes in increasing order, so either shape holds the same values.
  const listed = (Array.isArray(axis) ? axis : [axis]).map((a) => (a < 0 ? a + x.rank : a));
  const paramShape = paramsInListOrder ? listed.map((a) => x.shape[a]) : plan.paramShape;
  checkParam(who, 'gamma', gamma, paramShape);
  checkParam(who, 'beta', beta, paramShape);
  return normalizeMasked(who, x, plan, gamma, beta, mask);
}

/**
 * Layer normalization over any axis or axes:
 * `y = (x - mean) / sqrt(var + epsilon) * gamma + beta`, statistics over
 * `axis`. gamma and beta are shaped like those axes, in sorted axis order.
 */
export function layerNorm<R extends tf.Rank>(x: tf.Tensor<R>, opts: LayerNormOptions = {}): tf.Tensor<R> {
  const who = 'layerNorm';
  const defaults = OP_DEFAULTS.layerNorm;
  checkOptionKeys(who, 'opts', opts, ['axis', 'epsilon', 'gamma', 'beta', 'rmsScaling', 'mask']);
  const mode: NormMode = checkBoolean(who, 'rmsScaling', opts.rmsScaling ?? defaults.rmsScaling) ? 'rmsScaling' : 'center';
  checkFloatTensor(who, 'x', x);
  const epsilon = checkEpsilon(who, opts.epsilon ?? defaults.epsilon);
  if (opts.beta != null && !MODES[mode].hasBeta) {
    throw argError(who, 'beta', 'a tensor', `omitted in ${mode} mode (it has no offset)`);
  }
  return axesNormImpl(x, opts.axis ?? defaults.axis, epsilon, mode, opts.gamma, opts.beta, who, opts.mask) as tf.Tensor<R>;
}

/** RMS normalization: `y = x * rsqrt(mean(x^2 over axis) + epsilon) * gamma`. */
export function rmsNorm<R extends tf.Rank>(x: tf.Tensor<R>, opts: RmsNormOptions = {}): tf.Tensor<R> {
  checkOptionKeys('rmsNorm', 'opts', opts, ['axis', 'epsilon', 'gamma', 'mask'],
                  {hints: {beta: 'RMS normalization has no offset (beta).', rmsScaling: 'Use layerNorm for rmsScaling.'}});
  checkFloatTensor('rmsNorm', 'x', x);
  const epsilon = checkEpsilon('rmsNorm', opts.epsilon ?? OP_DEFAULTS.rmsNorm.epsilon);
  return axesNormImpl(x, opts.axis ?? OP_DEFAULTS.rmsNorm.axis, epsilon, 'rms', opts.gamma, null, 'rmsNorm', opts.mask) as
      tf.Tensor<R>;
}
