/**
 * Masked statistics on padded sequences (npm run example:masked).
 *
 * A transformer-style block, embedding (maskZero) -> LayerNormalization over
 * [time, features] -> GroupNormalization -> LSTM -> dense, learns a toy
 * task on sequences of different lengths padded with zeros. Because the
 * normalization layers take the mask tfjs propagates, padding is left out
 * of their statistics: a sequence gives the same output whatever its
 * padding length. The same model without masking does not.
 */
import * as tf from '@tensorflow/tfjs';
import {layers} from 'tfjs-normalization';

const VOCAB = 12;

function buildModel(maskZero: boolean): tf.LayersModel {
  const input = tf.input({shape: [null as unknown as number], dtype: 'int32'});
  let h = tf.layers.embedding({inputDim: VOCAB, outputDim: 8, maskZero, embeddingsInitializer: tf.initializers.randomNormal({seed: 1})})
              .apply(input) as tf.SymbolicTensor;
  h = layers.layerNormalization({axis: [1, 2], center: false, scale: false}).apply(h) as tf.SymbolicTensor;
  h = layers.groupNormalization({groups: 2}).apply(h) as tf.SymbolicTensor;
  h = tf.layers.lstm({units: 8, kernelInitializer: tf.initializers.glorotUniform({seed: 2}),
    recurrentInitializer: tf.initializers.glorotUniform({seed: 3})}).apply(h) as tf.SymbolicTensor;
  const out = tf.layers.dense({units: 1, activation: 'sigmoid', kernelInitializer: tf.initializers.glorotUniform({seed: 4})}).apply(h);
  return tf.model({inputs: input, outputs: out as tf.SymbolicTensor});
}

/** Random sequences of tokens 1..VOCAB-1, lengths 2..8, padded to `width`; label: more large tokens than small ones. */
function dataset(n: number, width: number, seed: number): {xs: tf.Tensor2D, ys: tf.Tensor2D} {
  let s = seed;
  const rand = () => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648);
  const rows: number[][] = [];
  const labels: number[] = [];
  for (let i = 0; i < n; i++) {
    const len = 2 + Math.floor(rand() * 7);
    const seq = Array.from({length: len}, () => 1 + Math.floor(rand() * (VOCAB - 1)));
    labels.push(seq.filter((t) => t > VOCAB / 2).length > len / 2 ? 1 : 0);
    rows.push([...seq, ...new Array(width - len).fill(0)]);
  }
  return {xs: tf.tensor2d(rows, [n, width], 'int32'), ys: tf.tensor2d(labels, [n, 1])};
}

async function main(): Promise<void> {
  await tf.ready();
  console.log(`backend ${tf.getBackend()}`);
  const model = buildModel(true);
  model.compile({optimizer: tf.train.adam(0.02), loss: 'binaryCrossentropy', metrics: ['accuracy']});
  const train = dataset(512, 8, 7);
  const history = await model.fit(train.xs, train.ys, {epochs: 8, batchSize: 32, verbose: 0});
  const acc = history.history.acc as number[];
  console.log(`trained 8 epochs on padded sequences: accuracy ${acc[0].toFixed(3)} -> ${acc[acc.length - 1].toFixed(3)}`);

  // One sequence, padded to 6 and to 16 positions.
  const seq = [3, 9, 11, 2, 7];
  const short = tf.tensor2d([[...seq, 0]], undefined, 'int32');
  const long = tf.tensor2d([[...seq, ...new Array(11).fill(0)]], undefined, 'int32');
  const diff = (m: tf.LayersModel) => tf.tidy(() =>
    tf.max(tf.abs(tf.sub(m.predict(short) as tf.Tensor, m.predict(long) as tf.Tensor))).dataSync()[0]);
  const masked = diff(model);
  const unmaskedModel = buildModel(false);
  unmaskedModel.setWeights(model.getWeights());
  const unmasked = diff(unmaskedModel);
  console.log(`same sequence, padding 1 vs 11: output differs by ${masked.toExponential(2)} with masks, ` +
              `${unmasked.toExponential(2)} without`);
  if (!(masked < 1e-5)) throw new Error('masked output depends on the padding length');
  tf.dispose([short, long, train.xs, train.ys]);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
