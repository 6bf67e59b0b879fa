/**
 * The SIMD forward for each backend's kernel (src/kernels/index.ts):
 * returns false (or null) where the SIMD path does not apply, and the
 * kernel then runs compute.ts's JS loops.
 */
import type {NormMode} from '../../ops/core';
import type {FusedLayout} from '../layout';
import {simdEngineForCpu, simdEngineForWasm} from './engine';
import {simdForward, simdPlanOf, simdScratchBytes} from './forward';

const align16 = (n: number) => (n + 15) & ~15;

/** How many forwards each backend ran on the SIMD loops (for tests: which path ran). */
export const simdRuns = {cpu: 0, wasm: 0};

/**
 * cpu backend: copies x (and gamma, beta) into the module's memory, runs
 * the SIMD forward, fills `stats` and returns a copy of y; null where the
 * SIMD path does not apply.
 */
export function simdForwardCpu(
    L: FusedLayout, mode: NormMode, epsilon: number, x: Float32Array, gamma: Float32Array|null,
    beta: Float32Array|null, stats: Float32Array[]): Float32Array|null {
  const sp = simdPlanOf(L);
  if (sp == null) return null;
  const eng = simdEngineForCpu();
  if (eng == null) return null;
  const n4 = align16(4 * L.size);
  const p4 = align16(4 * L.paramSize);
  const gOff = n4;
  const bOff = gOff + (gamma ? p4 : 0);
  const yOff = bOff + (beta ? p4 : 0);
  const sOff = yOff + n4;
  const base = eng.scratch(sOff + simdScratchBytes(L, gamma != null, beta != null));
  const buf = eng.memory.buffer;
  new Float32Array(buf, base, L.size).set(x);
  if (gamma) new Float32Array(buf, base + gOff, L.paramSize).set(gamma);
  if (beta) new Float32Array(buf, base + bOff, L.paramSize).set(beta);
  simdForward(eng, L, sp, {
    x: base, y: base + yOff, g: gamma ? base + gOff : null, b: beta ? base + bOff : null, scratch: base + sOff,
  }, mode, epsilon, stats);
  simdRuns.cpu++;
  return new Float32Array(buf, base + yOff, L.size).slice();
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
