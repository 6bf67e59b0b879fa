/**
 * The two entry points of the SIMD loops for the cpu and wasm kernels
 * (src/kernels/host.ts): {@link simdForward} and {@link simdBackward}
 * take the same arrays as compute.ts's JS loops and return false where
 * the SIMD path does not apply; the kernel then runs the JS loops.
 *
 * Where the arrays live is the {@link Placement}, not a separate entry
 * point: plain arrays (the cpu backend) are copied into the module's own
 * memory and the outputs copied out; views of the memory an engine runs on
 * (the wasm backend's heap) are read and written in place.
 */
import * as tf from '@tensorflow/tfjs';

import type {FusedArrays, FusedGradArrays} from '../compute';
import {align16, NormMode, SIMD_FLAG, statIndex} from '../contract';
import type {FusedLayout} from '../layout';
import {simdBackwardScratchBytes, simdBackward as simdBackwardLoops} from './backward';
import {simdCpuScratch, SimdEngine} from './engine';
import {simdForward as simdForwardLoops, simdPlanOf, simdScratchBytes} from './forward';
import {kernelTrace} from '../trace';

/** Whether the kernels may use the WebAssembly SIMD loops (the TFJS_NORMALIZATION_SIMD flag). */
export function simdEnabled(): boolean {
  return tf.env().getBool(SIMD_FLAG);
}

/**
 * Where a kernel's arrays live, as the SIMD loops see them:
 * - 'copy': plain JS arrays (the cpu backend's); the loops run on a copy in
 *   the module's own memory (kept up to a bound, see engine.ts);
 * - 'view': views of the memory `engine` runs on (the wasm backend's heap).
 */
export type Placement = {kind: 'copy'}|{kind: 'view', engine: SimdEngine};

/**
 * Whether the float32 arithmetic of the SIMD loops is safe for these
 * statistics (as the forward returns them: inv, or s in rms mode, and
 * invStd in stdEps mode): every nonzero one in [2^-40, 2^40], i.e. a
 * spread between about 1e-12 and 1e12. Outside it the loops' float32
 * coefficients (inv, inv^2 * mean(g * xn)) and x - mean can overflow or
 * underflow (a spread of 1e-20 gave dx = +-Inf, a denormal one y = +-Inf,
 * [3.4e38, 3.4e38, 3.4e38, -3.4e38] y = -Inf), so the kernels run the
 * float64 JS loops instead.
 */
export function simdSafeStats(mode: NormMode, stats: Float32Array[]): boolean {
  for (const k of SAFE_KEYS[mode]) {
    const a = stats[k];
    for (let i = 0; i < a.length; i++) {
      const v = a[i];
      if (v !== 0 && !(v >= 2 ** -40 && v <= 2 ** 40)) return false;
    }
  }
  return true;
}

/** Per mode, where inv, invStd and s are among its statistics. */
const SAFE_KEYS = Object.fromEntries((['center', 'rms', 'rmsScaling', 'stdEps'] as const).map((mode) =>
  [mode, (['inv', 'invStd', 's'] as const).map((name) => statIndex(mode, name)).filter((k) => k >= 0)])) as
    Record<NormMode, number[]>;

/**
 * Bytes left between consecutive arrays in the cpu engine's memory, so that
 * x, y (dy, dx) do not start at the same offset modulo 4 KiB, as arrays of
 * a multiple of 4 KiB placed back to back would: the column loops then read
 * and write addresses that alias in the CPU's store buffer (4K aliasing;
 * applyCols over GN [8,32,32,64] took 0.088 ms with y - x a multiple of
 * 4096, 0.063 ms 1088 bytes further on, interleaved in one process).
 */
const COPY_STAGGER = 1088;

/** One call's arrays placed in an engine's memory. */
interface Placed {
  eng: SimdEngine;
  /** Byte offsets of the arrays the loops read (null for a null array). */
  ins: Array<number|null>;
  /** Byte offsets of the arrays the loops write. */
  outs: number[];
  /** The scratch block. */
  scratch: number;
  /** An array JS itself reads or writes (statistics, dgamma, dbeta), valid until the next allocation. */
  host(a: Float32Array): Float32Array;
  /** After the loops: the outputs where the caller's arrays are. */
  finish(): void;
}

/**
 * Places `ins` (read) and `outs` (written) by the loops in the memory of an
 * engine with `scratchBytes` of scratch, or null when no SIMD memory can be
 * had; `host` are the arrays JS itself reads or writes (see Placed.host).
 *
 * 'copy': the arrays, then the scratch, at the start of a cpu engine's
 * memory; the caller allocated the outputs before the call (most of the cpu
 * path's cost is the first touch of a fresh array's pages; allocated
 * first, the allocator hands back recently freed memory far more often:
 * docs/performance.md). 'view': the arrays' own offsets, taken before the
 * scratch allocation (which can grow the memory and detach every view).
 */
function place(
    at: Placement, ins: Array<Float32Array|null>, outs: Float32Array[], host: Array<Float32Array|null>,
    scratchBytes: number): Placed|null {
  if (at.kind === 'view') {
    const eng = at.engine;
    const before = eng.memory.buffer;
    const placed = {ins: ins.map((a) => (a ? a.byteOffset : null)), outs: outs.map((a) => a.byteOffset)};
    // Offsets and lengths of the views of the heap among `host`, taken
    // before the scratch allocation (a view it detaches reads 0 for both).
    // A JS array of the caller's (statistics a forward does not return)
    // stays as it is.
    const where = host.map((a) => (a && a.buffer === before ? [a.byteOffset, a.length] : null));
    const scratch = eng.scratch(scratchBytes);
    const buf = eng.memory.buffer;
    // Unless the memory grew, the views are still valid and are used as they are.
    const again = (a: Float32Array) => {
      const w = where[host.indexOf(a)];
      return w == null ? a : new Float32Array(buf, w[0], w[1]);
    };
    return {eng, ...placed, scratch, host: buf === before ? (a) => a : again, finish: () => undefined};
  }
  let end = 0;
  const next = (a: Float32Array) => {
    const off = end;
    end += align16(4 * a.length) + COPY_STAGGER;
    return off;
  };
  const inOffsets = ins.map((a) => (a ? next(a) : null));
  const outOffsets = outs.map(next);
  const got = simdCpuScratch(end + scratchBytes);
  if (got == null) return null;  // no WebAssembly memory to be had: the JS loops
  const {eng, base} = got;
  const buf = eng.memory.buffer;
  ins.forEach((a, i) => {
    if (a) new Float32Array(buf, base + (inOffsets[i] as number), a.length).set(a);
  });
  return {
    eng,
    ins: inOffsets.map((o) => (o == null ? null : base + o)),
    outs: outOffsets.map((o) => base + o),
    scratch: base + end,
    host: (a) => a,
    finish: () => outs.forEach((a, i) => a.set(new Float32Array(buf, base + outOffsets[i], a.length))),
  };
}

/**
 * The fused forward on the SIMD loops: fills arr.y and arr.stats (as
 * compute.ts's fusedForward does). False where the SIMD loops do not cover
 * the layout, no memory can be had, or the statistics are outside the
 * range their float32 arithmetic is safe for ({@link simdSafeStats}): the
 * caller then runs the JS loops on fresh arrays.
 */
export function simdForward(at: Placement, L: FusedLayout, mode: NormMode, epsilon: number, arr: FusedArrays): boolean {
  const sp = simdPlanOf(L);
  if (sp == null) return false;
  const p = place(
      at, [arr.x, arr.gamma, arr.beta], [arr.y], arr.stats, simdScratchBytes(L, arr.gamma != null, arr.beta != null));
  if (p == null) return false;
  const [x, g, b] = p.ins;
  const stats = arr.stats.map(p.host);
  simdForwardLoops(p.eng, L, sp, {x: x as number, y: p.outs[0], g, b, scratch: p.scratch}, mode, epsilon, stats);
  p.finish();
  if (kernelTrace) kernelTrace.simd.forward[at.kind]++;
  return simdSafeStats(mode, stats);
}

/**
 * The fused backward on the SIMD loops: fills arr.dx, arr.dgamma and
 * arr.dbeta. False where the SIMD loops do not cover the layout, the
 * saved statistics are outside their safe range, or no memory can be had.
 */
export function simdBackward(at: Placement, L: FusedLayout, mode: NormMode, arr: FusedGradArrays): boolean {
  if (simdPlanOf(L) == null || !simdSafeStats(mode, arr.stats)) return false;
  const p = place(
      at, [arr.x, arr.dy, arr.gamma], [arr.dx], [...arr.stats, arr.dgamma, arr.dbeta],
      simdBackwardScratchBytes(L, arr.gamma != null));
  if (p == null) return false;
  const [x, dy, g] = p.ins;
  simdBackwardLoops(
      p.eng, L, {x: x as number, dy: dy as number, dx: p.outs[0], g, scratch: p.scratch}, mode,
      arr.stats.map(p.host), arr.dgamma && p.host(arr.dgamma), arr.dbeta && p.host(arr.dbeta));
  p.finish();
  if (kernelTrace) kernelTrace.simd.backward[at.kind]++;
  return true;
}
