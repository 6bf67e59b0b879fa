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
import {Placement, simdBackward, simdEnabled, simdForward} from './simd/run';

/** Where one kernel call's arrays live. */
export interface ArrayHost<Out> {
  /** How the SIMD loops see these arrays; null: they cannot run here. */
  placement: Placement|null;
  /** An output, allocated now (every output is allocated before any array is taken). */
  alloc(shape: number[]): Out;
  /** The values of an input or an output, valid until the next allocation. */
  array(t: tf.TensorInfo|Out): Float32Array;
  /** The output as the kernel returns it. */
  info(out: Out): tf.TensorInfo;
}

/** The forward kernel on `host`: y, then the statistics of the mode. */
export function hostForward<Out>(host: ArrayHost<Out>, {inputs, attrs}: Parameters<tf.KernelFunc>[0]): tf.TensorInfo[] {
  const a = attrsOf<ForwardAttrs>(attrs);
  const L = layoutOf(a);
  const {x, gamma, beta} = inputs as Record<string, tf.TensorInfo>;
  const statsShape = statsShapeOf(a);
  const y = host.alloc(x.shape);
  const stats = MODES[a.mode].stats.map(() => host.alloc(statsShape));
  const arrays = (): FusedArrays => ({
    x: host.array(x),
    gamma: a.hasGamma ? host.array(gamma) : null,
    beta: a.hasBeta ? host.array(beta) : null,
    y: host.array(y),
    stats: stats.map((s) => host.array(s)),
  });
  const at = simdEnabled() ? host.placement : null;
  // The SIMD loops, or (not covered, no memory, or statistics outside the
  // range their float32 arithmetic is safe for) the JS loops, in float64.
  if (at == null || !simdForward(at, L, a.mode, a.epsilon, arrays())) fusedForward(arrays(), L, a.mode, a.epsilon);
  return [y, ...stats].map((t) => host.info(t));
}

/** The backward kernel on `host`: dx, then dgamma and dbeta where the forward had them. */
export function hostBackward<Out>(host: ArrayHost<Out>, {inputs, attrs}: Parameters<tf.KernelFunc>[0]): tf.TensorInfo[] {
  const a = attrsOf<BackwardAttrs>(attrs);
  const L = layoutOf(a);
  const ins = inputs as Record<string, tf.TensorInfo>;
  const dx = host.alloc(ins.x.shape);
  const dgamma = a.hasGamma ? host.alloc(a.gammaShape) : null;
  const dbeta = a.hasBeta ? host.alloc(a.betaShape) : null;
  const arrays = (): FusedGradArrays => ({
    x: host.array(ins.x),
    dy: host.array(ins.dy),
    gamma: a.hasGamma ? host.array(ins.gamma) : null,
    stats: MODES[a.mode].stats.map((_, i) => host.array(ins[`s${i}`])),
    dx: host.array(dx),
    dgamma: dgamma && host.array(dgamma),
    dbeta: dbeta && host.array(dbeta),
  });
  const at = simdEnabled() ? host.placement : null;
  if (at == null || !simdBackward(at, L, a.mode, arrays())) fusedBackward(arrays(), L, a.mode, a.epsilon);
  return [dx, dgamma, dbeta].flatMap((t) => (t == null ? [] : [host.info(t)]));
}

/** A plain array output (the cpu backend): its shape and values. */
export interface PlainOut {
  shape: number[];
  values: Float32Array;
}

/** Allocates a plain output. */
export const plainOut = (shape: number[]): PlainOut => ({shape, values: new Float32Array(sizeOf(shape))});
