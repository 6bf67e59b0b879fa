/**
 * Masked statistics: masked positions are left out of the mean and variance
 * and are normalized with the statistics of the valid positions (they are
 * not passed through). Checked against the float64 reference, with
 * gradients against finite differences, for the ops and the layers, and
 * for the invariance that motivates it: a padded sequence gives the same
 * output whatever its padding length.
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';

import {GroupNormalization, InstanceNormalization, LayerNormalization, layers, ops, RMSNormalization} from '../src';
import {FUSED_FLAG, SIMD_FLAG} from '../src/kernels/index';
import {maskView, prepareMask, setOps} from '../src/ops/mask';
import {axesCase, groupCase, instanceCase, OpCase} from './cases';
import {expectClose, expectNoLeakSync, maxAbsDiff, useTestBackend} from './helpers';
import {axesSpec, groupSpec, normals, refForward, refGradsFD, RefSpec, rng, unravel} from './reference';

beforeAll(async () => {
  await useTestBackend();
});

/** A [N, T] mask with sequence lengths `lengths`, flattened to x's elements too. */
function timeMask(lengths: number[], T: number, perStep: number): {mask: tf.Tensor2D, flat: Float32Array} {
  const m = lengths.flatMap((len) => Array.from({length: T}, (_, t) => (t < len ? 1 : 0)));
  const flat = new Float32Array(m.length * perStep);
  m.forEach((v, i) => flat.fill(v, i * perStep, (i + 1) * perStep));
  return {mask: tf.tensor2d(m, [lengths.length, T], 'bool') as tf.Tensor2D, flat};
}

/** A case of the matrix (test/cases.ts), with gamma. */
type MaskCase = OpCase&{paramShape: number[]};
const named = (name: string, c: OpCase): MaskCase => ({...c, name, paramShape: c.paramShape as number[]});

const SHAPE = [3, 5, 4];  // [batch, time, channels]
const LENGTHS = [5, 3, 1];
const CASES: MaskCase[] = [
  named('groupNorm groups 2 (statistics over time and the group\'s channels)', groupCase(SHAPE, 2, -1)),
  named('instanceNorm (statistics over time)', instanceCase(SHAPE, -1, {epsilon: 1e-5})),
  named('layerNorm over [time, channels]', axesCase(SHAPE, [1, 2], 'center')),
  named('layerNorm rmsScaling over [time, channels]', axesCase(SHAPE, [1, 2], 'rmsScaling')),
  named('rmsNorm over [time, channels]', axesCase(SHAPE, [1, 2], 'rms', {epsilon: 1e-6})),
];

describe.each(CASES.map((c) => [c.name, c] as const))('masked %s', (_name, c) => {
  test('forward and gradients match the float64 reference and finite differences', () => {
    const rand = rng(c.name.length * 101);
    const n = c.shape.reduce((a, b) => a * b, 1);
    const xs = normals(rand, n, 1, 2);
    const dys = normals(rand, n);
    const pn = c.paramShape.reduce((a, b) => a * b, 1);
    const gs = normals(rand, pn, 1, 0.3);
    const bs = c.beta ? normals(rand, pn, 0, 0.5) : null;
    const {mask, flat} = timeMask(LENGTHS, SHAPE[1], SHAPE[2]);
    const [x, dy, gamma] = [tf.tensor(xs, c.shape), tf.tensor(dys, c.shape), tf.tensor(gs, c.paramShape)];
    const beta = bs ? tf.tensor(bs, c.paramShape) : undefined;
    const y = expectNoLeakSync(() => c.run(x, gamma, beta, mask));
    // Masked positions of a one-step sequence are scaled by rsqrt(epsilon): compare relative to the magnitude.
    const ref = refForward(c.spec, xs, gs, bs, flat);
    expectClose(y, ref, 2e-6 * Math.max(1, ...Array.from(ref, Math.abs)), 'forward');
    const args = beta ? [x, gamma, beta] : [x, gamma];
    const grads = expectNoLeakSync(() => tf.grads((...a: tf.Tensor[]) => tf.sum(tf.mul(c.run(a[0], a[1], a[2], mask), dy)))(args));
    // Outputs at masked positions are don't-cares: their dy is dropped, so
    // the gradients are those of the loss over the valid outputs only.
    const fd = refGradsFD(c.spec, xs, Float64Array.from(dys, (v, i) => v * flat[i]), gs, bs, 1e-6, flat);
    expectClose(grads[0], fd.dx, 2e-4, 'dx');
    expectClose(grads[1], fd.dgamma as Float64Array, 2e-4, 'dgamma');
    if (beta) expectClose(grads[2], fd.dbeta as Float64Array, 2e-4, 'dbeta');
    tf.dispose([x, dy, gamma, y, mask, ...grads, ...(beta ? [beta] : [])]);
  });

  test('garbage (NaN, Inf) at masked positions does not reach the valid outputs', () => {
    const xs = normals(rng(3), 60, 0, 1);
    const {mask, flat} = timeMask(LENGTHS, SHAPE[1], SHAPE[2]);
    const dirty = Float32Array.from(xs, (v, i) => (flat[i] ? v : [NaN, Infinity, -1e30][i % 3]));
    const clean = Float32Array.from(xs, (v, i) => (flat[i] ? v : 0));
    const gamma = tf.ones(c.paramShape);
    const a = c.run(tf.tensor(dirty, c.shape), gamma, undefined, mask).dataSync();
    const b = c.run(tf.tensor(clean, c.shape), gamma, undefined, mask).dataSync();
    for (let i = 0; i < a.length; i++) {
      if (flat[i]) expect(a[i]).toBe(b[i]);
    }
  });

  test.each([['cpu'], ['wasm']])('%s: garbage (NaN, Inf) at masked positions, in x and in dy, reaches no gradient, on every path', async (backend) => {
    expect(await tf.setBackend(backend)).toBe(true);
    try {
      const rand = rng(17);
      const n = c.shape.reduce((a, b) => a * b, 1);
      const pn = c.paramShape.reduce((a, b) => a * b, 1);
      const xs = normals(rand, n, 0, 1);
      const dys = normals(rand, n);
      const {mask, flat} = timeMask(LENGTHS, SHAPE[1], SHAPE[2]);
      const junk = [NaN, Infinity, -Infinity, 3e38];
      const dirty = (a: Float32Array) => Float32Array.from(a, (v, i) => (flat[i] ? v : junk[i % 4]));
      const clean = (a: Float32Array) => Float32Array.from(a, (v, i) => (flat[i] ? v : 0));
      const gamma = tf.tensor(normals(rand, pn, 1, 0.3), c.paramShape);
      const beta = c.beta ? tf.tensor(normals(rand, pn, 0, 0.3), c.paramShape) : undefined;
      const grads = (x: Float32Array, dy: Float32Array) => tf.tidy(() => {
        const dyt = tf.tensor(dy, c.shape);
        const args = [tf.tensor(x, c.shape), gamma, ...(beta ? [beta] : [])];
        return tf.grads((...a: tf.Tensor[]) => tf.sum(tf.mul(c.run(a[0], a[1], a[2], mask), dyt)))(args).map((t) => t.dataSync());
      });
      for (const flags of [{}, {[SIMD_FLAG]: false}, {[FUSED_FLAG]: false}] as Array<Record<string, boolean>>) {
        const prev = Object.keys(flags).map((k) => [k, tf.env().getBool(k)] as const);
        Object.entries(flags).forEach(([k, v]) => tf.env().set(k, v));
        try {
          const got = grads(dirty(xs), dirty(dys));
          const want = grads(clean(xs), clean(dys));
          // dx: equal at valid positions, 0 at masked ones; dgamma, dbeta: equal and finite.
          const dxBad = Array.from(got[0]).flatMap((v, i) => ((flat[i] ? v === want[0][i] : v === 0) ? [] : [[i, v, want[0][i]]]));
          expect(dxBad).toEqual([]);
          for (let k = 1; k < got.length; k++) {
            expect(Array.from(got[k]).every(Number.isFinite)).toBe(true);
            expect(Array.from(got[k])).toEqual(Array.from(want[k]));
          }
        } finally {
          prev.forEach(([k, v]) => tf.env().set(k, v));
        }
      }
      tf.dispose([gamma, mask, ...(beta ? [beta] : [])]);
    } finally {
      await useTestBackend();
    }
  });

  test('an all-ones mask equals no mask; mask null is the unmasked path exactly', () => {
    const x = tf.randomNormal(c.shape, 0, 1, 'float32', 9);
    const gamma = tf.randomUniform(c.paramShape, 0.5, 1.5, 'float32', 2);
    const none = c.run(x, gamma, undefined, null).dataSync();
    const ones = c.run(x, gamma, undefined, tf.ones(c.shape.slice(0, 2), 'bool')).dataSync();
    expect(maxAbsDiff(ones, none)).toBeLessThan(1e-5);
    const omitted = (c.name.startsWith('rms') ? ops.rmsNorm(x, {axis: [1, 2], gamma}) : null);
    if (omitted) expect(Array.from(omitted.dataSync())).toEqual(Array.from(none));
  });
});

describe('masks in layers', () => {
  test('a sequence gives the same output whatever its padding length (embedding maskZero -> normalization -> LSTM)', async () => {
    const build = (norm: () => tf.layers.Layer) => {
      const input = tf.input({shape: [null as unknown as number], dtype: 'int32'});
      const emb = tf.layers.embedding({inputDim: 20, outputDim: 6, maskZero: true, embeddingsInitializer: tf.initializers.randomNormal({seed: 1})}).apply(input);
      const normed = norm().apply(emb) as tf.SymbolicTensor;
      const lstm = tf.layers.lstm({units: 4, returnSequences: true, kernelInitializer: tf.initializers.glorotUniform({seed: 2}), recurrentInitializer: tf.initializers.glorotUniform({seed: 3})}).apply(normed);
      const model = tf.model({inputs: input, outputs: [normed, lstm as tf.SymbolicTensor]});
      model.setWeights(model.getWeights().map((w, i) => tf.randomUniform(w.shape, 0.5, 1.5, 'float32', 10 + i)));
      return model;
    };
    const norms: Array<[string, () => tf.layers.Layer]> = [
      ['GroupNormalization', () => layers.groupNormalization({groups: 2})],
      ['InstanceNormalization', () => layers.instanceNormalization()],
      ['LayerNormalization over [time, features], no affine', () => layers.layerNormalization({axis: [1, 2], center: false, scale: false})],
      ['LayerNormalization rms over [time, features], no scale', () => layers.layerNormalization({axis: [1, 2], rms: true, scale: false})],
    ];
    for (const [name, norm] of norms) {
      const model = build(norm);
      const seq = [3, 7, 1, 12, 5];
      const short = tf.tensor2d([[...seq, 0]], undefined, 'int32');
      const long = tf.tensor2d([[...seq, 0, 0, 0, 0, 0, 0]], undefined, 'int32');
      const [nShort, lShort] = model.predict(short) as tf.Tensor[];
      const [nLong, lLong] = model.predict(long) as tf.Tensor[];
      const valid = (t: tf.Tensor) => tf.slice(t, [0, 0, 0], [1, seq.length, -1]).dataSync();
      const errors = {name, normalized: maxAbsDiff(valid(nShort), valid(nLong)), lstm: maxAbsDiff(valid(lShort), valid(lLong))};
      expect(errors).toEqual({name, normalized: expect.any(Number), lstm: expect.any(Number)});
      expect(errors.normalized).toBeLessThan(1e-5);
      expect(errors.lstm).toBeLessThan(1e-5);
      tf.dispose([short, long, nShort, lShort, nLong, lLong]);
      model.dispose();
    }
  });

  test('the padding changes the output when the mask is not used (so the invariance above is real)', () => {
    const gn = new GroupNormalization({groups: 2});
    const x = tf.randomNormal([1, 4, 4], 0, 1, 'float32', 5);
    const padded = tf.concat([x, tf.zeros([1, 3, 4])], 1);
    const a = tf.slice(gn.apply(padded) as tf.Tensor, [0, 0, 0], [1, 4, 4]);
    const b = gn.apply(x) as tf.Tensor;
    expect(maxAbsDiff(a.dataSync(), b.dataSync())).toBeGreaterThan(1e-2);
    const mask = tf.tensor2d([[1, 1, 1, 1, 0, 0, 0]], undefined, 'bool');
    const c = tf.slice(gn.apply(padded, {mask}) as tf.Tensor, [0, 0, 0], [1, 4, 4]);
    expect(maxAbsDiff(c.dataSync(), b.dataSync())).toBeLessThan(1e-5);
  });

  test('every layer takes kwargs.mask and passes it on', () => {
    const x = tf.randomNormal([2, 4, 6], 0, 1, 'float32', 7);
    const mask = tf.tensor2d([[1, 1, 0, 0], [1, 1, 1, 0]], undefined, 'bool');
    const flat = Float32Array.from({length: 48}, (_, i) => {
      const [n, t] = unravel(i, [2, 4, 6]);
      return mask.arraySync()[n][t] ? 1 : 0;
    });
    const xs = x.dataSync();
    const checks: Array<[tf.layers.Layer, RefSpec]> = [
      [new GroupNormalization({groups: 3}), groupSpec([2, 4, 6], 3, 2, 1e-3)],
      [new InstanceNormalization(), groupSpec([2, 4, 6], 6, 2, 1e-3)],
      [new LayerNormalization({axis: [1, 2], center: false, scale: false}), axesSpec([2, 4, 6], [1, 2], 1e-3, 'center')],
      [new RMSNormalization({axis: [1, 2]}), axesSpec([2, 4, 6], [1, 2], 1e-6, 'rms')],
    ];
    for (const [layer, spec] of checks) {
      const y = layer.apply(x, {mask}) as tf.Tensor;
      expectClose(y, refForward(spec, xs, null, null, flat), 2e-5, layer.getClassName());
      expect(layer.computeMask(x, mask)).toBe(mask);
    }
  });

  test('a bad mask is a named error', () => {
    const x = tf.zeros([2, 4, 6]);
    expect(() => ops.groupNorm(x, {groups: 2, mask: tf.ones([4, 2])})).toThrow(
        /groupNorm: argument 'mask' must have a shape that is a prefix of the input's shape \[2,4,6\].*received shape \[4,2\]/);
    expect(() => ops.layerNorm(x, {mask: tf.tensor([['a', 'b', 'c', 'd'], ['a', 'b', 'c', 'd']])})).toThrow(/layerNorm: argument 'mask' must have dtype bool, float32 or int32/);
  });
});

describe('the prepared mask (src/ops/mask.ts)', () => {
  // [x shape, mask shape, view shape]: views of group (GN/IN) and axes (LN) plans,
  // including views whose first axis merges masked and unmasked axes.
  const VIEWS: Array<[number[], number[], number[]]> = [
    [[3, 5, 4], [3, 5], [3, 5, 2, 2]],  // GN groups 2 over [N, T, C]
    [[3, 5, 4], [3, 5], [15, 4]],  // LN over the last axis
    [[3, 5, 4], [3], [3, 20]],  // LN over [1, 2], a batch mask
    [[3, 5, 4], [3], [15, 4]],  // a batch mask in a view that merges batch and time
    [[2, 3, 4, 6], [2, 3], [2, 12, 3, 2]],  // GN on [N, H, W, C]: mask over N, H; view merges H, W
    [[2, 3, 4, 6], [2, 3, 4], [2, 3, 4, 6]],  // IN channels-first-like view, mask over N, H, W
    [[2, 3, 4, 6], [2, 3, 4, 6], [6, 4, 6]],  // a full-size mask
    [[2, 1, 4], [2, 1], [2, 4]],  // size-1 axes
  ];
  test.each(VIEWS)('x %j, mask %j, view %j: broadcast it equals the full-size mask in the view, and it is no larger than it must be',
                   (shape, maskShape, viewShape) => {
                     const r = rng(shape.length * 7 + maskShape.length);
                     const raw = tf.tensor(Array.from({length: maskShape.reduce((p, d) => p * d, 1)}, () => (r() < 0.5 ? 0 : 3)),
                                          maskShape, 'int32');
                     const prepared = prepareMask('t', raw, shape) as tf.Tensor;
                     expect(prepared.shape).toEqual([...maskShape, ...new Array<number>(shape.length - maskShape.length).fill(1)]);
                     const view = maskView(prepared, shape, viewShape);
                     const full = tf.reshape(tf.mul(tf.cast(tf.notEqual(tf.reshape(raw, prepared.shape), 0), 'float32'),
                                                    tf.ones(shape)), viewShape);
                     expect(Array.from(tf.broadcastTo(view, viewShape).dataSync())).toEqual(Array.from(full.dataSync()));
                     // Only the view's leading axes that the mask reaches keep their size.
                     expect(view.size).toBeLessThanOrEqual(full.size);
                     if (maskShape.length < shape.length && maskShape.reduce((p, d) => p * d, 1) > 1) {
                       expect(view.size).toBeLessThan(full.size);
                     }
                     tf.dispose([raw, prepared, view, full]);
                   });

  test('setOps count: valid positions per set, counting the axes the mask broadcasts along', () => {
    const mask = tf.tensor([1, 0, 1, 1, 0, 0], [2, 3, 1]);
    const set = setOps([1, 2], [2, 3, 4], mask);
    expect(Array.from(set.count().dataSync())).toEqual([8, 4]);
    const x = tf.tensor(Array.from({length: 24}, (_, i) => i), [2, 3, 4]);
    // Set 0: valid rows 0 and 1 of [[0..3], [4..7], [8..11]]: mean 5.5. Set 1: row 0 of [[12..15], ...]: mean 13.5.
    expect(Array.from(set.avg(x).dataSync())).toEqual([5.5, 13.5]);
    // Statistics over axis 1 only: the count has the statistics' shape, [2, 1, 4], though the mask is 1 on axis 2.
    const perColumn = setOps([1], [2, 3, 4], mask).count();
    expect(perColumn.shape).toEqual([2, 1, 4]);
    expect(Array.from(perColumn.dataSync())).toEqual([2, 2, 2, 2, 1, 1, 1, 1]);
    tf.dispose([mask, x]);
  });
});
