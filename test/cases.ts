/**
 * The case matrix (test/case_matrix.ts) bound to src/, for the op-level
 * suites (kernels, gradients, mask, properties, the tfjs-node kernels):
 * each case with the op it runs (`run`, mask optional) and the plan the op
 * makes. Each suite adds only what it needs on top (a kernel's loop kind).
 * Below: a case's seeded data and what the kernel suites compute from it
 * (forward and gradients, kernel names, the float64 gradients).
 */
import * as tf from '@tensorflow/tfjs';

import {ops} from '../src';
import {NormPlan, normalizeMasked} from '../src/ops/core';
import {groupNormPlan} from '../src/ops/group_norm';
import {axesPlan} from '../src/ops/layer_norm';
import * as matrix from './case_matrix';
import {CaseInternals, CaseLib, CaseOptions, CaseRun, MatrixCase} from './case_matrix';
import {expectNoLeakSync} from './helpers';
import {normals, refGrads64, rng} from './reference';

export type {CaseOptions} from './case_matrix';

/** One op case, bound to src/. */
export interface OpCase extends MatrixCase {
  plan: NormPlan;
  run: CaseRun;
}

const INTERNALS: CaseInternals = {groupNormPlan, axesPlan, normalizeMasked};
const SRC: CaseLib = {ops, internals: INTERNALS};

const bind = (c: MatrixCase): OpCase => ({...c, plan: c.planWith(INTERNALS), run: c.runWith(SRC)});

/** {@link matrix.groupCase}, bound to src/. */
export const groupCase = (
    shape: number[], groups: number, axis: number, opts: CaseOptions = {}, mode: NormPlan['mode'] = 'center'): OpCase =>
  bind(matrix.groupCase(shape, groups, axis, opts, mode));

/** {@link matrix.instanceCase}, bound to src/. */
export const instanceCase = (shape: number[], axis: number, opts: CaseOptions = {}): OpCase =>
  bind(matrix.instanceCase(shape, axis, opts));

/** {@link matrix.axesCase}, bound to src/. */
export const axesCase = (
    shape: number[], axis: number|number[], mode: 'center'|'rms'|'rmsScaling', opts: CaseOptions = {}): OpCase =>
  bind(matrix.axesCase(shape, axis, mode, opts));

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
