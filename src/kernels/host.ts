/**
 * The cpu and wasm kernels' one body: the fused loops on typed arrays, the
 * WebAssembly SIMD ones (./simd) where they apply, else the JS ones
 * (./compute.ts). What differs between the two backends is only where the
 * arrays live, an {@link ArrayHost}: the cpu backend's own arrays (./cpu.ts)
 * or views of the wasm backend's heap (./wasm.ts).
 */
import * as tf from '@tensorflow/tfjs';

import {FusedArrays, fusedBackward, FusedGradArrays, fusedForward} from './compute';
import {attrsOf, BackwardAttrs, ForwardAttrs, MODES, sizeOf, statsShapeOf} from './contract';
import {layoutOf} from './layout';
import {workArrays} from './simd/forward';
import {Placement, simdBackward, simdEnabled, simdForward} from './simd/run';

/** Where one kernel call's arrays live. */
export interface ArrayHost<Out> {
  /** How the SIMD loops see these arrays; null: they cannot run here. */
  placement: Placement|null;
  /**
   * An output, allocated now (every output is allocated before any array is
   * taken). `whole`: the loops write every element before anything reads it
   * (y, dx), so a host may skip zeroing it.
   */
  alloc(shape: number[], whole?: boolean): Out;
  /** The values of an input or an output, valid until the next allocation. */
  array(t: tf.TensorInfo|Out): Float32Array;
  /** The output as the kernel returns it. */
  info(out: Out): tf.TensorInfo;
}

/** The forward kernel on `host`: y, then the statistics of the mode. */
export function hostForward<Out>(host: ArrayHost<Out>, {inputs, attrs}: Parameters<tf.KernelFunc>[0]): tf.TensorInfo[] {
  const plan = attrsOf<ForwardAttrs>(attrs);
  const L = layoutOf(plan);
  const {x, gamma, beta} = inputs as Record<string, tf.TensorInfo>;
  const statsShape = statsShapeOf(plan);
  const y = host.alloc(x.shape, true);
  // Without withStats (no gradient will read them) the statistics go to
  // plain arrays of this call, and y alone is returned.
  const withStats = plan.withStats !== false;
  const stats = withStats ? MODES[plan.mode].stats.map(() => host.alloc(statsShape)) : [];
  const scratchStats = withStats ? [] : workArrays(L, 'stats', Float32Array, MODES[plan.mode].stats.length, L.numSets);
  const arrays = (): FusedArrays => ({
    x: host.array(x),
    gamma: plan.hasGamma ? host.array(gamma) : null,
    beta: plan.hasBeta ? host.array(beta) : null,
    y: host.array(y),
    stats: withStats ? stats.map((s) => host.array(s)) : scratchStats,
  });
  const at = simdEnabled() ? host.placement : null;
  // The SIMD loops, or (not covered, no memory, or statistics outside the
  // range their float32 arithmetic is safe for) the JS loops, in float64.
  if (at == null || !simdForward(at, L, plan.mode, plan.epsilon, arrays())) fusedForward(arrays(), L, plan.mode, plan.epsilon);
  return [y, ...stats].map((t) => host.info(t));
}

/** The backward kernel on `host`: dx, then dgamma and dbeta where the forward had them. */
export function hostBackward<Out>(host: ArrayHost<Out>, {inputs, attrs}: Parameters<tf.KernelFunc>[0]): tf.TensorInfo[] {
  const plan = attrsOf<BackwardAttrs>(attrs);
  const L = layoutOf(plan);
  const ins = inputs as Record<string, tf.TensorInfo>;
  const dx = host.alloc(ins.x.shape, true);
  const dgamma = plan.hasGamma ? host.alloc(plan.gammaShape) : null;
  const dbeta = plan.hasBeta ? host.alloc(plan.betaShape) : null;
  const arrays = (): FusedGradArrays => ({
    x: host.array(ins.x),
    dy: host.array(ins.dy),
    gamma: plan.hasGamma ? host.array(ins.gamma) : null,
    stats: MODES[plan.mode].stats.map((_, i) => host.array(ins[`s${i}`])),
    dx: host.array(dx),
    dgamma: dgamma && host.array(dgamma),
    dbeta: dbeta && host.array(dbeta),
  });
  const at = simdEnabled() ? host.placement : null;
  if (at == null || !simdBackward(at, L, plan.mode, arrays())) fusedBackward(arrays(), L, plan.mode, plan.epsilon);
  return [dx, dgamma, dbeta].flatMap((t) => (t == null ? [] : [host.info(t)]));
}

/** A plain array output (the cpu backend): its shape and values. */
export interface PlainOut {
  shape: number[];
  values: Float32Array;
}

/**
 * Node's Buffer.allocUnsafeSlow: memory of its own (not a pooled slice),
 * not zeroed; undefined elsewhere (browsers).
 */
const NodeBuffer = (globalThis as {Buffer?: {allocUnsafeSlow?: (bytes: number) => {buffer: ArrayBufferLike}}}).Buffer;

/** Outputs of at least this many elements may skip zeroing (smaller ones: not worth a Buffer). */
const UNZEROED_MIN = 16384;

/**
 * Allocates a plain output. `whole` (every element written before it is
 * read, see ArrayHost.alloc): on Node, a large one is not zeroed first
 * (Buffer.allocUnsafeSlow); zeroing 1-4 MiB of recycled memory was about a
 * third of the output's cost on the cpu backend (docs/performance.md,
 * "cpu backend: per-case cost").
 */
export const plainOut = (shape: number[], whole = false): PlainOut => {
  const n = sizeOf(shape);
  const values = whole && n >= UNZEROED_MIN && typeof NodeBuffer?.allocUnsafeSlow === 'function' ?
    new Float32Array(NodeBuffer.allocUnsafeSlow(4 * n).buffer as ArrayBuffer, 0, n) : new Float32Array(n);
  return {shape, values};
};
