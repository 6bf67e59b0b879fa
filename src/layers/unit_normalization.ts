import * as tf from '@tensorflow/tfjs';

import {UNIT_NORM_EPSILON, unitNormImpl} from '../ops/unit_norm';
import {resolveAxes} from '../ops/validate';
import {NormalizationLayer} from './base';
import {ConfigDict, LayerArgs} from './common';
import {checkAxisArg} from './layer_normalization';

/** Arguments of {@link UnitNormalization} (Keras 3's). */
export interface UnitNormalizationArgs extends LayerArgs {
  /** Axis or axes whose L2 norm becomes 1. Default -1. */
  axis?: number|number[];
}

/**
 * Keras 3's `keras.layers.UnitNormalization`: each vector along `axis`
 * (-1; a number or a list) is divided by its L2 norm,
 * `y = x * min(rsqrt(sum(x²)), 1e12)` (Keras 3.15's `ops.normalize(x, axis,
 * order=2, epsilon=1e-12)`), i.e. `x / max(||x||₂, 1e-12)` (`ops.unitNorm`
 * with its default epsilon). No weights; masks pass through.
 */
export class UnitNormalization extends NormalizationLayer {
  /** The serialization class name, `UnitNormalization` (Keras 3's). */
  static className = 'UnitNormalization';
  /** The keys of its arguments besides tf.layers.Layer's. */
  static override readonly argKeys: readonly string[] = ['axis'];
  /** Axis or axes as given. */
  readonly axis: number|number[];

  constructor(args: UnitNormalizationArgs = {}) {
    super(args);
    this.axis = checkAxisArg(this.who, args.axis ?? -1);
  }

  protected buildShape(shape: tf.Shape): void {
    resolveAxes(this.who, 'axis', this.axis, shape.length);
  }

  protected forward(x: tf.Tensor): tf.Tensor {
    return unitNormImpl(x, {axis: this.axis, epsilon: UNIT_NORM_EPSILON}, this.who);
  }

  protected argsConfig(): ConfigDict {
    return {axis: Array.isArray(this.axis) ? this.axis.slice() : this.axis};
  }
}
