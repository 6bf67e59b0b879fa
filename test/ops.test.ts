/** Literal examples, numerics and argument errors of the functional ops. */
import * as tf from '@tensorflow/tfjs';

import {ops} from '../src';
import {expectClose, expectNoLeakSync, maxAbsDiff, useTestBackend} from './helpers';
import {groupSpec, normals, refForward, rng} from './reference';

beforeAll(async () => {
  await useTestBackend();
});

describe('literal examples', () => {
  test('groupNorm, one group over [1, 4]', () => {
    const y = ops.groupNorm(tf.tensor2d([[1, 2, 3, 4]]), {groups: 1, epsilon: 0});
    const s = Math.sqrt(1.25);
    expectClose(y, [-1.5 / s, -0.5 / s, 0.5 / s, 1.5 / s], 1e-6, 'y');
  });

  test('groupNorm, two groups over [1, 4]', () => {
    const y = ops.groupNorm(tf.tensor2d([[1, 2, 3, 5]]), {groups: 2, epsilon: 0});
    expectClose(y, [-1, 1, -1, 1], 1e-6, 'y');
  });

  test('groupNorm with gamma and beta', () => {
    const y = ops.groupNorm(tf.tensor2d([[1, 2, 3, 5]]), {
      groups: 2, epsilon: 0, gamma: tf.tensor1d([1, 2, 3, 4]), beta: tf.tensor1d([0, 10, 20, 30]),
    });
    expectClose(y, [-1, 12, 17, 34], 1e-5, 'y');
  });

  test('groupNorm channels-first (axis 1)', () => {
    // [N=1, C=2, W=2]: each channel is its own group over W.
    const y = ops.groupNorm(tf.tensor3d([[[1, 3], [10, 20]]]), {groups: 2, axis: 1, epsilon: 0});
    expectClose(y, [-1, 1, -1, 1], 1e-6, 'y');
  });

  test('groupNorm channels-first equals channels-last on the transposed input', () => {
    const x = tf.randomNormal([2, 6, 3, 4], 0, 1, 'float32', 3);
    const first = ops.groupNorm(x, {groups: 3, axis: 1});
    const last = ops.groupNorm(tf.transpose(x, [0, 2, 3, 1]), {groups: 3, axis: -1});
    expect(maxAbsDiff(tf.transpose(last, [0, 3, 1, 2]).dataSync(), first.dataSync())).toBeLessThan(1e-5);
  });

  test('instanceNorm normalizes each channel over space', () => {
    // [N=1, H=2, W=1, C=2]: channel 0 = [1, 3], channel 1 = [5, 5].
    const y = ops.instanceNorm(tf.tensor4d([[[[1, 5]], [[3, 5]]]]), {epsilon: 0});
    expectClose(y, [-1, 0, 1, 0], 1e-6, 'y');
  });

  test('layerNorm over the last axis, and over two axes', () => {
    const y = ops.layerNorm(tf.tensor2d([[1, 2, 3], [2, 4, 6]]), {epsilon: 0});
    const s = Math.sqrt(2 / 3);
    expectClose(y, [-1 / s, 0, 1 / s, -1 / s, 0, 1 / s], 1e-5, 'y');
    const y2 = ops.layerNorm(tf.tensor3d([[[1, 2], [3, 4]]]), {axis: [1, 2], epsilon: 0});
    const s2 = Math.sqrt(1.25);
    expectClose(y2, [-1.5 / s2, -0.5 / s2, 0.5 / s2, 1.5 / s2], 1e-6, 'y2');
  });

  test('layerNorm rmsScaling is Keras\'s x * rsqrt(var + eps) * gamma (no centering)', () => {
    const y = ops.layerNorm(tf.tensor2d([[1, 2, 3]]), {epsilon: 0, rmsScaling: true, gamma: tf.tensor1d([1, 1, 2])});
    const s = Math.sqrt(2 / 3);
    expectClose(y, [1 / s, 2 / s, 6 / s], 1e-5, 'y');
  });

  test('rmsNorm is x * rsqrt(mean(x^2) + eps) * gamma', () => {
    const y = ops.rmsNorm(tf.tensor2d([[3, 4]]), {epsilon: 0, gamma: tf.tensor1d([1, 2])});
    const r = Math.sqrt(12.5);
    expectClose(y, [3 / r, 8 / r], 1e-6, 'y');
  });

  test('each op returns the input shape and leaks nothing', () => {
    const x = tf.randomNormal([2, 3, 4, 6]);
    for (const f of [
      () => ops.groupNorm(x, {groups: 3}), () => ops.instanceNorm(x, {axis: 1}),
      () => ops.layerNorm(x, {axis: [3, 1]}), () => ops.rmsNorm(x, {axis: [-1, -2]}),
    ]) {
      const y = expectNoLeakSync(f);
      expect(y.shape).toEqual(x.shape);
      expect(y.dtype).toBe('float32');
      y.dispose();
    }
  });
});

describe('numerics', () => {
  test('mean 1e3, std 1e-2 normalizes to within 3e-3 of float64', () => {
    const shape = [4, 8, 8, 32];
    const xs = normals(rng(1), 4 * 8 * 8 * 32, 1e3, 1e-2);
    const ref = refForward(groupSpec(shape, 8, 3, 1e-5), xs);
    const y = ops.groupNorm(tf.tensor(xs, shape), {groups: 8, epsilon: 1e-5});
    const err = maxAbsDiff(y.dataSync(), ref);
    expect(err).toBeLessThan(3e-3);
    const ln = ops.layerNorm(tf.tensor(xs, [256, 32]), {epsilon: 1e-5});
    const lnErr = maxAbsDiff(ln.dataSync(), refForward(groupSpec([256, 32], 1, 1, 1e-5), xs));
    expect(lnErr).toBeLessThan(3e-3);
  });

  test('a constant input gives exactly beta, never NaN (epsilon 1e-3 and 0)', () => {
    const beta = tf.tensor1d([0.5, -1, 2, 3]);
    const gamma = tf.tensor1d([2, 2, 2, 2]);
    for (const epsilon of [1e-3, 0]) {
      const x = tf.fill([2, 3, 3, 4], 0.1);
      const y = ops.groupNorm(x, {groups: 2, epsilon, gamma, beta});
      const expected = Array.from({length: 72}, (_, i) => [0.5, -1, 2, 3][i % 4]);
      expect(Array.from(y.dataSync())).toEqual(expected.map(Math.fround));
      const ln = ops.layerNorm(x, {axis: -1, epsilon, gamma, beta});
      expect(Array.from(ln.dataSync())).toEqual(expected.map(Math.fround));
      // The gradient is finite too.
      const dx = tf.grad((xx: tf.Tensor) => tf.sum(ops.groupNorm(xx, {groups: 2, epsilon, gamma, beta})))(x);
      expect(Array.from(dx.dataSync()).every(Number.isFinite)).toBe(true);
    }
  });

  test('rmsNorm of zeros with epsilon 0 gives zeros, not NaN', () => {
    const y = ops.rmsNorm(tf.zeros([2, 4]), {epsilon: 0});
    expect(Array.from(y.dataSync())).toEqual(new Array(8).fill(0));
  });
});

describe('argument errors name the op, the argument, the value and what is expected', () => {
  const x = tf.zeros([2, 4, 4, 6]);
  const cases: Array<[string, () => unknown, RegExp]> = [
    ['groups 0', () => ops.groupNorm(x, {groups: 0}), /groupNorm: argument 'groups' must be a positive integer.*received 0/],
    ['groups -2', () => ops.groupNorm(x, {groups: -2}), /groupNorm: argument 'groups'.*-1 for one group per channel; received -2/],
    ['groups 1.5', () => ops.groupNorm(x, {groups: 1.5}), /argument 'groups'.*received 1.5/],
    ['groups "4"', () => ops.groupNorm(x, {groups: '4' as unknown as number}), /argument 'groups'.*received "4"/],
    ['groups not dividing', () => ops.groupNorm(x, {groups: 4}), /groupNorm: argument 'groups' must be a divisor of the number of channels \(6\): one of 1, 2, 3, 6.*received 4/],
    ['groups > C', () => ops.groupNorm(x, {groups: 12}), /divisor of the number of channels \(6\).*received 12/],
    ['axis out of range', () => ops.groupNorm(x, {groups: 1, axis: 4}), /groupNorm: argument 'axis' must be an axis in \[-4, 3\] for an input of rank 4; received 4/],
    ['axis is batch', () => ops.groupNorm(x, {groups: 1, axis: 0}), /argument 'axis' must be a channel axis other than 0, the batch axis; received 0/],
    ['rank 1', () => ops.groupNorm(tf.zeros([4]), {groups: 1}), /groupNorm: input must have rank >= 2.*\[4\]/],
    ['int32 input', () => ops.instanceNorm(tf.zeros([2, 3], 'int32')), /instanceNorm: argument 'x' must be a float32 tensor; received dtype 'int32'/],
    ['not a tensor', () => ops.layerNorm([1, 2] as unknown as tf.Tensor), /layerNorm: argument 'x' must be a tf.Tensor/],
    ['gamma shape', () => ops.groupNorm(x, {groups: 2, gamma: tf.ones([4])}), /groupNorm: argument 'gamma' must have shape \[6\]; received shape \[4\]/],
    ['beta dtype', () => ops.groupNorm(x, {groups: 2, beta: tf.ones([6], 'int32')}), /argument 'beta' must be a float32 tensor/],
    ['negative epsilon', () => ops.layerNorm(x, {epsilon: -1}), /layerNorm: argument 'epsilon' must be a finite number >= 0; received -1/],
    ['NaN epsilon', () => ops.rmsNorm(x, {epsilon: NaN}), /rmsNorm: argument 'epsilon'.*received NaN/],
    ['duplicate axes', () => ops.layerNorm(x, {axis: [1, -3]}), /layerNorm: argument 'axis' must be a list of distinct axes; received \[1,-3\]/],
    ['empty axes', () => ops.layerNorm(x, {axis: []}), /argument 'axis' must be a non-empty list of axes/],
    ['axis not integer', () => ops.rmsNorm(x, {axis: 1.5}), /rmsNorm: argument 'axis' must be an integer axis/],
    ['LN gamma shape', () => ops.layerNorm(x, {axis: [1, 2], gamma: tf.ones([16])}), /argument 'gamma' must have shape \[4,4\]; received shape \[16\]/],
    ['beta with rmsScaling', () => ops.layerNorm(x, {rmsScaling: true, beta: tf.ones([6])}), /argument 'beta' must be omitted in rmsScaling mode/],
    ['missing options', () => ops.groupNorm(x, undefined as unknown as {groups: number}), /groupNorm: argument 'opts'/],
  ];
  test.each(cases)('%s', (_name, f, message) => {
    const before = tf.memory().numTensors;
    expect(() => tf.tidy(() => {
      f();
    })).toThrow(message);
    expect(tf.memory().numTensors).toBe(before);
  });
});
