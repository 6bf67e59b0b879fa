/**
 * The layers saved under the className 'InstanceNormalization' and how a
 * config tells them apart: this package's InstanceNormalization, keras-contrib's
 * and tensorflow/examples pix2pix's. Only 'InstanceNormalization' is
 * registered; its fromConfig calls {@link loadInstanceNormalization}.
 */
import * as tf from '@tensorflow/tfjs';

import {argError, toSnakeCase} from '../ops/validate';
import {ConfigDict, constructFromConfig} from './common';
import {ContribInstanceNormalization} from './contrib_instance_normalization';
import {Pix2PixInstanceNormalization} from './pix2pix_instance_normalization';

/** Keys every Keras/tfjs layer config may carry; they say nothing of the flavour. */
const BASE_KEYS = new Set([
  'name', 'trainable', 'dtype', 'batchInputShape', 'batchSize', 'inputShape', 'inputDType', 'weights', 'customObjects',
]);
const CONTRIB_KEYS = new Set([
  'axis', 'epsilon', 'center', 'scale', 'betaInitializer', 'gammaInitializer', 'betaRegularizer', 'gammaRegularizer',
  'betaConstraint', 'gammaConstraint',
]);

/**
 * Which InstanceNormalization a config describes: this package's ('native'),
 * keras-contrib's, or tensorflow/examples pix2pix's.
 */
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
      `${who}: unrecognised config keys ${JSON.stringify(own.map(toSnakeCase))}` +
      (unknown.length ? ` (unexpected: ${JSON.stringify(unknown.map(toSnakeCase))})` : ' (no axis)') +
      '. Known flavours: this package\'s (groups: -1 with GroupNormalization\'s keys), keras-contrib (axis, epsilon, ' +
      'center, scale, initializers, regularizers, constraints) and pix2pix (epsilon only).');
}

/**
 * Builds the flavour a config describes; `native` is this package's
 * InstanceNormalization (passed in: it imports this file), which gets the
 * config without its `groups: -1`.
 */
export function loadInstanceNormalization(
    native: tf.serialization.SerializableConstructor<tf.layers.Layer>, config: ConfigDict): tf.layers.Layer {
  if (config == null || typeof config !== 'object' || Array.isArray(config)) {
    throw new Error(`InstanceNormalization: the config must be an object; received ${JSON.stringify(config)}.`);
  }
  const flavour = instanceNormalizationFlavour(config);
  const build = (cls: tf.serialization.SerializableConstructor<tf.layers.Layer>, args: unknown) =>
    constructFromConfig(cls, args, 'InstanceNormalization');
  if (flavour === 'native') {
    const {groups: _groups, ...rest} = config as Record<string, unknown>;
    return build(native, rest);
  }
  return build(flavour === 'keras-contrib' ? ContribInstanceNormalization : Pix2PixInstanceNormalization, config);
}
