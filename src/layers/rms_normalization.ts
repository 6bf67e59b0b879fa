import * as tf from '@tensorflow/tfjs';

import {axesNormImpl} from '../ops/layer_norm';
import {checkEpsilon} from '../ops/validate';
import {baseConfig, checkLayerArgKeys, ConfigDict, constructFromConfig, Kwargs, LayerArgs, layerWho, maskOf, normalizeBaseArgs, singleTensor} from './common';
import {checkAxisArg, paramShapeFor} from './layer_normalization';

/** Arguments of {@link RMSNormalization} (Keras 3's). */
export interface RMSNormalizationArgs extends LayerArgs {
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
 */
export class RMSNormalization extends tf.layers.Layer {
  /** The serialization class name, `RMSNormalization` (Keras 3's). */
  static className = 'RMSNormalization';
  /** The keys of its arguments besides tf.layers.Layer's. */
  static readonly argKeys: readonly string[] = ['axis', 'epsilon'];
  /** Axis or axes as given. */
  readonly axis: number|number[];
  /** Added to mean(x^2). */
  readonly epsilon: number;
  private scaleWeight: tf.LayerVariable|null = null;

  constructor(args: RMSNormalizationArgs = {}) {
    super(normalizeBaseArgs(args, (new.target as unknown as {className: string}).className));
    checkLayerArgKeys(this.who, new.target, args);
    this.axis = checkAxisArg(this.who, args.axis ?? -1);
    this.epsilon = checkEpsilon(this.who, args.epsilon ?? 1e-6);
    this.supportsMasking = true;
  }

  static override fromConfig<T extends tf.serialization.Serializable>(
      cls: tf.serialization.SerializableConstructor<T>, config: ConfigDict): T {
    return constructFromConfig(cls, config, (cls as unknown as {className: string}).className);
  }

  /** `RMSNormalization layer 'name'`, the prefix of every error this layer raises. */
  get who(): string {
    return layerWho(this.getClassName(), this.name);
  }

  override build(inputShape: tf.Shape|tf.Shape[]): void {
    const paramShape = paramShapeFor(this.who, inputShape, this.axis);
    this.scaleWeight = this.addWeight('scale', paramShape, 'float32', tf.initializers.ones(), undefined, true);
    this.built = true;
  }

  override call(inputs: tf.Tensor|tf.Tensor[], kwargs: Kwargs): tf.Tensor {
    const x = singleTensor(this.who, inputs);
    // The scale goes in as held, in the axis list's order (see LayerNormalization.call).
    return axesNormImpl(x, this.axis, this.epsilon, 'rms', this.scaleWeight ? this.scaleWeight.read() : null, null,
                        this.who, maskOf(kwargs), true);
  }

  override computeOutputShape(inputShape: tf.Shape|tf.Shape[]): tf.Shape {
    return (Array.isArray(inputShape[0]) ? (inputShape as tf.Shape[])[0] : inputShape as tf.Shape).slice();
  }

  override getConfig(): ConfigDict {
    return {...baseConfig(super.getConfig()), axis: Array.isArray(this.axis) ? this.axis.slice() : this.axis, epsilon: this.epsilon};
  }
}
