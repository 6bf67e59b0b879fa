/**
 * The backend parity suite, written once and run on every backend: in Node
 * under jest (cpu, wasm, and tensorflow when tfjs-node is importable) and in
 * headless Chromium (cpu, webgl, webgpu, wasm, half-float webgl), where it
 * is bundled with esbuild into the test page.
 *
 * It imports neither tfjs nor the package: both are passed in, so the page
 * and jest hand it their own instances. For every case of ./cases.ts it
 * runs the op and every layer that computes it (weights set from the
 * case), reads y and the gradients of sum(y * dy) for x and for gamma/beta
 * (op arguments or layer weights), and compares them with the float64
 * reference and with the cpu backend's result.
 *
 * Error measure: max over all elements of |a - r| / max(1, |r|): absolute
 * for values up to 1, relative above (a dgamma summed over 200 elements is
 * of order 10). NaN or Inf anywhere counts as an infinite error.
 */
import type * as TfModule from '@tensorflow/tfjs';

import type * as LibModule from '../../src/index';
import {buildCases, CaseOptions, matrixCaseOf, ParityCase, Quantities} from './cases';

export type TF = typeof TfModule;
export type Lib = typeof LibModule;
type Tensor = TfModule.Tensor;

export interface ParityOptions extends CaseOptions {
  /** Backends to test, in order; 'cpu' is always run first, as the baseline. */
  backends: string[];
  /** Tolerance for the error measure, per backend (default 1e-4). */
  tol?: Record<string, number>;
  /** Progress lines (default: none). */
  log?: (line: string) => void;
}

export interface ParityRecord {
  case: string;
  /** 'op' or 'layer:<ClassName>'. */
  path: string;
  backend: string;
  maxErrVsRef: number;
  /** The quantity with the largest error against the reference (y, dx, dgamma, dbeta). */
  worstVsRef: string;
  maxErrVsCpu: number;
  tol: number;
  /** tf.memory().numTensors after the run and dispose, minus before. */
  leaked: number;
  pass: boolean;
  error?: string;
}

export interface BackendSummary {
  backend: string;
  /** tf.getBackend() after setBackend: equals backend, or the test fails. */
  active: string;
  runs: number;
  failed: number;
  maxErrVsRef: number;
  worstCase: string;
  maxErrVsCpu: number;
  tol: number;
  ms: number;
  /** Backend facts worth printing (float precision, WebGL version, ...). */
  info: string;
}

export interface ParityReport {
  records: ParityRecord[];
  summary: BackendSummary[];
}

export const DEFAULT_TOL = 1e-4;

/** max |a - r| / max(1, |r|); Infinity on NaN, Inf or a length mismatch. */
export function maxErr(a: ArrayLike<number>|undefined, r: ArrayLike<number>|undefined): number {
  if (a == null && r == null) return 0;
  if (a == null || r == null || a.length !== r.length) return Infinity;
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const e = Math.abs(a[i] - r[i]) / Math.max(1, Math.abs(r[i]));
    if (!(e <= m)) m = Number.isFinite(e) ? e : Infinity;
  }
  return m;
}

function compare(got: Quantities, want: Quantities): {err: number, worst: string} {
  let err = 0;
  let worst = 'y';
  for (const q of ['y', 'dx', 'dgamma', 'dbeta'] as const) {
    const e = maxErr(got[q], want[q]);
    if (!(e <= err)) {
      err = e;
      worst = q;
    }
  }
  return {err, worst};
}

type OpFn = (x: Tensor, gamma?: Tensor, beta?: Tensor) => Tensor;

/** The op of the case: the case matrix's (test/case_matrix.ts); batch norm's own. */
function opFor(lib: Lib, c: ParityCase, mask?: Tensor): OpFn {
  const matrix = matrixCaseOf(c);
  if (matrix) {
    const run = matrix.runWith(lib);
    return (x, gamma, beta) => run(x, gamma, beta, mask);
  }
  return (x, gamma, beta) => lib.ops.batchNorm(x, {axis: c.axis as number, epsilon: c.epsilon, gamma, beta, mask});
}

/** Every layer that computes this case. */
export function layersFor(lib: Lib, c: ParityCase): TfModule.layers.Layer[] {
  const {axis, epsilon} = c;
  const center = c.beta != null;
  const scale = c.gamma != null;
  switch (c.kind) {
    case 'group':
      return [new lib.GroupNormalization({groups: c.groups, axis: axis as number, epsilon, center, scale})];
    case 'instance':
      return [new lib.InstanceNormalization({axis: axis as number, epsilon, center, scale})];
    case 'layer':
      return [c.rmsScaling ? new lib.LayerNormalization({axis, epsilon, rmsScaling: true}) :
                             new lib.LayerNormalization({axis, epsilon, center, scale})];
    case 'rms':
      return [
        new lib.LayerNormalization({axis, epsilon, rms: true, scale}),
        ...(scale ? [new lib.RMSNormalization({axis, epsilon})] : []),
      ];
    case 'batch':
      // Run in training mode (runLayer): batch statistics.
      return [new lib.BatchNormalization({axis: axis as number, epsilon, center, scale})];
  }
}

const isBeta = (name: string) => name.split('/').pop() === 'beta';

async function read(ts: Array<Tensor|undefined>): Promise<Array<Float32Array|undefined>> {
  return Promise.all(ts.map(async (t) => (t ? await t.data() as Float32Array : undefined)));
}

async function runOp(tf: TF, lib: Lib, c: ParityCase): Promise<{got: Quantities, leaked: number}> {
  const before = tf.memory().numTensors;
  const x = tf.tensor(c.x, c.shape);
  const dy = tf.tensor(c.dy, c.shape);
  const gamma = c.gamma ? tf.tensor(c.gamma, c.paramShape) : undefined;
  const beta = c.beta ? tf.tensor(c.beta, c.paramShape) : undefined;
  const mask = c.mask ? tf.tensor(c.mask.values, c.mask.shape) : undefined;
  const op = opFor(lib, c, mask);
  const args = [x, ...(gamma ? [gamma] : []), ...(beta ? [beta] : [])];
  const y = op(x, gamma, beta);
  const grads = tf.grads((...a: Tensor[]) => tf.sum(tf.mul(op(a[0], gamma ? a[1] : undefined, beta ? a[gamma ? 2 : 1] : undefined), dy)))(args);
  const [yv, dx, dgamma, dbeta] = await read([y, grads[0], gamma ? grads[1] : undefined, beta ? grads[gamma ? 2 : 1] : undefined]);
  tf.dispose([x, dy, y, ...grads, ...(gamma ? [gamma] : []), ...(beta ? [beta] : []), ...(mask ? [mask] : [])]);
  return {got: {y: yv as Float32Array, dx: dx as Float32Array, dgamma, dbeta}, leaked: tf.memory().numTensors - before};
}

async function runLayer(tf: TF, c: ParityCase, layer: TfModule.layers.Layer): Promise<{got: Quantities, leaked: number}> {
  const before = tf.memory().numTensors;
  const x = tf.tensor(c.x, c.shape);
  const dy = tf.tensor(c.dy, c.shape);
  const mask = c.mask ? tf.tensor(c.mask.values, c.mask.shape) : undefined;
  // BatchNormalization computes the case in training mode (batch statistics).
  const kwargs = {...(mask ? {mask} : {}), ...(c.kind === 'batch' ? {training: true} : {})};
  tf.dispose(layer.apply(x, kwargs) as Tensor);  // builds the layer
  const expected = (c.gamma ? 1 : 0) + (c.beta ? 1 : 0);
  if (layer.trainableWeights.length !== expected) {
    throw new Error(`${layer.getClassName()} has ${layer.trainableWeights.length} trainable weights, the case has ${expected}`);
  }
  // gamma and beta from the case; non-trainable weights (moving statistics) keep their values.
  const values = layer.weights.map((w) => (w.trainable ?
      tf.tensor((isBeta(w.name) ? c.beta : c.gamma) as Float32Array, w.shape as number[]) : tf.clone(w.read())));
  layer.setWeights(values);
  tf.dispose(values);
  const y = layer.apply(x, kwargs) as Tensor;
  const xVar = tf.variable(x, true);
  const weightVars = layer.trainableWeights.map((w) => w.read() as TfModule.Variable);
  const {value, grads} = tf.variableGrads(
      () => tf.sum(tf.mul(layer.apply(xVar, kwargs) as Tensor, dy)) as TfModule.Scalar, [xVar, ...weightVars]);
  const gradOf = (beta: boolean) => {
    const w = layer.trainableWeights.find((v) => isBeta(v.name) === beta);
    return w ? grads[(w.read() as TfModule.Variable).name] : undefined;
  };
  const [yv, dx, dgamma, dbeta] = await read([y, grads[xVar.name], gradOf(false), gradOf(true)]);
  tf.dispose([x, dy, y, xVar, value, ...Object.values(grads), ...(mask ? [mask] : [])]);
  layer.dispose();
  return {got: {y: yv as Float32Array, dx: dx as Float32Array, dgamma, dbeta}, leaked: tf.memory().numTensors - before};
}

/** Sets the backend and fails, instead of falling back, when it does not start. */
export async function useBackend(tf: TF, name: string): Promise<void> {
  let ok = false;
  let why = '';
  try {
    ok = await tf.setBackend(name);
    await tf.ready();
  } catch (e) {
    why = `: ${(e as Error).message}`;
  }
  if (!ok || tf.getBackend() !== name) {
    throw new Error(`parity: tf.setBackend('${name}') failed${why}; tf.getBackend() is '${tf.getBackend()}'`);
  }
}

async function backendInfo(tf: TF): Promise<string> {
  const parts: string[] = [];
  const env = tf.env();
  const flags = tf.getBackend() === 'webgl' ? ['WEBGL_VERSION', 'WEBGL_RENDER_FLOAT32_ENABLED'] :
      tf.getBackend() === 'wasm' ? ['WASM_HAS_SIMD_SUPPORT', 'WASM_HAS_MULTITHREAD_SUPPORT'] : [];
  for (const f of flags) parts.push(`${f} ${String(await env.getAsync(f))}`);
  return parts.join(', ');
}

/**
 * Runs every case on 'cpu' and then on each backend of opts.backends;
 * returns one record per (case, path, backend) and a summary per backend.
 * Never throws for a case: a case that throws is a failing record.
 */
export async function runParity(tf: TF, lib: Lib, opts: ParityOptions): Promise<ParityReport> {
  const log = opts.log ?? (() => undefined);
  const cases = buildCases(opts);
  const backends = ['cpu', ...opts.backends.filter((b) => b !== 'cpu')];
  const cpu = new Map<string, Quantities>();
  const records: ParityRecord[] = [];
  const summary: BackendSummary[] = [];
  for (const backend of backends) {
    const tol = opts.tol?.[backend] ?? DEFAULT_TOL;
    const t0 = Date.now();
    try {
      await useBackend(tf, backend);
    } catch (e) {
      const error = (e as Error).message;
      records.push({case: '(backend start)', path: '-', backend, maxErrVsRef: Infinity, worstVsRef: '-', maxErrVsCpu: Infinity, tol, leaked: 0, pass: false, error});
      summary.push({backend, active: tf.getBackend(), runs: 0, failed: 1, maxErrVsRef: Infinity, worstCase: error, maxErrVsCpu: Infinity, tol, ms: 0, info: ''});
      continue;
    }
    const mine: ParityRecord[] = [];
    for (const c of cases) {
      const paths: Array<[string, () => Promise<{got: Quantities, leaked: number}>]> = [['op', () => runOp(tf, lib, c)]];
      for (const layer of layersFor(lib, c)) {
        paths.push([`layer:${layer.getClassName()}${layer.getConfig().rms ? '(rms)' : ''}`, () => runLayer(tf, c, layer)]);
      }
      for (const [path, run] of paths) {
        const key = `${c.name}|${path}`;
        let rec: ParityRecord;
        try {
          const {got, leaked} = await run();
          if (backend === 'cpu') cpu.set(key, got);
          const vsRef = compare(got, c.ref);
          const base = cpu.get(key);
          const vsCpu = base ? compare(got, base).err : Infinity;
          rec = {
            case: c.name, path, backend, maxErrVsRef: vsRef.err, worstVsRef: vsRef.worst, maxErrVsCpu: vsCpu, tol, leaked,
            pass: vsRef.err <= tol && vsCpu <= tol && leaked === 0,
          };
        } catch (e) {
          rec = {
            case: c.name, path, backend, maxErrVsRef: Infinity, worstVsRef: '-', maxErrVsCpu: Infinity, tol, leaked: 0,
            pass: false, error: (e as Error).message,
          };
        }
        mine.push(rec);
        if (!rec.pass) log(`FAIL ${backend} ${c.name} ${path}: ${JSON.stringify(rec)}`);
      }
    }
    records.push(...mine);
    const worst = mine.reduce((w, r) => (r.maxErrVsRef > w.maxErrVsRef ? r : w), mine[0]);
    const s: BackendSummary = {
      backend, active: tf.getBackend(), runs: mine.length, failed: mine.filter((r) => !r.pass).length,
      maxErrVsRef: worst.maxErrVsRef, worstCase: `${worst.case} ${worst.path} ${worst.worstVsRef}`,
      maxErrVsCpu: Math.max(...mine.map((r) => r.maxErrVsCpu)), tol, ms: Date.now() - t0, info: await backendInfo(tf),
    };
    summary.push(s);
    log(formatSummary(s));
  }
  return {records, summary};
}

export function formatSummary(s: BackendSummary): string {
  const e = (v: number) => (Number.isFinite(v) ? v.toExponential(2) : String(v));
  return `parity ${s.backend.padEnd(10)} ${String(s.runs).padStart(3)} runs, ${s.failed} failed, ` +
      `max err vs float64 ${e(s.maxErrVsRef)} (${s.worstCase}), vs cpu ${e(s.maxErrVsCpu)}, tol ${e(s.tol)}, ` +
      `${(s.ms / 1000).toFixed(1)} s [${s.info}]`;
}

/** test/fixtures/instance-norm-running-stats.json (PyTorch, float64, NHWC). */
export interface RunningStatsFixture {
  shape: number[];
  epsilon: number;
  momentum: number;
  gamma: number[];
  beta: number[];
  train_steps: Array<{x: number[], y: number[], running_mean: number[], running_var: number[]}>;
  eval: {x: number[], y: number[]};
}

/**
 * InstanceNormalization({trackRunningStats: true}) on the active backend
 * against PyTorch: training steps (outputs and running statistics), then
 * inference with the running statistics. Returns the largest error (same
 * measure as the parity suite) and the tensors left behind.
 */
export async function checkRunningStats(tf: TF, lib: Lib, fx: RunningStatsFixture): Promise<{maxErr: number, leaked: number}> {
  const before = tf.memory().numTensors;
  const layer = lib.layers.instanceNormalization({trackRunningStats: true, momentum: fx.momentum, epsilon: fx.epsilon});
  const C = fx.shape[fx.shape.length - 1];
  const zeros = tf.zeros(fx.shape);
  tf.dispose([zeros, layer.apply(zeros) as Tensor]);
  const init = [tf.tensor1d(fx.gamma), tf.tensor1d(fx.beta), tf.zeros([C]), tf.ones([C])];
  layer.setWeights(init);
  tf.dispose(init);
  let err = 0;
  const note = (got: ArrayLike<number>, want: ArrayLike<number>) => {
    const e = maxErr(got, want);
    if (!(e <= err)) err = e;
  };
  for (const step of fx.train_steps) {
    const x = tf.tensor(step.x, fx.shape);
    const y = layer.apply(x, {training: true}) as Tensor;
    note(await y.data(), step.y);
    const [, , mean, variance] = layer.getWeights();
    note(await mean.data(), step.running_mean);
    note(await variance.data(), step.running_var);
    tf.dispose([x, y]);
  }
  const xe = tf.tensor(fx.eval.x, fx.shape);
  const ye = layer.apply(xe) as Tensor;
  note(await ye.data(), fx.eval.y);
  tf.dispose([xe, ye]);
  layer.dispose();
  return {maxErr: err, leaked: tf.memory().numTensors - before};
}
