/**
 * docs/backends.md lists the tf ops the package uses, so that anyone can check
 * that tfjs-node (the 'tensorflow' backend, which has no fused kernel of
 * this package) implements them. This test runs every code path on the
 * tf-op path (fused kernels off) under tf.profile and fails if a kernel is
 * used whose op is not in that list.
 */
import * as tf from '@tensorflow/tfjs';
import * as fs from 'fs';
import * as path from 'path';

import {layers, ops} from '../src';

/** tfjs kernel name for each op name docs/backends.md may list. */
const KERNEL_OF: Record<string, string[]> = {
  abs: ['Abs'], add: ['Add'], batchNorm: ['FusedBatchNorm'], cast: ['Cast'], ceil: ['Ceil'], clipByValue: ['ClipByValue'],
  minimum: ['Minimum'], div: ['RealDiv'], fill: ['Fill'], greater: ['Greater'],
  log: ['Log'], max: ['Max'], maximum: ['Maximum'], mean: ['Mean'], mul: ['Multiply'], neg: ['Neg'], notEqual: ['NotEqual'],
  ones: ['Fill'], onesLike: ['OnesLike'], pow: ['Pow'], reciprocal: ['Reciprocal'], relu: ['Relu'], reshape: ['Reshape'],
  rsqrt: ['Rsqrt'], sqrt: ['Sqrt'], square: ['Square'], sub: ['Sub'], sum: ['Sum'], transpose: ['Transpose'], where: ['Select'], zerosLike: ['ZerosLike'],
  // tf.customGrad: tf.profile names its forward "" or "forward"; it keeps saved tensors with tf.clone (Identity).
  customGrad: ['Identity', '', 'forward'],
};

function readmeOps(): string[] {
  const readme = fs.readFileSync(path.join(__dirname, '..', 'docs', 'backends.md'), 'utf8');
  const start = readme.indexOf('tf ops the package uses');
  const end = readme.indexOf('\n\n', start);
  expect(start).toBeGreaterThan(0);
  return Array.from(readme.slice(start, end).matchAll(/`(?:tf\.)?(\w+)`/g), (m) => m[1]);
}

test('every kernel the tf-op path runs belongs to an op docs/backends.md lists', async () => {
  await tf.setBackend('cpu');
  tf.env().set('TFJS_NORMALIZATION_FUSED', false);
  try {
    const used = new Set<string>();
    const x = tf.randomNormal([2, 3, 4, 6], 0, 1, 'float32', 1);
    const mask = tf.tensor2d([[1, 1, 0], [1, 0, 0]], undefined, 'bool');
    const g6 = tf.ones([6]);
    const calls: Array<(x: tf.Tensor, g: tf.Tensor) => tf.Tensor> = [
      (xx, g) => ops.groupNorm(xx, {groups: 3, gamma: g, beta: g}),
      (xx, g) => ops.groupNorm(xx, {groups: 2, axis: -1, epsilon: 0, gamma: g}),
      (xx, g) => ops.instanceNorm(xx, {mask, gamma: g}),
      (xx, g) => ops.layerNorm(xx, {axis: [1, 3], mask}).mul(g),
      (xx, g) => ops.layerNorm(xx, {rmsScaling: true, gamma: g}),
      (xx, g) => ops.rmsNorm(xx, {gamma: g, mask}),
      (xx, g) => ops.rmsNorm(xx, {epsilon: 0, gamma: g}),
      (xx, g) => ops.batchNorm(xx, {gamma: g, beta: g, mask: tf.ones([2, 3, 4])}),
    ];
    for (const f of calls) {
      const info = await tf.profile(() => {
        const y = f(x, g6);
        const grads = tf.grads((xx: tf.Tensor, gg: tf.Tensor) => tf.sum(tf.square(f(xx, gg))))([x, g6]);
        return [y, ...grads];
      });
      info.kernelNames.forEach((k) => used.add(k));
    }
    // The layers' own paths: running statistics (training and inference), contrib's stdEps.
    const inorm = layers.instanceNormalization({trackRunningStats: true});
    const info = await tf.profile(() => [inorm.apply(x, {training: true}) as tf.Tensor, inorm.apply(x) as tf.Tensor]);
    info.kernelNames.forEach((k) => used.add(k));
    // BatchNormalization: training, renorm with clipping, inference channels-last and channels-first.
    for (const bn of [layers.batchNormalization(), layers.batchNormalization({renorm: true, renormClipping: {rmax: 2, rmin: 0.5, dmax: 1}}),
                      layers.batchNormalization({axis: 1})]) {
      const p = await tf.profile(() => {
        const yt = bn.apply(x, {training: true}) as tf.Tensor;
        const g = tf.grads((xx: tf.Tensor) => bn.apply(xx, {training: true}) as tf.Tensor)([x]);
        return [yt, ...g, bn.apply(x) as tf.Tensor];
      });
      p.kernelNames.forEach((k) => used.add(k));
    }
    const allowed = new Set(readmeOps().flatMap((op) => KERNEL_OF[op] ?? []));
    const missing = Array.from(used).filter((k) => !allowed.has(k)).sort();
    expect({missing, used: Array.from(used).sort()}).toEqual({missing: [], used: expect.any(Array)});
    expect(used.size).toBeGreaterThan(20);
  } finally {
    tf.env().set('TFJS_NORMALIZATION_FUSED', true);
  }
});
