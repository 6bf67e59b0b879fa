/**
 * The WebAssembly SIMD module of the fused forward (src/kernels/simd):
 * the committed binary is what its source compiles to; the engines and
 * their fallbacks; memory growth between calls; a layout the SIMD loops do
 * not cover. Every op, mode and layout against the tf-op path, on both
 * loops and both backends, is in test/kernels.test.ts.
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';

import {compileSimdWat, moduleSource, MODULE_PATH} from '../scripts/simd-wasm';
import {ops} from '../src';
import {FUSED_FLAG, FUSED_NORM_KERNEL, SIMD_FLAG} from '../src/kernels/index';
import {MODES} from '../src/kernels/contract';
import {layoutOf} from '../src/kernels/layout';
import {
  SIMD_CPU_KEEP_BYTES, simdAvailable, simdCpuMemory, simdEngineForCpu, simdEngineForWasm, SimdExports, simdModule,
} from '../src/kernels/simd/engine';
import {simdPlanOf} from '../src/kernels/simd/forward';
import {SIMD_WASM_BASE64} from '../src/kernels/simd/module';
import {installKernelTrace} from '../src/kernels/trace';
import {NormPlan, normalize} from '../src/ops/core';
import {expectClose, expectNoLeakSync, withFlags} from './helpers';
import {normals, rng} from './reference';

import {readFileSync} from 'node:fs';

test('the committed module is what norm.wat compiles to', async () => {
  const bytes = await compileSimdWat();
  expect(Buffer.from(SIMD_WASM_BASE64, 'base64').equals(Buffer.from(bytes))).toBe(true);
  // And module.ts is exactly what `npm run build:simd` writes.
  expect(readFileSync(MODULE_PATH, 'utf8')).toBe(moduleSource(bytes));
});

test('the module validates, uses SIMD, and exports its loops', () => {
  expect(simdAvailable()).toBe(true);
  const mod = simdModule() as WebAssembly.Module;
  expect(WebAssembly.Module.exports(mod).map((e) => e.name).sort())
      .toEqual([
        'applyCols', 'applyGradCols', 'applyGradRows', 'applyRows', 'colDySums', 'colMoments', 'rowGradSums',
        'rowMoments', 'rowRunSums',
      ]);
  expect(WebAssembly.Module.imports(mod)).toEqual([{module: 'env', name: 'memory', kind: 'memory'}]);
  // It carries SIMD opcodes (prefix 0xfd), so where SIMD is unavailable
  // WebAssembly.validate rejects it and the kernels keep their JS loops.
  const bytes = Buffer.from(SIMD_WASM_BASE64, 'base64');
  expect(bytes.includes(0xfd)).toBe(true);
});

/**
 * colMoments as norm.wat documents it, in JS with float32 rounding at each
 * step (Math.fround), per column: the shift K (the mean of the first 8 rows
 * in f32, or 0), the f32 sums of d = x - K and d^2 over blocks of 16 rows,
 * each added into the f64 totals; a group of 8 columns whose totals are not
 * finite or whose mean square is below n 2^-96, the columns left after the
 * last group of 8, and every column when n < 16, in f64 around K = x[0].
 */
function colMomentsRef(x: Float32Array, n: number, B: number, shift: boolean) {
  const f = Math.fround;
  const K = new Float64Array(B);
  const S1 = new Float64Array(B);
  const S2 = new Float64Array(B);
  const f64 = (j: number) => {
    K[j] = shift ? x[j] : 0;
    let s = 0;
    let q = 0;
    for (let r = 0; r < n; r++) {
      const e = x[r * B + j] - K[j];
      s += e;
      q += e * e;
    }
    S1[j] = s;
    S2[j] = q;
  };
  const B8 = n < 16 ? 0 : B - (B % 8);
  for (let j0 = 0; j0 < B8; j0 += 8) {
    let bad = false;
    for (let j = j0; j < j0 + 8; j++) {
      let k = 0;
      if (shift) {
        k = x[j];
        for (let r = 1; r < 8; r++) k = f(k + x[r * B + j]);
        k = f(k * 0.125);
      }
      K[j] = k;
      for (let r0 = 0; r0 < n; r0 += 16) {
        let a = 0;
        let b = 0;
        for (let r = r0; r < Math.min(n, r0 + 16); r++) {
          const d = f(x[r * B + j] - k);
          a = f(a + d);
          b = f(b + f(d * d));
        }
        S1[j] += a;
        S2[j] += b;
      }
      bad ||= !(Math.abs(S1[j]) < Infinity) || !(S2[j] < Infinity) || S2[j] < n * 2 ** -96;
    }
    if (bad) for (let j = j0; j < j0 + 8; j++) f64(j);
  }
  for (let j = B8; j < B; j++) f64(j);
  return {K, S1, S2};
}

test('colMoments and applyCols equal their float32 arithmetic in JS bit for bit, row blocks and column tails included', () => {
  const memory = new WebAssembly.Memory({initial: 64});
  const fns = new WebAssembly.Instance(simdModule() as WebAssembly.Module, {env: {memory}}).exports as unknown as
      {colMoments: SimdExports['colMoments'], applyCols: SimdExports['applyCols']};
  const X = 1024;
  const Y = 1 << 20;
  const W = 2 << 20;
  const rand = rng(91);
  // [n, B]: whole and partial blocks of 16 rows (a short last block, one
  // row after the blocks, fewer than 16 rows: f64 only), groups of 8
  // columns and tails of 1 to 7 (applyCols: groups of 16, 8, 4 and single columns).
  const shapes: Array<[number, number]> =
      [[16, 8], [35, 30], [17, 64], [33, 128], [5, 19], [40, 37], [100, 13], [48, 3], [1, 24], [64, 1]];
  let checked = 0;
  for (const [n, B] of shapes) {
    for (const variant of ['normal', 'tiny group', 'overflowing group'] as const) {
      const x = normals(rand, n * B, 3, 2);
      // A group of 8 columns whose f32 sums cannot be used: squares below 2^-96, or overflowing f32.
      if (variant !== 'normal' && B >= 8) {
        for (let r = 0; r < n; r++) for (let j = 0; j < 8; j++) x[r * B + j] = variant === 'tiny group' ? x[r * B + j] * 1e-30 : (r % 2 ? -3e38 : 3e38);
      }
      new Float32Array(memory.buffer, X, n * B).set(x);
      for (const shift of [true, false]) {
        new Uint8Array(memory.buffer, W, 32 * B).fill(0xff);
        fns.colMoments(X, n, B, shift ? 1 : 0, W, W + 8 * B, W + 16 * B, W + 24 * B);
        const got = Array.from(new Float64Array(memory.buffer, W, 3 * B));
        const ref = colMomentsRef(x, n, B, shift);
        const want = [...ref.K, ...ref.S1, ...ref.S2];
        const diff = got.flatMap((v, i) => (Object.is(v, want[i]) ? [] : [`[${i}] ${v} vs ${want[i]}`]));
        expect(`colMoments [${n}, ${B}] ${variant} shift=${shift}: ${diff.slice(0, 3).join(', ')}`)
            .toBe(`colMoments [${n}, ${B}] ${variant} shift=${shift}: `);
        checked++;
      }
      const coef = normals(rand, 3 * B, 0.5, 1);
      new Float32Array(memory.buffer, W, 3 * B).set(coef);
      const guard = n * B;
      new Float32Array(memory.buffer, Y, guard + 4).fill(7);
      fns.applyCols(X, Y, n, B, W, W + 4 * B, W + 8 * B);
      const y = new Float32Array(memory.buffer, Y, guard + 4);
      const f = Math.fround;
      const diff: string[] = [];
      for (let i = 0; i < n * B; i++) {
        const j = i % B;
        const want = f(f(f(x[i] - coef[j]) * coef[B + j]) + coef[2 * B + j]);
        if (!Object.is(y[i], want)) diff.push(`[${i}] ${y[i]} vs ${want}`);
      }
      for (let i = guard; i < guard + 4; i++) if (y[i] !== 7) diff.push(`wrote past the end at ${i}`);
      expect(`applyCols [${n}, ${B}] ${variant}: ${diff.slice(0, 3).join(', ')}`).toBe(`applyCols [${n}, ${B}] ${variant}: `);
      checked++;
    }
  }
  expect(checked).toBe(shapes.length * 3 * 3);
});

/**
 * colDySums as norm.wat documents it, in JS with float32 rounding at each
 * step (Math.fround), per column: the f32 sums of dy and dy * (x - P) over
 * blocks of 16 rows, each added into the f64 totals D and E; a group of 8
 * columns where a total is not finite or |E| is below n 2^-96, the columns
 * left after the last group of 8, and every column when n < 16, in f64.
 */
function colDySumsRef(x: Float32Array, dy: Float32Array, n: number, B: number, P: Float32Array) {
  const f = Math.fround;
  const D = new Float64Array(B);
  const E = new Float64Array(B);
  const f64 = (j: number) => {
    let d = 0;
    let e = 0;
    for (let r = 0; r < n; r++) {
      d += dy[r * B + j];
      e += dy[r * B + j] * (x[r * B + j] - P[j]);
    }
    D[j] = d;
    E[j] = e;
  };
  const B8 = n < 16 ? 0 : B - (B % 8);
  for (let j0 = 0; j0 < B8; j0 += 8) {
    let bad = false;
    for (let j = j0; j < j0 + 8; j++) {
      for (let r0 = 0; r0 < n; r0 += 16) {
        let a = 0;
        let b = 0;
        for (let r = r0; r < Math.min(n, r0 + 16); r++) {
          const g = dy[r * B + j];
          a = f(a + g);
          b = f(b + f(g * f(x[r * B + j] - P[j])));
        }
        D[j] += a;
        E[j] += b;
      }
      bad ||= !(Math.abs(D[j]) < Infinity) || !(Math.abs(E[j]) < Infinity) || Math.abs(E[j]) < n * 2 ** -96;
    }
    if (bad) for (let j = j0; j < j0 + 8; j++) f64(j);
  }
  for (let j = B8; j < B; j++) f64(j);
  return [...D, ...E];
}

test('colDySums and applyGradCols equal their float32 arithmetic in JS bit for bit, row blocks and column tails included', () => {
  const memory = new WebAssembly.Memory({initial: 64});
  const fns = new WebAssembly.Instance(simdModule() as WebAssembly.Module, {env: {memory}}).exports as unknown as
      {colDySums: SimdExports['colDySums'], applyGradCols: SimdExports['applyGradCols']};
  const X = 1024;
  const DY = 1 << 20;
  const DX = 2 << 20;
  const W = 3 << 20;
  const rand = rng(92);
  // [n, B]: whole and partial blocks of 16 rows (a short last block, one
  // row after the blocks, fewer than 16 rows: colDySums in f64 only);
  // colDySums: groups of 8 columns and tails of 1 to 7; applyGradCols:
  // groups of 12 (then 8, 4 and single columns), e.g. 30 = 12 + 12 + 4 + 2,
  // 20 = 12 + 8, 64 = 5 x 12 + 4, 128 = 10 x 12 + 8.
  const shapes: Array<[number, number]> =
      [[16, 8], [35, 30], [17, 64], [33, 128], [5, 19], [40, 37], [100, 13], [48, 3], [1, 24], [64, 1], [31, 20], [18, 12]];
  const variants = ['normal', 'tiny dy group', 'overflowing group', 'zero dy group'] as const;
  let checked = 0;
  for (const [n, B] of shapes) {
    for (const variant of variants) {
      const x = normals(rand, n * B, 3, 2);
      const dy = normals(rand, n * B);
      // A group of 8 columns whose f32 sums cannot be used: |E| below n 2^-96
      // (products that may have underflowed, or all zero), or overflowing f32.
      if (variant !== 'normal' && B >= 8) {
        for (let r = 0; r < n; r++) {
          for (let j = 0; j < 8; j++) {
            const i = r * B + j;
            dy[i] = variant === 'tiny dy group' ? dy[i] * 1e-30 : variant === 'zero dy group' ? 0 : (r % 2 ? -3e38 : 3e38);
          }
        }
      }
      new Float32Array(memory.buffer, X, n * B).set(x);
      new Float32Array(memory.buffer, DY, n * B).set(dy);
      const P = normals(rand, B, 3, 0.5);
      new Float32Array(memory.buffer, W, B).set(P);
      const out = W + 4096;
      new Uint8Array(memory.buffer, out, 16 * B + 32).fill(0xff);
      fns.colDySums(X, DY, n, B, W, out, out + 8 * B);
      const got = Array.from(new Float64Array(memory.buffer, out, 2 * B));
      const want = colDySumsRef(x, dy, n, B, P);
      const diff = got.flatMap((v, i) => (Object.is(v, want[i]) ? [] : [`[${i}] ${v} vs ${want[i]}`]));
      if (!new Uint8Array(memory.buffer, out + 16 * B, 32).every((v) => v === 0xff)) diff.push('wrote past E');
      expect(`colDySums [${n}, ${B}] ${variant}: ${diff.slice(0, 3).join(', ')}`).toBe(`colDySums [${n}, ${B}] ${variant}: `);
      checked++;

      // applyGradCols: coefficients P, U, V, W (f32 arrays of B at 16-byte aligned offsets).
      const coef = normals(rand, 4 * B, 0.5, 1);
      const cp = (k: number) => W + k * 16 * Math.ceil(B / 4);
      for (let k = 0; k < 4; k++) new Float32Array(memory.buffer, cp(k), B).set(coef.subarray(k * B, (k + 1) * B));
      const guard = n * B;
      new Float32Array(memory.buffer, DX, guard + 4).fill(7);
      fns.applyGradCols(X, DY, DX, n, B, cp(0), cp(1), cp(2), cp(3));
      const dx = new Float32Array(memory.buffer, DX, guard + 4);
      const f = Math.fround;
      const dd: string[] = [];
      for (let i = 0; i < n * B; i++) {
        const j = i % B;
        const wantDx = f(f(f(dy[i] * coef[B + j]) + f(f(x[i] - coef[j]) * coef[2 * B + j])) + coef[3 * B + j]);
        if (!Object.is(dx[i], wantDx)) dd.push(`[${i}] ${dx[i]} vs ${wantDx}`);
      }
      for (let i = guard; i < guard + 4; i++) if (dx[i] !== 7) dd.push(`wrote past the end at ${i}`);
      expect(`applyGradCols [${n}, ${B}] ${variant}: ${dd.slice(0, 3).join(', ')}`).toBe(`applyGradCols [${n}, ${B}] ${variant}: `);
      checked++;
    }
  }
  expect(checked).toBe(shapes.length * variants.length * 2);
});

test('engines: no wasm engine for a backend without an importable memory', () => {
  expect(simdEngineForWasm(null)).toBeNull();
  expect(simdEngineForWasm({})).toBeNull();
  expect(simdEngineForWasm({wasm: {asm: {}, _malloc: () => 0, _free: () => undefined}})).toBeNull();
  // The threaded wasm build's shared memory: test/simd_shared.test.ts.
});

/** Which SIMD loops ran, and the cpu engine's memory calls (test-only counters, installed here). */
const trace = installKernelTrace();

/** Where each backend keeps its arrays for the SIMD loops (trace.simd's keys). */
const PLACEMENT = {cpu: 'copy', wasm: 'view'} as const;

describe.each([['cpu'], ['wasm']] as const)('%s backend', (backend) => {
  beforeAll(async () => {
    expect(await tf.setBackend(backend)).toBe(true);
  });
  afterAll(async () => {
    await tf.setBackend('cpu');
  });

  test('the wasm backend runs the module on its own heap', () => {
    if (backend !== 'wasm') return;
    const eng = simdEngineForWasm(tf.backend());
    expect(eng).not.toBeNull();
    const heap = (tf.backend() as unknown as {wasm: {HEAPU8: Uint8Array}}).wasm.HEAPU8;
    expect(eng?.memory.buffer).toBe(heap.buffer);
  });

  test('small, large, small: memory growth between calls keeps results equal to the JS loops', () => {
    const shapes: Array<[number[], (x: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => tf.Tensor]> = [
      [[2, 4, 4, 16], (x, g, b) => ops.groupNorm(x, {groups: 4, gamma: g, beta: b})],
      [[2, 512, 768], (x, g, b) => ops.layerNorm(x, {gamma: g, beta: b})],
      [[2, 32, 32, 96], (x, g, b) => ops.groupNorm(x, {groups: 32, gamma: g, beta: b})],
      [[3, 5, 48], (x, g, b) => ops.layerNorm(x, {gamma: g, beta: b})],
    ];
    for (const [shape, f] of shapes) {
      const n = shape.reduce((a, b) => a * b, 1);
      const C = shape[shape.length - 1];
      const rand = rng(n);
      const x = tf.tensor(normals(rand, n, 3, 2), shape);
      const g = tf.tensor(normals(rand, C, 1, 0.5));
      const b = tf.tensor(normals(rand, C));
      const runs0 = trace.simd.forward[PLACEMENT[backend]];
      const y1 = expectNoLeakSync(() => f(x, g, b), 'SIMD forward');
      expect(trace.simd.forward[PLACEMENT[backend]]).toBe(runs0 + 1);
      const y2 = withFlags({[SIMD_FLAG]: false}, () => f(x, g, b));
      expectClose(y1, y2.dataSync(), 2e-5, `${JSON.stringify(shape)}: SIMD vs JS loops`);
      tf.dispose([x, g, b, y1, y2]);
    }
  });

  test('a row layout whose parameters are not runs along the row takes the JS loops, and matches the tf-op path',
       async () => {
         // gamma over axes 1 and 3 of a row spanning axes 1-3: index c*5 + w of element c*15 + h*5 + w.
         const plan: NormPlan =
             {viewShape: [2, 4, 3, 5], reduceAxes: [1, 2, 3], paramViewShape: [1, 4, 1, 5], epsilon: 1e-3, mode: 'center'};
         expect(layoutOf(plan).kind).toBe('row');
         expect(simdPlanOf(layoutOf(plan))).toBeNull();
         const rand = rng(21);
         const x = tf.tensor(normals(rand, 120, 1, 2), [2, 4, 3, 5]);
         const g = tf.tensor(normals(rand, 20, 1, 0.5), [4, 1, 5]);
         const b = tf.tensor(normals(rand, 20), [4, 1, 5]);
         const runs0 = trace.simd.forward[PLACEMENT[backend]];
         const info = await tf.profile(() => normalize(x, plan, g, b));
         expect(info.kernels.map((k) => k.name)).toContain(FUSED_NORM_KERNEL);
         expect(trace.simd.forward[PLACEMENT[backend]]).toBe(runs0);
         const y = info.result as tf.Tensor;
         const yRef = withFlags({[FUSED_FLAG]: false}, () => normalize(x, plan, g, b));
         expectClose(y, yRef.dataSync(), 1e-5 * 5, 'JS loops vs tf-op path');
         tf.dispose([x, g, b, y, yRef]);
       });

  // rowGradSums sums in float32 by blocks of 16 rows and sums a block again
  // in float64 where its float32 sums are not finite or tiny (products that
  // may have underflowed, or a block of zero dy). Rows of 77: vector blocks,
  // their last partial block and a scalar tail; 37 rows: two full blocks and
  // a short one; gamma slices starting at 0 and 77 (pb changes mid-block).
  test.each([
    ['dy ~ 1', [1]], ['tiny dy (1e-30: sums below n 2^-96)', [1e-30]],
    ['denormal dy (1e-39: float32 products lose bits)', [1e-39]], ['huge dy (5e37: float32 products overflow)', [5e37]],
    ['zero dy', [0]], ['rows of every scale', [1, 0, 1e-30, 5e37, 1e-39, 3]],
  ])('the row backward\'s float32 sums equal the float64 JS loops: %s', (_what, scales) => {
    const rand = rng(33);
    const [R, B] = [37, 77];
    const cases: Array<{plan: NormPlan, gShape: number[]}> = [
      {plan: {viewShape: [R, B], reduceAxes: [1], paramViewShape: [1, B], epsilon: 1e-5, mode: 'center'}, gShape: [B]},
      {plan: {viewShape: [R, B], reduceAxes: [1], paramViewShape: [1, B], epsilon: 1e-5, mode: 'rms'}, gShape: [B]},
      // Two gamma slices: the first R rows take gamma[0:77], the next R gamma[77:154].
      {plan: {viewShape: [2, R, B], reduceAxes: [2], paramViewShape: [2, 1, B], epsilon: 1e-5, mode: 'stdEps'},
        gShape: [2, 1, B]},
    ];
    for (const {plan, gShape} of cases) {
      expect(layoutOf(plan).kind).toBe('row');
      expect(simdPlanOf(layoutOf(plan))?.runLength).toBe(1);
      const n = plan.viewShape.reduce((p, d) => p * d, 1);
      const p = gShape.reduce((q, d) => q * d, 1);
      const x = tf.tensor(normals(rand, n, 0.5, 2), plan.viewShape);
      const dyv = normals(rand, n);
      for (let r = 0; r < n / B; r++) for (let j = 0; j < B; j++) dyv[r * B + j] *= scales[Math.floor(r / 5) % scales.length];
      const dy = tf.tensor(dyv, plan.viewShape);
      const g = tf.tensor(normals(rand, p, 1, 0.5), gShape);
      const b = MODES[plan.mode].hasBeta ? tf.tensor(normals(rand, p), gShape) : undefined;
      const grads = () => tf.grads((a: tf.Tensor, c: tf.Tensor) => normalize(a, plan, c, b))([x, g], dy);
      const runs0 = trace.simd.backward[PLACEMENT[backend]];
      const simd = grads();
      expect(trace.simd.backward[PLACEMENT[backend]]).toBe(runs0 + 1);
      const js = withFlags({[SIMD_FLAG]: false}, grads);
      simd.forEach((t, i) => {
        const ref = js[i].dataSync();
        const got = t.dataSync();
        const scale = Math.max(0, ...Array.from(ref).filter(Number.isFinite).map(Math.abs));
        // dgamma from float64 sums: within 1e-5. dx is written in float32
        // (applyGradRows), where denormals carry fewer bits: 1e-4 and a few of their ulps (2^-149).
        // Where float64 overflowed float32 (an Inf), the same Inf.
        const tol = i === 0 ? 1e-4 * scale + 8 * 2 ** -149 : 1e-5 * scale;
        const bad = Array.from(got).flatMap((v, k) =>
          (Number.isFinite(ref[k]) ? Math.abs(v - ref[k]) <= tol : v === ref[k]) ? [] : [`[${k}] ${v} vs ${ref[k]}`]);
        expect(`${plan.mode} ${['dx', 'dgamma'][i]}: ${bad.slice(0, 3).join(', ')}`).toBe(`${plan.mode} ${['dx', 'dgamma'][i]}: `);
      });
      tf.dispose([x, dy, g, b, ...simd, ...js]);
    }
  });

  // The column backward's first pass runs in pieces of at most 2^18 bytes of
  // x (1024 rows of 64 channels): batch norm's one stretch of every row,
  // and a group norm sample longer than that, split with a last piece
  // shorter than colDySums's block of 16 rows.
  test.each([
    ['ops.batchNorm [2055, 64] (one stretch: 3 pieces, the last of 7 rows)', [2055, 64], 0],
    ['ops.groupNorm [2, 33, 32, 64] G=32 (stretches of 1056 rows: 1024 + 32 each)', [2, 33, 32, 64], 32],
  ] as const)('the column backward in pieces equals the JS loops: %s', (_what, shape, groups) => {
    const n = shape.reduce((p, d) => p * d, 1);
    const rand = rng(41);
    const x = tf.tensor(normals(rand, n, 0.5, 2), [...shape]);
    const dy = tf.tensor(normals(rand, n), [...shape]);
    const g = tf.tensor(normals(rand, 64, 1, 0.5));
    const b = tf.tensor(normals(rand, 64));
    const f = (t: tf.Tensor, gg: tf.Tensor, bb: tf.Tensor) =>
      groups > 0 ? ops.groupNorm(t, {groups, gamma: gg, beta: bb}) : ops.batchNorm(t, {gamma: gg, beta: bb});
    const grads = () => tf.grads(f)([x, g, b], dy);
    const runs0 = trace.simd.backward[PLACEMENT[backend]];
    const simd = grads();
    expect(trace.simd.backward[PLACEMENT[backend]]).toBe(runs0 + 1);
    const js = withFlags({[SIMD_FLAG]: false}, grads);
    ['dx', 'dgamma', 'dbeta'].forEach((name, i) => {
      const ref = js[i].dataSync();
      let scale = 0;
      for (let k = 0; k < ref.length; k++) scale = Math.max(scale, Math.abs(ref[k]));
      expectClose(simd[i], ref, (i === 0 ? 1e-4 : 1e-5) * scale, `${name}: SIMD in pieces vs JS loops`);
    });
    tf.dispose([x, dy, g, b, ...simd, ...js]);
  });
});

describe('cpu: the module\'s memory is bounded, and a call it cannot hold falls back to the JS loops', () => {
  // The bound lowered to 4 MiB (the default is SIMD_CPU_KEEP_BYTES, 64 MiB) to keep the tensors small.
  const KEEP = 4 * 2 ** 20;
  beforeAll(async () => {
    await tf.setBackend('cpu');
    simdCpuMemory.keepBytes = KEEP;
  });
  afterAll(() => {
    simdCpuMemory.keepBytes = SIMD_CPU_KEEP_BYTES;
  });
  /** y = layerNorm(x) and dx of sum(y * dy): two forwards (tf.grad reruns it) and one backward. */
  const forwardBackward = (x: tf.Tensor, dy: tf.Tensor) => tf.tidy(() => {
    const f = (t: tf.Tensor) => ops.layerNorm(t, {axis: -1});
    const y = f(x);
    const dx = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(f(t), dy)))(x);
    return [y.dataSync() as Float32Array, dx.dataSync() as Float32Array];
  });
  const maxDiff = (a: Float32Array, b: Float32Array) => {
    let m = 0;
    for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
    return m;
  };

  test('after a call larger than the bound the kept memory stays within it, with results equal to the JS loops', () => {
    if (!simdAvailable()) {
      console.warn('SKIPPED: WebAssembly SIMD unavailable');
      if (process.env.REQUIRE_SIMD) throw new Error('REQUIRE_SIMD is set but WebAssembly SIMD is unavailable');
      return;
    }
    // 2 MiB of x: the backward needs about 3 x 2 MiB, above the 4 MiB kept; the forward about 2 x 2 MiB plus scratch.
    const shape = [32, 64, 256];
    const x = tf.randomNormal(shape, 0, 1, 'float32', 21);
    const dy = tf.randomNormal(shape, 0, 1, 'float32', 22);
    const [runs, gradRuns, temporary] = [trace.simd.forward.copy, trace.simd.backward.copy, trace.simdMemory.temporary];
    const keptBefore = simdEngineForCpu()?.memory.buffer.byteLength;  // earlier tests grew it under the default bound
    const [ySimd, dxSimd] = forwardBackward(x, dy);
    expect([trace.simd.forward.copy - runs, trace.simd.backward.copy - gradRuns]).toEqual([2, 1]);
    expect(trace.simdMemory.temporary - temporary).toBe(3);
    expect(simdEngineForCpu()?.memory.buffer.byteLength).toBe(keptBefore);
    const [yJs, dxJs] = withFlags({[SIMD_FLAG]: false}, () => forwardBackward(x, dy));
    expect(maxDiff(ySimd, yJs)).toBeLessThan(1e-5);
    expect(maxDiff(dxSimd, dxJs)).toBeLessThan(1e-4);
    tf.dispose([x, dy]);
  });

  test('when WebAssembly memory cannot grow (RangeError), forward and backward run the JS loops with equal results', () => {
    if (!simdAvailable()) {
      console.warn('SKIPPED: WebAssembly SIMD unavailable');
      if (process.env.REQUIRE_SIMD) throw new Error('REQUIRE_SIMD is set but WebAssembly SIMD is unavailable');
      return;
    }
    const kept = simdEngineForCpu();
    const shape = [32, 64, 256];  // both above the bound (a fresh memory) and more than the kept memory holds
    const x = tf.randomNormal(shape, 0, 1, 'float32', 23);
    const dy = tf.randomNormal(shape, 0, 1, 'float32', 24);
    const [yJs, dxJs] = withFlags({[SIMD_FLAG]: false}, () => forwardBackward(x, dy));
    const grow = jest.spyOn(kept!.memory, 'grow').mockImplementation(() => {
      throw new RangeError('WebAssembly.Memory.grow(): Unable to grow instance memory');
    });
    const memory = jest.spyOn(WebAssembly, 'Memory').mockImplementation(() => {
      throw new RangeError('WebAssembly.Memory(): could not allocate memory');
    });
    try {
      const [runs, gradRuns, fallbacks] = [trace.simd.forward.copy, trace.simd.backward.copy, trace.simdMemory.fallbacks];
      const [y, dx] = forwardBackward(x, dy);
      expect([trace.simd.forward.copy - runs, trace.simd.backward.copy - gradRuns]).toEqual([0, 0]);
      expect(trace.simdMemory.fallbacks - fallbacks).toBe(3);
      expect(maxDiff(y, yJs)).toBe(0);
      expect(maxDiff(dx, dxJs)).toBe(0);
      // Smaller calls would grow the kept memory, which cannot grow either: the JS loops too.
      const small = tf.randomNormal([4, 1024, 64], 0, 1, 'float32', 25);
      const [ySmall] = forwardBackward(small, small);
      const [ySmallJs] = withFlags({[SIMD_FLAG]: false}, () => forwardBackward(small, small));
      expect(maxDiff(ySmall, ySmallJs)).toBeLessThan(1e-5);
      small.dispose();
    } finally {
      grow.mockRestore();
      memory.mockRestore();
      tf.dispose([x, dy]);
    }
  });
});
