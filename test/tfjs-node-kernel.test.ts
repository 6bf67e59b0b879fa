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
import {tensorflowBackwardKind} from '../src/kernels/tensorflow';
import {installKernelTrace} from '../src/kernels/trace';
import {normalize} from '../src/ops/core';
import {
  axesCase, caseData, caseGrads, disposeCaseData, forwardAndGrads, groupCase, groupNormTrainingLoop, instanceCase, kernelsRun, OpCase, refGradList, scaleOf,
} from './cases';
import {expectClose, expectNoLeakSync, maxAbsDiff, reportTfjsNodeMissing, tryTfjsNode, withFlags} from './helpers';
import {axesSpec, groupSpec, normals, refForward, rng} from './reference';

/** How many forwards / backwards ran, declined, took extra passes (test-only counters, installed here). */
const tensorflowRuns = installKernelTrace().tensorflow;

const NO_TFJS_NODE_MESSAGE = 'tensorflow (tfjs-node) fused kernels NOT tested: @tensorflow/tfjs-node is not installed';

test('the fused kernels are registered for \'tensorflow\' without tfjs-node being loaded', () => {
  expect(tf.getKernel(FUSED_NORM_KERNEL, 'tensorflow')).toBeDefined();
  expect(tf.getKernel(FUSED_NORM_GRAD_KERNEL, 'tensorflow')).toBeDefined();
});

/** The op cases of the matrix (test/cases.ts) this backend's kernels take: every mode, both backwards. */
function cases(): OpCase[] {
  const noAffine = {affine: false};
  return [
    groupCase([2, 6, 5, 64], 32, -1),            // channels-last (partials)
    groupCase([2, 5, 7, 32], 8, -1, noAffine),   // no affine
    groupCase([2, 8, 6, 5], 4, 1),               // channels-first: rows
    groupCase([2, 3, 6, 2], 3, 2),               // channel axis in the middle
    groupCase([2, 2, 2, 2, 6], 3, -1),           // rank 5
    groupCase([4, 24], 1, -1),                   // one group
    groupCase([3, 4, 4, 16], 16, -1, {}, 'stdEps'),
    groupCase([3, 16, 20], 16, 1, {}, 'stdEps'),
    groupCase([2, 8, 6, 5], 4, 1, {}, 'stdEps'),  // gamma varies inside a set: the general backward
    groupCase([2, 8, 5, 4], 4, 1, {}, 'rms'),
    groupCase([2, 4, 4, 8], 2, -1, noAffine, 'rms'),  // rms with partials
    groupCase([2, 4, 4, 8], 2, -1, {}, 'rmsScaling'),
    instanceCase([2, 7, 5, 24], -1),
    axesCase([3, 5, 48], [-1], 'center'),
    axesCase([4, 7], [-1], 'center'),
    axesCase([2, 3, 4, 5], [1, 3], 'center'),    // alternating axes (partials)
    axesCase([2, 3, 4, 5], [1, 2, 3], 'center', noAffine),
    axesCase([6, 5, 9], [1], 'center'),          // a kept axis after the reduced one
    axesCase([24, 5], [0], 'center'),            // statistics over the batch axis
    axesCase([6, 3, 20], [0, 2], 'center'),      // a set spans several rows
    axesCase([3, 5, 40], [-1], 'rms'),
    axesCase([3, 40, 2], [1], 'rms'),
    axesCase([3, 5, 40], [-1], 'rmsScaling'),
    axesCase([3, 6, 4], [1, 2], 'rmsScaling'),
  ];
}

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
    const d = caseData(c, 7);
    const runs = {...tensorflowRuns};
    expect(await kernelsRun(() => c.run(d.x, d.gamma, d.beta))).toContain(FUSED_NORM_KERNEL);
    expect(await kernelsRun(() => caseGrads(c, d))).toContain(FUSED_NORM_GRAD_KERNEL);
    expect(tensorflowRuns.forward).toBeGreaterThan(runs.forward);
    expect(tensorflowRuns.backward).toBeGreaterThan(runs.backward);
    expect(tensorflowRuns.declined).toBe(runs.declined);
    const off = await withFlags({[FUSED_FLAG]: false}, () => kernelsRun(() => caseGrads(c, d)));
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
    disposeCaseData(d);
  });

  test('mean 1e3, std 1e-2: forward within 2e-4 of float64 (rmsScaling: 2e-6 relative) and gradients within 1e-4 (relative), every layout, the kernel running', () => {
    const checked: string[] = [];
    for (const c of ALL) {
      const d = caseData(c, 11, c.plan.mode === 'rms' ? 1 : 1e3, 1e-2);
      const runs = {...tensorflowRuns};
      const y = c.run(d.x, d.gamma, d.beta);
      const grads = caseGrads(c, d);
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
      disposeCaseData(d);
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
    const c = ALL.find((k) => k.name.startsWith('layerNorm [3,5,48]')) as OpCase;
    const d = caseData(c, 12, 1e6, 0.1);
    const grads = caseGrads(c, d);
    const refs = refGradList(c, d);
    grads.forEach((g, i) => expect(maxAbsDiff(g.dataSync(), refs[i]) / scaleOf(refs[i])).toBeLessThanOrEqual(1e-4));
    tf.dispose(grads);
    disposeCaseData(d);
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
    const runs = {...tensorflowRuns};
    const {first, last, leaked} = groupNormTrainingLoop();
    expect(leaked).toBe(0);
    expect(tensorflowRuns.backward - runs.backward).toBe(20);
    expect(last).toBeLessThan(first * 0.95);
  });
}
