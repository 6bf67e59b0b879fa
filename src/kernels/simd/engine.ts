/**
 * Loading the WebAssembly SIMD module (norm.wat, embedded in module.ts) and
 * the memories it runs on:
 *
 * - the wasm backend: an instance importing the backend's own
 *   WebAssembly.Memory (tfjs-backend-wasm's emscripten module exports it as
 *   `wasm.asm.memory`), so the loops read x and write y in the heap where
 *   the tensors live; its scratch is one block from the backend's malloc.
 * - the cpu backend: an instance with a memory of its own, which x, gamma
 *   and beta are copied into and y out of.
 *
 * Feature detection: WebAssembly.validate on the module itself (it uses
 * SIMD opcodes, so it fails where SIMD is unavailable). Where the module
 * cannot be used (no WebAssembly, no SIMD, a shared memory of the threaded
 * wasm build, which this module's non-shared import cannot take) every
 * function here returns null and the kernels run their JS loops.
 */
import {SIMD_WASM_BASE64} from './module';

/** The module's exports (see norm.wat for what each does). All pointers are byte offsets. */
export interface SimdExports {
  rowMoments(x: number, rows: number, B: number, shift: number, out: number): void;
  colMoments(x: number, n: number, B: number, shift: number, K: number, S1: number, S2: number): void;
  applyCols(x: number, y: number, n: number, B: number, P: number, A: number, C: number): void;
  applyRows(x: number, y: number, rows: number, B: number, R: number, info: number, g: number, b: number): void;
  colDySums(x: number, dy: number, n: number, B: number, P: number, D: number, E: number): void;
  applyGradCols(
      x: number, dy: number, dx: number, n: number, B: number, P: number, U: number, V: number, W: number): void;
  rowGradSums(
      x: number, dy: number, rows: number, B: number, info: number, g: number, DG: number, DB: number,
      out: number): void;
  rowRunSums(x: number, dy: number, rows: number, B: number, R: number, info: number, out: number): void;
  applyGradRows(
      x: number, dy: number, dx: number, rows: number, B: number, R: number, info: number, g: number): void;
}

function decodeBase64(s: string): Uint8Array<ArrayBuffer> {
  const bin = atob(s);
  const out = new Uint8Array(new ArrayBuffer(bin.length));
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

let compiled: WebAssembly.Module|null|undefined;

/** The compiled module, or null where WebAssembly SIMD is unavailable. */
export function simdModule(): WebAssembly.Module|null {
  if (compiled === undefined) {
    compiled = null;
    try {
      if (typeof WebAssembly === 'object') {
        const bytes = decodeBase64(SIMD_WASM_BASE64);
        if (WebAssembly.validate(bytes)) compiled = new WebAssembly.Module(bytes);
      }
    } catch {
      compiled = null;
    }
  }
  return compiled;
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
  const mod = simdModule();
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

/** What tfjs-backend-wasm's BackendWasm carries: its emscripten module. */
interface WasmModuleLike {
  asm?: {memory?: unknown};
  _malloc(bytes: number): number;
  _free(ptr: number): void;
}

const wasmEngines = new WeakMap<object, SimdEngine|null>();

/**
 * The wasm backend's engine: an instance on the backend's own memory, or
 * null where it does not expose one this module can import.
 */
export function simdEngineForWasm(backend: unknown): SimdEngine|null {
  const wasm = (backend as {wasm?: WasmModuleLike}|null)?.wasm;
  if (wasm == null || typeof wasm !== 'object') return null;
  let eng = wasmEngines.get(wasm);
  if (eng === undefined) {
    eng = null;
    const memory = wasm.asm?.memory;
    const shared = typeof SharedArrayBuffer !== 'undefined' && memory instanceof WebAssembly.Memory &&
        memory.buffer instanceof SharedArrayBuffer;
    if (memory instanceof WebAssembly.Memory && !shared && typeof wasm._malloc === 'function') {
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
