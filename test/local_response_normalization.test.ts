/**
 * LocalResponseNormalization and ops.localResponseNorm: PyTorch 2.13's
 * LocalResponseNorm (float64, test/fixtures/lrn-torch.json) and TensorFlow
 * 2.21's tf.nn.local_response_normalization (test/fixtures/lrn-tf.json), both
 * by scripts/make-lrn-fixtures.py; the float64 reference and finite
 * differences over ranks and axes; tfjs's own kernel; the layer harness,
 * save/load, errors, leaks. Backend parity: test/parity/family.ts.
 */
import * as tf from '@tensorflow/tfjs';

import {layers, LocalResponseNormalization, ops} from '../src';
import {gradsFD, lrnRef} from './family_reference';
import {expectExactRoundTrip, relErr} from './family_helpers';
import lrnTf from './fixtures/lrn-tf.json';
import lrnTorch from './fixtures/lrn-torch.json';
import {expectClose, expectNoLeakSync, runLayerTest} from './helpers';
import {normals, rng} from './reference';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

/** y and dx of sum(y * dy) through f. */
function yAndDx(f: (t: tf.Tensor) => tf.Tensor, x: tf.Tensor, dy: tf.Tensor): [Float32Array, Float32Array] {
  return expectNoLeakSync(() => {
    const y = f(x);
    const dx = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(f(t), dy)))(x);
    const out: [Float32Array, Float32Array] = [y.dataSync() as Float32Array, dx.dataSync() as Float32Array];
    tf.dispose([y, dx]);
    return out;
  }, 'localResponseNorm');
}

describe('PyTorch LocalResponseNorm (torch 2.13, float64)', () => {
  test('the fixture is PyTorch 2.13 and covers odd, even, 3D, 5D, size 1 and a window wider than C', () => {
    expect(lrnTorch.framework).toMatch(/^torch 2\.13/);
    const sizes = lrnTorch.cases.map((c) => c.size);
    expect(sizes.some((s) => s % 2 === 0)).toBe(true);
    expect(sizes).toContain(1);
    expect(lrnTorch.cases.some((c) => c.size > c.shape[1])).toBe(true);
    expect(new Set(lrnTorch.cases.map((c) => c.shape.length))).toEqual(new Set([3, 4, 5]));
  });

  test.each(lrnTorch.cases.map((c) => [c.name, c] as const))('%s: op and layer, y and dx within 1e-5', (_, c) => {
    const x = tf.tensor(c.x, c.shape);
    const dy = tf.tensor(c.dy, c.shape);
    const opts = {convention: 'pytorch' as const, size: c.size, alpha: c.alpha, beta: c.beta, k: c.k};
    const [y, dx] = yAndDx((t) => ops.localResponseNorm(t, opts), x, dy);
    expect(relErr(y, c.y)).toBeLessThan(1e-5);
    expect(relErr(dx, c.dx)).toBeLessThan(1e-5);
    const layer = layers.localResponseNormalization(opts);
    const [ly, ldx] = yAndDx((t) => layer.apply(t) as tf.Tensor, x, dy);
    expect(Array.from(ly)).toEqual(Array.from(y));
    expect(Array.from(ldx)).toEqual(Array.from(dx));
    tf.dispose([x, dy]);
  });

  test('defaults are PyTorch\'s: alpha 1e-4, beta 0.75, k 1, channels at axis 1', () => {
    const c = lrnTorch.cases[0];
    expect([c.alpha, c.beta, c.k]).toEqual([1e-4, 0.75, 1]);
    const x = tf.tensor(c.x, c.shape);
    const y = ops.localResponseNorm(x, {convention: 'pytorch', size: c.size});
    expect(relErr(y.dataSync(), c.y)).toBeLessThan(1e-6);
    expect(new LocalResponseNormalization({convention: 'pytorch', size: 3}).getConfig()).toMatchObject(
        {convention: 'pytorch', axis: 1, size: 3, alpha: 1e-4, beta: 0.75, k: 1});
    tf.dispose([x, y]);
  });
});

/**
 * torch.nn.LocalResponseNorm(size, alpha=2, beta=0.75, k=1) in float64 (torch 2.13) on x [1, 5, 2]: y, dx of
 * sum(y * dy) and the gradient of sum(dx * w) (second order, autograd with create_graph) (tmp script; the
 * numbers are pasted here). Size 3 runs on tfjs's LRN kernel (whose LRNGrad has no gradient), size 4 on tf ops.
 */
describe('PyTorch LocalResponseNorm: second-order gradients and NaN (torch 2.13, float64)', () => {
  const x = [[[0.5, -1.0], [1.5, 0.2], [-0.3, 0.8], [0.05, -0.6], [1.1, 0.4]]];
  const dy = [[[1.0, -0.5], [0.3, 2.0], [-1.2, 0.4], [0.7, 0.1], [0.2, -0.9]]];
  const w = [[[0.2, 1.0], [-0.5, 0.3], [0.9, -0.4], [0.6, 1.1], [-0.7, 0.5]]];
  test.each([
    {size: 3,
      y: [0.23960366409235218, -0.6736637163869548, 0.7069150411918862, 0.11383559974254209, -0.14815942773554902,
        0.5389309731095638, 0.031288103002860036, -0.39044374273489946, 0.70539734270374, 0.31997416067065143],
      dx: [0.395392671908666, -0.03052333127560264, -0.21416778033885497, 1.051632986225646, -0.544966193823972,
        0.09932060653858138, 0.43007627131451365, -5.909837058884482e-05, 0.029541307497534107, -0.6255972128811844],
      h: [0.022105410665506975, -0.12453618649844933, 0.20113563287648611, 0.4531877306516179, -0.35850836775560235,
        -0.10894302910240336, 0.13957610517062707, -0.04531149480605717, -0.08303312291932907, 0.04000077497033949]},
    {size: 4,
      y: [0.2721655269759087, -0.7304951032175895, 0.8044596054790443, 0.12659502194815575, -0.16082622857882978,
        0.4721461578473275, 0.023247490326439586, -0.42175599389276175, 0.7551497138988753, 0.2838358028059609],
      dx: [0.42801845011312945, -0.011703540166204673, -0.19464018078750234, 1.1991953796357842, -0.5788356448948704,
        0.2102375577602031, 0.31866341577203544, 0.027747828394573817, 0.05700632866058173, -0.5822190448724737],
      h: [0.08899169551846628, -0.14807633311546664, 0.13317120392678514, 0.47093302287555294, -0.3893823994261486,
        0.08168895942793755, 0.07607580322037052, 0.009274501532105447, 0.017935202664884124, -0.07167806843786309]},
  ])('size $size: y, dx and the second-order gradient as torch', ({size, y, dx, h}) => {
    const opts = {convention: 'pytorch' as const, size, alpha: 2};
    const xt = tf.tensor(x), dyt = tf.tensor(dy), wt = tf.tensor(w);
    const first = (t: tf.Tensor) => tf.grad((u: tf.Tensor) => tf.sum(tf.mul(ops.localResponseNorm(u, opts), dyt)))(t);
    const got = expectNoLeakSync(() => tf.tidy(() => [
      ops.localResponseNorm(xt, opts), first(xt), tf.grad((u: tf.Tensor) => tf.sum(tf.mul(first(u), wt)))(xt),
    ]), 'localResponseNorm second order');
    expectClose(got[0], y, 1e-6, 'y');
    expectClose(got[1], dx, 1e-6, 'dx');
    expectClose(got[2], h, 1e-6, 'second order');
    tf.dispose([xt, dyt, wt, ...got]);
  });

  test.each([
    // A NaN in channel 0 reaches the windows it is in: channels 0..2 for size 4 (c - 2 .. c + 1), 0..1 for size 2.
    {size: 4, y: [NaN, NaN, NaN, -0.4937442994019986, 0.16016508414749397, 1.1569247179176727]},
    {size: 2, y: [NaN, NaN, 0.7815899427813602, -0.3907949713906801, 0.3474001329774193, 0.8213520768642728]},
  ])('even size $size: a NaN channel makes only its windows NaN, as torch (the other channels keep their values)', ({size, y}) => {
    const xt = tf.tensor3d([[[NaN], [1.0], [2.0], [-1.0], [0.5], [3.0]]]);
    const got = ops.localResponseNorm(xt, {convention: 'pytorch', size, alpha: 1});
    const g = Array.from(got.dataSync());
    y.forEach((v, i) => {
      if (Number.isNaN(v)) expect(g[i]).toBeNaN();
      else expect(Math.abs(g[i] - v)).toBeLessThan(1e-6);
    });
    tf.dispose([xt, got]);
  });
});

describe('tf.nn.local_response_normalization (TensorFlow 2.21)', () => {
  test.each(lrnTf.cases.map((c) => [c.name, c] as const))('%s: op and layer, y and dx within 1e-5', (_, c) => {
    expect(lrnTf.framework).toMatch(/^tensorflow 2\./);
    const x = tf.tensor(c.x, c.shape);
    const dy = tf.tensor(c.dy, c.shape);
    const opts = {depthRadius: c.depth_radius, bias: c.bias, alpha: c.alpha, beta: c.beta};
    const [y, dx] = yAndDx((t) => ops.localResponseNorm(t, opts), x, dy);
    expect(relErr(y, c.y)).toBeLessThan(1e-5);
    expect(relErr(dx, c.dx)).toBeLessThan(1e-5);
    const [ly] = yAndDx((t) => layers.localResponseNormalization(opts).apply(t) as tf.Tensor, x, dy);
    expect(Array.from(ly)).toEqual(Array.from(y));
    tf.dispose([x, dy]);
  });

  test('defaults are tf.nn\'s (depth radius 5, bias 1, alpha 1, beta 0.5) and the op is tfjs\'s own kernel on channels-last 4D', () => {
    const x = tf.randomNormal([2, 3, 3, 12], 0, 2, 'float32', 3) as tf.Tensor4D;
    const ours = ops.localResponseNorm(x);
    const theirs = tf.localResponseNormalization(x);
    expect(Array.from(ours.dataSync())).toEqual(Array.from(theirs.dataSync()));
    expect(new LocalResponseNormalization().getConfig()).toMatchObject(
        {convention: 'tensorflow', axis: -1, depthRadius: 5, bias: 1, alpha: 1, beta: 0.5});
    tf.dispose([x, ours, theirs]);
  });
});

describe('float64 reference and finite differences, any rank and axis', () => {
  const cases: Array<[string, number[], Record<string, unknown>, number, number, number, number, number]> = [
    // name, shape, opts, axis (resolved), before, after, bias, alpha (as applied); beta below
    ['tf rank 2 r1', [3, 6], {depthRadius: 1, alpha: 0.7, beta: 0.6, bias: 1.5}, 1, 1, 1, 1.5, 0.7],
    ['tf rank 3 axis 1 r2', [2, 5, 3], {axis: 1, depthRadius: 2, alpha: 0.4, beta: 0.75}, 1, 2, 2, 1, 0.4],
    ['tf rank 5 axis -2 r3', [2, 2, 3, 6, 2], {axis: -2, depthRadius: 3, alpha: 0.2, beta: 0.75}, 3, 3, 3, 1, 0.2],
    ['torch even 4 rank 2 axis 1', [3, 7], {convention: 'pytorch', size: 4, alpha: 2, beta: 0.75, k: 1}, 1, 2, 1, 1, 0.5],
    ['torch even 2 channels-last', [2, 3, 5], {convention: 'pytorch', size: 2, axis: -1, alpha: 1, beta: 0.5, k: 0.8}, 2, 1, 0, 0.8, 0.5],
    ['torch odd 5 rank 6', [1, 6, 2, 1, 2, 2], {convention: 'pytorch', size: 5, alpha: 3, beta: 0.75, k: 1}, 1, 2, 2, 1, 0.6],
  ];
  test.each(cases)('%s', (_, shape, opts, axis, before, after, bias, alpha) => {
    const beta = opts.beta as number;
    const n = shape.reduce((a, b) => a * b, 1);
    const rand = rng(n + before * 7 + after);
    const x = normals(rand, n, 0.1, 1.4);
    const dy = normals(rand, n);
    const ref = (v: Float64Array[]) => lrnRef(v[0], shape, axis, before, after, bias, alpha, beta);
    const xt = tf.tensor(x, shape);
    const dyt = tf.tensor(dy, shape);
    const [y, dx] = yAndDx((t) => ops.localResponseNorm(t, opts), xt, dyt);
    expectClose(y, ref([Float64Array.from(x)]), 2e-6, 'y');
    expectClose(dx, gradsFD(ref, [x], dy)[0], 2e-5, 'dx');
    tf.dispose([xt, dyt]);
  });

  test('an empty tensor gives an empty tensor', () => {
    const y = ops.localResponseNorm(tf.zeros([0, 4]));
    expect(y.shape).toEqual([0, 4]);
    y.dispose();
  });
});

describe('LocalResponseNormalization layer', () => {
  test('shared layer test, tensorflow convention', () => runLayerTest({
    cls: LocalResponseNormalization, args: {depthRadius: 2, alpha: 0.5}, inputShape: [2, 3, 3, 6], weights: [],
    configKeys: ['convention', 'axis', 'depthRadius', 'bias', 'alpha', 'beta'],
  }));
  test('shared layer test, pytorch convention', () => runLayerTest({
    cls: LocalResponseNormalization, args: {convention: 'pytorch', size: 4, alpha: 0.3}, inputShape: [2, 6, 3, 3], weights: [],
    configKeys: ['convention', 'axis', 'size', 'alpha', 'beta', 'k'], usesMask: false,  // the window spans the masked channels
  }));

  test('pytorch: the config holds alpha as given (not divided by size)', () => {
    const config = new LocalResponseNormalization({convention: 'pytorch', size: 4, alpha: 0.3}).getConfig();
    expect(config.alpha).toBe(0.3);
  });

  test('save/load round trip in a model: exact weights and predictions, both conventions', async () => {
    const model = tf.sequential({layers: [
      tf.layers.conv2d({filters: 6, kernelSize: 3, padding: 'same', inputShape: [5, 5, 2]}),
      layers.localResponseNormalization({depthRadius: 2, bias: 2, alpha: 1e-2, beta: 0.75}),
      tf.layers.permute({dims: [3, 1, 2]}),
      layers.localResponseNormalization({convention: 'pytorch', size: 4, alpha: 0.5}),
      tf.layers.flatten(), tf.layers.dense({units: 2}),
    ]});
    const x = tf.randomNormal([3, 5, 5, 2], 0, 1, 'float32', 4);
    const classes = await expectExactRoundTrip(model, x);
    expect(classes.filter((c) => c === 'LocalResponseNormalization').length).toBe(2);
    tf.dispose(x);
    model.dispose();
  });

  test('errors name the layer or op, the argument, the value and what was expected', () => {
    expect(() => new LocalResponseNormalization({convention: 'caffe'} as never)).toThrow(
        /argument 'convention' must be 'tensorflow' or 'pytorch'; received "caffe"\./);
    expect(() => new LocalResponseNormalization({convention: 'pytorch'})).toThrow(
        /argument 'size' must be given with convention 'pytorch'/);
    expect(() => new LocalResponseNormalization({convention: 'pytorch', size: 0})).toThrow(/argument 'size' must be an integer >= 1; received 0\./);
    expect(() => new LocalResponseNormalization({depthRadius: 1.5})).toThrow(/argument 'depthRadius' must be an integer >= 0; received 1.5\./);
    expect(() => new LocalResponseNormalization({alpha: NaN})).toThrow(/argument 'alpha' must be a finite number; received NaN\./);
    expect(() => new LocalResponseNormalization({size: 3})).toThrow(
        /unknown key 'size' in 'args'.*'size' is an argument of the pytorch convention/);
    expect(() => new LocalResponseNormalization({convention: 'pytorch', size: 3, depthRadius: 2})).toThrow(
        /unknown key 'depthRadius'.*tensorflow convention/);
    expect(() => ops.localResponseNorm(tf.ones([2, 3]), {axis: 2})).toThrow(
        "localResponseNorm: argument 'axis' must be an axis in [-2, 1] for an input of rank 2; received 2.");
    expect(() => ops.localResponseNorm(tf.ones([2, 3], 'int32'))).toThrow(/localResponseNorm: argument 'x' must be a float32 tensor/);
    const l = new LocalResponseNormalization({name: 'lrn_bad', convention: 'pytorch', size: 2});
    expect(() => l.apply(tf.input({shape: []}))).toThrow(/LocalResponseNormalization layer 'lrn_bad': argument 'axis' must be an axis in \[-1, 0\]/);
    expect(() => tf.serialization.SerializationMap.getMap().classNameMap.LocalResponseNormalization[1](
        LocalResponseNormalization as never, {name: 'x', convention: 'tensorflow', depthRadius: 2, window: 3})).toThrow(/unknown key 'window' in 'config'/);
  });
});
