/**
 * SpectralNormalization (Keras 3): Keras 3 files (both converter routes;
 * test/fixtures/keras3-family/spectral by scripts/make-keras3-family-fixtures.py)
 * in inference and one training call against Keras's numbers (vector_u, the
 * assigned kernel, outputs), a float64 power iteration, the gradient Keras
 * gives (through the assigned kernel, sigma not differentiated), the layer
 * harness, save/load of every weight, model.fit, errors, leaks.
 */
import * as tf from '@tensorflow/tfjs';
import * as fs from 'fs';
import * as path from 'path';

import {io, layers, SpectralNormalization} from '../src';
import {checkKeras3Fixture, expectExactRoundTrip, FAMILY_FIXTURES, relErr} from './family_helpers';
import {expectNoLeakSync, runLayerTest} from './helpers';
import {normals, rng} from './reference';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

interface TrainingRef {
  output: number[];
  output_after: number[];
  layers: Record<string, {vector_u: number[], kernel: number[]}>;
}

/** Keras's power iteration and sigma in float64 (normalize: x / max(||x||, 1e-7)). */
function powerIteration64(w: ArrayLike<number>, rows: number, cols: number, u0: ArrayLike<number>, iterations: number) {
  const norm = (a: Float64Array) => {
    const n = Math.max(Math.sqrt(a.reduce((s, v) => s + v * v, 0)), 1e-7);
    return a.map((v) => v / n);
  };
  let u = Float64Array.from(u0);
  let v = new Float64Array(rows);
  for (let it = 0; it < iterations; it++) {
    v = norm(Float64Array.from({length: rows}, (_, i) => {
      let s = 0;
      for (let j = 0; j < cols; j++) s += u[j] * w[i * cols + j];
      return s;
    }));
    u = norm(Float64Array.from({length: cols}, (_, j) => {
      let s = 0;
      for (let i = 0; i < rows; i++) s += v[i] * w[i * cols + j];
      return s;
    }));
  }
  let sigma = 0;
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) sigma += v[i] * w[i * cols + j] * u[j];
  return {u, sigma};
}

describe('Keras 3 files', () => {
  test.each(['keras', 'keras_keras'])('%s route: loads (Conv2D, Conv2DTranspose with 2 iterations, Conv1D, Dense wrapped), predicts and differentiates as Keras', async (route) => {
    const r = await checkKeras3Fixture('spectral', route);
    expect(r.weights).toBe(8);
    // 3e-5: four wrapped layers, the last a 316-term sum (measured 1.2e-5; the other fixtures' 1e-5 is for shallower models).
    expect(r.predict).toBeLessThan(3e-5);
    expect(r.grad).toBeLessThan(1e-4);
    expect(r.leaked).toBe(0);
  });

  test('keras_keras route through tf.loadLayersModel(io.fromKeras3(...)): the kernel stored twice is loaded once, nothing leaks', async () => {
    const before = tf.memory().numTensors;
    const file = path.join(FAMILY_FIXTURES, 'spectral', 'keras_keras', 'model.json');
    const manifest = JSON.parse(fs.readFileSync(file, 'utf8')).weightsManifest[0].weights as Array<{name: string}>;
    expect(manifest.length).toBe(16);  // per wrapper: its kernel alias, vector_u, the wrapped kernel and bias
    const model = await tf.loadLayersModel(io.fromKeras3(io.fileSystem(file)));
    expect(model.weights.length).toBe(12);
    const a = await io.loadLayersModel(file);
    model.weights.forEach((w, i) => expect(Array.from(w.read().dataSync())).toEqual(Array.from(a.weights[i].read().dataSync())));
    model.dispose();
    a.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  test.each(['keras', 'keras_keras'])('%s route: one training call matches Keras (vector_u, kernel / sigma assigned, outputs before and after)', async (route) => {
    const exp = JSON.parse(fs.readFileSync(path.join(FAMILY_FIXTURES, 'spectral', 'expected.json'), 'utf8'));
    const training = exp.training as TrainingRef;
    const model = await io.loadLayersModel(path.join(FAMILY_FIXTURES, 'spectral', route, 'model.json'));
    const x = tf.tensor(exp.inputs[0].data, exp.inputs[0].shape);
    const y = model.apply(x, {training: true}) as tf.Tensor;
    expect(relErr(y.dataSync(), training.output)).toBeLessThan(1e-5);
    for (const [name, want] of Object.entries(training.layers)) {
      const layer = model.getLayer(name);
      const byShort = (s: string) => layer.weights.find((w) => w.originalName.split('/').pop() === s) as tf.LayerVariable;
      expect([name, relErr(byShort('vector_u').read().dataSync(), want.vector_u)]).toEqual([name, expect.any(Number)]);
      expect(relErr(byShort('vector_u').read().dataSync(), want.vector_u)).toBeLessThan(1e-5);
      expect(relErr(byShort('kernel').read().dataSync(), want.kernel)).toBeLessThan(1e-5);
    }
    const after = model.predict(x) as tf.Tensor;
    expect(relErr(after.dataSync(), training.output_after)).toBeLessThan(1e-5);
    tf.dispose([x, y, after]);
    model.dispose();
  });
});

describe('Keras 3 files with a wrapped DepthwiseConv2D (test/fixtures/keras3-family/spectral_depthwise by scripts/make-keras3-family-fixtures.py)', () => {
  // Keras 3's DepthwiseConv2D names its kernel 'kernel' (tfjs: depthwise_kernel). The .h5 route's manifest lists the
  // wrapped layer's kernel and bias, then vector_u; the wrapper's weights are [kernel, vector_u, bias]: matched by
  // name (in order, the bias went to vector_u: "has shape [4] in the weights manifest, but ... [1,2]").
  const dir = path.join(FAMILY_FIXTURES, 'spectral_depthwise');
  const exp = JSON.parse(fs.readFileSync(path.join(dir, 'expected.json'), 'utf8'));
  const tfjsName = (n: string) => n.replace(/\/kernel$/, '/depthwise_kernel');

  test.each(['keras', 'keras_keras'])('%s route: loads, predicts, differentiates and trains as Keras', async (route) => {
    const before = tf.memory().numTensors;
    const model = await io.loadLayersModel(path.join(dir, route, 'model.json'));
    expect(model.layers.slice(1).map((l) => [l.getClassName(), l.weights.map((w) => w.originalName)])).toEqual([
      ['SpectralNormalization', ['sn_dw/depthwise_kernel', 'sn_dw/vector_u', 'sn_dw/bias']],
      ['SpectralNormalization', ['sn_dw_nb/depthwise_kernel', 'sn_dw_nb/vector_u']]]);
    const x = tf.tensor(exp.inputs[0].data, exp.inputs[0].shape);
    const y = model.predict(x) as tf.Tensor;
    expect(relErr(y.dataSync(), exp.outputs[0].data)).toBeLessThan(1e-5);
    const names = Object.keys(exp.weight_gradients);
    const byName = new Map(model.trainableWeights.map((w) => [w.originalName, w.read() as tf.Variable]));
    const vars = names.map((n) => byName.get(tfjsName(n)) as tf.Variable);
    const xv = tf.variable(x);
    const c = tf.tensor(exp.coefficients[0], exp.outputs[0].shape);
    const {value, grads} = tf.variableGrads(() => tf.sum(tf.mul(model.apply(xv, {training: false}) as tf.Tensor, c)) as tf.Scalar, [xv, ...vars]);
    expect(relErr(grads[xv.name].dataSync(), exp.input_gradients[0])).toBeLessThan(1e-5);
    names.forEach((n, i) => expect([n, relErr(grads[vars[i].name].dataSync(), exp.weight_gradients[n].data)]).toEqual([n, expect.any(Number)]));
    names.forEach((n, i) => expect(relErr(grads[vars[i].name].dataSync(), exp.weight_gradients[n].data)).toBeLessThan(1e-5));
    const training = exp.training as TrainingRef;
    const yt = model.apply(x, {training: true}) as tf.Tensor;
    expect(relErr(yt.dataSync(), training.output)).toBeLessThan(1e-5);
    for (const [name, want] of Object.entries(training.layers)) {
      const w = model.getLayer(name).getWeights();
      expect(relErr(w[0].dataSync(), want.kernel)).toBeLessThan(1e-5);
      expect(relErr(w[1].dataSync(), want.vector_u)).toBeLessThan(1e-5);
    }
    const after = model.predict(x) as tf.Tensor;
    expect(relErr(after.dataSync(), training.output_after)).toBeLessThan(1e-5);
    tf.dispose([x, y, xv, c, value, ...Object.values(grads), yt, after]);
    model.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });
});

interface OrderCase {
  name: string;
  layer: {className: string, config: tf.serialization.ConfigDict};
  order: Record<'weights'|'trainable_weights'|'non_trainable_weights', string[]>;
  frozen: Record<'weights'|'trainable_weights'|'non_trainable_weights', string[]>;
  get_weights: Array<{shape: number[], data: number[]}>;
  x: {shape: number[], data: number[]};
  output: number[];
  output_training: number[];
  get_weights_after_training: number[][];
}

describe('Keras 3\'s weight order (test/fixtures/keras3-family/spectral-order.json by scripts/make-keras3-spectral-order.py: Dense, Conv2D, DepthwiseConv2D)', () => {
  const fixture = JSON.parse(fs.readFileSync(path.join(FAMILY_FIXTURES, 'spectral-order.json'), 'utf8')) as {cases: OrderCase[]};
  // Keras's paths 'sn/d/kernel' are tfjs's 'sn/kernel' (the wrapped layer builds under the wrapper's scope);
  // Keras 3's DepthwiseConv2D kernel 'kernel' is tfjs's 'depthwise_kernel'.
  const names = (ws: tf.LayerVariable[]) => ws.map((w) => w.originalName.split('/').pop());

  test.each(fixture.cases.map((c) => [c.name, c] as const))('%s: weights, trainableWeights, nonTrainableWeights (also frozen) in Keras\'s order', (_, c) => {
    const depthwise = c.layer.className === 'DepthwiseConv2D';
    const short = (list: string[]) => list.map((n) => n.split('/').pop()).map((n) => (depthwise && n === 'kernel' ? 'depthwise_kernel' : n));
    const sn = new SpectralNormalization({layer: c.layer, name: 'sn'});
    sn.apply(tf.input({shape: c.x.shape.slice(1)}));
    expect(names(sn.weights)).toEqual(short(c.order.weights));
    expect(names(sn.trainableWeights)).toEqual(short(c.order.trainable_weights));
    expect(names(sn.nonTrainableWeights)).toEqual(short(c.order.non_trainable_weights));
    expect(sn.getWeights().map((w) => w.shape)).toEqual(c.get_weights.map((w) => w.shape));
    sn.trainable = false;
    expect(names(sn.weights)).toEqual(short(c.frozen.weights));
    expect(names(sn.trainableWeights)).toEqual(short(c.frozen.trainable_weights));
    expect(names(sn.nonTrainableWeights)).toEqual(short(c.frozen.non_trainable_weights));
    sn.dispose();
  });

  test.each(fixture.cases.map((c) => [c.name, c] as const))('%s: setWeights(Keras\'s get_weights()) gives Keras\'s outputs (inference, training) and get_weights() after', (_, c) => {
    const before = tf.memory().numTensors;
    const sn = new SpectralNormalization({layer: c.layer, name: 'sn'});
    const x = tf.tensor(c.x.data, c.x.shape);
    tf.dispose(sn.apply(x) as tf.Tensor);
    const values = c.get_weights.map((w) => tf.tensor(w.data, w.shape));
    sn.setWeights(values);
    sn.getWeights().forEach((w, i) => expect([i, relErr(w.dataSync(), c.get_weights[i].data)]).toEqual([i, 0]));
    const y = sn.apply(x) as tf.Tensor;
    expect(relErr(y.dataSync(), c.output)).toBeLessThan(1e-6);
    const yt = sn.apply(x, {training: true}) as tf.Tensor;
    expect(relErr(yt.dataSync(), c.output_training)).toBeLessThan(1e-5);
    const after = sn.getWeights();
    expect(after.length).toBe(c.get_weights_after_training.length);
    after.forEach((w, i) => expect([i, relErr(w.dataSync(), c.get_weights_after_training[i])]).toEqual([i, expect.any(Number)]));
    after.forEach((w, i) => expect(relErr(w.dataSync(), c.get_weights_after_training[i])).toBeLessThan(1e-5));
    tf.dispose([x, y, yt, ...values]);  // getWeights() gives the variables' own tensors
    sn.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  test('in a model: model.getWeights()/setWeights() round trip, save/load by name, trainable: false (fit\'s optimizer leaves its weights: the bias as set)', async () => {
    const c = fixture.cases[0];
    const make = (trainable: boolean) => tf.sequential({layers: [
      tf.layers.dense({units: 4, inputShape: [4], name: 'pre'}),
      new SpectralNormalization({layer: c.layer, name: 'sn', trainable}),
    ]});
    const model = make(true);
    // tfjs's model lists every layer's trainable weights, then the non-trainable ones.
    expect(model.weights.map((w) => w.originalName)).toEqual(['pre/kernel', 'pre/bias', 'sn/kernel', 'sn/bias', 'sn/vector_u']);
    const sn = model.getLayer('sn');
    const values = c.get_weights.map((w) => tf.tensor(w.data, w.shape));
    sn.setWeights(values);
    const all = model.getWeights();
    const other = make(true);
    other.setWeights(all);
    other.weights.forEach((w, i) => expect(Array.from(w.read().dataSync())).toEqual(Array.from(all[i].dataSync())));
    const x = tf.tensor(c.x.data, c.x.shape);
    const classes = await expectExactRoundTrip(model, x);
    expect(classes).toEqual(['Dense', 'SpectralNormalization']);

    const frozen = make(false);
    frozen.getLayer('sn').setWeights(values);
    expect(frozen.trainableWeights.map((w) => w.originalName)).toEqual(['pre/kernel', 'pre/bias']);
    expect(frozen.nonTrainableWeights.map((w) => w.originalName)).toEqual(['sn/kernel', 'sn/vector_u', 'sn/bias']);
    frozen.compile({optimizer: tf.train.sgd(0.1), loss: 'meanSquaredError'});
    const t = tf.ones([2, 3]);
    await frozen.fit(x, t, {epochs: 1, batchSize: 2, verbose: 0});
    // Not trainable: the optimizer leaves its kernel and bias (the training call's kernel / sigma aside: fit calls it in training).
    const fs0 = frozen.getLayer('sn').getWeights();
    expect(relErr(fs0[2].dataSync(), c.get_weights[2].data)).toBe(0);
    // The same fit on the trainable copy moves the bias (so the check above can fail).
    other.compile({optimizer: tf.train.sgd(0.1), loss: 'meanSquaredError'});
    await other.fit(x, t, {epochs: 1, batchSize: 2, verbose: 0});
    expect(relErr(other.getLayer('sn').getWeights()[2].dataSync(), c.get_weights[2].data)).toBeGreaterThan(1e-3);
    tf.dispose([x, t, ...values]);
    for (const m of [model, other, frozen]) m.dispose();
  });
});

describe('SpectralNormalization', () => {
  test('a training call: u and sigma of a float64 power iteration, kernel := kernel / sigma; inference leaves both alone', () => {
    const dense = tf.layers.dense({units: 5, useBias: false});
    const sn = new SpectralNormalization({layer: dense, powerIterations: 3});
    const x = tf.tensor(normals(rng(1), 12, 0, 1), [3, 4]);
    tf.dispose(sn.apply(x) as tf.Tensor);
    const w0 = normals(rng(2), 20, 0, 0.8);
    const u0 = normals(rng(3), 5, 0, 1);
    sn.setWeights([tf.tensor(w0, [4, 5]), tf.tensor(u0, [1, 5])]);
    const y0 = sn.apply(x) as tf.Tensor;  // inference: nothing assigned
    expect(Array.from(sn.getWeights()[0].dataSync())).toEqual(Array.from(w0));
    const y = expectNoLeakSync(() => sn.apply(x, {training: true}) as tf.Tensor, 'training call');
    const {u, sigma} = powerIteration64(w0, 4, 5, u0, 3);
    const [k, uu] = sn.getWeights();
    expect(relErr(uu.dataSync(), u)).toBeLessThan(1e-6);
    expect(relErr(k.dataSync(), Array.from(w0, (v) => v / sigma))).toBeLessThan(1e-6);
    // The output is the wrapped layer's with the new kernel.
    const want = tf.matMul(x, k);
    expect(relErr(y.dataSync(), want.dataSync())).toBeLessThan(1e-6);
    tf.dispose([x, y0, y, want]);
    sn.dispose();
  });

  test('many training calls drive the kernel\'s spectral norm to 1', () => {
    const sn = layers.spectralNormalization({layer: tf.layers.dense({units: 6}), powerIterations: 5});
    const x = tf.randomNormal([2, 8], 0, 1, 'float32', 4);
    tf.dispose(sn.apply(x) as tf.Tensor);
    for (let i = 0; i < 20; i++) tf.dispose(sn.apply(x, {training: true}) as tf.Tensor);
    const k = sn.getWeights()[0];
    const {sigma} = powerIteration64(k.dataSync(), 8, 6, Float64Array.from({length: 6}, (_, i) => i + 1), 200);
    expect(sigma).toBeCloseTo(1, 5);
    tf.dispose(x);
    sn.dispose();
  });

  test('an all-zero kernel is left as is (no division by sigma 0), as Keras', () => {
    const sn = new SpectralNormalization({layer: tf.layers.dense({units: 3, kernelInitializer: 'zeros'})});
    const x = tf.ones([1, 2]);
    tf.dispose(sn.apply(x) as tf.Tensor);
    const u = Array.from(sn.getWeights()[1].dataSync());
    tf.dispose(sn.apply(x, {training: true}) as tf.Tensor);
    expect(Array.from(sn.getWeights()[0].dataSync())).toEqual([0, 0, 0, 0, 0, 0]);
    expect(Array.from(sn.getWeights()[1].dataSync())).toEqual(u);
    tf.dispose(x);
  });

  test('the gradient is the wrapped layer\'s at the assigned kernel (sigma not differentiated), as Keras', () => {
    const sn = new SpectralNormalization({layer: tf.layers.dense({units: 3})});
    const x = tf.randomNormal([4, 5], 0, 1, 'float32', 5);
    tf.dispose(sn.apply(x) as tf.Tensor);
    const vars = sn.trainableWeights.map((w) => w.read() as tf.Variable);
    const {value, grads} = tf.variableGrads(() => tf.sum(tf.square(sn.apply(x, {training: true}) as tf.Tensor)) as tf.Scalar, vars);
    const k = sn.getWeights()[0];
    const b = sn.getWeights()[2];
    const plain = tf.grads((kk: tf.Tensor, bb: tf.Tensor) => tf.sum(tf.square(tf.add(tf.matMul(x, kk), bb))))([k, b]);
    expect(relErr(grads[vars[0].name].dataSync(), plain[0].dataSync())).toBeLessThan(1e-6);
    expect(relErr(grads[vars[1].name].dataSync(), plain[1].dataSync())).toBeLessThan(1e-6);
    tf.dispose([x, value, ...Object.values(grads), ...plain]);
  });

  test('weights in Keras 3\'s order: kernel, the non-trainable vector_u [1, kernel.shape[-1]] from a truncated normal (stddev 0.02), bias', () => {
    const sn = new SpectralNormalization({layer: tf.layers.conv2d({filters: 64, kernelSize: 3}), name: 'sn_c'});
    sn.apply(tf.input({shape: [8, 8, 3]}));
    expect(sn.weights.map((w) => [w.originalName, w.shape, w.trainable])).toEqual([
      ['sn_c/kernel', [3, 3, 3, 64], true], ['sn_c/vector_u', [1, 64], false], ['sn_c/bias', [64], true]]);
    const u = Array.from(sn.weights[1].read().dataSync());
    expect(Math.max(...u.map(Math.abs))).toBeLessThanOrEqual(0.04 + 1e-7);
    const std = Math.sqrt(u.reduce((s, v) => s + v * v, 0) / u.length);
    expect(std).toBeGreaterThan(0.01);
    expect(std).toBeLessThan(0.025);
    sn.dispose();
  });

  test('shared layer test (wrapping a Dense whose output is the input\'s shape)', () => runLayerTest({
    cls: SpectralNormalization as never, args: {layer: {className: 'Dense', config: {units: 4}}}, inputShape: [2, 4],
    weights: [['kernel', [4, 4]], ['vector_u', [1, 4]], ['bias', [4]]], configKeys: ['layer', 'powerIterations'],
    usesMask: false,  // a wrapper does not support masking (as Keras's): the mask checks are skipped
  }));

  test('model.fit trains through it (vector_u and the kernel updated every step), then save/load keeps every weight', async () => {
    const model = tf.sequential({layers: [
      layers.spectralNormalization({layer: tf.layers.conv2d({filters: 4, kernelSize: 3, inputShape: [6, 6, 2]}), inputShape: [6, 6, 2]}),
      tf.layers.flatten(),
      layers.spectralNormalization({layer: tf.layers.dense({units: 2}), powerIterations: 2}),
    ]});
    model.compile({optimizer: tf.train.sgd(0.05), loss: 'meanSquaredError'});
    const x = tf.randomNormal([8, 6, 6, 2], 0, 1, 'float32', 6);
    const t = tf.randomNormal([8, 2], 0, 1, 'float32', 7);
    const u0 = Array.from(model.layers[0].getWeights()[1].dataSync());
    const h = await model.fit(x, t, {epochs: 3, batchSize: 8, verbose: 0});
    (h.history.loss as number[]).forEach((l) => expect(Number.isFinite(l)).toBe(true));
    expect(Array.from(model.layers[0].getWeights()[1].dataSync())).not.toEqual(u0);
    const classes = await expectExactRoundTrip(model, x);
    expect(classes).toEqual(['SpectralNormalization', 'Flatten', 'SpectralNormalization']);
    tf.dispose([x, t]);
    model.dispose();
  });

  test('errors name the layer, the argument, the value and what was expected', () => {
    expect(() => new SpectralNormalization({layer: tf.layers.dense({units: 2}), powerIterations: 0})).toThrow(
        /SpectralNormalization layer '.*': argument 'powerIterations' must be an integer > 0; received 0\./);
    expect(() => new SpectralNormalization({} as never)).toThrow(/argument 'layer' must be a tf.layers.Layer or a serialized \{className, config\}/);
    expect(() => new SpectralNormalization({layer: {className: 'Densest', config: {}}})).toThrow(/argument 'layer' must be a layer class tfjs knows; received "Densest"\./);
    // SeparableConv2D has two kernels and no 'kernel' (Keras 3's neither: Keras raises too).
    expect(() => new SpectralNormalization({layer: tf.layers.separableConv2d({filters: 2, kernelSize: 3}), name: 'sn_sep'}).apply(tf.input({shape: [5, 5, 2]})))
        .toThrow(/SpectralNormalization layer 'sn_sep': the wrapped SeparableConv2D layer '[^']+' has no 'kernel' nor 'embeddings' weight/);
    const sn = new SpectralNormalization({layer: tf.layers.flatten(), name: 'sn_flat'});
    expect(() => sn.apply(tf.input({shape: [3, 2]}))).toThrow(
        "SpectralNormalization layer 'sn_flat': the wrapped Flatten layer");
    // Nor has a TimeDistributed, a Bidirectional or a model (Keras 3 raises for each): their layers' kernels were
    // found among their weights, and TimeDistributed's Dense kernel, a Bidirectional's forward LSTM input kernel only
    // or a Sequential's first Dense kernel was normalized.
    for (const [name, layer] of [['TimeDistributed', tf.layers.timeDistributed({layer: tf.layers.dense({units: 2})})],
      ['Bidirectional', tf.layers.bidirectional({layer: tf.layers.lstm({units: 2}) as tf.RNN})],
      ['Sequential', tf.sequential({layers: [tf.layers.dense({units: 2, inputShape: [2]})]})]] as Array<[string, tf.layers.Layer]>) {
      expect(() => new SpectralNormalization({layer, name: 'sn_nested'}).apply(tf.input({shape: [3, 2]}))).toThrow(
          new RegExp(`SpectralNormalization layer 'sn_nested': the wrapped ${name} layer '[^']+' has no 'kernel' nor 'embeddings' weight`));
    }
    // An RNN layer has no kernel of its own (its cell has): Keras 3 raises (hasattr(layer, 'kernel') is false), so does this.
    expect(() => new SpectralNormalization({layer: tf.layers.lstm({units: 2}), name: 'sn_lstm'}).apply(tf.ones([1, 3, 2]))).toThrow(
        /SpectralNormalization layer 'sn_lstm': the wrapped LSTM layer '[^']+' has no 'kernel' nor 'embeddings' weight/);
  });
});
