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
  columnNorms, denseRef, gradsFD, spectralUpdateRef, weightNormDataInitRef, weightNormKernelRef,
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

interface Dense {
  n: number;
  u: number;
  bias: boolean;
  activation: 'linear'|'tanh';
}

interface Draft {
  name: string;
  inShape: number[];
  dense: Dense;
  training: boolean;
  weights: Array<{name: string, shape: number[], dtype?: 'bool', trainable: boolean, mean?: number, std?: number, fill?: number}>;
  layer: (lib: Lib) => Layer;
  /** The weights after the call, and the function of (x, trainable weights after the call) whose gradients the call gives. */
  reference: (x: Float64Array, w: Float64Array[]) => {after: Float64Array[], f: (inputs: Float64Array[]) => Float64Array};
}

const rowsOf = (inShape: number[]) => inShape.slice(0, -1).reduce((a, b) => a * b, 1);

/** The wrapped Dense as a serialized {className, config} (the wrapper builds it with the page's or jest's tfjs). */
const denseOf = (d: Dense) => ({className: 'Dense', config: {units: d.u, useBias: d.bias, activation: d.activation, name: 'dense'}});

function drafts(): Draft[] {
  const out: Draft[] = [];
  // SpectralNormalization: weights kernel, (bias,) vector_u; training runs the power iteration and assigns.
  const spectral = (name: string, inShape: number[], d: Dense, iterations: number, opts: {zeroKernel?: boolean} = {}) => {
    for (const training of [false, true]) {
      const rows = rowsOf(inShape);
      out.push({
        name: `spectral/${name} ${training ? 'training' : 'inference'}`, inShape, dense: d, training,
        weights: [{name: 'kernel', shape: [d.n, d.u], trainable: true, mean: 0, std: 0.6, fill: opts.zeroKernel ? 0 : undefined},
          ...(d.bias ? [{name: 'bias', shape: [d.u], trainable: true, mean: 0.1, std: 0.3}] : []),
          {name: 'vector_u', shape: [1, d.u], trainable: false, mean: 0, std: 1}],
        layer: (lib) => new lib.SpectralNormalization({layer: denseOf(d), powerIterations: iterations}),
        reference: (x, w) => {
          const [kernel, bias, u0] = d.bias ? w : [w[0], null, w[1]];
          const next = training ? spectralUpdateRef(kernel, d.n, d.u, u0, iterations) : {u: u0, kernel};
          return {
            after: [next.kernel, ...(bias ? [bias] : []), next.u],
            f: (a) => denseRef(a[0], rows, d.n, d.u, a[1], d.bias ? a[2] : null, d.activation),
          };
        },
      });
    }
  };
  spectral('dense [4,5]->3, 1 iteration', [4, 5], {n: 5, u: 3, bias: true, activation: 'linear'}, 1);
  spectral('dense [2,3,4]->5 tanh, no bias, 3 iterations', [2, 3, 4], {n: 4, u: 5, bias: false, activation: 'tanh'}, 3);
  spectral('dense [3,4]->2, all-zero kernel (left as is)', [3, 4], {n: 4, u: 2, bias: true, activation: 'linear'}, 1, {zeroKernel: true});
  // WeightNormalization: weights g, kernel (v), (bias,) initialized, (data init: data_dep_init/kernel, /bias).
  const weight = (name: string, inShape: number[], d: Dense, dataInit: boolean, initialized: boolean, modes: boolean[]) => {
    for (const training of modes) {
      const rows = rowsOf(inShape);
      out.push({
        name: `weight/${name} ${training ? 'training' : 'inference'}`, inShape, dense: d, training,
        weights: [{name: 'g', shape: [d.u], trainable: true, mean: 1, std: 0.3},
          {name: 'kernel', shape: [d.n, d.u], trainable: true, mean: 0, std: 0.6},
          ...(d.bias ? [{name: 'bias', shape: [d.u], trainable: true, mean: 0.1, std: 0.3}] : []),
          {name: 'initialized', shape: [], dtype: 'bool' as const, trainable: false, fill: initialized ? 1 : 0},
          ...(dataInit ? [{name: 'data_dep_init/kernel', shape: [d.n, d.u], trainable: false, mean: 0, std: 0.5},
            ...(d.bias ? [{name: 'data_dep_init/bias', shape: [d.u], trainable: false, mean: -0.2, std: 0.3}] : [])] : [])],
        layer: (lib) => new lib.WeightNormalization({layer: denseOf(d), dataInit}),
        reference: (x, w) => {
          const [g0, v] = w;
          let k = 2;
          const b0 = d.bias ? w[k++] : null;
          const flag = w[k++];
          const clone = w.slice(k);
          let g = g0;
          let b = b0;
          if (flag[0] === 0 && dataInit) {
            const init = weightNormDataInitRef(x, rows, d.n, d.u, clone[0], d.bias ? clone[1] : null, g0);
            g = init.g;
            if (d.bias) b = init.bias;
          } else if (flag[0] === 0) {
            g = columnNorms(v, d.n, d.u);
          }
          return {
            after: [g, v, ...(b ? [b] : []), Float64Array.of(1), ...clone],
            f: (a) => denseRef(a[0], rows, d.n, d.u, weightNormKernelRef(a[2], d.n, d.u, a[1]), d.bias ? a[3] : null, d.activation),
          };
        },
      });
    }
  };
  weight('dense [6,5]->3 tanh, first call: data init', [6, 5], {n: 5, u: 3, bias: true, activation: 'tanh'}, true, false, [false, true]);
  weight('dense [2,3,4]->2, no bias, first call: init norm (dataInit false)', [2, 3, 4], {n: 4, u: 2, bias: false, activation: 'linear'},
         false, false, [true]);
  weight('dense [4,5]->3, initialized (a loaded model)', [4, 5], {n: 5, u: 3, bias: true, activation: 'linear'}, true, true, [false, true]);
  return out;
}

/** Every wrapper case, with its reference; halfFloat rounds the inputs to float16 first. */
export function buildWrapperCases(opts: {halfFloat?: boolean, only?: string[]} = {}): WrapperCase[] {
  const half = opts.halfFloat ?? false;
  const round = (a: Float32Array) => (half ? a.map(toHalf) : a);
  return drafts().map((d, k) => ({d, k})).filter(({d}) => !opts.only || opts.only.some((s) => d.name.includes(s))).map(({d, k}) => {
    const rand = rng(7000 + k);
    const outShape = [...d.inShape.slice(0, -1), d.dense.u];
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
      name: d.name, inShape: d.inShape, outShape, training: d.training, x, dy, weights, layer: d.layer,
      ref: [y, ...after, ...grads],
      quantities: ['y', ...weights.map((w) => `${w.name} after`), 'dx', ...weights.filter((w) => w.trainable).map((w) => `d${w.name}`)],
    };
  });
}

/** Runs one case (see the file's header); the got values are in the order of c.ref. */
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
