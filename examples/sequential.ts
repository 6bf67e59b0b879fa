/**
 * npx tsx examples/sequential.ts: build a tf.sequential model with the
 * package's GroupNormalization, InstanceNormalization, LayerNormalization
 * and RMSNormalization layers, print its summary, train it for a few steps, save it,
 * load it back and check that the loaded model predicts the same.
 *
 * Runs in Node on the default backend, without tfjs-node.
 */
import * as tf from '@tensorflow/tfjs';
import {layers} from 'tfjs-normalization';

async function main(): Promise<void> {
  await tf.ready();
  console.log(`tfjs ${tf.version.tfjs}, backend ${tf.getBackend()}`);

  // A toy task: 8x8 two-channel images; is the left half brighter than the right?
  const n = 256;
  const xs = tf.tidy(() => {
    const noise = tf.randomNormal([n, 8, 8, 2], 0, 1, 'float32', 42);
    const sign = tf.sub(tf.mul(tf.cast(tf.greater(tf.randomUniform([n, 1, 1, 1], 0, 1, 'float32', 7), 0.5), 'float32'), 2), 1);
    const leftHalf = tf.concat([tf.ones([1, 8, 4, 2]), tf.zeros([1, 8, 4, 2])], 2);
    return tf.add(noise, tf.mul(sign, leftHalf));
  });
  const ys = tf.tidy(() => tf.oneHot(tf.cast(tf.greater(tf.mean(tf.sub(
      tf.slice(xs, [0, 0, 0, 0], [n, 8, 4, 2]), tf.slice(xs, [0, 0, 4, 0], [n, 8, 4, 2])), [1, 2, 3]), 0), 'int32'), 2));

  const model = tf.sequential({
    layers: [
      tf.layers.conv2d({inputShape: [8, 8, 2], filters: 8, kernelSize: 3, padding: 'same'}),
      layers.groupNormalization({groups: 4}),
      tf.layers.activation({activation: 'relu'}),
      tf.layers.conv2d({filters: 8, kernelSize: 3, padding: 'same'}),
      layers.instanceNormalization(),
      tf.layers.activation({activation: 'relu'}),
      tf.layers.flatten(),
      tf.layers.dense({units: 16}),
      layers.layerNormalization({axis: -1}),
      layers.rmsNormalization(),
      tf.layers.dense({units: 2, activation: 'softmax'}),
    ],
  });
  model.summary();
  model.compile({optimizer: tf.train.adam(0.01), loss: 'categoricalCrossentropy', metrics: ['accuracy']});
  const history = await model.fit(xs, ys, {epochs: 5, batchSize: 32, verbose: 0, shuffle: true});
  (history.history.loss as number[]).forEach((loss, i) => {
    console.log(`epoch ${i + 1}: loss ${loss.toFixed(4)}, accuracy ${(history.history.acc as number[])[i].toFixed(3)}`);
  });

  // Save to memory, load back (the layers are found in tf.serialization's registry).
  let artifacts: tf.io.ModelArtifacts|undefined;
  await model.save(tf.io.withSaveHandler(async (a) => {
    artifacts = a;
    return {modelArtifactsInfo: {dateSaved: new Date(), modelTopologyType: 'JSON'}};
  }));
  const loaded = await tf.loadLayersModel(tf.io.fromMemory(artifacts as tf.io.ModelArtifacts));
  const probe = tf.slice(xs, [0, 0, 0, 0], [8, 8, 8, 2]);
  const a = model.predict(probe) as tf.Tensor;
  const b = loaded.predict(probe) as tf.Tensor;
  const diff = tf.max(tf.abs(tf.sub(a, b))).dataSync()[0];
  console.log(`saved ${artifacts?.weightData instanceof ArrayBuffer ? artifacts.weightData.byteLength : 0} bytes of weights; ` +
              `reloaded model predicts the same (max difference ${diff})`);
  if (diff !== 0) throw new Error('reloaded model differs');
  tf.dispose([xs, ys, probe, a, b]);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
