/** replaceBatchNormalization: BatchNorm -> GroupNorm in sequential and functional conv nets. */
import * as tf from '@tensorflow/tfjs';

import {GroupNormalization, layers, ops, replaceBatchNormalization} from '../src';
import {largestDivisorAtMost} from '../src/convert';
import {expectSameModel, maxAbsDiff, useTestBackend} from './helpers';

beforeAll(async () => {
  await useTestBackend();
});

async function roundTrip(model: tf.LayersModel): Promise<tf.LayersModel> {
  let artifacts: tf.io.ModelArtifacts|undefined;
  await model.save(tf.io.withSaveHandler(async (a) => {
    artifacts = a;
    return {modelArtifactsInfo: {dateSaved: new Date(), modelTopologyType: 'JSON'}};
  }));
  return tf.loadLayersModel(tf.io.fromMemory(artifacts as tf.io.ModelArtifacts));
}

/** Gives every weight of the model distinct, non-default values. */
function randomizeWeights(model: tf.LayersModel, seed: number): void {
  // In [0.5, 1.5): moving variances stay positive.
  const values = model.getWeights().map((w, i) => tf.randomUniform(w.shape, 0.5, 1.5, 'float32', seed + i));
  model.setWeights(values);
  tf.dispose(values);
}

function bnConvNet(): tf.Sequential {
  return tf.sequential({
    layers: [
      tf.layers.conv2d({inputShape: [6, 6, 2], filters: 8, kernelSize: 3, padding: 'same', name: 'c1'}),
      tf.layers.batchNormalization({name: 'bn1', epsilon: 1e-4}),
      tf.layers.activation({activation: 'relu', name: 'r1'}),
      tf.layers.conv2d({filters: 6, kernelSize: 3, strides: 2, padding: 'same', name: 'c2'}),
      tf.layers.batchNormalization({name: 'bn2', center: false}),
      tf.layers.activation({activation: 'relu', name: 'r2'}),
      tf.layers.flatten({name: 'f'}),
      tf.layers.dense({units: 3, activation: 'softmax', name: 'd'}),
    ],
  });
}

/** The model replaceBatchNormalization should produce for bnConvNet with groups 4, built by hand. */
function gnConvNetByHand(): tf.Sequential {
  return tf.sequential({
    layers: [
      tf.layers.conv2d({inputShape: [6, 6, 2], filters: 8, kernelSize: 3, padding: 'same', name: 'c1'}),
      layers.groupNormalization({groups: 4, epsilon: 1e-4, name: 'bn1'}),
      tf.layers.activation({activation: 'relu', name: 'r1'}),
      tf.layers.conv2d({filters: 6, kernelSize: 3, strides: 2, padding: 'same', name: 'c2'}),
      layers.groupNormalization({groups: 3, epsilon: 1e-3, center: false, name: 'bn2'}),
      tf.layers.activation({activation: 'relu', name: 'r2'}),
      tf.layers.flatten({name: 'f'}),
      tf.layers.dense({units: 3, activation: 'softmax', name: 'd'}),
    ],
  });
}

test('largestDivisorAtMost', () => {
  expect(largestDivisorAtMost(6, 4)).toBe(3);
  expect(largestDivisorAtMost(8, 4)).toBe(4);
  expect(largestDivisorAtMost(7, 4)).toBe(1);
  expect(largestDivisorAtMost(64, 32)).toBe(32);
  expect(largestDivisorAtMost(48, 32)).toBe(24);
  expect(largestDivisorAtMost(3, 32)).toBe(3);
});

test('sequential conv net: every BatchNormalization becomes GroupNormalization; gamma, beta and all other weights carried; output equals a hand-built GN model', async () => {
  const bn = bnConvNet();
  randomizeWeights(bn, 10);
  const bnWeightsBefore = bn.getWeights().map((w) => w.dataSync().slice());
  const warnings: string[] = [];
  const before = tf.memory().numTensors;
  const gn = await replaceBatchNormalization(bn, {groups: 4, warn: (m) => warnings.push(m)});

  expect(gn).toBeInstanceOf(tf.Sequential);
  expect(gn.layers.map((l) => l.getClassName())).toEqual(
      ['Conv2D', 'GroupNormalization', 'Activation', 'Conv2D', 'GroupNormalization', 'Activation', 'Flatten', 'Dense']);
  const g1 = gn.layers[1] as GroupNormalization;
  const g2 = gn.layers[4] as GroupNormalization;
  expect([g1.groups, g1.epsilon, g1.center, g1.scale, g1.name]).toEqual([4, 1e-4, true, true, 'bn1']);
  expect([g2.groups, g2.epsilon, g2.center, g2.scale, g2.name]).toEqual([3, 1e-3, false, true, 'bn2']);
  // 6 channels are not divisible by 4: 3 groups, with a warning naming the layer and the numbers.
  expect(warnings).toHaveLength(1);
  expect(warnings[0]).toMatch(/layer 'bn2' has 6 channels, not divisible by groups 4; using 3 groups/);

  // Weights: the hand-built model with BN's weights minus the moving statistics must match exactly.
  const bnW = bn.getWeights();
  // model.getWeights() lists trainable weights first: c1 kernel, bias, bn1 gamma, beta, c2 kernel, bias,
  // bn2 gamma (no center), dense kernel, bias; then the moving means and variances, which GN drops.
  expect(bnW).toHaveLength(13);
  const expected = bnW.slice(0, 9);
  const gnW = gn.getWeights();
  expect(gnW.map((w) => w.shape)).toEqual(expected.map((w) => w.shape));
  gnW.forEach((w, i) => expect(maxAbsDiff(w.dataSync(), expected[i].dataSync())).toBe(0));

  const hand = gnConvNetByHand();
  hand.setWeights(expected);
  const x = tf.randomNormal([4, 6, 6, 2], 0, 1, 'float32', 3);
  const ya = gn.predict(x) as tf.Tensor;
  const yb = hand.predict(x) as tf.Tensor;
  expect(maxAbsDiff(ya.dataSync(), yb.dataSync())).toBe(0);

  // The original model is unchanged.
  expect(bn.layers[1].getClassName()).toBe('BatchNormalization');
  bn.getWeights().forEach((w, i) => expect(maxAbsDiff(w.dataSync(), bnWeightsBefore[i])).toBe(0));

  tf.dispose([x, ya, yb]);
  hand.dispose();
  gn.dispose();
  expect(tf.memory().numTensors).toBe(before);
  bn.dispose();
});

test('the converted conv net trains (loss falls), saves and loads with identical weights and predictions, without leaks', async () => {
  const bn = bnConvNet();
  randomizeWeights(bn, 20);
  const gn = await replaceBatchNormalization(bn, {groups: 2});
  const optimizer = tf.train.adam(0.05);
  gn.compile({optimizer, loss: 'categoricalCrossentropy'});
  // A learnable task: the class is which third of the image is brightest.
  const n = 24;
  const xs = tf.tidy(() => {
    const base = tf.randomNormal([n, 6, 6, 2], 0, 0.3, 'float32', 5);
    const cls = tf.range(0, n, 1, 'int32').mod(3);
    const cols = tf.range(0, 6, 1, 'int32').floorDiv(2);
    const mask = tf.equal(cls.reshape([n, 1, 1, 1]), cols.reshape([1, 1, 6, 1])).toFloat();
    return base.add(mask.mul(2));
  });
  const ys = tf.tidy(() => tf.oneHot(tf.cast(tf.range(0, n, 1, 'int32').mod(3), 'int32'), 3).toFloat());
  await gn.fit(xs, ys, {epochs: 1, batchSize: 8, shuffle: false, verbose: 0});
  const before = tf.memory().numTensors;
  const h = await gn.fit(xs, ys, {epochs: 6, batchSize: 8, shuffle: false, verbose: 0});
  expect(tf.memory().numTensors).toBe(before);
  const loss = h.history.loss as number[];
  expect(loss[loss.length - 1]).toBeLessThan(0.5 * loss[0]);

  const loaded = await roundTrip(gn);
  expect(loaded.layers.map((l) => l.getClassName())).toEqual(gn.layers.map((l) => l.getClassName()));
  expect((loaded.layers[1] as GroupNormalization).groups).toBe(2);
  expectSameModel(loaded, gn, xs);
  tf.dispose([xs, ys]);
  loaded.dispose();
  gn.dispose();
  optimizer.dispose();
  bn.dispose();
});

test('functional model with a residual branch and a nested sequential block: all BN replaced, weights carried', async () => {
  const input = tf.input({shape: [5, 5, 4]});
  const a = tf.layers.conv2d({filters: 8, kernelSize: 3, padding: 'same', name: 'a_conv'}).apply(input) as tf.SymbolicTensor;
  const aBn = tf.layers.batchNormalization({name: 'a_bn', axis: 3}).apply(a) as tf.SymbolicTensor;
  const skip = tf.layers.conv2d({filters: 8, kernelSize: 1, name: 'skip'}).apply(input) as tf.SymbolicTensor;
  const sum = tf.layers.add({name: 'sum'}).apply([aBn, skip]) as tf.SymbolicTensor;
  const block = tf.sequential({
    name: 'block',
    layers: [
      tf.layers.conv2d({inputShape: [5, 5, 8], filters: 4, kernelSize: 3, padding: 'same', name: 'b_conv'}),
      tf.layers.batchNormalization({name: 'b_bn'}),
    ],
  });
  const out = tf.layers.globalAveragePooling2d({name: 'gap'}).apply(block.apply(sum) as tf.SymbolicTensor) as tf.SymbolicTensor;
  const bn = tf.model({inputs: input, outputs: out});
  randomizeWeights(bn, 30);

  const gn = await replaceBatchNormalization(bn, {groups: 2});
  expect(gn).toBeInstanceOf(tf.LayersModel);
  const names = (m: tf.LayersModel): string[] => m.layers.flatMap((l) =>
    l instanceof tf.LayersModel ? names(l).map((n) => `${l.name}/${n}`) : [`${l.name}:${l.getClassName()}`]);
  expect(names(gn)).toEqual(names(bn).map((s) => s.replace('BatchNormalization', 'GroupNormalization')));
  expect(names(gn).filter((s) => s.includes('BatchNormalization'))).toEqual([]);

  // Predictions equal those computed with the op and the carried weights.
  const x = tf.randomNormal([2, 5, 5, 4], 0, 1, 'float32', 8);
  const get = (m: tf.LayersModel, path: string[]): tf.layers.Layer => {
    let layer: tf.layers.Layer = m.getLayer(path[0]);
    for (const p of path.slice(1)) layer = (layer as tf.LayersModel).getLayer(p);
    return layer;
  };
  const [ga, ba] = get(bn, ['a_bn']).getWeights();
  const [gb, bb] = get(bn, ['block', 'b_bn']).getWeights();
  expect(maxAbsDiff(get(gn, ['a_bn']).getWeights()[0].dataSync(), ga.dataSync())).toBe(0);
  expect(maxAbsDiff(get(gn, ['block', 'b_bn']).getWeights()[1].dataSync(), bb.dataSync())).toBe(0);
  const expected = tf.tidy(() => {
    const ca = get(bn, ['a_conv']).apply(x) as tf.Tensor;
    const h = tf.add(ops.groupNorm(ca, {groups: 2, epsilon: 1e-3, gamma: ga, beta: ba}), get(bn, ['skip']).apply(x) as tf.Tensor);
    const cb = get(bn, ['block', 'b_conv']).apply(h) as tf.Tensor;
    return tf.mean(ops.groupNorm(cb, {groups: 2, epsilon: 1e-3, gamma: gb, beta: bb}), [1, 2]);
  });
  const y = gn.predict(x) as tf.Tensor;
  expect(maxAbsDiff(y.dataSync(), expected.dataSync())).toBeLessThan(1e-5);

  const loaded = await roundTrip(gn);
  const y2 = loaded.predict(x) as tf.Tensor;
  expect(maxAbsDiff(y2.dataSync(), y.dataSync())).toBe(0);
  tf.dispose([x, y, y2, expected]);
  loaded.dispose();
  gn.dispose();
  bn.dispose();
});

test('groups -1 gives one group per channel; a model without BatchNormalization is copied unchanged', async () => {
  const bn = bnConvNet();
  const gn = await replaceBatchNormalization(bn, {groups: -1});
  expect((gn.layers[1] as GroupNormalization).groups).toBe(8);
  expect((gn.layers[4] as GroupNormalization).groups).toBe(6);
  const plain = tf.sequential({layers: [tf.layers.dense({inputShape: [3], units: 2, name: 'only'})]});
  const copy = await replaceBatchNormalization(plain);
  expect(copy).not.toBe(plain);
  expect(maxAbsDiff(copy.getWeights()[0].dataSync(), plain.getWeights()[0].dataSync())).toBe(0);
  [bn, gn, plain, copy].forEach((m) => m.dispose());
});

test('bad arguments: clear errors naming the function, the argument and the value', async () => {
  const bn = bnConvNet();
  await expect(replaceBatchNormalization(bn, {groups: 0})).rejects.toThrow(
      "replaceBatchNormalization: argument 'groups' must be a positive integer or -1 (one group per channel); received 0.");
  await expect(replaceBatchNormalization(bn, {groups: 2.5})).rejects.toThrow(/argument 'groups'.*received 2.5/);
  await expect(replaceBatchNormalization(bn, {epsilon: -1})).rejects.toThrow(/argument 'epsilon' must be a finite number >= 0; received -1/);
  await expect(replaceBatchNormalization({} as tf.LayersModel)).rejects.toThrow(/argument 'model' must be a tf.LayersModel/);
  bn.dispose();
});

test('a BatchNormalization inside TimeDistributed becomes GroupNormalization inside it, gamma and beta carried (it was left a BatchNormalization, silently)', async () => {
  const bn = tf.sequential({layers: [
    tf.layers.dense({inputShape: [3, 5], units: 6, name: 'd'}),
    tf.layers.timeDistributed({layer: tf.layers.batchNormalization({name: 'td_bn', epsilon: 1e-4}), name: 'td'}),
  ]});
  randomizeWeights(bn, 40);
  const warnings: string[] = [];
  const gn = await replaceBatchNormalization(bn, {groups: 4, warn: (m) => warnings.push(m)});
  const td = gn.getLayer('td') as unknown as {layer: tf.layers.Layer};
  expect(td.layer).toBeInstanceOf(GroupNormalization);
  expect([(td.layer as GroupNormalization).groups, (td.layer as GroupNormalization).epsilon, td.layer.name]).toEqual([3, 1e-4, 'td_bn']);
  expect(warnings).toEqual([expect.stringMatching(/layer 'td\/td_bn' has 6 channels, not divisible by groups 4; using 3 groups/)]);
  const [gamma, beta] = bn.getLayer('td').getWeights();
  const carried = gn.getLayer('td').getWeights();
  expect(carried).toHaveLength(2);
  expect(maxAbsDiff(carried[0].dataSync(), gamma.dataSync())).toBe(0);
  expect(maxAbsDiff(carried[1].dataSync(), beta.dataSync())).toBe(0);
  // Each time step is normalized on its own: the op on [batch * time, channels].
  const x = tf.randomNormal([2, 3, 5], 0, 1, 'float32', 41);
  const want = tf.tidy(() => {
    const h = bn.getLayer('d').apply(x) as tf.Tensor;
    return ops.groupNorm(tf.reshape(h, [6, 6]), {groups: 3, epsilon: 1e-4, gamma, beta}).reshape([2, 3, 6]);
  });
  const y = gn.predict(x) as tf.Tensor;
  expect(maxAbsDiff(y.dataSync(), want.dataSync())).toBeLessThan(1e-5);
  tf.dispose([x, y, want]);
  gn.dispose();
  bn.dispose();
});

test('a model that cannot be rebuilt from its topology (an unregistered custom layer): a named error, and no tensor or variable left behind', async () => {
  class Unregistered extends tf.layers.Layer {
    static className = 'UnregisteredScale';
    private w?: tf.LayerVariable;
    override build(shape: tf.Shape|tf.Shape[]): void {
      const s = shape as tf.Shape;
      this.w = this.addWeight('w', [s[s.length - 1] as number], 'float32', tf.initializers.ones());
      this.built = true;
    }
    override call(x: tf.Tensor|tf.Tensor[]): tf.Tensor {
      return tf.mul(Array.isArray(x) ? x[0] : x, (this.w as tf.LayerVariable).read());
    }
    override getClassName(): string {
      return 'UnregisteredScale';
    }
  }
  const model = tf.sequential({layers: [tf.layers.dense({inputShape: [4], units: 4}), tf.layers.batchNormalization(),
    tf.layers.dense({units: 4}), new Unregistered({})]});
  const tensors = tf.memory().numTensors;
  const variables = Object.keys(tf.engine().registeredVariables).length;
  await expect(replaceBatchNormalization(model, {groups: 2})).rejects.toThrow(
      /^replaceBatchNormalization: cannot rebuild the model from its topology: Unknown layer: UnregisteredScale/);
  expect(tf.memory().numTensors).toBe(tensors);
  expect(Object.keys(tf.engine().registeredVariables).length).toBe(variables);
  model.dispose();
});
