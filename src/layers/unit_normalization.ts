import * as tf from '@tensorflow/tfjs';

import {unitNormImpl} from '../ops/unit_norm';
import {resolveAxes} from '../ops/validate';
import {baseConfig, checkLayerArgKeys, ConfigDict, constructFromConfig, Kwargs, LayerArgs, layerWho, normalizeBaseArgs, singleShape, singleTensor} from './common';
import {checkAxisArg} from './layer_normalization';

/** Arguments of {@link UnitNormalization} (Keras 3's). */
export interface UnitNormalizationArgs extends LayerArgs {
  /** Axis or axes whose L2 norm becomes 1. Default -1. */
  axis?: number|number[];
}

/**
 * Keras 3's `keras.layers.UnitNormalization`: each vector along `axis`
 * (-1; a number or a list) is divided by its L2 norm,
 * `y = x * rsqrt(max(sum(x²), 1e-12))`, i.e. `x / max(||x||₂, 1e-6)`
 * (`ops.unitNorm` with epsilon 1e-6). No weights; masks pass through.
 */
export class UnitNormalization extends tf.layers.Layer {
  /** The serialization class name, `UnitNormalization` (Keras 3's). */
  static className = 'UnitNormalization';
  /** The keys of its arguments besides tf.layers.Layer's. */
  static readonly argKeys: readonly string[] = ['axis'];
  /** Axis or axes as given. */
  readonly axis: number|number[];

  constructor(args: UnitNormalizationArgs = {}) {
    super(normalizeBaseArgs(args, (new.target as unknown as {className: string}).className));
    checkLayerArgKeys(this.who, new.target, args);
    this.axis = checkAxisArg(this.who, args.axis ?? -1);
    this.supportsMasking = true;
  }

  static override fromConfig<T extends tf.serialization.Serializable>(
      cls: tf.serialization.SerializableConstructor<T>, config: ConfigDict): T {
    return constructFromConfig(cls, config, (cls as unknown as {className: string}).className);
  }

  /** `UnitNormalization layer 'name'`, the prefix of every error this layer raises. */
  get who(): string {
    return layerWho(this.getClassName(), this.name);
  }

  override build(inputShape: tf.Shape|tf.Shape[]): void {
    const shape = singleShape(this.who, inputShape);
    resolveAxes(this.who, 'axis', this.axis, shape.length);
    this.built = true;
  }

  override call(inputs: tf.Tensor|tf.Tensor[], _kwargs: Kwargs): tf.Tensor {
    return unitNormImpl(singleTensor(this.who, inputs), {axis: this.axis, epsilon: 1e-6}, this.who);
  }

  override computeOutputShape(inputShape: tf.Shape|tf.Shape[]): tf.Shape {
    return singleShape(this.who, inputShape).slice();
  }

  override getConfig(): ConfigDict {
    return {...baseConfig(super.getConfig()), axis: Array.isArray(this.axis) ? this.axis.slice() : this.axis};
  }
}
