/**
 * The plumbing every layer of this package shares, as functions: the base
 * layer arguments (name, dtype, input shape) checked with named errors,
 * option keys checked against a class's `argKeys`, fromConfig with errors
 * in model.json's spelling, and the single-input / mask helpers.
 * {@link NormalizationLayer} (base.ts) is the class that uses them.
 */
import * as tf from '@tensorflow/tfjs';

import {argError, checkOptionKeys, show, toSnakeCase} from '../ops/validate';

export type LayerArgs = NonNullable<ConstructorParameters<typeof tf.layers.Layer>[0]>;
export type Kwargs = Parameters<tf.layers.Layer['call']>[1];
export type ConfigDict = tf.serialization.ConfigDict;

/** Float dtypes a saved layer may name; these layers compute in float32 (a documented cast). */
const FLOAT_DTYPES = new Set(['float32', 'float16', 'bfloat16', 'float64', 'mixed_float16', 'mixed_bfloat16']);

function checkShapeArg(who: string, arg: string, value: unknown): void {
  if (value == null) return;
  if (!Array.isArray(value) || value.some((d) => d !== null && !(Number.isInteger(d) && d >= 0))) {
    throw argError(who, arg, value, 'a list of non-negative integers or nulls');
  }
}

/**
 * Validates the base layer arguments (name, trainable, dtype, input shape)
 * with named errors, and normalizes the dtype: Keras 3 writes a DTypePolicy
 * object (`{className: 'DTypePolicy', config: {name: 'float32'}}` once tfjs
 * has camel-cased it), and float16/bfloat16/float64 or mixed policies are
 * computed in float32 here; integer, bool and string dtypes are errors.
 */
export function normalizeBaseArgs<T extends LayerArgs>(args: T|null|undefined, className: string): T {
  if (args == null) return defaultName({} as T, className);
  const named = typeof (args as {name?: unknown}).name === 'string' ? (args as {name: string}).name : '?';
  const who = layerWho(className, named);
  if (typeof args !== 'object' || Array.isArray(args)) {
    throw new Error(`${className}: the layer arguments must be an object; received ${show(args)}.`);
  }
  const a = args as Record<string, unknown>;
  // tfjs names weights '<layer name>/<weight>' and accepts only these characters.
  if (a.name != null && (typeof a.name !== 'string' || !/^[A-Za-z0-9][-A-Za-z0-9._/]*$/.test(a.name))) {
    throw argError(who, 'name', a.name, "a string of letters, digits, '-', '_', '.' and '/', starting with a letter or digit");
  }
  if (a.trainable != null && typeof a.trainable !== 'boolean') throw argError(who, 'trainable', a.trainable, 'true or false');
  checkShapeArg(who, 'batchInputShape', a.batchInputShape);
  checkShapeArg(who, 'inputShape', a.inputShape);
  if (a.batchSize != null && !(Number.isInteger(a.batchSize) && (a.batchSize as number) > 0)) {
    throw argError(who, 'batchSize', a.batchSize, 'a positive integer');
  }
  let dtype = a.dtype;
  if (dtype != null && typeof dtype === 'object') {
    dtype = (dtype as {config?: {name?: unknown}}).config?.name;
    if (typeof dtype !== 'string') {
      throw argError(who, 'dtype', a.dtype, 'a dtype string or a Keras DTypePolicy {className, config: {name}}');
    }
  }
  if (dtype != null && (typeof dtype !== 'string' || !FLOAT_DTYPES.has(dtype))) {
    throw argError(who, 'dtype', a.dtype, `a float dtype (${Array.from(FLOAT_DTYPES).join(', ')}); the layer computes in float32`);
  }
  return defaultName((dtype == null ? args : {...args, dtype: 'float32'}) as T, className);
}

const defaultNameCounts = new Map<string, number>();

/**
 * tfjs makes a default layer name from the class name, which for
 * `Addons>GroupNormalization` contains '>', not valid in a tensor name:
 * such classes get a default name of their own, of the same form as tfjs's
 * (`addons_group_normalization_AddonsGroupNormalization1`).
 */
function defaultName<T extends LayerArgs>(args: T, className: string): T {
  if (args.name != null || /^[A-Za-z0-9][-A-Za-z0-9._/]*$/.test(className)) return args;
  const clean = className.replace(/[^A-Za-z0-9]/g, '');
  const n = (defaultNameCounts.get(clean) ?? 0) + 1;
  defaultNameCounts.set(clean, n);
  const snake = clean.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toLowerCase();
  return {...args, name: `${snake}_${clean}${n}`};
}

/** The arguments every tfjs layer takes (tf.layers.Layer's), in a config as tfjs passes it to fromConfig. */
export const LAYER_BASE_KEYS = ['name', 'trainable', 'dtype', 'inputShape', 'batchInputShape', 'batchSize', 'inputDType', 'weights'];

/** A layer class's own argument keys (its static `argKeys`), without the base ones. */
function argKeysOf(cls: unknown): readonly string[]|null {
  return (cls as {argKeys?: readonly string[]}).argKeys ?? null;
}

/**
 * Checks a layer's arguments for keys it does not know (a misspelling, or an
 * option of another layer), naming them and the known ones; `spell` spells
 * keys as the caller wrote them (snake_case for a model.json config).
 */
export function checkLayerArgKeys(
    who: string, cls: unknown, args: unknown, spell?: (k: string) => string): void {
  const own = argKeysOf(cls);
  if (own == null || args == null) return;
  // tfjs adds customObjects to every config it passes to fromConfig.
  checkOptionKeys(who, spell ? 'config' : 'args', args, [...own, ...LAYER_BASE_KEYS], {spell, ignored: ['customObjects']});
}

/** `argument 'gammaInitializer'` -> `argument 'gamma_initializer'`: an error message in model.json's spelling. */
function inConfigSpelling(message: string): string {
  return message.replace(/argument '([A-Za-z][A-Za-z0-9]*)'/g, (_, k: string) => `argument '${toSnakeCase(k)}'`);
}

/**
 * fromConfig for this package's layers: the config must be an object with
 * only the keys the class knows, and any error the constructor raises names
 * the layer class and spells config keys as model.json does (snake_case).
 */
export function constructFromConfig<T extends tf.serialization.Serializable>(
    cls: tf.serialization.SerializableConstructor<T>, config: unknown, className: string): T {
  if (config == null || typeof config !== 'object' || Array.isArray(config)) {
    throw new Error(`${className}: the config must be an object; received ${show(config)}.`);
  }
  try {
    const name = (config as {name?: unknown}).name;
    checkLayerArgKeys(layerWho(className, typeof name === 'string' ? name : '?'), cls, config, toSnakeCase);
    return new cls(config as never);
  } catch (e) {
    const message = inConfigSpelling((e as Error).message ?? String(e));
    throw new Error(message.includes(className) ? message : `${className} (fromConfig): ${message}`);
  }
}

/**
 * A layer's base config with `dtype` always present: Keras writes it for
 * every layer, tfjs only when one was given.
 */
export function baseConfig(base: ConfigDict): ConfigDict {
  return base.dtype == null ? {...base, dtype: 'float32'} : base;
}

/** The name used in every error message of a layer. */
export function layerWho(className: string, name: string): string {
  return `${className} layer '${name}'`;
}

/** Returns the single shape a layer was built with, or throws. */
export function singleShape(who: string, inputShape: tf.Shape|tf.Shape[]): tf.Shape {
  if (Array.isArray(inputShape[0])) {
    const shapes = inputShape as tf.Shape[];
    if (shapes.length !== 1) {
      throw new Error(`${who}: expects exactly one input; received ${shapes.length} input shapes ${show(shapes)}.`);
    }
    return shapes[0];
  }
  return inputShape as tf.Shape;
}

/** The mask tfjs passes to call() (kwargs.mask), as one tensor or null. */
export function maskOf(kwargs: Kwargs): tf.Tensor|null {
  const mask = kwargs?.mask as tf.Tensor|tf.Tensor[]|null|undefined;
  if (mask == null) return null;
  return Array.isArray(mask) ? (mask[0] ?? null) : mask;
}

/**
 * For a layer that does not support masking (Keras drops the mask there):
 * removes `mask` from the kwargs it was called with. tfjs 4.22's executor
 * (`model.predict`, `fit`, `evaluate`) hands every layer after the first
 * masked one the same kwargs object, whose `mask` stays set after a layer
 * whose output has none, so without this the dropped mask would reach the
 * layers after it.
 */
export function dropMask(kwargs: Kwargs): void {
  if (kwargs != null && 'mask' in kwargs) delete kwargs.mask;
}

/** Returns the single tensor a layer was called with, or throws. */
export function singleTensor(who: string, inputs: tf.Tensor|tf.Tensor[]): tf.Tensor {
  if (Array.isArray(inputs)) {
    if (inputs.length !== 1) {
      throw new Error(`${who}: expects exactly one input tensor; received ${inputs.length}.`);
    }
    return inputs[0];
  }
  return inputs;
}
