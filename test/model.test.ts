/** The layers inside tf.sequential / tf.model: training with model.fit, saving and loading, no leaks. */
import * as tf from '@tensorflow/tfjs';

import {layers} from '../src';
import {maxAbsDiff, saveToMemory, useTestBackend} from './helpers';
import {normals, rng} from './reference';

beforeAll(async () => {
  await useTestBackend();
});

/** A learnable toy task: is the left half of the image brighter than the right half? */
function toyImages(n: number, seed: number): {xs: tf.Tensor4D, ys: tf.Tensor2D} {
  const rand = rng(seed);
  const data = normals(rand, n * 6 * 6 * 2);
  const labels = new Float32Array(n * 2);
  for (let i = 0; i < n; i++) {
    const shift = rand() < 0.5 ? 1 : -1;
    for (let r = 0; r < 6; r++) {
      for (let c = 0; c < 6; c++) {
        for (let k = 0; k < 2; k++) {
          const j = ((i * 6 + r) * 6 + c) * 2 + k;
          if (c < 3) data[j] += shift;
        }
      }
    }
    labels[i * 2 + (shift > 0 ? 1 : 0)] = 1;
  }
  return {xs: tf.tensor4d(data, [n, 6, 6, 2]), ys: tf.tensor2d(labels, [n, 2])};
}

test('conv2d -> groupNormalization -> relu -> flatten -> dense trains with model.fit: loss falls, nothing leaks', async () => {
  const model = tf.sequential({
    layers: [
      tf.layers.conv2d({inputShape: [6, 6, 2], filters: 8, kernelSize: 3, padding: 'same', kernelInitializer: tf.initializers.glorotUniform({seed: 1})}),
      layers.groupNormalization({groups: 4}),
      tf.layers.activation({activation: 'relu'}),
      tf.layers.flatten(),
      tf.layers.dense({units: 2, activation: 'softmax', kernelInitializer: tf.initializers.glorotUniform({seed: 2})}),
    ],
  });
  model.compile({optimizer: tf.train.adam(0.01), loss: 'categoricalCrossentropy', metrics: ['accuracy']});
  const {xs, ys} = toyImages(64, 3);
  // One step first: the optimizer creates its slots then.
  await model.fit(xs, ys, {epochs: 1, batchSize: 16, verbose: 0, shuffle: false});
  const before = tf.memory().numTensors;
  const history = await model.fit(xs, ys, {epochs: 8, batchSize: 16, verbose: 0, shuffle: false});
  expect(tf.memory().numTensors).toBe(before);
  const loss = history.history.loss as number[];
  expect(loss[loss.length - 1]).toBeLessThan(0.5 * loss[0]);
  // gamma and beta were trained.
  const [gamma, beta] = model.layers[1].getWeights();
  expect(maxAbsDiff(gamma.dataSync(), new Float32Array(8).fill(1))).toBeGreaterThan(1e-3);
  expect(maxAbsDiff(beta.dataSync(), new Float32Array(8))).toBeGreaterThan(1e-3);
  tf.dispose([xs, ys]);
  model.dispose();
});

const modelCases: Array<[string, () => tf.layers.Layer, number[]]> = [
  ['GroupNormalization', () => layers.groupNormalization({groups: 2, epsilon: 1e-5}), [4, 4, 6]],
  ['GroupNormalization groups -1, channels-first, regularized', () => layers.groupNormalization({groups: -1, axis: 1, gammaRegularizer: 'l1l2', betaConstraint: 'nonNeg'}), [6, 3, 2]],
  ['InstanceNormalization', () => layers.instanceNormalization({center: false}), [4, 4, 3]],
  ['LayerNormalization unsorted axes', () => layers.layerNormalization({axis: [2, 1], gammaInitializer: {className: 'RandomNormal', config: {mean: 1, stddev: 0.1, seed: 3}}}), [3, 4]],
  ['LayerNormalization rms', () => layers.layerNormalization({rms: true, epsilon: 1e-6}), [5, 6]],
  ['LayerNormalization rmsScaling', () => layers.layerNormalization({rmsScaling: true}), [5, 6]],
  ['RMSNormalization', () => layers.rmsNormalization({axis: [-1, -2]}), [5, 6]],
];

describe.each(modelCases)('save and load: %s', (_name, make, shape) => {
  test('withSaveHandler -> fromMemory: identical weights, predictions and topology; no leaks', async () => {
    const inner = make();
    const model = tf.sequential({layers: [tf.layers.dense({inputShape: shape, units: shape[shape.length - 1]}), inner]});
    // Non-trivial weights everywhere.
    model.setWeights(model.getWeights().map((w, i) => tf.randomUniform(w.shape, 0.5, 1.5, 'float32', i + 1)));
    const x = tf.randomNormal([3, ...shape], 0, 1, 'float32', 4);
    const before = tf.memory().numTensors;
    const artifacts = await saveToMemory(model);
    expect(tf.memory().numTensors).toBe(before);
    const loaded = await tf.loadLayersModel(tf.io.fromMemory(artifacts));
    expect(loaded.layers[1].getClassName()).toBe(inner.getClassName());
    expect(loaded.layers[1].constructor).toBe(inner.constructor);
    const wa = model.getWeights();
    const wb = loaded.getWeights();
    expect(wb.length).toBe(wa.length);
    wa.forEach((w, i) => {
      expect(wb[i].shape).toEqual(w.shape);
      expect(maxAbsDiff(wb[i].dataSync(), w.dataSync())).toBe(0);
    });
    const pa = model.predict(x) as tf.Tensor;
    const pb = loaded.predict(x) as tf.Tensor;
    expect(maxAbsDiff(pa.dataSync(), pb.dataSync())).toBe(0);
    // Saving again gives the same topology.
    const again = await saveToMemory(loaded);
    expect(JSON.stringify(again.modelTopology)).toBe(JSON.stringify(artifacts.modelTopology));
    tf.dispose([pa, pb]);
    loaded.dispose();
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose(x);
    model.dispose();
  });
});
