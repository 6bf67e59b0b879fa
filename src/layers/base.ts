/**
 * The base classes of every layer of this package.
 *
 * {@link NormalizationLayer} is the shell: it checks the base layer
 * arguments and the class's own argument keys, names the layer in errors
 * (`who`), deserializes (`fromConfig`), takes one input tensor and its mask,
 * keeps the output shape, writes `dtype` into every config, and creates
 * weights whose constrained writes leak nothing. A subclass states its
 * `className` and `argKeys`, parses its arguments in the constructor and
 * implements three methods:
 *
 * - `buildShape(shape)`: check the input shape, set the InputSpec, create
 *   the weights (`addParam`), resolve whatever depends on the shape;
 * - `forward(x, mask, training)`: the output for one tensor;
 * - `argsConfig()`: the layer's own config keys, in the order Keras writes
 *   them (the base keys come first).
 *
 * {@link AffineNormalization} adds Keras's affine arguments (epsilon,
 * center/scale, initializers, regularizers and constraints of gamma/beta).
 */
import * as tf from '@tensorflow/tfjs';

import {argError, checkBoolean, checkEpsilon} from '../ops/validate';
import {baseConfig, checkLayerArgKeys, ConfigDict, constructFromConfig, dropMask, Kwargs, LayerArgs, layerWho, maskOf, normalizeBaseArgs, singleShape, singleTensor} from './common';
import {Constraint, ConstraintIdentifier, getConstraint, getInitializer, getRegularizer, Initializer, InitializerIdentifier, Regularizer, RegularizerIdentifier, serialize} from './identifiers';

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

/** How {@link NormalizationLayer.addParam} creates a weight. */
export interface ParamOptions {
  /** Default true; false for statistics the layer updates itself (moving mean/variance). */
  trainable?: boolean;
  regularizer?: Regularizer|null;
  constraint?: Constraint|null;
}

/**
 * What a layer with statistics (GroupNormalization and its `Addons>`
 * flavours, InstanceNormalization, LayerNormalization, RMSNormalization)
 * does with the mask tfjs propagates (from an `embedding` with `maskZero`,
 * a `masking` layer; keras-contrib's and pix2pix's InstanceNormalization
 * take no `masking` argument and always use `'statistics'`):
 * - `'statistics'` (this package's default): masked positions are left out
 *   of the statistics; the mask is passed on;
 * - `'propagate'`: the statistics over every position, the mask passed on
 *   unused: Keras 3's GroupNormalization and LayerNormalization, TensorFlow
 *   Addons' layers (their `call` takes no mask; the default of this
 *   package's `Addons>` classes);
 * - `'drop'`: the statistics over every position and no mask passed on:
 *   Keras 3's RMSNormalization (`supports_masking` false: Keras drops the
 *   mask, with a warning, and later layers see none).
 * Keras 3 models loaded through this package's translation get Keras's
 * (`io.fromKeras3`, `io.loadLayersModel`).
 */
export type MaskingMode = 'statistics'|'propagate'|'drop';

/** The values of {@link MaskingMode}. */
export const MASKING_MODES: readonly MaskingMode[] = ['statistics', 'propagate', 'drop'];

/** The `masking` argument of the layers that take one. */
export interface MaskingArgs {
  /** What the layer does with tfjs's mask (see {@link MaskingMode}). Default `'statistics'` (`'propagate'` on the `Addons>` classes). */
  masking?: MaskingMode;
}

/** The base of every layer of this package (see the file's header for what a subclass implements). */
export abstract class NormalizationLayer extends tf.layers.Layer {
  /** The keys of a class's arguments besides tf.layers.Layer's (unknown keys are errors). */
  static readonly argKeys: readonly string[] = [];
  /**
   * What call() does with tfjs's mask: `'statistics'` hands it to forward
   * (and computeMask passes it on); a layer that takes a `masking` argument
   * sets it with {@link parseMasking}.
   */
  protected maskUse: MaskingMode = 'statistics';

  constructor(args: LayerArgs|undefined) {
    super(normalizeBaseArgs(args, (new.target as unknown as {className: string}).className));
    checkLayerArgKeys(this.who, new.target, args);
    this.supportsMasking = true;
  }

  /** fromConfig with checked keys and errors that name the class, in model.json's spelling. */
  static override fromConfig<T extends tf.serialization.Serializable>(
      cls: tf.serialization.SerializableConstructor<T>, config: ConfigDict): T {
    return constructFromConfig(cls, config, (cls as unknown as {className: string}).className);
  }

  /** `ClassName layer 'name'`, the prefix of every error this layer raises. */
  get who(): string {
    return layerWho(this.getClassName(), this.name);
  }

  override build(inputShape: tf.Shape|tf.Shape[]): void {
    this.buildShape(singleShape(this.who, inputShape));
    this.built = true;
  }

  override call(inputs: tf.Tensor|tf.Tensor[], kwargs: Kwargs): tf.Tensor {
    const mask = this.maskUse === 'statistics' ? maskOf(kwargs) : null;
    // 'drop': tfjs's executor hands later layers these same kwargs (see dropMask).
    if (this.maskUse === 'drop') dropMask(kwargs);
    return this.forward(singleTensor(this.who, inputs), mask, kwargs?.training === true);
  }

  /** tfjs's: the input mask passed on; none with `masking: 'drop'`. */
  override computeMask(inputs: tf.Tensor|tf.Tensor[], mask?: tf.Tensor|tf.Tensor[]): tf.Tensor|tf.Tensor[] {
    // tfjs's declared type has no null, but its layers return null for "no mask" (as Layer.computeMask does).
    return this.maskUse === 'drop' ? null as unknown as tf.Tensor : super.computeMask(inputs, mask);
  }

  /** Reads the `masking` argument (default `dflt`, the class's) into maskUse. */
  protected parseMasking(value: unknown, dflt: MaskingMode): void {
    const v = value ?? dflt;
    if (typeof v !== 'string' || !(MASKING_MODES as readonly string[]).includes(v)) {
      throw argError(this.who, 'masking', value, `one of ${MASKING_MODES.map((m) => `'${m}'`).join(', ')}`);
    }
    this.maskUse = v as MaskingMode;
    // As Keras's supports_masking (false: the mask ends here).
    this.supportsMasking = this.maskUse !== 'drop';
  }

  /** `{masking}` where it differs from the class's default `dflt` (configs carry it only then). */
  protected maskingConfig(dflt: MaskingMode): ConfigDict {
    return this.maskUse === dflt ? {} : {masking: this.maskUse};
  }

  override computeOutputShape(inputShape: tf.Shape|tf.Shape[]): tf.Shape {
    return singleShape(this.who, inputShape).slice();
  }

  override getConfig(): ConfigDict {
    return {...baseConfig(super.getConfig()), ...this.argsConfig()};
  }

  /** Checks the input shape, sets the InputSpec and creates the weights. */
  protected abstract buildShape(shape: tf.Shape): void;

  /** The output for input x, with tfjs's mask (or null) and the training flag. */
  protected abstract forward(x: tf.Tensor, mask: tf.Tensor|null, training: boolean): tf.Tensor;

  /** The layer's own config keys (after the base ones), in Keras's order. */
  protected abstract argsConfig(): ConfigDict;

  /** A float32 weight; writes through a constraint run inside a tidy. */
  protected addParam(name: string, shape: number[], initializer: Initializer, opts: ParamOptions = {}): tf.LayerVariable {
    return tidyWrites(this.addWeight(
        name, shape, 'float32', initializer, opts.regularizer ?? undefined, opts.trainable ?? true,
        opts.constraint ?? undefined));
  }
}

/** The affine arguments of AffineNormalization, in Keras's order. */
export const AFFINE_KEYS = [
  'epsilon', 'center', 'scale', 'betaInitializer', 'gammaInitializer', 'betaRegularizer', 'gammaRegularizer',
  'betaConstraint', 'gammaConstraint',
];

/** The arguments of gamma and beta (initializers, regularizers, constraints), Keras's names, camelCase. */
export interface GammaBetaArgs extends LayerArgs {
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

/** Arguments shared by the layers with a gamma and a beta (Keras's names, camelCase). */
export interface AffineArgs extends GammaBetaArgs {
  /**
   * Added to the variance to avoid dividing by zero (to the standard
   * deviation in ContribInstanceNormalization). Default 1e-3.
   */
  epsilon?: number;
  /** If true, add the learned offset `beta`. Default true. */
  center?: boolean;
  /** If true, multiply by the learned scale `gamma`. Default true. */
  scale?: boolean;
}

/**
 * Base of the layers with a gamma and a beta weight: resolves and
 * serializes their initializers, regularizers and constraints and builds
 * gamma before beta, as Keras orders them (Keras loads weights by
 * position). FilterResponseNormalization extends it directly (TensorFlow
 * Addons' layer has both weights always and its own epsilon).
 */
export abstract class GammaBetaLayer extends NormalizationLayer {
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

  constructor(args: GammaBetaArgs) {
    super(args);
    const who = this.who;
    this.betaInitializer = getInitializer(who, 'betaInitializer', args.betaInitializer ?? 'zeros');
    this.gammaInitializer = getInitializer(who, 'gammaInitializer', args.gammaInitializer ?? 'ones');
    this.betaRegularizer = getRegularizer(who, 'betaRegularizer', args.betaRegularizer);
    this.gammaRegularizer = getRegularizer(who, 'gammaRegularizer', args.gammaRegularizer);
    this.betaConstraint = getConstraint(who, 'betaConstraint', args.betaConstraint);
    this.gammaConstraint = getConstraint(who, 'gammaConstraint', args.gammaConstraint);
  }

  /** Creates gamma (if withGamma), then beta (if withBeta), both of paramShape. */
  protected buildGammaBeta(paramShape: number[], withGamma: boolean, withBeta: boolean): void {
    this.gamma = withGamma ?
        this.addParam('gamma', paramShape, this.gammaInitializer,
                      {regularizer: this.gammaRegularizer, constraint: this.gammaConstraint}) :
        null;
    this.beta = withBeta ?
        this.addParam('beta', paramShape, this.betaInitializer,
                      {regularizer: this.betaRegularizer, constraint: this.betaConstraint}) :
        null;
  }

  protected readGamma(): tf.Tensor|null {
    return this.gamma ? this.gamma.read() : null;
  }

  protected readBeta(): tf.Tensor|null {
    return this.beta ? this.beta.read() : null;
  }

  /** The gamma/beta keys of the config, in Keras's order. */
  protected gammaBetaConfig(): ConfigDict {
    return {
      betaInitializer: serialize(this.betaInitializer),
      gammaInitializer: serialize(this.gammaInitializer),
      betaRegularizer: serialize(this.betaRegularizer),
      gammaRegularizer: serialize(this.gammaRegularizer),
      betaConstraint: serialize(this.betaConstraint),
      gammaConstraint: serialize(this.gammaConstraint),
    } as unknown as ConfigDict;
  }
}

/**
 * Base of the layers with Keras's affine arguments (GroupNormalization,
 * InstanceNormalization and its keras-contrib flavour, LayerNormalization):
 * epsilon, center and scale on top of {@link GammaBetaLayer}'s weights.
 */
export abstract class AffineNormalization extends GammaBetaLayer {
  /** Added to the variance (keras-contrib's flavour: to the standard deviation). */
  readonly epsilon: number;
  /** Whether the layer adds the learned offset `beta`. */
  readonly center: boolean;
  /** Whether the layer multiplies by the learned scale `gamma`. */
  readonly scale: boolean;

  constructor(args: AffineArgs, defaultEpsilon: number) {
    super(args);
    const who = this.who;
    this.epsilon = checkEpsilon(who, args.epsilon ?? defaultEpsilon);
    this.center = checkBoolean(who, 'center', args.center ?? true);
    this.scale = checkBoolean(who, 'scale', args.scale ?? true);
  }

  /** Creates gamma (if scale), then beta (if center), both of paramShape. */
  protected buildAffine(paramShape: number[], withGamma = this.scale, withBeta = this.center): void {
    this.buildGammaBeta(paramShape, withGamma, withBeta);
  }

  /** The affine keys of the config, in Keras's order after the layer's own. */
  protected affineConfig(): ConfigDict {
    return {epsilon: this.epsilon, center: this.center, scale: this.scale, ...this.gammaBetaConfig()};
  }
}
