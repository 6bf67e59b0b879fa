/**
 * The wasm backend's fused kernels on its SIMD loops, against the same
 * kernels on their JS loops (TFJS_NORMALIZATION_SIMD false), the tf-op path
 * (TFJS_NORMALIZATION_FUSED false) and float64, for every case of
 * ./gpu_fused.ts (GroupNorm, InstanceNorm, LayerNorm, RMSNorm, rmsScaling,
 * keras-contrib's stdEps; row and column layouts; the fidelity cases).
 * Run in the browser page (test/browser/page.ts) by
 * test/browser/threaded.test.ts on the threaded build (cross-origin
 * isolated page) and on the plain SIMD build (a page without COOP/COEP).
 *
 * Which loops ran is seen from outside (test/browser/simd_probe.ts): the
 * calls into the SIMD module's instance on the backend's own heap during
 * the forward and during the backward. The SIMD path's outputs come back
 * digested (length and a 64-bit hash of their float32 bits), so the test
 * compares the two builds bit for bit. The paths are ./gpu_fused.ts's
 * runPath.
 */
import type * as TfModule from '@tensorflow/tfjs';

import {simdCalls, simdInstances} from '../browser/simd_probe';
import {groupSpec, refForward} from '../reference';
import {fusedCases, GpuCase, refGrads, runPath} from './gpu_fused';
import {maxErr, type Lib, type TF} from './suite';

type Tensor = TfModule.Tensor;

const QUANTITIES = ['y', 'dx', 'dgamma', 'dbeta'] as const;
type Quantity = typeof QUANTITIES[number];
/** Per quantity: its length and a 64-bit digest of its float32 bits (two 32-bit FNV-1a hashes). */
export type Outputs = Partial<Record<Quantity, {n: number, digest: string}>>;

function digest(a: Float32Array): string {
  const w = new Uint32Array(a.buffer, a.byteOffset, a.length);
  let h1 = 0x811c9dc5;
  let h2 = 0x01000193;
  for (let i = 0; i < w.length; i++) {
    h1 = Math.imul(h1 ^ w[i], 0x01000193) >>> 0;
    h2 = Math.imul(h2 ^ (w[i] >>> 16 | w[i] << 16), 0x01000197) >>> 0;
  }
  return `${h1.toString(16)}:${h2.toString(16)}`;
}

export interface WasmBuildInfo {
  crossOriginIsolated: boolean;
  sharedArrayBuffer: boolean;
  /** tf.env() flags as the wasm backend read them. */
  simdSupport: boolean;
  multithreadSupport: boolean;
  /** The wasm binaries the page fetched (file names). */
  binaries: string[];
  /** getThreadsCount(): XNNPACK's thread pool, the calling thread included. */
  threads: number;
  /** pthread workers emscripten started (running plus idle), -1 where the build has none. */
  workers: number;
  /** The backend's heap is a SharedArrayBuffer. */
  heapShared: boolean;
}

export interface WasmSimdRecord {
  case: string;
  /** The float64 reference's mode: center, rms, rmsScaling, stdEps. */
  mode: string;
  /** Calls into the SIMD module on the backend's heap: forward, backward (SIMD path). */
  simdForwardCalls: number;
  simdBackwardCalls: number;
  /** Calls into any SIMD instance while the JS-loop and tf-op paths ran (both must be 0). */
  callsWhenSimdOff: number;
  callsWhenFusedOff: number;
  /** The fused forward and backward kernels ran (tf.profile's kernel names), SIMD path. */
  fused: boolean;
  gradFused: boolean;
  /** max err over y, dx, dgamma, dbeta: SIMD path against the JS loops and the tf-op path. */
  errVsJs: number;
  errVsTfop: number;
  /** SIMD path against float64: y, and the gradients (analytic). */
  errVsRef: number;
  errGradVsRef: number;
  /** The tf-op path against float64 (y and the gradients): float32 sums, the least exact of the three. */
  tfopErrVsRef: number;
  /** The SIMD path's outputs, digested (compared across builds by the test). */
  out: Outputs;
  leaked: number;
  error?: string;
}

/** The memory the wasm backend's heap lives in (emscripten: asm.memory, or wasmMemory in the threaded build). */
export function wasmHeap(tf: TF): WebAssembly.Memory|null {
  const wasm = (tf.backend() as unknown as {wasm?: {asm?: {memory?: unknown}, wasmMemory?: unknown}}).wasm;
  const m = wasm?.asm?.memory ?? wasm?.wasmMemory;
  return m instanceof WebAssembly.Memory ? m : null;
}

export async function wasmBuildInfo(tf: TF, getThreadsCount: () => number): Promise<WasmBuildInfo> {
  const wasm = (tf.backend() as unknown as {wasm?: {PThread?: {runningWorkers?: unknown[], unusedWorkers?: unknown[]}}}).wasm;
  const pt = wasm?.PThread;
  const heap = wasmHeap(tf);
  return {
    crossOriginIsolated: globalThis.crossOriginIsolated === true,
    sharedArrayBuffer: typeof SharedArrayBuffer === 'function',
    simdSupport: await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT') as boolean,
    multithreadSupport: await tf.env().getAsync('WASM_HAS_MULTITHREAD_SUPPORT') as boolean,
    binaries: performance.getEntriesByType('resource').map((e) => e.name.split('/').pop() ?? '').filter((n) => n.endsWith('.wasm')),
    threads: getThreadsCount(),
    workers: pt ? (pt.runningWorkers?.length ?? 0) + (pt.unusedWorkers?.length ?? 0) : -1,
    heapShared: heap != null && typeof SharedArrayBuffer === 'function' && heap.buffer instanceof SharedArrayBuffer,
  };
}

type PathResult = Awaited<ReturnType<typeof runPath>>;

/**
 * Beyond ./gpu_fused.ts's cases: one whose tensors (8 MiB each) make the
 * backend's heap (16 MiB at first) grow during the run, so the SIMD loops
 * run on a heap grown under them (a fresh SharedArrayBuffer in the
 * threaded build).
 */
const WASM_CASES: GpuCase[] = (() => {
  const shape = [4, 32, 32, 512];
  const spec = groupSpec(shape, 32, 3, 1e-3);
  return [{
    name: `large gn${JSON.stringify(shape)}g32 (the heap grows)`, shape, paramShape: [512], gamma: true, beta: true, spec,
    op: (lib: Lib, x: Tensor, g?: Tensor, b?: Tensor) => lib.ops.groupNorm(x, {groups: 32, axis: 3, epsilon: 1e-3, gamma: g, beta: b}),
  }];
})();

const worst = (a: PathResult, b: PathResult) => Math.max(...QUANTITIES.map((q) => maxErr(a.out[q], b.out[q])));

/** Every case on the active backend (wasm); `only`: case name prefixes. */
export async function runWasmSimdCheck(tf: TF, lib: Lib, only?: string[]): Promise<WasmSimdRecord[]> {
  const records: WasmSimdRecord[] = [];
  let seed = 500;
  for (const c of [...fusedCases(), ...WASM_CASES]) {
    if (only && !only.some((o) => c.name.startsWith(o))) continue;
    seed += 10;
    const before = tf.memory().numTensors;
    try {
      const heap = wasmHeap(tf);
      const simd = await runPath(tf, lib, c, true, seed, {simd: true, count: () => simdCalls(heap)});
      const js = await runPath(tf, lib, c, true, seed, {simd: false, count: () => simdCalls(null)});
      const tfop = await runPath(tf, lib, c, false, seed, {simd: true, count: () => simdCalls(null)});
      const ref = refForward(c.spec, simd.xv, simd.gv, simd.bv);
      const refG = refGrads(c.spec, simd.xv, simd.dyv, simd.gv, c.beta);
      const vsRef = (r: PathResult, qs: readonly Quantity[]) =>
        Math.max(...qs.map((q) => maxErr(r.out[q], q === 'y' ? ref : refG[q])));
      records.push({
        case: c.name, mode: c.spec.mode, simdForwardCalls: simd.forwardCount, simdBackwardCalls: simd.backwardCount,
        callsWhenSimdOff: js.forwardCount + js.backwardCount, callsWhenFusedOff: tfop.forwardCount + tfop.backwardCount,
        fused: simd.fused, gradFused: simd.gradFused,
        errVsJs: worst(simd, js), errVsTfop: worst(simd, tfop), errVsRef: vsRef(simd, ['y']),
        errGradVsRef: vsRef(simd, ['dx', 'dgamma', 'dbeta']), tfopErrVsRef: vsRef(tfop, QUANTITIES),
        out: Object.fromEntries(QUANTITIES.filter((q) => simd.out[q]).map((q) => {
          const a = simd.out[q] as Float32Array;
          return [q, {n: a.length, digest: digest(a)}];
        })),
        leaked: tf.memory().numTensors - before,
      });
    } catch (e) {
      records.push({
        case: c.name, mode: c.spec.mode, simdForwardCalls: 0, simdBackwardCalls: 0, callsWhenSimdOff: 0, callsWhenFusedOff: 0,
        fused: false, gradFused: false, errVsJs: Infinity, errVsTfop: Infinity, errVsRef: Infinity, errGradVsRef: Infinity,
        tfopErrVsRef: Infinity,
        out: {}, leaked: tf.memory().numTensors - before, error: (e as Error).stack ?? (e as Error).message,
      });
    }
  }
  return records;
}

/** The SIMD instances the page made: shared or not, on the backend's heap or not, and their calls. */
export function simdInstanceSummary(tf: TF): Array<{shared: boolean, onBackendHeap: boolean, calls: number}> {
  const heap = wasmHeap(tf);
  return simdInstances.map((r) => ({
    shared: r.shared, onBackendHeap: heap != null && r.memory === heap,
    calls: Object.values(r.calls).reduce((a, b) => a + b, 0),
  }));
}
