/**
 * Analytic gradients (tf.customGrad) against central finite differences of
 * the float64 reference, on small random shapes, several axes, group
 * counts and modes.
 */
import * as tf from '@tensorflow/tfjs';

import {expectClose, expectNoLeakSync, useTestBackend} from './helpers';
import {axesCase, groupCase, instanceCase, OpCase} from './cases';
import {groupSpec, normals, refForward, refGradsFD, rng} from './reference';

beforeAll(async () => {
  await useTestBackend();
});

function cases(): OpCase[] {
  return [
    groupCase([2, 3, 4], 2, -1),
    groupCase([2, 4, 3, 3], 2, 1),  // channels-first
    groupCase([2, 3, 6, 2], 3, 2),  // channel axis in the middle
    groupCase([3, 2, 2, 4], 4, -1, {affine: false}),  // instance-like, no affine
    groupCase([2, 2, 2, 2, 6], 3, -1),  // rank 5
    groupCase([4, 6], 1, -1),  // rank 2, one group
    instanceCase([2, 3, 3, 2], 1, {epsilon: 1e-5}),  // channels-first
    axesCase([3, 5], -1, 'center'),
    axesCase([2, 3, 4], [2, 0], 'center'),  // unsorted, includes the batch axis
    axesCase([2, 3, 2, 4], [-1, 1], 'center'),  // non-contiguous axes
    axesCase([5], 0, 'center'),  // rank 1
    axesCase([2, 3, 4], [1, 2], 'rms'),
    axesCase([3, 6], -1, 'rms', {epsilon: 1e-6}),
    axesCase([2, 3, 4], -1, 'rmsScaling'),
    axesCase([2, 4, 3], [1], 'rmsScaling'),
  ];
}

describe.each(cases().map((c) => [c.name, c] as const))('%s', (_name, c) => {
  test('dx, dgamma, dbeta match central finite differences of the float64 reference', () => {
    const rand = rng(c.name.length * 7919);
    const n = c.shape.reduce((a, b) => a * b, 1);
    const xs = normals(rand, n, 0.3, 1.5);
    const dys = normals(rand, n);
    const pn = c.paramShape ? c.paramShape.reduce((a, b) => a * b, 1) : 0;
    const gs = c.paramShape ? normals(rand, pn, 1, 0.5) : null;
    const bs = c.paramShape && c.beta ? normals(rand, pn, 0, 0.5) : null;
    const x = tf.tensor(xs, c.shape);
    const dy = tf.tensor(dys, c.shape);
    const gamma = gs ? tf.tensor(gs, c.paramShape as number[]) : undefined;
    const beta = bs ? tf.tensor(bs, c.paramShape as number[]) : undefined;
    const y = c.run(x, gamma, beta);
    expectClose(y, refForward(c.spec, xs, gs, bs), 1e-5, 'forward');
    const args = [x, ...(gamma ? [gamma] : []), ...(beta ? [beta] : [])];
    const grads = expectNoLeakSync(() => tf.grads((...a: tf.Tensor[]) => tf.sum(tf.mul(c.run(a[0], gamma ? a[1] : undefined, beta ? a[gamma ? 2 : 1] : undefined), dy)))(args));
    const fd = refGradsFD(c.spec, xs, dys, gs, bs);
    expectClose(grads[0], fd.dx, 1e-4, 'dx');
    if (gamma) expectClose(grads[1], fd.dgamma as Float64Array, 1e-4, 'dgamma');
    if (beta) expectClose(grads[2], fd.dbeta as Float64Array, 1e-4, 'dbeta');
    tf.dispose([x, dy, y, ...grads, ...(gamma ? [gamma] : []), ...(beta ? [beta] : [])]);
  });
});

describe('stdEps mode (keras-contrib: epsilon added to the standard deviation)', () => {
  test('forward and gradients match the float64 reference', async () => {
    const {normalize} = await import('../src/ops/core');
    const {groupNormPlan} = await import('../src/ops/group_norm');
    const shape = [2, 3, 3, 4];
    const plan = {...groupNormPlan('t', shape, 4, -1, 1e-3), mode: 'stdEps' as const};
    const spec = {...groupSpec(shape, 4, 3, 1e-3), mode: 'stdEps' as const};
    const rand = rng(99);
    const xs = normals(rand, 72, 1, 2);
    const dys = normals(rand, 72);
    const gs = normals(rand, 4, 1, 0.3);
    const bs = normals(rand, 4);
    const [x, dy, g, b] = [tf.tensor(xs, shape), tf.tensor(dys, shape), tf.tensor(gs), tf.tensor(bs)];
    const run = (xx: tf.Tensor, gg: tf.Tensor, bb: tf.Tensor) => normalize(xx, plan, gg, bb);
    expectClose(run(x, g, b), refForward(spec, xs, gs, bs), 1e-5, 'forward');
    const grads = tf.grads((a: tf.Tensor, c: tf.Tensor, d: tf.Tensor) => tf.sum(tf.mul(run(a, c, d), dy)))([x, g, b]);
    const fd = refGradsFD(spec, xs, dys, gs, bs);
    expectClose(grads[0], fd.dx, 1e-4, 'dx');
    expectClose(grads[1], fd.dgamma as Float64Array, 1e-4, 'dgamma');
    expectClose(grads[2], fd.dbeta as Float64Array, 1e-4, 'dbeta');
  });
});
