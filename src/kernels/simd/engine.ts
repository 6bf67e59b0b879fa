/**
 * Loading the WebAssembly SIMD module (norm.wat, embedded in module.ts) and
 * the memories it runs on:
 *
 * - the wasm backend: an instance importing the backend's own
 *   WebAssembly.Memory (tfjs-backend-wasm's emscripten module exports it as
 *   `wasm.asm.memory`; the threaded build imports it, as `wasm.wasmMemory`), so the loops read x and write y in the heap where
 *   the tensors live; its scratch is one block from the backend's malloc.
 * - the cpu backend: an instance with a memory of its own, which x, gamma
 *   and beta are copied into and y out of.
 *
 * Feature detection: WebAssembly.validate on the module itself (it uses
 * SIMD opcodes, so it fails where SIMD is unavailable). The threaded wasm
 * build (cross-origin isolated pages) has a shared memory, which a module
 * importing an unshared one cannot take: there the instance is of the same
 * loops compiled with a shared memory import (module_shared.ts; validated
 * on its own, since it also needs the threads feature). Where the module
 * cannot be used (no WebAssembly, no SIMD, no shared memories for a shared
 * heap) every function here returns null and the kernels run their JS
 * loops.
 */
import {SIMD_WASM_BASE64} from './module';
import {kernelTrace} from '../trace';
import {SIMD_WASM_SHARED_BASE64} from './module_shared';

/** The module's exports (see norm.wat for what each does). All pointers are byte offsets. */
export interface SimdExports {
  rowMoments(x: number, rows: number, B: number, shift: number, out: number): void;
  colMoments(x: number, n: number, B: number, shift: number, K: number, S1: number, S2: number, Kf: number): void;
  applyCols(x: number, y: number, n: number, B: number, P: number, A: number, C: number): void;
  applyRows(x: number, y: number, rows: number, B: number, runLength: number, info: number, g: number, b: number): void;
  colDySums(x: number, dy: number, n: number, B: number, P: number, D: number, E: number): void;
  applyGradCols(
      x: number, dy: number, dx: number, n: number, B: number, P: number, U: number, V: number, W: number): void;
  rowGradSums(
      x: number, dy: number, rows: number, B: number, info: number, g: number, DG: number, DB: number,
      out: number, tmp: number): void;
  rowRunSums(x: number, dy: number, rows: number, B: number, runLength: number, info: number, out: number): void;
  applyGradRows(
      x: number, dy: number, dx: number, rows: number, B: number, runLength: number, info: number, g: number): void;
}

function decodeBase64(s: string): Uint8Array<ArrayBuffer> {
  const bin = atob(s);
  const out = new Uint8Array(new ArrayBuffer(bin.length));
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

function compile(base64: string): WebAssembly.Module|null {
  try {
    if (typeof WebAssembly === 'object') {
      const bytes = decodeBase64(base64);
      if (WebAssembly.validate(bytes)) return new WebAssembly.Module(bytes);
    }
  } catch {
    // Not this runtime.
  }
  return null;
}

let compiled: WebAssembly.Module|null|undefined;
let compiledShared: WebAssembly.Module|null|undefined;

/** The compiled module, or null where WebAssembly SIMD is unavailable. */
export function simdModule(): WebAssembly.Module|null {
  if (compiled === undefined) compiled = compile(SIMD_WASM_BASE64);
  return compiled;
}

/** The variant importing a shared memory, or null where SIMD or shared memories are unavailable. */
export function simdSharedModule(): WebAssembly.Module|null {
  if (compiledShared === undefined) compiledShared = simdModule() == null ? null : compile(SIMD_WASM_SHARED_BASE64);
  return compiledShared;
}

function isShared(memory: WebAssembly.Memory): boolean {
  return typeof SharedArrayBuffer !== 'undefined' && memory.buffer instanceof SharedArrayBuffer;
}

/** Whether this runtime can run the SIMD module. */
export function simdAvailable(): boolean {
  return simdModule() != null;
}

/** An instance of the module on one memory, with a scratch area in that memory. */
export interface SimdEngine {
  fns: SimdExports;
  memory: WebAssembly.Memory;
  /**
   * A scratch block of at least `bytes` bytes (16-byte aligned); the block
   * stays the engine's until the next call. May grow the memory, which
   * detaches every view taken before: take views after it.
   */
  scratch(bytes: number): number;
}

function instantiate(memory: WebAssembly.Memory): SimdExports|null {
  const mod = isShared(memory) ? simdSharedModule() : simdModule();
  if (mod == null) return null;
  try {
    const inst = new WebAssembly.Instance(mod, {env: {memory}});
    return inst.exports as unknown as SimdExports;
  } catch {
    return null;
  }
}

const PAGE = 65536;

let cpuEngine: SimdEngine|null|undefined;

/** The cpu backend's engine: a memory of its own, scratch from offset 0, grown on demand. */
export function simdEngineForCpu(): SimdEngine|null {
  if (cpuEngine === undefined) {
    cpuEngine = null;
    if (simdModule() != null) {
      const memory = new WebAssembly.Memory({initial: 16});
      const fns = instantiate(memory);
      if (fns) {
        cpuEngine = {
          fns,
          memory,
          scratch(bytes: number) {
            const need = bytes - memory.buffer.byteLength;
            if (need > 0) memory.grow(Math.ceil(need / PAGE));
            return 0;
          },
        };
      }
    }
  }
  return cpuEngine;
}

/**
 * The most memory the cpu engine keeps between calls (64 MiB: enough for a
 * forward and backward of a tensor up to about 21 MiB, e.g. [32, 64, 64, 40]).
 * A WebAssembly.Memory cannot shrink, so a call that needs more runs on a
 * memory of its own, dropped when the call returns.
 */
export const SIMD_CPU_KEEP_BYTES = 64 * 2 ** 20;

/**
 * The cpu engine's memory policy: `keepBytes` (default SIMD_CPU_KEEP_BYTES;
 * tests lower it). What happened to each call is counted only under test
 * (../trace.ts: `simdMemory`).
 */
export const simdCpuMemory = {keepBytes: SIMD_CPU_KEEP_BYTES};

/**
 * A cpu engine with `bytes` of scratch at offset `base`: the kept engine
 * (grown up to SIMD_CPU_KEEP_BYTES), or for a larger call a fresh memory and
 * instance used once; null when WebAssembly memory cannot be had (a
 * RangeError from grow or new Memory): the kernel then runs its JS loops.
 */
export function simdCpuScratch(bytes: number): {eng: SimdEngine, base: number}|null {
  const kept = simdEngineForCpu();
  if (kept == null) return null;
  try {
    if (bytes <= simdCpuMemory.keepBytes) return {eng: kept, base: kept.scratch(bytes)};
    const memory = new WebAssembly.Memory({initial: Math.ceil(bytes / PAGE)});
    const fns = instantiate(memory);
    if (fns == null) return null;
    if (kernelTrace) kernelTrace.simdMemory.temporary++;
    return {eng: {fns, memory, scratch: () => 0}, base: 0};
  } catch (e) {
    if (!(e instanceof RangeError)) throw e;
    if (kernelTrace) kernelTrace.simdMemory.fallbacks++;
    return null;
  }
}

/** What tfjs-backend-wasm's BackendWasm carries: its emscripten module. */
interface WasmModuleLike {
  /** The heap: exported by the unthreaded builds; the threaded build imports it and keeps it as wasmMemory. */
  asm?: {memory?: unknown};
  wasmMemory?: unknown;
  _malloc(bytes: number): number;
  _free(ptr: number): void;
}

const wasmEngines = new WeakMap<object, SimdEngine|null>();

/**
 * The wasm backend's engine: an instance on the backend's own memory (the
 * shared-memory variant for the threaded build), or null where it does not
 * expose one this module can import. The kernels run on the calling thread
 * only, and the scratch block comes from the backend's own malloc (thread
 * safe in the threaded build), so the shared heap needs nothing else.
 */
export function simdEngineForWasm(backend: unknown): SimdEngine|null {
  const wasm = (backend as {wasm?: WasmModuleLike}|null)?.wasm;
  if (wasm == null || typeof wasm !== 'object') return null;
  let eng = wasmEngines.get(wasm);
  if (eng === undefined) {
    eng = null;
    const memory = wasm.asm?.memory ?? wasm.wasmMemory;
    if (memory instanceof WebAssembly.Memory && typeof wasm._malloc === 'function') {
      const fns = instantiate(memory);
      if (fns) {
        let ptr = 0;
        let cap = 0;
        eng = {
          fns,
          memory,
          scratch(bytes: number) {
            if (bytes > cap) {
              if (ptr !== 0) wasm._free(ptr);
              cap = Math.max(bytes, 2 * cap, 4096);
              ptr = wasm._malloc(cap + 16) >>> 0;
              if (ptr === 0) {
                cap = 0;
                throw new Error('tfjs-normalization: wasm malloc failed for the SIMD kernel\'s scratch');
              }
            }
            return ((ptr + 15) & ~15) >>> 0;
          },
        };
      }
    }
    wasmEngines.set(wasm, eng);
  }
  return eng;
}
