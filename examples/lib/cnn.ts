/**
 * The small digits CNN every example trains: (conv 3x3 -> normalization ->
 * relu) x 2, then a dense softmax layer. The normalization is pluggable so
 * the batch-size sweep can compare BatchNorm, GroupNorm, LayerNorm and
 * InstanceNorm on exactly the same network.
 */
import * as tf from '@tensorflow/tfjs';
import {layers} from 'tfjs-normalization';

import {IMAGE_SIZE, NUM_CLASSES, mulberry32, permutation} from './digits';

export type NormKind = 'batch'|'group'|'layer'|'instance';

export const NORM_LABELS: Record<NormKind, string> = {
  batch: 'BatchNorm',
  group: 'GroupNorm',
  layer: 'LayerNorm',
  instance: 'InstanceNorm',
};

export interface DigitsCnnOptions {
  /** Which normalization follows each conv. Default 'group'. */
  norm?: NormKind;
  /** GroupNormalization groups (for norm 'group'). Default 4. */
  groups?: number;
  /** Filters of the two convs. Default [16, 32]. */
  filters?: [number, number];
  /** Seed of the weight initializers. Default 0. */
  seed?: number;
}

/** The normalization layer for `kind` (LayerNorm = GroupNorm with one group). */
export function normLayer(kind: NormKind, groups: number, name: string): tf.layers.Layer {
  switch (kind) {
    case 'batch': return tf.layers.batchNormalization({name});
    case 'group': return layers.groupNormalization({groups, name});
    case 'layer': return layers.groupNormalization({groups: 1, name});
    case 'instance': return layers.instanceNormalization({name});
  }
}

/**
 * conv(16, 3x3, same) -> norm -> relu -> conv(32, 3x3, stride 2) -> norm ->
 * relu -> flatten -> dense(10, softmax), on 8x8x1 images.
 */
export function buildDigitsCnn(opts: DigitsCnnOptions = {}): tf.Sequential {
  const {norm = 'group', groups = 4, filters = [16, 32], seed = 0} = opts;
  return tf.sequential({
    layers: [
      tf.layers.conv2d({
        inputShape: [IMAGE_SIZE, IMAGE_SIZE, 1], filters: filters[0], kernelSize: 3, padding: 'same', useBias: false,
        kernelInitializer: tf.initializers.heNormal({seed: seed * 10 + 1}), name: 'conv1',
      }),
      normLayer(norm, groups, 'norm1'),
      tf.layers.activation({activation: 'relu', name: 'relu1'}),
      tf.layers.conv2d({
        filters: filters[1], kernelSize: 3, strides: 2, padding: 'same', useBias: false,
        kernelInitializer: tf.initializers.heNormal({seed: seed * 10 + 2}), name: 'conv2',
      }),
      normLayer(norm, groups, 'norm2'),
      tf.layers.activation({activation: 'relu', name: 'relu2'}),
      tf.layers.flatten({name: 'flatten'}),
      tf.layers.dense({
        units: NUM_CLASSES, activation: 'softmax', kernelInitializer: tf.initializers.glorotUniform({seed: seed * 10 + 3}),
        name: 'logits',
      }),
    ],
  });
}

/**
 * One epoch of model.fit over (xs, ys) in a seeded order (fit's own shuffle
 * uses Math.random, which cannot be seeded).
 */
export async function fitEpochSeeded(
    model: tf.LayersModel, xs: tf.Tensor, ys: tf.Tensor, batchSize: number, seed: number,
    callbacks?: tf.CustomCallbackArgs): Promise<number> {
  const order = tf.tensor1d(permutation(xs.shape[0], seed), 'int32');
  const xe = tf.gather(xs, order);
  const ye = tf.gather(ys, order);
  try {
    const h = await model.fit(xe, ye, {epochs: 1, batchSize, shuffle: false, verbose: 0, callbacks});
    return (h.history.loss as number[])[0];
  } finally {
    tf.dispose([order, xe, ye]);
  }
}

/**
 * Disposes an optimizer completely. tfjs 4.22's MomentumOptimizer.dispose()
 * does not call SGDOptimizer.dispose(), so the learning-rate scalar the SGD
 * constructor keeps leaks one tensor per optimizer; run both.
 */
export function disposeOptimizer(optimizer: tf.Optimizer): void {
  optimizer.dispose();
  if (optimizer.getClassName() === 'Momentum') tf.SGDOptimizer.prototype.dispose.call(optimizer);
}

export {mulberry32};
