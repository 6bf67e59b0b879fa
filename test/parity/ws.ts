/**
 * Weight Standardization on the active backend against float64 JS
 * references (no tfjs or Node imports: runs under jest and in the browser
 * page, like ./suite.ts):
 *
 * - the op `weightStandardization` on kernels of rank 2 to 4, axis -1 and
 *   another axis, with large offsets (mean 1e3): forward, and the gradient
 *   of sum(W' * dy) against central finite differences of the float64
 *   reference;
 * - WSConv2D / WSConv1D (valid and same padding, strides, bias, relu):
 *   output, and the gradients of sum(y * dy) for x, the raw kernel and the
 *   bias, against a float64 conv of the standardized kernel and its finite
 *   differences.
 *
 * Error measure as the parity suite: max |a - r| / max(1, |r|).
 */
import type * as TfModule from '@tensorflow/tfjs';

import {normals, rng} from '../reference';
import type {Lib, TF} from './suite';
import {maxErr} from './suite';

type Tensor = TfModule.Tensor;

export interface WsRecord {
  name: string;
  backend: string;
  maxErr: number;
  leaked: number;
  /**
   * Whether gradients were checked: always for the op; for the conv layers
   * not where the backend has no Conv2DBackpropFilter (wasm in tfjs 4.22,
   * where tfjs's conv gradient cannot run at all): there, the output only.
   */
  gradChecked: boolean;
  /** The tolerance of this case. */
  tol: number;
  error?: string;
}

const size = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

/** Float64 reference of the op: per slice along `axis`, (w - mean) / sqrt(var + eps). */
export function refStandardize(w: ArrayLike<number>, shape: number[], axis: number, eps: number): Float64Array {
  const a = axis < 0 ? axis + shape.length : axis;
  const inner = size(shape.slice(a + 1));
  const c = shape[a];
  const outer = size(shape.slice(0, a));
  const n = outer * inner;
  const out = new Float64Array(w.length);
  for (let ch = 0; ch < c; ch++) {
    const idx = (o: number, i: number) => (o * c + ch) * inner + i;
    let s = 0;
    for (let o = 0; o < outer; o++) for (let i = 0; i < inner; i++) s += w[idx(o, i)];
    const m = s / n;
    let v = 0;
    for (let o = 0; o < outer; o++) for (let i = 0; i < inner; i++) v += (w[idx(o, i)] - m) ** 2;
    const r = 1 / Math.sqrt(v / n + eps);
    for (let o = 0; o < outer; o++) for (let i = 0; i < inner; i++) out[idx(o, i)] = (w[idx(o, i)] - m) * r;
  }
  return out;
}

/** Central finite differences of f (float64) at x, step h. */
function fd(f: (x: Float64Array) => number, x: ArrayLike<number>, h: number): Float64Array {
  const base = Float64Array.from(x);
  const g = new Float64Array(base.length);
  for (let i = 0; i < base.length; i++) {
    const v = base[i];
    base[i] = v + h;
    const fp = f(base);
    base[i] = v - h;
    const fm = f(base);
    base[i] = v;
    g[i] = (fp - fm) / (2 * h);
  }
  return g;
}

const dot = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
};

export interface ConvSpec {
  rank: 1|2;
  /** x: [n, h, (w,) cin]; kernel: [kh, (kw,) cin, cout]. */
  xShape: number[];
  kernel: number[];
  strides: number;
  padding: 'valid'|'same';
  useBias: boolean;
  relu: boolean;
}

/** Float64 NHWC / NWC convolution (2-D; 1-D as height 1), tfjs's 'same' padding. */
export function refConv(x: ArrayLike<number>, w: ArrayLike<number>, b: ArrayLike<number>|null, s: ConvSpec): {y: Float64Array, shape: number[]} {
  const [n, h, wd, cin] = s.rank === 2 ? s.xShape : [s.xShape[0], 1, s.xShape[1], s.xShape[2]];
  const [kh, kw] = s.rank === 2 ? s.kernel : [1, s.kernel[0]];
  const cout = s.kernel[s.kernel.length - 1];
  const sh = s.rank === 2 ? s.strides : 1;
  const sw = s.strides;
  const outDim = (len: number, k: number, st: number) => (s.padding === 'same' ? Math.ceil(len / st) : Math.ceil((len - k + 1) / st));
  const oh = outDim(h, kh, sh);
  const ow = outDim(wd, kw, sw);
  const pad = (len: number, o: number, k: number, st: number) => (s.padding === 'same' ? Math.max(0, Math.floor(((o - 1) * st + k - len) / 2)) : 0);
  const pt = pad(h, oh, kh, sh);
  const pl = pad(wd, ow, kw, sw);
  const y = new Float64Array(n * oh * ow * cout);
  for (let bi = 0; bi < n; bi++) {
    for (let i = 0; i < oh; i++) {
      for (let j = 0; j < ow; j++) {
        for (let o = 0; o < cout; o++) {
          let acc = b ? b[o] : 0;
          for (let r = 0; r < kh; r++) {
            const yi = i * sh + r - pt;
            if (yi < 0 || yi >= h) continue;
            for (let c = 0; c < kw; c++) {
              const xj = j * sw + c - pl;
              if (xj < 0 || xj >= wd) continue;
              for (let k = 0; k < cin; k++) acc += x[((bi * h + yi) * wd + xj) * cin + k] * w[((r * kw + c) * cin + k) * cout + o];
            }
          }
          y[((bi * oh + i) * ow + j) * cout + o] = s.relu ? Math.max(0, acc) : acc;
        }
      }
    }
  }
  return {y, shape: s.rank === 2 ? [n, oh, ow, cout] : [n, ow, cout]};
}

interface OpCase {
  name: string;
  shape: number[];
  axis: number;
  epsilon: number;
  offset: number;
  /** Default 1e-4. */
  tol?: number;
}

const OP_CASES: OpCase[] = [
  {name: 'op [3,3,4,5] axis -1', shape: [3, 3, 4, 5], axis: -1, epsilon: 1e-5, offset: 0},
  {name: 'op [5,3,6] axis -1', shape: [5, 3, 6], axis: -1, epsilon: 1e-5, offset: 0},
  {name: 'op [7,4] axis -1 eps 0.1', shape: [7, 4], axis: -1, epsilon: 0.1, offset: 0},
  {name: 'op [4,6,3] axis 0', shape: [4, 6, 3], axis: 0, epsilon: 1e-5, offset: 0},
  // Mean 1e3, std 0.7: float32 holds the mean only to ulp(1e3) = 6e-5, i.e. ~1e-4 of the spread, whatever the order of the sums.
  {name: 'op [3,3,2,4] mean 1e3', shape: [3, 3, 2, 4], axis: -1, epsilon: 1e-5, offset: 1e3, tol: 1e-3},
];

const CONV_CASES: Array<ConvSpec & {name: string}> = [
  {name: 'WSConv2D valid bias', rank: 2, xShape: [2, 5, 5, 3], kernel: [3, 3, 3, 4], strides: 1, padding: 'valid', useBias: true, relu: false},
  {name: 'WSConv2D same stride 2 relu', rank: 2, xShape: [2, 6, 5, 2], kernel: [3, 2, 2, 3], strides: 2, padding: 'same', useBias: false, relu: true},
  {name: 'WSConv1D same bias', rank: 1, xShape: [2, 7, 3], kernel: [3, 3, 4], strides: 1, padding: 'same', useBias: true, relu: false},
  {name: 'WSConv1D valid stride 2', rank: 1, xShape: [3, 8, 2], kernel: [2, 2, 5], strides: 2, padding: 'valid', useBias: false, relu: false},
];

async function runOpCase(tf: TF, lib: Lib, c: OpCase, seed: number): Promise<number> {
  const rand = rng(seed);
  const w = normals(rand, size(c.shape), c.offset, 0.7);
  const dy = normals(rand, size(c.shape));
  const ref = refStandardize(w, c.shape, c.axis, c.epsilon);
  // float64 FD in units of the spread (0.7): h = 1e-4 * 0.7.
  const refGrad = fd((v) => dot(refStandardize(v, c.shape, c.axis, c.epsilon), dy), w, 7e-5);
  const wt = tf.tensor(w, c.shape);
  const dyt = tf.tensor(dy, c.shape);
  const y = lib.ops.weightStandardization(wt, {axis: c.axis, epsilon: c.epsilon});
  const g = tf.grad((k: Tensor) => tf.sum(tf.mul(lib.ops.weightStandardization(k, {axis: c.axis, epsilon: c.epsilon}), dyt)))(wt);
  const [yv, gv] = [await y.data(), await g.data()];
  tf.dispose([wt, dyt, y, g]);
  return Math.max(maxErr(yv, ref), maxErr(gv, refGrad));
}

async function runConvCase(tf: TF, lib: Lib, c: ConvSpec & {name: string}, seed: number, grads: boolean): Promise<number> {
  const rand = rng(seed);
  const cout = c.kernel[c.kernel.length - 1];
  const x = normals(rand, size(c.xShape));
  const k = normals(rand, size(c.kernel), 0.3, 0.5);
  const b = c.useBias ? normals(rand, cout) : null;
  const eps = 1e-5;
  const f64 = (xv: ArrayLike<number>, kv: ArrayLike<number>, bv: ArrayLike<number>|null) =>
    refConv(xv, refStandardize(kv, c.kernel, -1, eps), bv, c);
  const {y: ref, shape: yShape} = f64(x, k, b);
  const dy = normals(rand, ref.length);
  const h = 1e-5;
  const refDx = fd((v) => dot(f64(v, k, b).y, dy), x, h);
  const refDk = fd((v) => dot(f64(x, v, b).y, dy), k, h);
  const refDb = b ? fd((v) => dot(f64(x, k, v).y, dy), b, h) : null;

  const args = {
    filters: cout, kernelSize: c.rank === 2 ? c.kernel.slice(0, 2) : c.kernel[0], strides: c.strides, padding: c.padding,
    useBias: c.useBias, activation: c.relu ? 'relu' as const : undefined,
  };
  const layer = c.rank === 2 ? lib.layers.wsConv2d(args) : lib.layers.wsConv1d(args);
  const xt = tf.tensor(x, c.xShape);
  const dyt = tf.tensor(dy, yShape);
  tf.dispose(layer.apply(xt) as Tensor);
  const vals = [tf.tensor(k, c.kernel), ...(b ? [tf.tensor(b, [cout])] : [])];
  layer.setWeights(vals);
  tf.dispose(vals);
  const y = layer.apply(xt) as Tensor;
  if (!grads) {
    const yv = await y.data();
    tf.dispose([xt, dyt, y]);
    layer.dispose();
    return maxErr(yv, ref);
  }
  const xVar = tf.variable(xt, true);
  const wVars = layer.trainableWeights.map((w) => w.read() as TfModule.Variable);
  const {value, grads: g} = tf.variableGrads(() => tf.sum(tf.mul(layer.apply(xVar) as Tensor, dyt)) as TfModule.Scalar, [xVar, ...wVars]);
  const got = await Promise.all([y, g[xVar.name], ...wVars.map((v) => g[v.name])].map((t) => t.data()));
  tf.dispose([xt, dyt, y, xVar, value, ...Object.values(g)]);
  layer.dispose();
  // ReLU kinks: finite differences across a kink are off; none of these seeds puts a pre-activation within h of 0.
  return Math.max(maxErr(got[0], ref), maxErr(got[1], refDx), maxErr(got[2], refDk), b ? maxErr(got[3], refDb as Float64Array) : 0);
}

/** Every WS case on the active backend; one record per case. Never throws for a case. */
export async function runWsParity(tf: TF, lib: Lib): Promise<WsRecord[]> {
  const backend = tf.getBackend();
  const records: WsRecord[] = [];
  const filterGrad = tf.getKernel('Conv2DBackpropFilter', backend) != null;
  const run = async (name: string, gradChecked: boolean, tol: number, fn: () => Promise<number>) => {
    const before = tf.memory().numTensors;
    try {
      const err = await fn();
      records.push({name, backend, maxErr: err, leaked: tf.memory().numTensors - before, gradChecked, tol});
    } catch (e) {
      records.push({name, backend, maxErr: Infinity, leaked: 0, gradChecked, tol, error: (e as Error).message});
    }
  };
  for (const [i, c] of OP_CASES.entries()) await run(c.name, true, c.tol ?? 1e-4, () => runOpCase(tf, lib, c, 100 + i));
  for (const [i, c] of CONV_CASES.entries()) await run(c.name, filterGrad, 1e-4, () => runConvCase(tf, lib, c, 200 + i, filterGrad));
  return records;
}
