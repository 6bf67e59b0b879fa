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
 *   timed as bnLayer.
 */
import type * as TfModule from '@tensorflow/tfjs';

import type * as LibModule from '../src/index';

type TF = typeof TfModule;
type Lib = typeof LibModule;
type Tensor = TfModule.Tensor;

export const BN_BENCH_SHAPE = [8, 32, 32, 64];
export const BN_VARIANTS = ['bnLayer', 'bnOp', 'gn', 'gnLayer', 'builtin'] as const;
export type BnVariant = typeof BN_VARIANTS[number];

export interface BnBenchResult {
  backend: string;
  shape: number[];
  /** Milliseconds per run, every round, per variant. */
  samples: Record<BnVariant, number[]>;
}

/**
 * Runs `rounds` interleaved rounds (after one warm-up each) on the active
 * backend. `clock` (ms) defaults to performance.now; Node passes the
 * process's CPU time, which a machine shared with other jobs disturbs less.
 */
export async function runBatchNormBench(
    tf: TF, lib: Lib, rounds: number, clock: () => number = () => performance.now()): Promise<BnBenchResult> {
  const shape = BN_BENCH_SHAPE;
  const C = shape[shape.length - 1];
  const x = tf.randomNormal(shape, 0.3, 1.5, 'float32', 1);
  const dy = tf.randomNormal(shape, 0, 1, 'float32', 2);
  const gamma = tf.randomUniform([C], 0.5, 1.5, 'float32', 3);
  const beta = tf.randomNormal([C], 0, 0.5, 'float32', 4);
  const mine = lib.layers.batchNormalization({momentum: 0.9});
  const builtin = tf.layers.batchNormalization({momentum: 0.9});
  const gnLayer = lib.layers.groupNormalization({groups: 32});
  tf.dispose([mine.apply(x), builtin.apply(x), gnLayer.apply(x)] as Tensor[]);
  const step = (layer: TfModule.layers.Layer) => () => tf.grads((t: Tensor) => layer.apply(t, {training: true}) as Tensor)([x], dy);
  const fns: Record<BnVariant, () => Tensor[]> = {
    bnLayer: step(mine),
    bnOp: () => tf.grads((t: Tensor, g: Tensor, b: Tensor) => lib.ops.batchNorm(t, {gamma: g, beta: b}))([x, gamma, beta], dy),
    gn: () => tf.grads((t: Tensor, g: Tensor, b: Tensor) => lib.ops.groupNorm(t, {groups: 32, gamma: g, beta: b}))([x, gamma, beta], dy),
    gnLayer: step(gnLayer),
    builtin: step(builtin),
  };
  const samples = Object.fromEntries(BN_VARIANTS.map((v) => [v, [] as number[]])) as unknown as Record<BnVariant, number[]>;
  const once = async (f: () => Tensor[]) => {
    const t0 = clock();
    const out = f();
    await Promise.all(out.map((t) => t.data()));
    const ms = clock() - t0;
    tf.dispose(out);
    return ms;
  };
  for (const v of BN_VARIANTS) await once(fns[v]);
  // The package's variants interleaved, their order rotating each round; the
  // built-in (100x slower, and its garbage would land in the next variant's
  // time) in rounds of its own afterwards.
  const ours = BN_VARIANTS.filter((v) => v !== 'builtin');
  for (let r = 0; r < rounds; r++) {
    for (let k = 0; k < ours.length; k++) {
      const v = ours[(r + k) % ours.length];
      samples[v].push(await once(fns[v]));
    }
  }
  for (let r = 0; r < rounds; r++) samples.builtin.push(await once(fns.builtin));
  tf.dispose([x, dy, gamma, beta]);
  mine.dispose();
  builtin.dispose();
  gnLayer.dispose();
  return {backend: tf.getBackend(), shape, samples};
}

/** Median of a sample list. */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = (s.length - 1) / 2;
  return (s[Math.floor(m)] + s[Math.ceil(m)]) / 2;
}
