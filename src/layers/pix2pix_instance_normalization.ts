import * as tf from '@tensorflow/tfjs';

import {normalizeMasked} from '../ops/core';
import {GroupLayout, groupNormView, resolveGroupLayout} from '../ops/group_norm';
import {checkEpsilon, checkFloatTensor} from '../ops/validate';
import {NormalizationLayer} from './base';
import {ConfigDict, LayerArgs, layerWho} from './common';

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
export class Pix2PixInstanceNormalization extends NormalizationLayer {
  /** The serialization class name, `InstanceNormalization` (pix2pix's). */
  static className = 'InstanceNormalization';
  /** The keys of its arguments besides tf.layers.Layer's. */
  static override readonly argKeys: readonly string[] = ['epsilon'];
  /** Added to the variance. */
  readonly epsilon: number;
  private scaleWeight: tf.LayerVariable|null = null;
  private offsetWeight: tf.LayerVariable|null = null;
  private layout: GroupLayout|null = null;

  constructor(args: Pix2PixInstanceNormalizationArgs = {}) {
    super(args);
    this.epsilon = checkEpsilon(this.who, args.epsilon ?? 1e-5);
  }

  /** `InstanceNormalization (pix2pix) layer 'name'`, the prefix of every error this layer raises. */
  override get who(): string {
    return layerWho(`${this.getClassName()} (pix2pix)`, this.name);
  }

  protected buildShape(shape: tf.Shape): void {
    if (shape.length !== 4) {
      throw new Error(`${this.who}: input must have rank 4 (batch, height, width, channels); received shape ` +
                      `${JSON.stringify(shape)}.`);
    }
    const C = shape[3];
    if (C == null) {
      throw new Error(`${this.who}: the channel dimension (axis 3) is undefined in input shape ${JSON.stringify(shape)}.`);
    }
    this.layout = resolveGroupLayout(this.who, shape.map((d) => d ?? 1), -1, 3);
    this.inputSpec = [new tf.InputSpec({ndim: 4, axes: {3: C}})];
    this.scaleWeight = this.addParam('scale', [C], tf.initializers.randomNormal({mean: 1, stddev: 0.02}));
    this.offsetWeight = this.addParam('offset', [C], tf.initializers.zeros());
  }

  protected forward(x: tf.Tensor, mask: tf.Tensor|null): tf.Tensor {
    checkFloatTensor(this.who, 'x', x);
    if (x.rank !== 4) {
      throw new Error(`${this.who}: input must have rank 4; received shape ${JSON.stringify(x.shape)}.`);
    }
    const plan = groupNormView(x.shape, this.layout ?? resolveGroupLayout(this.who, x.shape, -1, 3), this.epsilon);
    return normalizeMasked(this.who, x, plan, this.scaleWeight?.read(), this.offsetWeight?.read(), mask);
  }

  protected argsConfig(): ConfigDict {
    return {epsilon: this.epsilon};
  }
}
