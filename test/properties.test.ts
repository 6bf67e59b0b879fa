/**
 * Property-based tests (fast-check). Random ranks 1-6, shapes, axes
 * (negative, unsorted), group counts that divide the channels, epsilons,
 * center/scale, and data that is normal, offset by 1e4, scaled by 1e-3, or
 * an exact constant. Checked against the float64 reference of
 * test/reference.ts.
 *
 * Tolerances (stated once, used below):
 * - forward, op and layer vs float64: |y - ref| <= 2e-4 * max(1, max|ref|);
 * - gradients vs central finite differences of the float64 reference:
 *   |g - fd| <= 2e-3 * max(1, max|fd|) (finite differences have their own
 *   error of about 1e-6 relative);
 * - invariants (GN with 1 group = LN; GN with C groups = IN; shift and
 *   positive scale per group, epsilon 0): 2e-4 absolute (the shifted and
 *   scaled input is rounded to float32 again).
 *
 * The seed is fixed (PROPERTY_SEED overrides it); fast-check prints the seed
 * and the path of any counterexample.
 */
import * as tf from '@tensorflow/tfjs';
import fc from 'fast-check';

import {GroupNormalization, InstanceNormalization, LayerNormalization, ops, RMSNormalization} from '../src';
import {FUSED_FLAG, SIMD_FLAG} from '../src/kernels/index';
import {NormPlan, normalizeMasked} from '../src/ops/core';
import {axesCase, groupCase, instanceCase, OpCase} from './cases';
import {maxAbsDiff, useTestBackend, withFlags} from './helpers';
import {axesSpec, normals, refForward, refGrads64, refGradsFD, RefSpec, rng} from './reference';

const SEED = Number(process.env.PROPERTY_SEED ?? 20261130);
/**
 * PROPERTY_RUN_SCALE scales every property's run count (default 1; the
 * tensorflow lane of scripts/tfjs-node-test.sh runs a quarter, since each
 * op there is a round trip through the native addon).
 */
const RUN_SCALE = Number(process.env.PROPERTY_RUN_SCALE ?? 1);
const runs = (n: number): number => Math.max(10, Math.round(n * RUN_SCALE));

beforeAll(async () => {
  await useTestBackend();
});

type DataKind = 'normal'|'offset1e4'|'scale1e-3'|'constant';
type Kind = 'group'|'instance'|'layer'|'rms'|'rmsScaling';

interface Sample {
  kind: Kind;
  shape: number[];
  /** group/instance: the channel axis as given (maybe negative). */
  axis: number;
  /** layer/rms: the axes as given (unsorted, maybe negative). */
  axes: number[];
  groups: number;
  epsilon: number;
  center: boolean;
  scale: boolean;
  data: DataKind;
  seed: number;
}

const DIVISORS: Record<number, number[]> = {1: [1], 2: [1, 2], 3: [1, 3], 4: [1, 2, 4], 6: [1, 2, 3, 6]};

/** A random sample: shapes kept small (<= ~200 elements) so finite differences stay cheap. */
const sampleArb: fc.Arbitrary<Sample> = fc.record({
  kind: fc.constantFrom<Kind>('group', 'instance', 'layer', 'rms', 'rmsScaling'),
  rank: fc.integer({min: 1, max: 6}),
  dims: fc.array(fc.integer({min: 1, max: 4}), {minLength: 6, maxLength: 6}),
  channels: fc.constantFrom(1, 2, 3, 4, 6),
  axisPick: fc.nat(),
  groupPick: fc.nat(),
  axesMask: fc.array(fc.boolean(), {minLength: 6, maxLength: 6}),
  negate: fc.array(fc.boolean(), {minLength: 6, maxLength: 6}),
  shuffle: fc.nat(),
  epsilon: fc.constantFrom(0, 1e-5, 1e-3, 0.1),
  center: fc.boolean(),
  scale: fc.boolean(),
  data: fc.constantFrom<DataKind>('normal', 'normal', 'offset1e4', 'scale1e-3', 'constant'),
  seed: fc.nat(),
}).map((r) => {
  const channelKind = r.kind === 'group' || r.kind === 'instance';
  const rank = channelKind ? Math.max(2, r.rank) : r.rank;
  const shape = r.dims.slice(0, rank);
  // Keep the size small.
  while (shape.reduce((a, b) => a * b, 1) > 200) shape[shape.indexOf(Math.max(...shape))]--;
  let axis = -1;
  let groups = 1;
  if (channelKind) {
    const a = 1 + (r.axisPick % (rank - 1));
    shape[a] = r.channels;
    const divisors = DIVISORS[r.channels];
    groups = r.kind === 'instance' ? r.channels : divisors[r.groupPick % divisors.length];
    axis = r.negate[0] ? a - rank : a;
  }
  let axes = shape.map((_, i) => i).filter((i) => r.axesMask[i]);
  if (axes.length === 0) axes = [rank - 1];
  axes = axes.map((a, i) => (r.negate[i] ? a - rank : a));
  if (r.shuffle % 2 === 1) axes.reverse();
  // epsilon 0 only with spread data (constant data with epsilon 0 is tested on its own).
  const epsilon = r.data === 'constant' && r.epsilon === 0 ? 1e-3 : r.epsilon;
  return {
    kind: r.kind, shape, axis, axes, groups, epsilon, center: r.center && !['rms', 'rmsScaling'].includes(r.kind),
    scale: r.scale, data: r.data, seed: r.seed,
  };
});

function dataFor(s: Sample, n: number): Float32Array {
  const rand = rng(s.seed);
  switch (s.data) {
    case 'normal': return normals(rand, n, 0.2, 1.5);
    case 'offset1e4': return normals(rand, n, 1e4, 1);
    case 'scale1e-3': return normals(rand, n, 0, 1e-3);
    case 'constant': return new Float32Array(n).fill(Math.fround(0.1 + rand()));
  }
}

/** The sample's op case of the matrix (test/cases.ts). */
function caseFor(s: Sample): OpCase {
  const opts = {epsilon: s.epsilon};
  switch (s.kind) {
    case 'group': return groupCase(s.shape, s.groups, s.axis, opts);
    case 'instance': return instanceCase(s.shape, s.axis, opts);
    case 'layer': return axesCase(s.shape, s.axes, 'center', opts);
    case 'rms': return axesCase(s.shape, s.axes, 'rms', opts);
    case 'rmsScaling': return axesCase(s.shape, s.axes, 'rmsScaling', opts);
  }
}

function specFor(s: Sample): {spec: RefSpec, paramShape: number[]} {
  const c = caseFor(s);
  return {spec: c.spec, paramShape: c.paramShape as number[]};
}

function runOp(s: Sample, x: tf.Tensor, gamma?: tf.Tensor, beta?: tf.Tensor): tf.Tensor {
  return caseFor(s).run(x, gamma, beta);
}

function layerFor(s: Sample): tf.layers.Layer {
  const affine = {epsilon: s.epsilon, center: s.center, scale: s.scale};
  switch (s.kind) {
    case 'group': return new GroupNormalization({groups: s.groups, axis: s.axis, ...affine});
    case 'instance': return new InstanceNormalization({axis: s.axis, ...affine});
    case 'layer': return new LayerNormalization({axis: s.axes, ...affine});
    case 'rms': return s.scale ? new RMSNormalization({axis: s.axes, epsilon: s.epsilon}) : new LayerNormalization({axis: s.axes, rms: true, ...affine});
    case 'rmsScaling': return new LayerNormalization({axis: s.axes, rmsScaling: true, epsilon: s.epsilon});
  }
}

/** Throws with the sample when err > tol (fast-check then shrinks and prints the seed). */
function check(what: string, err: number, tol: number): void {
  if (!(err <= tol)) throw new Error(`${what}: error ${err} > ${tol}`);
}

test('op and layer match the float64 reference', () => {
  fc.assert(fc.property(sampleArb, (s) => {
    const n = s.shape.reduce((a, b) => a * b, 1);
    const {spec, paramShape} = specFor(s);
    const pn = paramShape.reduce((a, b) => a * b, 1);
    const rand = rng(s.seed + 1);
    const xs = dataFor(s, n);
    const gs = s.scale ? normals(rand, pn, 1, 0.5) : null;
    const bs = s.center ? normals(rand, pn, 0, 1) : null;
    tf.tidy(() => {
      const x = tf.tensor(xs, s.shape);
      const y = runOp(s, x, gs ? tf.tensor(gs, paramShape) : undefined, bs ? tf.tensor(bs, paramShape) : undefined);
      const ref = refForward(spec, xs, gs, bs);
      const scale = Math.max(1, ...Array.from(ref, Math.abs));
      check('op forward', maxAbsDiff(y.dataSync(), ref), 2e-4 * scale);
      // The layer computes the same thing with its weights set to gamma/beta.
      const layer = layerFor(s);
      layer.apply(x);
      const weights = layer.weights.map((w) => {
        const name = w.originalName.split('/').pop();
        return tf.tensor((name === 'beta' ? bs : gs) ?? new Float32Array(w.shape.reduce((a: number, b) => a * (b as number), 1)).fill(1), w.shape as number[]);
      });
      layer.setWeights(weights);
      const ly = layer.apply(x) as tf.Tensor;
      const lref = refForward(spec, xs, layer.weights.some((w) => !w.originalName.endsWith('beta')) ? gs : null,
                              layer.weights.some((w) => w.originalName.endsWith('beta')) ? bs : null);
      check('layer forward', maxAbsDiff(ly.dataSync(), lref), 2e-4 * Math.max(1, ...Array.from(lref, Math.abs)));
      layer.dispose();
    });
  }), {seed: SEED, numRuns: runs(400)});
});

test('gradients for x, gamma and beta match finite differences of the float64 reference', () => {
  fc.assert(fc.property(sampleArb.filter((s) => s.data !== 'constant' && s.epsilon > 0), (s) => {
    const n = s.shape.reduce((a, b) => a * b, 1);
    const {spec, paramShape} = specFor(s);
    const pn = paramShape.reduce((a, b) => a * b, 1);
    const rand = rng(s.seed + 2);
    const xs = dataFor(s, n);
    const dys = normals(rand, n);
    const gs = s.scale ? normals(rand, pn, 1, 0.5) : null;
    const bs = s.center ? normals(rand, pn, 0, 1) : null;
    tf.tidy(() => {
      const x = tf.tensor(xs, s.shape);
      const dy = tf.tensor(dys, s.shape);
      const gamma = gs ? tf.tensor(gs, paramShape) : undefined;
      const beta = bs ? tf.tensor(bs, paramShape) : undefined;
      const args = [x, ...(gamma ? [gamma] : []), ...(beta ? [beta] : [])];
      const grads = tf.grads((...a: tf.Tensor[]) =>
        tf.sum(tf.mul(runOp(s, a[0], gamma ? a[1] : undefined, beta ? a[gamma ? 2 : 1] : undefined), dy)))(args);
      const fd = refGradsFD(spec, xs, dys, gs, bs);
      const rel = (ref: ArrayLike<number>) => 2e-3 * Math.max(1, ...Array.from(ref, Math.abs));
      check('dx', maxAbsDiff(grads[0].dataSync(), fd.dx), rel(fd.dx));
      if (gamma) check('dgamma', maxAbsDiff(grads[1].dataSync(), fd.dgamma as Float64Array), rel(fd.dgamma as Float64Array));
      if (beta) check('dbeta', maxAbsDiff(grads[gamma ? 2 : 1].dataSync(), fd.dbeta as Float64Array), rel(fd.dbeta as Float64Array));
    });
  }), {seed: SEED, numRuns: runs(150)});
});

describe('invariants', () => {
  const channelArb = sampleArb.filter((s) => s.kind === 'group' && s.data !== 'constant');

  test('groupNorm with 1 group equals layerNorm over every non-batch axis', () => {
    fc.assert(fc.property(channelArb, (s) => {
      tf.tidy(() => {
        const x = tf.tensor(dataFor(s, s.shape.reduce((a, b) => a * b, 1)), s.shape);
        const gn = ops.groupNorm(x, {groups: 1, axis: s.axis, epsilon: s.epsilon});
        const ln = ops.layerNorm(x, {axis: s.shape.slice(1).map((_, i) => i + 1), epsilon: s.epsilon});
        check('GN(1) vs LN', maxAbsDiff(gn.dataSync(), ln.dataSync()), 2e-4);
      });
    }), {seed: SEED, numRuns: runs(200)});
  });

  test('groupNorm with C groups equals instanceNorm', () => {
    fc.assert(fc.property(channelArb, (s) => {
      tf.tidy(() => {
        const x = tf.tensor(dataFor(s, s.shape.reduce((a, b) => a * b, 1)), s.shape);
        const C = s.shape[s.axis < 0 ? s.axis + s.shape.length : s.axis];
        const gn = ops.groupNorm(x, {groups: C, axis: s.axis, epsilon: s.epsilon});
        const inorm = ops.instanceNorm(x, {axis: s.axis, epsilon: s.epsilon});
        check('GN(C) vs IN', maxAbsDiff(gn.dataSync(), inorm.dataSync()), 2e-4);
      });
    }), {seed: SEED, numRuns: runs(200)});
  });

  test('the output is invariant to a per-group shift and a positive per-group scale (epsilon 0, variance > 0)', () => {
    fc.assert(fc.property(channelArb.filter((s) => s.data === 'normal'), fc.double({min: 0.5, max: 4, noNaN: true}),
                          fc.double({min: -10, max: 10, noNaN: true}), (s, k, t) => {
      const {spec} = specFor(s);
      const n = s.shape.reduce((a, b) => a * b, 1);
      const xs = dataFor(s, n);
      // Per-group scale and shift, different for every (sample, group).
      const moved = Float32Array.from(xs, (v, i) => {
        const set = spec.setOf(i);
        return v * (k + (set % 3) * 0.25) + t * (1 + set);
      });
      // Sets of one element, or with zero variance, are excluded (the property needs variance > 0).
      const counts = new Map<number, number>();
      for (let i = 0; i < n; i++) counts.set(spec.setOf(i), (counts.get(spec.setOf(i)) ?? 0) + 1);
      fc.pre(Array.from(counts.values()).every((c) => c > 1));
      tf.tidy(() => {
        const a = ops.groupNorm(tf.tensor(xs, s.shape), {groups: s.groups, axis: s.axis, epsilon: 0});
        const b = ops.groupNorm(tf.tensor(moved, s.shape), {groups: s.groups, axis: s.axis, epsilon: 0});
        check('shift/scale invariance', maxAbsDiff(a.dataSync(), b.dataSync()), 2e-4);
      });
    }), {seed: SEED, numRuns: runs(200)});
  });
});

/**
 * Extreme magnitudes, epsilon 0 (issue 11, item 3): spreads of 1e-20, 1e-25
 * and a denormal 1e-39 (squares underflow float32), values up to the
 * float32 maximum (squares, sums and x - mean overflow it), 64 values of
 * about 1e37 (their float32 sum overflows). The forward of the SIMD
 * loops, the JS loops (TFJS_NORMALIZATION_SIMD false) and the tf-op path
 * (TFJS_NORMALIZATION_FUSED false) must each match the float64 reference
 * within the forward tolerance above (so they agree with each other within
 * twice it), on cpu and wasm; and dx too for x = [1, -1, 2, -2] * s (the
 * backward at every magnitude: 'extreme magnitudes: backward' below).
 */
describe('extreme magnitudes', () => {
  const PATH_FLAGS: Array<Record<string, boolean>> = [
    {[FUSED_FLAG]: true, [SIMD_FLAG]: true}, {[FUSED_FLAG]: true, [SIMD_FLAG]: false}, {[FUSED_FLAG]: false},
  ];
  const SCALES = [1e-20, 1e-25, 1e-39, 1e37, 1e38, 3.4e38];
  const magnitudeArb = fc.record({
    scale: fc.constantFrom(...SCALES),
    n: fc.constantFrom(4, 7, 64),
    mode: fc.constantFrom<'center'|'rms'|'rmsScaling'>('center', 'rms', 'rmsScaling'),
    seed: fc.nat(),
  });
  test.each([['cpu'], ['wasm']])('%s: the SIMD loops, the JS loops and the tf-op path match float64', async (backend) => {
    await import('@tensorflow/tfjs-backend-wasm');
    expect(await tf.setBackend(backend)).toBe(true);
    try {
      fc.assert(fc.property(magnitudeArb, ({scale, n, mode, seed}) => {
        const rand = rng(seed);
        // Uniform in [-1, 1] times the scale (so |x| <= 3.4e38), rounded to float32.
        const xs = Float32Array.from({length: n}, () => (2 * rand() - 1) * scale);
        const ref = refForward(axesSpec([1, n], [1], 0, mode), xs, null, null);
        const tol = 2e-4 * Math.max(1, ...Array.from(ref, Math.abs));
        for (const flags of PATH_FLAGS) {
          const prev = Object.keys(flags).map((k) => [k, tf.env().getBool(k)] as const);
          Object.entries(flags).forEach(([k, v]) => tf.env().set(k, v));
          try {
            const y = tf.tidy(() => {
              const x = tf.tensor2d(xs, [1, n]);
              return (mode === 'rms' ? ops.rmsNorm(x, {epsilon: 0}) :
                                       ops.layerNorm(x, {epsilon: 0, rmsScaling: mode === 'rmsScaling'})).dataSync();
            });
            const err = maxAbsDiff(y, ref);
            if (!(err <= tol)) {
              throw new Error(`${JSON.stringify(flags)} scale ${scale} n ${n} ${mode}: |y - ref| = ${err} > ${tol}; y[0..3] = ${Array.from(y.slice(0, 4))}`);
            }
          } finally {
            prev.forEach(([k, v]) => tf.env().set(k, v));
          }
        }
      }), {seed: SEED, numRuns: 60});
    } finally {
      await useTestBackend();
    }
  });

  test.each(['cpu', 'wasm'].flatMap((b) => PATH_FLAGS.map((f) => [b, JSON.stringify(f), f] as const)))(
      '%s %s: x = [1, -1, 2, -2] * s, epsilon 0: y = [0.632, -0.632, 1.265, -1.265], and dx', async (backend, _name, flags) => {
    await import('@tensorflow/tfjs-backend-wasm');
    expect(await tf.setBackend(backend)).toBe(true);
    Object.entries(flags).forEach(([k, v]) => tf.env().set(k, v));
    try {
      for (const s of [1e-20, 1e-25, 1e-39]) {
        const xs = Float32Array.from([1, -1, 2, -2], (v) => v * s);
        const dys = Float32Array.from([0.3, -1, 0.5, 0.7]);
        const x = tf.tensor2d(xs, [1, 4]);
        const dy = tf.tensor2d(dys, [1, 4]);
        const y = ops.layerNorm(x, {epsilon: 0});
        expect(maxAbsDiff(y.dataSync(), [0.6324555, -0.6324555, 1.2649111, -1.2649111])).toBeLessThan(1e-6);
        {
          const dx = tf.grad((a: tf.Tensor) => tf.sum(tf.mul(ops.layerNorm(a, {epsilon: 0}), dy)))(x);
          // The float64 analytic gradient, rounded to float32 (+-Inf where it exceeds float32).
          const ref = refGrads64(axesSpec([1, 4], [1], 0, 'center'), xs, dys).dx;
          const got = dx.dataSync();
          const bad = Array.from(ref).flatMap((r, i) => {
            const want = Math.fround(r);
            const ok = Number.isFinite(want) ? Math.abs(got[i] - r) <= 1e-4 * Math.abs(r) : got[i] === want;
            return ok ? [] : [[s, i, got[i], r]];
          });
          expect(bad).toEqual([]);
          dx.dispose();
        }
        tf.dispose([x, dy, y]);
      }
    } finally {
      tf.env().set(FUSED_FLAG, true);
      tf.env().set(SIMD_FLAG, true);
      await useTestBackend();
    }
  });
});

/**
 * Extreme magnitudes, backward (issue 11, item 3): dx, dgamma and dbeta of
 * every mode (center, rms, rmsScaling, stdEps), with and without
 * gamma/beta, with and without a mask (garbage in two padded positions),
 * epsilon 0 (and 1e-5), for rows of [1, -1, 2, -2] * s, the near-maximum
 * rows [3.4e38, 3.4e38, 3.4e38, -3.4e38] and [3e38, -3e38, 1e38, -1e38]
 * and uniform data times 1e-42 (denormal) to 3.4e38, one to three rows of
 * different magnitudes in one tensor; on the SIMD loops, the JS loops and
 * the tf-op path of cpu and wasm, untaped and under a recording tape (the
 * backward a second-order gradient differentiates). Each must equal the
 * float64 analytic gradient rounded to float32: within 1e-4 * max|ref| of
 * the row (dx) or 1e-4 * max(1, max|ref|) (dgamma, dbeta), and +-Inf
 * exactly where the float64 value exceeds float32 (a value within 1e-4 of
 * the float32 maximum may round either way). So the paths agree with each
 * other within twice that.
 */
describe('extreme magnitudes: backward', () => {
  type Mode = 'center'|'rms'|'rmsScaling'|'stdEps';
  type Pattern = 'pm'|'max1'|'max2'|'uniform';
  const PATH_FLAGS: Array<Record<string, boolean>> = [
    {[FUSED_FLAG]: true, [SIMD_FLAG]: true}, {[FUSED_FLAG]: true, [SIMD_FLAG]: false}, {[FUSED_FLAG]: false},
  ];
  const FLT_MAX = 3.4028234663852886e38;
  const GARBAGE = [NaN, Infinity, -Infinity, 3.4e38, 1e-39];
  const rowArb = fc.record({
    pattern: fc.constantFrom<Pattern>('pm', 'pm', 'max1', 'max2', 'uniform', 'uniform'),
    scale: fc.constantFrom(1e-20, 1e-25, 1e-39, 1e-42, 1, 1e37, 1e38, 3.4e38),
  });
  const caseArb = fc.record({
    rows: fc.array(rowArb, {minLength: 1, maxLength: 3}),
    n: fc.constantFrom(4, 7, 64),
    mode: fc.constantFrom<Mode>('center', 'rms', 'rmsScaling', 'stdEps'),
    epsilon: fc.constantFrom(0, 0, 0, 1e-5),
    affine: fc.boolean(),
    masked: fc.boolean(),
    taped: fc.boolean(),
    seed: fc.nat(),
  });

  function rowData(pattern: Pattern, scale: number, n: number, rand: () => number): Float32Array {
    // pm at 3.4e38 would hold 6.8e38 (Inf): 1e38 there.
    const base = pattern === 'pm' ? [1, -1, 2, -2].map((v) => v * Math.min(scale, 1e38)) : pattern === 'max1' ? [3.4e38, 3.4e38, 3.4e38, -3.4e38] :
      pattern === 'max2' ? [3e38, -3e38, 1e38, -1e38] : null;
    return Float32Array.from({length: n}, (_, j) => (base ? base[j % 4] : (2 * rand() - 1) * scale));
  }

  function run(mode: Mode, x: tf.Tensor, epsilon: number, gamma?: tf.Tensor, beta?: tf.Tensor, mask?: tf.Tensor): tf.Tensor {
    switch (mode) {
      case 'center': return ops.layerNorm(x, {epsilon, gamma, beta, mask});
      case 'rms': return ops.rmsNorm(x, {epsilon, gamma, mask});
      case 'rmsScaling': return ops.layerNorm(x, {epsilon, gamma, mask, rmsScaling: true});
      case 'stdEps': {
        const [rows, n] = x.shape;
        const plan: NormPlan = {viewShape: [rows, n], reduceAxes: [1], paramViewShape: [1, n], epsilon, mode: 'stdEps'};
        return normalizeMasked('stdEps', x, plan, gamma, beta, mask);
      }
    }
  }

  /** Problems with got against the float64 ref over [from, to) (scale: max|ref| there, or max(1, ...)). */
  function compare(what: string, got: ArrayLike<number>, ref: ArrayLike<number>, from: number, to: number, floor: number): string[] {
    let scale = floor;
    for (let i = from; i < to; i++) if (Number.isFinite(Math.fround(ref[i]))) scale = Math.max(scale, Math.abs(ref[i]));
    const bad: string[] = [];
    for (let i = from; i < to; i++) {
      const r = ref[i];
      const want = Math.fround(r);
      const ok = Number.isFinite(want) ? (Math.abs(got[i] - r) <= 1e-4 * scale ||
                                          (Math.abs(r) >= (1 - 1e-4) * FLT_MAX && got[i] === Math.sign(r) * Infinity)) :
        got[i] === want;
      if (!ok) bad.push(`${what}[${i}] = ${got[i]}, float64 ${r}`);
    }
    return bad;
  }

  test.each([['cpu'], ['wasm']])('%s: every path and mode equals the float64 gradient, rounded to float32', async (backend) => {
    await import('@tensorflow/tfjs-backend-wasm');
    expect(await tf.setBackend(backend)).toBe(true);
    try {
      fc.assert(fc.property(caseArb, ({rows, n, mode, epsilon, affine, masked, taped, seed}) => {
        const rand = rng(seed);
        const R = rows.length;
        const pad = masked ? 2 : 0;
        const m = n + pad;
        const xs = new Float32Array(R * m);
        rows.forEach((r, i) => {
          xs.set(rowData(r.pattern, r.scale, n, rand), i * m);
          for (let j = n; j < m; j++) xs[i * m + j] = GARBAGE[Math.floor(rand() * GARBAGE.length)];
        });
        const dys = normals(rand, R * m);
        for (let i = 0; i < R; i++) for (let j = n; j < m; j++) dys[i * m + j] = GARBAGE[Math.floor(rand() * GARBAGE.length)];
        const hasBeta = affine && (mode === 'center' || mode === 'stdEps');
        const gs = affine ? normals(rand, m, 1, 0.5) : null;
        const bs = hasBeta ? normals(rand, m, 0, 1) : null;
        // The float64 reference of each row over its n valid values.
        const ref = {dx: new Float64Array(R * m), dgamma: new Float64Array(m), dbeta: new Float64Array(m)};
        for (let i = 0; i < R; i++) {
          const xr = xs.slice(i * m, i * m + n);
          const mean = xr.reduce((p, v) => p + v, 0) / n;
          // A set of equal values (variance 0) is the documented special case, tested elsewhere.
          fc.pre(xr.some((v) => v !== xr[0]) && (mode === 'rms' || xr.some((v) => v !== mean)));
          const g = refGrads64(axesSpec([1, n], [1], epsilon, mode), xr, dys.slice(i * m, i * m + n), gs ? gs.slice(0, n) : null);
          ref.dx.set(g.dx, i * m);
          for (let j = 0; j < n; j++) {
            ref.dgamma[j] += g.dgamma[j];
            ref.dbeta[j] += g.dbeta[j];
          }
        }
        const mask = masked ? Float32Array.from({length: R * m}, (_, k) => (k % m < n ? 1 : 0)) : null;
        for (const flags of PATH_FLAGS) {
          withFlags(flags, () => tf.tidy(() => {
            const x = tf.tensor2d(xs, [R, m]);
            const dy = tf.tensor2d(dys, [R, m]);
            const gamma = gs ? tf.tensor1d(gs) : undefined;
            const beta = bs ? tf.tensor1d(bs) : undefined;
            const mk = mask ? tf.tensor2d(mask, [R, m]) : undefined;
            const args = [x, ...(gamma ? [gamma] : []), ...(beta ? [beta] : [])];
            const first = (a: tf.Tensor[]) => tf.grads((...b: tf.Tensor[]) =>
              tf.sum(tf.mul(run(mode, b[0], epsilon, gamma ? b[1] : undefined, beta ? b[2] : undefined, mk), dy)))(a);
            let got: Float32Array[] = [];
            if (taped) {
              // Under the outer tape the backward is recorded (the path a second-order gradient takes).
              tf.grad((xo: tf.Tensor) => {
                const g = first([xo, ...args.slice(1)]);
                got = g.map((t) => t.dataSync() as Float32Array);
                return tf.sum(tf.mul(g[0], 0));
              })(x);
            } else {
              got = first(args).map((t) => t.dataSync() as Float32Array);
            }
            const bad: string[] = [];
            for (let i = 0; i < R; i++) bad.push(...compare('dx', got[0], ref.dx, i * m, (i + 1) * m, 0));
            if (gamma) bad.push(...compare('dgamma', got[1], ref.dgamma, 0, m, 1));
            if (beta) bad.push(...compare('dbeta', got[2], ref.dbeta, 0, m, 1));
            if (bad.length > 0) {
              throw new Error(`${JSON.stringify(flags)} ${mode} epsilon ${epsilon} ${JSON.stringify(rows)} n ${n}: ${bad.slice(0, 4).join('; ')}`);
            }
          }));
        }
      }), {seed: SEED, numRuns: runs(100)});
    } finally {
      await useTestBackend();
    }
  });
});
