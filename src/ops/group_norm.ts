import * as tf from '@tensorflow/tfjs';

import {NormPlan, normalizeMasked} from './core';
import {OP_DEFAULTS} from './defaults';
import {argError, checkChannelsRank, checkEpsilon, checkFloatTensor, checkIntegerAxis, checkOptionKeys, checkParam, resolveAxis} from './validate';

/** Options of {@link groupNorm}. */
export interface GroupNormOptions {
  /** Number of groups G; must divide the channel count C. -1 means C (one group per channel). */
  groups: number;
  /** The channel axis (default -1, channels-last). Negative counts from the end; not 0 (batch). */
  axis?: number;
  /** Added to the variance (default 1e-3, as Keras; OP_DEFAULTS). */
  epsilon?: number;
  /** Per-channel scale, shape [C]. */
  gamma?: tf.Tensor|null;
  /** Per-channel offset, shape [C]. */
  beta?: tf.Tensor|null;
  /**
   * Optional mask, shaped like a prefix of x's shape (e.g. [batch, time]) or
   * like x; nonzero = valid. Masked positions are left out of the
   * statistics and normalized with those of the valid positions.
   */
  mask?: tf.Tensor|null;
}

/** The keys of GroupNormOptions. */
export const GROUP_NORM_KEYS = ['groups', 'axis', 'epsilon', 'gamma', 'beta', 'mask'] as const;

/**
 * Checks a `groups` value on its own (no shape known yet): a positive
 * integer or -1. `expected` says what the caller wants of it.
 */
export function checkGroups(
    who: string, groups: unknown,
    expected = 'a positive integer that divides the number of channels, or -1 for one group per channel'): number {
  if (typeof groups !== 'number' || !Number.isInteger(groups) || (groups < 1 && groups !== -1)) {
    throw argError(who, 'groups', groups, expected);
  }
  return groups;
}

/**
 * Resolves `groups` against a channel count: -1 becomes C; anything that
 * does not divide C is an error that lists the valid choices.
 */
export function resolveGroups(who: string, groups: number, channels: number): number {
  const g = groups === -1 ? channels : groups;
  if (g > channels || channels % g !== 0) {
    const divisors: number[] = [];
    for (let d = 1; d <= channels; d++) {
      if (channels % d === 0) divisors.push(d);
    }
    throw argError(
        who, 'groups', groups,
        `a divisor of the number of channels (${channels}): one of ${divisors.join(', ')}` +
            ' (or -1 for one group per channel)');
  }
  return g;
}

/** groupNorm's scalar options, checked and defaulted (see {@link checkGroupNormOptions}). */
export interface GroupNormArgs {
  groups: number;
  axis: number;
  epsilon: number;
}

/** Checks groups, axis and epsilon of a groupNorm call (no shape known yet), with the defaults of OP_DEFAULTS. */
export function checkGroupNormOptions(
    who: string, opts: {groups?: unknown, axis?: unknown, epsilon?: unknown},
    defaults: {axis: number, epsilon: number} = OP_DEFAULTS.groupNorm): GroupNormArgs {
  return {
    groups: checkGroups(who, opts.groups),
    axis: checkIntegerAxis(who, 'axis', opts.axis ?? defaults.axis),
    epsilon: checkEpsilon(who, opts.epsilon ?? defaults.epsilon),
  };
}

/** `groups` and `axis` resolved against an input shape: the channel axis (non-negative), C and G. */
export interface GroupLayout {
  axis: number;
  channels: number;
  groups: number;
}

/**
 * Resolves `groups` (checked) and `axis` (an integer) against an input
 * shape: rank >= 2, the axis in range and not the batch axis, a defined
 * channel count, groups dividing it. Every shape-dependent error of group
 * normalization is raised here.
 */
export function resolveGroupLayout(who: string, shape: readonly number[], groups: number, axis: number): GroupLayout {
  const rank = shape.length;
  checkChannelsRank(who, shape);
  const a = resolveAxis(who, 'axis', axis, rank);
  if (a === 0) {
    throw argError(who, 'axis', axis, 'a channel axis other than 0, the batch axis');
  }
  const C = shape[a];
  if (C == null || C < 1) {
    throw argError(who, 'axis', axis, `an axis with a defined channel dimension (shape ${JSON.stringify(shape)})`);
  }
  return {axis: a, channels: C, groups: resolveGroups(who, groups, C)};
}

/**
 * The plan for group normalization of an input of this shape, for a layout
 * that {@link resolveGroupLayout} resolved (trusted, not checked again): x
 * viewed as [N, P, G, C/G, Q] (P = product of the axes between batch and
 * channel, Q = product of the axes after the channel; size-1 P and Q are
 * dropped), statistics over every axis but N and G.
 */
export function groupNormView(
    shape: readonly number[], layout: GroupLayout, epsilon: number): NormPlan&{channels: number, groups: number} {
  const {axis: a, channels: C, groups: G} = layout;
  let P = 1;
  let Q = 1;
  for (let i = 1; i < a; i++) P *= shape[i];
  for (let i = a + 1; i < shape.length; i++) Q *= shape[i];
  const viewShape = [shape[0]];
  if (P !== 1) viewShape.push(P);  // kept when 0: an empty axis gives an empty output
  const gAxis = viewShape.length;
  viewShape.push(G, C / G);
  if (Q !== 1) viewShape.push(Q);
  const reduceAxes = viewShape.map((_, i) => i).filter((i) => i !== 0 && i !== gAxis);
  const paramViewShape = viewShape.map((d, i) => (i === gAxis || i === gAxis + 1 ? d : 1));
  return {viewShape, reduceAxes, paramViewShape, epsilon, mode: 'center', channels: C, groups: G};
}

/** The plan for checked `groups`/`axis` against a shape that is not: {@link resolveGroupLayout}, then {@link groupNormView}. */
export function groupNormPlan(
    who: string, shape: readonly number[], groups: number, axis: number,
    epsilon: number): NormPlan&{channels: number, groups: number} {
  return groupNormView(shape, resolveGroupLayout(who, shape, groups, axis), epsilon);
}

/**
 * The body of groupNorm and instanceNorm once x (a float32 tensor) and
 * their options are checked: the layout resolved against x's shape,
 * gamma/beta checked against it, then the planned normalization.
 */
export function groupNormImpl(
    who: string, x: tf.Tensor, args: GroupNormArgs, gamma: tf.Tensor|null|undefined, beta: tf.Tensor|null|undefined,
    mask: tf.Tensor|null|undefined): tf.Tensor {
  const plan = groupNormPlan(who, x.shape, args.groups, args.axis, args.epsilon);
  checkParam(who, 'gamma', gamma, [plan.channels]);
  checkParam(who, 'beta', beta, [plan.channels]);
  return normalizeMasked(who, x, plan, gamma, beta, mask);
}

/**
 * Group normalization (Wu & He, 2018). The C channels on `axis` are split
 * into `groups` groups; each group of each sample is normalized with the
 * mean and population variance over the group's channels and every axis
 * that is neither batch (0) nor channel:
 * `y = (x - mean) / sqrt(var + epsilon) * gamma + beta`.
 *
 * The tensor-level counterpart of PyTorch's `torch.nn.functional.group_norm`,
 * but channels-last by default, like Keras. Differentiable on every backend.
 */
export function groupNorm<R extends tf.Rank>(x: tf.Tensor<R>, opts: GroupNormOptions): tf.Tensor<R> {
  if (opts == null) throw argError('groupNorm', 'opts', opts, 'an object with at least {groups}');
  checkOptionKeys('groupNorm', 'opts', opts, GROUP_NORM_KEYS);
  checkFloatTensor('groupNorm', 'x', x);
  return groupNormImpl('groupNorm', x, checkGroupNormOptions('groupNorm', opts), opts.gamma, opts.beta, opts.mask) as
      tf.Tensor<R>;
}
