import * as tf from '@tensorflow/tfjs';

import {normalizeMasked} from '../ops/core';
import {OP_DEFAULTS} from '../ops/defaults';
import {checkGroups, GroupLayout, groupNormView, resolveGroupLayout} from '../ops/group_norm';
import {checkFloatTensor, checkIntegerAxis} from '../ops/validate';
import {AFFINE_KEYS, AffineArgs, AffineNormalization, MaskingArgs, MaskingMode} from './base';
import {ConfigDict} from './common';

/** Arguments of {@link GroupNormalization} (Keras 3's, camelCase). */
export interface GroupNormalizationArgs extends AffineArgs, MaskingArgs {
  /**
   * Number of groups the channels are split into; must divide the number
   * of channels. -1 means one group per channel (instance normalization).
   * Default 32.
   */
  groups?: number;
  /** The channel axis. Default -1. */
  axis?: number;
}

/**
 * Validates a channel-axis layer's input shape (rank, axis, a defined
 * channel dimension, groups dividing it), sets the layer's InputSpec (rank
 * and channel count, which tfjs then checks on every call) and returns the
 * resolved layout. Shared by GroupNormalization and InstanceNormalization.
 */
export function buildChannelSpec(
    layer: tf.layers.Layer, who: string, shape: tf.Shape, groups: number, axis: number): GroupLayout {
  const a = axis < 0 ? axis + shape.length : axis;
  if (shape.length >= 2 && a > 0 && a < shape.length && shape[a] == null) {
    throw new Error(
        `${who}: argument 'axis' (${axis}) points at a dimension that is undefined in ` +
        `input shape ${JSON.stringify(shape)}; the channel dimension must be known when the layer is built.`);
  }
  // The batch and other free dimensions do not matter for validation.
  const layout = resolveGroupLayout(who, shape.map((d) => d ?? 1), groups, axis);
  layer.inputSpec = [new tf.InputSpec({ndim: shape.length, axes: {[a]: layout.channels}})];
  return layout;
}

/**
 * Group normalization of x with a layout resolved at build (the InputSpec
 * holds x to it); direct call() use without build resolves it from x.
 */
export function groupNormLayer(
    who: string, x: tf.Tensor, layout: GroupLayout|null, groups: number, axis: number, epsilon: number,
    gamma: tf.Tensor|null, beta: tf.Tensor|null, mask: tf.Tensor|null): tf.Tensor {
  checkFloatTensor(who, 'x', x);
  const plan = groupNormView(x.shape, layout ?? resolveGroupLayout(who, x.shape, groups, axis), epsilon);
  return normalizeMasked(who, x, plan, gamma, beta, mask);
}

/**
 * Group normalization (Wu & He, 2018), with the arguments and defaults of
 * Keras 3's `keras.layers.GroupNormalization`:
 *
 * - `groups` (32): channels are split into this many groups, each
 *   normalized per sample over its channels and every non-batch,
 *   non-channel axis. -1: one group per channel.
 * - `axis` (-1): the channel axis.
 * - `epsilon` (1e-3): added to the variance.
 * - `center` (true) / `scale` (true): learn a per-channel `beta` / `gamma`.
 * - `betaInitializer` ('zeros'), `gammaInitializer` ('ones'),
 *   `betaRegularizer`, `gammaRegularizer`, `betaConstraint`,
 *   `gammaConstraint` (none).
 * - `masking` ('statistics'): what it does with tfjs's mask (see
 *   {@link MaskingMode}; Keras 3's layer: 'propagate').
 *
 * Unlike BatchNormalization it does not depend on the batch, and it
 * computes the same thing in training and inference.
 */
export class GroupNormalization extends AffineNormalization {
  /** The serialization class name, `GroupNormalization` (Keras's). */
  static className = 'GroupNormalization';
  /** The keys of its arguments besides tf.layers.Layer's. */
  static override readonly argKeys: readonly string[] = ['groups', 'axis', ...AFFINE_KEYS, 'masking'];
  /** The class's `masking` default. */
  static readonly defaultMasking: MaskingMode = 'statistics';
  /** Number of groups as given (-1: one per channel). */
  readonly groups: number;
  /** The channel axis as given (negative counts from the end). */
  readonly axis: number;
  private layout: GroupLayout|null = null;

  constructor(args: GroupNormalizationArgs = {}) {
    super(args, OP_DEFAULTS.groupNorm.epsilon);
    this.groups = checkGroups(this.who, args.groups ?? 32);
    this.axis = checkIntegerAxis(this.who, 'axis', args.axis ?? OP_DEFAULTS.groupNorm.axis);
    this.parseMasking(args.masking, (this.constructor as typeof GroupNormalization).defaultMasking);
  }

  protected buildShape(shape: tf.Shape): void {
    this.layout = buildChannelSpec(this, this.who, shape, this.groups, this.axis);
    this.buildAffine([this.layout.channels]);
  }

  protected forward(x: tf.Tensor, mask: tf.Tensor|null): tf.Tensor {
    return groupNormLayer(
        this.who, x, this.layout, this.groups, this.axis, this.epsilon, this.readGamma(), this.readBeta(), mask);
  }

  protected argsConfig(): ConfigDict {
    return {
      groups: this.groups, axis: this.axis, ...this.affineConfig(),
      ...this.maskingConfig((this.constructor as typeof GroupNormalization).defaultMasking),
    };
  }
}
