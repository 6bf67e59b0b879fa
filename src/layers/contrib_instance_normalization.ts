import * as tf from '@tensorflow/tfjs';

import {NormPlan, normalizeMasked} from '../ops/core';
import {GroupLayout, groupNormView, resolveGroupLayout} from '../ops/group_norm';
import {argError, checkFloatTensor, resolveAxis} from '../ops/validate';
import {AFFINE_KEYS, AffineArgs, AffineNormalization} from './base';
import {ConfigDict} from './common';

/** Arguments of {@link ContribInstanceNormalization} (keras-contrib's, camelCase). */
export interface ContribInstanceNormalizationArgs extends AffineArgs {
  /** The channel axis, or null: statistics over all non-batch axes, gamma/beta of shape [1]. Default null. */
  axis?: number|null;
}

/**
 * keras-contrib's `InstanceNormalization`, reproduced exactly, for models
 * converted from Keras 2 projects that used keras_contrib:
 *
 * - statistics over every axis but the batch axis and `axis` (every
 *   non-batch axis when `axis` is null);
 * - `y = (x - mean) / (std + epsilon) * gamma + beta`: epsilon is added to
 *   the population standard deviation, not to the variance;
 * - gamma/beta of shape [C] (or [1] when `axis` is null), created only when
 *   `scale`/`center`.
 *
 * Its className is 'InstanceNormalization' (as in the converted
 * model.json); `InstanceNormalization.fromConfig` picks this class for
 * configs without `groups` that carry `axis` (see docs/loading.md).
 */
export class ContribInstanceNormalization extends AffineNormalization {
  /** The serialization class name, `InstanceNormalization` (keras-contrib's). */
  static className = 'InstanceNormalization';
  /** The keys of its arguments besides tf.layers.Layer's. */
  static override readonly argKeys: readonly string[] = ['axis', ...AFFINE_KEYS];
  /** The channel axis, or null (statistics over every non-batch axis). */
  readonly axis: number|null;
  private layout: GroupLayout|null = null;

  constructor(args: ContribInstanceNormalizationArgs = {}) {
    super(args, 1e-3);
    const axis = args.axis ?? null;
    if (axis !== null && (typeof axis !== 'number' || !Number.isInteger(axis))) {
      throw argError(this.who, 'axis', axis, 'an integer axis or null (keras-contrib InstanceNormalization)');
    }
    if (axis === 0) throw argError(this.who, 'axis', axis, 'a non-zero axis or null: axis 0 is the batch axis');
    this.axis = axis;
  }

  /** The channel layout for an input of this shape (axis not null): resolved at build. */
  private resolveLayout(shape: readonly number[], axis: number): GroupLayout {
    if (shape.length === 2) {
      throw argError(this.who, 'axis', axis, 'null for a rank-2 input (keras-contrib: cannot specify axis for rank 1 tensor)');
    }
    return resolveGroupLayout(this.who, shape, -1, axis);
  }

  /** The statistics plan for an input of this shape. */
  private plan(shape: readonly number[]): NormPlan {
    if (this.axis === null) {
      if (shape.length < 2) throw new Error(`${this.who}: input must have rank >= 2; received shape ${JSON.stringify(shape)}.`);
      const rest = shape.slice(1).reduce((a, b) => a * b, 1);
      return {viewShape: [shape[0], rest], reduceAxes: [1], paramViewShape: [1, 1], epsilon: this.epsilon, mode: 'stdEps'};
    }
    return {...groupNormView(shape, this.layout ?? this.resolveLayout(shape, this.axis), this.epsilon), mode: 'stdEps'};
  }

  protected buildShape(shape: tf.Shape): void {
    let paramShape = [1];
    if (this.axis !== null) {
      const a = resolveAxis(this.who, 'axis', this.axis, shape.length);
      const C = shape[a];
      if (C == null) {
        throw new Error(`${this.who}: argument 'axis' (${this.axis}) points at a dimension that is undefined in ` +
                        `input shape ${JSON.stringify(shape)}.`);
      }
      this.layout = this.resolveLayout(shape.map((d) => d ?? 1), this.axis);
      paramShape = [C];
    }
    // The channel count too: the plan's layout is resolved here, once.
    this.inputSpec = [new tf.InputSpec(
        {ndim: shape.length, ...(this.layout ? {axes: {[this.layout.axis]: this.layout.channels}} : {})})];
    this.buildAffine(paramShape);
  }

  protected forward(x: tf.Tensor, mask: tf.Tensor|null): tf.Tensor {
    checkFloatTensor(this.who, 'x', x);
    return normalizeMasked(this.who, x, this.plan(x.shape), this.readGamma(), this.readBeta(), mask);
  }

  protected argsConfig(): ConfigDict {
    return {axis: this.axis, ...this.affineConfig()};
  }
}
