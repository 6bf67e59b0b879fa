/**
 * Leak soak (npm run soak): 2,000 training steps of a model containing
 * GroupNormalization, InstanceNormalization (with running statistics),
 * LayerNormalization (axis list, rmsScaling, rms) and RMSNormalization,
 * 2,000 predict calls and 100 save/load cycles must leave
 * tf.memory().numTensors and numBytes flat after the first step. Prints the
 * figures; exits 1 if anything grew.
 */
import * as tf from '@tensorflow/tfjs';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import {io, layers} from 'tfjs-normalization';

const STEPS = Number(process.env.SOAK_STEPS ?? 2000);
const PREDICTS = Number(process.env.SOAK_PREDICTS ?? 2000);
const CYCLES = Number(process.env.SOAK_CYCLES ?? 100);

function everyLayerModel(): tf.LayersModel {
  const input = tf.input({shape: [4, 4, 6]});
  let h = layers.groupNormalization({groups: 3}).apply(input) as tf.SymbolicTensor;
  h = layers.instanceNormalization({trackRunningStats: true}).apply(h) as tf.SymbolicTensor;
  h = layers.instanceNormalization({axis: 1, gammaConstraint: 'nonNeg', betaRegularizer: 'l1l2'}).apply(h) as tf.SymbolicTensor;
  h = layers.layerNormalization({axis: [1, 3]}).apply(h) as tf.SymbolicTensor;
  h = layers.layerNormalization({rmsScaling: true}).apply(h) as tf.SymbolicTensor;
  h = layers.layerNormalization({rms: true}).apply(h) as tf.SymbolicTensor;
  h = layers.rmsNormalization().apply(h) as tf.SymbolicTensor;
  h = tf.layers.flatten().apply(h) as tf.SymbolicTensor;
  const out = tf.layers.dense({units: 3, activation: 'softmax'}).apply(h) as tf.SymbolicTensor;
  return tf.model({inputs: input, outputs: out});
}

interface Figures {
  phase: string;
  count: number;
  seconds: number;
  tensorsAfterFirst: number;
  tensorsAtEnd: number;
  bytesAfterFirst: number;
  bytesAtEnd: number;
}

async function phase(name: string, count: number, step: (i: number) => Promise<void>): Promise<Figures> {
  await step(0);
  const first = tf.memory();
  const start = performance.now();
  for (let i = 1; i < count; i++) await step(i);
  const end = tf.memory();
  return {
    phase: name, count, seconds: (performance.now() - start) / 1000, tensorsAfterFirst: first.numTensors,
    tensorsAtEnd: end.numTensors, bytesAfterFirst: first.numBytes, bytesAtEnd: end.numBytes,
  };
}

async function main(): Promise<void> {
  await tf.ready();
  console.log(`soak on backend ${tf.getBackend()}: ${STEPS} fit steps, ${PREDICTS} predicts, ${CYCLES} save/load cycles`);
  const model = everyLayerModel();
  model.compile({optimizer: tf.train.adam(1e-3), loss: 'categoricalCrossentropy'});
  const xs = tf.randomNormal([8, 4, 4, 6], 0, 1, 'float32', 1);
  const ys = tf.oneHot(tf.tensor1d([0, 1, 2, 0, 1, 2, 0, 1], 'int32'), 3);
  const results: Figures[] = [];
  results.push(await phase('fit step (trainOnBatch)', STEPS, async () => {
    await model.trainOnBatch(xs, ys);
  }));
  results.push(await phase('predict', PREDICTS, async () => {
    tf.dispose(model.predict(xs));
  }));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tfjs-norm-soak-'));
  results.push(await phase('save/load (memory and files)', CYCLES, async () => {
    let artifacts: tf.io.ModelArtifacts|undefined;
    await model.save(tf.io.withSaveHandler(async (a) => {
      artifacts = a;
      return {modelArtifactsInfo: {dateSaved: new Date(), modelTopologyType: 'JSON'}};
    }));
    const fromMemory = await tf.loadLayersModel(tf.io.fromMemory(artifacts as tf.io.ModelArtifacts));
    fromMemory.dispose();
    await model.save(io.fileSystem(dir));
    const fromFiles = await io.loadLayersModel(dir);
    fromFiles.dispose();
  }));
  fs.rmSync(dir, {recursive: true, force: true});
  console.table(results.map((r) => ({
    phase: r.phase, count: r.count, 'seconds': r.seconds.toFixed(1),
    'tensors after 1st': r.tensorsAfterFirst, 'tensors at end': r.tensorsAtEnd,
    'bytes after 1st': r.bytesAfterFirst, 'bytes at end': r.bytesAtEnd,
  })));
  const grew = results.filter((r) => r.tensorsAtEnd !== r.tensorsAfterFirst || r.bytesAtEnd !== r.bytesAfterFirst);
  if (grew.length > 0) {
    console.error(`LEAK: ${grew.map((r) => r.phase).join(', ')}`);
    process.exit(1);
  }
  console.log('no growth: tf.memory().numTensors and numBytes flat after the first step in every phase');
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
