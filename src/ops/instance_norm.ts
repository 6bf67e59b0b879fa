import * as tf from '@tensorflow/tfjs';

import {OP_DEFAULTS} from './defaults';
import {checkGroupNormOptions, groupNormImpl} from './group_norm';
import {checkFloatTensor, checkOptionKeys} from './validate';

/** Options of {@link instanceNorm}. */
export interface InstanceNormOptions {
  /** The channel axis (default -1). */
  axis?: number;
  /** Added to the variance (default 1e-3, as TensorFlow Addons). */
  epsilon?: number;
  /** Per-channel scale, shape [C]. */
  gamma?: tf.Tensor|null;
  /** Per-channel offset, shape [C]. */
  beta?: tf.Tensor|null;
  /** Optional mask (see GroupNormOptions.mask). */
  mask?: tf.Tensor|null;
}

/** Instance normalization: {@link groupNorm} with one group per channel. */
export function instanceNorm<R extends tf.Rank>(x: tf.Tensor<R>, opts: InstanceNormOptions = {}): tf.Tensor<R> {
  checkOptionKeys('instanceNorm', 'opts', opts, ['axis', 'epsilon', 'gamma', 'beta', 'mask'],
                  {hints: {groups: 'instanceNorm always has one group per channel: use groupNorm for groups.'}});
  checkFloatTensor('instanceNorm', 'x', x);
  const args = checkGroupNormOptions('instanceNorm', {...opts, groups: -1}, OP_DEFAULTS.instanceNorm);
  return groupNormImpl('instanceNorm', x, args, opts.gamma, opts.beta, opts.mask) as tf.Tensor<R>;
}
