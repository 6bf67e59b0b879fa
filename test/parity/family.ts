/**
 * The backend parity suite for the rest of the family (UnitNormalization,
 * LocalResponseNormalization, FilterResponseNormalization, TLU, and the
 * SpectralNormalization and WeightNormalization wrappers of ./family_wrappers.ts): like
 * ./suite.ts it imports neither tfjs nor the package (both are passed in),
 * so it runs in Node (cpu, wasm, tensorflow) and in the browser page
 * (webgl, webgpu, wasm, half-float webgl).
 *
 * Each case runs the op (where there is one) and the layer, with the
 * layer's weights set from the case, and reads y and the gradients of
 * sum(y * dy) for x and for every weight; these are compared with the
 * float64 reference of test/family_reference.ts (gradients by central
 * finite differences of it) and with the cpu backend's result. Error
 * measure and tolerance as ./suite.ts.
 */
import type * as TfModule from '@tensorflow/tfjs';

import {frnRef, gradsFD, lrnRef, tluRef, unitNormRef} from '../family_reference';
import {normals, rng} from '../reference';
import {toHalf} from './cases';
import {buildWrapperCases, runWrapper, wrapperGradsOn} from './family_wrappers';
import type {Lib, ParityRecord, TF} from './suite';
import {DEFAULT_TOL, maxErr, useBackend} from './suite';

type Tensor = TfModule.Tensor;
type Layer = TfModule.layers.Layer;

export interface FamilyCase {
  name: string;
  shape: number[];
  x: Float32Array;
  dy: Float32Array;
  /** The layer's weights in its order: name and value. */
  weights: Array<{name: string, shape: number[], values: Float32Array}>;
  layer: (lib: Lib) => Layer;
  /** The functional op, given x and the weights as tensors; none for TLU. */
  op?: (lib: Lib, x: Tensor, w: Tensor[]) => Tensor;
  /** y, then the gradient for x, then one per weight. */
  ref: Float64Array[];
}

interface Draft {
  name: string;
  shape: number[];
  weights?: Array<{name: string, shape: number[], mean: number, std: number}>;
  mean?: number;
  std?: number;
  layer: (lib: Lib) => Layer;
  op?: (lib: Lib, x: Tensor, w: Tensor[]) => Tensor;
  forward: (x: Float64Array, w: Float64Array[]) => ArrayLike<number>;
  /** Keeps inputs off a kink of the function (TLU's max), where finite differences mean nothing. */
  adjust?: (x: Float32Array, w: Float32Array[]) => void;
  /** Finite-difference step (relative, default 1e-6). */
  fdStep?: number;
}

const resolve = (axes: number[], rank: number) => axes.map((a) => (a < 0 ? a + rank : a));

function drafts(): Draft[] {
  const out: Draft[] = [];
  // UnitNormalization: int and list axes, x = 0 rows, tiny and huge magnitudes.
  const unit = (name: string, shape: number[], axis: number|number[], extra: Partial<Draft> = {}) => {
    const axes = resolve(Array.isArray(axis) ? axis : [axis], shape.length);
    out.push({
      name: `unit/${name}`, shape,
      layer: (lib) => new lib.UnitNormalization({axis}),
      op: (lib, x) => lib.ops.unitNorm(x, {axis}),
      forward: (x) => unitNormRef(x, shape, axes, 1e-12),
      ...extra,
    });
  };
  unit('[3,7] axis=-1', [3, 7], -1);
  unit('[2,3,4] axis=1', [2, 3, 4], 1);
  unit('[2,3,4,2] axis=[1,3]', [2, 3, 4, 2], [1, 3]);
  unit('[2,3,5] axis=[2,0]', [2, 3, 5], [2, 0]);
  unit('[4,6] mean1e4 std300', [4, 6], -1, {mean: 1e4, std: 300});
  unit('[2,4] zero rows (norm below epsilon)', [2, 4], -1, {
    adjust: (x) => {
      x.fill(0, 0, 4);
      x.set([1e-14, -2e-13, 0, 5e-14], 4);
    },
    // Both rows stay below the norm bound (1e-12) within the step, where y = x / 1e-12 is linear.
    fdStep: 1e-16,
  });
  // LocalResponseNormalization: tfjs's LRN kernel (symmetric windows, channels moved last) and the banded
  // product (PyTorch's even sizes).
  const lrn = (name: string, shape: number[], opts: Record<string, unknown>, axis: number, before: number, after: number,
               bias: number, alpha: number, beta: number) => out.push({
    name: `lrn/${name}`, shape,
    layer: (lib) => new lib.LocalResponseNormalization(opts),
    op: (lib, x) => lib.ops.localResponseNorm(x, opts),
    forward: (x) => lrnRef(x, shape, axis, before, after, bias, alpha, beta),
  });
  lrn('tf defaults [2,3,3,12]', [2, 3, 3, 12], {}, 3, 5, 5, 1, 1, 0.5);
  lrn('tf r2 axis 1 [2,7,3]', [2, 7, 3], {axis: 1, depthRadius: 2, bias: 2, alpha: 0.3, beta: 0.75}, 1, 2, 2, 2, 0.3, 0.75);
  lrn('torch size 3 [2,6,3,2]', [2, 6, 3, 2], {convention: 'pytorch', size: 3, alpha: 1.5}, 1, 1, 1, 1, 0.5, 0.75);
  lrn('torch size 4 even [2,7,2,2]', [2, 7, 2, 2], {convention: 'pytorch', size: 4, alpha: 2, beta: 0.6, k: 0.5}, 1, 2, 1, 0.5, 0.5, 0.6);
  // FilterResponseNormalization (TFA): weights [learned_epsilon,] gamma, beta of [1, 1, 1, C].
  const frn = (name: string, shape: number[], learned: boolean, epsilon: number, mean = 0.3, std = 1.5) => {
    const C = shape[3];
    const p = [1, 1, 1, C];
    out.push({
      name: `frn/${name}`, shape, mean, std,
      weights: [...(learned ? [{name: 'learned_epsilon', shape: [1], mean: 0.05, std: 0.01}] : []),
        {name: 'gamma', shape: p, mean: 1, std: 0.4}, {name: 'beta', shape: p, mean: 0, std: 0.5}],
      layer: (lib) => new lib.FilterResponseNormalization({epsilon, learnedEpsilon: learned}),
      op: learned ? undefined : (lib, x, w) => lib.ops.filterResponseNorm(x as TfModule.Tensor4D, {epsilon, gamma: w[0], beta: w[1]}),
      forward: (x, w) => (learned ? frnRef(x, shape, epsilon, w[1], w[2], w[0][0]) : frnRef(x, shape, epsilon, w[0], w[1], null)),
    });
  };
  frn('[2,3,4,5]', [2, 3, 4, 5], false, 1e-6);
  frn('[2,2,3,3] learned epsilon', [2, 2, 3, 3], true, 1e-6);
  frn('[1,4,4,2] mean 1e3 std 300', [1, 4, 4, 2], false, 1e-6, 1e3, 300);
  // TLU (TFA): tau (and alpha) shaped like x without the batch axis; inputs kept off the kink.
  const tlu = (name: string, shape: number[], affine: boolean) => {
    const per = shape.slice(1).reduce((a, b) => a * b, 1);
    out.push({
      name: `tlu/${name}`, shape,
      weights: [{name: 'tau', shape: shape.slice(1), mean: 0, std: 0.7}, ...(affine ? [{name: 'alpha', shape: shape.slice(1), mean: 0.3, std: 0.4}] : [])],
      layer: (lib) => new lib.TLU({affine}),
      forward: (x, w) => tluRef(x, shape, w[0], affine ? w[1] : null),
      adjust: (x, w) => {
        for (let i = 0; i < x.length; i++) {
          const t = (affine ? w[1][i % per] * x[i] : 0) + w[0][i % per];
          if (Math.abs(x[i] - t) < 0.05) x[i] = t + 0.1;
        }
      },
    });
  };
  tlu('[3,4,2]', [3, 4, 2], false);
  tlu('[2,3,2,2] affine', [2, 3, 2, 2], true);
  return out;
}

/** Cases left out of the half-float run, with the reason (no float16 answer to compare). */
export const FAMILY_HALF_FLOAT_EXCLUDED: Record<string, string> = {
  'unit/[2,4] zero rows (norm below epsilon)':
      'below the norm bound dx = dy / 1e-12, of order 1e12: beyond the float16 maximum (65504)',
};

/** Every case, with its reference; halfFloat rounds the inputs to float16 first. */
export function buildFamilyCases(opts: {halfFloat?: boolean, only?: string[]} = {}): FamilyCase[] {
  const half = opts.halfFloat ?? false;
  const keep = (d: Draft) => (!opts.only || opts.only.some((s) => d.name.includes(s))) && !(half && d.name in FAMILY_HALF_FLOAT_EXCLUDED);
  return drafts().map((d, k) => ({d, k})).filter(({d}) => keep(d)).map(({d, k}) => {
    const rand = rng(5000 + k);
    const round = (a: Float32Array) => (half ? a.map(toHalf) : a);
    const n = d.shape.reduce((a, b) => a * b, 1);
    const x = normals(rand, n, d.mean ?? 0.3, d.std ?? 1.5);
    const dy = normals(rand, n);
    const ws = (d.weights ?? []).map((w) => normals(rand, w.shape.reduce((a, b) => a * b, 1), w.mean, w.std));
    d.adjust?.(x, ws);
    const xr = round(x);
    const wr = ws.map(round);
    const dyr = round(dy);
    const f = (inputs: Float64Array[]) => d.forward(inputs[0], inputs.slice(1));
    const x64 = Float64Array.from(xr);
    const w64 = wr.map((w) => Float64Array.from(w));
    const y = Float64Array.from(f([x64, ...w64]));
    const grads = gradsFD(f, [x64, ...w64], dyr, d.fdStep);
    return {
      name: d.name, shape: d.shape, x: xr, dy: dyr, layer: d.layer, op: d.op,
      weights: (d.weights ?? []).map((w, i) => ({name: w.name, shape: w.shape, values: wr[i]})),
      ref: [y, ...grads],
    };
  });
}

async function readAll(ts: Tensor[]): Promise<Float32Array[]> {
  return Promise.all(ts.map(async (t) => (await t.data()) as Float32Array));
}

async function runOp(tf: TF, lib: Lib, c: FamilyCase): Promise<{got: Float32Array[], leaked: number}> {
  const op = c.op as NonNullable<FamilyCase['op']>;
  const before = tf.memory().numTensors;
  const x = tf.tensor(c.x, c.shape);
  const dy = tf.tensor(c.dy, c.shape);
  const ws = c.weights.map((w) => tf.tensor(w.values, w.shape));
  const y = op(lib, x, ws);
  const grads = tf.grads((...a: Tensor[]) => tf.sum(tf.mul(op(lib, a[0], a.slice(1)), dy)))([x, ...ws]);
  const got = await readAll([y, ...grads]);
  tf.dispose([x, dy, y, ...ws, ...grads]);
  return {got, leaked: tf.memory().numTensors - before};
}

async function runLayer(tf: TF, lib: Lib, c: FamilyCase): Promise<{got: Float32Array[], leaked: number}> {
  const before = tf.memory().numTensors;
  const layer = c.layer(lib);
  const x = tf.tensor(c.x, c.shape);
  const dy = tf.tensor(c.dy, c.shape);
  tf.dispose(layer.apply(x) as Tensor);  // builds the layer
  const names = layer.weights.map((w) => w.name.split('/').pop());
  if (JSON.stringify(names) !== JSON.stringify(c.weights.map((w) => w.name))) {
    throw new Error(`${layer.getClassName()} has weights ${JSON.stringify(names)}, the case ${JSON.stringify(c.weights.map((w) => w.name))}`);
  }
  const values = c.weights.map((w) => tf.tensor(w.values, w.shape));
  layer.setWeights(values);
  tf.dispose(values);
  const y = layer.apply(x) as Tensor;
  const xVar = tf.variable(x, true);
  const vars = layer.weights.map((w) => w.read() as TfModule.Variable);
  const {value, grads} = tf.variableGrads(() => tf.sum(tf.mul(layer.apply(xVar) as Tensor, dy)) as TfModule.Scalar, [xVar, ...vars]);
  const got = await readAll([y, grads[xVar.name], ...vars.map((v) => grads[v.name])]);
  tf.dispose([x, dy, y, xVar, value, ...Object.values(grads)]);
  layer.dispose();
  return {got, leaked: tf.memory().numTensors - before};
}

const QUANTITIES = (c: FamilyCase) => ['y', 'dx', ...c.weights.map((w) => `d${w.name}`)];

/**
 * Runs every case on 'cpu' and then on each backend; one record per
 * (case, path, backend), as runParity. Never throws for a case.
 */
export async function runFamilyParity(
    tf: TF, lib: Lib, opts: {backends: string[], tol?: Record<string, number>, halfFloat?: boolean, only?: string[],
                             log?: (line: string) => void}): Promise<ParityRecord[]> {
  const log = opts.log ?? (() => undefined);
  const cases = buildFamilyCases(opts);
  const wrapperCases = buildWrapperCases(opts);
  const backends = ['cpu', ...opts.backends.filter((b) => b !== 'cpu')];
  const cpu = new Map<string, Float32Array[]>();
  const records: ParityRecord[] = [];
  for (const backend of backends) {
    const tol = opts.tol?.[backend] ?? DEFAULT_TOL;
    try {
      await useBackend(tf, backend);
    } catch (e) {
      records.push({case: '(backend start)', path: '-', backend, maxErrVsRef: Infinity, worstVsRef: '-', maxErrVsCpu: Infinity, tol, leaked: 0, pass: false, error: (e as Error).message});
      continue;
    }
    /** Runs one path of a case, compares it with float64 (ref) and with cpu's run of it (by key), records the result. */
    const check = async (name: string, path: string, key: string, ref: Float64Array[], quantities: string[],
                         run: () => Promise<{got: ArrayLike<number>[], leaked: number}>): Promise<void> => {
      let rec: ParityRecord;
      try {
        const {got, leaked} = await run();
        if (backend === 'cpu') cpu.set(key, got.map((g) => Float32Array.from(g)));
        let err = 0;
        let worst = 'y';
        got.forEach((g, i) => {
          const e = maxErr(g, ref[i]);
          if (!(e <= err)) {
            err = e;
            worst = quantities[i];
          }
        });
        const base = cpu.get(key);
        const vsCpu = base ? Math.max(...got.map((g, i) => maxErr(g, base[i]))) : Infinity;
        rec = {case: name, path, backend, maxErrVsRef: err, worstVsRef: worst, maxErrVsCpu: vsCpu, tol, leaked,
          pass: err <= tol && vsCpu <= tol && leaked === 0};
      } catch (e) {
        rec = {case: name, path, backend, maxErrVsRef: Infinity, worstVsRef: '-', maxErrVsCpu: Infinity, tol, leaked: 0,
          pass: false, error: (e as Error).message};
      }
      records.push(rec);
      if (!rec.pass) log(`FAIL ${backend} ${name} ${path}: ${JSON.stringify(rec)}`);
    };
    for (const c of cases) {
      const paths: Array<[string, () => Promise<{got: Float32Array[], leaked: number}>]> = [];
      if (c.op) paths.push(['op', () => runOp(tf, lib, c)]);
      paths.push(['layer', () => runLayer(tf, lib, c)]);
      for (const [path, run] of paths) await check(c.name, path, `${c.name}|${path}`, c.ref, QUANTITIES(c), run);
    }
    for (const c of wrapperCases) {
      await check(c.name, 'layer', `${c.name}|wrapper`, c.ref, c.quantities, async () => {
        const r = await runWrapper(tf, c, lib);
        const expected = wrapperGradsOn(c, backend) ? c.ref.length : 1 + c.weights.length;
        if (r.got.length !== expected) throw new Error(`${r.got.length} quantities read, ${expected} expected on ${backend}`);
        return r;
      });
    }
    const mine = records.filter((r) => r.backend === backend);
    const worst = mine.reduce((w, r) => (r.maxErrVsRef > w.maxErrVsRef ? r : w), mine[0]);
    log(`family parity ${backend}: ${mine.length} runs, ${mine.filter((r) => !r.pass).length} failed, max err vs float64 ` +
        `${worst.maxErrVsRef.toExponential(2)} (${worst.case} ${worst.path} ${worst.worstVsRef}), vs cpu ` +
        `${Math.max(...mine.map((r) => r.maxErrVsCpu)).toExponential(2)}`);
  }
  return records;
}
