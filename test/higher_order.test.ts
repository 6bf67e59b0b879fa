/**
 * Higher-order gradients (issue 11, item 1): tf.grad of a function that
 * itself calls tf.grad through an op of this package, as gradient penalties
 * (WGAN-GP, R1) and Hessian-vector products do. Every mode, with and
 * without gamma/beta and a mask, on the three paths (fused SIMD loops,
 * fused JS loops, tf-op path) of the cpu and wasm backends, against central
 * finite differences of the first-order gradient; and a tiny WGAN-GP critic
 * with LayerNormalization, whose penalized loss gradient matches the same
 * critic written with plain tf ops, trained a few steps.
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';

import {LayerNormalization, ops} from '../src';
import {FUSED_FLAG, SIMD_FLAG} from '../src/kernels/index';
import {NormPlan, normalizeMasked} from '../src/ops/core';
import {expectNoLeakSync, useTestBackend, withFlags} from './helpers';
import {normals, rng} from './reference';

type Run = (x: tf.Tensor, gamma: tf.Tensor|undefined, beta: tf.Tensor|undefined, mask: tf.Tensor|null) => tf.Tensor;

interface OpCase {
  name: string;
  shape: number[];
  paramShape: number[];
  hasBeta: boolean;
  run: Run;
}

const SHAPE = [2, 3, 4];
const stdEpsPlan: NormPlan = {viewShape: [2, 3, 4], reduceAxes: [1], paramViewShape: [1, 1, 4], epsilon: 1e-3, mode: 'stdEps'};
const OPS: OpCase[] = [
  {name: 'groupNorm (center)', shape: SHAPE, paramShape: [4], hasBeta: true,
    run: (x, gamma, beta, mask) => ops.groupNorm(x, {groups: 2, gamma, beta, mask})},
  {name: 'instanceNorm (center)', shape: SHAPE, paramShape: [4], hasBeta: true,
    run: (x, gamma, beta, mask) => ops.instanceNorm(x, {gamma, beta, mask})},
  {name: 'layerNorm (center)', shape: SHAPE, paramShape: [4], hasBeta: true,
    run: (x, gamma, beta, mask) => ops.layerNorm(x, {gamma, beta, mask})},
  {name: 'layerNorm over [time, features] rmsScaling', shape: SHAPE, paramShape: [3, 4], hasBeta: false,
    run: (x, gamma, _beta, mask) => ops.layerNorm(x, {axis: [1, 2], gamma, mask, rmsScaling: true})},
  {name: 'rmsNorm (rms)', shape: SHAPE, paramShape: [4], hasBeta: false,
    run: (x, gamma, _beta, mask) => ops.rmsNorm(x, {gamma, mask})},
  {name: 'keras-contrib instance norm (stdEps)', shape: SHAPE, paramShape: [4], hasBeta: true,
    run: (x, gamma, beta, mask) => normalizeMasked('stdEps', x, stdEpsPlan, gamma, beta, mask)},
];

const PATHS: Array<[string, Record<string, boolean>]> = [
  ['fused SIMD loops', {[FUSED_FLAG]: true, [SIMD_FLAG]: true}],
  ['fused JS loops', {[FUSED_FLAG]: true, [SIMD_FLAG]: false}],
  ['tf-op path', {[FUSED_FLAG]: false}],
];

/**
 * The first-order gradients (dx, dgamma, dbeta) of the inner loss
 * sum(c * y + y^3 / 3), whose dy = c + y^2 depends on x; and the outer
 * function sum(w . (dx, dgamma, dbeta)) of them, differentiated again.
 */
function firstOrder(c: OpCase, args: tf.Tensor[], cw: tf.Tensor, mask: tf.Tensor|null): tf.Tensor[] {
  const affine = args.length > 1;
  return tf.grads((...a: tf.Tensor[]) => {
    const y = c.run(a[0], affine ? a[1] : undefined, affine && c.hasBeta ? a[2] : undefined, mask);
    return tf.sum(tf.add(tf.mul(cw, y), tf.div(tf.pow(y, 3), 3)));
  })(args);
}

function outer(c: OpCase, args: tf.Tensor[], cw: tf.Tensor, ws: tf.Tensor[], mask: tf.Tensor|null): tf.Scalar {
  const g = firstOrder(c, args, cw, mask);
  return tf.addN(g.map((t, i) => tf.sum(tf.mul(t, ws[i])))) as tf.Scalar;
}

describe.each([['cpu'], ['wasm']])('%s backend', (backend) => {
  beforeAll(async () => {
    expect(await tf.setBackend(backend)).toBe(true);
  });
  afterAll(async () => {
    await useTestBackend();
  });

  const matrix = OPS.flatMap((c) => PATHS.flatMap(([path, flags]) =>
    [false, true].flatMap((affine) => [false, true].map((masked) => [c.name, path, affine, masked, c, flags] as const))));
  test.each(matrix)('%s, %s, affine %s, masked %s: second order = finite differences of the first order',
      (_n, _p, affine, masked, c, flags) => withFlags(flags, () => {
        const rand = rng(c.name.length * 31 + (affine ? 7 : 0) + (masked ? 3 : 0));
        const n = SHAPE.reduce((p, d) => p * d, 1);
        const pn = c.paramShape.reduce((p, d) => p * d, 1);
        const xs = normals(rand, n, 0.3, 1);
        const arrays: Float32Array[] = [xs];
        const shapes: number[][] = [c.shape];
        if (affine) {
          arrays.push(normals(rand, pn, 1, 0.3));
          shapes.push(c.paramShape);
          if (c.hasBeta) {
            arrays.push(normals(rand, pn, 0, 0.3));
            shapes.push(c.paramShape);
          }
        }
        const cw = tf.tensor(normals(rand, n), c.shape);
        const ws = shapes.map((s) => tf.tensor(normals(rand, s.reduce((p, d) => p * d, 1)), s));
        const mask = masked ? tf.tensor2d([[1, 1, 1], [1, 1, 0]], [2, 3], 'bool') : null;
        const args = arrays.map((a, i) => tf.tensor(a, shapes[i]));
        const second = expectNoLeakSync(() => tf.grads((...a: tf.Tensor[]) => outer(c, a, cw, ws, mask))(args));
        // Central differences of the outer function, evaluated with first-order gradients only.
        const f = (vals: Float32Array[]) => tf.tidy(() => outer(c, vals.map((v, i) => tf.tensor(v, shapes[i])), cw, ws, mask).dataSync()[0]);
        const central = (k: number, i: number, h: number) => {
          const up = arrays.map((a) => a.slice());
          const down = arrays.map((a) => a.slice());
          up[k][i] += h;
          down[k][i] -= h;
          return (f(up) - f(down)) / (2 * h);
        };
        arrays.forEach((arr, k) => {
          const fd = new Float64Array(arr.length);
          // Richardson's extrapolation of two steps: an O(h^4) error (sets of
          // two valid elements make the third derivatives large).
          for (let i = 0; i < arr.length; i++) fd[i] = (4 * central(k, i, 5e-3) - central(k, i, 1e-2)) / 3;
          const got = second[k].dataSync();
          const scale = Math.max(1, ...Array.from(fd, Math.abs));
          for (let i = 0; i < fd.length; i++) {
            if (!(Math.abs(got[i] - fd[i]) <= 3e-3 * scale)) {
              throw new Error(`argument ${k} element ${i}: second-order gradient ${got[i]}, finite differences ${fd[i]}`);
            }
          }
        });
        tf.dispose([...args, ...second, cw, ...ws, ...(mask ? [mask] : [])]);
      }));

  /**
   * Extreme magnitudes (issue 11, item 3), second order, epsilon 0: with
   * x' = x * 2^e (exact: x is a multiple of 2^-10 below 2 in magnitude), y,
   * dy and dgamma are unchanged and dx scales by 2^-e, so the outer
   * function sum(wg * dgamma) + 2^e * sum(wx * dx) is unchanged and its
   * gradient is 2^-e times the one at e = 0 for x' (checked against finite
   * differences above) and the same for gamma. At e = -139 (a denormal x)
   * dx itself exceeds float32, so only the dgamma term, and only its
   * gradient for gamma.
   */
  const zeroEps = (c: OpCase): OpCase => ({...c, run: (x, g, b, m) => c.name.startsWith('keras-contrib') ?
    normalizeMasked('stdEps', x, {...stdEpsPlan, epsilon: 0}, g, b, m) : c.name.startsWith('groupNorm') ?
      ops.groupNorm(x, {groups: 2, gamma: g, beta: b, mask: m, epsilon: 0}) : c.name.startsWith('instanceNorm') ?
        ops.instanceNorm(x, {gamma: g, beta: b, mask: m, epsilon: 0}) : c.name.startsWith('layerNorm (center)') ?
          ops.layerNorm(x, {gamma: g, beta: b, mask: m, epsilon: 0}) : c.name.startsWith('layerNorm over') ?
            ops.layerNorm(x, {axis: [1, 2], gamma: g, mask: m, rmsScaling: true, epsilon: 0}) :
            ops.rmsNorm(x, {gamma: g, mask: m, epsilon: 0})});
  const scaleMatrix = OPS.flatMap((c) => PATHS.flatMap(([path, flags]) => [false, true].map((masked) => [c.name, path, masked, c, flags] as const)));
  test.each(scaleMatrix)('%s, %s, masked %s, epsilon 0: second order at x * 2^-139, 2^-100, 2^100, 2^127 = 2^-e times that at x',
      (_n, _p, masked, c0, flags) => withFlags(flags, () => {
        const c = zeroEps(c0);
        const rand = rng(c.name.length * 17 + (masked ? 5 : 0));
        const n = SHAPE.reduce((p, d) => p * d, 1);
        const pn = c.paramShape.reduce((p, d) => p * d, 1);
        const xs = Float32Array.from(normals(rand, n, 0.2, 0.6), (v) => Math.max(-2047, Math.min(2047, Math.round(v * 1024))) / 1024);
        const gs = normals(rand, pn, 1, 0.3);
        const bs = c.hasBeta ? normals(rand, pn, 0, 0.3) : null;
        const cw = tf.tensor(normals(rand, n), c.shape);
        // |wx| < 2, so that the cotangent of dx, 2^127 * wx, fits float32.
        const wx = tf.tensor(Float32Array.from(normals(rand, n), (v) => Math.max(-1.9, Math.min(1.9, v))), c.shape);
        const wg = tf.tensor(normals(rand, pn), c.paramShape);
        const mask = masked ? tf.tensor2d([[1, 1, 1], [1, 1, 0]], [2, 3], 'bool') : null;
        const gamma = tf.tensor(gs, c.paramShape);
        const beta = bs ? tf.tensor(bs, c.paramShape) : null;
        const second = (e: number, dgOnly: boolean) => tf.tidy(() => tf.grads((x: tf.Tensor, g: tf.Tensor) => {
          const first = firstOrder(c, [x, g, ...(beta ? [beta] : [])], cw, mask);
          const dg = tf.sum(tf.mul(first[1], wg));
          return (dgOnly ? dg : tf.add(dg, tf.mul(tf.sum(tf.mul(first[0], wx)), 2 ** e))) as tf.Scalar;
        })([tf.tensor(xs.map((v) => v * 2 ** e), c.shape), gamma]).map((t) => t.dataSync() as Float32Array));
        for (const e of [-139, -100, 100, 127]) {
          const ref = second(0, e === -139);
          const got = expectNoLeakSync(() => second(e, e === -139));
          const parts = e === -139 ? [1] : [0, 1];
          for (const k of parts) {
            const factor = k === 0 ? 2 ** -e : 1;
            const want = Array.from(ref[k], (v) => v * factor);
            const scale = Math.max(...want.map(Math.abs));
            want.forEach((w, i) => {
              if (!(Math.abs(got[k][i] - w) <= 1e-3 * scale)) {
                throw new Error(`e = ${e}, argument ${k} element ${i}: ${got[k][i]}, expected ${w} (2^${-e} times that at e = 0)`);
              }
            });
          }
        }
        tf.dispose([cw, wx, wg, gamma, ...(beta ? [beta] : []), ...(mask ? [mask] : [])]);
      }));

  test('a WGAN-GP critic with LayerNormalization: the penalized loss gradient matches plain tf ops; it trains', () => {
    const features = 6;
    const hidden = 8;
    const critic = tf.sequential({layers: [
      tf.layers.dense({inputShape: [features], units: hidden, kernelInitializer: tf.initializers.glorotNormal({seed: 1})}),
      new LayerNormalization({epsilon: 1e-3, gammaInitializer: tf.initializers.randomUniform({minval: 0.5, maxval: 1.5, seed: 2}) as never,
        betaInitializer: tf.initializers.randomNormal({stddev: 0.2, seed: 3}) as never}),
      tf.layers.dense({units: 1, kernelInitializer: tf.initializers.glorotNormal({seed: 4})}),
    ]});
    const [k1, b1, gamma, beta, k2, b2] = critic.trainableWeights.map((w) => w.read());
    // The same critic in plain tf ops (tf.moments' LayerNorm, differentiated by tfjs's own gradients).
    const plainCritic = (x: tf.Tensor) => {
      const h = tf.add(tf.matMul(x as tf.Tensor2D, k1 as tf.Tensor2D), b1);
      const {mean, variance} = tf.moments(h, -1, true);
      const n = tf.add(tf.mul(tf.div(tf.sub(h, mean), tf.sqrt(tf.add(variance, 1e-3))), gamma), beta);
      return tf.add(tf.matMul(n as tf.Tensor2D, k2 as tf.Tensor2D), b2);
    };
    const real = tf.randomNormal([5, features], 1, 1, 'float32', 5);
    const fake = tf.randomNormal([5, features], -1, 1, 'float32', 6);
    const alpha = tf.randomUniform([5, 1], 0, 1, 'float32', 7);
    const interp = tf.add(tf.mul(alpha, real), tf.mul(tf.sub(1, alpha), fake));
    const loss = (d: (x: tf.Tensor) => tf.Tensor) => () => {
      const gx = tf.grad((x: tf.Tensor) => tf.sum(d(x)))(interp);
      const norm = tf.sqrt(tf.add(tf.sum(tf.square(gx), 1), 1e-12));
      const gp = tf.mean(tf.square(tf.sub(norm, 1)));
      return tf.add(tf.sub(tf.mean(d(fake)), tf.mean(d(real))), tf.mul(10, gp)) as tf.Scalar;
    };
    const apply = (x: tf.Tensor) => critic.apply(x) as tf.Tensor;
    const ours = expectNoLeakSync(() => tf.variableGrads(loss(apply), critic.trainableWeights.map((w) => w.read() as tf.Variable)));
    // The plain critic reads the same variables; differentiate it with respect to them.
    const plain = tf.variableGrads(loss(plainCritic), critic.trainableWeights.map((w) => w.read() as tf.Variable));
    expect(Math.abs(ours.value.dataSync()[0] - plain.value.dataSync()[0])).toBeLessThan(1e-4);
    for (const name of Object.keys(plain.grads)) {
      const a = ours.grads[name].dataSync();
      const b = plain.grads[name].dataSync();
      const scale = Math.max(1e-3, ...Array.from(b, Math.abs));
      for (let i = 0; i < b.length; i++) {
        if (!(Math.abs(a[i] - b[i]) <= 1e-3 * scale)) throw new Error(`${name}[${i}]: ${a[i]} vs plain tf ops ${b[i]}`);
      }
    }
    tf.dispose([ours.value, plain.value, ...Object.values(ours.grads), ...Object.values(plain.grads)]);
    // A few Adam steps on the penalized loss: finite, no leak, and the loss goes down.
    const opt = tf.train.adam(1e-2);
    const losses: number[] = [];
    const before = tf.memory().numTensors;
    for (let step = 0; step < 8; step++) {
      const l = opt.minimize(loss(apply), true) as tf.Scalar;
      losses.push(l.dataSync()[0]);
      l.dispose();
    }
    expect(losses.every(Number.isFinite)).toBe(true);
    expect(losses[losses.length - 1]).toBeLessThan(losses[0]);
    // Adam's slots are created on the first step; nothing grows after it.
    const afterFirst = tf.memory().numTensors;
    const l = opt.minimize(loss(apply), true) as tf.Scalar;
    l.dispose();
    expect(tf.memory().numTensors).toBe(afterFirst);
    expect(afterFirst - before).toBe(2 * critic.trainableWeights.length);
    opt.dispose();
    tf.dispose([real, fake, alpha, interp]);
    critic.dispose();
  });
});
