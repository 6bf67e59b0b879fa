/**
 * The small ResNet-style CNN of the Fashion-MNIST sweep, with a pluggable
 * normalization after every conv (and weight-standardized convs for
 * 'group-ws', GroupNorm + WS as in Qiao et al. and BiT):
 *
 *   stem: conv3x3(16, stride 2) -> norm -> relu                 14x14x16
 *   block: [conv3x3(16) -> norm -> relu -> conv3x3(16) -> norm] + x -> relu
 *   down: conv3x3(32, stride 2) -> norm -> relu                 7x7x32
 *   block: [conv3x3(32) -> norm -> relu -> conv3x3(32) -> norm] + x -> relu
 *   global average pool -> dense(10, softmax)
 */
import * as tf from '@tensorflow/tfjs';
import {layers} from 'tfjs-normalization';

import {NUM_CLASSES} from './digits';
import {FASHION_SIZE} from './fashion';

export type SweepNorm = 'batch'|'group'|'group-ws'|'layer'|'instance';

export const SWEEP_NORM_LABELS: Record<SweepNorm, string> = {
  batch: 'BatchNorm',
  group: 'GroupNorm',
  'group-ws': 'GroupNorm+WS',
  layer: 'LayerNorm',
  instance: 'InstanceNorm',
};

export interface ResNetOptions {
  norm: SweepNorm;
  /** GroupNormalization groups (for 'group' and 'group-ws'). */
  groups: number;
  /** Widths of the two stages. Default [16, 32]. */
  widths?: [number, number];
  /** Seed of the weight initializers. */
  seed: number;
}

/** The normalization for `norm` (LayerNorm = GroupNorm with one group, over C, H, W as in Wu & He). */
function normLayer(norm: SweepNorm, groups: number, name: string): tf.layers.Layer {
  switch (norm) {
    // Momentum 0.9 (PyTorch's 0.1): tfjs's default 0.99 leaves a third of the initial moving statistics
    // in place after the ~190 steps of a batch-32 run here, which would hurt BatchNorm's evaluation, not its training.
    case 'batch': return tf.layers.batchNormalization({name, momentum: 0.9});
    case 'group': case 'group-ws': return layers.groupNormalization({groups, name});
    case 'layer': return layers.groupNormalization({groups: 1, name});
    case 'instance': return layers.instanceNormalization({name});
  }
}

export function buildFashionResNet(opts: ResNetOptions): tf.LayersModel {
  const {norm, groups, widths = [16, 32], seed} = opts;
  let k = 0;
  const conv = (x: tf.SymbolicTensor, filters: number, strides: number, name: string): tf.SymbolicTensor => {
    const args = {
      filters, kernelSize: 3, strides, padding: 'same' as const, useBias: false,
      kernelInitializer: tf.initializers.heNormal({seed: seed * 100 + ++k}), name,
    };
    const layer = norm === 'group-ws' ? layers.wsConv2d(args) : tf.layers.conv2d(args);
    return layer.apply(x) as tf.SymbolicTensor;
  };
  const nr = (x: tf.SymbolicTensor, name: string, relu = true): tf.SymbolicTensor => {
    const y = normLayer(norm, groups, `${name}_norm`).apply(x) as tf.SymbolicTensor;
    return relu ? tf.layers.activation({activation: 'relu', name: `${name}_relu`}).apply(y) as tf.SymbolicTensor : y;
  };
  const block = (x: tf.SymbolicTensor, filters: number, name: string): tf.SymbolicTensor => {
    const h = nr(conv(x, filters, 1, `${name}_conv1`), `${name}_1`);
    const y = nr(conv(h, filters, 1, `${name}_conv2`), `${name}_2`, false);
    const sum = tf.layers.add({name: `${name}_add`}).apply([x, y]) as tf.SymbolicTensor;
    return tf.layers.activation({activation: 'relu', name: `${name}_out`}).apply(sum) as tf.SymbolicTensor;
  };
  const input = tf.input({shape: [FASHION_SIZE, FASHION_SIZE, 1], name: 'image'});
  let x = nr(conv(input, widths[0], 2, 'stem_conv'), 'stem');
  x = block(x, widths[0], 'block1');
  x = nr(conv(x, widths[1], 2, 'down_conv'), 'down');
  x = block(x, widths[1], 'block2');
  x = tf.layers.globalAveragePooling2d({name: 'pool'}).apply(x) as tf.SymbolicTensor;
  const out = tf.layers.dense({
    units: NUM_CLASSES, activation: 'softmax', kernelInitializer: tf.initializers.glorotUniform({seed: seed * 100 + 99}), name: 'logits',
  }).apply(x) as tf.SymbolicTensor;
  return tf.model({inputs: input, outputs: out, name: `fashion_resnet_${norm}`});
}
