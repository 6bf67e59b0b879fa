/** The four layers: the shared layer test, Keras defaults and keys, literal outputs, errors. */
import * as tf from '@tensorflow/tfjs';

import {
  AddonsGroupNormalization, AddonsInstanceNormalization, BatchNormalization, ContribInstanceNormalization, FilterResponseNormalization, GroupNormalization,
  InstanceNormalization, SpectralNormalization, TLU, WeightNormalization,
  LayerNormalization, layers, LocalResponseNormalization, ops, Pix2PixInstanceNormalization, RMSNormalization, UnitNormalization,
  WSConv1D, WSConv2D,
} from '../src';
import {REGISTERED_CLASSES} from '../src/register';
import {expectClose, LayerTestSpec, maxAbsDiff, runLayerTest, saveToMemory, useTestBackend} from './helpers';

beforeAll(async () => {
  await useTestBackend();
});

const AFFINE_KEYS = [
  'epsilon', 'center', 'scale', 'betaInitializer', 'gammaInitializer', 'betaRegularizer', 'gammaRegularizer',
  'betaConstraint', 'gammaConstraint',
];

/** tfjs's conv config keys (Conv1D's; Conv2D adds dataFormat) and WSConv's own. */
const WS_CONV_KEYS = [
  'filters', 'kernelInitializer', 'kernelRegularizer', 'kernelConstraint', 'kernelSize', 'strides', 'padding', 'dilationRate',
  'activation', 'useBias', 'biasInitializer', 'biasConstraint', 'biasRegularizer', 'activityRegularizer', 'standardizationEpsilon',
];

/** The layer harness's cases: every registered class (and each flavour) has at least one. */
const HARNESS_CASES: Array<[string, LayerTestSpec]> = [
  ['GroupNormalization, channels-last', {
    cls: GroupNormalization, args: {groups: 4}, inputShape: [2, 5, 5, 8],
    weights: [['gamma', [8]], ['beta', [8]]], configKeys: ['groups', 'axis', ...AFFINE_KEYS],
  }],
  ['GroupNormalization, channels-first, groups -1, no center', {
    cls: GroupNormalization, args: {groups: -1, axis: 1, center: false}, inputShape: [2, 6, 3, 3],
    weights: [['gamma', [6]]], configKeys: ['groups', 'axis', ...AFFINE_KEYS],
  }],
  ['GroupNormalization with regularizers, constraints and initializers with arguments', {
    cls: GroupNormalization,
    args: {
      groups: 2, gammaRegularizer: 'l1l2', betaRegularizer: tf.regularizers.l2({l2: 0.05}),
      gammaConstraint: 'nonNeg', betaConstraint: {className: 'MaxNorm', config: {maxValue: 3, axis: 0}},
      gammaInitializer: tf.initializers.randomUniform({minval: 0.9, maxval: 1.1, seed: 1}),
      betaInitializer: {className: 'Constant', config: {value: 0.25}},
    },
    inputShape: [3, 4, 6], weights: [['gamma', [6]], ['beta', [6]]], configKeys: ['groups', 'axis', ...AFFINE_KEYS],
  }],
  ['InstanceNormalization', {
    cls: InstanceNormalization, args: {}, inputShape: [2, 4, 4, 3],
    weights: [['gamma', [3]], ['beta', [3]]], configKeys: ['groups', 'axis', ...AFFINE_KEYS],
  }],
  ['InstanceNormalization channels-first, no scale', {
    cls: InstanceNormalization, args: {axis: 1, scale: false}, inputShape: [2, 3, 4, 4],
    weights: [['beta', [3]]], configKeys: ['groups', 'axis', ...AFFINE_KEYS],
  }],
  ['LayerNormalization, unsorted axes', {
    cls: LayerNormalization, args: {axis: [3, 1]}, inputShape: [2, 3, 4, 5],
    weights: [['gamma', [5, 3]], ['beta', [5, 3]]], configKeys: ['axis', 'rmsScaling', ...AFFINE_KEYS],
  }],
  ['LayerNormalization, rank 6, center and scale off', {
    cls: LayerNormalization, args: {axis: -1, center: false, scale: false}, inputShape: [1, 2, 2, 2, 2, 3],
    weights: [], configKeys: ['axis', 'rmsScaling', ...AFFINE_KEYS],
  }],
  ['LayerNormalization, rms', {
    cls: LayerNormalization, args: {rms: true}, inputShape: [2, 7, 6],
    weights: [['gamma', [6]]], configKeys: ['axis', 'rmsScaling', 'rms', ...AFFINE_KEYS],
  }],
  ['LayerNormalization, rmsScaling', {
    cls: LayerNormalization, args: {rmsScaling: true, scale: false}, inputShape: [2, 7, 6],
    weights: [['gamma', [6]]], configKeys: ['axis', 'rmsScaling', ...AFFINE_KEYS],
  }],
  ['RMSNormalization', {
    cls: RMSNormalization, args: {}, inputShape: [2, 5, 8], weights: [['scale', [8]]], configKeys: ['axis', 'epsilon'],
  }],
  ['RMSNormalization over two axes', {
    cls: RMSNormalization, args: {axis: [1, 2], epsilon: 1e-5}, inputShape: [2, 5, 8],
    weights: [['scale', [5, 8]]], configKeys: ['axis', 'epsilon'],
  }],
  ['ContribInstanceNormalization, channels-last', {
    cls: ContribInstanceNormalization, args: {axis: -1}, inputShape: [2, 4, 4, 3],
    weights: [['gamma', [3]], ['beta', [3]]], configKeys: ['axis', ...AFFINE_KEYS],
  }],
  ['ContribInstanceNormalization, axis null, no center', {
    cls: ContribInstanceNormalization, args: {center: false}, inputShape: [2, 5, 3],
    weights: [['gamma', [1]]], configKeys: ['axis', ...AFFINE_KEYS],
  }],
  ['Pix2PixInstanceNormalization', {
    cls: Pix2PixInstanceNormalization, args: {}, inputShape: [2, 4, 4, 3],
    weights: [['scale', [3]], ['offset', [3]]], configKeys: ['epsilon'],
  }],
  ['AddonsGroupNormalization', {
    cls: AddonsGroupNormalization, args: {groups: 2}, inputShape: [2, 3, 3, 4],
    weights: [['gamma', [4]], ['beta', [4]]], configKeys: ['groups', 'axis', ...AFFINE_KEYS],
    usesMask: false,  // masking 'propagate' by default, as TFA's: the mask is passed on, unused
  }],
  ['AddonsInstanceNormalization', {
    cls: AddonsInstanceNormalization, args: {}, inputShape: [2, 3, 3, 4],
    weights: [['gamma', [4]], ['beta', [4]]], configKeys: ['groups', 'axis', ...AFFINE_KEYS],
    usesMask: false,  // masking 'propagate' by default, as TFA's: the mask is passed on, unused
  }],
  ['UnitNormalization over two axes', {
    // Keras's UnitNormalization passes the mask on without using it; so does this one.
    cls: UnitNormalization, args: {axis: [1, 2]}, inputShape: [2, 3, 4], weights: [], configKeys: ['axis'], usesMask: false,
  }],
  ['LocalResponseNormalization, PyTorch convention, even size', {
    // A [batch, channels] mask: LRN's window spans channels and it passes masks on without using them.
    cls: LocalResponseNormalization, args: {convention: 'pytorch', size: 4, alpha: 0.3}, inputShape: [2, 6, 3, 3], weights: [],
    configKeys: ['convention', 'axis', 'size', 'alpha', 'beta', 'k'], usesMask: false,
  }],
  ['WSConv2D (same padding, filters = channels)', {
    cls: WSConv2D, args: {filters: 3, kernelSize: 3, padding: 'same', name: 'ws2'}, inputShape: [2, 5, 5, 3],
    weights: [['kernel', [3, 3, 3, 3]], ['bias', [3]]], configKeys: [...WS_CONV_KEYS, 'dataFormat'],
  }],
  ['WSConv1D, no bias, standardizationEpsilon 1e-3', {
    cls: WSConv1D, args: {filters: 4, kernelSize: 2, padding: 'same', useBias: false, standardizationEpsilon: 1e-3},
    inputShape: [3, 6, 4], weights: [['kernel', [2, 4, 4]]], configKeys: WS_CONV_KEYS,  // tfjs's Conv1D config has no dataFormat
  }],
  ['FilterResponseNormalization (TFA) with learned epsilon', {
    cls: FilterResponseNormalization, args: {learnedEpsilon: true}, inputShape: [2, 3, 3, 4],
    weights: [['learned_epsilon', [1]], ['gamma', [1, 1, 1, 4]], ['beta', [1, 1, 1, 4]]], usesMask: false,  // as TFA's, it ignores masks
    configKeys: ['axis', 'epsilon', 'learnedEpsilon', 'betaInitializer', 'gammaInitializer', 'betaRegularizer', 'gammaRegularizer',
      'betaConstraint', 'gammaConstraint', 'learnedEpsilonConstraint'],
  }],
  ['SpectralNormalization of a Dense', {
    cls: SpectralNormalization as never, args: {layer: {className: 'Dense', config: {units: 4}}, powerIterations: 2}, inputShape: [2, 4],
    weights: [['kernel', [4, 4]], ['vector_u', [1, 4]], ['bias', [4]]], configKeys: ['layer', 'powerIterations'],
    usesMask: false,  // a wrapper does not support masking (as Keras's): the mask checks are skipped
  }],
  ['WeightNormalization (TFA) of a Dense, no data init', {
    cls: WeightNormalization as never, args: {layer: {className: 'Dense', config: {units: 4}}, dataInit: false}, inputShape: [2, 4],
    weights: [['g', [4]], ['kernel', [4, 4]], ['bias', [4]], ['initialized', [], 'bool']], configKeys: ['layer', 'dataInit'],
    usesMask: false,  // a wrapper does not support masking (as Keras's): the mask checks are skipped
  }],
  ['TLU (TFA)', {
    cls: TLU, args: {}, inputShape: [2, 3, 4], weights: [['tau', [3, 4]]], configKeys: ['affine', 'tauInitializer', 'tauRegularizer', 'tauConstraint'],
  }],
  ['BatchNormalization, channels-first (more in test/batch_normalization.test.ts)', {
    cls: BatchNormalization, args: {axis: 1}, inputShape: [3, 4, 2, 2],
    weights: [['gamma', [4]], ['beta', [4]], ['moving_mean', [4]], ['moving_variance', [4]]],
    configKeys: ['axis', 'momentum', ...AFFINE_KEYS, 'movingMeanInitializer', 'movingVarianceInitializer'],
  }],
  ['InstanceNormalization with trackRunningStats', {
    cls: InstanceNormalization, args: {trackRunningStats: true, momentum: 0.2}, inputShape: [2, 4, 4, 3],
    weights: [['gamma', [3]], ['beta', [3]], ['moving_mean', [3]], ['moving_variance', [3]]],
    configKeys: ['groups', 'axis', ...AFFINE_KEYS, 'trackRunningStats', 'momentum'],
  }],
];

describe('shared layer test', () => {
  test.each(HARNESS_CASES)('%s', (_, spec) => runLayerTest(spec));

  test('every registered class and every InstanceNormalization flavour has a harness case', () => {
    const covered = new Set(HARNESS_CASES.map(([, spec]) => spec.cls));
    const required = [...REGISTERED_CLASSES, ContribInstanceNormalization, Pix2PixInstanceNormalization];
    expect(required.filter((cls) => !covered.has(cls)).map((cls) => cls.name)).toEqual([]);
  });
});

describe('defaults are Keras\'s', () => {
  test('GroupNormalization', () => {
    const c = new GroupNormalization().getConfig();
    expect(c).toMatchObject({
      groups: 32, axis: -1, epsilon: 1e-3, center: true, scale: true,
      betaInitializer: {className: 'Zeros', config: {}}, gammaInitializer: {className: 'Ones', config: {}},
      betaRegularizer: null, gammaRegularizer: null, betaConstraint: null, gammaConstraint: null,
    });
  });
  test('InstanceNormalization (as TensorFlow Addons)', () => {
    expect(new InstanceNormalization().getConfig()).toMatchObject({axis: -1, epsilon: 1e-3, center: true, scale: true});
  });
  test('LayerNormalization', () => {
    expect(new LayerNormalization().getConfig()).toMatchObject({axis: -1, epsilon: 1e-3, center: true, scale: true, rmsScaling: false});
  });
  test('RMSNormalization', () => {
    expect(new RMSNormalization().getConfig()).toMatchObject({axis: -1, epsilon: 1e-6});
  });
  test('the factories build the classes', () => {
    expect(layers.groupNormalization({groups: 2})).toBeInstanceOf(GroupNormalization);
    expect(layers.instanceNormalization()).toBeInstanceOf(InstanceNormalization);
    expect(layers.layerNormalization()).toBeInstanceOf(LayerNormalization);
    expect(layers.rmsNormalization()).toBeInstanceOf(RMSNormalization);
  });
});

describe('default names', () => {
  test('the TensorFlow Addons classes get valid, distinct default names and compute as GroupNormalization', async () => {
    const x = tf.randomNormal([2, 3, 4], 0, 1, 'float32', 5);
    const gn = new AddonsGroupNormalization({groups: 2});
    const inorm = new AddonsInstanceNormalization();
    const second = new AddonsGroupNormalization({groups: 2});
    expect(gn.name).toMatch(/^addons_group_normalization_AddonsGroupNormalization\d+$/);
    expect(inorm.name).toMatch(/^addons_instance_normalization_AddonsInstanceNormalization\d+$/);
    expect(second.name).not.toBe(gn.name);
    const y = gn.apply(x) as tf.Tensor;
    const yi = inorm.apply(x) as tf.Tensor;
    const [ry, ryi] = [ops.groupNorm(x, {groups: 2}), ops.groupNorm(x, {groups: -1})];
    expect(maxAbsDiff(y.dataSync(), ry.dataSync())).toBe(0);
    expect(maxAbsDiff(yi.dataSync(), ryi.dataSync())).toBe(0);
    // In a model, saved and loaded back.
    const model = tf.sequential({layers: [new AddonsGroupNormalization({groups: 2, inputShape: [3, 4]}), new AddonsInstanceNormalization()]});
    const loaded = await tf.loadLayersModel(tf.io.fromMemory(await saveToMemory(model)));
    expect(loaded.layers.map((l) => l.name)).toEqual(model.layers.map((l) => l.name));
    const [p, q] = [model.predict(x) as tf.Tensor, loaded.predict(x) as tf.Tensor];
    expect(maxAbsDiff(p.dataSync(), q.dataSync())).toBe(0);
    tf.dispose([x, y, yi, ry, ryi, p, q]);
    for (const m of [gn, inorm, model, loaded]) m.dispose();
  });
});

describe('literal outputs', () => {
  test('LayerNormalization with ones initializers', () => {
    const layer = new LayerNormalization({gammaInitializer: 'ones', betaInitializer: 'ones', epsilon: 0});
    const y = layer.apply(tf.tensor2d([[1, 2, 3]])) as tf.Tensor;
    const s = Math.sqrt(2 / 3);
    expectClose(y, [1 - 1 / s, 1, 1 + 1 / s], 1e-5, 'y');
  });
  test('LayerNormalization rmsScaling: no beta, gamma even with scale false, Keras\'s math', () => {
    const layer = new LayerNormalization({rmsScaling: true, scale: false, center: true, epsilon: 0, gammaInitializer: {className: 'Constant', config: {value: 2}}});
    const y = layer.apply(tf.tensor2d([[1, 2, 3]])) as tf.Tensor;
    const s = Math.sqrt(2 / 3);
    expectClose(y, [2 / s, 4 / s, 6 / s], 1e-5, 'y');
    expect(layer.weights.map((w) => w.name.split('/').pop())).toEqual(['gamma']);
  });
  test('LayerNormalization works on ranks 1, 5 and 6, where the built-in throws', () => {
    const y = new LayerNormalization({epsilon: 0}).apply(tf.tensor1d([1, 2, 3])) as tf.Tensor;
    const s = Math.sqrt(2 / 3);
    expectClose(y, [-1 / s, 0, 1 / s], 1e-5, 'y');
    expect(() => tf.layers.layerNormalization({epsilon: 0}).apply(tf.tensor1d([1, 2, 3]))).toThrow();
    // Ranks 5 and 6: the built-in throws ("batchNormalization is not implemented for array of rank 5").
    for (const shape of [[1, 2, 2, 2, 3], [1, 2, 1, 2, 2, 3]]) {
      const x = tf.randomNormal(shape, 0, 1, 'float32', 3);
      const ours = new LayerNormalization({epsilon: 0}).apply(x) as tf.Tensor;
      const flat = tf.reshape(x, [-1, 3]);
      const {mean, variance} = tf.moments(flat, -1, true);
      expectClose(ours, tf.div(tf.sub(flat, mean), tf.sqrt(variance)).dataSync(), 1e-5, `rank ${shape.length}`);
      expect(() => tf.layers.layerNormalization().apply(x)).toThrow(/not implemented for array of rank/);
    }
  });
  test('GroupNormalization with groups 1 equals LayerNormalization over all non-batch axes', () => {
    const x = tf.randomNormal([2, 3, 3, 4], 1, 2, 'float32', 5);
    const gn = new GroupNormalization({groups: 1}).apply(x) as tf.Tensor;
    const ln = new LayerNormalization({axis: [1, 2, 3]}).apply(x) as tf.Tensor;
    expect(maxAbsDiff(gn.dataSync(), ln.dataSync())).toBeLessThan(1e-5);
  });
  test('GroupNormalization with groups -1 equals InstanceNormalization', () => {
    const x = tf.randomNormal([2, 3, 3, 4], 1, 2, 'float32', 6);
    const gn = new GroupNormalization({groups: -1}).apply(x) as tf.Tensor;
    const inorm = new InstanceNormalization().apply(x) as tf.Tensor;
    expect(maxAbsDiff(gn.dataSync(), inorm.dataSync())).toBe(0);
  });
  test('masks pass through', () => {
    const input = tf.input({shape: [4]});
    const emb = tf.layers.embedding({inputDim: 10, outputDim: 6, maskZero: true}).apply(input) as tf.SymbolicTensor;
    for (const layer of [new LayerNormalization(), new GroupNormalization({groups: 2}), new InstanceNormalization(), new RMSNormalization()]) {
      expect(layer.supportsMasking).toBe(true);
      layer.apply(emb);
      const mask = tf.tensor2d([[1, 1, 0, 0]], undefined, 'bool');
      expect(layer.computeMask(tf.zeros([1, 4, 6]), mask)).toBe(mask);
    }
  });
});

describe('errors name the layer, the argument, the value and what is expected', () => {
  const cases: Array<[string, () => unknown, RegExp]> = [
    ['groups 0', () => new GroupNormalization({groups: 0, name: 'gn'}), /GroupNormalization layer 'gn': argument 'groups' must be a positive integer.*received 0/],
    ['groups -3', () => new GroupNormalization({groups: -3, name: 'gn'}), /GroupNormalization layer 'gn': argument 'groups'.*received -3/],
    ['groups 2.5', () => new GroupNormalization({groups: 2.5}), /argument 'groups'.*received 2.5/],
    ['groups string', () => new GroupNormalization({groups: 'four' as unknown as number}), /argument 'groups'.*received "four"/],
    ['groups null in config', () => GroupNormalization.fromConfig(GroupNormalization, {groups: {} as never}), /argument 'groups'.*received \{\}/],
    ['groups not dividing C at build', () => new GroupNormalization({groups: 5, name: 'gn'}).apply(tf.input({shape: [4, 4, 12]})), /GroupNormalization layer 'gn': argument 'groups' must be a divisor of the number of channels \(12\): one of 1, 2, 3, 4, 6, 12.*received 5/],
    ['groups > C at build', () => new GroupNormalization({groups: 32}).apply(tf.input({shape: [4, 4, 8]})), /divisor of the number of channels \(8\).*received 32/],
    ['undefined channel dim', () => new GroupNormalization({groups: 2, name: 'gn'}).apply(tf.input({shape: [4, null as unknown as number]})), /GroupNormalization layer 'gn': argument 'axis' \(-1\) points at a dimension that is undefined in input shape \[null,4,null\]/],
    ['axis out of range', () => new InstanceNormalization({axis: 5, name: 'in'}).apply(tf.input({shape: [4, 4, 3]})), /InstanceNormalization layer 'in': argument 'axis' must be an axis in \[-4, 3\].*received 5/],
    ['axis is batch', () => new InstanceNormalization({axis: 0}).apply(tf.input({shape: [4, 3]})), /argument 'axis' must be a channel axis other than 0/],
    ['rank 1 input', () => new GroupNormalization({groups: 1, name: 'gn'}).build([4]), /GroupNormalization layer 'gn': input must have rank >= 2/],
    ['epsilon negative', () => new LayerNormalization({epsilon: -1, name: 'ln'}), /LayerNormalization layer 'ln': argument 'epsilon' must be a finite number >= 0; received -1/],
    ['center not boolean', () => new LayerNormalization({center: 'yes' as unknown as boolean}), /argument 'center' must be true or false; received "yes"/],
    ['LN axis string', () => new LayerNormalization({axis: 'last' as unknown as number, name: 'ln'}), /LayerNormalization layer 'ln': argument 'axis' must be an integer or a non-empty list of integers; received "last"/],
    ['LN axis out of range', () => new LayerNormalization({axis: [1, 3]}).apply(tf.input({shape: [4, 5]})), /argument 'axis' must be an axis in \[-3, 2\].*received 3/],
    ['LN undefined axis dim', () => new LayerNormalization({axis: 1, name: 'ln'}).apply(tf.input({shape: [null as unknown as number, 5]})), /LayerNormalization layer 'ln': axis 1 is undefined in input shape \[null,null,5\]/],
    ['rms and rmsScaling', () => new LayerNormalization({rms: true, rmsScaling: true}), /argument 'rms' must be false when rmsScaling is true/],
    ['unknown initializer', () => new GroupNormalization({gammaInitializer: 'bogus'}), /argument 'gammaInitializer' must be a known initializer; 'bogus' is not registered; received "bogus"/],
    ['regularizer of wrong kind', () => new GroupNormalization({betaRegularizer: 'ones'}), /argument 'betaRegularizer' must be a regularizer; 'Ones' is a Ones/],
    ['initializer of wrong type', () => new GroupNormalization({gammaInitializer: 42 as unknown as string}), /argument 'gammaInitializer' must be an initializer: an identifier string.*received 42/],
    ['int32 input', () => new RMSNormalization({name: 'rms'}).apply(tf.zeros([2, 3], 'int32')), /RMSNormalization layer 'rms': argument 'x' must be a float32 tensor; received dtype 'int32'/],
  ];
  test.each(cases)('%s', (_name, f, message) => {
    expect(() => tf.tidy(() => {
      f();
    })).toThrow(message);
  });
});

describe('LayerNormalization replaces the built-in in the registry', () => {
  test('a model saved with tf.layers.layerNormalization loads into this class with identical outputs', async () => {
    const builtin = tf.sequential({
      layers: [
        tf.layers.dense({inputShape: [6], units: 8}),
        tf.layers.layerNormalization({axis: -1, epsilon: 1e-4, betaInitializer: 'randomNormal', gammaInitializer: 'randomUniform'}),
        tf.layers.dense({units: 3}),
      ],
    });
    expect(builtin.layers[1]).not.toBeInstanceOf(LayerNormalization);
    const artifacts = await saveToMemory(builtin);
    const loaded = await tf.loadLayersModel(tf.io.fromMemory(artifacts as tf.io.ModelArtifacts));
    expect(loaded.layers[1]).toBeInstanceOf(LayerNormalization);
    const x = tf.randomNormal([5, 6], 0, 1, 'float32', 9);
    const a = builtin.predict(x) as tf.Tensor;
    const b = loaded.predict(x) as tf.Tensor;
    expect(maxAbsDiff(a.dataSync(), b.dataSync())).toBeLessThan(1e-5);
    expect(loaded.layers[1].getWeights().map((w) => w.shape)).toEqual([[8], [8]]);
  });
});
