/**
 * Test counters: which kernel paths ran. Not part of the package
 * (src/index.ts does not export this file, and nothing in it installs the
 * counters): `kernelTrace` is null there and the kernels count nothing. A
 * test reaches this file by its src/ path and calls
 * {@link installKernelTrace}; from then on, in that test file's module
 * registry, the kernels count their calls into the returned object.
 */

/** The counters, by kernel family. */
export interface KernelTrace {
  /**
   * Calls that ran on the SIMD loops (src/kernels/simd/run.ts), by
   * direction and by where their arrays lived ('copy': the cpu backend's
   * arrays, 'view': the wasm backend's heap).
   */
  simd: {forward: {copy: number, view: number}, backward: {copy: number, view: number}};
  /**
   * The cpu engine's memory (src/kernels/simd/engine.ts): calls that ran on
   * a memory of their own (`temporary`), calls that fell back to the JS
   * loops for want of memory (`fallbacks`).
   */
  simdMemory: {temporary: number, fallbacks: number};
  /**
   * The 'tensorflow' kernels (src/kernels/tensorflow.ts): forwards and
   * backwards that ran (and did not decline), declines, and the extra
   * passes of the moments around a mean found.
   */
  tensorflow: {forward: number, backward: number, declined: number, extraPasses: number};
}

/** The installed counters; null (nothing counts) until a test installs them. */
export let kernelTrace: KernelTrace|null = null;

/** Installs the counters (once; later calls return the same object) and returns them. */
export function installKernelTrace(): KernelTrace {
  if (kernelTrace == null) {
    kernelTrace = {
      simd: {forward: {copy: 0, view: 0}, backward: {copy: 0, view: 0}},
      simdMemory: {temporary: 0, fallbacks: 0},
      tensorflow: {forward: 0, backward: 0, declined: 0, extraPasses: 0},
    };
  }
  return kernelTrace;
}
