/**
 * The tensorflow (tfjs-node) backend, where @tensorflow/tfjs-node can be
 * imported (scripts/tfjs-node-test.sh builds it and runs this file):
 * - model.fit with the package's layers on 'tensorflow';
 * - saving and loading through the package's io.fileSystem and through
 *   tfjs-node's own file:// handler, both directions, every weight and the
 *   predictions compared;
 * - the digits CNN of `npm start` (examples/lib/cnn.ts) trained a few steps
 *   on cpu and on tensorflow from the same weights: the same losses.
 * Where tfjs-node cannot be imported, one loud line says so and the tests are
 * skipped (REQUIRE_TFJS_NODE=1 makes that a failure).
 */
import * as tf from '@tensorflow/tfjs';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import {buildDigitsCnn} from '../examples/lib/cnn';
import {useFastConvFilterGrad} from '../examples/lib/conv-filter-grad';
import {toTensors} from '../examples/lib/digits';
import {loadDigitsSplit} from '../examples/lib/digits-node';
import {io, layers} from '../src';
import {maxAbsDiff, reportTfjsNodeMissing, tryTfjsNode} from './helpers';
import {normals, rng} from './reference';

const NO_TFJS_NODE_MESSAGE = 'tensorflow (tfjs-node) backend NOT tested: @tensorflow/tfjs-node is not installed';

/**
 * Relative tolerance on the digits losses, cpu vs tensorflow: both compute
 * in float32 with different summation orders (TensorFlow's conv and matmul
 * kernels, the cpu backend's loops); after 5 SGD steps the losses differ by
 * less than 1e-6 relative.
 */
const LOSS_TOL = 1e-4;

/** Every layer of the package in one model (channels-last input [4, 4, 6]). */
function everyLayerModel(): tf.LayersModel {
  const input = tf.input({shape: [4, 4, 6]});
  let h = layers.groupNormalization({groups: 3}).apply(input) as tf.SymbolicTensor;
  h = layers.instanceNormalization({trackRunningStats: true}).apply(h) as tf.SymbolicTensor;
  h = layers.layerNormalization({axis: [1, 3]}).apply(h) as tf.SymbolicTensor;
  h = layers.rmsNormalization().apply(h) as tf.SymbolicTensor;
  h = tf.layers.flatten().apply(h) as tf.SymbolicTensor;
  const out = tf.layers.dense({units: 2, activation: 'softmax', kernelInitializer: tf.initializers.glorotUniform({seed: 3})})
      .apply(h) as tf.SymbolicTensor;
  return tf.model({inputs: input, outputs: out});
}

async function expectSameModel(a: tf.LayersModel, b: tf.LayersModel, x: tf.Tensor): Promise<void> {
  const wa = a.getWeights();
  const wb = b.getWeights();
  expect(wb.map((w) => w.shape)).toEqual(wa.map((w) => w.shape));
  for (let i = 0; i < wa.length; i++) expect(maxAbsDiff(await wb[i].data(), await wa[i].data())).toBe(0);
  const pa = a.predict(x) as tf.Tensor;
  const pb = b.predict(x) as tf.Tensor;
  expect(maxAbsDiff(await pb.data(), await pa.data())).toBe(0);
  tf.dispose([pa, pb]);
}

if (!tryTfjsNode()) {
  reportTfjsNodeMissing(NO_TFJS_NODE_MESSAGE, 'tensorflow (tfjs-node) backend');
} else {
  let tmp: string;
  beforeAll(async () => {
    expect(await tf.setBackend('tensorflow')).toBe(true);
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tfjs-node-test-'));
  });
  afterAll(() => fs.rmSync(tmp, {recursive: true, force: true}));

  test('model.fit on tensorflow: the loss falls, running statistics move, nothing leaks', async () => {
    expect(tf.getBackend()).toBe('tensorflow');
    const rand = rng(5);
    const xs = tf.tensor4d(normals(rand, 32 * 4 * 4 * 6), [32, 4, 4, 6]);
    const ys = tf.oneHot(tf.tensor1d(Array.from({length: 32}, (_, i) => i % 2), 'int32'), 2);
    const model = everyLayerModel();
    model.compile({optimizer: tf.train.sgd(0.1), loss: 'categoricalCrossentropy'});
    const before = tf.memory().numTensors;
    const history = await model.fit(xs, ys, {epochs: 8, batchSize: 8, shuffle: false, verbose: 0});
    const losses = history.history.loss as number[];
    expect(losses[losses.length - 1]).toBeLessThan(losses[0]);
    expect(tf.memory().numTensors).toBe(before);
    const running = model.layers[2].getWeights().slice(-2);
    expect(running.length).toBe(2);
    expect(Math.max(...Array.from(await running[0].data(), Math.abs))).toBeGreaterThan(0);
    tf.dispose([xs, ys]);
    model.dispose();
  });

  test('io.fileSystem and tfjs-node\'s file:// load what the other saved: every weight and the predictions identical', async () => {
    const model = everyLayerModel();
    const x = tf.randomNormal([2, 4, 4, 6], 0, 1, 'float32', 1);
    const byPackage = path.join(tmp, 'by-package');
    const byTfjsNode = path.join(tmp, 'by-tfjs-node');
    await model.save(io.fileSystem(byPackage));
    await model.save(`file://${byTfjsNode}`);
    expect(fs.existsSync(path.join(byTfjsNode, 'model.json'))).toBe(true);
    const before = tf.memory().numTensors;
    const loads: Array<() => Promise<tf.LayersModel>> = [
      () => tf.loadLayersModel(`file://${path.join(byPackage, 'model.json')}`),  // tfjs-node reads the package's files
      () => io.loadLayersModel(io.fileSystem(byTfjsNode)),                      // the package reads tfjs-node's files
      () => io.loadLayersModel(`file://${path.join(byTfjsNode, 'model.json')}`),
    ];
    for (const load of loads) {
      const loaded = await load();
      await expectSameModel(model, loaded, x);
      loaded.dispose();
    }
    expect(tf.memory().numTensors).toBe(before);
    x.dispose();
    model.dispose();
  });

  test(`the digits CNN trained 5 steps on cpu and on tensorflow from the same weights: losses within ${LOSS_TOL} relative`, async () => {
    const {train} = loadDigitsSplit();
    const restore = useFastConvFilterGrad();
    const losses: Record<string, number[]> = {};
    let initial: Float32Array[]|null = null;
    try {
      for (const backend of ['cpu', 'tensorflow']) {
        expect(await tf.setBackend(backend)).toBe(true);
        const {xs, ys} = toTensors(train);
        const model = buildDigitsCnn({norm: 'group', groups: 4, seed: 7});
        if (initial == null) {
          initial = model.getWeights().map((w) => w.dataSync() as Float32Array);
        } else {
          const init = initial;
          model.setWeights(model.getWeights().map((w, i) => tf.tensor(init[i], w.shape)));
        }
        const optimizer = tf.train.sgd(0.05);
        model.compile({optimizer, loss: 'categoricalCrossentropy'});
        losses[backend] = [];
        for (let step = 0; step < 5; step++) {
          const xb = xs.slice([step * 32], [32]);
          const yb = ys.slice([step * 32], [32]);
          expect(tf.getBackend()).toBe(backend);
          losses[backend].push(await model.trainOnBatch(xb, yb) as number);
          tf.dispose([xb, yb]);
        }
        model.dispose();
        optimizer.dispose();
        tf.dispose([xs, ys]);
      }
    } finally {
      restore();
      await tf.setBackend('tensorflow');
    }
    process.stderr.write(`digits losses cpu ${losses.cpu.map((l) => l.toPrecision(9))}, tensorflow ${losses.tensorflow.map((l) => l.toPrecision(9))}\n`);
    expect(losses.cpu[4]).toBeLessThan(losses.cpu[0]);
    losses.cpu.forEach((l, i) => expect(Math.abs(losses.tensorflow[i] - l)).toBeLessThanOrEqual(LOSS_TOL * Math.abs(l)));
  });
}
