/**
 * InstanceNormalization({trackRunningStats: true}) against PyTorch's
 * InstanceNorm2d(track_running_stats=True) in float64
 * (test/fixtures/instance-norm-running-stats.json, made by
 * scripts/make-running-stats-fixture.py with Debian's python3-torch).
 */
import * as tf from '@tensorflow/tfjs';
import * as fs from 'fs';
import * as path from 'path';

import {InstanceNormalization, layers} from '../src';
import {expectClose, maxAbsDiff, saveToMemory, useTestBackend} from './helpers';
import type {RunningStatsFixture} from './parity/suite';

const fixture = JSON.parse(fs.readFileSync(path.join(__dirname, 'fixtures', 'instance-norm-running-stats.json'), 'utf8')) as RunningStatsFixture;

beforeAll(async () => {
  await useTestBackend();
});

function makeLayer(): InstanceNormalization {
  const layer = layers.instanceNormalization({trackRunningStats: true, momentum: fixture.momentum, epsilon: fixture.epsilon});
  layer.apply(tf.zeros(fixture.shape));
  const [g, b, mm, mv] = [tf.tensor1d(fixture.gamma), tf.tensor1d(fixture.beta), tf.zeros([fixture.shape[3]]), tf.ones([fixture.shape[3]])];
  layer.setWeights([g, b, mm, mv]);
  return layer;
}

test('weights: gamma, beta, then non-trainable moving_mean and moving_variance', () => {
  const layer = makeLayer();
  expect(layer.weights.map((w) => [w.originalName.split('/').pop(), w.trainable])).toEqual([
    ['gamma', true], ['beta', true], ['moving_mean', false], ['moving_variance', false]]);
  expect(layer.getConfig()).toMatchObject({trackRunningStats: true, momentum: 0.1, groups: -1});
  expect('trackRunningStats' in new InstanceNormalization().getConfig()).toBe(false);
});

test('training uses instance statistics and updates the running statistics as PyTorch; inference uses them', () => {
  const layer = makeLayer();
  for (const [i, step] of fixture.train_steps.entries()) {
    const x = tf.tensor(step.x, fixture.shape);
    const y = layer.apply(x, {training: true}) as tf.Tensor;
    expectClose(y, step.y, 1e-4, `step ${i} y`);
    const [, , mm, mv] = layer.getWeights();
    expectClose(mm, step.running_mean, 1e-5, `step ${i} running mean`);
    expectClose(mv, step.running_var, 1e-5, `step ${i} running var`);
    tf.dispose([x, y]);
  }
  const xe = tf.tensor(fixture.eval.x, fixture.shape);
  expectClose(layer.apply(xe) as tf.Tensor, fixture.eval.y, 1e-4, 'eval y');
  expectClose(layer.apply(xe, {training: false}) as tf.Tensor, fixture.eval.y, 1e-4, 'eval y (training false)');
});

test('model.fit updates the running statistics; they save and load with the model; predict uses them', async () => {
  const model = tf.sequential({layers: [
    tf.layers.conv2d({inputShape: [6, 6, 2], filters: 4, kernelSize: 3, padding: 'same', kernelInitializer: tf.initializers.glorotUniform({seed: 1})}),
    layers.instanceNormalization({trackRunningStats: true}),
    tf.layers.flatten(), tf.layers.dense({units: 1, kernelInitializer: tf.initializers.glorotUniform({seed: 2})}),
  ]});
  model.compile({optimizer: 'sgd', loss: 'meanSquaredError'});
  const xs = tf.randomNormal([8, 6, 6, 2], 3, 2, 'float32', 3);
  const ys = tf.randomNormal([8, 1], 0, 1, 'float32', 4);
  await model.fit(xs, ys, {epochs: 1, batchSize: 4, verbose: 0});
  const before = tf.memory().numTensors;
  await model.fit(xs, ys, {epochs: 2, batchSize: 4, verbose: 0});
  expect(tf.memory().numTensors).toBe(before);
  const [, , mm, mv] = model.layers[1].getWeights();
  expect(maxAbsDiff(mm.dataSync(), new Float32Array(4))).toBeGreaterThan(1e-3);
  expect(maxAbsDiff(mv.dataSync(), new Float32Array(4).fill(1))).toBeGreaterThan(1e-3);
  const artifacts = await saveToMemory(model);
  expect(artifacts?.weightSpecs?.map((w) => w.name.split('/').pop())).toContain('moving_variance');
  const loaded = await tf.loadLayersModel(tf.io.fromMemory(artifacts as tf.io.ModelArtifacts));
  expect(loaded.layers[1]).toBeInstanceOf(InstanceNormalization);
  expect((loaded.layers[1] as InstanceNormalization).trackRunningStats).toBe(true);
  const [a, b] = [model.predict(xs) as tf.Tensor, loaded.predict(xs) as tf.Tensor];
  expect(maxAbsDiff(a.dataSync(), b.dataSync())).toBe(0);
  // predict really uses the running statistics: it differs from instance statistics.
  const inst = layers.instanceNormalization();
  const h = model.layers[0].apply(xs) as tf.Tensor;
  inst.apply(h);
  inst.setWeights(model.layers[1].getWeights().slice(0, 2));
  const withRunning = model.layers[1].apply(h) as tf.Tensor;
  const withInstance = inst.apply(h) as tf.Tensor;
  expect(maxAbsDiff(withRunning.dataSync(), withInstance.dataSync())).toBeGreaterThan(1e-2);
});

test('momentum out of range is a named error', () => {
  expect(() => layers.instanceNormalization({trackRunningStats: true, momentum: 1.5, name: 'in'})).toThrow(
      /InstanceNormalization layer 'in': argument 'momentum' must be a number in \[0, 1\]; received 1.5/);
});
