/**
 * Two copies of @tensorflow/tfjs in one app (a bundler accident): a layer
 * of this package in the other copy's model fails with an error that says
 * so and how to dedupe, not with "argument 'x' must be a tf.Tensor".
 * jest.isolateModules loads a second, separate copy of @tensorflow/tfjs.
 */
import * as tf from '@tensorflow/tfjs';

import {layers, ops} from '../src';

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
