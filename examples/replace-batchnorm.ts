/**
 * replaceBatchNormalization: take a BatchNorm CNN, swap every
 * BatchNormalization for GroupNormalization (gamma and beta carried over),
 * fine-tune it at batch size 2, save and reload it.
 *
 *   npx tsx examples/replace-batchnorm.ts
 */
import * as path from 'path';

import * as tf from '@tensorflow/tfjs';
import {io, replaceBatchNormalization} from 'tfjs-normalization';

import {buildDigitsCnn, disposeOptimizer} from './lib/cnn';
import {useFastConvFilterGrad} from './lib/conv-filter-grad';
import {accuracy, toTensors} from './lib/digits';
import {loadDigitsSplit} from './lib/digits-node';

async function main(): Promise<void> {
  useFastConvFilterGrad();
  await tf.ready();
  const {train, validation} = loadDigitsSplit();
  const {xs, ys} = toTensors(train);

  // A BatchNorm model trained with large batches...
  const bnModel = buildDigitsCnn({norm: 'batch', seed: 3});
  const bnOpt = tf.train.adam(0.01);
  bnModel.compile({optimizer: bnOpt, loss: 'categoricalCrossentropy'});
  await bnModel.fit(xs, ys, {epochs: 2, batchSize: 64, verbose: 0});
  console.log(`BatchNorm model, trained at batch 64: validation accuracy ${(100 * accuracy(bnModel, validation)).toFixed(1)}%`);

  // ...converted to GroupNorm (groups 32 asked: the 16-channel layer gets 16 groups, with a warning)
  const gnModel = await replaceBatchNormalization(bnModel, {groups: 32});
  console.log(gnModel.layers.map((l) => `${l.name}: ${l.getClassName()}`).join(', '));
  console.log(`converted, before fine-tuning: ${(100 * accuracy(gnModel, validation)).toFixed(1)}%`);

  // ...and fine-tuned with tiny batches, where BatchNorm's statistics would be noisy.
  const gnOpt = tf.train.adam(0.002);
  gnModel.compile({optimizer: gnOpt, loss: 'categoricalCrossentropy'});
  await gnModel.fit(xs, ys, {epochs: 1, batchSize: 2, verbose: 0});
  console.log(`GroupNorm model after one epoch at batch 2: ${(100 * accuracy(gnModel, validation)).toFixed(1)}%`);

  const dir = path.resolve(__dirname, '..', 'tmp', 'digits-bn-to-gn');
  await gnModel.save(io.fileSystem(dir));
  const reloaded = await io.loadLayersModel(io.fileSystem(dir));
  console.log(`saved and reloaded from ${path.relative(process.cwd(), dir)}: ${(100 * accuracy(reloaded, validation)).toFixed(1)}%`);
  [bnModel, gnModel, reloaded].forEach((m) => m.dispose());
  disposeOptimizer(bnOpt);
  disposeOptimizer(gnOpt);
  tf.dispose([xs, ys]);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
