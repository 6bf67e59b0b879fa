/**
 * The SIMD forward for each backend's kernel (src/kernels/index.ts):
 * returns false (or null) where the SIMD path does not apply, and the
 * kernel then runs compute.ts's JS loops.
 */
import type {NormMode} from '../../ops/core';
import type {FusedLayout} from '../layout';
import {simdBackward, simdBackwardCovers, simdBackwardScratchBytes} from './backward';
import {simdCpuScratch, simdEngineForWasm} from './engine';
import {simdForward, simdPlanOf, simdScratchBytes} from './forward';

const align16 = (n: number) => (n + 15) & ~15;

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
  const keys = mode === 'rms' ? [0] : mode === 'stdEps' ? [2, 3] : [2];
  for (const k of keys) {
    for (const v of stats[k]) {
      if (v !== 0 && !(v >= 2 ** -40 && v <= 2 ** 40)) return false;
    }
  }
  return true;
}

/** How many forwards each backend ran on the SIMD loops (for tests: which path ran). */
export const simdRuns = {cpu: 0, wasm: 0};
/** How many backwards each backend ran on the SIMD loops. */
export const simdGradRuns = {cpu: 0, wasm: 0};

/**
 * cpu backend: copies x (and gamma, beta) into the module's memory, runs
 * the SIMD forward, fills `stats` and returns a copy of y; null where the
 * SIMD path does not apply.
 *
 * The output array is allocated before the work, not sliced out after it:
 * most of the cpu path's cost is the first touch of that fresh array's
 * pages (a 4 MiB array is about 1000 page faults, 10-13 ms on the 2-core
 * bench machine against about 1.2 ms for the copy in, the loops and the
 * copy out into memory already mapped); allocated first, the allocator
 * hands back recently freed memory far more often (see docs/performance.md).
 */
export function simdForwardCpu(
    L: FusedLayout, mode: NormMode, epsilon: number, x: Float32Array, gamma: Float32Array|null,
    beta: Float32Array|null, stats: Float32Array[]): Float32Array|null {
  const sp = simdPlanOf(L);
  if (sp == null) return null;
  const n4 = align16(4 * L.size);
  const p4 = align16(4 * L.paramSize);
  const gOff = n4;
  const bOff = gOff + (gamma ? p4 : 0);
  const yOff = bOff + (beta ? p4 : 0);
  const sOff = yOff + n4;
  const got = simdCpuScratch(sOff + simdScratchBytes(L, gamma != null, beta != null));
  if (got == null) return null;  // no WebAssembly memory to be had: the JS loops
  const {eng, base} = got;
  const y = new Float32Array(L.size);
  const buf = eng.memory.buffer;
  new Float32Array(buf, base, L.size).set(x);
  if (gamma) new Float32Array(buf, base + gOff, L.paramSize).set(gamma);
  if (beta) new Float32Array(buf, base + bOff, L.paramSize).set(beta);
  simdForward(eng, L, sp, {
    x: base, y: base + yOff, g: gamma ? base + gOff : null, b: beta ? base + bOff : null, scratch: base + sOff,
  }, mode, epsilon, stats);
  simdRuns.cpu++;
  y.set(new Float32Array(buf, base + yOff, L.size));
  return y;
}

/** A tensor of the wasm backend, as the kernel sees it. */
type HeapView = () => Float32Array;

/**
 * wasm backend: runs the SIMD forward in the backend's own heap (x, gamma,
 * beta read in place, y and the statistics written in place). `views`
 * return fresh heap views (taken after the scratch allocation, which can
 * grow the heap). Returns false where the SIMD path does not apply.
 */
export function simdForwardWasm(
    backend: unknown, L: FusedLayout, mode: NormMode, epsilon: number,
    views: {x: HeapView, gamma: HeapView|null, beta: HeapView|null, y: HeapView, stats: HeapView[]}): boolean {
  const sp = simdPlanOf(L);
  if (sp == null) return false;
  const eng = simdEngineForWasm(backend);
  if (eng == null) return false;
  const scratch = eng.scratch(simdScratchBytes(L, views.gamma != null, views.beta != null));
  simdForward(eng, L, sp, {
    x: views.x().byteOffset,
    y: views.y().byteOffset,
    g: views.gamma ? views.gamma().byteOffset : null,
    b: views.beta ? views.beta().byteOffset : null,
    scratch,
  }, mode, epsilon, views.stats.map((v) => v()));
  simdRuns.wasm++;
  return true;
}

/**
 * cpu backend, backward: copies x, dy (and gamma) in, runs the SIMD
 * backward, fills dgamma/dbeta and returns a copy of dx; null where the
 * SIMD backward does not cover the layout.
 */
export function simdBackwardCpu(
    L: FusedLayout, mode: NormMode, x: Float32Array, dy: Float32Array, gamma: Float32Array|null,
    stats: Float32Array[], dgamma: Float32Array|null, dbeta: Float32Array|null): Float32Array|null {
  if (!simdBackwardCovers(L) || !simdSafeStats(mode, stats)) return null;
  const n4 = align16(4 * L.size);
  const dyOff = n4;
  const gOff = 2 * n4;
  const dxOff = gOff + (gamma ? align16(4 * L.paramSize) : 0);
  const sOff = dxOff + n4;
  const got = simdCpuScratch(sOff + simdBackwardScratchBytes(L, gamma != null));
  if (got == null) return null;  // no WebAssembly memory to be had: the JS loops
  const {eng, base} = got;
  const dx = new Float32Array(L.size);
  const buf = eng.memory.buffer;
  new Float32Array(buf, base, L.size).set(x);
  new Float32Array(buf, base + dyOff, L.size).set(dy);
  if (gamma) new Float32Array(buf, base + gOff, L.paramSize).set(gamma);
  simdBackward(eng, L, {x: base, dy: base + dyOff, dx: base + dxOff, g: gamma ? base + gOff : null,
    scratch: base + sOff}, mode, stats, dgamma, dbeta);
  simdGradRuns.cpu++;
  dx.set(new Float32Array(buf, base + dxOff, L.size));
  return dx;
}

/**
 * wasm backend, backward, in the backend's own heap. Returns false where
 * the SIMD backward does not apply.
 */
export function simdBackwardWasm(
    backend: unknown, L: FusedLayout, mode: NormMode,
    views: {x: HeapView, dy: HeapView, gamma: HeapView|null, dx: HeapView, stats: HeapView[],
      dgamma: HeapView|null, dbeta: HeapView|null}): boolean {
  if (!simdBackwardCovers(L)) return false;
  const stats = views.stats.map((v) => v());
  if (!simdSafeStats(mode, stats)) return false;
  const eng = simdEngineForWasm(backend);
  if (eng == null) return false;
  const scratch = eng.scratch(simdBackwardScratchBytes(L, views.gamma != null));
  simdBackward(eng, L, {
    x: views.x().byteOffset,
    dy: views.dy().byteOffset,
    dx: views.dx().byteOffset,
    g: views.gamma ? views.gamma().byteOffset : null,
    scratch,
  }, mode, views.stats.map((v) => v()), views.dgamma ? views.dgamma() : null, views.dbeta ? views.dbeta() : null);
  simdGradRuns.wasm++;
  return true;
}
