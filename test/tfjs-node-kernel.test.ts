/**
 * The fused kernels of the 'tensorflow' backend (src/kernels/tensorflow.ts:
 * native TensorFlow op chains), where @tensorflow/tfjs-node can be imported
 * (scripts/tfjs-node-test.sh builds it and runs this file): every mode and
 * layout against the float64 reference and the tf-op path, forward and
 * gradients, the kernel actually running (and its backward), accuracy at
 * mean 1e3 / std 1e-2, the data it declines (the tf-op path then runs and
 * must be right), masks, second-order gradients, leaks.
 *
 * The registration itself needs no tfjs-node and is checked in every run.
 * Where tfjs-node cannot be imported, one loud line says so and the rest is
 * skipped (REQUIRE_TFJS_NODE=1 makes that a failure).
 */
import * as tf from '@tensorflow/tfjs';

import {ops} from '../src';
import {FUSED_FLAG, FUSED_NORM_GRAD_KERNEL, FUSED_NORM_KERNEL} from '../src/kernels/index';
import {tensorflowBackwardKind, tensorflowRuns} from '../src/kernels/tensorflow';
import {NormMode, NormPlan, normalize} from '../src/ops/core';
import {groupNormPlan} from '../src/ops/group_norm';
import {axesPlan} from '../src/ops/layer_norm';
import {expectClose, expectNoLeakSync, maxAbsDiff, reportTfjsNodeMissing, tryTfjsNode, withFlags} from './helpers';
import {axesSpec, groupSpec, normals, refForward, refGrads64, RefSpec, rng} from './reference';

const NO_TFJS_NODE_MESSAGE = 'tensorflow (tfjs-node) fused kernels NOT tested: @tensorflow/tfjs-node is not installed';

test('the fused kernels are registered for \'tensorflow\' without tfjs-node being loaded', () => {
  expect(tf.getKernel(FUSED_NORM_KERNEL, 'tensorflow')).toBeDefined();
  expect(tf.getKernel(FUSED_NORM_GRAD_KERNEL, 'tensorflow')).toBeDefined();
});

interface Case {
  name: string;
  shape: number[];
  spec: RefSpec;
  paramShape: number[]|null;
  beta: boolean;
  plan: NormPlan;
  run: (x: tf.Tensor, gamma?: tf.Tensor, beta?: tf.Tensor) => tf.Tensor;
}

function cases(): Case[] {
  const out: Case[] = [];
  const gn = (shape: number[], groups: number, axis: number, affine: boolean, mode: NormMode = 'center', eps = 1e-3) => {
    const a = axis < 0 ? axis + shape.length : axis;
    const plan = {...groupNormPlan('t', shape, groups, axis, eps), mode};
    out.push({
      name: `${mode === 'center' ? 'groupNorm' : mode} ${JSON.stringify(shape)} groups=${groups} axis=${axis}${affine ? '' : ' no affine'}`,
      shape, spec: {...groupSpec(shape, groups, a, eps), mode}, paramShape: affine ? [shape[a]] : null, beta: affine,
      plan,
      run: mode === 'center' ? (x, gamma, beta) => ops.groupNorm(x, {groups, axis, epsilon: eps, gamma, beta}) :
                               (x, gamma, beta) => normalize(x, plan, gamma, beta),
    });
  };
  gn([2, 6, 5, 64], 32, -1, true);      // channels-last (partials)
  gn([2, 5, 7, 32], 8, -1, false);      // no affine
  gn([2, 8, 6, 5], 4, 1, true);         // channels-first: rows
  gn([2, 3, 6, 2], 3, 2, true);         // channel axis in the middle
  gn([2, 2, 2, 2, 6], 3, -1, true);     // rank 5
  gn([4, 24], 1, -1, true);             // one group
  gn([3, 4, 4, 16], 16, -1, true, 'stdEps');
  gn([3, 16, 20], 16, 1, true, 'stdEps');
  gn([2, 8, 6, 5], 4, 1, true, 'stdEps');  // gamma varies inside a set: the general backward
  gn([2, 8, 5, 4], 4, 1, true, 'rms');
  gn([2, 4, 4, 8], 2, -1, false, 'rms');  // rms with partials
  gn([2, 4, 4, 8], 2, -1, true, 'rmsScaling');
  out.push({
    name: 'instanceNorm [2,7,5,24]', shape: [2, 7, 5, 24], spec: groupSpec([2, 7, 5, 24], 24, 3, 1e-3),
    paramShape: [24], beta: true, plan: groupNormPlan('t', [2, 7, 5, 24], 24, -1, 1e-3),
    run: (x, gamma, beta) => ops.instanceNorm(x, {gamma, beta}),
  });
  const ax = (shape: number[], axes: number[], mode: NormMode, affine: boolean, eps = 1e-3) => {
    const A = axes.map((a) => (a < 0 ? a + shape.length : a)).sort((p, q) => p - q);
    const beta = affine && mode === 'center';
    out.push({
      name: `${mode} ${JSON.stringify(shape)} axes=${JSON.stringify(axes)}${affine ? '' : ' no affine'}`,
      shape, spec: axesSpec(shape, axes, eps, mode), paramShape: affine ? A.map((a) => shape[a]) : null, beta,
      plan: axesPlan(shape, A, eps, mode),
      run: mode === 'rms' ? (x, gamma) => ops.rmsNorm(x, {axis: axes, epsilon: eps, gamma}) :
                            (x, gamma, b) => ops.layerNorm(
                                x, {axis: axes, epsilon: eps, gamma, beta: b, rmsScaling: mode === 'rmsScaling'}),
    });
  };
  ax([3, 5, 48], [-1], 'center', true);
  ax([4, 7], [-1], 'center', true);
  ax([2, 3, 4, 5], [1, 3], 'center', true);   // alternating axes (partials)
  ax([2, 3, 4, 5], [1, 2, 3], 'center', false);
  ax([6, 5, 9], [1], 'center', true);         // a kept axis after the reduced one
  ax([24, 5], [0], 'center', true);           // statistics over the batch axis
  ax([6, 3, 20], [0, 2], 'center', true);     // a set spans several rows
  ax([3, 5, 40], [-1], 'rms', true);
  ax([3, 40, 2], [1], 'rms', true);
  ax([3, 5, 40], [-1], 'rmsScaling', true);
  ax([3, 6, 4], [1, 2], 'rmsScaling', true);
  return out;
}

interface Data {
  x: tf.Tensor;
  gamma?: tf.Tensor;
  beta?: tf.Tensor;
  dy: tf.Tensor;
}

function makeData(c: Case, seed: number, mean = 0.5, std = 2): Data {
  const rand = rng(seed);
  const n = c.shape.reduce((a, b) => a * b, 1);
  const d: Data = {x: tf.tensor(normals(rand, n, mean, std), c.shape), dy: tf.tensor(normals(rand, n), c.shape)};
  if (c.paramShape) {
    const p = c.paramShape.reduce((a, b) => a * b, 1);
    d.gamma = tf.tensor(normals(rand, p, 1, 0.5), c.paramShape);
    if (c.beta) d.beta = tf.tensor(normals(rand, p), c.paramShape);
  }
  return d;
}

const disposeData = (d: Data) => tf.dispose([d.x, d.gamma, d.beta, d.dy].filter((t): t is tf.Tensor => t != null));

function gradsOf(c: Case, d: Data): tf.Tensor[] {
  const args = [d.x, d.gamma, d.beta].filter((t): t is tf.Tensor => t != null);
  const f = (...a: tf.Tensor[]) => tf.sum(tf.mul(c.run(a[0], a[1], c.beta ? a[2] : undefined), d.dy));
  return tf.grads(f)(args);
}

async function kernelsRun(fn: () => tf.Tensor|tf.Tensor[]): Promise<string[]> {
  const info = await tf.profile(() => fn());
  tf.dispose(info.result as tf.Tensor|tf.Tensor[]);
  return info.kernels.map((k) => k.name);
}

function forwardAndGrads(c: Case, d: Data): {y: Float32Array, grads: Float32Array[]} {
  const y = expectNoLeakSync(() => c.run(d.x, d.gamma, d.beta), 'forward');
  const ys = y.dataSync() as Float32Array;
  y.dispose();
  const grads = expectNoLeakSync(() => gradsOf(c, d), 'gradients');
  const gs = grads.map((g) => g.dataSync() as Float32Array);
  tf.dispose(grads);
  return {y: ys, grads: gs};
}

const scaleOf = (a: ArrayLike<number>) => Math.max(1, ...Array.from(a, Math.abs));
const refGradList = (c: Case, d: Data) => {
  const rg = refGrads64(c.spec, d.x.dataSync(), d.dy.dataSync(), d.gamma?.dataSync());
  return [rg.dx, ...(d.gamma ? [rg.dgamma] : []), ...(d.beta ? [rg.dbeta] : [])];
};

if (!tryTfjsNode()) {
  reportTfjsNodeMissing(NO_TFJS_NODE_MESSAGE, 'tensorflow (tfjs-node) fused kernels');
} else {
  const ALL = cases();

  test('the case matrix covers both backwards (folded and general) in every mode', () => {
    const seen = new Set(ALL.map((c) => `${c.plan.mode} ${tensorflowBackwardKind(c.plan)}`));
    const want = ['center', 'stdEps', 'rms', 'rmsScaling'].flatMap((m) => [`${m} folded`, `${m} general`]);
    expect(want.filter((w) => !seen.has(w))).toEqual([]);
  });

  beforeAll(async () => {
    expect(await tf.setBackend('tensorflow')).toBe(true);
  });

  test.each(ALL.map((c) => [c.name, c]))('%s: the native kernels run; forward and gradients match float64 and the tf-op path', async (_, c) => {
    const d = makeData(c, 7);
    const runs = {...tensorflowRuns};
    expect(await kernelsRun(() => c.run(d.x, d.gamma, d.beta))).toContain(FUSED_NORM_KERNEL);
    expect(await kernelsRun(() => gradsOf(c, d))).toContain(FUSED_NORM_GRAD_KERNEL);
    expect(tensorflowRuns.forward).toBeGreaterThan(runs.forward);
    expect(tensorflowRuns.backward).toBeGreaterThan(runs.backward);
    expect(tensorflowRuns.declined).toBe(runs.declined);
    const off = await withFlags({[FUSED_FLAG]: false}, () => kernelsRun(() => gradsOf(c, d)));
    expect(off).not.toContain(FUSED_NORM_KERNEL);
    expect(off).not.toContain(FUSED_NORM_GRAD_KERNEL);

    const fused = forwardAndGrads(c, d);
    const plain = withFlags({[FUSED_FLAG]: false}, () => forwardAndGrads(c, d));
    const ref = refForward(c.spec, d.x.dataSync(), d.gamma?.dataSync(), d.beta?.dataSync());
    const s = scaleOf(ref);
    expectClose(fused.y, ref, 2e-6 * s, `${c.name} fused vs float64 reference`);
    expectClose(fused.y, plain.y, 1e-5 * s, `${c.name} fused vs tf-op forward`);
    expect(fused.grads.length).toBe(plain.grads.length);
    const refs = refGradList(c, d);
    fused.grads.forEach((g, i) => {
      expectClose(g, plain.grads[i], 5e-5 * scaleOf(plain.grads[i]), `${c.name} gradient ${i} vs tf-op path`);
      expectClose(g, refs[i], 5e-5 * scaleOf(refs[i]), `${c.name} gradient ${i} vs float64 reference`);
    });
    disposeData(d);
  });

  test('mean 1e3, std 1e-2: forward within 2e-4 of float64 (rmsScaling: 2e-6 relative) and gradients within 1e-4 (relative), every layout, the kernel running', () => {
    const checked: string[] = [];
    for (const c of ALL) {
      const d = makeData(c, 11, c.plan.mode === 'rms' ? 1 : 1e3, 1e-2);
      const runs = {...tensorflowRuns};
      const y = c.run(d.x, d.gamma, d.beta);
      const grads = gradsOf(c, d);
      expect(`${c.name}: declined ${tensorflowRuns.declined - runs.declined}`).toBe(`${c.name}: declined 0`);
      expect(tensorflowRuns.forward).toBeGreaterThan(runs.forward);
      const ref = refForward(c.spec, d.x.dataSync(), d.gamma?.dataSync(), d.beta?.dataSync());
      const err = maxAbsDiff(y.dataSync(), ref);
      // rmsScaling does not subtract the mean: y is about 1e5 there, so its bound is relative.
      const tol = c.plan.mode === 'rmsScaling' ? 2e-6 * scaleOf(ref) : 2e-4;
      expect(`${c.name}: forward error ${err} <= ${tol}: ${err <= tol}`).toMatch(/true$/);
      const refs = refGradList(c, d);
      grads.forEach((g, i) => {
        const rel = maxAbsDiff(g.dataSync(), refs[i]) / scaleOf(refs[i]);
        expect(`${c.name} gradient ${i}: ${rel} <= 1e-4: ${rel <= 1e-4}`).toMatch(/true$/);
      });
      checked.push(c.name);
      tf.dispose([y, ...grads]);
      disposeData(d);
    }
    expect(checked.length).toBe(ALL.length);
  });

  test('the bench shapes at mean 1e3, std 1e-2 (GroupNorm [2,16,16,64] G=32, LayerNorm [64,768]): within 2e-4 of float64', () => {
    const EPS = 1e-5;
    const gx = normals(rng(42), 2 * 16 * 16 * 64, 1e3, 1e-2);
    const lx = normals(rng(43), 64 * 768, 1e3, 1e-2);
    const runs = tensorflowRuns.forward;
    const y1 = tf.tidy(() => ops.groupNorm(tf.tensor(gx, [2, 16, 16, 64]), {groups: 32, epsilon: EPS}).dataSync());
    const y2 = tf.tidy(() => ops.layerNorm(tf.tensor(lx, [64, 768]), {epsilon: EPS}).dataSync());
    expect(tensorflowRuns.forward).toBe(runs + 2);
    expect(maxAbsDiff(y1, refForward(groupSpec([2, 16, 16, 64], 32, 3, EPS), gx))).toBeLessThanOrEqual(2e-4);
    expect(maxAbsDiff(y2, refForward(axesSpec([64, 768], [1], EPS, 'center'), lx))).toBeLessThanOrEqual(2e-4);
  });

  /** y of layerNorm / rmsNorm over [1, n] with epsilon 0, and whether the kernel declined. */
  function rowNorm(xs: Float32Array, mode: 'center'|'rms'|'rmsScaling'): {y: Float32Array, declined: boolean} {
    const before = tensorflowRuns.declined;
    const y = tf.tidy(() => {
      const x = tf.tensor2d(xs, [1, xs.length]);
      return (mode === 'rms' ? ops.rmsNorm(x, {epsilon: 0}) :
                               ops.layerNorm(x, {epsilon: 0, rmsScaling: mode === 'rmsScaling'})).dataSync() as Float32Array;
    });
    return {y, declined: tensorflowRuns.declined > before};
  }

  // Not 1e-39 (a denormal spread) as on cpu and wasm: TensorFlow flushes
  // denormals to zero, so both paths see zeros there.
  test('extreme magnitudes decline to the tf-op path, which matches float64 (spreads 1e-20, 1e-25, values up to 3.4e38)', () => {
    const rand = rng(5);
    let declined = 0;
    for (const scale of [1e-20, 1e-25, 1e37, 1e38, 3.4e38]) {
      for (const n of [4, 7, 64]) {
        for (const mode of ['center', 'rms', 'rmsScaling'] as const) {
          const xs = Float32Array.from({length: n}, () => (2 * rand() - 1) * scale);
          const ref = refForward(axesSpec([1, n], [1], 0, mode), xs, null, null);
          const {y, declined: d} = expectNoLeakSync(() => rowNorm(xs, mode), 'extreme forward');
          if (d) declined++;
          const err = maxAbsDiff(y, ref);
          const tol = 2e-4 * Math.max(1, ...Array.from(ref, Math.abs));
          expect(`scale ${scale} n ${n} ${mode}: ${err} <= ${tol}: ${err <= tol}`).toMatch(/true$/);
        }
      }
    }
    expect(declined).toBeGreaterThan(0);
  });

  test('a constant set with epsilon 0 gives exactly beta (declined: 1 / std would be Inf)', () => {
    const x = tf.fill([2, 3, 8], 5.25);
    const beta = tf.tensor(normals(rng(5), 8));
    const gamma = tf.ones([8]);
    const before = tensorflowRuns.declined;
    const ys = [ops.groupNorm(x, {groups: 4, epsilon: 0, gamma, beta}), ops.layerNorm(x, {epsilon: 0, gamma, beta})];
    expect(tensorflowRuns.declined).toBe(before + 2);
    const b = beta.dataSync();
    for (const y of ys) {
      const v = y.dataSync();
      for (let i = 0; i < v.length; i++) expect(v[i]).toBe(b[i % 8]);
    }
    tf.dispose([x, beta, gamma, ...ys]);
  });

  test('a mean far from 0 against the spread takes the moments again around the mean found; all accurate', () => {
    const row = (xs: Float32Array) => {
      const ref = refForward(axesSpec([1, xs.length], [1], 1e-5, 'center'), xs, null, null);
      const before = {...tensorflowRuns};
      const y = tf.tidy(() => ops.layerNorm(tf.tensor2d(xs, [1, xs.length]), {epsilon: 1e-5}).dataSync());
      expect(tensorflowRuns.declined).toBe(before.declined);
      expect(tensorflowRuns.forward).toBe(before.forward + 1);
      return {passes: tensorflowRuns.extraPasses - before.extraPasses, err: maxAbsDiff(y, ref)};
    };
    // Mean 0.5, std 2: one pass.
    expect(row(normals(rng(8), 256, 0.5, 2))).toEqual({passes: 0, err: expect.any(Number)});
    const cases: Array<[string, Float32Array]> = [
      ['mean 1e3, std 1e-2', normals(rng(9), 256, 1e3, 1e-2)],
      ['mean 1e6, std 0.1', normals(rng(10), 256, 1e6, 0.1)],
      ['mean -3e4, std 1e-3, 4096 values', normals(rng(13), 4096, -3e4, 1e-3)],
    ];
    for (const [name, xs] of cases) {
      const r = row(xs);
      expect(`${name}: extra passes ${r.passes >= 1}, error ${r.err} <= 2e-4: ${r.err <= 2e-4}`).toBe(
          `${name}: extra passes true, error ${r.err} <= 2e-4: true`);
    }
    // A far outlier as the first element: no shift is taken from it, nothing cancels.
    const xs = normals(rng(11), 256, 0, 1);
    xs[0] = 1e6;
    const r = row(xs);
    expect(r.err).toBeLessThan(2e-4);
    // Gradients at mean 1e6, std 0.1 (the backward subtracts the saved m1 first there).
    const c = ALL.find((k) => k.name.startsWith('center [3,5,48]')) as Case;
    const d = makeData(c, 12, 1e6, 0.1);
    const grads = gradsOf(c, d);
    const refs = refGradList(c, d);
    grads.forEach((g, i) => expect(maxAbsDiff(g.dataSync(), refs[i]) / scaleOf(refs[i])).toBeLessThanOrEqual(1e-4));
    tf.dispose(grads);
    disposeData(d);
  });

  test('masked statistics take the tf-op path (no fused kernel)', async () => {
    const x = tf.tensor(normals(rng(9), 2 * 5 * 8), [2, 5, 8]);
    const mask = tf.tensor2d([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]]);
    const names = await kernelsRun(() => ops.layerNorm(x, {mask}));
    expect(names).not.toContain(FUSED_NORM_KERNEL);
    const names2 = await kernelsRun(() => ops.layerNorm(x));
    expect(names2).toContain(FUSED_NORM_KERNEL);
    tf.dispose([x, mask]);
  });

  test('second-order gradients (tf.grad of tf.grad) match the tf-op path, every mode', () => {
    const x = tf.tensor(normals(rng(21), 2 * 3 * 8, 0.3, 1.5), [2, 3, 8]);
    const gamma = tf.tensor(normals(rng(22), 8, 1, 0.3));
    const beta = tf.tensor(normals(rng(23), 8));
    const w = tf.tensor(normals(rng(24), 2 * 3 * 8), [2, 3, 8]);
    const runs: Array<[string, (a: tf.Tensor) => tf.Tensor]> = [
      ['groupNorm', (a) => ops.groupNorm(a, {groups: 4, gamma, beta})],
      ['layerNorm', (a) => ops.layerNorm(a, {gamma, beta})],
      ['rmsScaling', (a) => ops.layerNorm(a, {gamma, rmsScaling: true})],
      ['rmsNorm', (a) => ops.rmsNorm(a, {gamma})],
      ['stdEps', (a) => normalize(a, {viewShape: [2, 3, 8], reduceAxes: [1], paramViewShape: [1, 1, 8], epsilon: 1e-3, mode: 'stdEps'}, gamma, beta)],
    ];
    for (const [name, f] of runs) {
      // The gradient penalty: d/dx sum((d/dx sum(f(x) * w))^2).
      const second = () => tf.grad((a: tf.Tensor) => tf.sum(tf.square(tf.grad((b: tf.Tensor) => tf.sum(tf.mul(f(b), w)))(a))))(x);
      const fused = expectNoLeakSync(second, `${name} second order`);
      const plain = withFlags({[FUSED_FLAG]: false}, second);
      const ps = plain.dataSync();
      expect(maxAbsDiff(ps, new Float32Array(ps.length))).toBeGreaterThan(1e-3);
      expectClose(fused, ps, 1e-4 * scaleOf(ps), `${name}: second-order gradient`);
      tf.dispose([fused, plain]);
    }
    tf.dispose([x, gamma, beta, w]);
  });

  test('a training loop through the fused kernels leaks nothing and learns', () => {
    const x = tf.tensor(normals(rng(13), 2 * 4 * 4 * 8, 2, 3), [2, 4, 4, 8]);
    const target = tf.tensor(normals(rng(14), 2 * 4 * 4 * 8), [2, 4, 4, 8]);
    const gamma = tf.variable(tf.ones([8]));
    const beta = tf.variable(tf.zeros([8]));
    const opt = tf.train.sgd(0.1);
    const loss = () => tf.mean(tf.square(tf.sub(ops.groupNorm(x, {groups: 4, gamma, beta}), target))) as tf.Scalar;
    const first = tf.tidy(() => loss().dataSync()[0]);
    const before = tf.memory().numTensors;
    const runs = {...tensorflowRuns};
    for (let i = 0; i < 20; i++) tf.dispose(opt.minimize(loss, true) as tf.Scalar);
    expect(tf.memory().numTensors).toBe(before);
    expect(tensorflowRuns.backward - runs.backward).toBe(20);
    const last = tf.tidy(() => loss().dataSync()[0]);
    expect(last).toBeLessThan(first * 0.95);
    tf.dispose([x, target, gamma, beta]);
    opt.dispose();
  });
}
