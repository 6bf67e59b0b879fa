/**
 * The case matrix of the op-level suites (kernels, gradients, mask,
 * properties): one builder per op family gives a case's shape, its float64
 * reference spec (test/reference.ts), the gamma/beta shape, whether it has a
 * beta, the plan the op makes, and `run`, the op itself (mask optional).
 * Each suite adds only what it needs on top (a kernel's loop kind, data).
 */
import * as tf from '@tensorflow/tfjs';

import {ops} from '../src';
import {NormMode, NormPlan, normalizeMasked} from '../src/ops/core';
import {groupNormPlan} from '../src/ops/group_norm';
import {axesPlan} from '../src/ops/layer_norm';
import {axesSpec, groupSpec, RefSpec} from './reference';

/** One op case. */
export interface OpCase {
  name: string;
  shape: number[];
  spec: RefSpec;
  /** gamma/beta shape, or null for none. */
  paramShape: number[]|null;
  beta: boolean;
  plan: NormPlan;
  run: (x: tf.Tensor, gamma?: tf.Tensor, beta?: tf.Tensor, mask?: tf.Tensor|null) => tf.Tensor;
}

export interface CaseOptions {
  /** gamma (and beta, where the mode has one). Default true. */
  affine?: boolean;
  /** Default 1e-3. */
  epsilon?: number;
}

const resolve = (a: number, rank: number) => (a < 0 ? a + rank : a);

/**
 * groupNorm (mode 'center'), or the same plan in another mode run through
 * core.ts directly ('stdEps' is keras-contrib's instance norm; 'rms').
 */
export function groupCase(
    shape: number[], groups: number, axis: number, {affine = true, epsilon = 1e-3}: CaseOptions = {},
    mode: NormMode = 'center'): OpCase {
  const a = resolve(axis, shape.length);
  const plan = {...groupNormPlan('t', shape, groups, axis, epsilon), mode};
  return {
    name: `${mode === 'center' ? 'groupNorm' : `${mode} (group plan)`} ${JSON.stringify(shape)} groups=${groups} axis=${axis}` +
        `${affine ? '' : ' no affine'}`,
    shape, spec: {...groupSpec(shape, groups, a, epsilon), mode}, paramShape: affine ? [shape[a]] : null,
    beta: affine, plan,
    run: mode === 'center' ?
        (x, gamma, beta, mask) => ops.groupNorm(x, {groups, axis, epsilon, gamma, beta, mask}) :
        (x, gamma, beta, mask) => normalizeMasked('t', x, plan, gamma, beta, mask),
  };
}

/** instanceNorm: groupNorm with one group per channel. */
export function instanceCase(shape: number[], axis: number, {affine = true, epsilon = 1e-3}: CaseOptions = {}): OpCase {
  const a = resolve(axis, shape.length);
  return {
    name: `instanceNorm ${JSON.stringify(shape)} axis=${axis}${affine ? '' : ' no affine'}`,
    shape, spec: groupSpec(shape, shape[a], a, epsilon), paramShape: affine ? [shape[a]] : null, beta: affine,
    plan: groupNormPlan('t', shape, -1, axis, epsilon),
    run: (x, gamma, beta, mask) => ops.instanceNorm(x, {axis, epsilon, gamma, beta, mask}),
  };
}

/**
 * layerNorm ('center', 'rmsScaling') or rmsNorm ('rms') over an axis or a
 * list of axes, passed to the op as given; gamma/beta in sorted axis order.
 */
export function axesCase(
    shape: number[], axis: number|number[], mode: 'center'|'rms'|'rmsScaling',
    {affine = true, epsilon = 1e-3}: CaseOptions = {}): OpCase {
  const sorted = (Array.isArray(axis) ? axis : [axis]).map((a) => resolve(a, shape.length)).sort((p, q) => p - q);
  return {
    name: `${mode === 'rms' ? 'rmsNorm' : 'layerNorm'} ${JSON.stringify(shape)} axis=${JSON.stringify(axis)} ${mode}` +
        `${affine ? '' : ' no affine'}`,
    shape, spec: axesSpec(shape, sorted, epsilon, mode), paramShape: affine ? sorted.map((a) => shape[a]) : null,
    beta: affine && mode === 'center', plan: axesPlan(shape, sorted, epsilon, mode),
    run: mode === 'rms' ?
        (x, gamma, _beta, mask) => ops.rmsNorm(x, {axis, epsilon, gamma, mask}) :
        (x, gamma, beta, mask) => ops.layerNorm(x, {axis, epsilon, gamma, beta, mask, rmsScaling: mode === 'rmsScaling'}),
  };
}
