import * as tf from '@tensorflow/tfjs';

import {groupNormImpl} from '../ops/group_norm';
import {checkIntegerAxis} from '../ops/validate';
import {AffineArgs, AffineNormalization, ConfigDict, Kwargs, singleTensor} from './common';
import {buildChannelSpec} from './group_normalization';

export interface InstanceNormalizationArgs extends AffineArgs {
  /** The channel axis. Default -1. */
  axis?: number;
}

/**
 * Instance normalization (Ulyanov et al., 2016): each channel of each
 * sample is normalized over every non-batch, non-channel axis. Defaults as
 * TensorFlow Addons' `InstanceNormalization`:
 *
 * - `axis` (-1): the channel axis.
 * - `epsilon` (1e-3): added to the variance.
 * - `center` (true) / `scale` (true): learn a per-channel `beta` / `gamma`.
 * - `betaInitializer` ('zeros'), `gammaInitializer` ('ones'), and optional
 *   regularizers and constraints for both.
 *
 * The same as GroupNormalization with `groups: -1`.
 */
export class InstanceNormalization extends AffineNormalization {
  static className = 'InstanceNormalization';
  readonly axis: number;

  constructor(args: InstanceNormalizationArgs = {}) {
    super(args, 1e-3);
    this.axis = checkIntegerAxis(this.who, 'axis', args.axis ?? -1);
  }

  override build(inputShape: tf.Shape|tf.Shape[]): void {
    this.buildAffine([buildChannelSpec(this, this.who, inputShape, -1, this.axis)]);
    this.built = true;
  }

  override call(inputs: tf.Tensor|tf.Tensor[], _kwargs: Kwargs): tf.Tensor {
    const x = singleTensor(this.who, inputs);
    return groupNormImpl(
        x, {groups: -1, axis: this.axis, epsilon: this.epsilon, gamma: this.readGamma(), beta: this.readBeta()},
        this.who);
  }

  override getConfig(): ConfigDict {
    return {...super.getConfig(), axis: this.axis, ...this.affineConfig()};
  }
}
