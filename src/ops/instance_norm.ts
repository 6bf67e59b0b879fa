import * as tf from '@tensorflow/tfjs';

import {OP_DEFAULTS} from './defaults';
import {checkGroupNormOptions, GROUP_NORM_KEYS, GroupNormOptions, groupNormImpl} from './group_norm';
import {checkFloatTensor, checkOptionKeys} from './validate';

/**
 * Options of {@link instanceNorm}: those of {@link GroupNormOptions} but
 * `groups` (instance normalization is group normalization with one group
 * per channel); epsilon defaults to 1e-3, as TensorFlow Addons.
 */
export type InstanceNormOptions = Omit<GroupNormOptions, 'groups'>;

/** The keys of InstanceNormOptions. */
const INSTANCE_NORM_KEYS = GROUP_NORM_KEYS.filter((k) => k !== 'groups');

/** Instance normalization: {@link groupNorm} with one group per channel. */
export function instanceNorm<R extends tf.Rank>(x: tf.Tensor<R>, opts: InstanceNormOptions = {}): tf.Tensor<R> {
  checkOptionKeys('instanceNorm', 'opts', opts, INSTANCE_NORM_KEYS,
                  {hints: {groups: 'instanceNorm always has one group per channel: use groupNorm for groups.'}});
  checkFloatTensor('instanceNorm', 'x', x);
  const args = checkGroupNormOptions('instanceNorm', {...opts, groups: -1}, OP_DEFAULTS.instanceNorm);
  return groupNormImpl('instanceNorm', x, args, opts.gamma, opts.beta, opts.mask) as tf.Tensor<R>;
}
