import * as tf from '@tensorflow/tfjs';

import {absSignGrad, filterResponseNormImpl} from '../ops/filter_response_norm';
import {argError, checkBoolean} from '../ops/validate';
import {GammaBetaArgs, GammaBetaLayer, NormalizationLayer} from './base';
import {ConfigDict, LayerArgs} from './common';
import {
  Constraint, ConstraintIdentifier, getConstraint, getInitializer, getRegularizer, Initializer, InitializerIdentifier, Regularizer,
  RegularizerIdentifier, serialize,
} from './identifiers';

/** Arguments of {@link FilterResponseNormalization} (TensorFlow Addons', camelCase). */
export interface FilterResponseNormalizationArgs extends GammaBetaArgs {
  /** Added to the mean square, as |epsilon| (kept as given in the config, as TFA). Default 1e-6. */
  epsilon?: number;
  /** The spatial axes; TensorFlow Addons accepts only [1, 2]. Default [1, 2]. */
  axis?: number[];
  /** Learn an extra epsilon (weight `learned_epsilon`, [1], initialized to 1e-4), added as its absolute value. Default false. */
  learnedEpsilon?: boolean;
  /** Optional constraint for the learned epsilon. */
  learnedEpsilonConstraint?: ConstraintIdentifier|null;
}

/**
 * TensorFlow Addons' `Addons>FilterResponseNormalization` (Singh & Krishnan,
 * 2019) on [N, H, W, C]: `y = gamma * x * rsqrt(mean(x², [1, 2]) + |epsilon|) + beta`
 * (`+ |learned_epsilon|` with `learnedEpsilon`). Weights as TFA creates them:
 * `learned_epsilon` ([1], only with `learnedEpsilon`), then `gamma` and
 * `beta`, both [1, 1, 1, C]. Usually followed by {@link TLU}.
 */
export class FilterResponseNormalization extends GammaBetaLayer {
  /** The serialization class name, TensorFlow Addons' `Addons>FilterResponseNormalization`. */
  static className = 'Addons>FilterResponseNormalization';
  /** The keys of its arguments besides tf.layers.Layer's. */
  static override readonly argKeys: readonly string[] = [
    'axis', 'epsilon', 'learnedEpsilon', 'betaInitializer', 'gammaInitializer', 'betaRegularizer', 'gammaRegularizer',
    'betaConstraint', 'gammaConstraint', 'learnedEpsilonConstraint',
  ];
  /** epsilon as given, as TFA stores it (and writes it to the config); the layer adds |epsilon|. */
  readonly epsilon: number;
  /** Whether an extra epsilon is learned. */
  readonly learnedEpsilon: boolean;
  /** Constraint on the learned epsilon, or null. */
  readonly learnedEpsilonConstraint: Constraint|null;
  private epsWeight: tf.LayerVariable|null = null;

  constructor(args: FilterResponseNormalizationArgs = {}) {
    super(args);
    const who = this.who;
    const eps = args.epsilon ?? 1e-6;
    if (typeof eps !== 'number' || !Number.isFinite(eps)) throw argError(who, 'epsilon', eps, 'a finite number (used as its absolute value)');
    this.epsilon = eps;
    const axis = args.axis ?? [1, 2];
    if (!Array.isArray(axis) || axis.length !== 2 || axis[0] !== 1 || axis[1] !== 2) {
      throw argError(who, 'axis', axis, '[1, 2] (TensorFlow Addons normalizes each channel over the spatial axes of [N, H, W, C] only)');
    }
    this.learnedEpsilon = checkBoolean(who, 'learnedEpsilon', args.learnedEpsilon ?? false);
    // TFA keeps the constraint only with learned_epsilon.
    this.learnedEpsilonConstraint = this.learnedEpsilon ?
        getConstraint(who, 'learnedEpsilonConstraint', args.learnedEpsilonConstraint) : null;
  }

  protected buildShape(shape: tf.Shape): void {
    if (shape.length !== 4) {
      throw new Error(`${this.who}: expects inputs of rank 4, [batch, height, width, channels] (as TensorFlow Addons); ` +
                      `received input shape ${JSON.stringify(shape)}.`);
    }
    if (shape[1] == null || shape[2] == null || shape[3] == null) {
      throw new Error(`${this.who}: axes 1, 2 and 3 of the input must be defined; received input shape ${JSON.stringify(shape)}.`);
    }
    const C = shape[3];
    this.inputSpec = [new tf.InputSpec({ndim: 4, axes: {1: shape[1], 2: shape[2]}})];
    if (this.learnedEpsilon) {
      this.epsWeight = this.addParam('learned_epsilon', [1], tf.initializers.constant({value: 1e-4}),
                                     {constraint: this.learnedEpsilonConstraint});
    }
    this.buildGammaBeta([1, 1, 1, C], true, true);
  }

  protected forward(x: tf.Tensor): tf.Tensor {
    const gamma = this.readGamma();
    const beta = this.readBeta();
    if (!this.epsWeight) return filterResponseNormImpl(x, {epsilon: Math.abs(this.epsilon), gamma, beta}, this.who);
    const w = this.epsWeight.read();
    return tf.tidy(() => {
      // |epsilon| + |learned| (|learned| with TensorFlow's gradient, 0 at 0): |.| of a non-negative sum is
      // the sum, so the op's abs passes the gradient through.
      const eps = tf.add(absSignGrad(w), Math.abs(this.epsilon));
      return filterResponseNormImpl(x, {epsilon: eps, gamma, beta}, this.who);
    });
  }

  protected argsConfig(): ConfigDict {
    return {
      axis: [1, 2],
      epsilon: this.epsilon,
      learnedEpsilon: this.learnedEpsilon,
      ...this.gammaBetaConfig(),
      learnedEpsilonConstraint: serialize(this.learnedEpsilonConstraint),
    } as unknown as ConfigDict;
  }
}

/** Arguments of {@link TLU} (TensorFlow Addons', camelCase). */
export interface TLUArgs extends LayerArgs {
  /** TLU-Affine: `max(x, alpha * x + tau)` instead of `max(x, tau)`. Default false. */
  affine?: boolean;
  /** Initializer for tau. Default 'zeros'. */
  tauInitializer?: InitializerIdentifier;
  /** Optional regularizer for tau. */
  tauRegularizer?: RegularizerIdentifier|null;
  /** Optional constraint for tau. */
  tauConstraint?: ConstraintIdentifier|null;
  /** Initializer for alpha (affine only). Default 'zeros'. */
  alphaInitializer?: InitializerIdentifier;
  /** Optional regularizer for alpha (affine only). */
  alphaRegularizer?: RegularizerIdentifier|null;
  /** Optional constraint for alpha (affine only). */
  alphaConstraint?: ConstraintIdentifier|null;
}

/**
 * TensorFlow Addons' `Addons>TLU`, the thresholded linear unit that goes
 * with {@link FilterResponseNormalization}: `max(x, tau)`, or with `affine`
 * `max(x, alpha * x + tau)`. Weights `tau` (then `alpha` if affine), shaped
 * like the input without its batch axis, as TFA. The gradient is
 * TensorFlow's `tf.maximum` gradient: to x where x >= the threshold, to the
 * threshold everywhere else (NaN included).
 */
export class TLU extends NormalizationLayer {
  /** The serialization class name, TensorFlow Addons' `Addons>TLU`. */
  static className = 'Addons>TLU';
  /** The keys of its arguments besides tf.layers.Layer's. */
  static override readonly argKeys: readonly string[] = [
    'affine', 'tauInitializer', 'tauRegularizer', 'tauConstraint', 'alphaInitializer', 'alphaRegularizer', 'alphaConstraint',
  ];
  /** Whether the layer is TLU-Affine. */
  readonly affine: boolean;
  /** Initializer of tau. */
  readonly tauInitializer: Initializer;
  /** Regularizer of tau, or null. */
  readonly tauRegularizer: Regularizer|null;
  /** Constraint on tau, or null. */
  readonly tauConstraint: Constraint|null;
  /** Initializer of alpha (affine). */
  readonly alphaInitializer: Initializer;
  /** Regularizer of alpha, or null. */
  readonly alphaRegularizer: Regularizer|null;
  /** Constraint on alpha, or null. */
  readonly alphaConstraint: Constraint|null;
  private tau: tf.LayerVariable|null = null;
  private alpha: tf.LayerVariable|null = null;

  constructor(args: TLUArgs = {}) {
    super(args);
    const who = this.who;
    this.affine = checkBoolean(who, 'affine', args.affine ?? false);
    this.tauInitializer = getInitializer(who, 'tauInitializer', args.tauInitializer ?? 'zeros');
    this.tauRegularizer = getRegularizer(who, 'tauRegularizer', args.tauRegularizer);
    this.tauConstraint = getConstraint(who, 'tauConstraint', args.tauConstraint);
    this.alphaInitializer = getInitializer(who, 'alphaInitializer', args.alphaInitializer ?? 'zeros');
    this.alphaRegularizer = getRegularizer(who, 'alphaRegularizer', args.alphaRegularizer);
    this.alphaConstraint = getConstraint(who, 'alphaConstraint', args.alphaConstraint);
  }

  protected buildShape(shape: tf.Shape): void {
    const paramShape = shape.slice(1);
    if (shape.length < 2 || paramShape.some((d) => d == null)) {
      throw new Error(`${this.who}: every axis but the batch axis must be defined (tau has the input's shape without ` +
                      `the batch axis); received input shape ${JSON.stringify(shape)}.`);
    }
    const dims = paramShape as number[];
    this.inputSpec = [new tf.InputSpec({ndim: shape.length, axes: Object.fromEntries(dims.map((d, i) => [i + 1, d]))})];
    this.tau = this.addParam('tau', dims, this.tauInitializer, {regularizer: this.tauRegularizer, constraint: this.tauConstraint});
    this.alpha = this.affine ?
        this.addParam('alpha', dims, this.alphaInitializer, {regularizer: this.alphaRegularizer, constraint: this.alphaConstraint}) :
        null;
  }

  protected forward(x: tf.Tensor): tf.Tensor {
    const tau = (this.tau as tf.LayerVariable).read();
    const alpha = this.alpha ? this.alpha.read() : null;
    // Both arguments of x's shape: tfjs 4.22's Maximum gradient does not sum over broadcast axes (it
    // returns dy's shape for a smaller input, an error), so tau is broadcast first.
    return tf.tidy(() => maximumTf(x, alpha ? tf.add(tf.mul(alpha, x), tau) : tf.broadcastTo(tau, x.shape)));
  }

  /** TFA's keys: the alpha ones only when affine. */
  protected argsConfig(): ConfigDict {
    const config: Record<string, unknown> = {
      tauInitializer: serialize(this.tauInitializer),
      tauRegularizer: serialize(this.tauRegularizer),
      tauConstraint: serialize(this.tauConstraint),
      affine: this.affine,
    };
    if (this.affine) {
      config.alphaInitializer = serialize(this.alphaInitializer);
      config.alphaRegularizer = serialize(this.alphaRegularizer);
      config.alphaConstraint = serialize(this.alphaConstraint);
    }
    return config as ConfigDict;
  }
}

/**
 * `tf.maximum(a, b)` (same shapes) with TensorFlow's gradient: to a where
 * `a >= b`, to b everywhere else, NaN comparisons included (tfjs's gives b
 * only where `a < b`, so where a or b is NaN neither gets it). Piecewise
 * linear: a recording tape differentiates the masked dy (the mask has a
 * zero gradient).
 */
function maximumTf(a: tf.Tensor, b: tf.Tensor): tf.Tensor {
  const f = tf.customGrad((...args: Array<tf.Tensor|tf.GradSaveFunc>) => {
    const [x, t] = args as tf.Tensor[];
    const save = args[2] as tf.GradSaveFunc;
    // The inputs, not the mask: a recording tape then links the mask (zero gradient) to a and b, so
    // tf.grad of a gradient through this layer stays connected to x even where it is all zeros.
    save([x, t]);
    return {
      value: tf.maximum(x, t),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.tidy(() => {
        const toA = tf.greaterEqual(saved[0], saved[1]);
        const zeros = tf.zerosLike(dy);
        return [tf.where(toA, dy, zeros), tf.where(toA, zeros, dy)];
      }),
    };
  });
  return f(a, b);
}
