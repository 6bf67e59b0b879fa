/**
 * Every case of the PyTorch float64 fixture, through the op and through
 * the layer (weights set from the case): forward, dx, dgamma and dbeta
 * within 2e-4.
 */
import * as tf from '@tensorflow/tfjs';

import {GroupNormalization, InstanceNormalization, LayerNormalization, ops, RMSNormalization} from '../src';
import {expectClose, expectNoLeakSync, useTestBackend} from './helpers';
import {loadReferenceCases, ReferenceCase} from './fixtures';

const TOL = 2e-4;
const cases = loadReferenceCases();

beforeAll(async () => {
  await useTestBackend();
});

function opFor(c: ReferenceCase): (x: tf.Tensor, gamma?: tf.Tensor, beta?: tf.Tensor) => tf.Tensor {
  const {config} = c;
  const epsilon = config.epsilon;
  switch (c.kind) {
    case 'group':
      return (x, gamma, beta) => ops.groupNorm(x, {groups: config.groups as number, axis: config.axis as number, epsilon, gamma, beta});
    case 'instance':
      return (x, gamma, beta) => ops.instanceNorm(x, {axis: config.axis as number, epsilon, gamma, beta});
    case 'layer':
      return (x, gamma, beta) => ops.layerNorm(x, {axis: config.axis, epsilon, gamma, beta});
    case 'rms':
      return (x, gamma) => ops.rmsNorm(x, {axis: config.axis, epsilon, gamma});
  }
}

function layersFor(c: ReferenceCase): tf.layers.Layer[] {
  const {config} = c;
  const affine = {epsilon: config.epsilon, center: config.center ?? true, scale: config.scale ?? true};
  switch (c.kind) {
    case 'group':
      return [new GroupNormalization({groups: config.groups, axis: config.axis as number, ...affine})];
    case 'instance':
      return [new InstanceNormalization({axis: config.axis as number, ...affine})];
    case 'layer':
      return [new LayerNormalization({axis: config.axis, ...affine})];
    case 'rms':
      return [
        new LayerNormalization({axis: config.axis, epsilon: config.epsilon, rms: true}),
        new RMSNormalization({axis: config.axis, epsilon: config.epsilon}),
      ];
  }
}

describe.each(cases.map((c) => [c.name, c] as const))('reference case %s', (_name, c) => {
  const paramShape = c.param_shape && c.gamma ? (c.param_shape.length === 1 ? [c.gamma.length] : c.param_shape) : [];

  test('op: forward and gradients match PyTorch float64', () => {
    const x = tf.tensor(c.x, c.shape);
    const dy = tf.tensor(c.dy, c.shape);
    const gamma = c.gamma ? tf.tensor(c.gamma, paramShape) : undefined;
    const beta = c.beta ? tf.tensor(c.beta, paramShape) : undefined;
    const op = opFor(c);
    const y = expectNoLeakSync(() => op(x, gamma, beta), 'forward');
    expectClose(y, c.y, TOL, 'y');
    const args = [x, ...(gamma ? [gamma] : []), ...(beta ? [beta] : [])];
    const grads = expectNoLeakSync(
        () => tf.grads((...a: tf.Tensor[]) => tf.sum(tf.mul(op(a[0], gamma ? a[1] : undefined, beta ? a[gamma ? 2 : 1] : undefined), dy)))(args),
        'gradient');
    expectClose(grads[0], c.dx, TOL, 'dx');
    if (gamma) expectClose(grads[1], c.dgamma as number[], TOL, 'dgamma');
    if (beta) expectClose(grads[2], c.dbeta as number[], TOL, 'dbeta');
    tf.dispose([x, dy, gamma, beta, y, ...grads].filter((t): t is tf.Tensor => t != null));
  });

  test('layer: forward and gradients match PyTorch float64', () => {
    for (const layer of layersFor(c)) {
      const x = tf.tensor(c.x, c.shape);
      const dy = tf.tensor(c.dy, c.shape);
      layer.apply(x);
      const values = layer.weights.map((w) => {
        const name = w.name.split('/').pop();
        const data = name === 'beta' ? c.beta : c.gamma;
        return tf.tensor(data as number[], w.shape as number[]);
      });
      expect(layer.weights.length).toBe((c.gamma ? 1 : 0) + (c.beta ? 1 : 0));
      layer.setWeights(values);
      const y = layer.apply(x) as tf.Tensor;
      expectClose(y, c.y, TOL, `${layer.getClassName()} y`);
      const loss = () => tf.sum(tf.mul(layer.apply(x) as tf.Tensor, dy)) as tf.Scalar;
      const dx = expectNoLeakSync(() => tf.grad((xx: tf.Tensor) => tf.sum(tf.mul(layer.apply(xx) as tf.Tensor, dy)))(x), 'dx');
      expectClose(dx, c.dx, TOL, `${layer.getClassName()} dx`);
      if (layer.weights.length > 0) {
        const {value, grads} = tf.variableGrads(loss);
        layer.weights.forEach((w) => {
          const name = w.name.split('/').pop();
          const ref = name === 'beta' ? c.dbeta : c.dgamma;
          expectClose(grads[w.name], ref as number[], TOL, `${layer.getClassName()} d${name}`);
        });
        tf.dispose([value, ...Object.values(grads)]);
      }
      tf.dispose([x, dy, y, dx, ...values]);
      layer.dispose();
    }
  });
});
