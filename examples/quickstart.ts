// The README's usage example: npx tsx examples/quickstart.ts
import * as tf from '@tensorflow/tfjs';
import {layers, ops} from 'tfjs-normalization';  // or require('tfjs-normalization')

async function main(): Promise<void> {
  // A layer in a model: train, save and load as usual (importing the
  // package registers the layers, so tf.loadLayersModel finds them).
  const model = tf.sequential({
    layers: [
      tf.layers.conv2d({inputShape: [16, 16, 3], filters: 32, kernelSize: 3, padding: 'same'}),
      layers.groupNormalization({groups: 8}),
      tf.layers.activation({activation: 'relu'}),
      tf.layers.flatten(),
      tf.layers.dense({units: 10, activation: 'softmax'}),
    ],
  });
  model.compile({optimizer: 'adam', loss: 'categoricalCrossentropy'});
  const images = tf.randomNormal([16, 16, 16, 3], 0, 1, 'float32', 1);
  const labels = tf.oneHot(tf.tensor1d([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1, 2, 3, 4, 5], 'int32'), 10);
  const history = await model.fit(images, labels, {epochs: 3, batchSize: 8, verbose: 0});
  console.log('loss per epoch:', (history.history.loss as number[]).map((l) => l.toFixed(3)).join(', '));

  // The ops, with analytic gradients: x is [batch, height, width, channels].
  const x = tf.randomNormal([2, 4, 4, 16], 0, 1, 'float32', 2);
  const gamma = tf.ones([16]);
  const beta = tf.zeros([16]);
  const y = ops.groupNorm(x, {groups: 8, axis: -1, epsilon: 1e-5, gamma, beta});
  const dx = tf.grad((t: tf.Tensor) => tf.sum(tf.square(ops.groupNorm(t, {groups: 8, gamma, beta}))))(x);
  const z = ops.layerNorm(x, {axis: [1, 2, 3]});  // over every axis but the batch
  console.log('y', y.shape, 'dx', dx.shape, 'z', z.shape);
  tf.dispose([images, labels, x, gamma, beta, y, dx, z]);
  console.log('tensors left:', tf.memory().numTensors);  // the model's weights and optimizer state
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
