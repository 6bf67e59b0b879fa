/**
 * The shared-memory variant of the SIMD module (module_shared.ts), for the
 * threaded wasm build whose heap is a shared WebAssembly.Memory: it is what
 * norm.wat compiles to with a shared memory import, it differs from the
 * module only in that import, every export gives bit-identical results on a
 * shared memory to the module's on an unshared one (same data, every loop
 * and its tails), and the wasm engine takes a shared heap with it.
 */
import {compileSimdWat, moduleSource, sharedModuleSource, SHARED_MODULE_PATH} from '../scripts/simd-wasm';
import {simdEngineForWasm, simdModule, simdSharedModule} from '../src/kernels/simd/engine';
import type {SimdExports} from '../src/kernels/simd/engine';
import {SIMD_WASM_SHARED_BASE64} from '../src/kernels/simd/module_shared';
import {normals, rng} from './reference';

import {readFileSync} from 'node:fs';

test('the committed shared module is what norm.wat compiles to with a shared memory import', async () => {
  const bytes = await compileSimdWat(undefined, {shared: true});
  expect(Buffer.from(SIMD_WASM_SHARED_BASE64, 'base64').equals(Buffer.from(bytes))).toBe(true);
  expect(readFileSync(SHARED_MODULE_PATH, 'utf8')).toBe(sharedModuleSource(bytes));
  // The two differ in the memory import only: same size up to its limits' bytes, same exports.
  const plain = await compileSimdWat();
  expect(Math.abs(bytes.length - plain.length)).toBeLessThanOrEqual(4);
  expect(moduleSource(plain)).not.toBe(sharedModuleSource(bytes));
  const mod = simdSharedModule() as WebAssembly.Module;
  expect(mod).not.toBeNull();
  expect(WebAssembly.Module.exports(mod)).toEqual(WebAssembly.Module.exports(simdModule() as WebAssembly.Module));
  expect(WebAssembly.Module.imports(mod)).toEqual([{module: 'env', name: 'memory', kind: 'memory'}]);
  // An unshared memory cannot be given to it, nor a shared one to the module.
  expect(() => new WebAssembly.Instance(mod, {env: {memory: new WebAssembly.Memory({initial: 1})}})).toThrow();
  const shared = new WebAssembly.Memory({initial: 1, maximum: 4, shared: true});
  expect(() => new WebAssembly.Instance(simdModule() as WebAssembly.Module, {env: {memory: shared}})).toThrow();
});

const PAGES = 64;  // 4 MiB

function instances() {
  const plainMem = new WebAssembly.Memory({initial: PAGES});
  const sharedMem = new WebAssembly.Memory({initial: PAGES, maximum: PAGES, shared: true});
  const plain = new WebAssembly.Instance(simdModule() as WebAssembly.Module, {env: {memory: plainMem}});
  const shared = new WebAssembly.Instance(simdSharedModule() as WebAssembly.Module, {env: {memory: sharedMem}});
  expect(sharedMem.buffer instanceof SharedArrayBuffer).toBe(true);
  return [
    {fns: plain.exports as unknown as SimdExports, buf: plainMem.buffer},
    {fns: shared.exports as unknown as SimdExports, buf: sharedMem.buffer},
  ];
}

test('every export gives bit-identical results on a shared memory', () => {
  const [a, b] = instances();
  const X = 0;
  const DY = 1 << 20;
  const OUT = 2 << 20;
  const SC = 3 << 20;
  const n = 40 * 37;
  const data = normals(rng(5), n, 0.5, 2);
  const dy = normals(rng(6), n, 0, 1);
  const coef = normals(rng(7), 4096, 0.5, 0.3);
  // Per-row info blocks (32 bytes): f64 off, f64 inv, i32 pb = 0 for the gradient loops, and
  // f32 P, I, Q/V, W, i32 pb = 0 for the apply loops; built in each memory the same way.
  const setUp = (buf: ArrayBufferLike) => {
    new Uint8Array(buf).fill(0);
    new Float32Array(buf, X, n).set(data);
    new Float32Array(buf, DY, n).set(dy);
    new Float32Array(buf, SC, 4096).set(coef);
  };
  const infoGrad = (buf: ArrayBufferLike, rows: number) => {
    const f = new Float64Array(buf, SC + 65536, 4 * rows);
    const i = new Int32Array(buf, SC + 65536, 8 * rows);
    for (let r = 0; r < rows; r++) {
      f[4 * r] = 0.5 + r / 100;
      f[4 * r + 1] = 0.5 - r / 1000;
      i[8 * r + 4] = 0;
    }
    return SC + 65536;
  };
  const infoApply = (buf: ArrayBufferLike, rows: number, stride: number) => {
    const f = new Float32Array(buf, SC + 131072, (stride / 4) * rows);
    const i = new Int32Array(buf, SC + 131072, (stride / 4) * rows);
    for (let r = 0; r < rows; r++) {
      const o = (stride / 4) * r;
      f[o] = 0.5 + r / 50;
      f[o + 1] = 0.7;
      f[o + 2] = -0.01 * r;
      if (stride === 32) f[o + 3] = 0.02;
      i[o + (stride === 32 ? 4 : 3)] = 0;
    }
    return SC + 131072;
  };
  // [rows, B] covering the vector loops, their tails and the short-set paths.
  const shapes: Array<[number, number]> = [[40, 37], [37, 40], [20, 74], [74, 20], [8, 185], [1480, 1], [5, 296]];
  const calls: Array<[string, (f: SimdExports, buf: ArrayBufferLike, rows: number, B: number) => void]> = [
    ['rowMoments shift', (f, _b, rows, B) => f.rowMoments(X, rows, B, 1, OUT)],
    ['rowMoments rms', (f, _b, rows, B) => f.rowMoments(X, rows, B, 0, OUT)],
    ['colMoments', (f, _b, rows, B) => f.colMoments(X, rows, B, 1, OUT, OUT + 8 * B, OUT + 16 * B, OUT + 24 * B)],
    ['colMoments rms', (f, _b, rows, B) => f.colMoments(X, rows, B, 0, OUT, OUT + 8 * B, OUT + 16 * B, OUT + 24 * B)],
    ['applyCols', (f, _b, rows, B) => f.applyCols(X, OUT, rows, B, SC, SC + 4 * B, SC + 8 * B)],
    ['applyRows R=1', (f, buf, rows, B) => f.applyRows(X, OUT, rows, B, 1, infoApply(buf, rows, 16), SC, SC + 4 * B)],
    ['applyRows runs', (f, buf, rows, B) => {
      if (B % 37 === 0) f.applyRows(X, OUT, rows, B, 37, infoApply(buf, rows, 16), SC, SC + 4 * B);
    }],
    ['colDySums', (f, _b, rows, B) => f.colDySums(X, DY, rows, B, SC, OUT, OUT + 8 * B)],
    ['applyGradCols', (f, _b, rows, B) => f.applyGradCols(X, DY, OUT, rows, B, SC, SC + 4 * B, SC + 8 * B, SC + 12 * B)],
    ['rowGradSums', (f, buf, rows, B) => f.rowGradSums(X, DY, rows, B, infoGrad(buf, rows), SC, OUT, OUT + 8 * B,
        OUT + 16 * B, OUT + (1 << 19))],
    ['rowRunSums', (f, buf, rows, B) => {
      if (B % 37 === 0) f.rowRunSums(X, DY, rows, B, 37, infoGrad(buf, rows), OUT);
    }],
    ['applyGradRows R=1', (f, buf, rows, B) => f.applyGradRows(X, DY, OUT, rows, B, 1, infoApply(buf, rows, 32), SC)],
    ['applyGradRows runs', (f, buf, rows, B) => {
      if (B % 37 === 0) f.applyGradRows(X, DY, OUT, rows, B, 37, infoApply(buf, rows, 32), SC);
    }],
  ];
  let compared = 0;
  for (const [rows, B] of shapes) {
    for (const [name, call] of calls) {
      for (const m of [a, b]) {
        setUp(m.buf);
        call(m.fns, m.buf, rows, B);
      }
      // The whole memory, byte for byte (outputs, and nothing written elsewhere).
      const same = Buffer.from(new Uint8Array(a.buf)).equals(Buffer.from(new Uint8Array(b.buf)));
      expect(`${name} [${rows}, ${B}]: ${same}`).toBe(`${name} [${rows}, ${B}]: true`);
      compared++;
    }
  }
  expect(compared).toBe(shapes.length * calls.length);
});

test('the wasm engine takes a shared heap (the threaded build) with the shared variant', () => {
  const memory = new WebAssembly.Memory({initial: 4, maximum: 64, shared: true});
  let next = 1024;
  const eng = simdEngineForWasm({wasm: {asm: {memory}, _malloc: (bytes: number) => {
    const p = next;
    next += bytes;
    return p;
  }, _free: () => undefined}});
  expect(eng).not.toBeNull();
  if (!eng) return;
  expect(eng.memory).toBe(memory);
  // Its loops run on that memory: a row's moments.
  const x = normals(rng(8), 64, 3, 0.5);
  const buf = memory.buffer;
  new Float32Array(buf, 0, 64).set(x);
  const out = eng.scratch(16);
  expect(out).toBeGreaterThanOrEqual(1024);
  eng.fns.rowMoments(0, 1, 64, 1, out);
  const [s1, s2] = new Float64Array(memory.buffer, out, 2);
  let mean = 0;
  for (const v of x) mean += v / 64;
  let m2 = 0;
  for (const v of x) m2 += (v - mean) ** 2;
  expect(Math.abs(x[0] + s1 / 64 - mean)).toBeLessThan(1e-12);
  expect(Math.abs(s2 - (s1 * s1) / 64 - m2) / m2).toBeLessThan(1e-6);
});
