/**
 * The fused kernels (src/kernels) against the tf-op path of core.ts, on
 * every backend this package registers a kernel for that runs in Node
 * (cpu, wasm; NODE_BACKENDS): forward values, the statistics they hand to the backward,
 * gradients through the fused forward, the float64 reference, the
 * fallback rules, and tensor leaks.
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';

import {ops} from '../src';
import {
  canFuse, FUSED_BACKENDS, FUSED_FLAG, FUSED_NORM_GRAD_KERNEL, FUSED_NORM_KERNEL, fusedNorm, SIMD_FLAG,
} from '../src/kernels/index';
import {plainOut} from '../src/kernels/host';
import {layoutOf} from '../src/kernels/layout';
import {simdAvailable} from '../src/kernels/simd/engine';
import {simdPlanOf} from '../src/kernels/simd/forward';
import {installKernelTrace} from '../src/kernels/trace';
import {NormMode, NormPlan, normalize} from '../src/ops/core';
import {groupNormPlan} from '../src/ops/group_norm';
import {
  axesCase, caseData, caseGrads, disposeCaseData, forwardAndGrads, groupCase, groupNormTrainingLoop, instanceCase, kernelsRun, OpCase, refGradList, scaleOf,
} from './cases';
import {expectClose, expectNoLeakSync, maxAbsDiff, withFlags} from './helpers';
import {normals, refForward, rng} from './reference';

/** Which SIMD loops ran (test-only counters, installed here). */
const simdTrace = installKernelTrace().simd;

/** An op case of the matrix (test/cases.ts) and the loop of src/kernels/layout.ts its plan takes. */
type KernelCase = OpCase&{kind: 'row'|'column'};
const row = (c: OpCase): KernelCase => ({...c, kind: 'row'});
const column = (c: OpCase): KernelCase => ({...c, kind: 'column'});

function cases(): KernelCase[] {
  const noAffine = {affine: false};
  return [
    column(groupCase([2, 6, 5, 64], 32, -1)),  // channels-last, 2 channels a group
    column(groupCase([2, 5, 7, 32], 8, -1, noAffine)),
    row(groupCase([2, 8, 6, 5], 4, 1)),  // channels-first: rows of Cg*H*W
    column(groupCase([2, 4, 2, 3], 2, 1)),  // channels-first, short rows
    column(groupCase([2, 3, 6, 2], 3, 2)),  // channel axis in the middle
    column(groupCase([2, 2, 2, 2, 6], 3, -1)),  // rank 5
    row(groupCase([4, 24], 1, -1)),  // rank 2, one group
    column(groupCase([3, 4, 4, 16], 16, -1, {}, 'stdEps')),  // keras-contrib instance norm math
    row(groupCase([3, 16, 20], 16, 1, {}, 'stdEps')),
    row(groupCase([3, 32], 2, -1)),  // rows of 16 whose gamma slice starts at 0 and 16
    row(groupCase([2, 6, 3, 7], 2, 1, noAffine)),  // channels-first, runs of 21
    row(groupCase([2, 8, 5, 4], 4, 1, {}, 'rms')),  // channels-first runs, rms
    column(instanceCase([2, 7, 5, 24], -1)),
    row(axesCase([3, 5, 48], [-1], 'center')),  // transformer-like
    column(axesCase([4, 7], [-1], 'center')),  // short rows
    column(axesCase([2, 3, 4, 5], [1, 3], 'center')),  // non-adjacent axes
    row(axesCase([2, 3, 4, 5], [1, 2, 3], 'center', noAffine)),
    column(axesCase([6, 5, 9], [1], 'center')),  // a kept axis after the reduced one
    column(axesCase([24, 5], [0], 'center')),  // statistics over the batch axis
    column(axesCase([2, 3, 2, 5, 3], [0, 2, 4], 'center')),  // a set in several stretches of rows
    row(axesCase([3, 5, 40], [-1], 'rms')),
    column(axesCase([3, 5, 6], [-1], 'rms', noAffine)),
    column(axesCase([3, 40, 2], [1], 'rms')),
    row(axesCase([3, 5, 40], [-1], 'rmsScaling')),
    row(axesCase([3, 6, 4], [1, 2], 'rmsScaling')),
    row(axesCase([6, 3, 20], [0, 2], 'center')),  // a set spans several rows
    row(axesCase([2, 5, 37], [-1], 'rmsScaling')),  // odd row length: vector loops and tails
    row(axesCase([4, 5, 19], [-1], 'center', noAffine)),
    // Column loops' tails: blocks of 16 rows with a short last one (35 and
    // 51 rows), groups of 8 columns then 6 or 4 more (30 = 16 + 8 + 4 + 2
    // for applyCols; 12 + 12 + 4 + 2 for applyGradCols; 44 = 3 x 12 + 8),
    // groups of channels straddling the groups of 8.
    column(groupCase([2, 7, 5, 30], 5, -1)),
    column(groupCase([1, 17, 3, 44], 11, -1, {}, 'stdEps')),
  ];
}

const ALL = cases();

/** fn with the fused kernels on or off. */
const withFlag = <T>(on: boolean, fn: () => T): T => withFlags({[FUSED_FLAG]: on}, fn);

/** The backends with fused kernels that run in Node here. */
const NODE_BACKENDS = ['cpu', 'wasm'] as const;
/** Where each keeps its arrays for the SIMD loops (simdTrace's keys). */
const PLACEMENT = {cpu: 'copy', wasm: 'view'} as const;

test('kernels are registered for cpu and wasm, forward and backward', () => {
  expect([...FUSED_BACKENDS]).toEqual(['cpu', 'wasm', 'webgl', 'webgpu', 'tensorflow']);
  for (const b of NODE_BACKENDS) {
    expect(tf.getKernel(FUSED_NORM_KERNEL, b)).toBeDefined();
    expect(tf.getKernel(FUSED_NORM_GRAD_KERNEL, b)).toBeDefined();
  }
  // webgl: a forward kernel only; webgpu: forward and backward (src/kernels/webgl.ts, webgpu.ts,
  // webgpu_grad.ts; tested in test/browser).
  expect(tf.getKernel(FUSED_NORM_KERNEL, 'webgl')).toBeDefined();
  expect(tf.getKernel(FUSED_NORM_GRAD_KERNEL, 'webgl')).toBeUndefined();
  expect(tf.getKernel(FUSED_NORM_KERNEL, 'webgpu')).toBeDefined();
  expect(tf.getKernel(FUSED_NORM_GRAD_KERNEL, 'webgpu')).toBeDefined();
});

test('every case takes the loop it is meant to exercise', () => {
  const kinds = new Set(ALL.map((c) => c.kind));
  expect(kinds).toEqual(new Set(['row', 'column']));
  for (const c of ALL) expect(`${c.name}: ${layoutOf(c.plan).kind}`).toBe(`${c.name}: ${c.kind}`);
});

test('WebAssembly SIMD is available in this Node, and covers every case', () => {
  // Otherwise the 'SIMD' runs below would silently test the JS loops twice.
  expect(simdAvailable()).toBe(true);
  for (const c of ALL) expect(`${c.name}: ${simdPlanOf(layoutOf(c.plan)) != null}`).toBe(`${c.name}: true`);
});

test('the column cases cover both SIMD forward orders: y per stretch, and y after every statistic', () => {
  // stretchSets non-null: each stretch's sets are complete after its own
  // statistics, so y is written stretch by stretch (simd/forward.ts); null:
  // a set spans several stretches, so y waits for all of them.
  const orders = ALL.filter((c) => c.kind === 'column').map((c) => {
    const sp = simdPlanOf(layoutOf(c.plan));
    return `${c.name}: ${sp?.stretchSets == null ? 'after all' : 'per stretch'}`;
  });
  expect(orders.filter((o) => o.endsWith('per stretch')).length).toBeGreaterThan(3);
  expect(orders).toContain(`${groupCase([2, 6, 5, 64], 32, -1).name}: per stretch`);
  expect(orders).toContain(`${axesCase([2, 3, 2, 5, 3], [0, 2, 4], 'center').name}: after all`);
});

// Every backend with both forward loops: the WebAssembly SIMD module
// (src/kernels/simd, the default) and the JS loops (compute.ts).
describe.each(NODE_BACKENDS.flatMap((b) => [[b, 'SIMD'], [b, 'JS']] as const))('%s backend, %s loops', (backend, loops) => {
  const simd = loops === 'SIMD';
  let prevSimd = true;
  beforeAll(async () => {
    const ok = await tf.setBackend(backend);
    expect(ok).toBe(true);
    expect(tf.getBackend()).toBe(backend);
    prevSimd = tf.env().getBool(SIMD_FLAG);
    tf.env().set(SIMD_FLAG, simd);
  });
  afterAll(async () => {
    tf.env().set(SIMD_FLAG, prevSimd);
    await tf.setBackend('cpu');
  });

  test.each(ALL.map((c) => [c.name, c]))('%s: fused forward and gradients match the tf-op path', async (_, c) => {
    const d = caseData(c, 7);
    // The fused kernel runs with the flag on, and only then; on the SIMD
    // loops exactly when they are enabled.
    const at = PLACEMENT[backend];
    const runs0 = simdTrace.forward[at];
    const on = await kernelsRun(() => c.run(d.x, d.gamma, d.beta));
    expect(simdTrace.forward[at] > runs0).toBe(simd);
    // On wasm without the SIMD loops, RMS norm over whole rows keeps the
    // tf-op forward (measured faster there; src/kernels/wasm.ts), and only that.
    const forwardFused = simd || !(backend === 'wasm' && c.plan.mode === 'rms' && c.kind === 'row');
    if (forwardFused) {
      expect(on).toContain(FUSED_NORM_KERNEL);
    } else {
      expect(on).not.toContain(FUSED_NORM_KERNEL);
    }
    const off = await withFlag(false, () => kernelsRun(() => c.run(d.x, d.gamma, d.beta)));
    expect(off).not.toContain(FUSED_NORM_KERNEL);
    // Likewise the fused backward, on the SIMD loops exactly when they are
    // enabled (row and column layouts).
    const gradRuns0 = simdTrace.backward[at];
    expect(await kernelsRun(() => caseGrads(c, d))).toContain(FUSED_NORM_GRAD_KERNEL);
    expect(simdTrace.backward[at] > gradRuns0).toBe(simd);
    expect(await withFlag(false, () => kernelsRun(() => caseGrads(c, d)))).not.toContain(FUSED_NORM_GRAD_KERNEL);

    const fused = forwardAndGrads(c, d);
    const plain = withFlag(false, () => forwardAndGrads(c, d));
    const ref = refForward(c.spec, d.x.dataSync(), d.gamma?.dataSync(), d.beta?.dataSync());
    const s = scaleOf(ref);
    expectClose(fused.y, ref, 2e-6 * s, `${c.name} fused vs float64 reference`);
    expectClose(fused.y, plain.y, 1e-5 * s, `${c.name} fused vs tf-op forward`);
    expect(fused.grads.length).toBe(plain.grads.length);
    fused.grads.forEach((g, i) => {
      expectClose(g, plain.grads[i], 5e-5 * scaleOf(plain.grads[i]), `${c.name} gradient ${i}`);
    });
    const refs = refGradList(c, d);
    fused.grads.forEach((g, i) => {
      expectClose(g, refs[i], 5e-5 * scaleOf(refs[i]), `${c.name} gradient ${i} vs float64 reference`);
    });
    disposeCaseData(d);
  });

  test('statistics handed to the backward: m1 + m2 is the float64 mean, inv the float64 rsqrt', () => {
    const shape = [3, 4, 8];
    const plan = groupNormPlan('t', shape, 2, -1, 1e-3);
    const xs = normals(rng(3), 96, 100, 0.1);
    const x = tf.tensor(xs, shape);
    const out = expectNoLeakSync(() => fusedNorm(x, plan), 'fusedNorm');
    expect(out).not.toBeNull();
    const {y, stats} = out as {y: tf.Tensor, stats: tf.Tensor[]};
    expect(y.shape).toEqual(shape);
    expect(stats.map((t) => t.shape)).toEqual([[3, 1, 2, 1], [3, 1, 2, 1], [3, 1, 2, 1]]);
    const [m1, m2, inv] = stats.map((t) => t.dataSync());
    for (let s = 0; s < 6; s++) {
      const n = s >> 1;
      const grp = s & 1;
      const vals: number[] = [];
      for (let p = 0; p < 4; p++) for (let k = 0; k < 4; k++) vals.push(xs[n * 32 + p * 8 + grp * 4 + k]);
      const mean = vals.reduce((a, b) => a + b, 0) / 16;
      const v = vals.reduce((a, b) => a + (b - mean) ** 2, 0) / 16;
      expect(Math.abs(m1[s] + m2[s] - mean)).toBeLessThan(1e-12 * mean);
      expect(Math.abs(inv[s] - 1 / Math.sqrt(v + 1e-3))).toBeLessThan(1e-6 * inv[s]);
    }
    tf.dispose([x, y, ...stats]);
  });

  test('a forward no gradient reads returns y alone; under a tape, y and the statistics; y the same', async () => {
    const outputsOf = async (fn: () => tf.Tensor|tf.Tensor[]) => {
      const info = await tf.profile(fn);
      tf.dispose(info.result as tf.Tensor|tf.Tensor[]);
      return info.kernels.filter((k) => k.name === FUSED_NORM_KERNEL).map((k) => k.outputShapes.length);
    };
    for (const c of [ALL[0], ALL[7], ALL[13]]) {  // GN channels-last, stdEps (4 statistics), LN rows
      const d = caseData(c, 11);
      const nStats = c.plan.mode === 'stdEps' ? 4 : c.plan.mode === 'rms' ? 1 : 3;
      expect(`${c.name}: ${await outputsOf(() => c.run(d.x, d.gamma, d.beta))}`).toBe(`${c.name}: 1`);
      expect(`${c.name}: ${await outputsOf(() => caseGrads(c, d))}`).toBe(`${c.name}: ${1 + nStats}`);
      // fusedNorm without statistics: y alone, no tensor left behind, the same y.
      const bare = expectNoLeakSync(() => fusedNorm(d.x, c.plan, d.gamma, d.beta, false), 'fusedNorm without statistics');
      const full = fusedNorm(d.x, c.plan, d.gamma, d.beta) as {y: tf.Tensor, stats: tf.Tensor[]};
      expect(bare?.stats).toEqual([]);
      expect(full.stats.length).toBe(nStats);
      expect(maxAbsDiff((bare as {y: tf.Tensor}).y.dataSync(), full.y.dataSync())).toBe(0);
      tf.dispose([bare?.y, full.y, ...full.stats, d.x, d.gamma, d.beta, d.dy].filter((t): t is tf.Tensor => t != null));
    }
  });

  test('mean 1e3, std 1e-2: within 2e-4 of the float64 answer (row and column loops)', () => {
    const check = (c: KernelCase) => {
      const d = caseData(c, 11, 1e3, 1e-2);
      const y = c.run(d.x, d.gamma, d.beta);
      const ref = refForward(c.spec, d.x.dataSync(), d.gamma?.dataSync(), d.beta?.dataSync());
      const err = maxAbsDiff(y.dataSync(), ref);
      expect(`${c.name}: ${err <= 2e-4}`).toBe(`${c.name}: true`);
      y.dispose();
      disposeCaseData(d);
    };
    check(ALL.find((c) => c.kind === 'row' && c.plan.mode === 'center') as KernelCase);
    check(ALL.find((c) => c.kind === 'column' && c.plan.mode === 'center') as KernelCase);
  });

  test('mean 1e3, std 1e-2: gradients within 1e-4 (relative) of float64, every loop of the backward', () => {
    const checked: string[] = [];
    for (const c of ALL) {
      if (!['groupNorm', 'layerNorm', 'center', 'rms ', 'stdEps'].some((p) => c.name.startsWith(p))) continue;
      const d = caseData(c, 17, c.plan.mode === 'rms' ? 1 : 1e3, 1e-2);
      const fused = expectNoLeakSync(() => caseGrads(c, d), 'gradients');
      const refs = refGradList(c, d);
      fused.forEach((g, i) => {
        const rel = maxAbsDiff(g.dataSync(), refs[i]) / scaleOf(refs[i]);
        expect(`${c.name} gradient ${i}: ${rel <= 1e-4}`).toBe(`${c.name} gradient ${i}: true`);
      });
      checked.push(c.kind);
      tf.dispose(fused);
      disposeCaseData(d);
    }
    expect(new Set(checked)).toEqual(new Set(['row', 'column']));
  });

  test('a constant set with epsilon 0 gives exactly beta', () => {
    const x = tf.fill([2, 3, 8], 5.25);
    const beta = tf.tensor(normals(rng(5), 8));
    const gamma = tf.ones([8]);
    const ys = [
      ops.groupNorm(x, {groups: 4, epsilon: 0, gamma, beta}),
      ops.layerNorm(x, {epsilon: 0, gamma, beta}),
    ];
    const b = beta.dataSync();
    for (const y of ys) {
      const v = y.dataSync();
      for (let i = 0; i < v.length; i++) expect(v[i]).toBe(b[i % 8]);
    }
    const r = ops.rmsNorm(tf.zeros([2, 8]), {epsilon: 0});
    expect(Array.from(r.dataSync())).toEqual(new Array(16).fill(0));
    tf.dispose([x, beta, gamma, r, ...ys]);
  });

  test('falls back to the tf-op path for what the kernel does not know', async () => {
    const x = tf.tensor(normals(rng(9), 48), [2, 3, 8]);
    const plan = groupNormPlan('t', [2, 3, 8], 2, -1, 1e-3);
    expect(canFuse(plan, [x])).toBe(true);
    // An unknown mode.
    expect(canFuse({...plan, mode: 'other' as NormMode}, [x])).toBe(false);
    // A planner's extras (groupNormPlan's channels and groups, anything else a plan
    // carries) never reach a kernel: its attributes are the plan's own fields.
    const runKernel = jest.spyOn(tf.engine(), 'runKernel');
    try {
      tf.dispose(normalize(x, {...plan, mask: x} as NormPlan));
      const attrs = runKernel.mock.calls.find((call) => call[0] === FUSED_NORM_KERNEL)?.[2] as tf.NamedAttrMap;
      expect(Object.keys(attrs).sort())
          .toEqual(['epsilon', 'hasBeta', 'hasGamma', 'mode', 'paramViewShape', 'reduceAxes', 'viewShape', 'withStats']);
    } finally {
      runKernel.mockRestore();
    }
    // The flag.
    expect(withFlag(false, () => canFuse(plan, [x]))).toBe(false);
    // A non-float32 tensor.
    const xi = tf.cast(x, 'int32');
    expect(canFuse(plan, [xi])).toBe(false);
    tf.dispose([x, xi]);
  });

  test('the saved x outlives the caller\'s tensor; a pruned forward leaks nothing; Identity is put back', () => {
    // The saved clones share x's data on wasm (src/kernels/wasm.ts): x
    // disposed inside the taped function, and a tensor of its size made
    // after (which would take x's freed memory), must not reach the backward.
    const identity = tf.getKernel('Identity', backend);
    const numData = () => tf.engine().backend.numDataIds();
    for (const c of [ALL[0], ALL[13]]) {  // GN channels-last (column loops), LN (row loops)
      const d = caseData(c, 5);
      const args = [d.x, d.gamma, d.beta].filter((t): t is tf.Tensor => t != null);
      const dataBefore = numData();
      const direct = caseGrads(c, d);
      const viaTemp = expectNoLeakSync(() => tf.grads((...a: tf.Tensor[]) => {
        const t = tf.mul(a[0], 1);
        const y = c.run(t, a[1], c.beta ? a[2] : undefined);
        t.dispose();
        const junk = tf.fill(c.shape, 7);
        return tf.add(tf.sum(tf.mul(y, d.dy)), tf.mul(tf.sum(junk), 0));
      })(args), `${c.name}: grads through a disposed input`);
      direct.forEach((g, i) => expect(`${c.name} #${i}: ${maxAbsDiff(g.dataSync(), viaTemp[i].dataSync())}`).toBe(`${c.name} #${i}: 0`));
      tf.dispose([...direct, ...viaTemp]);
      // A forward the gradient does not reach: its saved tensors are the engine's to dispose.
      const pruned = expectNoLeakSync(() => tf.grad((x: tf.Tensor) => {
        c.run(x, d.gamma, d.beta);
        return tf.sum(tf.mul(x, d.dy));
      })(d.x), `${c.name}: pruned forward`);
      tf.dispose(pruned);
      expect(numData()).toBe(dataBefore);
      disposeCaseData(d);
    }
    expect(tf.getKernel('Identity', backend)).toBe(identity);
  });

  test('sets of equal values far from 0 keep beta (column loops: y = (x - mean) * k + beta, not x * k + (beta - mean * k))', () => {
    // Variance 0, so y is beta exactly (refForward), while x * k is about
    // 3e21: written as x * k + (beta - mean * k), beta cancels away to 0.
    const v = 1e20;
    const C = 13;
    const beta = tf.tensor1d(Array.from({length: C}, (_, j) => 0.5 + j));
    const gamma = tf.tensor1d(Array.from({length: C}, (_, j) => 1 + j / 8));
    const cases: Array<[string, number[], number, (x: tf.Tensor) => tf.Tensor]> = [
      ['groupNorm, a set per element', [2, 1, C], -1, (x) => ops.groupNorm(x, {groups: C, gamma, beta})],
      ['groupNorm, 17 rows', [3, 17, C], -1, (x) => ops.groupNorm(x, {groups: C, gamma, beta})],
      ['instanceNorm', [2, 33, C], -1, (x) => ops.instanceNorm(x, {gamma, beta})],
      ['batchNorm', [3, 7, C], -1, (x) => ops.batchNorm(x, {gamma, beta})],
      ['batchNorm channels-first', [3, C, 5], 1, (x) => ops.batchNorm(x, {axis: 1, gamma, beta})],
    ];
    for (const [name, shape, axis, run] of cases) {
      const a = axis < 0 ? shape.length + axis : axis;
      const n = shape.reduce((p, d) => p * d, 1);
      const xv = new Float32Array(n);
      const stride = shape.slice(a + 1).reduce((p, d) => p * d, 1);
      for (let i = 0; i < n; i++) xv[i] = (Math.floor(i / stride) % C % 2 ? -v : v) * (1 + Math.floor(i / stride) % C);
      const x = tf.tensor(xv, shape);
      const ran = expectNoLeakSync(() => run(x), name);
      const want = new Float32Array(n);
      const b = beta.dataSync();
      for (let i = 0; i < n; i++) want[i] = b[Math.floor(i / stride) % C];
      expect(`${name}: ${maxAbsDiff(ran.dataSync(), want)}`).toBe(`${name}: 0`);
      // (Not against the tf-op path: its float32 mean of equal values is not exact, so it is off by a few.)
      tf.dispose([x, ran]);
    }
    tf.dispose([beta, gamma]);
  });

  test('a training loop through the fused forward leaks nothing and learns', () => {
    const {first, last, leaked} = groupNormTrainingLoop();
    expect(leaked).toBe(0);
    expect(last).toBeLessThan(first * 0.95);
  });
});

describe('cpu outputs that skip zeroing (src/kernels/host.ts plainOut)', () => {
  test('whole outputs of 16384+ elements are their own unzeroed memory; the others are zeroed', () => {
    const big = plainOut([4, 4096], true).values;
    expect(big.length).toBe(16384);
    expect(big.byteOffset).toBe(0);
    expect(big.buffer.byteLength).toBe(4 * 16384);
    // Not whole (statistics, dgamma, dbeta), or small: zero-filled as before.
    for (const [shape, whole] of [[[4, 4096], false], [[4095, 4], true]] as const) {
      const v = plainOut([...shape], whole).values;
      expect(v.length).toBe(shape[0] * shape[1]);
      expect(v.every((e) => e === 0)).toBe(true);
    }
  });

  test.each([['SIMD', true], ['JS', false]] as const)('%s loops: every element of large y and dx is written', async (_, simd) => {
    await tf.setBackend('cpu');
    const shape = [2, 16, 16, 64];  // 32768 elements: unzeroed y and dx
    const n = 2 * 16 * 16 * 64;
    // Freed memory full of NaN, for the allocator to hand back to the outputs.
    for (let i = 0; i < 8; i++) new Float32Array(Buffer.allocUnsafeSlow(4 * n).buffer).fill(NaN);
    const x = tf.tensor(normals(rng(11), n, 0.5, 2), shape);
    const dy = tf.tensor(normals(rng(12), n, 0, 1), shape);
    const gamma = tf.tensor(normals(rng(13), 64, 1, 0.1), [64]);
    const beta = tf.tensor(normals(rng(14), 64, 0, 0.1), [64]);
    const run = () => {
      const f = (a: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => ops.groupNorm(a, {groups: 8, epsilon: 1e-3, gamma: g, beta: b});
      const y = f(x, gamma, beta);
      const grads = tf.grads((a: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => f(a, g, b))([x, gamma, beta], dy);
      return [y, ...grads];
    };
    const fused = withFlags({[SIMD_FLAG]: simd}, () => expectNoLeakSync(run, 'large cpu forward and backward'));
    const plain = withFlag(false, run);
    fused.forEach((t, i) => {
      const v = t.dataSync();
      expect(`#${i} finite: ${v.every(Number.isFinite)}`).toBe(`#${i} finite: true`);
      const want = plain[i].dataSync();
      expectClose(v, want, 5e-5 * scaleOf(want), `large cpu output #${i} vs tf-op path`);
    });
    tf.dispose([x, dy, gamma, beta, ...fused, ...plain]);
  });
});
