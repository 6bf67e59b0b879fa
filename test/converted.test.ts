/**
 * Loading models in the converter's format (snake_case configs,
 * weightsManifest, weights by name), one fixture per flavour in
 * test/fixtures/converted/. Weights are made here, written beside the
 * model.json, loaded through io.fileSystem, and the outputs compared with
 * the independent float64 reference of test/reference.ts for that source's
 * math.
 */
import * as tf from '@tensorflow/tfjs';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import {
  AddonsGroupNormalization, AddonsInstanceNormalization, ContribInstanceNormalization, GroupNormalization,
  InstanceNormalization, io, LayerNormalization, Pix2PixInstanceNormalization, RMSNormalization,
} from '../src';
import {expectClose, saveToMemory, useTestBackend} from './helpers';
import {axesSpec, groupSpec, normals, refForward, RefSpec, rng} from './reference';

type Weights = Record<string, Float32Array>;
type Chain = (x: ArrayLike<number>, shape: number[], w: Weights) => Float64Array;

interface Fixture {
  file: string;
  classes: Array<new (...args: never[]) => tf.layers.Layer>;
  reference: Chain;
}

/** keras-contrib with axis null: one set per sample, params of shape [1]. */
function perSampleSpec(shape: number[], epsilon: number): RefSpec {
  const per = shape.slice(1).reduce((a, b) => a * b, 1);
  return {shape, epsilon, mode: 'stdEps', numSets: shape[0], setOf: (i) => Math.floor(i / per), paramOf: () => 0};
}

const FIXTURES: Fixture[] = [
  {
    file: 'keras3-group-normalization.json', classes: [GroupNormalization],
    reference: (x, s, w) => refForward(groupSpec(s, 3, 3, 1e-5), x, w['group_normalization/gamma'], w['group_normalization/beta']),
  },
  {
    file: 'tf-keras-layer-normalization.json', classes: [LayerNormalization, LayerNormalization],
    reference: (x, s, w) => {
      const y = refForward(axesSpec(s, [1, 2], 1e-3, 'center'), x, w['layer_normalization/gamma'], w['layer_normalization/beta']);
      return refForward(axesSpec(s, [2], 1e-6, 'rmsScaling'), y, w['layer_normalization_1/gamma']);
    },
  },
  {
    file: 'keras3-rms-normalization.json', classes: [RMSNormalization],
    reference: (x, s, w) => refForward(axesSpec(s, [2], 1e-6, 'rms'), x, w['rms_normalization/scale']),
  },
  {
    file: 'tfa-normalization.json', classes: [AddonsGroupNormalization, AddonsInstanceNormalization],
    reference: (x, s, w) => {
      const y = refForward(groupSpec(s, 4, 3, 1e-3), x, w['group_normalization_1/gamma'], w['group_normalization_1/beta']);
      return refForward(groupSpec(s, 8, 3, 1e-3), y, w['instance_normalization_1/gamma'], w['instance_normalization_1/beta']);
    },
  },
  {
    file: 'keras-contrib-instance-normalization.json',
    classes: [ContribInstanceNormalization, ContribInstanceNormalization, ContribInstanceNormalization],
    reference: (x, s, w) => {
      const y1 = refForward({...groupSpec(s, 3, 3, 1e-3), mode: 'stdEps'}, x, w['instance_normalization_1/gamma'], w['instance_normalization_1/beta']);
      const y2 = refForward(perSampleSpec(s, 1e-3), y1, w['instance_normalization_2/gamma'], w['instance_normalization_2/beta']);
      return refForward({...groupSpec(s, 3, 3, 1e-3), mode: 'stdEps'}, y2);
    },
  },
  {
    file: 'pix2pix-instance-normalization.json', classes: [Pix2PixInstanceNormalization],
    reference: (x, s, w) => refForward(groupSpec(s, 4, 3, 1e-5), x, w['instance_normalization/scale'], w['instance_normalization/offset']),
  },
  {
    file: 'native-instance-normalization.json', classes: [InstanceNormalization],
    reference: (x, s, w) => refForward(groupSpec(s, 5, 3, 1e-3), x, w['instance_normalization_native/gamma'], w['instance_normalization_native/beta']),
  },
];

let tmp: string;
beforeAll(async () => {
  await useTestBackend();
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tfjs-norm-converted-'));
});
afterAll(() => fs.rmSync(tmp, {recursive: true, force: true}));

/** Writes the fixture's model.json and a weights file of seeded values; returns the model.json path and the weights. */
function materialize(file: string): {modelPath: string, weights: Weights, inputShape: number[]} {
  const json = JSON.parse(fs.readFileSync(path.join(__dirname, 'fixtures', 'converted', file), 'utf8'));
  const rand = rng(file.length * 31);
  const weights: Weights = {};
  const chunks: Buffer[] = [];
  for (const spec of json.weightsManifest[0].weights as tf.io.WeightsManifestEntry[]) {
    const n = spec.shape.reduce((a, b) => a * b, 1);
    const isScale = /gamma|scale$/.test(spec.name);
    const values = normals(rand, n, isScale ? 1 : 0, isScale ? 0.3 : 0.5);
    weights[spec.name] = values;
    chunks.push(Buffer.from(values.buffer));
  }
  const dir = path.join(tmp, path.basename(file, '.json'));
  fs.mkdirSync(dir, {recursive: true});
  fs.writeFileSync(path.join(dir, json.weightsManifest[0].paths[0]), Buffer.concat(chunks));
  fs.writeFileSync(path.join(dir, 'model.json'), JSON.stringify(json));
  const topology = json.modelTopology.model_config ?? json.modelTopology;
  const first = topology.config.layers[0].config;
  return {modelPath: path.join(dir, 'model.json'), weights, inputShape: first.batch_input_shape};
}

describe.each(FIXTURES.map((f) => [f.file, f] as const))('converted model %s', (_file, fixture) => {
  test('loads with the flavour\'s class and reproduces its source\'s math', async () => {
    const {modelPath, weights, inputShape} = materialize(fixture.file);
    const before = tf.memory().numTensors;
    for (const load of [() => io.loadLayersModel(modelPath), () => tf.loadLayersModel(io.fileSystem(modelPath))]) {
      const model = await load();
      const norm = model.layers.filter((l) => l.getClassName() !== 'InputLayer');
      expect(norm.map((l) => l.constructor)).toEqual(fixture.classes);
      const shape = [2, ...inputShape.slice(1)];
      const xs = normals(rng(5), shape.reduce((a, b) => a * b, 1), 0.5, 2);
      const x = tf.tensor(xs, shape);
      const y = model.predict(x) as tf.Tensor;
      expectClose(y, fixture.reference(xs, shape, weights), 5e-5, fixture.file);
      // Saving again keeps the flavour: the reloaded model computes the same.
      const artifacts = await saveToMemory(model);
      const again = await tf.loadLayersModel(tf.io.fromMemory(artifacts as tf.io.ModelArtifacts));
      expect(again.layers.filter((l) => l.getClassName() !== 'InputLayer').map((l) => l.constructor)).toEqual(fixture.classes);
      const y2 = again.predict(x) as tf.Tensor;
      expectClose(y2, y.dataSync(), 0, `${fixture.file} after save/load`);
      tf.dispose([x, y, y2]);
      model.dispose();
      again.dispose();
    }
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('InstanceNormalization flavour rule', () => {
  const base = {name: 'n', trainable: true, dtype: 'float32'};
  test.each([
    [{...base, groups: -1, axis: -1, epsilon: 1e-3}, 'native'],
    [{...base, epsilon: 1e-5}, 'pix2pix'],
    [{...base}, 'pix2pix'],
    [{...base, axis: null, epsilon: 1e-3, center: true, scale: true}, 'keras-contrib'],
    [{...base, axis: 1, epsilon: 1e-3}, 'keras-contrib'],
  ] as const)('%j -> %s', (config, flavour) => {
    expect(InstanceNormalization.fromConfig(InstanceNormalization, config as never).constructor.name).toBe(
        {'native': 'InstanceNormalization', 'pix2pix': 'Pix2PixInstanceNormalization', 'keras-contrib': 'ContribInstanceNormalization'}[flavour]);
  });
  test.each([
    [{...base, groups: 4, axis: -1}, /InstanceNormalization layer 'n' \(loading\): argument 'groups' must be -1 in an InstanceNormalization config.*received 4/],
    [{...base, epsilon: 1e-3, momentum: 0.9}, /unrecognised config keys \["epsilon","momentum"\] \(unexpected: \["momentum"\]\)/],
    [{...base, center: true}, /unrecognised config keys \["center"\] \(no axis\)/],
  ] as const)('unrecognisable config %j is an error', (config, message) => {
    expect(() => InstanceNormalization.fromConfig(InstanceNormalization, config as never)).toThrow(message);
  });
});
