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

/** Elementwise |got - want| <= tol * max(|want|, max|want| * 1e-6): relative, for values of any size. */
function expectRel(got: tf.Tensor, want: number[], tol: number, what: string): void {
  const g = got.dataSync();
  const scale = Math.max(...want.map(Math.abs));
  want.forEach((v, i) => {
    if (!(Math.abs(g[i] - v) <= tol * Math.max(Math.abs(v), scale * 1e-6))) {
      throw new Error(`${what}: element ${i} is ${g[i]}, expected ${v} (relative tolerance ${tol})`);
    }
  });
}

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
    const f = (v: Float64Array[]) => unitNormRef(v[0], shape, axes, 1e-12);
    const xt = tf.tensor(x, shape);
    const dyt = tf.tensor(dy, shape);
    const [y, dx] = expectNoLeakSync(() => tf.tidy(() => {
      const g = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(ops.unitNorm(t, {axis}), dyt)))(xt);
      return [ops.unitNorm(xt, {axis}), g];
    }), 'unitNorm');
    expectClose(y, unitNormRef(x, shape, axes, 1e-12), 2e-7, 'y');
    expectClose(dx, gradsFD(f, [x], dy)[0], 1e-6, 'dx');
    tf.dispose([xt, dyt, y, dx]);
  });

  test('x = 0: y = 0 and dx = dy / epsilon (finite; the bound takes no gradient, as Keras)', () => {
    const dy = tf.tensor2d([[1, -2, 3], [0.5, 0.5, 0.5]]);
    const x = tf.zeros([2, 3]);
    const dx = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(ops.unitNorm(t), dy)))(x);
    // Keras 3.15 (float32 and float64): dx = dy * 1e12 at x = 0.
    expectRel(dx, [1e12, -2e12, 3e12, 5e11, 5e11, 5e11], 1e-6, 'dx at 0');
    const y = ops.unitNorm(x);
    expect(Array.from(y.dataSync())).toEqual([0, 0, 0, 0, 0, 0]);
    // A norm just below epsilon (1e-12) is the same linear branch; above it, the projected one.
    const small = tf.tensor2d([[3e-13, 4e-13]]);  // norm 5e-13
    expectClose(ops.unitNorm(small), [0.3, 0.4], 1e-6, 'below epsilon');
    const eps = tf.tensor2d([[3e-9, 4e-9]]);    // norm 5e-9
    expectClose(ops.unitNorm(eps), [0.6, 0.8], 1e-6, 'above epsilon');
    const dxe = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(ops.unitNorm(t), tf.tensor2d([[1, 0]]))))(eps);
    // (dy - y * (dy . y)) / ||x|| = ([1, 0] - [0.6, 0.8] * 0.6) / 5e-9
    expectRel(dxe, [0.64 / 5e-9, -0.48 / 5e-9], 1e-6, 'dx above epsilon');
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

  /**
   * Keras 3.15.1 (TensorFlow backend, float64): UnitNormalization(axis) on x, the gradient dx of
   * sum(y * dy + y^3 / 3) (dy depends on x, as in a gradient penalty) and the gradient of sum(dx * w)
   * (second order), by nested GradientTapes (tmp script; the numbers are pasted here). Keras's bound on
   * the norm is 1e-12: the row [3e-9, 4e-9, 0] is a unit vector (it was [3e-3, 4e-3, 0] with 1e-6), the
   * row [3e-13, 4e-13, 0] is x * 1e12.
   */
  test.each([
    {axis: -1, x: [[0.3, -1.2, 0.7], [3e-9, 4e-9, 0]], dy: [[1, -2, 3], [1, -2, 3]], w: [[0.5, 1, -1], [0.5, 1, -1]],
      y: [0.21107926341908756, -0.8443170536763502, 0.4925182813112043, 0.6, 0.8, 0.0],
      dx: [0.30362085990616067, 0.8196797590015478, 1.2750420754714415, 304640000.0, -228479999.99999997, 600000000.0],
      h: [-0.60684034248966, 0.5447327077281412, 1.6275474836249733, 3775999999999992.0, 1.66208e+17, -1.4288e+17]},
    {axis: -1, x: [[3e-13, 4e-13, 0], [0, 0, 0]], dy: [[1, -2, 3], [1, -2, 3]], w: [[0.5, 1, -1], [0.5, 1, -1]],
      y: [0.3, 0.4, 0, 0, 0, 0],
      dx: [1090000000000.0001, -1839999999999.9998, 3000000000000.0, 1e12, -2e12, 3e12],
      // Keras's second order at x = 0 is NaN (rsqrt(0) = Inf times a zero gradient); this op's is 0, the
      // derivative of its linear branch's dx = (dy + y²) / epsilon at y = 0.
      h: [3e+23, 8e+23, 0, 0, 0, 0]},
    {axis: [1, 2], x: [[[0.3, -1.2], [0.7, 2.0]], [[1.5, 0.2], [-0.4, 0.9]]], dy: [[[1, -2], [3, 0.5]], [[-1, 2], [0.3, 0.7]]],
      w: [[[0.5, 1], [-1, 2]], [[1, 1], [-0.5, 0.3]]],
      y: [0.12227087189088336, -0.4890834875635334, 0.28529870107872785, 0.8151391459392224, 0.830773163432567,
        0.11076975512434227, -0.22153951024868454, 0.49846389805954017],
      dx: [0.2734509733016606, -0.15680009089776903, 0.9287220440077837, -0.4601504159366347, -0.33767390018827187,
        1.092348879728113, 0.23762611870768843, 0.42565724646651176],
      h: [-0.21852963813445223, -1.0505467816989356, 0.23775374736203791, 0.2537863051880893, -0.08818726622991299,
        -0.8059966383249054, -0.01690663644359033, -0.5298239129928175]},
  ])("Keras 3.15's values, first and second order, axis $axis (norm bound 1e-12)", ({axis, x, dy, w, y, dx, h}) => {
    const l = new UnitNormalization({axis});
    const xt = tf.tensor(x), dyt = tf.tensor(dy), wt = tf.tensor(w);
    const first = (t: tf.Tensor) => tf.grad((u: tf.Tensor) => {
      const out = l.apply(u) as tf.Tensor;
      return tf.sum(tf.add(tf.mul(out, dyt), tf.div(tf.pow(out, 3), 3)));
    })(t);
    const [yt, dxt, ht] = expectNoLeakSync(() => tf.tidy(() => [
      l.apply(xt) as tf.Tensor, first(xt), tf.grad((u: tf.Tensor) => tf.sum(tf.mul(first(u), wt)))(xt),
    ]), 'UnitNormalization second order');
    expectClose(yt, y, 1e-6, 'y');
    expectRel(dxt, dx, 2e-6, 'dx');
    expectRel(ht, h, 2e-5, 'second order');
    tf.dispose([xt, dyt, wt, yt, dxt, ht]);
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
