/**
 * Hostile input: every case gives a clear error or a documented, tested
 * behaviour; none crashes with a TypeError, leaves NaN where a number is
 * due, or leaks.
 */
import * as tf from '@tensorflow/tfjs';
import fc from 'fast-check';

import {
  AddonsGroupNormalization, ContribInstanceNormalization, GroupNormalization, InstanceNormalization, io, LayerNormalization,
  layers, ops, Pix2PixInstanceNormalization, RMSNormalization,
} from '../src';
import {saveToMemory, useTestBackend} from './helpers';

const SEED = Number(process.env.PROPERTY_SEED ?? 20261130);

beforeAll(async () => {
  await useTestBackend();
});

/** Runs every op on x (with a layout valid for it). */
const OPS: Array<[string, (x: tf.Tensor) => tf.Tensor]> = [
  ['groupNorm', (x) => ops.groupNorm(x, {groups: 2})],
  ['instanceNorm', (x) => ops.instanceNorm(x)],
  ['layerNorm', (x) => ops.layerNorm(x, {axis: [1, 2, 3]})],
  ['layerNorm rmsScaling', (x) => ops.layerNorm(x, {rmsScaling: true})],
  ['rmsNorm', (x) => ops.rmsNorm(x, {axis: [-1, -2]})],
];

/** Both the fused kernels (cpu) and the portable tf-op path. */
const PATHS: Array<[string, boolean]> = [['fused kernel', true], ['tf-op path', false]];

describe.each(PATHS)('%s', (_path, fused) => {
  beforeEach(() => tf.env().set('TFJS_NORMALIZATION_FUSED', fused));
  afterAll(() => tf.env().set('TFJS_NORMALIZATION_FUSED', true));

  test.each(OPS)('%s: NaN or Inf in one sample does not change any other sample', (_name, op) => {
    const x = tf.randomNormal([3, 2, 3, 4], 0, 1, 'float32', 1);
    const clean = op(x).arraySync() as number[][][][];
    for (const bad of [NaN, Infinity, -Infinity]) {
      const poisoned = tf.tidy(() => {
        const data = x.arraySync() as number[][][][];
        data[1][0][2][1] = bad;
        return tf.tensor(data);
      });
      const y = op(poisoned).arraySync() as number[][][][];
      expect(y[0]).toEqual(clean[0]);
      expect(y[2]).toEqual(clean[2]);
      tf.dispose(poisoned);
    }
  });

  test.each(OPS)('%s: values near the float32 limit (1e30) give finite outputs', (_name, op) => {
    const x = tf.mul(tf.randomNormal([2, 2, 3, 4], 0, 1, 'float32', 2), 1e30);
    const y = op(x).dataSync();
    expect(Array.from(y).every(Number.isFinite)).toBe(true);
    // Still normalized (epsilon is negligible against a variance of 1e60): not all zero, and bounded.
    expect(Math.max(...Array.from(y, Math.abs))).toBeGreaterThan(0.1);
    expect(Math.max(...Array.from(y, Math.abs))).toBeLessThan(10);
  });
});

describe('integer and bool inputs are a clear error (no silent cast)', () => {
  test.each([['int32'], ['bool']] as const)('%s', (dtype) => {
    const x = tf.zeros([2, 3, 4], dtype);
    for (const [name, op] of OPS.slice(0, 2)) {
      expect(() => op(x)).toThrow(new RegExp(`${name}: argument 'x' must be a float32 tensor; received dtype '${dtype}'.*tf.cast`));
    }
    expect(() => new GroupNormalization({groups: 2, name: 'gn'}).apply(x)).toThrow(
        new RegExp(`GroupNormalization layer 'gn': argument 'x' must be a float32 tensor; received dtype '${dtype}'`));
  });
});

describe('options: unknown keys and wrong types are errors naming the key and the known ones', () => {
  const x = tf.randomNormal([2, 3, 4], 0, 1, 'float32', 9);
  const beta = tf.zeros([4]);
  afterAll(() => tf.dispose([x, beta]));
  const cases: Array<[string, () => unknown, RegExp]> = [
    ['rmsNorm beta', () => ops.rmsNorm(x, {beta} as never),
      /rmsNorm: unknown key 'beta' in 'opts'; known keys: axis, epsilon, gamma, mask\. RMS normalization has no offset/],
    ['layerNorm rmsScaling "no"', () => ops.layerNorm(x, {rmsScaling: 'no' as never}), /layerNorm: argument 'rmsScaling' must be true or false; received "no"/],
    ['layerNorm misspelled key', () => ops.layerNorm(x, {axes: [1, 2]} as never), /layerNorm: unknown key 'axes' in 'opts'; known keys: axis, epsilon, gamma, beta, rmsScaling, mask/],
    ['groupNorm group', () => ops.groupNorm(x, {groups: 2, group: 4} as never), /groupNorm: unknown key 'group' in 'opts'; known keys: groups, axis, epsilon, gamma, beta, mask/],
    ['instanceNorm groups', () => ops.instanceNorm(x, {groups: 4} as never), /instanceNorm: unknown key 'groups' in 'opts'; known keys: axis, epsilon, gamma, beta, mask\. instanceNorm always has one group per channel/],
    ['instanceNorm opts not an object', () => ops.instanceNorm(x, 4 as never), /instanceNorm: argument 'opts' must be an object with the keys axis, epsilon, gamma, beta, mask; received 4/],
    ['groupNormalization({group: 4})', () => layers.groupNormalization({group: 4} as never),
      /GroupNormalization layer '.*': unknown key 'group' in 'args'; known keys: groups, axis, epsilon, center, scale, .*, name, trainable, dtype/],
    ['instanceNormalization({groups: 4})', () => layers.instanceNormalization({groups: 4} as never),
      /InstanceNormalization layer '.*': unknown key 'groups' in 'args'; known keys: axis, epsilon, .*trackRunningStats, momentum/],
    ['layerNormalization({rmsScaling: "no"})', () => layers.layerNormalization({rmsScaling: 'no' as never}), /argument 'rmsScaling' must be true or false; received "no"/],
    ['layerNormalization({centre: false})', () => layers.layerNormalization({centre: false} as never), /LayerNormalization layer '.*': unknown key 'centre' in 'args'/],
    ['rmsNormalization({center: true})', () => layers.rmsNormalization({center: true} as never), /RMSNormalization layer '.*': unknown key 'center' in 'args'; known keys: axis, epsilon, masking, name/],
    ['Pix2PixInstanceNormalization({axis: 1})', () => new Pix2PixInstanceNormalization({axis: 1} as never), /unknown key 'axis' in 'args'; known keys: epsilon, name/],
  ];
  test.each(cases)('%s', (_name, run, message) => {
    const before = tf.memory().numTensors;
    expect(run).toThrow(message);
    expect(tf.memory().numTensors).toBe(before);
  });

  test('every valid key, and undefined values, are still accepted', () => {
    const y = [
      ops.layerNorm(x, {axis: -1, epsilon: 1e-3, gamma: undefined, beta: null, rmsScaling: undefined, mask: undefined}),
      ops.rmsNorm(x, {axis: -1, epsilon: 1e-6, gamma: null, mask: null}),
      ops.groupNorm(x, {groups: 2, axis: -1, epsilon: 1e-3, gamma: null, beta: null, mask: null}),
      ops.instanceNorm(x, {axis: -1, epsilon: 1e-3, gamma: null, beta: null, mask: null}),
    ];
    expect(y.map((t) => t.shape)).toEqual([[2, 3, 4], [2, 3, 4], [2, 3, 4], [2, 3, 4]]);
    tf.dispose(y);
    const layer = layers.groupNormalization({groups: 2, axis: -1, name: 'gn_keys', trainable: true, dtype: 'float32', inputShape: [3, 4], ...{}});
    expect(layer.name).toBe('gn_keys');
  });
});

describe('degenerate shapes', () => {
  test('a batch of size 0 gives an empty output of the same shape', () => {
    const x = tf.zeros([0, 4, 4, 6]);
    for (const [, op] of OPS) {
      const y = op(x);
      expect(y.shape).toEqual([0, 4, 4, 6]);
      expect(y.size).toBe(0);
    }
    const layer = new GroupNormalization({groups: 3});
    expect((layer.apply(x) as tf.Tensor).shape).toEqual([0, 4, 4, 6]);
  });

  test.each(PATHS)('a zero-length non-channel axis gives an empty output (and gradient) of the same shape (%s)', (_path, fused) => {
    tf.env().set('TFJS_NORMALIZATION_FUSED', fused);
    try {
      const before = tf.memory().numTensors;
      const built: tf.layers.Layer[] = [];
      const layer = <L extends tf.layers.Layer>(l: L): L => {
        built.push(l);
        return l;
      };
      const cases: Array<[string, (x: tf.Tensor) => tf.Tensor]> = [
        ['groupNorm', (x) => ops.groupNorm(x, {groups: 2})],
        ['groupNorm channels-first', (x) => ops.groupNorm(x, {groups: 2, axis: 1})],
        ['instanceNorm', (x) => ops.instanceNorm(x)],
        ['GroupNormalization', (x) => layer(new GroupNormalization({groups: 2})).apply(x) as tf.Tensor],
        ['InstanceNormalization', (x) => layer(new InstanceNormalization()).apply(x) as tf.Tensor],
      ];
      for (const shape of [[2, 0, 4], [2, 3, 0, 4], [2, 0, 0, 4]]) {
        for (const [name, op] of cases) {
          const s = name.includes('channels-first') ? [shape[0], 4, ...shape.slice(1, -1)] : shape;
          const x = tf.zeros(s);
          const y = op(x);
          const dx = tf.grad((t: tf.Tensor) => op(t).sum())(x);
          expect([name, y.shape, y.size, dx.shape]).toEqual([name, s, 0, s]);
          tf.dispose([x, y, dx]);
        }
      }
      for (const l of built) l.dispose();
      expect(tf.memory().numTensors).toBe(before);
    } finally {
      tf.env().set('TFJS_NORMALIZATION_FUSED', true);
    }
  });

  test('spatial dimensions of size 1: instance normalization of one element gives exactly beta', () => {
    const x = tf.randomNormal([2, 1, 1, 3], 5, 2, 'float32', 3);
    const beta = tf.tensor1d([0.5, -1, 2]);
    for (const epsilon of [1e-3, 0]) {
      const y = ops.instanceNorm(x, {epsilon, beta, gamma: tf.tensor1d([3, 3, 3])});
      expect(Array.from(y.dataSync())).toEqual([0.5, -1, 2, 0.5, -1, 2]);
    }
    // Group normalization still has several elements per group there.
    const g = ops.groupNorm(tf.tensor4d([[[[1, 3]]]]), {groups: 1, epsilon: 0});
    expect(Array.from(g.dataSync())).toEqual([-1, 1]);
  });

  test('epsilon 0 with a constant input gives beta in every layer, and a finite gradient', () => {
    const x = tf.fill([2, 3, 3, 4], 7.25);
    for (const layer of [
      new GroupNormalization({groups: 2, epsilon: 0, betaInitializer: {className: 'Constant', config: {value: 0.5}}}),
      new InstanceNormalization({epsilon: 0, betaInitializer: {className: 'Constant', config: {value: 0.5}}}),
      new LayerNormalization({axis: [1, 2, 3], epsilon: 0, betaInitializer: {className: 'Constant', config: {value: 0.5}}}),
    ]) {
      const y = layer.apply(x) as tf.Tensor;
      expect(Array.from(new Set(y.dataSync()))).toEqual([0.5]);
      const dx = tf.grad((xx: tf.Tensor) => tf.sum(layer.apply(xx) as tf.Tensor))(x);
      expect(Array.from(dx.dataSync()).every(Number.isFinite)).toBe(true);
    }
  });
});

describe('fuzzed fromConfig: 1,000 random configs each give a named error or a working layer', () => {
  const CLASSES = [GroupNormalization, InstanceNormalization, LayerNormalization, RMSNormalization, AddonsGroupNormalization,
    ContribInstanceNormalization, Pix2PixInstanceNormalization];
  const KEYS = ['groups', 'axis', 'epsilon', 'center', 'scale', 'rms', 'rmsScaling', 'momentum', 'trackRunningStats',
    'betaInitializer', 'gammaInitializer', 'betaRegularizer', 'gammaRegularizer', 'betaConstraint', 'gammaConstraint',
    'name', 'trainable', 'dtype', 'batchInputShape', 'extraKey'];
  const value = fc.oneof(
      fc.constant(null), fc.boolean(), fc.integer({min: -40, max: 40}), fc.double(), fc.constantFrom(1e308, -1e308, 2 ** 53),
      fc.string({maxLength: 8}), fc.constantFrom('zeros', 'ones', 'l1l2', 'nonNeg', 'glorotUniform', 'float32', 'int32'),
      fc.array(fc.integer({min: -5, max: 8}), {maxLength: 4}), fc.constant([1, null]),
      fc.record({className: fc.constantFrom('Zeros', 'L1L2', 'MaxNorm', 'Nope', 'Constant'), config: fc.dictionary(fc.string({maxLength: 5}), fc.integer())}),
      fc.dictionary(fc.string({maxLength: 4}), fc.integer(), {maxKeys: 2}));
  const configArb = fc.oneof(
      {weight: 9, arbitrary: fc.dictionary(fc.constantFrom(...KEYS), value, {maxKeys: 8})},
      {weight: 1, arbitrary: value});

  test('fuzz', () => {
    const before = tf.memory().numTensors;
    let built = 0;
    fc.assert(fc.property(fc.constantFrom(...CLASSES), configArb, (cls, config) => {
      const className = cls.className;
      let layer: tf.layers.Layer;
      try {
        layer = cls.fromConfig(cls as never, config as never) as unknown as tf.layers.Layer;
      } catch (e) {
        // A named error: an Error (not a TypeError or RangeError) whose message names the layer class.
        expect(e).toBeInstanceOf(Error);
        expect((e as Error).constructor).toBe(Error);
        expect((e as Error).message).toContain(className.replace('Addons>', ''));
        return;
      }
      // A layer: it serializes, and builds on a shape or refuses it with a named error.
      expect(layer.getConfig()).toBeInstanceOf(Object);
      try {
        tf.tidy(() => {
          layer.apply(tf.ones([2, 3, 3, 6]));
        });
        built++;
      } catch (e) {
        expect((e as Error).constructor).toBe(Error);
        expect((e as Error).message).toMatch(/Normalization|Input \d+ is incompatible|expected/);
      }
      if (layer.built) layer.dispose();
    }), {seed: SEED, numRuns: 1000});
    expect(built).toBeGreaterThan(10);
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('fuzzed model.json and weights: a named error and nothing half-loaded', () => {
  test('300 random corruptions of a saved model', async () => {
    const model = tf.sequential({layers: [
      tf.layers.dense({inputShape: [6], units: 6, name: 'd'}),
      layers.groupNormalization({groups: 3, name: 'gn'}), layers.layerNormalization({name: 'ln'}), layers.rmsNormalization({name: 'rms'}),
    ]});
    const artifacts = await saveToMemory(model);
    model.dispose();
    const good = artifacts as tf.io.ModelArtifacts;
    const topologyText = JSON.stringify(good.modelTopology);
    const data = good.weightData as ArrayBuffer;
    const specs = good.weightSpecs as tf.io.WeightsManifestEntry[];
    const mutation = fc.oneof(
        fc.record({kind: fc.constant('truncate-json'), at: fc.nat({max: topologyText.length - 1})}),
        fc.record({kind: fc.constant('set-key'), path: fc.nat(), key: fc.constantFrom('groups', 'axis', 'epsilon', 'class_name', 'units', 'center', 'rms_scaling'),
          value: fc.oneof(fc.constant(null), fc.integer({min: -9, max: 9}), fc.string({maxLength: 4}), fc.constant([9, -9]), fc.constant({}))}),
        fc.record({kind: fc.constant('truncate-weights'), at: fc.nat({max: data.byteLength})}),
        fc.record({kind: fc.constant('drop-spec'), index: fc.nat({max: specs.length - 1})}),
        fc.record({kind: fc.constant('spec-shape'), index: fc.nat({max: specs.length - 1}), dim: fc.integer({min: 0, max: 9})}),
        fc.record({kind: fc.constant('spec-dtype'), index: fc.nat({max: specs.length - 1}), dtype: fc.constantFrom('int32', 'bool', 'string', 'float16', 'complex64')}));
    let loaded = 0;
    await fc.assert(fc.asyncProperty(mutation, async (m) => {
      const s: tf.io.WeightsManifestEntry[] = JSON.parse(JSON.stringify(specs));
      let topology: unknown = JSON.parse(topologyText);
      let weights = data;
      let text: string|null = null;
      switch (m.kind) {
        case 'truncate-json': text = topologyText.slice(0, m.at); break;
        case 'set-key': {
          const layersJson = (topology as {config: {layers: Array<Record<string, Record<string, unknown>>>}}).config.layers;
          const layer = layersJson[m.path % layersJson.length];
          if (m.key === 'class_name') layer.class_name = m.value as never;
          else layer.config[m.key] = m.value;
          break;
        }
        case 'truncate-weights': weights = data.slice(0, m.at); break;
        case 'drop-spec': s.splice(m.index, 1); break;
        case 'spec-shape': s[m.index].shape = [...s[m.index].shape.slice(0, -1), m.dim]; break;
        case 'spec-dtype': s[m.index].dtype = m.dtype as 'float32'; break;
      }
      const before = tf.memory().numTensors;
      const variables = Object.keys(tf.engine().registeredVariables).length;
      try {
        if (text != null) topology = JSON.parse(text);
        const result = await io.loadLayersModel(tf.io.fromMemory({modelTopology: topology as object, weightSpecs: s, weightData: weights}));
        loaded++;
        result.dispose();
      } catch (e) {
        const message = (e as Error).message;
        // JSON.parse's own SyntaxError is what a truncated file gives before loading (io.fileSystem names it).
        if (!(e instanceof SyntaxError)) expect(message).toMatch(/^io\.loadLayersModel: |^io\.fileSystem: /);
      }
      expect(tf.memory().numTensors).toBe(before);
      expect(Object.keys(tf.engine().registeredVariables).length).toBe(variables);
    }), {seed: SEED, numRuns: 300});
    expect(loaded).toBeGreaterThan(0);
  });
});
