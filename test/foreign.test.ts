/**
 * Two copies of @tensorflow/tfjs in one app (a bundler accident): a layer
 * of this package in the other copy's model fails with an error that says
 * so and how to dedupe, not with "argument 'x' must be a tf.Tensor"; the
 * other copy's registry lacks this package's classes, which checkTfjs
 * tells and explains, and a package loaded after another tfjs-core copy
 * warns on import. jest.isolateModules loads a second, separate copy of
 * @tensorflow/tfjs.
 */
import * as tf from '@tensorflow/tfjs';

import {checkTfjs, GroupNormalization, io, layers, ops} from '../src';
import {foreignEngineWarning} from '../src/tfjs_instance';
import {saveToMemory} from './helpers';

let other: typeof tf;
beforeAll(async () => {
  await tf.setBackend('cpu');
  jest.isolateModules(() => {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    other = require('@tensorflow/tfjs') as typeof tf;
  });
  await other.setBackend('cpu');
});

const MESSAGE = /argument 'x' is a symbolic tensor of another copy of @tensorflow\/tfjs: two copies are loaded \(this package uses the one at version 4\.\d+\.\d+\).*npm ls @tensorflow\/tfjs.*npm dedupe.*resolve\.dedupe/;

test('the second copy is really another copy (its SymbolicTensor is not this one\'s)', () => {
  expect(other.SymbolicTensor).not.toBe(tf.SymbolicTensor);
});

test.each([
  ['GroupNormalization', () => layers.groupNormalization({groups: 2, inputShape: [3, 4]})],
  ['InstanceNormalization', () => layers.instanceNormalization({inputShape: [3, 4]})],
  ['LayerNormalization', () => layers.layerNormalization({inputShape: [3, 4]})],
  ['RMSNormalization', () => layers.rmsNormalization({inputShape: [3, 4]})],
])('%s in the other copy\'s tf.sequential says two copies are loaded and how to dedupe', (name, make) => {
  const layer = make();
  expect(() => other.sequential({layers: [layer as never]})).toThrow(new RegExp(`${name} layer '.*': ${MESSAGE.source}`));
  const input = other.input({shape: [3, 4]});
  expect(() => layer.apply(input as never)).toThrow(MESSAGE);
  layer.dispose();
});

test('the ops, given the other copy\'s symbolic tensor, say the same', () => {
  const input = other.input({shape: [3, 4]});
  expect(() => ops.layerNorm(input as never)).toThrow(/layerNorm: argument 'x' is a symbolic tensor of another copy of @tensorflow\/tfjs/);
  // Concrete tensors of either copy share one engine and work (tf.Tensor's instanceof accepts both).
  const x = other.tensor3d([[[1, 2, 3, 4]]]);
  const y = ops.layerNorm(x as never, {epsilon: 0});
  const s = Math.sqrt(1.25);
  const expected = [-1.5 / s, -0.5 / s, 0.5 / s, 1.5 / s];
  Array.from(y.dataSync()).forEach((v, i) => expect(v).toBeCloseTo(expected[i], 5));
  tf.dispose([x, y]);
});

const DEDUPE = /npm ls @tensorflow\/tfjs.*npm dedupe.*resolve\.dedupe.*io\.loadLayersModel/;

test('checkTfjs: the package\'s own copy passes; the other copy is an error that says two copies are loaded and how to dedupe', () => {
  expect(checkTfjs(tf)).toBeUndefined();
  expect(() => checkTfjs(other)).toThrow(new RegExp(
      `^checkTfjs: argument 'tfjs' is another copy of @tensorflow/tfjs \\(version ${other.version.tfjs.replace(/\./g, '\\.')}\\) ` +
      `than the one tfjs-normalization uses \\(version ${tf.version.tfjs.replace(/\./g, '\\.')}\\): two copies are loaded`));
  expect(() => checkTfjs(other)).toThrow(DEDUPE);
  expect(() => checkTfjs(other)).toThrow(/Unknown layer: GroupNormalization/);
  for (const bad of [null, undefined, {}, 'tf', {layers: {}}]) {
    expect(() => checkTfjs(bad)).toThrow(/^checkTfjs: argument 'tfjs' must be the @tensorflow\/tfjs namespace/);
  }
});

test('the other copy\'s tf.loadLayersModel does not know the classes (what checkTfjs explains); this package\'s io.loadLayersModel loads the model', async () => {
  const model = tf.sequential({layers: [
    tf.layers.dense({inputShape: [4], units: 4, kernelInitializer: 'glorotUniform'}),
    layers.groupNormalization({groups: 2, gammaInitializer: 'randomNormal', betaInitializer: 'randomNormal'}),
  ]});
  const artifacts = await saveToMemory(model);
  const x = tf.tensor2d([[1, -2, 3, 0.5], [0.1, 0.2, -0.3, 4]]);
  const a = model.predict(x) as tf.Tensor;
  // Disposed first: both copies share one engine, whose variable names must be unique.
  model.dispose();
  await expect(other.loadLayersModel(other.io.fromMemory(artifacts))).rejects.toThrow(/Unknown layer: GroupNormalization/);
  const loaded = await io.loadLayersModel(tf.io.fromMemory(artifacts));
  const b = loaded.predict(x) as tf.Tensor;
  expect(Array.from(b.dataSync())).toEqual(Array.from(a.dataSync()));
  tf.dispose([x, a, b]);
  loaded.dispose();
  // Registering the class into the other copy's registry does not make it
  // work (the layer extends this copy's Layer); the load then fails with the
  // message that says two copies are loaded.
  other.serialization.registerClass(GroupNormalization as never);
  await expect(other.loadLayersModel(other.io.fromMemory(artifacts))).rejects.toThrow(MESSAGE);
});

test('imported after another copy of @tensorflow/tfjs-core, the package warns once: what happened and how to dedupe', () => {
  // This copy's environment is its own: no warning.
  expect(foreignEngineWarning()).toBeNull();
  const warn = jest.spyOn(console, 'warn').mockImplementation(() => undefined);
  try {
    jest.isolateModules(() => {
      // A fresh @tensorflow/tfjs (its tfjs-core finds the engine this file's copy made), then the package on it.
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      require('@tensorflow/tfjs');
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      require('../src');
    });
    const ours = warn.mock.calls.map((c) => String(c[0])).filter((m) => m.startsWith('tfjs-normalization:'));
    expect(ours).toHaveLength(1);
    expect(ours[0]).toMatch(/^tfjs-normalization: another copy of @tensorflow\/tfjs-core was loaded before the one this package uses/);
    expect(ours[0]).toMatch(/two copies of @tensorflow\/tfjs are in this app/);
    expect(ours[0]).toMatch(DEDUPE);
  } finally {
    warn.mockRestore();
  }
});
