/**
 * The wrappers of the family parity suite (./family.ts): Keras 3's
 * SpectralNormalization and TensorFlow Addons' WeightNormalization, each
 * around a tf.layers.dense, on every backend. Like ./family.ts it imports
 * neither tfjs nor the package (both are passed in), so the browser page
 * runs it too.
 *
 * A case is one call of the wrapper in one mode (training or inference)
 * from weights set by the case (WeightNormalization's bool `initialized`
 * included). It reads the output, every weight after that call (the
 * non-trainable ones a training call or a first call updates: vector_u
 * and the kernel, initialized, g and the bias of a data init), and, from the
 * same weights again, the gradients of sum(y * dy) for x and every trainable
 * weight in that mode (at the values the call assigns: sigma and the data
 * init are not differentiated, as in Keras and TFA). Each is compared with
 * the float64 reference of test/family_reference.ts (gradients by central
 * finite differences of it) and with the cpu backend's result.
 */
import type * as TfModule from '@tensorflow/tfjs';

import {
  columnNorms, conv2dRef, denseRef, gradsFD, spectralUpdateRef, weightNormDataInitRef, weightNormKernelRef,
} from '../family_reference';
import {normals, rng} from '../reference';
import {toHalf} from './cases';
import type {Lib, TF} from './suite';

type Tensor = TfModule.Tensor;
type Layer = TfModule.layers.Layer;

export interface WrapperWeight {
  /** The name below the wrapper's scope: 'kernel', 'vector_u', 'g', 'data_dep_init/bias', ... */
  name: string;
  shape: number[];
  dtype: 'float32'|'bool';
  values: Float32Array;
  trainable: boolean;
}

export interface WrapperCase {
  name: string;
  /** The wrapped layer is a conv: on wasm (no Conv2DBackpropFilter in tfjs 4.22) only y and the weights after the call are read. */
  conv: boolean;
  inShape: number[];
  outShape: number[];
  training: boolean;
  x: Float32Array;
  dy: Float32Array;
  /** The wrapper's weights in its order. */
  weights: WrapperWeight[];
  layer: (lib: Lib) => Layer;
  /** y, every weight after the call, then dx and one gradient per trainable weight (in weights' order). */
  ref: Float64Array[];
  quantities: string[];
}

/** The wrapped layer: its config, kernel shape and float64 forward. */
interface Wrapped {
  label: string;
  config: {className: string, config: TfModule.serialization.ConfigDict};
  kernelShape: number[];
  /** Output units (the kernel's last axis). */
  u: number;
  bias: boolean;
  /** A conv: tfjs 4.22's wasm backend has no Conv2DBackpropFilter, so there the gradients are not read. */
  conv: boolean;
  /** The output positions (rows of u values). */
  rows: number;
  forward: (x: ArrayLike<number>, kernel: ArrayLike<number>, bias: ArrayLike<number>|null, linear?: boolean) => Float64Array;
}

const rowsOf = (inShape: number[]) => inShape.slice(0, -1).reduce((a, b) => a * b, 1);

function dense(inShape: number[], u: number, bias: boolean, activation: 'linear'|'tanh'): Wrapped {
  const n = inShape[inShape.length - 1];
  return {
    label: `dense ${JSON.stringify(inShape)}->${u}${activation === 'tanh' ? ' tanh' : ''}${bias ? '' : ', no bias'}`,
    config: {className: 'Dense', config: {units: u, useBias: bias, activation, name: 'dense'}},
    kernelShape: [n, u], u, bias, conv: false, rows: rowsOf(inShape),
    forward: (x, k, b, linear) => denseRef(x, rowsOf(inShape), n, u, k, b, linear ? 'linear' : activation),
  };
}

function conv2d(inShape: number[], kh: number, kw: number, F: number, bias: boolean, activation: 'linear'|'tanh'): Wrapped {
  const [N, H, W, C] = inShape;
  return {
    label: `conv2d ${JSON.stringify(inShape)} ${kh}x${kw}->${F}${activation === 'tanh' ? ' tanh' : ''}${bias ? '' : ', no bias'}`,
    config: {className: 'Conv2D', config: {filters: F, kernelSize: [kh, kw], useBias: bias, activation, name: 'conv2d'}},
    kernelShape: [kh, kw, C, F], u: F, bias, conv: true, rows: N * (H - kh + 1) * (W - kw + 1),
    forward: (x, k, b, linear) => conv2dRef(x, inShape, k, kh, kw, F, b, linear ? 'linear' : activation),
  };
}

interface Draft {
  name: string;
  inShape: number[];
  wrapped: Wrapped;
  training: boolean;
  weights: Array<{name: string, shape: number[], dtype?: 'bool', trainable: boolean, mean?: number, std?: number, fill?: number}>;
  layer: (lib: Lib) => Layer;
  /** The weights after the call, and the function of (x, trainable weights after the call) whose gradients the call gives. */
  reference: (x: Float64Array, w: Float64Array[]) => {after: Float64Array[], f: (inputs: Float64Array[]) => Float64Array};
}

function drafts(): Draft[] {
  const out: Draft[] = [];
  // SpectralNormalization: weights kernel, vector_u, (bias) (Keras 3's order); training runs the power iteration on the kernel
  // as [-1, units] and assigns.
  const spectral = (inShape: number[], d: Wrapped, iterations: number, opts: {zeroKernel?: boolean} = {}) => {
    const rows = d.kernelShape.slice(0, -1).reduce((a, b) => a * b, 1);
    for (const training of [false, true]) {
      out.push({
        name: `spectral/${d.label}, ${iterations} iteration${iterations > 1 ? 's' : ''}${opts.zeroKernel ? ', all-zero kernel (left as is)' : ''} ` +
              `${training ? 'training' : 'inference'}`,
        inShape, wrapped: d, training,
        weights: [{name: 'kernel', shape: d.kernelShape, trainable: true, mean: 0, std: 0.6, fill: opts.zeroKernel ? 0 : undefined},
          {name: 'vector_u', shape: [1, d.u], trainable: false, mean: 0, std: 1},
          ...(d.bias ? [{name: 'bias', shape: [d.u], trainable: true, mean: 0.1, std: 0.3}] : [])],
        layer: (lib) => new lib.SpectralNormalization({layer: d.config, powerIterations: iterations}),
        reference: (x, w) => {
          const [kernel, u0, bias] = d.bias ? w : [w[0], w[1], null];
          const next = training ? spectralUpdateRef(kernel, rows, d.u, u0, iterations) : {u: u0, kernel};
          return {
            after: [next.kernel, next.u, ...(bias ? [bias] : [])],
            f: (a) => d.forward(a[0], a[1], d.bias ? a[2] : null),
          };
        },
      });
    }
  };
  spectral([4, 5], dense([4, 5], 3, true, 'linear'), 1);
  spectral([2, 3, 4], dense([2, 3, 4], 5, false, 'tanh'), 3);
  spectral([3, 4], dense([3, 4], 2, true, 'linear'), 1, {zeroKernel: true});
  spectral([2, 4, 4, 3], conv2d([2, 4, 4, 3], 2, 3, 4, true, 'linear'), 2);
  // WeightNormalization: weights g, kernel (v), (bias,) initialized, (data init: data_dep_init/kernel, /bias).
  const weight = (name: string, inShape: number[], d: Wrapped, dataInit: boolean, initialized: boolean, modes: boolean[]) => {
    const n = d.kernelShape.slice(0, -1).reduce((a, b) => a * b, 1);
    for (const training of modes) {
      out.push({
        name: `weight/${d.label}, ${name} ${training ? 'training' : 'inference'}`, inShape, wrapped: d, training,
        weights: [{name: 'g', shape: [d.u], trainable: true, mean: 1, std: 0.3},
          {name: 'kernel', shape: d.kernelShape, trainable: true, mean: 0, std: 0.6},
          ...(d.bias ? [{name: 'bias', shape: [d.u], trainable: true, mean: 0.1, std: 0.3}] : []),
          {name: 'initialized', shape: [], dtype: 'bool' as const, trainable: false, fill: initialized ? 1 : 0},
          ...(dataInit ? [{name: 'data_dep_init/kernel', shape: d.kernelShape, trainable: false, mean: 0, std: 0.5},
            ...(d.bias ? [{name: 'data_dep_init/bias', shape: [d.u], trainable: false, mean: -0.2, std: 0.3}] : [])] : [])],
        layer: (lib) => new lib.WeightNormalization({layer: d.config, dataInit}),
        reference: (x, w) => {
          const [g0, v] = w;
          let k = 2;
          const b0 = d.bias ? w[k++] : null;
          const flag = w[k++];
          const clone = w.slice(k);
          let g = g0;
          let b = b0;
          if (flag[0] === 0 && dataInit) {
            const xInit = d.forward(x, clone[0], d.bias ? clone[1] : null, true);
            const init = weightNormDataInitRef(xInit, d.rows, d.u, g0);
            g = init.g;
            if (d.bias) b = init.bias;
          } else if (flag[0] === 0) {
            g = columnNorms(v, n, d.u);
          }
          return {
            after: [g, v, ...(b ? [b] : []), Float64Array.of(1), ...clone],
            f: (a) => d.forward(a[0], weightNormKernelRef(a[2], n, d.u, a[1]), d.bias ? a[3] : null),
          };
        },
      });
    }
  };
  weight('first call: data init', [6, 5], dense([6, 5], 3, true, 'tanh'), true, false, [false, true]);
  weight('first call: init norm (dataInit false)', [2, 3, 4], dense([2, 3, 4], 2, false, 'linear'), false, false, [true]);
  weight('initialized (a loaded model)', [4, 5], dense([4, 5], 3, true, 'linear'), true, true, [false, true]);
  weight('first call: data init', [2, 4, 5, 2], conv2d([2, 4, 5, 2], 3, 2, 3, true, 'tanh'), true, false, [true]);
  return out;
}

/** Every wrapper case, with its reference; halfFloat rounds the inputs to float16 first. */
export function buildWrapperCases(opts: {halfFloat?: boolean, only?: string[]} = {}): WrapperCase[] {
  const half = opts.halfFloat ?? false;
  const round = (a: Float32Array) => (half ? a.map(toHalf) : a);
  return drafts().map((d, k) => ({d, k})).filter(({d}) => !opts.only || opts.only.some((s) => d.name.includes(s))).map(({d, k}) => {
    const rand = rng(7000 + k);
    const outShape = d.wrapped.conv ?
        [d.inShape[0], d.inShape[1] - d.wrapped.kernelShape[0] + 1, d.inShape[2] - d.wrapped.kernelShape[1] + 1, d.wrapped.u] :
        [...d.inShape.slice(0, -1), d.wrapped.u];
    const x = round(normals(rand, d.inShape.reduce((a, b) => a * b, 1), 0.3, 1.5));
    const dy = round(normals(rand, outShape.reduce((a, b) => a * b, 1)));
    const weights: WrapperWeight[] = d.weights.map((w) => {
      const size = w.shape.reduce((a, b) => a * b, 1);
      const values = w.fill !== undefined ? new Float32Array(size).fill(w.fill) : round(normals(rand, size, w.mean ?? 0, w.std ?? 1));
      return {name: w.name, shape: w.shape, dtype: w.dtype ?? 'float32', values, trainable: w.trainable};
    });
    const x64 = Float64Array.from(x);
    const {after, f} = d.reference(x64, weights.map((w) => Float64Array.from(w.values)));
    const trainable = weights.flatMap((w, i) => (w.trainable ? [after[i]] : []));
    const y = f([x64, ...trainable]);
    const grads = gradsFD(f, [x64, ...trainable], dy);
    return {
      name: d.name, conv: d.wrapped.conv, inShape: d.inShape, outShape, training: d.training, x, dy, weights, layer: d.layer,
      ref: [y, ...after, ...grads],
      quantities: ['y', ...weights.map((w) => `${w.name} after`), 'dx', ...weights.filter((w) => w.trainable).map((w) => `d${w.name}`)],
    };
  });
}

/** Whether the case's gradients can be computed on this backend (see WrapperCase.conv). */
export const wrapperGradsOn = (c: WrapperCase, backend: string) => !(c.conv && backend === 'wasm');

/** Runs one case (see the file's header); the got values are in the order of c.ref (without the gradients where wrapperGradsOn is false). */
export async function runWrapper(tf: TF, c: WrapperCase, lib: Lib): Promise<{got: ArrayLike<number>[], leaked: number}> {
  const before = tf.memory().numTensors;
  const layer = c.layer(lib);
  layer.apply(tf.input({shape: c.inShape.slice(1)}));  // builds it (no data: no call, no initialization)
  const below = (name: string) => name.split('/').slice(1).join('/');
  const names = layer.weights.map((w) => below(w.originalName));
  if (JSON.stringify(names) !== JSON.stringify(c.weights.map((w) => w.name))) {
    throw new Error(`${layer.getClassName()} has weights ${JSON.stringify(names)}, the case ${JSON.stringify(c.weights.map((w) => w.name))}`);
  }
  const setWeights = () => {
    const values = c.weights.map((w) => tf.tensor(w.values, w.shape, w.dtype));
    layer.setWeights(values);
    tf.dispose(values);
  };
  const x = tf.tensor(c.x, c.inShape);
  const dy = tf.tensor(c.dy, c.outShape);
  setWeights();
  const y = layer.apply(x, {training: c.training}) as Tensor;
  const got: ArrayLike<number>[] = [await y.data() as Float32Array];
  for (const w of layer.weights) got.push(await w.read().data() as Float32Array|Uint8Array);
  if (!wrapperGradsOn(c, tf.getBackend())) {
    tf.dispose([x, dy, y]);
    layer.dispose();
    return {got, leaked: tf.memory().numTensors - before};
  }
  setWeights();
  const xVar = tf.variable(x, true);
  const vars = layer.trainableWeights.map((w) => w.read() as TfModule.Variable);
  const {value, grads} = tf.variableGrads(
      () => tf.sum(tf.mul(layer.apply(xVar, {training: c.training}) as Tensor, dy)) as TfModule.Scalar, [xVar, ...vars]);
  for (const v of [xVar, ...vars]) got.push(await grads[v.name].data() as Float32Array);
  tf.dispose([x, dy, y, xVar, value, ...Object.values(grads)]);
  layer.dispose();
  return {got, leaked: tf.memory().numTensors - before};
}
