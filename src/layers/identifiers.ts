/**
 * Identifier resolution for the layers' initializers, regularizers and
 * constraints, the way tfjs-layers resolves them (by identifier string, by
 * `{className, config}` dict or by instance), and their serialization.
 */
import * as tf from '@tensorflow/tfjs';

import {argError} from '../ops/validate';

/** A config dict as tf.serialization writes it. */
export type ConfigDict = tf.serialization.ConfigDict;

/** A tfjs initializer instance (what `tf.initializers.*` returns). */
export type Initializer = ReturnType<typeof tf.initializers.ones>;
/** A tfjs regularizer instance (what `tf.regularizers.*` returns). */
export type Regularizer = ReturnType<typeof tf.regularizers.l1l2>;
/** A tfjs constraint instance (what `tf.constraints.*` returns). */
export type Constraint = ReturnType<typeof tf.constraints.nonNeg>;

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
