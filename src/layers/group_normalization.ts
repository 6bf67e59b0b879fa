import * as tf from '@tensorflow/tfjs';

import {checkGroups, groupNormImpl, groupNormPlan} from '../ops/group_norm';
import {checkIntegerAxis} from '../ops/validate';
import {AFFINE_KEYS, AffineArgs, AffineNormalization} from './base';
import {ConfigDict} from './common';

/** Arguments of {@link GroupNormalization} (Keras 3's, camelCase). */
export interface GroupNormalizationArgs extends AffineArgs {
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
 * channel dimension, groups dividing it), sets the layer's InputSpec and
 * returns the channel count. Shared by GroupNormalization and
 * InstanceNormalization.
 */
export function buildChannelSpec(
    layer: tf.layers.Layer, who: string, shape: tf.Shape, groups: number, axis: number): number {
  const a = axis < 0 ? axis + shape.length : axis;
  if (shape.length >= 2 && a > 0 && a < shape.length && shape[a] == null) {
    throw new Error(
        `${who}: argument 'axis' (${axis}) points at a dimension that is undefined in ` +
        `input shape ${JSON.stringify(shape)}; the channel dimension must be known when the layer is built.`);
  }
  // The batch and other free dimensions do not matter for validation.
  const plan = groupNormPlan(who, shape.map((d) => d ?? 1), groups, axis, 0);
  layer.inputSpec = [new tf.InputSpec({ndim: shape.length, axes: {[a]: plan.channels}})];
  return plan.channels;
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
 *
 * Unlike BatchNormalization it does not depend on the batch, and it
 * computes the same thing in training and inference.
 */
export class GroupNormalization extends AffineNormalization {
  /** The serialization class name, `GroupNormalization` (Keras's). */
  static className = 'GroupNormalization';
  /** The keys of its arguments besides tf.layers.Layer's. */
  static override readonly argKeys: readonly string[] = ['groups', 'axis', ...AFFINE_KEYS];
  /** Number of groups as given (-1: one per channel). */
  readonly groups: number;
  /** The channel axis as given (negative counts from the end). */
  readonly axis: number;

  constructor(args: GroupNormalizationArgs = {}) {
    super(args, 1e-3);
    this.groups = checkGroups(this.who, args.groups ?? 32);
    this.axis = checkIntegerAxis(this.who, 'axis', args.axis ?? -1);
  }

  protected buildShape(shape: tf.Shape): void {
    const channels = buildChannelSpec(this, this.who, shape, this.groups, this.axis);
    this.buildAffine([channels]);
  }

  protected forward(x: tf.Tensor, mask: tf.Tensor|null): tf.Tensor {
    return groupNormImpl(
        x, {groups: this.groups, axis: this.axis, epsilon: this.epsilon, gamma: this.readGamma(), beta: this.readBeta(),
          mask},
        this.who);
  }

  protected argsConfig(): ConfigDict {
    return {groups: this.groups, axis: this.axis, ...this.affineConfig()};
  }
}
