/**
 * BatchNormalization's moving-statistics update (src/kernels/moving_update.ts
 * on webgl and webgpu; the layer's JS update on cpu, wasm and tensorflow),
 * on the active backend. Run in Node (./node.test.ts's neighbour,
 * test/batch_normalization.test.ts) and in the browser page
 * (test/browser/page.ts) on webgl and webgpu.
 *
 * - The kernel itself, where the backend registers it: on C = 67 channels
 *   (more than one workgroup, not a multiple of it), inv including 0 and
 *   values where 1 / inv^2 - epsilon < 0, against the same update in tf ops
 *   on the same backend (the layer's fallback) and against float64; and
 *   channels whose mean is NaN or Inf (inv 0, as the fused forward leaves
 *   a set with a NaN or Inf): the variance NaN there, as the tf-op path's;
 * - the layer: two training steps (tf.grads of a call with training true,
 *   then a call with training true that no tape records) channels-last,
 *   channels-first and dense, the moving statistics against
 *   float64 (moving = moving * momentum + batch * (1 - momentum), the
 *   population variance), with the fused kernels on and off
 *   (TFJS_NORMALIZATION_FUSED), whether the update kernel ran and how many
 *   kernels a step dispatched, and tf.memory().numTensors around it all.
 */
import type * as TfModule from '@tensorflow/tfjs';

import {normals, rng} from '../reference';
import {FUSED_KERNEL_NAME} from './gpu_fused';
import {maxErr, type Lib, type TF} from './suite';

type Tensor = TfModule.Tensor;

export const MOVING_UPDATE_KERNEL_NAME = 'TfjsNormalizationMovingUpdate';
const FLAG = 'TFJS_NORMALIZATION_FUSED';

export interface MovingUpdateRecord {
  backend: string;
  /** The backend registers the update kernel. */
  registered: boolean;
  /** The kernel's outputs (mean, variance) against the tf-op update on the same backend; 0 where not registered. */
  errKernelVsTfop: number;
  /** ... and against float64 of the same float32 inputs. */
  errKernelVsF64: number;
  /**
   * The kernel's outputs at the channels of mean NaN and mean Inf: mean NaN and Inf, variance NaN
   * in both (true where not registered).
   */
  nonFinite: boolean;
  /**
   * Per layer case: moving statistics after two steps against float64, flag
   * on and off; the update kernel ran in both steps (flag on / off); the
   * fused forward ran in both (flag on: the update kernel takes its statistics; webgl's forward
   * declines row layouts such as channels-first); kernels of one step (flag on).
   */
  layers: Array<{case: string, err: number, errFlagOff: number, ran: boolean, ranFlagOff: boolean, forwardFused: boolean, kernels: number}>;
  leaked: number;
}

/** The update in float64 of float32 inputs, as the layer defines it. */
function update64(mm: Float32Array, mv: Float32Array, m1: Float32Array, m2: Float32Array, inv: Float32Array,
                  m: number, eps: number): [Float64Array, Float64Array] {
  const nm = new Float64Array(mm.length);
  const nv = new Float64Array(mm.length);
  for (let i = 0; i < mm.length; i++) {
    const v = !Number.isFinite(m1[i] + m2[i]) ? NaN : inv[i] > 0 ? Math.max(1 / (inv[i] * inv[i]) - eps, 0) : 0;
    nm[i] = mm[i] * m + (m1[i] + m2[i]) * (1 - m);
    nv[i] = mv[i] * m + v * (1 - m);
  }
  return [nm, nv];
}

/** maxErr over the channels where want is finite; NaN, Inf and -Inf required as they are elsewhere. */
function errAndNonFinite(got: ArrayLike<number>, want: ArrayLike<number>): number {
  const g: number[] = [];
  const w: number[] = [];
  for (let i = 0; i < want.length; i++) {
    if (Number.isFinite(want[i])) {
      g.push(got[i]);
      w.push(want[i]);
    } else if (!Object.is(got[i], want[i]) && !(Number.isNaN(got[i]) && Number.isNaN(want[i]))) {
      return Infinity;
    }
  }
  return maxErr(g, w);
}

async function kernelCheck(tf: TF): Promise<{errKernelVsTfop: number, errKernelVsF64: number, nonFinite: boolean}> {
  const C = 67;
  const r = rng(17);
  const m = 0.9;
  const eps = 1e-3;
  const mm = normals(r, C, 0.5, 2);
  const mv = Float32Array.from(normals(r, C), (v) => 0.1 + Math.abs(v));
  const m1 = normals(r, C, -1, 3);
  const m2 = Float32Array.from(normals(r, C), (v) => v * 1e-7);
  const inv = Float32Array.from(normals(r, C), (v) => 0.2 + 4 * Math.abs(v));
  inv[0] = 0;
  inv[1] = 1 / Math.sqrt(eps / 2);  // 1 / inv^2 - eps < 0: variance 0
  inv[2] = 40;
  // A NaN and an Inf in the channel: the forward's mean NaN / Inf, its inv 0.
  m1[3] = NaN;
  m1[4] = Infinity;
  inv[3] = 0;
  inv[4] = 0;
  // The statistics as the forward shapes them channels-last: [1, C].
  const t = [tf.tensor1d(mm), tf.tensor1d(mv), tf.tensor2d(m1, [1, C]), tf.tensor2d(m2, [1, C]), tf.tensor2d(inv, [1, C])];
  const [tmm, tmv, tm1, tm2, tinv] = t;
  const out = tf.engine().runKernel(MOVING_UPDATE_KERNEL_NAME, {mean: tmm, variance: tmv, m1: tm1, m2: tm2, inv: tinv},
                                    {momentum: m, epsilon: eps}) as Tensor[];
  const ref = tf.tidy(() => {
    const mean = tf.reshape(tf.add(tm1, tm2), [C]);
    const v = tf.where(tf.greater(tinv, 0), tf.relu(tf.sub(tf.reciprocal(tf.square(tinv)), eps)), tf.zerosLike(tinv));
    const variance = tf.reshape(tf.where(tf.isFinite(tf.add(tm1, tm2)), v, tf.fill(v.shape, NaN)), [C]);
    return [tf.add(tf.mul(tmm, m), tf.mul(mean, 1 - m)), tf.add(tf.mul(tmv, m), tf.mul(variance, 1 - m))];
  });
  const [k0, k1, r0, r1] = await Promise.all([...out, ...ref].map((x) => x.data() as Promise<Float32Array>));
  const [f0, f1] = update64(mm, mv, m1, m2, inv, m, eps);
  const shapesOk = out[0].shape.join() === `${C}` && out[1].shape.join() === `${C}`;
  tf.dispose([...t, ...out, ...ref]);
  return {
    errKernelVsTfop: shapesOk ? Math.max(errAndNonFinite(k0, r0), errAndNonFinite(k1, r1)) : Infinity,
    errKernelVsF64: Math.max(errAndNonFinite(k0, f0), errAndNonFinite(k1, f1)),
    nonFinite: Number.isNaN(k0[3]) && k0[4] === Infinity && Number.isNaN(k1[3]) && Number.isNaN(k1[4]),
  };
}

/** Batch mean and population variance per channel of x ([N, ..., C] or channels at `axis`), float64. */
function batchStats64(x: Float32Array, shape: number[], axis: number): [Float64Array, Float64Array] {
  const C = shape[axis];
  const inner = shape.slice(axis + 1).reduce((p, d) => p * d, 1);
  const n = x.length / C;
  const mean = new Float64Array(C);
  const variance = new Float64Array(C);
  for (let i = 0; i < x.length; i++) mean[Math.floor(i / inner) % C] += x[i];
  for (let c = 0; c < C; c++) mean[c] /= n;
  for (let i = 0; i < x.length; i++) {
    const c = Math.floor(i / inner) % C;
    variance[c] += (x[i] - mean[c]) ** 2;
  }
  for (let c = 0; c < C; c++) variance[c] /= n;
  return [mean, variance];
}

async function layerCase(tf: TF, lib: Lib, shape: number[], axis: number, flag: boolean) {
  const before = tf.env().getBool(FLAG);
  tf.env().set(FLAG, flag);
  try {
    const m = 0.8;
    const r = rng(shape.length * 100 + axis);
    const xs = [normals(r, shape.reduce((p, d) => p * d, 1), 0.7, 1.9), normals(r, shape.reduce((p, d) => p * d, 1), -0.4, 0.6)];
    const layer = lib.layers.batchNormalization({axis, momentum: m});
    const C = shape[axis];
    let mean = new Float64Array(C);
    let variance = new Float64Array(C).fill(1);
    // The update kernel and the fused forward ran in every step.
    let ran = true;
    let forwardFused = true;
    let kernels = 0;
    // The first step under a tape (tf.grads: the forward inside tf.customGrad), the second without one
    // (the fused kernel called directly, its statistics disposed after the update).
    for (const [k, xv] of xs.entries()) {
      const x = tf.tensor(xv, shape);
      const dy = tf.onesLike(x);
      const info = await tf.profile(() => (k === 0 ? tf.grads((t: Tensor) => layer.apply(t, {training: true}) as Tensor)([x], dy) :
                                                     [layer.apply(x, {training: true}) as Tensor]));
      ran = ran && info.kernels.some((kk) => kk.name === MOVING_UPDATE_KERNEL_NAME);
      forwardFused = forwardFused && info.kernels.some((kk) => kk.name === FUSED_KERNEL_NAME);
      if (k === 0) kernels = info.kernels.length;
      tf.dispose([x, dy, info.result as Tensor[]]);
      const [bm, bv] = batchStats64(xv, shape, axis);
      mean = mean.map((v, c) => v * m + bm[c] * (1 - m));
      variance = variance.map((v, c) => v * m + bv[c] * (1 - m));
    }
    const w = layer.getWeights();
    const got = await Promise.all(w.slice(2, 4).map((t) => t.data()));
    const err = Math.max(maxErr(got[0], mean), maxErr(got[1], variance));
    layer.dispose();
    return {err, ran, forwardFused, kernels};
  } finally {
    tf.env().set(FLAG, before);
  }
}

/** The checks of this file on the active backend. */
export async function runMovingUpdateCheck(tf: TF, lib: Lib): Promise<MovingUpdateRecord> {
  const backend = tf.getBackend();
  const start = tf.memory().numTensors;
  const registered = tf.getKernel(MOVING_UPDATE_KERNEL_NAME, backend) != null;
  const k = registered ? await kernelCheck(tf) : {errKernelVsTfop: 0, errKernelVsF64: 0, nonFinite: true};
  const layers: MovingUpdateRecord['layers'] = [];
  for (const [name, shape, axis] of [['channels-last [4,5,6,8]', [4, 5, 6, 8], 3], ['channels-first [3,8,5,7]', [3, 8, 5, 7], 1],
                                     ['dense [37,70]', [37, 70], 1]] as Array<[string, number[], number]>) {
    const on = await layerCase(tf, lib, shape, axis, true);
    const off = await layerCase(tf, lib, shape, axis, false);
    layers.push({
      case: name, err: on.err, errFlagOff: off.err, ran: on.ran, ranFlagOff: off.ran, forwardFused: on.forwardFused,
      kernels: on.kernels,
    });
  }
  return {backend, registered, ...k, layers, leaked: tf.memory().numTensors - start};
}
