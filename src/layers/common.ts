/**
 * What the normalization layers share: resolving and serializing
 * initializers, regularizers and constraints the way tfjs-layers does (by
 * identifier string, by `{className, config}` dict or by instance), and the
 * base class that owns epsilon, center/scale and the gamma/beta weights.
 */
import * as tf from '@tensorflow/tfjs';

import {argError, checkBoolean, checkEpsilon, checkOptionKeys, show, toSnakeCase} from '../ops/validate';

/** A tfjs initializer instance (what `tf.initializers.*` returns). */
export type Initializer = ReturnType<typeof tf.initializers.ones>;
/** A tfjs regularizer instance (what `tf.regularizers.*` returns). */
export type Regularizer = ReturnType<typeof tf.regularizers.l1l2>;
/** A tfjs constraint instance (what `tf.constraints.*` returns). */
export type Constraint = ReturnType<typeof tf.constraints.nonNeg>;
export type LayerArgs = NonNullable<ConstructorParameters<typeof tf.layers.Layer>[0]>;
export type Kwargs = Parameters<tf.layers.Layer['call']>[1];
export type ConfigDict = tf.serialization.ConfigDict;

/** A serialized Keras object: `{className, config}`. */
export interface SerializedObject {
  /** The class name, e.g. 'RandomNormal' or 'L1L2'. */
  className: string;
  /** The object's config, e.g. `{mean: 0, stddev: 0.05}`. */
  config: ConfigDict;
}

/**
 * An initializer as the layers accept it: a tfjs or Keras identifier string
 * ('ones', 'glorot_uniform', ...), an instance, or a serialized
 * `{className, config}`.
 */
export type InitializerIdentifier = string|Initializer|SerializedObject;
/** A regularizer: an identifier string ('l1l2', ...), an instance, or a serialized `{className, config}`. */
export type RegularizerIdentifier = string|Regularizer|SerializedObject;
/** A constraint: an identifier string ('nonNeg', 'max_norm', ...), an instance, or a serialized `{className, config}`. */
export type ConstraintIdentifier = string|Constraint|SerializedObject;

/** tfjs identifier strings, and Keras's snake_case spellings, to class names. */
const CLASS_ALIASES: Record<string, string> = {
  // initializers
  zeros: 'Zeros', ones: 'Ones', constant: 'Constant', identity: 'Identity',
  glorotNormal: 'GlorotNormal', glorot_normal: 'GlorotNormal',
  glorotUniform: 'GlorotUniform', glorot_uniform: 'GlorotUniform',
  heNormal: 'HeNormal', he_normal: 'HeNormal', heUniform: 'HeUniform', he_uniform: 'HeUniform',
  leCunNormal: 'LeCunNormal', lecun_normal: 'LeCunNormal',
  leCunUniform: 'LeCunUniform', lecun_uniform: 'LeCunUniform',
  orthogonal: 'Orthogonal', randomNormal: 'RandomNormal', random_normal: 'RandomNormal',
  randomUniform: 'RandomUniform', random_uniform: 'RandomUniform',
  truncatedNormal: 'TruncatedNormal', truncated_normal: 'TruncatedNormal',
  varianceScaling: 'VarianceScaling', variance_scaling: 'VarianceScaling',
  // regularizers
  l1l2: 'L1L2', l1_l2: 'L1L2',
  // constraints
  maxNorm: 'MaxNorm', max_norm: 'MaxNorm', minMaxNorm: 'MinMaxNorm', min_max_norm: 'MinMaxNorm',
  nonNeg: 'NonNeg', non_neg: 'NonNeg', unitNorm: 'UnitNorm', unit_norm: 'UnitNorm',
};

/**
 * Initializers that tfjs builds with a helper class (they serialize as
 * VarianceScaling, so the registry has no entry under these names).
 */
const INITIALIZER_FACTORIES: Record<string, () => Initializer> = {
  GlorotNormal: () => tf.initializers.glorotNormal({}),
  GlorotUniform: () => tf.initializers.glorotUniform({}),
  HeNormal: () => tf.initializers.heNormal({}),
  HeUniform: () => tf.initializers.heUniform({}),
  LeCunNormal: () => tf.initializers.leCunNormal({}),
  LeCunUniform: () => tf.initializers.leCunUniform({}),
};

/** Keras regularizers that tfjs has only as L1L2. */
const REGULARIZER_FACTORIES: Record<string, (c: ConfigDict) => Regularizer> = {
  L1: (c) => tf.regularizers.l1({l1: typeof c.l1 === 'number' ? c.l1 : 0.01}),
  L2: (c) => tf.regularizers.l2({l2: typeof c.l2 === 'number' ? c.l2 : 0.01}),
  l1: () => tf.regularizers.l1(),
  l2: () => tf.regularizers.l2(),
};

function isSerializedObject(v: unknown): v is SerializedObject {
  return typeof v === 'object' && v !== null && typeof (v as SerializedObject).className === 'string';
}

/**
 * Resolves an identifier through tf.serialization's registry, the way
 * tfjs-layers' getInitializer / getRegularizer / getConstraint do.
 */
function resolve<T extends tf.serialization.Serializable>(
    who: string, arg: string, kind: 'initializer'|'regularizer'|'constraint',
    base: abstract new (...args: never[]) => T, identifier: unknown,
    factories: Record<string, (c: ConfigDict) => T>): T {
  if (identifier instanceof base) return identifier;
  let className: string;
  let config: ConfigDict;
  if (typeof identifier === 'string') {
    className = CLASS_ALIASES[identifier] ?? identifier;
    config = {};
  } else if (isSerializedObject(identifier)) {
    className = CLASS_ALIASES[identifier.className] ?? identifier.className;
    const c = (identifier as {config?: unknown}).config;
    if (c != null && (typeof c !== 'object' || Array.isArray(c))) {
      throw argError(who, arg, identifier, `a ${kind} whose 'config' is an object`);
    }
    config = (c ?? {}) as ConfigDict;
  } else {
    throw argError(
        who, arg, identifier,
        `${kind === 'initializer' ? 'an' : 'a'} ${kind}: an identifier string (e.g. '${kind === 'initializer' ? 'ones' : kind === 'regularizer' ? 'l1l2' : 'nonNeg'}'), ` +
            `a {className, config} object or a tf.${kind}s instance`);
  }
  const factory = factories[className];
  if (factory !== undefined) return factory(config);
  const entry = tf.serialization.SerializationMap.getMap().classNameMap[className];
  if (entry === undefined) {
    throw argError(who, arg, identifier, `a known ${kind}; '${className}' is not registered`);
  }
  const [cls, fromConfig] = entry;
  let obj: tf.serialization.Serializable;
  try {
    obj = fromConfig(cls, config);
  } catch (e) {
    throw argError(who, arg, identifier, `a valid ${kind} config (${(e as Error).message})`);
  }
  if (!(obj instanceof base)) {
    throw argError(who, arg, identifier, `a ${kind}; '${className}' is a ${obj.getClassName()}`);
  }
  return obj;
}

// The base classes are not exported by tfjs; take them from instances.
const InitializerBase = Object.getPrototypeOf(Object.getPrototypeOf(tf.initializers.zeros())).constructor as
    abstract new (...args: never[]) => Initializer;
const RegularizerBase = Object.getPrototypeOf(Object.getPrototypeOf(tf.regularizers.l1l2())).constructor as
    abstract new (...args: never[]) => Regularizer;
const ConstraintBase = Object.getPrototypeOf(Object.getPrototypeOf(tf.constraints.nonNeg())).constructor as
    abstract new (...args: never[]) => Constraint;

export function getInitializer(who: string, arg: string, id: unknown): Initializer {
  return resolve(who, arg, 'initializer', InitializerBase, id, INITIALIZER_FACTORIES);
}

export function getRegularizer(who: string, arg: string, id: unknown): Regularizer|null {
  if (id == null) return null;
  return resolve(who, arg, 'regularizer', RegularizerBase, id, REGULARIZER_FACTORIES);
}

export function getConstraint(who: string, arg: string, id: unknown): Constraint|null {
  if (id == null) return null;
  return resolve(who, arg, 'constraint', ConstraintBase, id, {});
}

/** Serializes like tfjs-layers' serializeKerasObject: `{className, config}` or null. */
export function serialize(obj: tf.serialization.Serializable|null): SerializedObject|null {
  if (obj == null) return null;
  return {className: obj.getClassName(), config: obj.getConfig()};
}

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

/** The affine arguments of AffineNormalization, in Keras's order. */
export const AFFINE_KEYS = [
  'epsilon', 'center', 'scale', 'betaInitializer', 'gammaInitializer', 'betaRegularizer', 'gammaRegularizer',
  'betaConstraint', 'gammaConstraint',
];

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

/**
 * tfjs 4.22's LayerVariable.write() leaks the tensor its constraint returns
 * when a weight is written outside a tidy (as tf.loadLayersModel does):
 * run every write of a constrained weight inside tf.tidy. The variable keeps
 * its data alive through its own reference.
 */
function tidyWrites(v: tf.LayerVariable): tf.LayerVariable {
  if (v.constraint == null) return v;
  const write = v.write.bind(v);
  v.write = (value: tf.Tensor) => {
    tf.tidy(() => {
      write(value);
    });
    return v;
  };
  return v;
}

/** Arguments shared by the layers with a gamma and a beta (Keras's names, camelCase). */
export interface AffineArgs extends LayerArgs {
  /**
   * Added to the variance to avoid dividing by zero (to the standard
   * deviation in ContribInstanceNormalization). Default 1e-3.
   */
  epsilon?: number;
  /** If true, add the learned offset `beta`. Default true. */
  center?: boolean;
  /** If true, multiply by the learned scale `gamma`. Default true. */
  scale?: boolean;
  /** Initializer for beta. Default 'zeros'. */
  betaInitializer?: InitializerIdentifier;
  /** Initializer for gamma. Default 'ones'. */
  gammaInitializer?: InitializerIdentifier;
  /** Optional regularizer for beta. */
  betaRegularizer?: RegularizerIdentifier|null;
  /** Optional regularizer for gamma. */
  gammaRegularizer?: RegularizerIdentifier|null;
  /** Optional constraint for beta. */
  betaConstraint?: ConstraintIdentifier|null;
  /** Optional constraint for gamma. */
  gammaConstraint?: ConstraintIdentifier|null;
}

/**
 * Base of GroupNormalization, InstanceNormalization and LayerNormalization:
 * parses and serializes the affine arguments and builds gamma before beta,
 * as Keras orders them (Keras loads weights by position).
 */
export abstract class AffineNormalization extends tf.layers.Layer {
  /** Added to the variance (keras-contrib's flavour: to the standard deviation). */
  readonly epsilon: number;
  /** Whether the layer adds the learned offset `beta`. */
  readonly center: boolean;
  /** Whether the layer multiplies by the learned scale `gamma`. */
  readonly scale: boolean;
  /** Initializer of beta. */
  readonly betaInitializer: Initializer;
  /** Initializer of gamma. */
  readonly gammaInitializer: Initializer;
  /** Regularizer of beta, or null. */
  readonly betaRegularizer: Regularizer|null;
  /** Regularizer of gamma, or null. */
  readonly gammaRegularizer: Regularizer|null;
  /** Constraint on beta, or null. */
  readonly betaConstraint: Constraint|null;
  /** Constraint on gamma, or null. */
  readonly gammaConstraint: Constraint|null;
  protected gamma: tf.LayerVariable|null = null;
  protected beta: tf.LayerVariable|null = null;

  constructor(args: AffineArgs, defaultEpsilon: number) {
    super(normalizeBaseArgs(args, (new.target as unknown as {className: string}).className));
    const who = this.who;
    checkLayerArgKeys(who, new.target, args);
    this.epsilon = checkEpsilon(who, args.epsilon ?? defaultEpsilon);
    this.center = checkBoolean(who, 'center', args.center ?? true);
    this.scale = checkBoolean(who, 'scale', args.scale ?? true);
    this.betaInitializer = getInitializer(who, 'betaInitializer', args.betaInitializer ?? 'zeros');
    this.gammaInitializer = getInitializer(who, 'gammaInitializer', args.gammaInitializer ?? 'ones');
    this.betaRegularizer = getRegularizer(who, 'betaRegularizer', args.betaRegularizer);
    this.gammaRegularizer = getRegularizer(who, 'gammaRegularizer', args.gammaRegularizer);
    this.betaConstraint = getConstraint(who, 'betaConstraint', args.betaConstraint);
    this.gammaConstraint = getConstraint(who, 'gammaConstraint', args.gammaConstraint);
    this.supportsMasking = true;
  }

  static override fromConfig<T extends tf.serialization.Serializable>(
      cls: tf.serialization.SerializableConstructor<T>, config: ConfigDict): T {
    return constructFromConfig(cls, config, (cls as unknown as {className: string}).className);
  }

  /** `ClassName layer 'name'`, the prefix of every error this layer raises. */
  get who(): string {
    return layerWho(this.getClassName(), this.name);
  }

  /** Creates gamma (if scale), then beta (if center), both of paramShape. */
  protected buildAffine(paramShape: number[], withGamma = this.scale, withBeta = this.center): void {
    this.gamma = withGamma ?
        tidyWrites(this.addWeight(
            'gamma', paramShape, 'float32', this.gammaInitializer, this.gammaRegularizer ?? undefined, true,
            this.gammaConstraint ?? undefined)) :
        null;
    this.beta = withBeta ?
        tidyWrites(this.addWeight(
            'beta', paramShape, 'float32', this.betaInitializer, this.betaRegularizer ?? undefined, true,
            this.betaConstraint ?? undefined)) :
        null;
  }

  protected readGamma(): tf.Tensor|null {
    return this.gamma ? this.gamma.read() : null;
  }

  protected readBeta(): tf.Tensor|null {
    return this.beta ? this.beta.read() : null;
  }

  override computeOutputShape(inputShape: tf.Shape|tf.Shape[]): tf.Shape {
    return singleShape(this.who, inputShape).slice();
  }

  /** The affine keys of the config, in Keras's order after the layer's own. */
  protected affineConfig(): ConfigDict {
    return {
      epsilon: this.epsilon,
      center: this.center,
      scale: this.scale,
      betaInitializer: serialize(this.betaInitializer),
      gammaInitializer: serialize(this.gammaInitializer),
      betaRegularizer: serialize(this.betaRegularizer),
      gammaRegularizer: serialize(this.gammaRegularizer),
      betaConstraint: serialize(this.betaConstraint),
      gammaConstraint: serialize(this.gammaConstraint),
    } as unknown as ConfigDict;
  }
}
