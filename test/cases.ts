/**
 * The case matrix of the op-level suites (kernels, gradients, mask,
 * properties): one builder per op family gives a case's shape, its float64
 * reference spec (test/reference.ts), the gamma/beta shape, whether it has a
 * beta, the plan the op makes, and `run`, the op itself (mask optional).
 * Each suite adds only what it needs on top (a kernel's loop kind). Below the
 * builders: a case's seeded data and what the kernel suites compute from
 * it (forward and gradients, kernel names, the float64 gradients).
 */
import * as tf from '@tensorflow/tfjs';

import {ops} from '../src';
import {NormMode, NormPlan, normalizeMasked} from '../src/ops/core';
import {groupNormPlan} from '../src/ops/group_norm';
import {axesPlan} from '../src/ops/layer_norm';
import {expectNoLeakSync} from './helpers';
import {axesSpec, groupSpec, normals, RefSpec, refGrads64, rng} from './reference';

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

/** A case's data: x, dy, and gamma/beta where the case has them. */
export interface CaseData {
  x: tf.Tensor;
  gamma?: tf.Tensor;
  beta?: tf.Tensor;
  dy: tf.Tensor;
}

/** Seeded data for a case: x ~ N(mean, std), dy ~ N(0, 1), gamma ~ N(1, 0.5), beta ~ N(0, 1). */
export function caseData(c: OpCase, seed: number, mean = 0.5, std = 2): CaseData {
  const rand = rng(seed);
  const n = c.shape.reduce((a, b) => a * b, 1);
  const d: CaseData = {x: tf.tensor(normals(rand, n, mean, std), c.shape), dy: tf.tensor(normals(rand, n), c.shape)};
  if (c.paramShape) {
    const p = c.paramShape.reduce((a, b) => a * b, 1);
    d.gamma = tf.tensor(normals(rand, p, 1, 0.5), c.paramShape);
    if (c.beta) d.beta = tf.tensor(normals(rand, p), c.paramShape);
  }
  return d;
}

export const disposeCaseData = (d: CaseData): void =>
  tf.dispose([d.x, d.gamma, d.beta, d.dy].filter((t): t is tf.Tensor => t != null));

/** The gradients of sum(run(...) * dy) with respect to x, gamma, beta (those the data has). */
export function caseGrads(c: OpCase, d: CaseData): tf.Tensor[] {
  const args = [d.x, d.gamma, d.beta].filter((t): t is tf.Tensor => t != null);
  const f = (...a: tf.Tensor[]) => tf.sum(tf.mul(c.run(a[0], a[1], c.beta ? a[2] : undefined), d.dy));
  return tf.grads(f)(args);
}

/** Forward and gradients read back, each checked for leaks. */
export function forwardAndGrads(c: OpCase, d: CaseData): {y: Float32Array, grads: Float32Array[]} {
  const y = expectNoLeakSync(() => c.run(d.x, d.gamma, d.beta), 'forward');
  const ys = y.dataSync() as Float32Array;
  y.dispose();
  const grads = expectNoLeakSync(() => caseGrads(c, d), 'gradients');
  const gs = grads.map((g) => g.dataSync() as Float32Array);
  tf.dispose(grads);
  return {y: ys, grads: gs};
}

/** The float64 gradients in caseGrads' order: dx, then dgamma and dbeta where the data has them. */
export function refGradList(c: OpCase, d: CaseData): Float64Array[] {
  const rg = refGrads64(c.spec, d.x.dataSync(), d.dy.dataSync(), d.gamma?.dataSync());
  return [rg.dx, ...(d.gamma ? [rg.dgamma] : []), ...(d.beta ? [rg.dbeta] : [])];
}

/** The scale a tolerance is relative to: max(1, max |a|). */
export const scaleOf = (a: ArrayLike<number>): number => Math.max(1, ...Array.from(a, Math.abs));

/** Names of the kernels fn runs. */
export async function kernelsRun(fn: () => tf.Tensor|tf.Tensor[]): Promise<string[]> {
  const info = await tf.profile(() => fn());
  tf.dispose(info.result as tf.Tensor|tf.Tensor[]);
  return info.kernels.map((k) => k.name);
}

/**
 * 20 SGD steps of a groupNorm layer's gamma and beta ([2, 4, 4, 8], 4
 * groups) towards a random target: the loss before and after, and how many
 * tensors the steps left behind.
 */
export function groupNormTrainingLoop(): {first: number, last: number, leaked: number} {
  const x = tf.tensor(normals(rng(13), 2 * 4 * 4 * 8, 2, 3), [2, 4, 4, 8]);
  const target = tf.tensor(normals(rng(14), 2 * 4 * 4 * 8), [2, 4, 4, 8]);
  const gamma = tf.variable(tf.ones([8]));
  const beta = tf.variable(tf.zeros([8]));
  const opt = tf.train.sgd(0.1);
  const loss = () => tf.mean(tf.square(tf.sub(ops.groupNorm(x, {groups: 4, gamma, beta}), target))) as tf.Scalar;
  const first = tf.tidy(() => loss().dataSync()[0]);
  const before = tf.memory().numTensors;
  for (let i = 0; i < 20; i++) tf.dispose(opt.minimize(loss, true) as tf.Scalar);
  const leaked = tf.memory().numTensors - before;
  const last = tf.tidy(() => loss().dataSync()[0]);
  tf.dispose([x, target, gamma, beta]);
  opt.dispose();
  return {first, last, leaked};
}
