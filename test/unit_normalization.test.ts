/**
 * UnitNormalization (Keras 3) and ops.unitNorm: float64 reference, Keras's
 * literal values, analytic gradients against finite differences (at 0 too),
 * extreme magnitudes, the layer harness, save/load, Keras 3 files, errors,
 * leaks. Backend parity: test/parity/family.ts.
 */
import * as tf from '@tensorflow/tfjs';

import {layers, ops, UnitNormalization} from '../src';
import {gradsFD, unitNormRef} from './family_reference';
import {checkKeras3Fixture, expectExactRoundTrip} from './family_helpers';
import {expectClose, expectNoLeakSync, runLayerTest, useTestBackend} from './helpers';
import {normals, rng} from './reference';

beforeAll(async () => {
  await useTestBackend();
});

describe('ops.unitNorm', () => {
  test("Keras's ops.normalize docstring values: [[1,2,3],[4,5,6]]", () => {
    const y = ops.unitNorm(tf.tensor2d([[1, 2, 3], [4, 5, 6]]));
    expectClose(y, [0.26726124, 0.5345225, 0.8017837, 0.45584232, 0.5698029, 0.68376344], 1e-7, 'normalize');
    y.dispose();
  });

  test.each([
    [[3, 7], -1], [[2, 3, 4], 1], [[2, 3, 4, 2], [1, 3]], [[2, 3, 5], [2, 0]], [[5], 0],
  ] as Array<[number[], number|number[]]>)('shape %j axis %j: y and dx match float64 (finite differences)', (shape, axis) => {
    const n = shape.reduce((a, b) => a * b, 1);
    const rand = rng(shape.length * 31 + n);
    const x = normals(rand, n, 0.2, 1.3);
    const dy = normals(rand, n);
    const axes = (Array.isArray(axis) ? axis : [axis]).map((a) => (a < 0 ? a + shape.length : a));
    const f = (v: Float64Array[]) => unitNormRef(v[0], shape, axes, 1e-6);
    const xt = tf.tensor(x, shape);
    const dyt = tf.tensor(dy, shape);
    const [y, dx] = expectNoLeakSync(() => tf.tidy(() => {
      const g = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(ops.unitNorm(t, {axis}), dyt)))(xt);
      return [ops.unitNorm(xt, {axis}), g];
    }), 'unitNorm');
    expectClose(y, unitNormRef(x, shape, axes, 1e-6), 2e-7, 'y');
    expectClose(dx, gradsFD(f, [x], dy)[0], 1e-6, 'dx');
    tf.dispose([xt, dyt, y, dx]);
  });

  test('x = 0: y = 0 and dx = dy / epsilon (finite; the bound takes no gradient, as Keras)', () => {
    const dy = tf.tensor2d([[1, -2, 3], [0.5, 0.5, 0.5]]);
    const x = tf.zeros([2, 3]);
    const dx = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(ops.unitNorm(t), dy)))(x);
    expectClose(dx, [1e6, -2e6, 3e6, 5e5, 5e5, 5e5], 1e-1, 'dx at 0');
    const y = ops.unitNorm(x);
    expect(Array.from(y.dataSync())).toEqual([0, 0, 0, 0, 0, 0]);
    // A norm just below epsilon is the same linear branch; just above, the projected one.
    const small = tf.tensor2d([[3e-7, 4e-7]]);  // norm 5e-7
    expectClose(ops.unitNorm(small), [0.3, 0.4], 1e-6, 'below epsilon');
    const eps = tf.tensor2d([[3e-6, 4e-6]]);    // norm 5e-6
    expectClose(ops.unitNorm(eps), [0.6, 0.8], 1e-6, 'above epsilon');
    const dxe = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(ops.unitNorm(t), tf.tensor2d([[1, 0]]))))(eps);
    // (dy - y * (dy . y)) / ||x|| = ([1, 0] - [0.6, 0.8] * 0.6) / 5e-6
    expectClose(dxe, [0.64 / 5e-6, -0.48 / 5e-6], 1, 'dx above epsilon');
    tf.dispose([dy, x, dx, y, small, eps, dxe]);
  });

  test('epsilon option: x / max(||x||, epsilon)', () => {
    const x = tf.tensor2d([[0.3, 0.4]]);
    expectClose(ops.unitNorm(x, {epsilon: 1}), [0.3, 0.4], 1e-7, 'eps 1');
    expectClose(ops.unitNorm(x, {epsilon: 0}), [0.6, 0.8], 1e-7, 'eps 0');
    x.dispose();
  });

  test('extreme magnitudes: squares beyond float32 (1e25, 3e38) and below it (1e-30) still give unit vectors', () => {
    const big = tf.tensor2d([[3e25, -4e25], [3e38, 3e38], [1e-30, 0]]);
    const y = ops.unitNorm(big, {epsilon: 0});
    expectClose(y, [0.6, -0.8, Math.SQRT1_2, Math.SQRT1_2, 1, 0], 1e-6, 'big');
    const dx = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(ops.unitNorm(t, {epsilon: 0}), tf.tensor2d([[1, 0], [1, 0], [0, 1]]))))(big);
    // (dy - y (dy . y)) / ||x||.
    expectClose(dx.slice([0, 0], [1, 2]), [0.64 / 5e25, 0.48 / 5e25], 1e-30, 'dx big');
    expect(Array.from(dx.dataSync()).every(Number.isFinite)).toBe(true);
    tf.dispose([big, y, dx]);
  });

  test('errors name the op, the argument, the value and what was expected', () => {
    const x = tf.ones([2, 3]);
    expect(() => ops.unitNorm(x, {axis: 2})).toThrow("unitNorm: argument 'axis' must be an axis in [-2, 1] for an input of rank 2; received 2.");
    expect(() => ops.unitNorm(x, {axis: [1, -1]})).toThrow("unitNorm: argument 'axis' must be a list of distinct axes; received [1,-1].");
    expect(() => ops.unitNorm(x, {epsilon: -1})).toThrow("unitNorm: argument 'epsilon' must be a finite number >= 0; received -1.");
    expect(() => ops.unitNorm(x, {order: 1} as never)).toThrow("unitNorm: unknown key 'order' in 'opts'; known keys: axis, epsilon.");
    expect(() => ops.unitNorm(tf.scalar(1))).toThrow("unitNorm: argument 'x' must be a tensor of rank >= 1");
    expect(() => ops.unitNorm(tf.ones([2], 'int32'))).toThrow("unitNorm: argument 'x' must be a float32 tensor");
    x.dispose();
  });
});

describe('UnitNormalization layer', () => {
  test('shared layer test, axis -1', () => runLayerTest({
    cls: UnitNormalization, args: {}, inputShape: [2, 3], weights: [], configKeys: ['axis'], usesMask: false,
  }));
  test('shared layer test, axis [1, 2]', () => runLayerTest({
    cls: UnitNormalization, args: {axis: [1, 2]}, inputShape: [1, 3, 3], weights: [], configKeys: ['axis'], usesMask: false,
  }));

  test("Keras's correctness test: unit L2 norm over axis -1, (1, 2) and 1", () => {
    const sq = (t: tf.Tensor) => tf.sum(tf.square(t)).dataSync()[0];
    const a = layers.unitNormalization({axis: -1}).apply(tf.randomNormal([2, 3], 0, 1, 'float32', 1)) as tf.Tensor;
    expect(sq(a.slice([0, 0], [1, 3]))).toBeCloseTo(1, 6);
    expect(sq(a.slice([1, 0], [1, 3]))).toBeCloseTo(1, 6);
    const b = layers.unitNormalization({axis: [1, 2]}).apply(tf.randomNormal([2, 3, 3], 0, 1, 'float32', 2)) as tf.Tensor;
    expect(sq(b.slice([1, 0, 0], [1, 3, 3]))).toBeCloseTo(1, 6);
    const c = layers.unitNormalization({axis: 1}).apply(tf.randomNormal([2, 3, 2], 0, 1, 'float32', 3)) as tf.Tensor;
    for (const [i, j] of [[0, 0], [1, 0], [0, 1], [1, 1]]) expect(sq(c.slice([i, 0, j], [1, 3, 1]))).toBeCloseTo(1, 6);
    tf.dispose([a, b, c]);
  });

  test('Keras 3 epsilon: the layer bounds the norm by 1e-6', () => {
    const l = new UnitNormalization();
    const y = l.apply(tf.tensor2d([[3e-7, 4e-7]])) as tf.Tensor;
    expectClose(y, [0.3, 0.4], 1e-6, 'y');
    y.dispose();
  });

  test('masks pass through (supports_masking, as Keras)', () => {
    const model = tf.sequential({layers: [
      tf.layers.masking({maskValue: 0, inputShape: [3, 2]}), layers.unitNormalization(),
    ]});
    const mask = model.layers[1].computeMask(tf.ones([1, 3, 2]), tf.tensor2d([[1, 0, 1]], [1, 3], 'bool')) as tf.Tensor;
    expect(Array.from(mask.dataSync())).toEqual([1, 0, 1]);
    tf.dispose(mask);
    model.dispose();
  });

  test('save/load round trip in a model: exact weights and predictions', async () => {
    const model = tf.sequential({layers: [
      tf.layers.dense({units: 4, inputShape: [3]}), layers.unitNormalization({name: 'un'}), tf.layers.dense({units: 2}),
    ]});
    const x = tf.randomNormal([5, 3], 0, 1, 'float32', 4);
    const classes = await expectExactRoundTrip(model, x);
    expect(classes).toEqual(['Dense', 'UnitNormalization', 'Dense']);
    tf.dispose(x);
    model.dispose();
  });

  test.each(['keras', 'keras_keras'])('Keras 3 file (%s route) loads, predicts and differentiates as Keras, no leaks', async (route) => {
    const r = await checkKeras3Fixture('unit_norm', route);
    expect(r.weights).toBe(4);
    expect(r.predict).toBeLessThan(1e-5);
    expect(r.grad).toBeLessThan(1e-4);
    expect(r.leaked).toBe(0);
  });

  test('errors name the layer, the argument, the value and what was expected', () => {
    expect(() => new UnitNormalization({axis: {axis: -1}} as never)).toThrow(
        "UnitNormalization layer 'unit_normalization_UnitNormalization");
    expect(() => new UnitNormalization({axis: 1.5})).toThrow(/argument 'axis' must be an integer or a non-empty list of integers; received 1.5\./);
    expect(() => new UnitNormalization({axis: []})).toThrow(/argument 'axis' must be an integer or a non-empty list/);
    expect(() => new UnitNormalization({epsilon: 1e-3} as never)).toThrow(/unknown key 'epsilon' in 'args'; known keys: axis, /);
    const l = new UnitNormalization({axis: 3, name: 'un_bad'});
    expect(() => l.apply(tf.input({shape: [4]}))).toThrow(
        "UnitNormalization layer 'un_bad': argument 'axis' must be an axis in [-2, 1] for an input of rank 2; received 3.");
    expect(() => tf.serialization.SerializationMap.getMap().classNameMap.UnitNormalization[1](
        UnitNormalization as never, {name: 'x', axis: -1, order: 2})).toThrow(/unknown key 'order' in 'config'/);
  });
});
