import * as tf from '@tensorflow/tfjs';

import {groupNormImpl} from '../ops/group_norm';
import {argError, checkIntegerAxis} from '../ops/validate';
import {AffineArgs, AffineNormalization, baseConfig, ConfigDict, Kwargs, maskOf, singleTensor} from './common';
import {ContribInstanceNormalization} from './contrib_instance_normalization';
import {Pix2PixInstanceNormalization} from './pix2pix_instance_normalization';
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

  override call(inputs: tf.Tensor|tf.Tensor[], kwargs: Kwargs): tf.Tensor {
    const x = singleTensor(this.who, inputs);
    return groupNormImpl(
        x, {groups: -1, axis: this.axis, epsilon: this.epsilon, gamma: this.readGamma(), beta: this.readBeta(),
          mask: maskOf(kwargs)},
        this.who);
  }

  /**
   * The config carries `groups: -1`: it is then exactly Keras's
   * GroupNormalization config (so Keras loads it with
   * `custom_objects={'InstanceNormalization': keras.layers.GroupNormalization}`),
   * and it tells this flavour apart from keras-contrib's when loading.
   */
  override getConfig(): ConfigDict {
    return {...baseConfig(super.getConfig()), groups: -1, axis: this.axis, ...this.affineConfig()};
  }

  /**
   * Deserializes any flavour of a layer saved as 'InstanceNormalization'.
   * The config's own keys (not name, trainable, dtype or input shape)
   * decide, see {@link instanceNormalizationFlavour}.
   */
  static override fromConfig<T extends tf.serialization.Serializable>(
      cls: tf.serialization.SerializableConstructor<T>, config: ConfigDict): T {
    const flavour = instanceNormalizationFlavour(config);
    const args = config as unknown as Record<string, unknown>;
    if (flavour === 'native') {
      const {groups: _groups, ...rest} = args;
      return new InstanceNormalization(rest) as unknown as T;
    }
    if (flavour === 'keras-contrib') return new ContribInstanceNormalization(args) as unknown as T;
    return new Pix2PixInstanceNormalization(args) as unknown as T;
  }
}

/** Keys every Keras/tfjs layer config may carry; they say nothing of the flavour. */
const BASE_KEYS = new Set([
  'name', 'trainable', 'dtype', 'batchInputShape', 'batchSize', 'inputShape', 'inputDType', 'weights', 'customObjects',
]);
const CONTRIB_KEYS = new Set([
  'axis', 'epsilon', 'center', 'scale', 'betaInitializer', 'gammaInitializer', 'betaRegularizer', 'gammaRegularizer',
  'betaConstraint', 'gammaConstraint',
]);

export type InstanceNormalizationFlavour = 'native'|'keras-contrib'|'pix2pix';

/**
 * Tells apart the layers saved under the className 'InstanceNormalization':
 *
 * - with a `groups` key (it must be -1): this package's InstanceNormalization
 *   (epsilon added to the variance);
 * - no own key but `epsilon`: tensorflow/examples' pix2pix (weights
 *   `scale`/`offset`);
 * - `axis` and only keras-contrib's keys: keras-contrib (epsilon added to
 *   the standard deviation; `axis: null` allowed).
 *
 * Anything else is an error that lists the keys it did not expect.
 */
export function instanceNormalizationFlavour(config: ConfigDict): InstanceNormalizationFlavour {
  const name = typeof config.name === 'string' ? config.name : '?';
  const who = `InstanceNormalization layer '${name}' (loading)`;
  const own = Object.keys(config).filter((k) => !BASE_KEYS.has(k));
  if (own.includes('groups')) {
    if (config.groups !== -1) {
      throw argError(who, 'groups', config.groups, '-1 in an InstanceNormalization config (use GroupNormalization for other group counts)');
    }
    return 'native';
  }
  if (own.every((k) => k === 'epsilon')) return 'pix2pix';
  const unknown = own.filter((k) => !CONTRIB_KEYS.has(k));
  if (own.includes('axis') && unknown.length === 0) return 'keras-contrib';
  throw new Error(
      `${who}: unrecognised config keys ${JSON.stringify(own)}` +
      (unknown.length ? ` (unexpected: ${JSON.stringify(unknown)})` : ' (no axis)') +
      '. Known flavours: this package\'s (groups: -1 with GroupNormalization\'s keys), keras-contrib (axis, epsilon, ' +
      'center, scale, initializers, regularizers, constraints) and pix2pix (epsilon only).');
}
