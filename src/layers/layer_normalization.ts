import * as tf from '@tensorflow/tfjs';

import {NormMode} from '../ops/core';
import {axesNormImpl} from '../ops/layer_norm';
import {OP_DEFAULTS} from '../ops/defaults';
import {argError, checkBoolean, checkFloatTensor, checkIntegerAxis, resolveAxes} from '../ops/validate';
import {AFFINE_KEYS, AffineArgs, AffineNormalization, MaskingArgs} from './base';
import {ConfigDict, singleShape} from './common';

/** Arguments of {@link LayerNormalization} (Keras's, plus `rms`). */
export interface LayerNormalizationArgs extends AffineArgs, MaskingArgs {
  /** Axis or axes to normalize over (unsorted, negative, any subset). Default -1. */
  axis?: number|number[];
  /**
   * Keras's legacy `rms_scaling`: `y = x * rsqrt(var + epsilon) * gamma`
   * (centered variance, no mean subtraction); gamma is always created,
   * beta never; `center` and `scale` are ignored. Default false.
   */
  rmsScaling?: boolean;
  /**
   * True RMS normalization: `y = x * rsqrt(mean(x^2) + epsilon) * gamma`
   * (no centering, no beta; gamma if `scale`). Default false.
   */
  rms?: boolean;
}

/** Validates an `axis` argument that may be a number or a list of numbers. */
export function checkAxisArg(who: string, axis: unknown): number|number[] {
  if (Array.isArray(axis)) {
    if (axis.length === 0) throw argError(who, 'axis', axis, 'an integer or a non-empty list of integers');
    return axis.map((a) => checkIntegerAxis(who, 'axis', a));
  }
  if (typeof axis !== 'number' || !Number.isInteger(axis)) {
    throw argError(who, 'axis', axis, 'an integer or a non-empty list of integers');
  }
  return axis;
}

/**
 * Resolves a layer's axes against its input shape and returns gamma's shape:
 * the sizes of the axes in the order the axis list gives them (negative axes
 * resolved, not sorted), as tfjs's built-in layerNormalization, tf.keras and
 * Keras 3 (whose config holds its sorted-as-written list, e.g. [-1, 1]) do.
 * The weight is reshaped, not transposed, onto the normalized axes in
 * increasing order (inside the op: `axesNormImpl` with `paramsInListOrder`), as all three do. Each axis must
 * be defined when the layer has weights of that shape.
 */
export function paramShapeFor(
    who: string, inputShape: tf.Shape|tf.Shape[], axis: number|number[], needsWeights = true): number[] {
  const shape = singleShape(who, inputShape);
  resolveAxes(who, 'axis', axis, shape.length);  // validates: in range, distinct
  const axes = (Array.isArray(axis) ? axis : [axis]).map((a) => (a < 0 ? a + shape.length : a));
  return axes.map((a) => {
    const d = shape[a];
    if (d == null && !needsWeights) return -1;
    if (d == null) {
      throw new Error(
          `${who}: axis ${a} is undefined in input shape ${JSON.stringify(shape)}; every normalized axis ` +
          'must have a known size when the layer is built.');
    }
    return d;
  });
}

/**
 * Layer normalization (Ba et al., 2016) over any axes, a superset of
 * Keras 3's `keras.layers.LayerNormalization` and of tfjs's built-in:
 *
 * - `axis` (-1): an axis or a list of axes (unsorted, negative allowed).
 * - `epsilon` (1e-3): added to the variance.
 * - `center` (true) / `scale` (true): learn `beta` / `gamma`, shaped like
 *   the normalized axes in the axis list's order (tfjs's and Keras's
 *   convention), reshaped onto the axes in increasing order.
 * - `rmsScaling` (false): Keras's legacy RMS scaling (see the arg).
 * - `rms` (false): RMS normalization (see the arg).
 * - initializers ('zeros' / 'ones'), regularizers and constraints for beta
 *   and gamma.
 * - `masking` ('statistics'): what it does with tfjs's mask (see
 *   {@link MaskingMode}; Keras 3's layer and tfjs's built-in: 'propagate').
 *
 * Its className is 'LayerNormalization', so it replaces the built-in in
 * the serialization registry: models saved with `tf.layers.layerNormalization`
 * load into this class and compute the same outputs.
 */
export class LayerNormalization extends AffineNormalization {
  /** The serialization class name, `LayerNormalization` (the built-in's, which this class replaces). */
  static className = 'LayerNormalization';
  /** The keys of its arguments besides tf.layers.Layer's. */
  static override readonly argKeys: readonly string[] = ['axis', ...AFFINE_KEYS, 'rmsScaling', 'rms', 'masking'];
  /** Axis or axes as given. */
  readonly axis: number|number[];
  /** Keras's legacy `rms_scaling` mode. */
  readonly rmsScaling: boolean;
  /** True RMS normalization (this package's extension). */
  readonly rms: boolean;

  constructor(args: LayerNormalizationArgs = {}) {
    super(args, OP_DEFAULTS.layerNorm.epsilon);
    this.axis = checkAxisArg(this.who, args.axis ?? OP_DEFAULTS.layerNorm.axis);
    this.rmsScaling = checkBoolean(this.who, 'rmsScaling', args.rmsScaling ?? false);
    this.rms = checkBoolean(this.who, 'rms', args.rms ?? false);
    this.parseMasking(args.masking, 'statistics');
    if (this.rms && this.rmsScaling) {
      throw argError(this.who, 'rms', true, 'false when rmsScaling is true (choose one RMS mode)');
    }
  }

  /** @internal The normalization mode the ops compute. */
  get mode(): NormMode {
    return this.rmsScaling ? 'rmsScaling' : this.rms ? 'rms' : 'center';
  }

  protected buildShape(shape: tf.Shape): void {
    const withGamma = this.rmsScaling || this.scale;
    const withBeta = this.center && !this.rms && !this.rmsScaling;
    // Without weights, the normalized axes may have any size (a variable-length time axis).
    const paramShape = paramShapeFor(this.who, shape, this.axis, withGamma || withBeta);
    if (this.rmsScaling) {
      this.buildAffine(paramShape, true, false);
    } else {
      this.buildAffine(paramShape, this.scale, this.center && !this.rms);
    }
  }

  protected forward(x: tf.Tensor, mask: tf.Tensor|null): tf.Tensor {
    checkFloatTensor(this.who, 'x', x);
    // gamma/beta go in as held, in the axis list's order: the op reshapes
    // them onto the axes inside its gradient (a reshaped view made here and
    // disposed after the call gave wrong gradients on webgl).
    return axesNormImpl(x, this.axis, this.epsilon, this.mode, this.readGamma(), this.readBeta(), this.who,
                        mask, true);
  }

  protected argsConfig(): ConfigDict {
    const axis = Array.isArray(this.axis) ? this.axis.slice() : this.axis;
    const {epsilon, center, scale, ...rest} = this.affineConfig();
    // `rms` is this package's extension: written only when set, so that the
    // config of every other layer has exactly Keras's keys.
    return {
      axis, epsilon, center, scale, rmsScaling: this.rmsScaling,
      ...(this.rms ? {rms: true} : {}), ...rest, ...this.maskingConfig('statistics'),
    };
  }
}
