/**
 * Weight Standardization: the op (float64 reference, finite-difference
 * gradients of first and second order, named errors, no leaks), WSConv2D /
 * WSConv1D (the shared layer test is in test/layers.test.ts; parity with a float64 conv, training,
 * save/load round trips comparing every weight, serialization names), and
 * replaceBatchNormalization({weightStandardization: true}).
 * The backend parity of the same cases runs in test/parity/node.test.ts
 * (cpu, wasm, tensorflow) and test/browser/parity.test.ts.
 */
import * as tf from '@tensorflow/tfjs';

import * as lib from '../src';
import {layers, ops, replaceBatchNormalization, WSConv1D, WSConv2D} from '../src';
import {expectNoLeakSync, expectSameModel, maxAbsDiff, saveToMemory} from './helpers';
import {runWsParity, refStandardize} from './parity/ws';
import {normals, rng} from './reference';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

describe('ops.weightStandardization', () => {
  test('per output channel: mean 0, variance var/(var+eps), equals the float64 reference', () => {
    const w = normals(rng(1), 3 * 3 * 4 * 6, 2, 3);
    const wt = tf.tensor(w, [3, 3, 4, 6]);
    const y = expectNoLeakSync(() => ops.weightStandardization(wt), 'weightStandardization');
    expect(y.shape).toEqual([3, 3, 4, 6]);
    const ref = refStandardize(w, [3, 3, 4, 6], -1, 1e-5);
    expect(maxAbsDiff(y.dataSync(), ref)).toBeLessThan(2e-6);
    const [mean, variance] = tf.tidy(() => {
      const m = tf.moments(y, [0, 1, 2]);
      return [m.mean.dataSync(), m.variance.dataSync()];
    });
    mean.forEach((m) => expect(Math.abs(m)).toBeLessThan(1e-6));
    variance.forEach((v) => expect(v).toBeGreaterThan(0.99999));
    tf.dispose([wt, y]);
  });

  test('another output axis and epsilon: the reference with that axis', () => {
    const w = normals(rng(2), 4 * 5 * 3);
    const wt = tf.tensor(w, [4, 5, 3]);
    const y = ops.weightStandardization(wt, {axis: 0, epsilon: 0.5});
    expect(maxAbsDiff(y.dataSync(), refStandardize(w, [4, 5, 3], 0, 0.5))).toBeLessThan(2e-6);
    const y2 = ops.weightStandardization(wt, {axis: -3, epsilon: 0.5});
    expect(maxAbsDiff(y2.dataSync(), y.dataSync())).toBe(0);
    tf.dispose([wt, y, y2]);
  });

  test('scale and shift invariant per channel (W and 7 W + 3 give the same result for epsilon 0)', () => {
    const wt = tf.randomNormal([3, 3, 2, 4], 0, 1, 'float32', 3);
    const [a, b] = tf.tidy(() => [
      ops.weightStandardization(wt, {epsilon: 0}).dataSync(),
      ops.weightStandardization(tf.add(tf.mul(wt, 7), 3), {epsilon: 0}).dataSync(),
    ]);
    expect(maxAbsDiff(a, b)).toBeLessThan(1e-5);
    wt.dispose();
  });

  test('a constant channel standardizes to 0 with epsilon > 0 (finite gradient), extreme magnitudes stay finite', () => {
    const wt = tf.tensor([[5, 1], [5, -1], [5, 3]]);  // channel 0 constant
    const y = ops.weightStandardization(wt);
    const v = y.dataSync();
    expect([v[0], v[2], v[4]]).toEqual([0, 0, 0]);
    const g = tf.grad((k: tf.Tensor) => tf.sum(tf.mul(ops.weightStandardization(k), tf.tensor([[1, 2], [3, 4], [5, 6]]))))(wt);
    g.dataSync().forEach((d) => expect(Number.isFinite(d)).toBe(true));
    const big = tf.tensor([[1e18], [-1e18], [3e18]]);
    const yb = ops.weightStandardization(big);
    const rb = refStandardize([1e18, -1e18, 3e18], [3, 1], -1, 1e-5);
    expect(maxAbsDiff(yb.dataSync(), rb)).toBeLessThan(1e-5);
    const tiny = tf.tensor([[1e-3], [-1e-3], [3e-3]]);
    const yt = ops.weightStandardization(tiny, {epsilon: 0});
    expect(maxAbsDiff(yt.dataSync(), refStandardize([1e-3, -1e-3, 3e-3], [3, 1], -1, 0))).toBeLessThan(1e-5);
    tf.dispose([wt, y, g, big, yb, tiny, yt]);
  });

  test.each([
    [1e20, 1e-5], [1e-20, 0], [1e18, 0], [3e-30, 1e-5],
  ])('kernel scaled by %p, epsilon %p: W\' and its gradient are the paper formula\'s in float64 (no square overflows or underflows)', (scale, eps) => {
    // Before: at 1e20 every square overflowed (W' = 0), at 1e-20 with epsilon 0 they underflowed (dx NaN),
    // at 1e18 the gradient was 22% off.
    const shape = [3, 2, 4];
    const w = Float32Array.from(normals(rng(11), 24, 0.3, 1), (v) => v * scale);
    const dy = normals(rng(12), 24);
    const wt = tf.tensor(w, shape);
    const dyt = tf.tensor(dy, shape);
    const [y, dx] = expectNoLeakSync(() => tf.tidy(() => [
      ops.weightStandardization(wt, {epsilon: eps}),
      tf.grad((k: tf.Tensor) => tf.sum(tf.mul(ops.weightStandardization(k, {epsilon: eps}), dyt)))(wt),
    ]), 'weightStandardization');
    const w64 = Float64Array.from(w);
    const ref = refStandardize(w64, shape, -1, eps);
    const yMax = Math.max(...Array.from(ref, Math.abs));
    expect(maxAbsDiff(y.dataSync(), ref) / yMax).toBeLessThan(1e-6);
    // float64 central differences, step relative to each element.
    const fd = Float64Array.from(w64, (wi, i) => {
      const h = Math.abs(wi) * 1e-6;
      const p = Float64Array.from(w64);
      const m = Float64Array.from(w64);
      p[i] += h;
      m[i] -= h;
      const fp = refStandardize(p, shape, -1, eps);
      const fm = refStandardize(m, shape, -1, eps);
      let sum = 0;
      for (let j = 0; j < fp.length; j++) sum += (fp[j] - fm[j]) * dy[j];
      return sum / (2 * h);
    });
    const dMax = Math.max(...Array.from(fd, Math.abs));
    expect(maxAbsDiff(dx.dataSync(), fd) / dMax).toBeLessThan(1e-5);
    tf.dispose([wt, dyt, y, dx]);
  });

  test('second-order gradients match central differences of the first-order gradient', () => {
    const shape = [3, 2, 3];
    const w = normals(rng(4), 18);
    const dy = tf.tensor(normals(rng(5), 18), shape);
    const v = tf.tensor(normals(rng(6), 18), shape);
    // d/dW < grad_W sum(WS(W) * dy), v >: a Hessian-vector product.
    const first = (k: tf.Tensor) => tf.grad((kk: tf.Tensor) => tf.sum(tf.mul(ops.weightStandardization(kk), dy)))(k);
    const hvp = tf.grad((k: tf.Tensor) => tf.sum(tf.mul(first(k), v)))(tf.tensor(w, shape));
    // float64 central differences of the float64 analytic first-order gradient (itself checked in the parity module).
    const g64 = (wv: Float64Array): Float64Array => {
      const h = 1e-6;
      const dyv = dy.dataSync();
      const out = new Float64Array(wv.length);
      for (let i = 0; i < wv.length; i++) {
        const p = Float64Array.from(wv);
        const m = Float64Array.from(wv);
        p[i] += h;
        m[i] -= h;
        const fp = refStandardize(p, shape, -1, 1e-5);
        const fm = refStandardize(m, shape, -1, 1e-5);
        let s = 0;
        for (let j = 0; j < wv.length; j++) s += (fp[j] - fm[j]) * dyv[j];
        out[i] = s / (2 * h);
      }
      return out;
    };
    const vv = v.dataSync();
    const base = Float64Array.from(w);
    const ref = new Float64Array(18);
    const h2 = 1e-4;
    for (let i = 0; i < 18; i++) {
      const p = Float64Array.from(base);
      const m = Float64Array.from(base);
      p[i] += h2;
      m[i] -= h2;
      const gp = g64(p);
      const gm = g64(m);
      let s = 0;
      for (let j = 0; j < 18; j++) s += (gp[j] - gm[j]) * vv[j];
      ref[i] = s / (2 * h2);
    }
    expect(maxAbsDiff(hvp.dataSync(), ref)).toBeLessThan(2e-3);
    // Not trivially zero.
    expect(Math.max(...Array.from(ref, Math.abs))).toBeGreaterThan(0.1);
    tf.dispose([dy, v, hvp]);
  });

  const errorCases: Array<[string, () => unknown, RegExp]> = [
    ['not a tensor', () => ops.weightStandardization([1, 2] as unknown as tf.Tensor), /weightStandardization: argument 'kernel' must be a tf.Tensor; received "object"/],
    ['int32 kernel', () => ops.weightStandardization(tf.tensor([[1, 2], [3, 4]], [2, 2], 'int32')), /weightStandardization: argument 'kernel' must be a float32 tensor; received dtype 'int32'/],
    ['rank 1', () => ops.weightStandardization(tf.tensor([1, 2, 3])), /weightStandardization: argument 'kernel' must be a kernel of rank >= 2.*received "a tensor of shape \[3\]"/],
    ['one element per channel', () => ops.weightStandardization(tf.zeros([1, 1, 1, 4])), /weightStandardization: argument 'kernel' must have at least 2 elements per output channel \(axis -1\).*received shape \[1,1,1,4\] \(1 per channel\)/],
    ['axis out of range', () => ops.weightStandardization(tf.zeros([3, 3]), {axis: 2}), /weightStandardization: argument 'axis' must be an axis in \[-2, 1\] for an input of rank 2; received 2/],
    ['axis not an integer', () => ops.weightStandardization(tf.zeros([3, 3]), {axis: 0.5}), /weightStandardization: argument 'axis' must be an integer axis.*received 0.5/],
    ['negative epsilon', () => ops.weightStandardization(tf.zeros([3, 3]), {epsilon: -1}), /weightStandardization: argument 'epsilon' must be a finite number >= 0; received -1/],
    ['unknown option', () => ops.weightStandardization(tf.zeros([3, 3]), {groups: 2} as never), /weightStandardization: unknown key 'groups' in 'opts'; known keys: axis, epsilon/],
  ];
  test.each(errorCases)('error: %s', (_n, f, message) => {
    expect(f).toThrow(message);
  });
});

describe('WSConv2D and WSConv1D', () => {
  // The shared layer test (runLayerTest) of both classes is in test/layers.test.ts's HARNESS_CASES.
  test('every WS case (op and layers) matches float64 on cpu, no leaks', async () => {
    const records = await runWsParity(tf, lib);
    expect(records.length).toBe(9);
    for (const r of records) {
      expect({name: r.name, error: r.error}).toEqual({name: r.name, error: undefined});
      expect([r.name, r.maxErr <= r.tol, r.gradChecked, r.leaked]).toEqual([r.name, true, true, 0]);
    }
  });

  test('output equals tf.conv2d with the op-standardized kernel, bias and activation; the weight stays raw', () => {
    const layer = layers.wsConv2d({filters: 4, kernelSize: [3, 2], strides: 2, padding: 'same', activation: 'relu', dilationRate: 1});
    const x = tf.randomNormal([2, 7, 6, 3], 0, 1, 'float32', 9);
    tf.dispose(layer.apply(x) as tf.Tensor);
    const [k, b] = layer.getWeights();
    const kernelBefore = k.dataSync().slice();
    const y = layer.apply(x) as tf.Tensor;
    const want = tf.tidy(() => tf.relu(tf.add(tf.conv2d(x as tf.Tensor4D, ops.weightStandardization(k) as tf.Tensor4D, 2, 'same'), b)));
    expect(maxAbsDiff(y.dataSync(), want.dataSync())).toBeLessThan(1e-5);
    expect(maxAbsDiff(layer.getWeights()[0].dataSync(), kernelBefore)).toBe(0);
    // A plain conv with the same raw kernel differs (the standardization is not a no-op here).
    const plain = tf.tidy(() => tf.relu(tf.add(tf.conv2d(x as tf.Tensor4D, k as tf.Tensor4D, 2, 'same'), b)));
    expect(maxAbsDiff(y.dataSync(), plain.dataSync())).toBeGreaterThan(0.1);
    tf.dispose([x, y, want, plain]);
    layer.dispose();
  });

  test('channelsFirst and dilation go through tfjs\'s own conv path', () => {
    const layer = layers.wsConv2d({filters: 2, kernelSize: 3, dataFormat: 'channelsFirst', dilationRate: 2, padding: 'same'});
    const x = tf.randomNormal([1, 3, 7, 7], 0, 1, 'float32', 10);
    tf.dispose(layer.apply(x) as tf.Tensor);
    const [k, b] = layer.getWeights();
    const y = layer.apply(x) as tf.Tensor;
    const want = tf.tidy(() => {
      const nhwc = tf.transpose(x, [0, 2, 3, 1]) as tf.Tensor4D;
      const c = tf.conv2d(nhwc, ops.weightStandardization(k) as tf.Tensor4D, 1, 'same', 'NHWC', 2);
      return tf.transpose(tf.add(c, b), [0, 3, 1, 2]);
    });
    expect(y.shape).toEqual([1, 2, 7, 7]);
    expect(maxAbsDiff(y.dataSync(), want.dataSync())).toBeLessThan(1e-5);
    tf.dispose([x, y, want]);
    layer.dispose();
  });

  test('a model with WSConv2D and WSConv1D trains (loss falls), saves and loads under their own class names with every weight identical', async () => {
    const model = tf.sequential({
      layers: [
        layers.wsConv2d({inputShape: [6, 6, 2], filters: 4, kernelSize: 3, padding: 'same', activation: 'relu', name: 'w2', standardizationEpsilon: 1e-4}),
        tf.layers.reshape({targetShape: [36, 4]}),
        layers.wsConv1d({filters: 3, kernelSize: 3, strides: 2, name: 'w1'}),
        tf.layers.globalAveragePooling1d({}),
        tf.layers.dense({units: 2, activation: 'softmax'}),
      ],
    });
    const xs = tf.randomNormal([16, 6, 6, 2], 0, 1, 'float32', 11);
    const ys = tf.tidy(() => tf.oneHot(tf.cast(tf.greater(tf.sum(xs, [1, 2, 3]), 0), 'int32'), 2).toFloat());
    const optimizer = tf.train.adam(0.03);
    model.compile({optimizer, loss: 'categoricalCrossentropy'});
    const kernelBefore = model.layers[0].getWeights()[0].dataSync().slice();
    const h = await model.fit(xs, ys, {epochs: 15, batchSize: 8, shuffle: false, verbose: 0});
    const loss = h.history.loss as number[];
    expect(loss[loss.length - 1]).toBeLessThan(0.7 * loss[0]);
    // The raw kernel is what trains.
    expect(maxAbsDiff(model.layers[0].getWeights()[0].dataSync(), kernelBefore)).toBeGreaterThan(1e-3);

    const artifacts = await saveToMemory(model);
    const topo = JSON.stringify(artifacts.modelTopology);
    expect(topo).toContain('"class_name":"WSConv2D"');
    expect(topo).toContain('"class_name":"WSConv1D"');
    expect(topo).toContain('"standardization_epsilon":0.0001');
    expect((artifacts.weightSpecs ?? []).map((s) => s.name).filter((n) => n.startsWith('w'))).toEqual(['w2/kernel', 'w2/bias', 'w1/kernel', 'w1/bias']);
    const loaded = await tf.loadLayersModel(tf.io.fromMemory(artifacts));
    expect(loaded.layers[0]).toBeInstanceOf(WSConv2D);
    expect(loaded.layers[2]).toBeInstanceOf(WSConv1D);
    expect((loaded.layers[0] as WSConv2D).standardizationEpsilon).toBe(1e-4);
    expectSameModel(loaded, model, xs);
    tf.dispose([xs, ys]);
    loaded.dispose();
    model.dispose();
    optimizer.dispose();
  });

  test('making the classes creates no layer (tfjs\'s default names are unchanged)', () => {
    const a = tf.layers.conv2d({filters: 1, kernelSize: 1});
    const w = layers.wsConv2d({filters: 1, kernelSize: 1});
    const b = tf.layers.conv2d({filters: 1, kernelSize: 1});
    const n = (l: tf.layers.Layer) => Number(l.name.split('_').pop());
    expect(n(b)).toBe(n(a) + 1);
    expect(w.name).toMatch(/^ws_conv2d_WSConv2D\d+$/);
  });

  const layerErrors: Array<[string, () => unknown, RegExp]> = [
    ['negative standardizationEpsilon', () => layers.wsConv2d({filters: 2, kernelSize: 3, name: 'c', standardizationEpsilon: -1}),
      /WSConv2D layer 'c': argument 'epsilon' must be a finite number >= 0; received -1/],
    ['NaN standardizationEpsilon', () => layers.wsConv1d({filters: 2, kernelSize: 3, standardizationEpsilon: NaN}),
      /WSConv1D layer '\?': argument 'epsilon' must be a finite number >= 0; received NaN/],
    ['args not an object', () => new WSConv2D(null as never), /WSConv2D: the layer arguments must be an object; received null/],
    ['1x1 conv of one channel', () => layers.wsConv2d({filters: 2, kernelSize: 1, name: 'p'}).apply(tf.zeros([1, 3, 3, 1])),
      /weightStandardization: argument 'kernel' must have at least 2 elements per output channel/],
  ];
  test.each(layerErrors)('error: %s', (_n, f, message) => {
    expect(f).toThrow(message);
  });
});

describe('replaceBatchNormalization({weightStandardization: true})', () => {
  test('sequential: the convs before BatchNorm become WSConv2D with their weights; output equals a hand-built GN+WS model', async () => {
    const bn = tf.sequential({
      layers: [
        tf.layers.conv2d({inputShape: [6, 6, 2], filters: 8, kernelSize: 3, padding: 'same', name: 'c1'}),
        tf.layers.batchNormalization({name: 'bn1'}),
        tf.layers.activation({activation: 'relu', name: 'r1'}),
        tf.layers.conv2d({filters: 4, kernelSize: 3, strides: 2, padding: 'same', name: 'c2'}),
        tf.layers.activation({activation: 'relu', name: 'r2'}),
        tf.layers.flatten({name: 'f'}),
        tf.layers.dense({units: 3, name: 'd'}),
      ],
    });
    const vals = bn.getWeights().map((w, i) => tf.randomUniform(w.shape, 0.5, 1.5, 'float32', 40 + i));
    bn.setWeights(vals);
    tf.dispose(vals);
    const warnings: string[] = [];
    const ws = await replaceBatchNormalization(bn, {groups: 4, weightStandardization: true, warn: (m) => warnings.push(m)});
    expect(warnings).toEqual([]);
    // c2 does not feed a BatchNormalization: it stays a Conv2D.
    expect(ws.layers.map((l) => l.getClassName())).toEqual(['WSConv2D', 'GroupNormalization', 'Activation', 'Conv2D', 'Activation', 'Flatten', 'Dense']);
    const c1 = bn.getLayer('c1').getWeights();
    ws.getLayer('c1').getWeights().forEach((w, i) => expect(maxAbsDiff(w.dataSync(), c1[i].dataSync())).toBe(0));

    const hand = tf.sequential({
      layers: [
        layers.wsConv2d({inputShape: [6, 6, 2], filters: 8, kernelSize: 3, padding: 'same', name: 'c1'}),
        layers.groupNormalization({groups: 4, name: 'bn1'}),
        tf.layers.activation({activation: 'relu', name: 'r1'}),
        tf.layers.conv2d({filters: 4, kernelSize: 3, strides: 2, padding: 'same', name: 'c2'}),
        tf.layers.activation({activation: 'relu', name: 'r2'}),
        tf.layers.flatten({name: 'f'}),
        tf.layers.dense({units: 3, name: 'd'}),
      ],
    });
    hand.setWeights(ws.getWeights());
    const x = tf.randomNormal([3, 6, 6, 2], 0, 1, 'float32', 12);
    const ya = ws.predict(x) as tf.Tensor;
    const yb = hand.predict(x) as tf.Tensor;
    expect(maxAbsDiff(ya.dataSync(), yb.dataSync())).toBe(0);
    // Without the option the conv stays a Conv2D.
    const gn = await replaceBatchNormalization(bn, {groups: 4});
    expect(gn.layers[0].getClassName()).toBe('Conv2D');
    // Save/load keeps the WS conv and every weight.
    const loaded = await tf.loadLayersModel(tf.io.fromMemory(await saveToMemory(ws)));
    expect(loaded.layers[0]).toBeInstanceOf(WSConv2D);
    const wa = ws.getWeights();
    loaded.getWeights().forEach((w, i) => expect(maxAbsDiff(w.dataSync(), wa[i].dataSync())).toBe(0));
    tf.dispose([x, ya, yb]);
    [ws, hand, gn, loaded, bn].forEach((m) => m.dispose());
  });

  test('functional with a nested sequential: Conv1D and nested Conv2D before BN become WS; a Dense before BN is warned about and kept', async () => {
    const input = tf.input({shape: [8, 3]});
    const a = tf.layers.conv1d({filters: 4, kernelSize: 3, padding: 'same', name: 'a_conv'}).apply(input) as tf.SymbolicTensor;
    const aBn = tf.layers.batchNormalization({name: 'a_bn'}).apply(a) as tf.SymbolicTensor;
    const r = tf.layers.reshape({targetShape: [8, 4, 1], name: 'r'}).apply(aBn) as tf.SymbolicTensor;
    const block = tf.sequential({
      name: 'block',
      layers: [
        tf.layers.conv2d({inputShape: [8, 4, 1], filters: 2, kernelSize: 3, padding: 'same', name: 'b_conv'}),
        tf.layers.batchNormalization({name: 'b_bn'}),
      ],
    });
    const f = tf.layers.flatten({name: 'f'}).apply(block.apply(r) as tf.SymbolicTensor) as tf.SymbolicTensor;
    const d = tf.layers.dense({units: 4, name: 'd'}).apply(f) as tf.SymbolicTensor;
    const out = tf.layers.batchNormalization({name: 'd_bn'}).apply(d) as tf.SymbolicTensor;
    const bn = tf.model({inputs: input, outputs: out});
    const warnings: string[] = [];
    const ws = await replaceBatchNormalization(bn, {groups: 2, weightStandardization: true, warn: (m) => warnings.push(m)});
    const names = (m: tf.LayersModel): string[] => m.layers.flatMap((l) =>
      l instanceof tf.LayersModel ? names(l).map((n) => `${l.name}/${n}`) : [`${l.name}:${l.getClassName()}`]);
    expect(names(ws)).toEqual(['input1:InputLayer', 'a_conv:WSConv1D', 'a_bn:GroupNormalization', 'r:Reshape',
      'block/b_conv:WSConv2D', 'block/b_bn:GroupNormalization', 'f:Flatten', 'd:Dense', 'd_bn:GroupNormalization']
        .map((s, i) => (i === 0 ? `${bn.layers[0].name}:InputLayer` : s)));
    expect(warnings).toEqual([expect.stringMatching(/weightStandardization: layer 'd' \(Dense\) before BatchNormalization 'd_bn' is not a Conv2D or Conv1D; left as it is/)]);
    // Predictions equal the ops applied to the carried weights.
    const x = tf.randomNormal([2, 8, 3], 0, 1, 'float32', 13);
    const want = tf.tidy(() => {
      const [ka, ba] = bn.getLayer('a_conv').getWeights();
      const h = tf.add(tf.conv1d(x as tf.Tensor3D, ops.weightStandardization(ka) as tf.Tensor3D, 1, 'same'), ba);
      const g = ops.groupNorm(h, {groups: 2});
      const inner = (bn.getLayer('block') as tf.LayersModel).getLayer('b_conv').getWeights();
      const h2 = tf.add(tf.conv2d(tf.reshape(g, [2, 8, 4, 1]) as tf.Tensor4D, ops.weightStandardization(inner[0]) as tf.Tensor4D, 1, 'same'), inner[1]);
      const g2 = ops.groupNorm(h2, {groups: 2});
      const [kd, bd] = bn.getLayer('d').getWeights();
      return ops.groupNorm(tf.add(tf.matMul(tf.reshape(g2, [2, -1]), kd), bd), {groups: 2});
    });
    const y = ws.predict(x) as tf.Tensor;
    expect(maxAbsDiff(y.dataSync(), want.dataSync())).toBeLessThan(1e-5);
    tf.dispose([x, y, want]);
    ws.dispose();
    bn.dispose();
  });

  test('a BatchNormalization called twice: the conv feeding both calls becomes WS, and one of two feeding convs too; a Dense feeding the other call is warned about', async () => {
    // One shared conv -> one shared BN (two inbound nodes, both from 'c'); a BN called on 'c2' and on a Dense.
    const x = tf.input({shape: [4, 4, 2]});
    const z = tf.input({shape: [4, 4, 2]});
    const c = tf.layers.conv2d({filters: 4, kernelSize: 1, name: 'c'});
    const bnShared = tf.layers.batchNormalization({name: 'bn'});
    const a = bnShared.apply(c.apply(x)) as tf.SymbolicTensor;
    const b = bnShared.apply(c.apply(z)) as tf.SymbolicTensor;
    const c2 = tf.layers.conv2d({filters: 4, kernelSize: 1, name: 'c2'}).apply(x) as tf.SymbolicTensor;
    const d = tf.layers.dense({units: 4, name: 'dense'}).apply(z) as tf.SymbolicTensor;
    const bnMixed = tf.layers.batchNormalization({name: 'bn_mixed'});
    const e = bnMixed.apply(c2) as tf.SymbolicTensor;
    const f = bnMixed.apply(d) as tf.SymbolicTensor;
    const model = tf.model({inputs: [x, z], outputs: [a, b, e, f]});
    const vals = model.getWeights().map((w, i) => tf.randomUniform(w.shape, 0.5, 1.5, 'float32', 60 + i));
    model.setWeights(vals);
    tf.dispose(vals);
    const warnings: string[] = [];
    const ws = await replaceBatchNormalization(model, {groups: 2, weightStandardization: true, warn: (m) => warnings.push(m)});
    expect(ws.getLayer('c')).toBeInstanceOf(WSConv2D);
    expect(ws.getLayer('c2')).toBeInstanceOf(WSConv2D);
    expect(ws.getLayer('dense').getClassName()).toBe('Dense');
    expect(warnings).toEqual([expect.stringMatching(/weightStandardization: layer 'dense' \(Dense\) before BatchNormalization 'bn_mixed' is not a Conv2D or Conv1D; left as it is/)]);
    // Both calls of 'c' run the standardized kernel: the ops on the carried weights.
    const xs = [tf.randomNormal([2, 4, 4, 2], 0, 1, 'float32', 14), tf.randomNormal([2, 4, 4, 2], 0, 1, 'float32', 15)];
    const [kc, bc] = model.getLayer('c').getWeights();
    const [gamma, beta] = model.getLayer('bn').getWeights();
    const ys = ws.predict(xs) as tf.Tensor[];
    xs.forEach((xi, k) => {
      const want = tf.tidy(() => ops.groupNorm(tf.add(tf.conv2d(xi as tf.Tensor4D, ops.weightStandardization(kc) as tf.Tensor4D, 1, 'valid'), bc),
                                               {groups: 2, epsilon: 1e-3, gamma, beta}));
      expect(maxAbsDiff(ys[k].dataSync(), want.dataSync())).toBeLessThan(1e-5);
      want.dispose();
    });
    tf.dispose([...xs, ...ys]);
    ws.dispose();
    model.dispose();
  });

  test('error: weightStandardization not a boolean', async () => {
    const m = tf.sequential({layers: [tf.layers.dense({inputShape: [2], units: 2})]});
    await expect(replaceBatchNormalization(m, {weightStandardization: 'yes' as never}))
        .rejects.toThrow(/replaceBatchNormalization: argument 'weightStandardization' must be true or false; received "yes"/);
    m.dispose();
  });
});
