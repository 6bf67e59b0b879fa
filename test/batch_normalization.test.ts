/**
 * BatchNormalization and ops.batchNorm: against tfjs's built-in (models
 * saved with tf.layers.batchNormalization load into this class, with
 * identical inference outputs and the same training updates), against
 * Keras 3's numbers (test/fixtures/keras3-batchnorm.json and
 * test/fixtures/keras3-batchnorm/, made by scripts/make-batchnorm-fixtures.py:
 * renorm, masked moments, channels-first, center/scale off, trainable
 * false), gradients against central finite differences of a float64
 * reference, the shared layer test, configs, errors and leaks.
 */
import * as tf from '@tensorflow/tfjs';
import {setWasmPaths} from '@tensorflow/tfjs-backend-wasm';
import * as fs from 'fs';
import * as path from 'path';

import {BatchNormalization, BatchNormalizationArgs, io, layers, ops} from '../src';
import {fusedMovingUpdate} from '../src/kernels/moving_update';
import {gradsFD} from './family_reference';
import {runBnInferenceCheck} from './parity/bn_inference';
import {runMovingUpdateCheck} from './parity/moving_update';
import {expectNoLeakSync, runLayerTest, saveToMemory} from './helpers';
import {channelSpec, normals, refForward, refGradsFD, rng} from './reference';

/**
 * The backends the Keras and finite-difference cases run on: cpu and wasm,
 * and the test lane's backend when TFJS_TEST_BACKEND names another
 * (tensorflow: tfjs-node, loaded first).
 */
const EXTRA = process.env.TFJS_TEST_BACKEND;
if (EXTRA === 'tensorflow') {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  require('@tensorflow/tfjs-node');
}
const BACKENDS = ['cpu', 'wasm', ...(EXTRA && EXTRA !== 'cpu' && EXTRA !== 'wasm' ? [EXTRA] : [])];

const wasmDist = path.join(path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'dist') + path.sep;

beforeAll(async () => {
  setWasmPaths(wasmDist);
  await tf.setBackend('cpu');
});

afterAll(async () => {
  await tf.setBackend('cpu');
});

/** max |a - r| / max(1, |r|). */
function relErr(a: ArrayLike<number>, r: ArrayLike<number>): number {
  expect(a.length).toBe(r.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const e = Math.abs(a[i] - r[i]) / Math.max(1, Math.abs(r[i]));
    if (!(e <= m)) m = Number.isFinite(e) ? e : Infinity;
  }
  return m;
}

const TFJS_KEYS = [
  'axis', 'momentum', 'epsilon', 'center', 'scale', 'betaInitializer', 'gammaInitializer', 'movingMeanInitializer',
  'movingVarianceInitializer', 'betaRegularizer', 'gammaRegularizer', 'betaConstraint', 'gammaConstraint',
];
const W4 = (C: number): Array<[string, number[]]> => [['gamma', [C]], ['beta', [C]], ['moving_mean', [C]], ['moving_variance', [C]]];

describe('shared layer test', () => {
  test('defaults, channels-last', () => runLayerTest({
    cls: BatchNormalization, args: {}, inputShape: [4, 3, 3, 5], weights: W4(5), configKeys: TFJS_KEYS,
  }));
  test('channels-first, no center, synchronized', () => runLayerTest({
    cls: BatchNormalization, args: {axis: 1, center: false, synchronized: true}, inputShape: [3, 4, 2, 2],
    weights: [['gamma', [4]], ['moving_mean', [4]], ['moving_variance', [4]]], configKeys: [...TFJS_KEYS, 'synchronized'],
  }));
  test('renorm with clipping, regularizers, constraints, initializers', () => runLayerTest({
    cls: BatchNormalization,
    args: {
      renorm: true, renormClipping: {rmax: 3, rmin: 0.3, dmax: 5}, renormMomentum: 0.9, gammaRegularizer: 'l1l2',
      betaConstraint: 'nonNeg', movingVarianceInitializer: {className: 'Constant', config: {value: 4}},
      movingMeanInitializer: tf.initializers.randomUniform({minval: -1, maxval: 1, seed: 3}),
    },
    inputShape: [5, 6],
    weights: [...W4(6), ['moving_stddev', [6]], ['renorm_mean', [6]], ['renorm_stddev', [6]]],
    configKeys: [...TFJS_KEYS, 'renorm', 'renormClipping', 'renormMomentum'],
  }));
  test('rank 5, no weights but the moving statistics', () => runLayerTest({
    cls: BatchNormalization, args: {center: false, scale: false, axis: 2}, inputShape: [2, 2, 3, 2, 2],
    weights: [['moving_mean', [3]], ['moving_variance', [3]]], configKeys: TFJS_KEYS,
  }));
});

describe('config', () => {
  test("default config has exactly tf.layers.batchNormalization's keys and values", () => {
    const mine = new BatchNormalization({name: 'bn_a'}).getConfig();
    const builtin = tf.layers.batchNormalization({name: 'bn_a'}).getConfig();
    expect(Object.keys(mine).sort()).toEqual([...Object.keys(builtin), 'dtype'].sort());
    for (const k of Object.keys(builtin)) expect(mine[k]).toEqual(builtin[k]);
  });

  test('renorm: moving_stddev and renorm_stddev start at sqrt of the moving variance initializer; clipping {} by default', () => {
    const bn = new BatchNormalization({renorm: true, movingVarianceInitializer: {className: 'Constant', config: {value: 2.25}},
                                       movingMeanInitializer: {className: 'Constant', config: {value: 0.5}}});
    bn.apply(tf.zeros([2, 3]));
    const w = Object.fromEntries(bn.weights.map((v) => [v.name.split('/').pop(), Array.from(v.read().dataSync())]));
    expect(w.moving_stddev).toEqual([1.5, 1.5, 1.5]);
    expect(w.renorm_stddev).toEqual([1.5, 1.5, 1.5]);
    expect(w.renorm_mean).toEqual([0.5, 0.5, 0.5]);
    expect(bn.getConfig().renormClipping).toEqual({});
    expect(bn.nonTrainableWeights.length).toBe(5);
    bn.dispose();
  });

  test('Keras 3 keys load (fromConfig via model.json spelling); unused extras are not written back', () => {
    const cfg = {name: 'k', axis: -1, momentum: 0.9, epsilon: 1e-3, center: true, scale: true, synchronized: false,
                 renorm: false, renormClipping: null, renormMomentum: 0.99, dtype: 'float32'};
    const bn = tf.serialization.SerializationMap.getMap().classNameMap.BatchNormalization;
    const layer = bn[1](bn[0], cfg as unknown as tf.serialization.ConfigDict) as BatchNormalization;
    expect(layer).toBeInstanceOf(BatchNormalization);
    const out = layer.getConfig();
    for (const k of ['synchronized', 'renorm', 'renormClipping', 'renormMomentum']) expect(k in out).toBe(false);
  });

  test('registry: BatchNormalization is this class (the built-in replaced)', () => {
    expect(tf.serialization.SerializationMap.getMap().classNameMap.BatchNormalization[0]).toBe(BatchNormalization);
    expect(layers.batchNormalization()).toBeInstanceOf(BatchNormalization);
  });
});

describe('errors', () => {
  test('arguments, mask, input', () => {
    const who = "BatchNormalization layer 'e'";
    const make = (a: Record<string, unknown>) => new BatchNormalization({name: 'e', ...a} as BatchNormalizationArgs);
    expect(() => make({momentum: 1.5})).toThrow(`${who}: argument 'momentum' must be a number in [0, 1]; received 1.5.`);
    expect(() => make({renormMomentum: 'x'})).toThrow(`${who}: argument 'renormMomentum' must be a number in [0, 1]; received "x".`);
    expect(() => make({renorm: true, renormClipping: {rmax: 1, rmin: 2}})).toThrow(/argument 'renormClipping' must be an object with rmax >= rmin/);
    expect(() => make({renorm: true, renormClipping: {dmax: -1}})).toThrow(/argument 'renormClipping' must be an object with dmax >= 0/);
    expect(() => make({renormClipping: {rmaxx: 1}})).toThrow(/only the keys rmax, rmin, dmax \(unknown: rmaxx\)/);
    expect(() => make({renormClipping: [1]})).toThrow(/argument 'renormClipping' must be an object/);
    expect(() => make({synchronized: 1})).toThrow(`${who}: argument 'synchronized' must be true or false; received 1.`);
    expect(() => make({axis: 1.5})).toThrow(/argument 'axis' must be an integer axis/);
    expect(() => make({movingMeanInitializer: 'nope'})).toThrow(/argument 'movingMeanInitializer' must be a known initializer/);
    expect(() => make({renorm_clipping: {}})).toThrow(/unknown key 'renorm_clipping' in 'args'/);
    const bn = make({});
    expect(() => bn.apply(tf.zeros([4]))).toThrow(/input must have rank >= 2/);
    expect(() => make({axis: 3}).apply(tf.zeros([2, 3]))).toThrow(/argument 'axis' must be an axis in \[-2, 1\]/);
    const x = tf.zeros([2, 3, 4]);
    expect(() => make({}).apply(x, {training: true, mask: tf.ones([3])})).toThrow(
        `${who}: argument 'mask' must have a shape that is a prefix of the input's shape [2,3,4] (e.g. [batch, time]); received shape [3].`);
    expect(() => make({}).apply(tf.zeros([2, 3], 'int32'))).toThrow(/argument 'x' must be a float32 tensor/);
    const sym = tf.input({shape: [null, 3]});
    expect(() => make({axis: 1}).apply(sym)).toThrow(/points at a dimension that is undefined in input shape \[null,null,3\]/);
    expect(() => ops.batchNorm(x, {gamma: tf.ones([3])})).toThrow("batchNorm: argument 'gamma' must have shape [4]; received shape [3].");
    expect(() => ops.batchNorm(x, {momentum: 0.9} as never)).toThrow(/unknown key 'momentum'.*keeps moving averages/);
    tf.dispose(x);
  });
});

/** Reads a layer's weights as {name: values}. */
const weightsOf = (l: tf.layers.Layer) => Object.fromEntries(l.weights.map((w) => [w.name.split('/').pop() as string, w.read().dataSync()]));

describe("against tfjs's built-in", () => {
  const configs: Array<{shape: number[], args: Record<string, unknown>}> = [
    {shape: [8, 5], args: {}},
    {shape: [4, 3, 6], args: {momentum: 0.9, epsilon: 1e-4}},
    {shape: [2, 4, 4, 3], args: {momentum: 0.5, gammaInitializer: 'randomNormal', betaInitializer: 'randomUniform'}},
  ];

  test.each(['cpu', 'wasm'])('%s: training outputs, moving statistics, inference and gradients equal the built-in (channels-last)', async (backend) => {
    await tf.setBackend(backend);
    for (const {shape, args} of configs) {
      const x = tf.randomNormal(shape, 0.4, 1.7, 'float32', 5);
      const dy = tf.randomNormal(shape, 0, 1, 'float32', 6);
      const a = tf.layers.batchNormalization(args);
      const b = new BatchNormalization(args);
      tf.dispose([a.apply(x), b.apply(x)] as tf.Tensor[]);
      const init = a.getWeights().map((w, i) => tf.add(w, tf.randomUniform(w.shape, 0.1, 0.6, 'float32', i)));
      a.setWeights(init);
      b.setWeights(init);
      for (let step = 0; step < 3; step++) {
        const ya = a.apply(x, {training: true}) as tf.Tensor;
        const yb = b.apply(x, {training: true}) as tf.Tensor;
        expect(relErr(await yb.data(), await ya.data())).toBeLessThan(2e-6);
        const wa = weightsOf(a);
        const wb = weightsOf(b);
        for (const k of Object.keys(wa)) expect(relErr(wb[k], wa[k])).toBeLessThan(1e-6);
        tf.dispose([ya, yb]);
      }
      // Inference: tf.batchNorm on the same weights, as the built-in: identical.
      const ia = a.apply(x) as tf.Tensor;
      b.setWeights(a.getWeights());
      const ib = b.apply(x) as tf.Tensor;
      expect(Array.from(await ib.data())).toEqual(Array.from(await ia.data()));
      // Gradients of sum(y * dy) in training mode.
      const grads = (l: tf.layers.Layer) => {
        const xv = tf.variable(x, true);
        const vars = [xv, ...l.trainableWeights.map((w) => w.read() as tf.Variable)];
        const {value, grads: g} = tf.variableGrads(() => tf.sum(tf.mul(l.apply(xv, {training: true}) as tf.Tensor, dy)) as tf.Scalar, vars);
        const out = vars.map((v) => g[v.name].dataSync());
        tf.dispose([xv, value, ...Object.values(g)]);
        return out;
      };
      const ga = grads(a);
      const gb = grads(b);
      ga.forEach((g, i) => expect(relErr(gb[i], g)).toBeLessThan(1e-5));
      tf.dispose([x, dy, ia, ib, ...init]);
      a.dispose();
      b.dispose();
    }
    await tf.setBackend('cpu');
  });

  test('channels-first (axis 1) on cpu and wasm equals float64 (the built-in is wrong on both there)', async () => {
    const shape = [3, 4, 3, 5];
    const C = 4;
    const rand = rng(9);
    const xv = normals(rand, 180, 0.4, 1.7);
    const x = tf.tensor(xv, shape);
    const init = [normals(rand, C, 1, 0.3), normals(rand, C, 0, 0.5), normals(rand, C, 0, 0.5), normals(rand, C, 1, 0.2)];
    // float64: batch statistics per channel, the moving update, and inference with the updated moving statistics.
    const spec = channelSpec(shape, 1, 1e-3);
    const wantTrain = refForward(spec, xv, init[0], init[1]);
    const mean = new Float64Array(C);
    const variance = new Float64Array(C);
    for (let i = 0; i < 180; i++) mean[spec.setOf(i)] += xv[i] / 45;
    for (let i = 0; i < 180; i++) variance[spec.setOf(i)] += (xv[i] - mean[spec.setOf(i)]) ** 2 / 45;
    const mm = init[2].map((v, c) => v * 0.8 + mean[c] * 0.2);
    const mv = init[3].map((v, c) => v * 0.8 + variance[c] * 0.2);
    const wantInfer = xv.map((v, i) => {
      const c = spec.setOf(i);
      return (v - mm[c]) / Math.sqrt(mv[c] + 1e-3) * init[0][c] + init[1][c];
    });
    const run = async (l: tf.layers.Layer) => {
      tf.dispose(l.apply(x) as tf.Tensor);
      const w = init.map((v) => tf.tensor(v));
      l.setWeights(w);
      tf.dispose(w);
      const yt = l.apply(x, {training: true}) as tf.Tensor;
      const yi = l.apply(x) as tf.Tensor;
      const out = {train: await yt.data(), infer: await yi.data(), w: weightsOf(l)};
      tf.dispose([yt, yi]);
      l.dispose();
      return out;
    };
    for (const backend of ['cpu', 'wasm']) {
      await tf.setBackend(backend);
      const got = await run(new BatchNormalization({axis: 1, momentum: 0.8}));
      expect(relErr(got.train, wantTrain)).toBeLessThan(2e-6);
      expect(relErr(got.infer, wantInfer)).toBeLessThan(2e-6);
      expect(relErr(got.w.moving_mean, mm)).toBeLessThan(1e-6);
      expect(relErr(got.w.moving_variance, mv)).toBeLessThan(1e-6);
      // The bug this class avoids: tfjs 4.22's cpu and wasm BatchNorm kernels step through the
      // reshaped [1, C, 1, 1] statistics along the flattened last axis.
      const builtin = await run(tf.layers.batchNormalization({axis: 1, momentum: 0.8}));
      expect(relErr(builtin.infer, wantInfer)).toBeGreaterThan(1e-2);
    }
    await tf.setBackend('cpu');
    tf.dispose(x);
  });

  test('center: false and scale: false train (the built-in crashes: tensorflow/tfjs#2868)', () => {
    const x = tf.randomNormal([6, 4], 1, 2, 'float32', 8);
    expect(() => tf.layers.batchNormalization({center: false}).apply(x, {training: true})).toThrow();
    for (const args of [{center: false}, {scale: false}, {center: false, scale: false}]) {
      const bn = new BatchNormalization(args);
      const y = bn.apply(x, {training: true}) as tf.Tensor;
      const ref = refForward(channelSpec([6, 4], -1, 1e-3), x.dataSync());
      expect(relErr(y.dataSync(), ref)).toBeLessThan(1e-5);
      tf.dispose(y);
      bn.dispose();
    }
    tf.dispose(x);
  });

  test('a model saved with tf.layers.batchNormalization loads into this class: same weights, identical predictions, same fit updates', async () => {
    const build = () => {
      const m = tf.sequential({
        layers: [
          tf.layers.conv2d({inputShape: [5, 5, 2], filters: 4, kernelSize: 3, padding: 'same', kernelInitializer: tf.initializers.glorotUniform({seed: 1})}),
          tf.layers.batchNormalization({name: 'bn1', momentum: 0.8}),
          tf.layers.flatten(),
          tf.layers.dense({units: 3, kernelInitializer: tf.initializers.glorotUniform({seed: 2})}),
          tf.layers.batchNormalization({name: 'bn2', epsilon: 1e-4}),
        ],
      });
      m.compile({optimizer: tf.train.sgd(0.1), loss: 'meanSquaredError'});
      return m;
    };
    const original = build();
    expect(original.layers[1]).not.toBeInstanceOf(BatchNormalization);
    const xs = tf.randomNormal([6, 5, 5, 2], 0.2, 1, 'float32', 9);
    const ys = tf.randomNormal([6, 3], 0, 1, 'float32', 10);
    await original.fit(xs, ys, {epochs: 1, batchSize: 3, shuffle: false, verbose: 0});
    const artifacts = await saveToMemory(original);
    const loaded = await tf.loadLayersModel(tf.io.fromMemory(artifacts));
    expect(loaded.layers[1]).toBeInstanceOf(BatchNormalization);
    expect(loaded.layers[4]).toBeInstanceOf(BatchNormalization);
    expect(loaded.getWeights().map((w) => w.shape)).toEqual(original.getWeights().map((w) => w.shape));
    loaded.getWeights().forEach((w, i) => expect(Array.from(w.dataSync())).toEqual(Array.from(original.getWeights()[i].dataSync())));
    const pa = original.predict(xs) as tf.Tensor;
    const pb = loaded.predict(xs) as tf.Tensor;
    expect(Array.from(pb.dataSync())).toEqual(Array.from(pa.dataSync()));
    // Training updates: one more epoch on each, every weight (moving statistics included) compared.
    loaded.compile({optimizer: tf.train.sgd(0.1), loss: 'meanSquaredError'});
    await original.fit(xs, ys, {epochs: 2, batchSize: 3, shuffle: false, verbose: 0});
    await loaded.fit(xs, ys, {epochs: 2, batchSize: 3, shuffle: false, verbose: 0});
    const wa = original.getWeights();
    const wb = loaded.getWeights();
    wa.forEach((w, i) => expect(relErr(wb[i].dataSync(), w.dataSync())).toBeLessThan(1e-5));
    // And back: saved from this class, the config has tfjs's keys only.
    const again = await saveToMemory(loaded);
    const topo = JSON.stringify(again.modelTopology);
    expect(topo).not.toContain('renorm');
    expect(topo).not.toContain('synchronized');
    tf.dispose([xs, ys, pa, pb]);
    original.dispose();
    loaded.dispose();
  });

  test('trainable: false is inference mode in training (as Keras): moving statistics unchanged, moving-statistics output', async () => {
    const bn = new BatchNormalization({trainable: false, momentum: 0.5});
    const x = tf.randomNormal([5, 3], 2, 3, 'float32', 11);
    const yi = bn.apply(x) as tf.Tensor;
    const before = weightsOf(bn);
    const yt = bn.apply(x, {training: true}) as tf.Tensor;
    expect(Array.from(yt.dataSync())).toEqual(Array.from(yi.dataSync()));
    const after = weightsOf(bn);
    for (const k of Object.keys(before)) expect(Array.from(after[k])).toEqual(Array.from(before[k]));
    // In a model: fit leaves every BN weight as it was.
    const model = tf.sequential({layers: [tf.layers.dense({inputShape: [3], units: 3}), new BatchNormalization({name: 'frozen', trainable: false})]});
    model.compile({optimizer: 'sgd', loss: 'meanSquaredError'});
    const w0 = model.layers[1].getWeights().map((w) => Array.from(w.dataSync()));
    await model.fit(x, x, {epochs: 1, verbose: 0});
    expect(model.layers[1].getWeights().map((w) => Array.from(w.dataSync()))).toEqual(w0);
    tf.dispose([x, yi, yt]);
    bn.dispose();
    model.dispose();
  });
});

interface KerasStep {
  x: number[];
  c: number[];
  mask: number[]|null;
  mask_shape: number[]|null;
  y: number[];
  dx: number[];
  weight_gradients: Record<string, number[]>;
  weights_after: Record<string, number[]>;
}
interface KerasCase {
  name: string;
  config: Record<string, unknown>;
  shape: number[];
  weight_names: string[];
  initial_weights: Record<string, number[]>;
  steps: KerasStep[];
  inference_y: number[];
}

const FIXTURE = JSON.parse(fs.readFileSync(path.join(__dirname, 'fixtures', 'keras3-batchnorm.json'), 'utf8')) as {cases: KerasCase[]};

/** The layer arguments of a Keras 3 BatchNormalization config. */
function argsOf(c: Record<string, unknown>): BatchNormalizationArgs {
  const clip = c.renorm_clipping as Record<string, number>|null;
  return {
    axis: c.axis as number, momentum: c.momentum as number, epsilon: c.epsilon as number, center: c.center as boolean,
    scale: c.scale as boolean, trainable: c.trainable as boolean, renorm: c.renorm as boolean,
    renormClipping: clip, renormMomentum: c.renorm_momentum as number, synchronized: c.synchronized as boolean,
  };
}

describe('against Keras 3 (renorm, masked moments, channels-first, center/scale off, trainable false)', () => {
  test('the fixture has the cases', () => {
    const names = FIXTURE.cases.map((c) => c.name);
    expect(names.filter((n) => n.startsWith('renorm')).length).toBeGreaterThanOrEqual(5);
    expect(names.filter((n) => n.includes('mask')).length).toBeGreaterThanOrEqual(3);
  });

  for (const backend of BACKENDS) {
    test.each(FIXTURE.cases.map((c) => [c.name, c] as const))(`${backend}: %s: training outputs, gradients, every weight after each step, inference`, async (_, kc) => {
      await tf.setBackend(backend);
      const bn = new BatchNormalization(argsOf(kc.config));
      const probe = tf.zeros(kc.shape);
      tf.dispose(bn.apply(probe) as tf.Tensor);
      probe.dispose();
      expect(bn.weights.map((w) => w.name.split('/').pop())).toEqual(kc.weight_names);
      const init = kc.weight_names.map((n, i) => tf.tensor(kc.initial_weights[n], bn.weights[i].shape as number[]));
      bn.setWeights(init);
      tf.dispose(init);
      const before = tf.memory().numTensors;
      for (const step of kc.steps) {
        const x0 = tf.tensor(step.x, kc.shape);
        const x = tf.variable(x0, true);
        x0.dispose();
        const c = tf.tensor(step.c, kc.shape);
        const mask = step.mask ? tf.tensor(step.mask, step.mask_shape as number[]) : null;
        const kwargs = {training: true, ...(mask ? {mask} : {})};
        let y: tf.Tensor|null = null;
        const vars = [x, ...bn.trainableWeights.map((w) => w.read() as tf.Variable)];
        const {value, grads} = tf.variableGrads(() => {
          const out = bn.apply(x, kwargs) as tf.Tensor;
          y = tf.keep(out.clone());
          return tf.sum(tf.mul(out, c)) as tf.Scalar;
        }, vars);
        const yv = (y as unknown as tf.Tensor).dataSync();
        expect(relErr(yv, step.y)).toBeLessThan(2e-5);
        expect(relErr(grads[x.name].dataSync(), step.dx)).toBeLessThan(2e-5);
        for (const w of bn.trainableWeights) {
          const name = w.name.split('/').pop() as string;
          expect(relErr(grads[(w.read() as tf.Variable).name].dataSync(), step.weight_gradients[name])).toBeLessThan(2e-5);
        }
        const after = weightsOf(bn);
        for (const n of kc.weight_names) expect(relErr(after[n], step.weights_after[n])).toBeLessThan(2e-6);
        tf.dispose([x, c, value, y as unknown as tf.Tensor, ...Object.values(grads), ...(mask ? [mask] : [])]);
      }
      expect(tf.memory().numTensors).toBe(before);
      const xl = tf.tensor(kc.steps[kc.steps.length - 1].x, kc.shape);
      const yi = bn.apply(xl) as tf.Tensor;
      expect(relErr(yi.dataSync(), kc.inference_y)).toBeLessThan(2e-5);
      tf.dispose([xl, yi]);
      bn.dispose();
      await tf.setBackend('cpu');
    });
  }

  test.each(['keras', 'keras_keras'])('Keras 3 model with renorm and axis-1 BatchNormalization (%s route) loads, predicts and trains as Keras', async (route) => {
    const dir = path.join(__dirname, 'fixtures', 'keras3-batchnorm');
    const exp = JSON.parse(fs.readFileSync(path.join(dir, 'expected.json'), 'utf8')) as {
      x: number[], shape: number[], y: number[], y_training: number[], weights_after_training: Record<string, number[]>,
    };
    const model = await io.loadLayersModel(path.join(dir, route));
    const bns = model.layers.filter((l) => l instanceof BatchNormalization) as BatchNormalization[];
    expect(bns.map((l) => [l.name, l.renorm, l.axis, l.center])).toEqual([['bn_renorm', true, -1, true], ['bn_axis1', false, 1, false]]);
    expect(bns[0].renormClipping).toEqual({rmax: 2, rmin: 0.5, dmax: 1});
    expect(bns[0].renormMomentum).toBe(0.9);
    const x = tf.tensor(exp.x, exp.shape);
    const y = model.predict(x) as tf.Tensor;
    expect(relErr(y.dataSync(), exp.y)).toBeLessThan(1e-5);
    const yt = model.apply(x, {training: true}) as tf.Tensor;
    expect(relErr(yt.dataSync(), exp.y_training)).toBeLessThan(1e-5);
    for (const l of bns) {
      for (const w of l.weights) {
        // (tfjs appends _1 to a weight name another model still holds.)
        const key = `${l.name}/${(w.name.split('/').pop() as string).replace(/_\d+$/, '')}`;
        expect(relErr(w.read().dataSync(), exp.weights_after_training[key])).toBeLessThan(2e-6);
      }
    }
    tf.dispose([x, y, yt]);
    model.dispose();
  });
});

/** A fixture array: numbers, with NaN and +-Inf spelled as strings (JSON has none). */
const decode = (a: Array<number|string>): number[] => a.map((v) => (typeof v === 'string' ? Number(v) : v));

const PROBE = JSON.parse(fs.readFileSync(path.join(__dirname, 'fixtures', 'keras3-batchnorm-probe.json'), 'utf8')) as {
  cases: Array<Omit<KerasCase, 'steps'|'initial_weights'|'inference_y'> & {
    initial_weights: Record<string, Array<number|string>>,
    inference_y: Array<number|string>,
    steps: Array<Record<'x'|'c'|'y'|'dx', Array<number|string>> & {
      mask: number[]|null, mask_shape: number[]|null, weight_gradients: Record<string, Array<number|string>>,
      weights_after: Record<string, Array<number|string>>,
    }>,
  }>,
};

describe('against Keras 3 in float64 (adversarial: masked renorm with NaN/Inf padding, clipping that clips, fully masked, per-channel masks, ranks 2 and 5, momentum 0 and 1)', () => {
  // scripts/make-batchnorm-probe-fixtures.py: Keras run with dtype float64 on the
  // batch with 0 at masked positions; this layer gets the padding (NaN, Inf, 1e30)
  // there and must give Keras's outputs at the valid positions, and its
  // gradients (c is 0 at masked positions), moving statistics and weights.
  test('the fixture has the cases', () => {
    const names = PROBE.cases.map((c) => c.name);
    expect(names.filter((n) => n.startsWith('renorm, masked')).length).toBe(4);
    expect(names.filter((n) => /NaN|Inf|1e30/.test(n)).length).toBeGreaterThanOrEqual(6);
  });

  for (const backend of BACKENDS) {
    test.each(PROBE.cases.map((c) => [c.name, c] as const))(`${backend}: %s`, async (_, kc) => {
      await tf.setBackend(backend);
      const bn = new BatchNormalization(argsOf(kc.config));
      tf.tidy(() => {
        bn.apply(tf.zeros(kc.shape));
      });
      expect(bn.weights.map((w) => w.name.split('/').pop())).toEqual(kc.weight_names);
      const init = kc.weight_names.map((n, i) => tf.tensor(decode(kc.initial_weights[n]), bn.weights[i].shape as number[]));
      bn.setWeights(init);
      tf.dispose(init);
      const before = tf.memory().numTensors;
      let valid: (a: ArrayLike<number>) => number[] = (a) => Array.from(a);
      for (const [si, step] of kc.steps.entries()) {
        const x0 = tf.tensor(decode(step.x), kc.shape);
        const x = tf.variable(x0, true);
        x0.dispose();
        const c = tf.tensor(decode(step.c), kc.shape);
        const mask = step.mask ? tf.tensor(step.mask, step.mask_shape as number[]) : null;
        if (step.mask) {
          const m = step.mask;
          const per = x.size / m.length;
          valid = (a) => Array.from(a).filter((_v, i) => m[Math.floor(i / per)] !== 0);
        }
        let y: tf.Tensor|null = null;
        const vars = [x, ...bn.trainableWeights.map((w) => w.read() as tf.Variable)];
        const {value, grads} = tf.variableGrads(() => {
          const out = bn.apply(x, {training: true, ...(mask ? {mask} : {})}) as tf.Tensor;
          y = tf.keep(out.clone());
          return tf.sum(tf.mul(out, c)) as tf.Scalar;
        }, vars);
        const at = `step ${si}`;
        expect([at, relErr(valid((y as unknown as tf.Tensor).dataSync()), valid(decode(step.y))) < 2e-5]).toEqual([at, true]);
        expect([at, 'dx', relErr(grads[x.name].dataSync(), decode(step.dx)) < 2e-5]).toEqual([at, 'dx', true]);
        for (const w of bn.trainableWeights) {
          const name = w.name.split('/').pop() as string;
          const e = relErr(grads[(w.read() as tf.Variable).name].dataSync(), decode(step.weight_gradients[name]));
          expect([at, name, e < 2e-5]).toEqual([at, name, true]);
        }
        const after = weightsOf(bn);
        for (const n of kc.weight_names) expect([at, n, relErr(after[n], decode(step.weights_after[n])) < 2e-6]).toEqual([at, n, true]);
        tf.dispose([x, c, value, y as unknown as tf.Tensor, ...Object.values(grads), ...(mask ? [mask] : [])]);
      }
      expect(tf.memory().numTensors).toBe(before);
      const xl = tf.tensor(decode(kc.steps[kc.steps.length - 1].x), kc.shape);
      const yi = bn.apply(xl) as tf.Tensor;
      expect(relErr(valid(yi.dataSync()), valid(decode(kc.inference_y)))).toBeLessThan(2e-5);
      tf.dispose([xl, yi]);
      bn.dispose();
      await tf.setBackend('cpu');
    });
  }

  test.each(BACKENDS)('%s: renorm with a mask: dy and NaN padding at masked positions reach neither dgamma nor dbeta (as the masked normalization: don\'t-cares)', async (backend) => {
    await tf.setBackend(backend);
    const rand = rng(5);
    const shape = [3, 4, 2];
    const xv = Array.from(normals(rand, 24, 0.5, 1.5));
    const m = [1, 1, 1, 1, 1, 0, 0, 0, 1, 1, 0, 0];
    const padded = xv.map((v, i) => (m[Math.floor(i / 2)] ? v : NaN));
    const zeroed = xv.map((v, i) => (m[Math.floor(i / 2)] ? v : 0));
    const dyv = Array.from(normals(rand, 24));
    const dyNaN = dyv.map((v, i) => (m[Math.floor(i / 2)] ? v : NaN));
    const dyZero = dyv.map((v, i) => (m[Math.floor(i / 2)] ? v : 0));
    const mask = tf.tensor2d(m, [3, 4]);
    const run = (xs: number[], dys: number[]) => {
      const bn = new BatchNormalization({renorm: true, renormClipping: {rmax: 1.2, dmax: 0.3}});
      tf.tidy(() => {
        bn.apply(tf.zeros(shape));
      });
      const x0 = tf.tensor(xs, shape);
      const x = tf.variable(x0, true);
      x0.dispose();
      const dy = tf.tensor(dys, shape);
      const vars = [x, ...bn.trainableWeights.map((w) => w.read() as tf.Variable)];
      const {value, grads} = tf.variableGrads(() => tf.sum(tf.mul(bn.apply(x, {training: true, mask}) as tf.Tensor, dy)) as tf.Scalar, vars);
      const out = vars.map((v) => Array.from(grads[v.name].dataSync()));
      tf.dispose([x, dy, value, ...Object.values(grads)]);
      bn.dispose();
      return out;
    };
    const want = run(zeroed, dyZero);
    expect(want.flat().every(Number.isFinite)).toBe(true);
    // NaN padding in x and in dy: bit-identical gradients to zero padding.
    expect(run(padded, dyNaN)).toEqual(want);
    tf.dispose(mask);
    await tf.setBackend('cpu');
  });
});

describe('gradients against central finite differences (float64 reference)', () => {
  const cases: Array<{shape: number[], axis: number, center: boolean, scale: boolean, lengths?: number[]}> = [
    {shape: [5, 3], axis: -1, center: true, scale: true},
    {shape: [2, 3, 4], axis: 1, center: true, scale: false},
    {shape: [2, 2, 3, 2], axis: 2, center: false, scale: true},
    {shape: [3, 4, 2], axis: -1, center: true, scale: true, lengths: [4, 1, 2]},
  ];
  test.each(BACKENDS)('%s: ops.batchNorm and the layer in training: y, dx, dgamma, dbeta', async (backend) => {
    await tf.setBackend(backend);
    for (const k of cases) {
      const rand = rng(42 + k.shape.length);
      const n = k.shape.reduce((a, b) => a * b, 1);
      const C = k.shape[k.axis < 0 ? k.axis + k.shape.length : k.axis];
      const xv = normals(rand, n, 0.5, 2);
      const dyv = normals(rand, n);
      const gv = k.scale ? normals(rand, C, 1, 0.5) : null;
      const bv = k.center ? normals(rand, C, 0, 0.5) : null;
      let maskPer: Float64Array|null = null;
      let mask: tf.Tensor|null = null;
      if (k.lengths) {
        const [N, T] = k.shape;
        const m = Float32Array.from({length: N * T}, (_, i) => (i % T < (k.lengths as number[])[Math.floor(i / T)] ? 1 : 0));
        mask = tf.tensor(m, [N, T]);
        const per = n / (N * T);
        maskPer = Float64Array.from({length: n}, (_, i) => m[Math.floor(i / per)]);
        // Garbage at masked positions.
        for (let i = 0; i < n; i++) if (maskPer[i] === 0) xv[i] = 1e6;
      }
      const spec = channelSpec(k.shape, k.axis, 1e-3);
      const refY = refForward(spec, xv, gv, bv, maskPer);
      const dyRef = maskPer ? Float64Array.from(dyv, (v, i) => v * (maskPer as Float64Array)[i]) : dyv;
      const ref = refGradsFD(spec, xv, dyRef, gv, bv, 1e-6, maskPer);
      const x = tf.tensor(xv, k.shape);
      const dy = tf.tensor(dyv, k.shape);
      const gamma = gv ? tf.tensor(gv) : undefined;
      const beta = bv ? tf.tensor(bv) : undefined;
      const valid = (a: ArrayLike<number>) => (maskPer ? Array.from(a, (v, i) => ((maskPer as Float64Array)[i] ? v : 0)) : a);
      // The op.
      const op = (t: tf.Tensor, g?: tf.Tensor, b?: tf.Tensor) => ops.batchNorm(t, {axis: k.axis, gamma: g, beta: b, mask});
      const y = op(x, gamma, beta);
      expect(relErr(valid(y.dataSync()), valid(refY))).toBeLessThan(1e-5);
      const args = [x, ...(gamma ? [gamma] : []), ...(beta ? [beta] : [])];
      const g = tf.grads((...a: tf.Tensor[]) => tf.sum(tf.mul(op(a[0], gamma ? a[1] : undefined, beta ? a[gamma ? 2 : 1] : undefined), dy)))(args);
      expect(relErr(g[0].dataSync(), ref.dx)).toBeLessThan(1e-4);
      if (gamma) expect(relErr(g[1].dataSync(), ref.dgamma as Float64Array)).toBeLessThan(1e-4);
      if (beta) expect(relErr(g[gamma ? 2 : 1].dataSync(), ref.dbeta as Float64Array)).toBeLessThan(1e-4);
      // The layer, training mode.
      const bn = new BatchNormalization({axis: k.axis, center: k.center, scale: k.scale});
      tf.dispose(bn.apply(x) as tf.Tensor);
      bn.setWeights([...(gamma ? [gamma] : []), ...(beta ? [beta] : []), tf.zeros([C]), tf.ones([C])]);
      const xVar = tf.variable(x, true);
      const vars = [xVar, ...bn.trainableWeights.map((w) => w.read() as tf.Variable)];
      const kwargs = {training: true, ...(mask ? {mask} : {})};
      const {value, grads} = tf.variableGrads(() => tf.sum(tf.mul(bn.apply(xVar, kwargs) as tf.Tensor, dy)) as tf.Scalar, vars);
      expect(relErr(grads[xVar.name].dataSync(), ref.dx)).toBeLessThan(1e-4);
      bn.trainableWeights.forEach((w) => {
        const want = w.name.endsWith('gamma') ? ref.dgamma : ref.dbeta;
        expect(relErr(grads[(w.read() as tf.Variable).name].dataSync(), want as Float64Array)).toBeLessThan(1e-4);
      });
      tf.dispose([x, dy, y, xVar, value, ...g, ...Object.values(grads), ...(gamma ? [gamma] : []), ...(beta ? [beta] : []),
                  ...(mask ? [mask] : [])]);
      bn.dispose();
    }
    await tf.setBackend('cpu');
  });
});

describe('inference path (training: false, trainable: false): values and analytic gradients (test/parity/bn_inference.ts)', () => {
  test.each(BACKENDS)('%s: y bit for bit with and without a tape (tf.batchNorm\'s bits channels-last), gradients of x, gamma, beta and the moving statistics within 2e-5 of float64 finite differences; frozen: x alone; no leaks', async (backend) => {
    await tf.setBackend(backend);
    const records = await runBnInferenceCheck(tf, {BatchNormalization} as unknown as Parameters<typeof runBnInferenceCheck>[1]);
    expect(records.length).toBe(14);
    for (const r of records) {
      const tag = `${r.case} trainable ${r.trainable}`;
      expect([tag, r.error, r.grads, r.identicalY, r.leaked]).toEqual([tag, undefined, r.expected, true, 0]);
      expect([tag, r.errY <= 2e-6, r.worst, r.errGrads <= 2e-5]).toEqual([tag, true, r.worst, true]);
    }
    await tf.setBackend('cpu');
  });

  test.each(BACKENDS)('%s: second order through the inference gradient (d/dgamma, d/dvariance of sum(dx * r); d/dx, d/dmean of sum(dgamma * r)) equals finite differences of the float64 first order', async (backend) => {
    await tf.setBackend(backend);
    const eps = 1e-3;
    for (const {shape, axis} of [{shape: [3, 2, 4], axis: -1}, {shape: [2, 4, 3], axis: 1}]) {
      const rand = rng(31 + axis);
      const n = shape.reduce((p, d) => p * d, 1);
      const a = axis < 0 ? axis + shape.length : axis;
      const C = shape[a];
      const inner = shape.slice(a + 1).reduce((p, d) => p * d, 1);
      const ch = (i: number) => Math.floor(i / inner) % C;
      const [xv, dyv, rv] = [normals(rand, n, 0.3, 1.5), normals(rand, n), normals(rand, n)];
      const r2v = normals(rand, C);
      const gv = normals(rand, C, 1, 0.5);
      const bv = normals(rand, C);
      const mv = normals(rand, C, 0.5, 1);
      const vv = Float32Array.from(normals(rand, C), (e) => 0.3 + Math.abs(e));
      // float64 first-order gradients: dx_i = dy_i g / sqrt(v + eps); dgamma_c = sum dy (x - m) / sqrt(v + eps).
      const sumDx = ([g, v]: Float64Array[]) => [Array.from(dyv).reduce((s, d, i) => s + d * rv[i] * g[ch(i)] / Math.sqrt(v[ch(i)] + eps), 0)];
      const sumDgamma = ([x, m]: Float64Array[]) => {
        const dg = new Float64Array(C);
        for (let i = 0; i < n; i++) dg[ch(i)] += dyv[i] * (x[i] - m[ch(i)]) / Math.sqrt(vv[ch(i)] + eps);
        return [dg.reduce((s, d, c) => s + d * r2v[c], 0)];
      };
      const [refG, refV] = gradsFD(sumDx, [gv, vv], [1]);
      const [refX, refM] = gradsFD(sumDgamma, [xv, mv], [1]);
      const bn = new BatchNormalization({axis});
      const x = tf.tensor(xv, shape);
      tf.dispose(bn.apply(x) as tf.Tensor);
      bn.setWeights([gv, bv, mv, vv].map((t) => tf.tensor1d(t)));
      const [gVar, , mVar, vVar] = bn.weights.map((w) => w.read() as tf.Variable);
      // tf.variableGrads drops non-trainable variables: the moving statistics' made trainable here.
      mVar.trainable = true;
      vVar.trainable = true;
      const [dy, r, r2] = [tf.tensor(dyv, shape), tf.tensor(rv, shape), tf.tensor1d(r2v)];
      const xVar = tf.variable(x, true);
      const first = (which: 'x'|'gamma') => tf.variableGrads(
          () => tf.sum(tf.mul(bn.apply(xVar, {training: false}) as tf.Tensor, dy)) as tf.Scalar, [xVar, gVar]).grads[which === 'x' ? xVar.name : gVar.name];
      const second = expectNoLeakSync(() => {
        const s1 = tf.variableGrads(() => tf.sum(tf.mul(first('x'), r)) as tf.Scalar, [gVar, vVar]);
        const s2 = tf.variableGrads(() => tf.sum(tf.mul(first('gamma'), r2)) as tf.Scalar, [xVar, mVar]);
        tf.dispose([s1.value as tf.Scalar, s2.value as tf.Scalar]);
        return [s1.grads[gVar.name], s1.grads[vVar.name], s2.grads[xVar.name], s2.grads[mVar.name]];
      }, 'second order');
      [refG, refV, refX, refM].forEach((want, i) => expect([shape, i, relErr(second[i].dataSync(), want) < 1e-4]).toEqual([shape, i, true]));
      tf.dispose([x, xVar, dy, r, r2, ...second]);
      bn.dispose();
    }
    await tf.setBackend('cpu');
  });

  test('a container frozen with model.trainable = false (Keras\'s way to freeze a backbone; tfjs flags the weights, not the layers) freezes its BatchNormalization: fit leaves the moving statistics, training outputs are inference outputs; unfrozen it trains again', async () => {
    const inp = tf.input({shape: [3]});
    const bn = new BatchNormalization({name: 'bn', momentum: 0.5});
    const base = tf.model({inputs: inp, outputs: bn.apply(tf.layers.dense({units: 3}).apply(inp)) as tf.SymbolicTensor});
    const i2 = tf.input({shape: [3]});
    const outer = tf.model({inputs: i2, outputs: tf.layers.dense({units: 1}).apply(base.apply(i2)) as tf.SymbolicTensor});
    outer.compile({optimizer: 'sgd', loss: 'meanSquaredError'});
    const x = tf.randomNormal([16, 3], 2, 1, 'float32', 8);
    const y = tf.randomNormal([16, 1], 0, 1, 'float32', 9);
    base.trainable = false;
    expect(bn.trainable).toBe(true);  // tfjs's container setter leaves the layer's own flag
    const before = weightsOf(bn);
    const h = base.predict(x) as tf.Tensor;
    const ht = bn.apply(base.layers[1].apply(x) as tf.Tensor, {training: true}) as tf.Tensor;
    expect(Array.from(ht.dataSync())).toEqual(Array.from(h.dataSync()));
    await outer.fit(x, y, {epochs: 2, batchSize: 8, verbose: 0});
    const after = weightsOf(bn);
    for (const k of Object.keys(before)) expect([k, Array.from(after[k])]).toEqual([k, Array.from(before[k])]);
    base.trainable = true;
    await outer.fit(x, y, {epochs: 1, batchSize: 8, verbose: 0});
    expect(Array.from(weightsOf(bn).moving_mean)).not.toEqual(Array.from(before.moving_mean));
    tf.dispose([x, y, h, ht]);
    outer.dispose();
  });

  test('frozen: an optimizer without a varList leaves gamma and beta as they are (the built-in, constructed with trainable: false, keeps them trainable tf.Variables and moves them); trainable set false after building too', () => {
    const x = tf.randomNormal([6, 3], 1, 2, 'float32', 3);
    for (const make of [
      () => new BatchNormalization({trainable: false}),
      () => {
        const l = new BatchNormalization();
        tf.dispose(l.apply(x) as tf.Tensor);
        l.trainable = false;
        return l;
      },
    ]) {
      const bn = make();
      const dense = tf.layers.dense({units: 3, inputShape: [3]});
      const run = () => bn.apply(dense.apply(x) as tf.Tensor) as tf.Tensor;
      tf.dispose(run());
      const before = weightsOf(bn);
      const opt = tf.train.sgd(0.5);
      for (let i = 0; i < 2; i++) tf.dispose(opt.minimize(() => tf.sum(tf.square(run())) as tf.Scalar, true) ?? []);
      const after = weightsOf(bn);
      for (const k of Object.keys(before)) expect([k, Array.from(after[k])]).toEqual([k, Array.from(before[k])]);
      // The gradient still reaches the layer below.
      expect(Array.from(dense.getWeights()[0].dataSync())).not.toEqual(Array.from(tf.tidy(() => tf.zeros([3, 3])).dataSync()));
      opt.dispose();
      bn.dispose();
      dense.dispose();
    }
    const builtin = tf.layers.batchNormalization({trainable: false});
    tf.dispose(builtin.apply(x) as tf.Tensor);
    const g0 = builtin.getWeights()[0].dataSync().slice();
    const opt = tf.train.sgd(0.5);
    tf.dispose(opt.minimize(() => tf.sum(tf.mul(builtin.apply(x) as tf.Tensor, tf.range(0, 18).reshape([6, 3]))) as tf.Scalar, true) ?? []);
    expect(Array.from(builtin.getWeights()[0].dataSync())).not.toEqual(Array.from(g0));
    opt.dispose();
    builtin.dispose();
    x.dispose();
  });
});

describe('moving statistics on CPU backends: the values the last step wrote', () => {
  const shape = [6, 5, 4];
  const C = 4;
  /** Counts dataSync calls on the layer's moving variables during fn. */
  const movingReads = (l: tf.layers.Layer, fn: () => void): number => {
    const moving = l.nonTrainableWeights.map((w) => w.read());
    const spy = jest.spyOn(tf.Tensor.prototype, 'dataSync');
    try {
      fn();
      return spy.mock.contexts.filter((t) => moving.includes(t as tf.Tensor)).length;
    } finally {
      spy.mockRestore();
    }
  };
  const step = (l: tf.layers.Layer, x: tf.Tensor) => tf.dispose(l.apply(x, {training: true}) as tf.Tensor);
  const moving = (l: tf.layers.Layer) => l.nonTrainableWeights.map((w) => Array.from(w.read().dataSync()));
  /** New data with the same values (tf.clone would share the data). */
  const copyOf = (t: tf.Tensor) => tf.add(t, 0);

  test.each(BACKENDS)('%s: steps after the first reuse the written values, bit for bit what reading them back gives', async (backend) => {
    await tf.setBackend(backend);
    const xs = [1, 2, 3, 4, 5].map((seed) => tf.randomNormal(shape, 0.3, 1.7, 'float32', seed));
    const a = new BatchNormalization({momentum: 0.7});
    const b = new BatchNormalization({momentum: 0.7});
    tf.dispose([a.apply(xs[0]), b.apply(xs[0])] as tf.Tensor[]);
    tf.tidy(() => {
      const init = a.getWeights().map((w, i) => tf.add(w, tf.randomUniform(w.shape, 0.1, 0.6, 'float32', 10 + i)));
      a.setWeights(init);
      b.setWeights(init);
    });
    // The first step after setWeights reads the moving variables; later ones do not.
    expect(movingReads(a, () => step(a, xs[0]))).toBe(2);
    for (const x of xs.slice(1)) expect(movingReads(a, () => step(a, x))).toBe(0);
    // b: its moving statistics rewritten with copies (new data, same values) before every step, so it reads them each time.
    for (const x of xs) {
      const copies = b.nonTrainableWeights.map((w) => copyOf(w.read()));
      b.nonTrainableWeights.forEach((w, i) => w.write(copies[i]));
      tf.dispose(copies);
      expect(movingReads(b, () => step(b, x))).toBe(2);
    }
    expect(moving(a)).toEqual(moving(b));
    tf.dispose(xs);
    a.dispose();
    b.dispose();
    await tf.setBackend('cpu');
  });

  test.each(BACKENDS)('%s: setWeights, a write of either variable and a weights load all replace the written values', async (backend) => {
    await tf.setBackend(backend);
    const x = tf.randomNormal(shape, -0.2, 1.3, 'float32', 7);
    const x2 = tf.randomNormal(shape, 0.5, 0.8, 'float32', 8);
    const a = new BatchNormalization({momentum: 0.6});
    tf.dispose(a.apply(x) as tf.Tensor);
    const mm = tf.tensor1d([0.5, -1, 2, 0.25]);
    const mv = tf.tensor1d([2, 0.5, 3, 1.5]);
    /** One step from these moving statistics on a fresh layer: what the step after any of the writes below must give. */
    const fresh = (mean: tf.Tensor, variance: tf.Tensor) => {
      const f = new BatchNormalization({momentum: 0.6});
      tf.dispose(f.apply(x) as tf.Tensor);
      tf.tidy(() => f.setWeights([tf.ones([C]), tf.zeros([C]), mean.clone(), variance.clone()]));
      step(f, x2);
      const out = moving(f);
      f.dispose();
      return out;
    };
    // Each case: a step that writes the moving statistics, the write under test, then the step compared.
    // setWeights.
    step(a, x);
    tf.tidy(() => a.setWeights([tf.ones([C]), tf.zeros([C]), mm.clone(), mv.clone()]));
    step(a, x2);
    expect(moving(a)).toEqual(fresh(mm, mv));
    // A write of the moving variance alone (the mean keeps what the step wrote).
    step(a, x);
    const keptMean = tf.tensor1d(moving(a)[0]);
    tf.tidy(() => {
      a.nonTrainableWeights[1].write(mv.clone());
    });
    step(a, x2);
    expect(moving(a)).toEqual(fresh(keptMean, mv));
    // A write of the moving mean alone, through the tf.Variable itself.
    step(a, x);
    const keptVariance = tf.tensor1d(moving(a)[1]);
    tf.tidy(() => (a.nonTrainableWeights[0].read() as tf.Variable).assign(mm.clone()));
    step(a, x2);
    expect(moving(a)).toEqual(fresh(mm, keptVariance));
    // A weights load into a model holding the layer (LayersModel.loadWeights, as tf.loadLayersModel's weights).
    const model = tf.sequential({layers: [tf.layers.inputLayer({inputShape: shape.slice(1)}), a]});
    step(a, x);
    tf.tidy(() => {
      const values = [tf.ones([C]), tf.zeros([C]), mm.clone(), mv.clone()];
      const named: tf.NamedTensorMap = {};
      a.weights.forEach((w, i) => (named[w.originalName] = values[i]));
      model.loadWeights(named);
    });
    step(a, x2);
    expect(moving(a)).toEqual(fresh(mm, mv));
    tf.dispose([x, x2, mm, mv, keptMean, keptVariance]);
    model.dispose();
    await tf.setBackend('cpu');
  });
});

describe('numerics and leaks', () => {
  test('moving statistics of an input with mean 1e3 and std 1e-2 (fused kernel) within float32 resolution of float64', () => {
    const shape = [64, 4];
    const rand = rng(7);
    const xv = normals(rand, 256, 1e3, 1e-2);
    const bn = new BatchNormalization({momentum: 0});
    const x = tf.tensor(xv, shape);
    tf.dispose(bn.apply(x, {training: true}) as tf.Tensor);
    const w = weightsOf(bn);
    for (let c = 0; c < 4; c++) {
      const col = Array.from({length: 64}, (_, i) => xv[i * 4 + c]);
      const mean = col.reduce((a, b) => a + b, 0) / 64;
      const variance = col.reduce((a, b) => a + (b - mean) ** 2, 0) / 64;
      expect(Math.abs(w.moving_mean[c] - mean)).toBeLessThan(1e3 * 2 ** -23);
      // Through rsqrt(var + eps) in float32: within 2 ulps of var + eps.
      expect(Math.abs(w.moving_variance[c] - variance)).toBeLessThan(4 * 2 ** -24 * (variance + 1e-3));
    }
    tf.dispose(x);
    bn.dispose();
  });

  test('a NaN in one channel of the batch makes that channel\'s moving mean and variance NaN, as the tf-op update does (cpu, wasm; renorm too)', async () => {
    // The fused forward's inv is 0 for a NaN set; read as a variance of 0, the
    // moving variance decayed to a finite value where the tf-op update gave NaN.
    for (const backend of ['cpu', 'wasm']) {
      await tf.setBackend(backend);
      const rand = rng(11);
      const xv = normals(rand, 5 * 6 * 7, 0.3, 1.5);
      xv[2 * 7 + 3] = NaN;  // channel 3 (channels-last) or channel 2 (channels-first, [5, 6, 7])
      const x = tf.tensor(xv, [5, 6, 7]);
      // renorm: its update reads the batch variance in tf ops from the fused forward's statistics (core.ts varianceFromInv).
      for (const [axis, renorm] of [[-1, false], [1, false], [-1, true], [1, true]] as const) {
        const bad = axis === -1 ? 3 : 2;
        const step = (fused: boolean) => {
          tf.env().set('TFJS_NORMALIZATION_FUSED', fused);
          try {
            const bn = new BatchNormalization({axis, momentum: 0.7, renorm});
            tf.dispose(bn.apply(x, {training: true}) as tf.Tensor);
            const w = weightsOf(bn);
            bn.dispose();
            return w;
          } finally {
            tf.env().set('TFJS_NORMALIZATION_FUSED', true);
          }
        };
        const fused = step(true);
        const plain = step(false);
        const C = axis === -1 ? 7 : 6;
        for (let c = 0; c < C; c++) {
          for (const k of ['moving_mean', 'moving_variance'] as const) {
            const at = `${backend} axis ${axis}${renorm ? ' renorm' : ''} ${k}[${c}]`;
            expect(`${at}: ${Number.isNaN(fused[k][c])}`).toBe(`${at}: ${c === bad}`);
            expect(`${at}: ${Number.isNaN(plain[k][c])}`).toBe(`${at}: ${c === bad}`);
            if (c !== bad) expect(Math.abs(fused[k][c] - plain[k][c])).toBeLessThan(1e-5);
          }
        }
      }
      x.dispose();
    }
    await tf.setBackend('cpu');
  });

  test.each(BACKENDS)('%s: a constant channel at 1e19..1e36 on the tf-op path (a mask; the fused kernels off): dx = gamma * (dy - mean dy) / sqrt(eps), not 0', async (backend) => {
    // The tf-op path rescales such a set by a power of two near its magnitude;
    // rsqrt((sqrt(eps) / divisor)^2) squared 1.7e-24 (1e20) into a denormal
    // (dx 0.35% off) or 0 (from 1e22: inv 0, dx 0). y is 0 there either way.
    await tf.setBackend(backend);
    const N = 8;
    const eps = 1e-3;
    const g = [1.5, 0.7];
    const dyv = Array.from({length: N * 2}, (_, i) => Math.cos(1.3 * i));
    const lengthsMask = [1, 1, 1, 1, 1, 1, 0, 1];
    const maskT = tf.tensor1d(lengthsMask);
    for (const v of [1e19, 1e20, 1e22, 1e30, 1e36]) {
      const xv = Array.from({length: N}, (_, i) => [v, v * (1 + 1e-3 * Math.sin(i))]).flat();
      for (const [how, mask, fused] of [['mask', maskT, true], ['fused off', null, false]] as const) {
        const valid = (i: number) => (mask ? lengthsMask[i] : 1);
        const n = Array.from({length: N}, (_, i) => valid(i)).reduce((a, b) => a + b, 0);
        const meanDy = Array.from({length: N}, (_, i) => dyv[2 * i] * valid(i)).reduce((a, b) => a + b, 0) / n;
        tf.env().set('TFJS_NORMALIZATION_FUSED', fused);
        try {
          const x = tf.tensor(xv, [N, 2]);
          const dy = tf.tensor(dyv, [N, 2]);
          const gamma = tf.tensor1d(g);
          const [dx, dgamma] = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(ops.batchNorm(a, {gamma: b, mask}), dy)))([x, gamma]);
          const got = dx.arraySync() as number[][];
          for (let i = 0; i < N; i++) {
            const want = valid(i) ? g[0] * (dyv[2 * i] - meanDy) / Math.sqrt(eps) : 0;
            const at = `${v} ${how} dx[${i}][0]`;
            expect([at, Math.abs(got[i][0] - want) <= 1e-5 * Math.max(1, Math.abs(want))]).toEqual([at, true]);
          }
          // dgamma of the constant channel: sum(dy * xhat), xhat = 0.
          expect(dgamma.dataSync()[0]).toBe(0);
          tf.dispose([x, dy, gamma, dx, dgamma]);
        } finally {
          tf.env().set('TFJS_NORMALIZATION_FUSED', true);
        }
      }
    }
    maskT.dispose();
    await tf.setBackend('cpu');
  });

  test('no leaks: training, renorm, masked, inference, gradients', () => {
    const x = tf.randomNormal([4, 3, 2], 0, 1, 'float32', 1);
    const mask = tf.tensor2d([[1, 1, 0], [1, 0, 0], [1, 1, 1], [0, 1, 1]]);
    for (const args of [{}, {renorm: true, renormClipping: {rmax: 2}}, {axis: 1}, {center: false, scale: false}]) {
      const bn = new BatchNormalization(args as BatchNormalizationArgs);
      tf.dispose(bn.apply(x) as tf.Tensor);
      for (const kwargs of [{training: true}, {training: true, mask}, {}]) {
        expectNoLeakSync(() => bn.apply(x, kwargs) as tf.Tensor, `apply ${JSON.stringify(args)}`);
      }
      const g = expectNoLeakSync(() => tf.grad((t: tf.Tensor) => tf.sum(bn.apply(t, {training: true}) as tf.Tensor))(x));
      tf.dispose(g);
      bn.dispose();
    }
    tf.dispose([x, mask]);
  });
});

describe('moving-statistics update (test/parity/moving_update.ts; its kernel: webgl and webgpu, test/browser/parity.test.ts)', () => {
  test.each(BACKENDS)('%s: no update kernel (the JS update); two steps within 2e-6 of float64 with the fused kernels on and off, no leaks', async (backend) => {
    await tf.setBackend(backend);
    const r = await runMovingUpdateCheck(tf, {layers} as unknown as Parameters<typeof runMovingUpdateCheck>[1]);
    expect([r.backend, r.registered, r.leaked]).toEqual([backend, false, 0]);
    expect(r.layers.length).toBe(3);
    for (const l of r.layers) {
      expect([l.case, l.ran, l.ranFlagOff, l.forwardFused, l.err < 2e-6, l.errFlagOff < 2e-6]).toEqual([l.case, false, false, true, true, true]);
    }
    await tf.setBackend('cpu');
  });

  test('fusedMovingUpdate declines where no kernel is registered (cpu)', () => {
    const t = [tf.zeros([3]), tf.ones([3]), tf.zeros([1, 3]), tf.zeros([1, 3]), tf.ones([1, 3])];
    expect(fusedMovingUpdate(t[0], t[1], t.slice(2), 0.9, 1e-3)).toBeNull();
    tf.dispose(t);
  });
});
