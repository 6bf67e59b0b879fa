/**
 * Watching the package's SIMD module from outside (the page's half of
 * test/browser/threaded.test.ts; the built package exports no counters):
 * {@link installSimdProbe} wraps `WebAssembly.Instance` so that every
 * instance of a module with the SIMD module's exports (src/kernels/simd/
 * engine.ts's SimdExports) is recorded with the memory it was given and a
 * count of calls per export. Installed by the page (`?probe=1`) before any
 * kernel runs, since the engine instantiates the module once per backend.
 * Other modules (tfjs's own binaries are instantiated with
 * WebAssembly.instantiate anyway) pass through untouched.
 */

/** The exports that identify the SIMD module (norm.wat). */
export const SIMD_EXPORTS = [
  'rowMoments', 'colMoments', 'applyCols', 'applyRows', 'colDySums', 'applyGradCols', 'rowGradSums', 'rowRunSums',
  'applyGradRows',
] as const;

export interface SimdInstanceRecord {
  memory: WebAssembly.Memory;
  /** The memory's buffer is a SharedArrayBuffer (the shared-memory variant was instantiated). */
  shared: boolean;
  calls: Record<string, number>;
}

export const simdInstances: SimdInstanceRecord[] = [];

let installed = false;

export function installSimdProbe(): void {
  if (installed) return;
  installed = true;
  const Original = WebAssembly.Instance;
  const wrapped = new Proxy(Original, {
    construct(target, args: [WebAssembly.Module, WebAssembly.Imports?], newTarget) {
      const inst = Reflect.construct(target, args, newTarget) as WebAssembly.Instance;
      const [mod, imports] = args;
      const names = new Set(WebAssembly.Module.exports(mod).map((e) => e.name));
      const memory = (imports?.env as {memory?: unknown}|undefined)?.memory;
      if (!SIMD_EXPORTS.every((n) => names.has(n)) || !(memory instanceof WebAssembly.Memory)) return inst;
      const rec: SimdInstanceRecord = {
        memory, shared: typeof SharedArrayBuffer === 'function' && memory.buffer instanceof SharedArrayBuffer, calls: {},
      };
      simdInstances.push(rec);
      const exports: Record<string, unknown> = {...inst.exports};
      for (const n of SIMD_EXPORTS) {
        const f = inst.exports[n] as (...a: number[]) => void;
        rec.calls[n] = 0;
        exports[n] = (...a: number[]) => {
          rec.calls[n]++;
          return f(...a);
        };
      }
      // What the engine reads of an instance: its exports.
      return {exports: Object.freeze(exports)};
    },
  });
  (WebAssembly as {Instance: typeof WebAssembly.Instance}).Instance = wrapped;
}

/** Total calls into instances on `memory` (null: on any memory). */
export function simdCalls(memory: WebAssembly.Memory|null): number {
  let n = 0;
  for (const r of simdInstances) {
    if (memory == null || r.memory === memory) n += Object.values(r.calls).reduce((a, b) => a + b, 0);
  }
  return n;
}
