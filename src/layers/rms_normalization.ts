import * as tf from '@tensorflow/tfjs';

import {axesNormImpl} from '../ops/layer_norm';
import {OP_DEFAULTS} from '../ops/defaults';
import {checkEpsilon, checkFloatTensor} from '../ops/validate';
import {MaskingArgs, NormalizationLayer} from './base';
import {ConfigDict, LayerArgs} from './common';
import {checkAxisArg, paramShapeFor} from './layer_normalization';

/** Arguments of {@link RMSNormalization} (Keras 3's). */
export interface RMSNormalizationArgs extends LayerArgs, MaskingArgs {
  /** Axis or axes to normalize over. Default -1. */
  axis?: number|number[];
  /** Added to mean(x^2). Default 1e-6. */
  epsilon?: number;
}

/**
 * Root-mean-square normalization (Zhang & Sennrich, 2019), as Keras 3's
 * `keras.layers.RMSNormalization`: `y = x * rsqrt(mean(x^2) + epsilon) * scale`,
 * statistics over `axis` (-1), `epsilon` 1e-6, one trainable weight named
 * `scale` (initialized to ones) shaped like the normalized axes.
 * `masking` ('statistics'): what it does with tfjs's mask (see
 * {@link MaskingMode}; Keras 3's layer: 'drop').
 */
export class RMSNormalization extends NormalizationLayer {
  /** The serialization class name, `RMSNormalization` (Keras 3's). */
  static className = 'RMSNormalization';
  /** The keys of its arguments besides tf.layers.Layer's. */
  static override readonly argKeys: readonly string[] = ['axis', 'epsilon', 'masking'];
  /** Axis or axes as given. */
  readonly axis: number|number[];
  /** Added to mean(x^2). */
  readonly epsilon: number;
  private scaleWeight: tf.LayerVariable|null = null;

  constructor(args: RMSNormalizationArgs = {}) {
    super(args);
    this.axis = checkAxisArg(this.who, args.axis ?? OP_DEFAULTS.rmsNorm.axis);
    this.epsilon = checkEpsilon(this.who, args.epsilon ?? OP_DEFAULTS.rmsNorm.epsilon);
    this.parseMasking(args.masking, 'statistics');
  }

  protected buildShape(shape: tf.Shape): void {
    const paramShape = paramShapeFor(this.who, shape, this.axis);
    this.scaleWeight = this.addParam('scale', paramShape, tf.initializers.ones());
  }

  protected forward(x: tf.Tensor, mask: tf.Tensor|null): tf.Tensor {
    checkFloatTensor(this.who, 'x', x);
    // The scale goes in as held, in the axis list's order (see LayerNormalization.call).
    return axesNormImpl(x, this.axis, this.epsilon, 'rms', this.scaleWeight ? this.scaleWeight.read() : null, null,
                        this.who, mask, true);
  }

  protected argsConfig(): ConfigDict {
    return {axis: Array.isArray(this.axis) ? this.axis.slice() : this.axis, epsilon: this.epsilon, ...this.maskingConfig('statistics')};
  }
}
