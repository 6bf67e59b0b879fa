/**
 * FilterResponseNormalization and TLU (TensorFlow Addons) and
 * ops.filterResponseNorm: the float64 reference of TFA's math
 * (test/family_reference.ts) with finite-difference gradients (x, gamma,
 * beta, learned epsilon, tau, alpha), TFA's own test values, weights and
 * configs as TFA, the converter's format (`Addons>...` classes), the layer
 * harness, save/load, errors, leaks. TFA cannot be installed here, so there
 * are no TFA-generated numbers. Backend parity: test/parity/family.ts.
 */
import * as tf from '@tensorflow/tfjs';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import {FilterResponseNormalization, io, layers, ops, TLU} from '../src';
import {frnRef, gradsFD, tluRef} from './family_reference';
import {expectExactRoundTrip} from './family_helpers';
import {expectClose, expectNoLeakSync, runLayerTest} from './helpers';
import {normals, rng} from './reference';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

const FRN_KEYS = ['axis', 'epsilon', 'learnedEpsilon', 'betaInitializer', 'gammaInitializer', 'betaRegularizer',
  'gammaRegularizer', 'betaConstraint', 'gammaConstraint', 'learnedEpsilonConstraint'];

/** y and the gradients of sum(y * dy) for x and every weight of a built layer, after setting its weights. */
function layerGrads(layer: tf.layers.Layer, x: tf.Tensor, dy: tf.Tensor, weights: Float32Array[]): Float32Array[] {
  tf.dispose(layer.apply(x) as tf.Tensor);  // builds the layer (its weights stay)
  return expectNoLeakSync(() => {
    const values = layer.weights.map((w, i) => tf.tensor(weights[i], w.shape as number[]));
    layer.setWeights(values);
    tf.dispose(values);
    const xv = tf.variable(x);
    const vars = layer.weights.map((w) => w.read() as tf.Variable);
    const y = layer.apply(x) as tf.Tensor;
    const {value, grads} = tf.variableGrads(() => tf.sum(tf.mul(layer.apply(xv) as tf.Tensor, dy)) as tf.Scalar, [xv, ...vars]);
    const out = [y, grads[xv.name], ...vars.map((v) => grads[v.name])].map((t) => t.dataSync() as Float32Array);
    tf.dispose([y, xv, value, ...Object.values(grads)]);
    return out;
  }, layer.getClassName());
}

describe('FilterResponseNormalization', () => {
  test.each([
    ['[2,3,4,5]', [2, 3, 4, 5], false, 1e-6],
    ['[1,5,2,3] learned epsilon', [1, 5, 2, 3], true, 1e-6],
    ['[2,2,2,4] large epsilon 0.5', [2, 2, 2, 4], false, 0.5],
    ['[2,3,3,2] mean 1e3 std 30, learned epsilon', [2, 3, 3, 2], true, 1e-6],
  ] as Array<[string, number[], boolean, number]>)('%s: y and the gradients (x, weights) match float64 and finite differences', (name, shape, learned, epsilon) => {
    const n = shape.reduce((a, b) => a * b, 1);
    const C = shape[3];
    const rand = rng(n * 3 + C);
    const big = name.includes('1e3');
    const x = normals(rand, n, big ? 1e3 : 0.2, big ? 30 : 1.4);
    const dy = normals(rand, n);
    const gamma = normals(rand, C, 1, 0.4);
    const beta = normals(rand, C, 0, 0.5);
    const eps = Float32Array.of(0.03);
    const weights = learned ? [eps, gamma, beta] : [gamma, beta];
    const layer = new FilterResponseNormalization({epsilon, learnedEpsilon: learned});
    const got = layerGrads(layer, tf.tensor(x, shape), tf.tensor(dy, shape), weights);
    expect(layer.weights.map((w) => w.name.split('/').pop()?.replace(/_\d+$/, ''))).toEqual(learned ? ['learned_epsilon', 'gamma', 'beta'] : ['gamma', 'beta']);
    const f = (v: Float64Array[]) => (learned ? frnRef(v[0], shape, epsilon, v[2], v[3], v[1][0]) : frnRef(v[0], shape, epsilon, v[1], v[2], null));
    const inputs = [x, ...weights];
    const ref = [f(inputs.map((a) => Float64Array.from(a))), ...gradsFD(f, inputs, dy)];
    const what = ['y', 'dx', ...(learned ? ['dlearned_epsilon'] : []), 'dgamma', 'dbeta'];
    got.forEach((g, i) => expectClose(g, ref[i], 5e-5 * Math.max(1, ...Array.from(ref[i], Math.abs)), `${name} ${what[i]}`));
  });

  test("TFA's tests: beta 1 / gamma 1, beta 0, beta 0.5 with learned epsilon (1e-6 + 1e-4), [1, 28, 28, 1]", () => {
    const rand = rng(2020);
    const x = Float32Array.from({length: 28 * 28}, () => rand());
    const shape = [1, 28, 28, 1];
    const xt = tf.tensor(x, shape);
    const cases: Array<[Record<string, unknown>, number, boolean]> = [
      [{betaInitializer: 'ones', gammaInitializer: 'ones'}, 1, false],
      [{betaInitializer: 'zeros', gammaInitializer: 'ones'}, 0, false],
      [{betaInitializer: tf.initializers.constant({value: 0.5}), gammaInitializer: 'ones', learnedEpsilon: true}, 0.5, true],
    ];
    for (const [args, b, learned] of cases) {
      const y = new FilterResponseNormalization(args).apply(xt) as tf.Tensor;
      expectClose(y, frnRef(x, shape, 1e-6, [1], [b], learned ? 1e-4 : null), 2e-6, JSON.stringify(args));
      y.dispose();
    }
    xt.dispose();
  });

  test("TFA's compute_output_shape test: two variables, both trainable; learned epsilon makes three", () => {
    const a = new FilterResponseNormalization();
    a.build([8, 28, 28, 16]);
    expect([a.weights.length, a.trainableWeights.length]).toEqual([2, 2]);
    expect(a.weights.map((w) => w.shape)).toEqual([[1, 1, 1, 16], [1, 1, 1, 16]]);
    const b = new FilterResponseNormalization({learnedEpsilon: true});
    b.build([8, 28, 28, 16]);
    expect(b.weights.map((w) => [w.name.split('/').pop()?.replace(/_\d+$/, ''), w.shape])).toEqual(
        [['learned_epsilon', [1]], ['gamma', [1, 1, 1, 16]], ['beta', [1, 1, 1, 16]]]);
    expect(Array.from(b.weights[0].read().dataSync())).toEqual([Math.fround(1e-4)]);
  });

  test("TFA's eps gradient test: a training step moves the learned epsilon", async () => {
    const model = tf.sequential({layers: [
      layers.filterResponseNormalization({betaInitializer: 'ones', gammaInitializer: 'ones', learnedEpsilon: true, inputShape: [8, 8, 3]}),
      tf.layers.flatten(), tf.layers.dense({units: 1, activation: 'sigmoid'}),
    ]});
    model.compile({loss: 'binaryCrossentropy', optimizer: tf.train.sgd(0.5)});
    const before = model.layers[0].weights[0].read().dataSync()[0];
    // Small inputs, so that the mean square is near epsilon and epsilon matters.
    const x = tf.randomUniform([10, 8, 8, 3], 0, 0.02, 'float32', 1);
    const yl = tf.tensor2d([[0], [1], [0], [1], [1], [0], [0], [1], [1], [0]]);
    await model.fit(x, yl, {epochs: 1, batchSize: 10, verbose: 0});
    expect(model.layers[0].weights[0].read().dataSync()[0]).not.toBe(before);
    tf.dispose([x, yl]);
    model.dispose();
  });

  /**
   * TFA's call() (normalizations.py, reimplemented in TensorFlow 2.21 float64: TFA does not install here):
   * epsilon 1e-3, learned epsilon 0.05 and 0, x [1, 2, 2, 2]; the gradients of sum(y * dy + y³ / 3) for x,
   * gamma, beta and learned_epsilon, and the gradients of sum(dx * w) + sum(dgamma) + sum(dlearned) for all
   * four (second order), by nested GradientTapes (tmp script; the numbers are pasted here). At learned 0
   * TensorFlow's abs passes no gradient (sign(0) = 0); tfjs's Abs gradient there is -dy.
   */
  test.each([
    {learned: 0.05,
      y: [0.8175857969648795, -1.1345802722104672, 2.252757390894639, -0.013083945557906568, -0.3305514781789277,
        0.5476642177683737, 0.17175857969648795, -0.7607481633262803],
      g: [[0.018303029671915105, 0.6380914743463897, 0.5853144334671239, 1.8888560896782642, -0.13967049586767621,
        0.7322886858113564, 0.8093387224713098, 0.5757282635658357], [11.075091014716936, -0.31312703558954824],
      [6.682127687054747, 4.166117447148694], [-9.309460627640751]],
      h: [[2.5250935415727165, 2.533665016880626, 10.24369864611294, 2.4934227734466163, -6.620809523817324,
        1.0496244215758261, -1.852366576968028, 1.019271334018586], [-5.201046553682826, 2.4521610791748985],
      [1.558041193159034, 1.1746194314419165], [2.823613912943967]]},
    {learned: 0,
      y: [0.8447098233342549, -1.1792364931869324, 2.334129470002765, -0.004152701362613531, -0.34682589400055297,
        0.583389194549546, 0.1744709823334255, -0.7875418959121594],
      g: [[-0.26990757483003014, 0.713793227208783, 0.09518360364875633, 1.99015257870475, 0.0851039139759584,
        0.8516216582526077, 0.8057238908319616, 0.6102797820726711], [12.212550338248931, -0.4622754998250762],
      [7.11242339279845, 4.351181141926507], [0]],
      h: [[-3.6678473238805216, 4.594527312982737, 0.5005036425946194, 4.823341301198281, -2.7166224918367425,
        3.9031830317354523, -2.446412556997476, 1.8951253859838122], [18.20873952288794, -0.5806692867940808],
      [10.549686994966146, 5.354943654453709], [0]]},
  ])('learned epsilon $learned: y, first- and second-order gradients (x, gamma, beta, learned_epsilon) as TFA in float64', (c) => {
    const shape = [1, 2, 2, 2];
    const x = tf.tensor([0.5, -1.0, 1.5, 0.2, -0.3, 0.8, 0.05, -0.6], shape);
    const dy = tf.tensor([1.0, -0.5, 0.3, 2.0, -1.2, 0.4, 0.7, 0.1], shape);
    const w = tf.tensor([0.2, 1.0, -0.5, 0.3, 0.9, -0.4, 0.6, 1.1], shape);
    const layer = new FilterResponseNormalization({epsilon: 1e-3, learnedEpsilon: true});
    tf.dispose(layer.apply(x) as tf.Tensor);
    const values = [tf.tensor1d([c.learned]), tf.tensor([1.2, 0.7], [1, 1, 1, 2]), tf.tensor([0.1, -0.2], [1, 1, 1, 2])];
    layer.setWeights(values);
    tf.dispose(values);
    const [eps, gamma, beta] = layer.weights.map((v) => v.read() as tf.Variable);
    const xv = tf.variable(x);
    const all = [xv, gamma, beta, eps];
    const inner = () => {
      const y = layer.apply(xv) as tf.Tensor;
      return tf.sum(tf.add(tf.mul(y, dy), tf.div(tf.pow(y, 3), 3))) as tf.Scalar;
    };
    const got = expectNoLeakSync(() => tf.tidy(() => {
      const first = tf.variableGrads(inner, all).grads;
      const second = tf.variableGrads(() => {
        const gi = tf.variableGrads(inner, all).grads;
        return tf.addN([tf.sum(tf.mul(gi[xv.name], w)), tf.sum(gi[gamma.name]), tf.sum(gi[eps.name])]) as tf.Scalar;
      }, all).grads;
      return [layer.apply(xv) as tf.Tensor, ...all.map((v) => first[v.name]), ...all.map((v) => second[v.name])];
    }), 'FRN second order');
    const rel = (t: tf.Tensor, want: number[], tol: number, what: string) => {
      const scale = Math.max(1, ...want.map(Math.abs));
      expectClose(t, want, tol * scale, what);
    };
    rel(got[0], c.y, 1e-6, 'y');
    ['dx', 'dgamma', 'dbeta', 'dlearned'].forEach((n, i) => rel(got[1 + i], c.g[i], 1e-5, n));
    ['second order x', 'gamma', 'beta', 'learned'].forEach((n, i) => rel(got[5 + i], c.h[i], 1e-5, n));
    tf.dispose([x, dy, w, xv, ...got]);
    layer.dispose();
  });

  test('extreme magnitudes: squares beyond float32 (3e20) and far below epsilon (1e-30) give TFA\'s float64 values', () => {
    const x = tf.tensor4d([3e20, 4e20, 0, 0, 1e-30, -2e-30, 0, 0], [2, 2, 2, 1]);
    const y = ops.filterResponseNorm(x);
    // mean(x²) = 6.25e40: y = x / 2.5e20; below epsilon: y = x / sqrt(mean(x²) + 1e-6) ~ x * 1e3.
    expectClose(y, frnRef(x.dataSync(), [2, 2, 2, 1], 1e-6, [1], [0], null), 1e-6, 'y');
    expect(Array.from(y.dataSync()).slice(0, 2)).toEqual([Math.fround(1.2), Math.fround(1.6)]);
    const dx = tf.grad((t: tf.Tensor) => tf.sum(ops.filterResponseNorm(t as tf.Tensor4D)))(x);
    expect(Array.from(dx.dataSync()).every(Number.isFinite)).toBe(true);
    tf.dispose([x, y, dx]);
  });

  // TFA's normalizations.py (tensorflow/addons@2f10b9e): `self.epsilon = epsilon` (line 398) is stored as given and
  // written to the config as is (line 450); only call() takes tf.math.abs of it (line 440).
  test('negative epsilon counts as |epsilon| (TFA takes abs in call); the config holds epsilon as given, as TFA\'s', () => {
    const x = tf.randomNormal([1, 2, 2, 2], 0, 1e-3, 'float32', 5);
    const a = new FilterResponseNormalization({epsilon: -1e-4}).apply(x) as tf.Tensor;
    const b = new FilterResponseNormalization({epsilon: 1e-4}).apply(x) as tf.Tensor;
    expect(Array.from(a.dataSync())).toEqual(Array.from(b.dataSync()));
    expect(new FilterResponseNormalization({epsilon: -1e-4}).getConfig().epsilon).toBe(-1e-4);
    expect(FilterResponseNormalization.fromConfig(FilterResponseNormalization, {epsilon: -1e-4}).getConfig().epsilon).toBe(-1e-4);
    tf.dispose([x, a, b]);
  });

  test('ops.filterResponseNorm: gamma/beta of [C] or [1,1,1,C], tensor epsilon differentiable, no leaks', () => {
    const x = tf.randomNormal([2, 3, 3, 4], 0, 1, 'float32', 6) as tf.Tensor4D;
    const g4 = tf.randomUniform([1, 1, 1, 4], 0.5, 1.5, 'float32', 7);
    const b4 = tf.randomUniform([1, 1, 1, 4], -1, 1, 'float32', 8);
    const y4 = ops.filterResponseNorm(x, {gamma: g4, beta: b4});
    const y1 = ops.filterResponseNorm(x, {gamma: g4.reshape([4]), beta: b4.reshape([4])});
    expect(Array.from(y1.dataSync())).toEqual(Array.from(y4.dataSync()));
    const e = tf.tensor1d([0.2]);
    const de = expectNoLeakSync(() => tf.grad((t: tf.Tensor) => tf.sum(ops.filterResponseNorm(x, {epsilon: t})))(e), 'deps');
    const f = (v: Float64Array[]) => frnRef(x.dataSync(), x.shape, 0, [1, 1, 1, 1], [0, 0, 0, 0], v[0][0]);
    expectClose(de, gradsFD(f, [[0.2]], new Float64Array(x.size).fill(1))[0], 1e-3, 'deps');
    tf.dispose([x, g4, b4, y4, y1, e, de]);
  });

  test('errors name the layer or op, the argument, the value and what was expected', () => {
    expect(() => new FilterResponseNormalization({axis: [1, 3]})).toThrow(
        /argument 'axis' must be \[1, 2\] \(TensorFlow Addons normalizes each channel over the spatial axes of \[N, H, W, C\] only\); received \[1,3\]\./);
    expect(() => new FilterResponseNormalization({epsilon: Infinity})).toThrow(/argument 'epsilon' must be a finite number/);
    expect(() => new FilterResponseNormalization({learnedEpsilon: 1} as never)).toThrow(/argument 'learnedEpsilon' must be true or false; received 1\./);
    expect(() => new FilterResponseNormalization({center: true} as never)).toThrow(/unknown key 'center' in 'args'/);
    const l = new FilterResponseNormalization({name: 'frn_bad'});
    expect(() => l.apply(tf.input({shape: [4, 3]}))).toThrow(
        "Addons>FilterResponseNormalization layer 'frn_bad': expects inputs of rank 4, [batch, height, width, channels]");
    expect(() => ops.filterResponseNorm(tf.ones([2, 3]) as never)).toThrow(/filterResponseNorm: argument 'x' must be a tensor of rank 4/);
    expect(() => ops.filterResponseNorm(tf.ones([1, 2, 2, 3]) as tf.Tensor4D, {gamma: tf.ones([1, 2])})).toThrow(
        "filterResponseNorm: argument 'gamma' must have shape [1,1,1,3]; received shape [1,2].");
    expect(() => ops.filterResponseNorm(tf.ones([1, 2, 2, 3]) as tf.Tensor4D, {epsilon: tf.ones([2])})).toThrow(
        /argument 'epsilon' must be a number or a tensor of one element; received \[2\]\./);
  });
});

describe('TLU', () => {
  test("TFA's tests: [[-2.5, 0, 0.3]] -> [[0, 0, 0.3]]; affine with ones -> [[-1.5, 1, 1.3]]", () => {
    const x = tf.tensor2d([[-2.5, 0, 0.3]]);
    const a = layers.tlu().apply(x) as tf.Tensor;
    expectClose(a, [0, 0, 0.3], 1e-7, 'tlu');
    const b = layers.tlu({affine: true, alphaInitializer: 'ones', tauInitializer: 'ones'}).apply(x) as tf.Tensor;
    expectClose(b, [-1.5, 1, 1.3], 1e-7, 'affine');
    tf.dispose([x, a, b]);
  });

  test.each([false, true])('affine %s: y and the gradients (x, tau, alpha) match float64 and finite differences', (affine) => {
    const shape = [3, 4, 2];
    const n = 24;
    const rand = rng(affine ? 11 : 12);
    const x = normals(rand, n, 0, 1.5);
    const dy = normals(rand, n);
    const tau = normals(rand, 8, 0, 0.7);
    const alpha = normals(rand, 8, 0.3, 0.4);
    // Away from the kink max(x, t) has at x = t (finite differences mean nothing there).
    for (let i = 0; i < n; i++) {
      const t = (affine ? alpha[i % 8] * x[i] : 0) + tau[i % 8];
      if (Math.abs(x[i] - t) < 1e-3) x[i] += 0.01;
    }
    const weights = affine ? [tau, alpha] : [tau];
    const layer = new TLU({affine});
    const got = layerGrads(layer, tf.tensor(x, shape), tf.tensor(dy, shape), weights);
    expect(layer.weights.map((w) => [w.name.split('/').pop()?.replace(/_\d+$/, ''), w.shape])).toEqual(affine ? [['tau', [4, 2]], ['alpha', [4, 2]]] : [['tau', [4, 2]]]);
    const f = (v: Float64Array[]) => tluRef(v[0], shape, v[1], affine ? v[2] : null);
    const inputs = [x, ...weights];
    [f(inputs.map((a) => Float64Array.from(a))), ...gradsFD(f, inputs, dy)].forEach((r, i) => expectClose(got[i], r, 1e-5, `q${i}`));
  });

  // TensorFlow 2.21 (float32 and float64 alike): tf.maximum(x, tau) and tf.maximum(x, alpha * x + tau) with
  // NaN in x and in tau, and the gradients of sum(y) (tmp script; the numbers are pasted here). TensorFlow's
  // Maximum gradient goes to the second argument wherever x >= it is false, NaN comparisons included.
  test.each([
    {affine: false, y: [NaN, NaN, 1, 0, NaN], dx: [0, 0, 1, 0, 0], dtau: [1, 1, 0, 1, 1], dalpha: []},
    {affine: true, y: [NaN, NaN, 1, 2, NaN], dx: [0.1, 0.2, 1, -1, 0.5], dtau: [1, 1, 0, 1, 1], dalpha: [NaN, 0.5, 0, -2, NaN]},
  ])('affine $affine, NaN in x and tau: y and the gradients of x, tau, alpha are TensorFlow\'s', ({affine, y, dx, dtau, dalpha}) => {
    const layer = new TLU({affine});
    const x = tf.tensor2d([[NaN, 0.5, 1, -2, NaN]]);
    tf.dispose(layer.apply(x) as tf.Tensor);
    const values = [tf.tensor1d([0.5, NaN, 1, 0, 0.2]), ...(affine ? [tf.tensor1d([0.1, 0.2, 0, -1, 0.5])] : [])];
    layer.setWeights(values);
    tf.dispose(values);
    const xv = tf.variable(x);
    const vars = layer.weights.map((w) => w.read() as tf.Variable);
    const got = expectNoLeakSync(() => tf.tidy(() => {
      const {grads} = tf.variableGrads(() => tf.sum(layer.apply(xv) as tf.Tensor) as tf.Scalar, [xv, ...vars]);
      return [layer.apply(x) as tf.Tensor, grads[xv.name], ...vars.map((v) => grads[v.name])];
    }), 'TLU');
    const same = (t: tf.Tensor, want: number[], what: string) => Array.from(t.dataSync()).forEach((v, i) => {
      if (Number.isNaN(want[i])) expect(v).toBeNaN();
      else if (Math.abs(v - want[i]) > 1e-7) throw new Error(`${what}[${i}] = ${v}, TensorFlow ${want[i]}`);
    });
    same(got[0], y, 'y');
    same(got[1], dx, 'dx');
    same(got[2], dtau, 'dtau');
    if (affine) same(got[3], dalpha, 'dalpha');
    tf.dispose([x, xv, ...got]);
    layer.dispose();
  });

  test('second order through TLU affine: d/dalpha of sum(w * dx) is w * dy where the affine branch wins', () => {
    const layer = new TLU({affine: true});
    const x = tf.tensor2d([[-1, 2, -0.5, 3]]);
    tf.dispose(layer.apply(x) as tf.Tensor);
    const values = [tf.tensor1d([0.5, 0.1, 0, 5]), tf.tensor1d([0.3, 0.2, -1, 0.5])];
    layer.setWeights(values);
    tf.dispose(values);
    const [, alpha] = layer.weights.map((w) => w.read() as tf.Variable);
    const dy = tf.tensor2d([[1, -2, 0.5, 4]]);
    const w = tf.tensor2d([[0.7, 1.1, -0.3, 2]]);
    const h = expectNoLeakSync(() => tf.tidy(() => tf.variableGrads(() => {
      const dx = tf.grad((u: tf.Tensor) => tf.sum(tf.mul(layer.apply(u) as tf.Tensor, dy)))(x);
      return tf.sum(tf.mul(dx, w)) as tf.Scalar;
    }, [alpha]).grads[alpha.name]), 'TLU second order');
    // Thresholds alpha * x + tau: [0.2, 0.5, 0.5, 6.5]; the affine branch wins at 0 (x = -1 < 0.2), 2 (-0.5 < 0.5)
    // and 3 (3 < 6.5), where dx = alpha * dy, so d/dalpha sum(w * dx) = w * dy there and 0 at 1.
    expectClose(h, [0.7, 0, -0.15, 8], 1e-6, 'd2');
    tf.dispose([x, dy, w, h]);
    layer.dispose();
  });

  test('at a tie (x equal to the threshold) the gradient goes to x, as tf.maximum in TensorFlow', () => {
    const layer = new TLU();
    const x = tf.tensor2d([[0, 1]]);
    const got = layerGrads(layer, x, tf.ones([1, 2]), [Float32Array.of(0, 2)]);
    expect(Array.from(got[1])).toEqual([1, 0]);  // dx
    expect(Array.from(got[2])).toEqual([0, 1]);  // dtau
  });

  test('config: the alpha keys only when affine (as TFA)', () => {
    expect(Object.keys(new TLU().getConfig())).not.toContain('alphaInitializer');
    expect(new TLU({affine: true}).getConfig()).toMatchObject({affine: true, alphaInitializer: {className: 'Zeros'}});
  });

  test('errors', () => {
    expect(() => new TLU({affine: 'yes'} as never)).toThrow(/Addons>TLU layer '.*': argument 'affine' must be true or false; received "yes"\./);
    expect(() => new TLU({tauInitializer: 'nope'})).toThrow(/argument 'tauInitializer' must be a known initializer; 'nope' is not registered/);
    expect(() => new TLU({name: 'tlu_bad'}).apply(tf.input({batchShape: [null, null, 3]}))).toThrow(
        "Addons>TLU layer 'tlu_bad': every axis but the batch axis must be defined");
  });
});

describe('layer harness, save/load and the converter format', () => {
  test('shared layer test: FRN', () => runLayerTest({
    cls: FilterResponseNormalization, args: {}, inputShape: [2, 3, 4, 5],
    weights: [['gamma', [1, 1, 1, 5]], ['beta', [1, 1, 1, 5]]], configKeys: FRN_KEYS, usesMask: false,  // as TFA's, it ignores masks
  }));
  test('shared layer test: FRN with learned epsilon, regularizers and constraints', () => runLayerTest({
    cls: FilterResponseNormalization,
    args: {learnedEpsilon: true, learnedEpsilonConstraint: 'nonNeg', gammaRegularizer: 'l1l2', betaConstraint: {className: 'NonNeg', config: {}}},
    inputShape: [2, 3, 3, 2], weights: [['learned_epsilon', [1]], ['gamma', [1, 1, 1, 2]], ['beta', [1, 1, 1, 2]]], configKeys: FRN_KEYS,
    usesMask: false,
  }));
  test('shared layer test: TLU affine', () => runLayerTest({
    cls: TLU, args: {affine: true, tauRegularizer: 'l1l2'}, inputShape: [2, 3, 4], weights: [['tau', [3, 4]], ['alpha', [3, 4]]],
    configKeys: ['affine', 'tauInitializer', 'tauRegularizer', 'tauConstraint', 'alphaInitializer', 'alphaRegularizer', 'alphaConstraint'],
  }));

  test('save/load round trip: FRN (learned epsilon) -> TLU affine, exact weights and predictions', async () => {
    const model = tf.sequential({layers: [
      tf.layers.conv2d({filters: 4, kernelSize: 3, padding: 'same', inputShape: [5, 5, 2]}),
      layers.filterResponseNormalization({learnedEpsilon: true}), layers.tlu({affine: true}),
      layers.filterResponseNormalization(), layers.tlu(),
    ]});
    model.layers.slice(1).forEach((l, k) => l.setWeights(l.weights.map((w, i) => tf.randomUniform(w.shape as number[], 0.1, 1, 'float32', 10 * k + i))));
    const x = tf.randomNormal([2, 5, 5, 2], 0, 1, 'float32', 3);
    const classes = await expectExactRoundTrip(model, x);
    expect(classes).toEqual(['Conv2D', 'Addons>FilterResponseNormalization', 'Addons>TLU', 'Addons>FilterResponseNormalization', 'Addons>TLU']);
    tf.dispose(x);
    model.dispose();
  });

  test('a converted TensorFlow Addons model (test/fixtures/converted/tfa-frn-tlu.json) loads and computes TFA\'s math', async () => {
    const json = JSON.parse(fs.readFileSync(path.join(__dirname, 'fixtures', 'converted', 'tfa-frn-tlu.json'), 'utf8'));
    const specs = json.weightsManifest[0].weights as tf.io.WeightsManifestEntry[];
    const rand = rng(77);
    const w: Record<string, Float32Array> = {};
    for (const s of specs) w[s.name] = normals(rand, s.shape.reduce((a, b) => a * b, 1), /gamma|alpha/.test(s.name) ? 0.8 : 0, 0.4);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tfjs-norm-frn-'));
    try {
      fs.writeFileSync(path.join(dir, 'model.json'), JSON.stringify(json));
      fs.writeFileSync(path.join(dir, 'group1-shard1of1.bin'), Buffer.concat(specs.map((s) => Buffer.from(w[s.name].buffer))));
      const before = tf.memory().numTensors;
      const model = await io.loadLayersModel(path.join(dir, 'model.json'));
      expect(model.layers.slice(1).map((l) => l.constructor)).toEqual([FilterResponseNormalization, TLU, FilterResponseNormalization, TLU]);
      const shape = [2, 4, 4, 3];
      const x = normals(rng(3), 96, 0.2, 1.5);
      const y = model.predict(tf.tensor(x, shape)) as tf.Tensor;
      // TFA's learned_epsilon is unprefixed in its files (created in __init__): io.loadLayersModel gives it to frn_eps.
      expect(model.getLayer('frn_eps').weights[0].read().dataSync()[0]).toBe(w['learned_epsilon'][0]);
      let r = frnRef(x, shape, 1e-6, w['frn_eps/gamma'], w['frn_eps/beta'], w['learned_epsilon'][0]);
      r = tluRef(r, shape, w['tlu_affine/tau'], w['tlu_affine/alpha']);
      r = frnRef(r, shape, 1e-6, w['frn/gamma'], w['frn/beta'], null);
      r = tluRef(r, shape, w['tlu/tau'], null);
      expectClose(y, r, 5e-5, 'converted FRN/TLU');
      tf.dispose(y);
      model.dispose();
      expect(tf.memory().numTensors).toBe(before + 1);  // the input tensor made inline above
    } finally {
      fs.rmSync(dir, {recursive: true, force: true});
    }
  });
  test('a manifest named as TFA\'s converted files name it: two FRNs with learned epsilon, each listing a bare learned_epsilon', async () => {
    // tensorflow/addons tensorflow_addons/layers/normalizations.py @2f10b9e: FilterResponseNormalization.__init__
    // creates learned_epsilon (add_weight(shape=(1,), name="learned_epsilon"), lines 413-415) outside the name
    // scope tf.keras 2 opens while a layer builds, so its variable is 'learned_epsilon:0'; gamma and beta
    // (add_weight in build, lines 427-437) are '<layer>/gamma:0', '<layer>/beta:0', all [1, 1, 1, C]. The
    // converter drops ':0' and writes each layer's weights in tf.keras's order (learned_epsilon was created first).
    const frnConfig = (name: string) => ({class_name: 'Addons>FilterResponseNormalization', config: {
      name, trainable: true, dtype: 'float32', axis: [1, 2], epsilon: 1e-6, learned_epsilon: true,
      beta_initializer: {class_name: 'Zeros', config: {}}, gamma_initializer: {class_name: 'Ones', config: {}},
      beta_regularizer: null, gamma_regularizer: null, beta_constraint: null, gamma_constraint: null, learned_epsilon_constraint: null}});
    const modelTopology = {keras_version: '2.10.0', backend: 'tensorflow', model_config: {class_name: 'Sequential', config: {
      name: 'sequential', layers: [
        {class_name: 'InputLayer', config: {batch_input_shape: [null, 3, 3, 2], dtype: 'float32', sparse: false, ragged: false, name: 'input_1'}},
        frnConfig('frn_a'), frnConfig('frn_b')]}}};
    const weightSpecs: tf.io.WeightsManifestEntry[] = [
      {name: 'learned_epsilon', shape: [1], dtype: 'float32'}, {name: 'frn_a/gamma', shape: [1, 1, 1, 2], dtype: 'float32'},
      {name: 'frn_a/beta', shape: [1, 1, 1, 2], dtype: 'float32'},
      {name: 'learned_epsilon', shape: [1], dtype: 'float32'}, {name: 'frn_b/gamma', shape: [1, 1, 1, 2], dtype: 'float32'},
      {name: 'frn_b/beta', shape: [1, 1, 1, 2], dtype: 'float32'}];
    const values = [[0.3], [1.5, 0.5], [0.1, -0.2], [0.02], [0.7, 1.2], [-0.4, 0.3]];
    const weightData = new Float32Array(values.flat()).buffer;
    const before = tf.memory().numTensors;
    const model = await io.loadLayersModel(tf.io.fromMemory({modelTopology, weightSpecs, weightData}));
    const stored = (k: number) => Array.from(Float32Array.from(values[k]));
    expect(model.layers.slice(1).map((l) => l.weights.map((w) => [w.originalName, Array.from(w.read().dataSync())]))).toEqual([
      [['frn_a/learned_epsilon', stored(0)], ['frn_a/gamma', stored(1)], ['frn_a/beta', stored(2)]],
      [['frn_b/learned_epsilon', stored(3)], ['frn_b/gamma', stored(4)], ['frn_b/beta', stored(5)]],
    ]);
    const shape = [2, 3, 3, 2];
    const x = normals(rng(8), 36, 0.1, 1.3);
    const xt = tf.tensor(x, shape);
    const y = model.predict(xt) as tf.Tensor;
    const f32 = values.map((v) => Float32Array.from(v));
    const r = frnRef(frnRef(x, shape, 1e-6, f32[1], f32[2], f32[0][0]), shape, 1e-6, f32[4], f32[5], f32[3][0]);
    expectClose(y, r, 1e-5, 'two FRNs with learned epsilon');
    tf.dispose([xt, y]);
    model.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });
});
