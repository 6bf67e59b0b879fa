/**
 * The threaded wasm build in headless Chromium: the page served with
 * COOP/COEP is cross-origin isolated, so tfjs-backend-wasm loads
 * tfjs-backend-wasm-threaded-simd.wasm, whose heap is a shared
 * WebAssembly.Memory, and runs a thread pool; the package's fused kernels
 * must still run the SIMD module there (its shared-memory variant,
 * src/kernels/simd/module_shared.ts) and give the numbers the unthreaded
 * SIMD build gives (the same page served without COOP/COEP).
 *
 * Which loops ran is watched from outside the package
 * (./simd_probe.ts: calls into the SIMD module's instance on the backend's
 * heap); the cases are test/parity/gpu_fused.ts's (GroupNorm,
 * InstanceNorm, LayerNorm, RMSNorm, rmsScaling, stdEps; row and column
 * layouts; mean 1e3 / std 1e-2), forward and backward (dx, dgamma, dbeta),
 * run by test/parity/wasm_simd.ts.
 *
 * No Chromium: one loud line and the suite is skipped; REQUIRE_BROWSER=1
 * makes that a failure (./chromium.ts). Where Chromium runs, a page that is
 * not cross-origin isolated, has no SharedArrayBuffer, loads another
 * binary or runs one thread fails the tests: nothing here is skipped.
 */
import type {WasmBuildInfo, WasmSimdRecord} from '../parity/wasm_simd';
import {chromiumOrSkip, NO_CHROMIUM_MESSAGE} from './chromium';
import type {PageApi} from './page';
import {browserSession, type PageWindow} from './session';

type SimdRun = Awaited<ReturnType<PageApi['wasmSimd']>>;

/** The SIMD path against the tf-op path, the JS loops (max |a - b| / max(1, |b|)) and float64. */
const VS_PATHS_TOL = 1e-5;
const VS_F64_TOL = 2e-5;

/**
 * tfjs sizes the threaded build's pool at navigator.hardwareConcurrency / 2
 * (1 on a 2-core machine, whatever setThreadsCount asks): the page reports
 * 4 cores (`cores=4`) and asks for 2 threads.
 */
const THREADED = '?probe=1&cores=4&threads=2';
const UNTHREADED = '?isolated=0&probe=1';

const exe = chromiumOrSkip();

if (!exe) {
  test.skip(NO_CHROMIUM_MESSAGE, () => undefined);
}

(exe ? describe : describe.skip)('the threaded wasm build (headless Chromium, cross-origin isolated)', () => {
  const {open} = browserSession(exe as string);
  const runs = new Map<string, Promise<SimdRun>>();

  const build = async (query: string): Promise<WasmBuildInfo> =>
    (await open(query)).evaluate(() => (window as unknown as PageWindow).tfjsNormTest.wasmBuild());

  /** The whole check on one page, once (two tests read it). */
  function simdRun(query: string): Promise<SimdRun> {
    let r = runs.get(query);
    if (!r) {
      r = open(query).then((page) => page.evaluate(() => (window as unknown as PageWindow).tfjsNormTest.wasmSimd()));
      runs.set(query, r);
    }
    return r;
  }

  test('with COOP/COEP: cross-origin isolated, SharedArrayBuffer, tfjs loads the threaded SIMD binary, a shared heap, more than one thread', async () => {
    const info = await build(THREADED);
    process.stderr.write(`[chromium${THREADED}] wasm build: ${JSON.stringify(info)}\n`);
    expect(info).toEqual({
      crossOriginIsolated: true, sharedArrayBuffer: true, simdSupport: true, multithreadSupport: true,
      binaries: ['tfjs-backend-wasm-threaded-simd.wasm'], threads: 2, workers: info.workers, heapShared: true,
    });
    // Emscripten's pthread workers: the pool's second thread is one of them.
    expect(info.workers).toBeGreaterThanOrEqual(1);
  }, 120000);

  test('without COOP/COEP: not isolated, no SharedArrayBuffer, the unthreaded SIMD binary, an unshared heap', async () => {
    const info = await build(UNTHREADED);
    process.stderr.write(`[chromium${UNTHREADED}] wasm build: ${JSON.stringify(info)}\n`);
    expect(info).toEqual({
      crossOriginIsolated: false, sharedArrayBuffer: false, simdSupport: true, multithreadSupport: false,
      binaries: ['tfjs-backend-wasm-simd.wasm'], threads: 1, workers: -1, heapShared: false,
    });
  }, 120000);

  test.each([['threaded', THREADED], ['unthreaded', UNTHREADED]])(
      '%s build: every case runs the SIMD module on the backend\'s heap, forward and backward; the JS loops and the tf-op path do not; ' +
      `SIMD = JS loops within ${VS_PATHS_TOL}, = tf-op path within ${VS_PATHS_TOL} (or twice its float32 error), within ${VS_F64_TOL} of float64; no leaks`,
      async (name, query) => {
        const {records, instances} = await simdRun(query);
        const shared = name === 'threaded';
        process.stderr.write(`[chromium${query}] ${records.length} cases; SIMD instances ${JSON.stringify(instances)}; ` +
            `max err vs JS loops ${Math.max(...records.map((r) => r.errVsJs)).toExponential(2)}, ` +
            `vs tf-op path ${Math.max(...records.map((r) => r.errVsTfop)).toExponential(2)} ` +
            `(tf-op path vs float64 ${Math.max(...records.map((r) => r.tfopErrVsRef)).toExponential(2)}), ` +
            `y vs float64 ${Math.max(...records.map((r) => r.errVsRef)).toExponential(2)}, ` +
            `gradients vs float64 ${Math.max(...records.map((r) => r.errGradVsRef)).toExponential(2)}\n`);
        // One instance, of the variant the heap needs, on the backend's own heap.
        expect(instances.map((i) => [i.shared, i.onBackendHeap])).toEqual([[shared, true]]);
        expect(records.length).toBeGreaterThanOrEqual(18);
        // Every mode family of the package.
        for (const prefix of ['gn', 'in', 'ln', 'rms', 'contribIN', 'fidelity ln', 'fidelity gn', 'large gn']) {
          expect([prefix, records.some((r) => r.case.startsWith(prefix))]).toEqual([prefix, true]);
        }
        expect(new Set(records.map((r) => r.mode))).toEqual(new Set(['center', 'rms', 'rmsScaling', 'stdEps']));
        for (const r of records) {
          expect([r.case, r.error, r.fused, r.gradFused, r.leaked]).toEqual([r.case, undefined, true, true, 0]);
          expect([r.case, r.simdForwardCalls > 0, r.simdBackwardCalls > 0]).toEqual([r.case, true, true]);
          expect([r.case, r.callsWhenSimdOff, r.callsWhenFusedOff]).toEqual([r.case, 0, 0]);
          // The tf-op path sums in float32: where it is further than VS_PATHS_TOL from float64 itself
          // (1e-4 on the large case's sets of 16384), twice its own error.
          expect([r.case, r.errVsJs <= VS_PATHS_TOL, r.errVsTfop <= Math.max(VS_PATHS_TOL, 2 * r.tfopErrVsRef)])
              .toEqual([r.case, true, true]);
          expect([r.case, r.errVsRef <= VS_F64_TOL, r.errGradVsRef <= VS_F64_TOL]).toEqual([r.case, true, true]);
        }
      }, 240000);

  test('the threaded build gives the unthreaded build\'s numbers exactly: y, dx, dgamma, dbeta of every case', async () => {
    const [threaded, unthreaded] = [await simdRun(THREADED), await simdRun(UNTHREADED)];
    const byCase = new Map<string, WasmSimdRecord>(unthreaded.records.map((r) => [r.case, r]));
    expect(threaded.records.map((r) => r.case)).toEqual(unthreaded.records.map((r) => r.case));
    let values = 0;
    for (const r of threaded.records) {
      const u = byCase.get(r.case) as WasmSimdRecord;
      // Every quantity's float32 bits (length and digest).
      expect([r.case, r.out]).toEqual([r.case, u.out]);
      // The same calls into the module (same loops, same stretches).
      expect([r.case, r.simdForwardCalls, r.simdBackwardCalls]).toEqual([r.case, u.simdForwardCalls, u.simdBackwardCalls]);
      values += Object.values(r.out).reduce((a, o) => a + (o?.n ?? 0), 0);
    }
    expect(values).toBeGreaterThan(4e6);
  }, 240000);
});
