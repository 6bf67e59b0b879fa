import * as tf from '@tensorflow/tfjs';

import {normalizeMasked} from '../ops/core';
import {groupNormPlan} from '../ops/group_norm';
import {checkEpsilon, checkFloatTensor} from '../ops/validate';
import {baseConfig, checkLayerArgKeys, ConfigDict, constructFromConfig, Kwargs, LayerArgs, layerWho, maskOf, normalizeBaseArgs, singleShape, singleTensor} from './common';

/** Arguments of {@link Pix2PixInstanceNormalization}. */
export interface Pix2PixInstanceNormalizationArgs extends LayerArgs {
  /** Added to the variance. Default 1e-5. */
  epsilon?: number;
}

/**
 * The `InstanceNormalization` of tensorflow/examples' pix2pix model
 * (tensorflow_examples/models/pix2pix), used by many converted
 * style-transfer and GAN models:
 *
 * - config holds only `epsilon` (1e-5);
 * - weights `scale` (initialized from N(1, 0.02)) and `offset` (zeros), in
 *   that order, shape [C], channels last;
 * - `y = scale * (x - mean) * rsqrt(var + epsilon) + offset`, statistics
 *   over the spatial axes 1 and 2 of a rank-4 NHWC input.
 *
 * Its className is 'InstanceNormalization'; `InstanceNormalization.fromConfig`
 * picks this class for configs whose only own key is `epsilon`.
 */
export class Pix2PixInstanceNormalization extends tf.layers.Layer {
  /** The serialization class name, `InstanceNormalization` (pix2pix's). */
  static className = 'InstanceNormalization';
  /** The keys of its arguments besides tf.layers.Layer's. */
  static readonly argKeys: readonly string[] = ['epsilon'];
  /** Added to the variance. */
  readonly epsilon: number;
  private scaleWeight: tf.LayerVariable|null = null;
  private offsetWeight: tf.LayerVariable|null = null;

  constructor(args: Pix2PixInstanceNormalizationArgs = {}) {
    super(normalizeBaseArgs(args, (new.target as unknown as {className: string}).className));
    checkLayerArgKeys(this.who, new.target, args);
    this.epsilon = checkEpsilon(this.who, args.epsilon ?? 1e-5);
    this.supportsMasking = true;
  }

  static override fromConfig<T extends tf.serialization.Serializable>(
      cls: tf.serialization.SerializableConstructor<T>, config: ConfigDict): T {
    return constructFromConfig(cls, config, (cls as unknown as {className: string}).className);
  }

  /** `InstanceNormalization layer 'name'`, the prefix of every error this layer raises. */
  get who(): string {
    return layerWho(`${this.getClassName()} (pix2pix)`, this.name);
  }

  override build(inputShape: tf.Shape|tf.Shape[]): void {
    const shape = singleShape(this.who, inputShape);
    if (shape.length !== 4) {
      throw new Error(`${this.who}: input must have rank 4 (batch, height, width, channels); received shape ` +
                      `${JSON.stringify(shape)}.`);
    }
    const C = shape[3];
    if (C == null) {
      throw new Error(`${this.who}: the channel dimension (axis 3) is undefined in input shape ${JSON.stringify(shape)}.`);
    }
    this.inputSpec = [new tf.InputSpec({ndim: 4, axes: {3: C}})];
    this.scaleWeight = this.addWeight(
        'scale', [C], 'float32', tf.initializers.randomNormal({mean: 1, stddev: 0.02}), undefined, true);
    this.offsetWeight = this.addWeight('offset', [C], 'float32', tf.initializers.zeros(), undefined, true);
    this.built = true;
  }

  override call(inputs: tf.Tensor|tf.Tensor[], kwargs: Kwargs): tf.Tensor {
    const x = singleTensor(this.who, inputs);
    checkFloatTensor(this.who, 'x', x);
    if (x.rank !== 4) {
      throw new Error(`${this.who}: input must have rank 4; received shape ${JSON.stringify(x.shape)}.`);
    }
    const plan = groupNormPlan(this.who, x.shape, -1, -1, this.epsilon);
    return normalizeMasked(this.who, x, plan, this.scaleWeight?.read(), this.offsetWeight?.read(), maskOf(kwargs));
  }

  override computeOutputShape(inputShape: tf.Shape|tf.Shape[]): tf.Shape {
    return singleShape(this.who, inputShape).slice();
  }

  override getConfig(): ConfigDict {
    return {...baseConfig(super.getConfig()), epsilon: this.epsilon};
  }
}
