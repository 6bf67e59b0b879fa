/**
 * The main example (npm start): train a small CNN with GroupNormalization
 * on real handwritten digits in Node, save it with the package's file IO
 * handler, load it back and check the reloaded model.
 *
 *   conv 3x3 (16) -> GroupNormalization(4) -> relu
 *   conv 3x3 (32, stride 2) -> GroupNormalization(4) -> relu
 *   flatten -> dense(10, softmax)
 *
 * Runs on the default backend (cpu in Node; 'tensorflow' when
 * @tensorflow/tfjs-node is installed). Options: --epochs N (default 4),
 * --out DIR (default tmp/digits-gn).
 */
import * as path from 'path';

import * as tf from '@tensorflow/tfjs';
import {MultiBar, Presets} from 'cli-progress';
import {io} from 'tfjs-normalization';

import {buildDigitsCnn, disposeOptimizer, mulberry32} from './lib/cnn';
import {useFastConvFilterGrad} from './lib/conv-filter-grad';
import {accuracy, permutation, predictLabels, toTensors} from './lib/digits';
import {loadDigitsSplit} from './lib/digits-node';

const ROOT = path.resolve(__dirname, '..');
const REQUIRED_ACCURACY = 0.95;

function option(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1] : fallback;
}

/** tfjs-node, when it is installed: its backend, and its own ProgressBarLogger for fit's verbose: 1. */
function tryTfjsNode(): boolean {
  try {
    require.resolve('@tensorflow/tfjs-node');
  } catch {
    return false;
  }
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  require('@tensorflow/tfjs-node');
  return true;
}

/** A cli-progress bar per epoch, driven by fit's batch callbacks. */
function progressCallbacks(epochs: number, stepsPerEpoch: number): {callbacks: tf.CustomCallbackArgs, stop: () => void} {
  const bars = new MultiBar({
    format: 'epoch {epoch} [{bar}] {value}/{total} batches | loss {loss} | acc {acc} | {duration}s',
    hideCursor: true, clearOnComplete: false, noTTYOutput: true, notTTYSchedule: 5000,
  }, Presets.shades_classic);
  let bar: ReturnType<MultiBar['create']>|null = null;
  return {
    callbacks: {
      onEpochBegin: async (epoch) => {
        bar = bars.create(stepsPerEpoch, 0, {epoch: `${epoch + 1}/${epochs}`, loss: '-', acc: '-'});
      },
      onBatchEnd: async (_batch, logs) => {
        bar?.increment({loss: (logs?.loss ?? NaN).toFixed(4), acc: (logs?.acc ?? NaN).toFixed(3)});
      },
      onEpochEnd: async (_epoch, logs) => {
        bar?.update(stepsPerEpoch, {loss: (logs?.loss ?? NaN).toFixed(4), acc: (logs?.acc ?? NaN).toFixed(3)});
        bar?.stop();
      },
    },
    stop: () => bars.stop(),
  };
}

async function main(): Promise<void> {
  const t0 = Date.now();
  const epochs = Number(option('epochs', '4'));
  const outDir = path.resolve(ROOT, option('out', 'tmp/digits-gn'));
  const hasTfjsNode = tryTfjsNode();
  // tfjs 4.22's cpu kernel for the conv filter gradient is ~100x slower than it needs to be.
  useFastConvFilterGrad();
  await tf.ready();
  console.log(`tfjs ${tf.version.tfjs}, backend ${tf.getBackend()}` +
              (hasTfjsNode ? ' (tfjs-node)' : ' (tfjs-node not installed: pure-JS cpu backend)'));

  const {train, validation} = loadDigitsSplit();
  console.log(`digits: ${train.count} training, ${validation.count} validation images (8x8, seeded stratified split)`);
  const {xs, ys} = toTensors(train);
  const before = tf.memory().numTensors;

  const model = buildDigitsCnn({norm: 'group', groups: 4, seed: 7});
  model.summary(undefined, undefined, (line) => console.log(line));
  const optimizer = tf.train.adam(0.01);
  model.compile({optimizer, loss: 'categoricalCrossentropy', metrics: ['accuracy']});

  const batchSize = 32;
  const stepsPerEpoch = Math.ceil(train.count / batchSize);
  // fit's own shuffle uses Math.random; shuffle with a seed instead, once per epoch.
  const rand = mulberry32(11);
  for (let epoch = 0; epoch < epochs; epoch++) {
    const order = tf.tensor1d(permutation(train.count, Math.floor(rand() * 2 ** 31)), 'int32');
    const xe = tf.gather(xs, order);
    const ye = tf.gather(ys, order);
    if (hasTfjsNode) {
      // tfjs-node registers its ProgressBarLogger as fit's verbose: 1 callback.
      await model.fit(xe, ye, {epochs: epoch + 1, initialEpoch: epoch, batchSize, shuffle: false, verbose: 1});
    } else {
      const progress = progressCallbacks(epochs, stepsPerEpoch);
      await model.fit(xe, ye, {epochs: epoch + 1, initialEpoch: epoch, batchSize, shuffle: false, verbose: 0,
                               callbacks: progress.callbacks});
      progress.stop();
    }
    tf.dispose([order, xe, ye]);
    console.log(`epoch ${epoch + 1}/${epochs}: validation accuracy ${(100 * accuracy(model, validation)).toFixed(2)}%`);
  }
  const trainedAccuracy = accuracy(model, validation);

  // Save with the package's file handler (model.json + weights.bin), then load it back.
  const saved = await model.save(io.fileSystem(outDir));
  console.log(`saved to ${path.relative(process.cwd(), outDir) || '.'}/model.json + weights.bin ` +
              `(${saved.modelArtifactsInfo.weightDataBytes} bytes of weights)`);
  const reloaded = await io.loadLayersModel(io.fileSystem(outDir));
  const reloadedAccuracy = accuracy(reloaded, validation);
  const a = predictLabels(model, validation);
  const b = predictLabels(reloaded, validation);
  const same = a.every((v, i) => v === b[i]);

  reloaded.dispose();
  model.dispose();
  disposeOptimizer(optimizer);
  const leaked = tf.memory().numTensors - before;
  tf.dispose([xs, ys]);

  console.log(`validation accuracy: trained model ${(100 * trainedAccuracy).toFixed(2)}%, ` +
              `reloaded model ${(100 * reloadedAccuracy).toFixed(2)}% ` +
              `(${validation.count} images; predictions ${same ? 'identical' : 'DIFFER'})`);
  console.log(`tensors leaked: ${leaked}; total time ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  if (!same) throw new Error('the reloaded model predicts differently from the trained model');
  if (leaked !== 0) throw new Error(`${leaked} tensors leaked`);
  if (reloadedAccuracy < REQUIRED_ACCURACY) {
    throw new Error(`validation accuracy ${(100 * reloadedAccuracy).toFixed(2)}% is below ${100 * REQUIRED_ACCURACY}%`);
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
