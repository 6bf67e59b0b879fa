/**
 * TensorFlow Addons' normalization layers, as converted models name them:
 * `Addons>GroupNormalization` and `Addons>InstanceNormalization`. Their math
 * is this package's GroupNormalization (epsilon added to the variance);
 * TFA's InstanceNormalization is GroupNormalization with groups -1 and
 * carries `groups` in its config.
 *
 * `tf.serialization.registerClass(cls, 'Addons')` would not create these
 * names (the registry is keyed by className alone), so each class carries
 * the full string as its className.
 *
 * `masking` defaults to 'propagate': TFA's layers pass the mask on without
 * using it in their statistics (their `call` takes no mask).
 */
import {MaskingMode} from './base';
import {GroupNormalization, GroupNormalizationArgs} from './group_normalization';

/** TensorFlow Addons' `Addons>GroupNormalization`: this package's GroupNormalization under TFA's class name. */
export class AddonsGroupNormalization extends GroupNormalization {
  /** The serialization class name, `Addons>GroupNormalization`. */
  static override className = 'Addons>GroupNormalization';
  /** TFA's: the mask passed on, unused. */
  static override readonly defaultMasking: MaskingMode = 'propagate';
}

/** TensorFlow Addons' `Addons>InstanceNormalization`: GroupNormalization with one group per channel. */
export class AddonsInstanceNormalization extends GroupNormalization {
  /** The serialization class name, `Addons>InstanceNormalization`. */
  static override className = 'Addons>InstanceNormalization';
  /** TFA's: the mask passed on, unused. */
  static override readonly defaultMasking: MaskingMode = 'propagate';

  /** As TFA: `groups` is always -1, whatever the config says. */
  constructor(args: GroupNormalizationArgs = {}) {
    super({...args, groups: -1});
  }
}
