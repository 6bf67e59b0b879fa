/**
 * Real converted models from public repositories, read from
 * ../shared/realworld/ (never copied into the project: unlicensed). When
 * the folder is absent the tests say so loudly and are skipped; with
 * REQUIRE_REALWORLD=1 that is a failure.
 */
import * as tf from '@tensorflow/tfjs';
import * as fs from 'fs';
import * as path from 'path';

import {ContribInstanceNormalization, io, Pix2PixInstanceNormalization} from '../src';
import {useTestBackend} from './helpers';

const ROOT = path.resolve(__dirname, '..', '..', 'shared', 'realworld');
const present = fs.existsSync(path.join(ROOT, 'facetest', 'model.json'));
if (!present) {
  const message = `real-world models NOT tested: ${ROOT} is absent`;
  if (process.env.REQUIRE_REALWORLD === '1') throw new Error(message);
  process.stderr.write(`\n!!! ${message} !!!\n\n`);
}
const describeIfPresent = present ? describe : describe.skip;

beforeAll(async () => {
  await useTestBackend();
});

describeIfPresent('keras-contrib InstanceNormalization models (facetest)', () => {
  test.each([
    ['facetest', 256, -1],
    ['facetest-axisnull', 128, null],
  ] as const)('%s loads with its weights and predicts finite images of the right shape', async (dir, size, axis) => {
    const before = tf.memory().numTensors;
    const model = await io.loadLayersModel(path.join(ROOT, dir, 'model.json'));
    const norms = model.layers.filter((l) => l.getClassName() === 'InstanceNormalization');
    expect(norms.length).toBeGreaterThan(0);
    for (const l of norms) {
      expect(l).toBeInstanceOf(ContribInstanceNormalization);
      expect((l as ContribInstanceNormalization).axis).toBe(axis);
    }
    const x = tf.randomUniform([1, size, size, 3], -1, 1, 'float32', 3);
    const y = model.predict(x) as tf.Tensor;
    expect(y.shape.slice(1)).toEqual((model.outputs[0].shape as number[]).slice(1));
    expect(y.shape[0]).toBe(1);
    const values = y.dataSync();
    expect(values.every(Number.isFinite)).toBe(true);
    // Not a constant image: the network did something.
    let lo = Infinity;
    let hi = -Infinity;
    for (const v of values) {
      lo = Math.min(lo, v);
      hi = Math.max(hi, v);
    }
    expect(hi - lo).toBeGreaterThan(1e-3);
    tf.dispose([x, y]);
    model.dispose();
    expect(tf.memory().numTensors).toBe(before);
  }, 120000);
});

describeIfPresent('pix2pix InstanceNormalization model (pix2pix-style, topology only)', () => {
  test('builds from its topology with InstanceNormalization weights named scale/offset, computing pix2pix\'s math', async () => {
    const json = JSON.parse(fs.readFileSync(path.join(ROOT, 'pix2pix-style', 'model.json'), 'utf8'));
    // 54M parameters: initialize the convolution kernels with zeros rather than
    // random numbers (the weights are not in the folder anyway), so building is fast.
    const zeroKernels = (v: unknown): unknown => {
      if (Array.isArray(v)) return v.map(zeroKernels);
      if (v && typeof v === 'object') {
        return Object.fromEntries(Object.entries(v).map(([k, e]) =>
          [k, k === 'kernel_initializer' ? {class_name: 'Zeros', config: {}} : zeroKernels(e)]));
      }
      return v;
    };
    const model = await tf.models.modelFromJSON({modelTopology: zeroKernels(json.modelTopology) as never});
    const all = (m: tf.layers.Layer): tf.layers.Layer[] =>
      m instanceof tf.LayersModel ? m.layers.flatMap(all) : [m];
    const norms = all(model).filter((l) => l.getClassName() === 'InstanceNormalization');
    const specs = new Map<string, number[]>(
        json.weightsManifest.flatMap((g: {weights: Array<{name: string, shape: number[]}>}) => g.weights.map((w) => [w.name, w.shape])));
    // As many layers as the manifest has instance_normalization*/scale weights.
    expect(norms.length).toBe(Array.from(specs.keys()).filter((k) => /^instance_normalization[^/]*\/scale$/.test(k)).length);
    expect(norms.length).toBeGreaterThan(0);
    for (const l of norms) {
      expect(l).toBeInstanceOf(Pix2PixInstanceNormalization);
      expect((l as Pix2PixInstanceNormalization).epsilon).toBe(1e-5);
      expect(l.weights.map((w) => w.originalName.split('/').pop())).toEqual(['scale', 'offset']);
      // Every weight the layer builds is in the converted model's manifest, with the same shape.
      for (const w of l.weights) expect(specs.get(w.originalName)).toEqual(w.shape);
    }
    // One of them, run alone: scale * (x - mean) * rsqrt(var + 1e-5) + offset over H and W.
    const layer = norms[0];
    const C = layer.weights[0].shape[0] as number;
    const scale = tf.randomUniform([C], 0.5, 1.5, 'float32', 1);
    const offset = tf.randomUniform([C], -1, 1, 'float32', 2);
    layer.setWeights([scale, offset]);
    const x = tf.randomNormal([1, 4, 4, C], 1, 3, 'float32', 3);
    const y = layer.apply(x) as tf.Tensor;
    const {mean, variance} = tf.moments(x, [1, 2], true);
    const expected = tf.add(tf.mul(scale, tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, 1e-5)))), offset);
    expect(tf.max(tf.abs(tf.sub(y, expected))).dataSync()[0]).toBeLessThan(1e-4);
    tf.dispose([scale, offset, x, y, mean, variance, expected]);
    model.dispose();
  }, 120000);
});
