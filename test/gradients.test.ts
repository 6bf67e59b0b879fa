/**
 * Analytic gradients (tf.customGrad) against central finite differences of
 * the float64 reference, on small random shapes, several axes, group
 * counts and modes.
 */
import * as tf from '@tensorflow/tfjs';

import {ops} from '../src';
import {expectClose, expectNoLeakSync} from './helpers';
import {axesSpec, groupSpec, normals, refForward, refGradsFD, RefSpec, rng} from './reference';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

interface GradCase {
  name: string;
  shape: number[];
  spec: RefSpec;
  paramShape: number[]|null;
  beta: boolean;
  run: (x: tf.Tensor, gamma?: tf.Tensor, beta?: tf.Tensor) => tf.Tensor;
}

function cases(): GradCase[] {
  const out: GradCase[] = [];
  const gn = (shape: number[], groups: number, axis: number, affine: boolean, eps = 1e-3) => {
    const a = axis < 0 ? axis + shape.length : axis;
    out.push({
      name: `groupNorm ${JSON.stringify(shape)} groups=${groups} axis=${axis}${affine ? '' : ' no affine'}`,
      shape, spec: groupSpec(shape, groups, a, eps), paramShape: affine ? [shape[a]] : null, beta: affine,
      run: (x, gamma, beta) => ops.groupNorm(x, {groups, axis, epsilon: eps, gamma, beta}),
    });
  };
  gn([2, 3, 4], 2, -1, true);
  gn([2, 4, 3, 3], 2, 1, true);      // channels-first
  gn([2, 3, 6, 2], 3, 2, true);      // channel axis in the middle
  gn([3, 2, 2, 4], 4, -1, false);    // instance-like, no affine
  gn([2, 2, 2, 2, 6], 3, -1, true);  // rank 5
  gn([4, 6], 1, -1, true);           // rank 2, one group
  out.push({
    name: 'instanceNorm [2,3,3,2] channels-first', shape: [2, 3, 3, 2],
    spec: groupSpec([2, 3, 3, 2], 3, 1, 1e-5), paramShape: [3], beta: true,
    run: (x, gamma, beta) => ops.instanceNorm(x, {axis: 1, epsilon: 1e-5, gamma, beta}),
  });
  const ln = (shape: number[], axis: number|number[], mode: 'center'|'rms'|'rmsScaling', eps = 1e-3) => {
    const axes = (Array.isArray(axis) ? axis : [axis]).map((a) => (a < 0 ? a + shape.length : a)).sort();
    const paramShape = axes.map((a) => shape[a]);
    out.push({
      name: `${mode === 'rms' ? 'rmsNorm' : 'layerNorm'} ${JSON.stringify(shape)} axis=${JSON.stringify(axis)} ${mode}`,
      shape, spec: axesSpec(shape, axes, eps, mode), paramShape, beta: mode === 'center',
      run: mode === 'rms' ? (x, gamma) => ops.rmsNorm(x, {axis, epsilon: eps, gamma}) :
                            (x, gamma, beta) => ops.layerNorm(x, {axis, epsilon: eps, gamma, beta, rmsScaling: mode === 'rmsScaling'}),
    });
  };
  ln([3, 5], -1, 'center');
  ln([2, 3, 4], [2, 0], 'center');     // unsorted, includes the batch axis
  ln([2, 3, 2, 4], [-1, 1], 'center'); // non-contiguous axes
  ln([5], 0, 'center');                // rank 1
  ln([2, 3, 4], [1, 2], 'rms');
  ln([3, 6], -1, 'rms', 1e-6);
  ln([2, 3, 4], -1, 'rmsScaling');
  ln([2, 4, 3], [1], 'rmsScaling');
  return out;
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
