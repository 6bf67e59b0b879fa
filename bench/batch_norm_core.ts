/**
 * The BatchNormalization bench's cases, written once for Node and the
 * browser page (tf and the package are passed in, as in test/parity/suite.ts).
 * One shape, [8,32,32,64]; variants interleaved round by round:
 *
 * - bnLayer: this package's BatchNormalization training step: forward with
 *   batch statistics, moving-statistics update, and the backward
 *   (`tf.grads` of the layer's training call with dy given; the fused
 *   backward returns dx, dgamma and dbeta in one kernel);
 * - bnOp: `ops.batchNorm` forward + backward with respect to x, gamma, beta;
 * - gn: `ops.groupNorm` (G = 32) forward + backward with respect to x, gamma,
 *   beta: the target (BN's training step no slower than this);
 * - gnLayer: this package's GroupNormalization layer (G = 32), timed as
 *   bnLayer: the same layer machinery around the op, for a like-for-like
 *   comparison of the two layers;
 * - builtin: tfjs's built-in `tf.layers.batchNormalization` training step,
 *   timed as bnLayer;
 * - bnFrozen: this package's BatchNormalization with `trainable: false`
 *   (fine-tuning below a frozen layer): the inference forward with the
 *   moving statistics and the gradient of x, `tf.grads` with dy given;
 * - builtinFrozen: the same with tfjs's built-in (its FusedBatchNorm
 *   gradient).
 */
import type * as TfModule from '@tensorflow/tfjs';

import type * as LibModule from '../src/index';

type TF = typeof TfModule;
type Lib = typeof LibModule;
type Tensor = TfModule.Tensor;

export const BN_BENCH_SHAPE = [8, 32, 32, 64];
export const BN_VARIANTS = ['bnLayer', 'bnOp', 'gn', 'gnLayer', 'bnFrozen', 'builtin', 'builtinFrozen'] as const;
export type BnVariant = typeof BN_VARIANTS[number];

export interface BnBenchResult {
  backend: string;
  shape: number[];
  /** Milliseconds per run, every round, per variant. */
  samples: Record<BnVariant, number[]>;
  /** Kernels one run of each variant dispatches (tf.profile, after the warm-up). */
  kernels: Record<BnVariant, number>;
  /** Those kernels in order, with the backend's time of each in ms where it measures one (tf.profile's kernelTimeMs; NaN elsewhere). */
  kernelTimes: Record<BnVariant, Array<[string, number]>>;
}

/** Whether the runtime lets the bench collect garbage before each sample (Node with --expose-gc). */
export const canForceGc = (): boolean => typeof (globalThis as {gc?: unknown}).gc === 'function';

/**
 * Runs `rounds` interleaved rounds (after one warm-up each) on the active
 * backend. `clock` (ms) defaults to performance.now; Node passes the
 * process's CPU time, which a machine shared with other jobs disturbs less.
 * `steps`: each sample of the package's variants is the mean of that many
 * consecutive steps (each timed from the call to its values read, as with
 * 1), which smooths out a loaded machine's scheduling; the built-in (100x
 * slower) always takes 1. `shape`: another input shape (channels last, C
 * divisible by 32; e.g. [8,1,2,64], where the kernels cost next to nothing
 * and what is timed is the layers' and ops' own overhead).
 */
export async function runBatchNormBench(
    tf: TF, lib: Lib, rounds: number, clock: () => number = () => performance.now(), steps = 1,
    shape: number[] = BN_BENCH_SHAPE): Promise<BnBenchResult> {
  const C = shape[shape.length - 1];
  const x = tf.randomNormal(shape, 0.3, 1.5, 'float32', 1);
  const dy = tf.randomNormal(shape, 0, 1, 'float32', 2);
  const gamma = tf.randomUniform([C], 0.5, 1.5, 'float32', 3);
  const beta = tf.randomNormal([C], 0, 0.5, 'float32', 4);
  const mine = lib.layers.batchNormalization({momentum: 0.9});
  const builtin = tf.layers.batchNormalization({momentum: 0.9});
  const gnLayer = lib.layers.groupNormalization({groups: 32});
  const mineFrozen = lib.layers.batchNormalization({momentum: 0.9, trainable: false});
  const builtinFrozen = tf.layers.batchNormalization({momentum: 0.9, trainable: false});
  tf.dispose([mine, builtin, gnLayer, mineFrozen, builtinFrozen].map((l) => l.apply(x)) as Tensor[]);
  // The frozen layers: moving statistics away from 0 and 1 (same values in both).
  const moving = [gamma, beta, tf.randomNormal([C], 0.3, 0.2, 'float32', 5), tf.randomUniform([C], 1, 3, 'float32', 6)];
  mineFrozen.setWeights(moving);
  builtinFrozen.setWeights(moving);
  tf.dispose(moving.slice(2));
  const step = (layer: TfModule.layers.Layer) => () => tf.grads((t: Tensor) => layer.apply(t, {training: true}) as Tensor)([x], dy);
  const fns: Record<BnVariant, () => Tensor[]> = {
    bnLayer: step(mine),
    bnOp: () => tf.grads((t: Tensor, g: Tensor, b: Tensor) => lib.ops.batchNorm(t, {gamma: g, beta: b}))([x, gamma, beta], dy),
    gn: () => tf.grads((t: Tensor, g: Tensor, b: Tensor) => lib.ops.groupNorm(t, {groups: 32, gamma: g, beta: b}))([x, gamma, beta], dy),
    gnLayer: step(gnLayer),
    bnFrozen: step(mineFrozen),
    builtin: step(builtin),
    builtinFrozen: step(builtinFrozen),
  };
  const samples = Object.fromEntries(BN_VARIANTS.map((v) => [v, [] as number[]])) as unknown as Record<BnVariant, number[]>;
  const once = async (f: () => Tensor[], n = 1) => {
    let ms = 0;
    for (let i = 0; i < n; i++) {
      const t0 = clock();
      const out = f();
      await Promise.all(out.map((t) => t.data()));
      ms += clock() - t0;
      tf.dispose(out);
    }
    return ms / n;
  };
  for (const v of BN_VARIANTS) await once(fns[v]);
  const kernels = {} as Record<BnVariant, number>;
  const kernelTimes = {} as Record<BnVariant, Array<[string, number]>>;
  for (const v of BN_VARIANTS) {
    const info = await tf.profile(() => fns[v]());
    kernels[v] = info.kernels.length;
    kernelTimes[v] = info.kernels.map((k) => [k.name, typeof k.kernelTimeMs === 'number' ? k.kernelTimeMs : NaN]);
    tf.dispose(info.result);
  }
  // The package's variants interleaved, in an order shuffled each round (a
  // fixed rotation has each variant follow the same one every round, so the
  // garbage one leaves always lands in the same next one's time), with a
  // full garbage collection before each sample where the runtime offers one
  // (Node with --expose-gc; outside the timing); the built-in (100x slower,
  // and its garbage would land in the next variant's time) in rounds of its
  // own afterwards.
  const gc = (globalThis as {gc?: () => void}).gc;
  let seed = 1;
  const random = () => (seed = (seed * 48271) % 2147483647) / 2147483647;
  const builtins = ['builtin', 'builtinFrozen'] as const;
  const ours = BN_VARIANTS.filter((v) => !(builtins as readonly string[]).includes(v));
  for (let r = 0; r < rounds; r++) {
    const order = [...ours];
    for (let i = order.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      [order[i], order[j]] = [order[j], order[i]];
    }
    for (const v of order) {
      gc?.();
      samples[v].push(await once(fns[v], steps));
    }
  }
  for (let r = 0; r < rounds; r++) {
    for (const v of builtins) {
      gc?.();
      samples[v].push(await once(fns[v]));
    }
  }
  tf.dispose([x, dy, gamma, beta]);
  for (const l of [mine, builtin, gnLayer, mineFrozen, builtinFrozen]) l.dispose();
  return {backend: tf.getBackend(), shape, samples, kernels, kernelTimes};
}

/** Median of a sample list. */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = (s.length - 1) / 2;
  return (s[Math.floor(m)] + s[Math.ceil(m)]) / 2;
}
