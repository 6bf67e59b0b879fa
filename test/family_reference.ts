/**
 * Float64 references, as plain loops (no tfjs), for the rest of the
 * normalization family: UnitNormalization, LocalResponseNormalization (the
 * TensorFlow and the PyTorch conventions), FilterResponseNormalization and
 * TLU, the two wrappers' updates over a Dense (Keras 3's
 * SpectralNormalization power iteration, TensorFlow Addons'
 * WeightNormalization kernel and initializations); and central finite
 * differences of any of them. Written from the reference frameworks'
 * definitions (Keras 3's UnitNormalization and SpectralNormalization,
 * tf.nn.local_response_normalization, torch.nn.functional.local_response_norm,
 * TensorFlow Addons' FilterResponseNormalization, TLU and
 * WeightNormalization), not from this package's code.
 */
import {unravel} from './reference';

const size = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

/** Flat index of idx in shape. */
function ravel(idx: readonly number[], shape: readonly number[]): number {
  return idx.reduce((acc, v, i) => acc * shape[i] + v, 0);
}

/** For each flat index, the id of its set when the axes `axes` are reduced; and the number of sets. */
export function setsOver(shape: readonly number[], axes: readonly number[]): {setOf: Int32Array, numSets: number} {
  const keep = shape.map((_, i) => i).filter((i) => !axes.includes(i));
  const setOf = new Int32Array(size(shape));
  for (let i = 0; i < setOf.length; i++) {
    const idx = unravel(i, shape);
    setOf[i] = keep.reduce((acc, ax) => acc * shape[ax] + idx[ax], 0);
  }
  return {setOf, numSets: size(keep.map((i) => shape[i]))};
}

/** Keras 3's UnitNormalization / ops.normalize: x / max(||x||₂, epsilon) over `axes` (resolved). */
export function unitNormRef(x: ArrayLike<number>, shape: readonly number[], axes: readonly number[], epsilon: number): Float64Array {
  const {setOf, numSets} = setsOver(shape, axes);
  const sq = new Float64Array(numSets);
  for (let i = 0; i < x.length; i++) sq[setOf[i]] += x[i] * x[i];
  return Float64Array.from(x, (v, i) => v / Math.max(Math.sqrt(sq[setOf[i]]), epsilon));
}

/**
 * Local response normalization along `axis` (resolved):
 * y = x / (bias + alpha * sum over the window of x²)^beta, the window of
 * channel c being [c - before, c + after] clipped to the channels (zeros
 * outside). TensorFlow: before = after = depthRadius. PyTorch
 * (LocalResponseNorm(size, alpha, beta, k)): before = floor(size / 2),
 * after = floor((size - 1) / 2), alpha / size, bias k.
 */
export function lrnRef(
    x: ArrayLike<number>, shape: readonly number[], axis: number, before: number, after: number, bias: number,
    alpha: number, beta: number): Float64Array {
  const C = shape[axis];
  const y = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const idx = unravel(i, shape);
    const c = idx[axis];
    let s = 0;
    for (let j = Math.max(0, c - before); j <= Math.min(C - 1, c + after); j++) {
      idx[axis] = j;
      const v = x[ravel(idx, shape)];
      s += v * v;
    }
    y[i] = x[i] / Math.pow(bias + alpha * s, beta);
  }
  return y;
}

/**
 * TensorFlow Addons' FilterResponseNormalization on [N, H, W, C]:
 * nu2 = mean(x², axes [1, 2]); y = gamma * x * rsqrt(nu2 + |epsilon| (+ |learnedEpsilon|)) + beta,
 * gamma and beta of C values.
 */
export function frnRef(
    x: ArrayLike<number>, shape: readonly number[], epsilon: number, gamma: ArrayLike<number>, beta: ArrayLike<number>,
    learnedEpsilon: number|null): Float64Array {
  const {setOf, numSets} = setsOver(shape, [1, 2]);
  const C = shape[3];
  const count = shape[1] * shape[2];
  const nu2 = new Float64Array(numSets);
  for (let i = 0; i < x.length; i++) nu2[setOf[i]] += x[i] * x[i] / count;
  const eps = Math.abs(epsilon) + (learnedEpsilon == null ? 0 : Math.abs(learnedEpsilon));
  return Float64Array.from(x, (v, i) => gamma[i % C] * v / Math.sqrt(nu2[setOf[i]] + eps) + beta[i % C]);
}

/**
 * TensorFlow Addons' TLU: max(x, tau) or, affine, max(x, alpha * x + tau);
 * tau and alpha shaped like x without its batch axis.
 */
export function tluRef(x: ArrayLike<number>, shape: readonly number[], tau: ArrayLike<number>, alpha: ArrayLike<number>|null): Float64Array {
  const per = size(shape.slice(1));
  return Float64Array.from(x, (v, i) => Math.max(v, (alpha ? alpha[i % per] * v : 0) + tau[i % per]));
}

/**
 * Gradients of sum(f(inputs) * dy) for every input, by central finite
 * differences in float64 (step h * max(1, |v|)).
 */
export function gradsFD(
    f: (inputs: Float64Array[]) => ArrayLike<number>, inputs: ReadonlyArray<ArrayLike<number>>, dy: ArrayLike<number>,
    h = 1e-6): Float64Array[] {
  const xs = inputs.map((a) => Float64Array.from(a));
  const loss = () => {
    const y = f(xs);
    let s = 0;
    for (let i = 0; i < y.length; i++) s += y[i] * dy[i];
    return s;
  };
  return xs.map((a) => {
    const out = new Float64Array(a.length);
    for (let i = 0; i < a.length; i++) {
      const keep = a[i];
      const step = h * Math.max(1, Math.abs(keep));
      a[i] = keep + step;
      const up = loss();
      a[i] = keep - step;
      const down = loss();
      a[i] = keep;
      out[i] = (up - down) / (2 * step);
    }
    return out;
  });
}

/** A Dense layer in float64: act(x · kernel + bias) for `rows` rows of n inputs, kernel [n, u] row-major. */
export function denseRef(
    x: ArrayLike<number>, rows: number, n: number, u: number, kernel: ArrayLike<number>, bias: ArrayLike<number>|null,
    activation: 'linear'|'tanh'): Float64Array {
  const y = new Float64Array(rows * u);
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < u; j++) {
      let s = bias ? bias[j] : 0;
      for (let i = 0; i < n; i++) s += x[r * n + i] * kernel[i * u + j];
      y[r * u + j] = activation === 'tanh' ? Math.tanh(s) : s;
    }
  }
  return y;
}

/**
 * Keras 3's SpectralNormalization training update in float64, on the kernel
 * reshaped to [rows, cols]: `iterations` power iterations from u0 with
 * normalize(a) = a / max(||a||, 1e-7) over the whole vector
 * (v = normalize(u Wᵀ), u = normalize(v W)), sigma = v W uᵀ; returns the
 * new vector_u and kernel / sigma, or both unchanged for an all-zero kernel.
 */
export function spectralUpdateRef(
    kernel: ArrayLike<number>, rows: number, cols: number, u0: ArrayLike<number>, iterations: number): {u: Float64Array, kernel: Float64Array} {
  if (Array.from(kernel).every((k) => k === 0)) return {u: Float64Array.from(u0), kernel: Float64Array.from(kernel)};
  const normalize = (a: Float64Array) => {
    const norm = Math.max(Math.sqrt(a.reduce((s, e) => s + e * e, 0)), 1e-7);
    return a.map((e) => e / norm);
  };
  let u = Float64Array.from(u0);
  let v = new Float64Array(rows);
  for (let it = 0; it < iterations; it++) {
    v = normalize(Float64Array.from({length: rows}, (_, i) => {
      let s = 0;
      for (let j = 0; j < cols; j++) s += u[j] * kernel[i * cols + j];
      return s;
    }));
    u = normalize(Float64Array.from({length: cols}, (_, j) => {
      let s = 0;
      for (let i = 0; i < rows; i++) s += v[i] * kernel[i * cols + j];
      return s;
    }));
  }
  let sigma = 0;
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) sigma += v[i] * kernel[i * cols + j] * u[j];
  return {u, kernel: Float64Array.from(kernel, (k) => k / sigma)};
}

/** TensorFlow Addons' WeightNormalization kernel in float64: l2_normalize(v, rows) * g, v [n, u]: v / max(||v col||, 1e-6) * g. */
export function weightNormKernelRef(v: ArrayLike<number>, n: number, u: number, g: ArrayLike<number>): Float64Array {
  const norms = columnNorms(v, n, u);
  return Float64Array.from(v, (e, k) => e / Math.max(norms[k % u], 1e-6) * g[k % u]);
}

/** The Euclidean norm of each column of a [n, u] matrix (TFA's `_init_norm`: g := ||v|| per unit). */
export function columnNorms(v: ArrayLike<number>, n: number, u: number): Float64Array {
  const out = new Float64Array(u);
  for (let i = 0; i < n; i++) for (let j = 0; j < u; j++) out[j] += v[i * u + j] ** 2;
  return out.map(Math.sqrt);
}

/**
 * TensorFlow Addons' `_data_dep_init` in float64, given x_init (the naked
 * clone's output: its kernel and bias, no activation) as `rows` rows of `u`
 * units: per unit, mean and population variance over the rows,
 * scale = 1 / sqrt(var + 1e-10); returns g * scale and -mean * scale.
 */
export function weightNormDataInitRef(xInit: ArrayLike<number>, rows: number, u: number, g: ArrayLike<number>): {g: Float64Array, bias: Float64Array} {
  const mean = new Float64Array(u);
  const sq = new Float64Array(u);
  for (let r = 0; r < rows; r++) for (let j = 0; j < u; j++) mean[j] += xInit[r * u + j] / rows;
  for (let r = 0; r < rows; r++) for (let j = 0; j < u; j++) sq[j] += (xInit[r * u + j] - mean[j]) ** 2 / rows;
  const scale = sq.map((e) => 1 / Math.sqrt(e + 1e-10));
  return {g: Float64Array.from(g, (e, j) => e * scale[j]), bias: mean.map((m, j) => -m * scale[j])};
}

/**
 * A 2-D convolution in float64 (NHWC, 'valid' padding, stride 1): x of
 * `shape` [N, H, W, C], kernel [kh, kw, C, F] row-major, optional bias [F],
 * then the activation; the output is [N, H - kh + 1, W - kw + 1, F].
 */
export function conv2dRef(
    x: ArrayLike<number>, shape: readonly number[], kernel: ArrayLike<number>, kh: number, kw: number, F: number,
    bias: ArrayLike<number>|null, activation: 'linear'|'tanh'): Float64Array {
  const [N, H, W, C] = shape;
  const [Ho, Wo] = [H - kh + 1, W - kw + 1];
  const y = new Float64Array(N * Ho * Wo * F);
  for (let n = 0; n < N; n++) {
    for (let i = 0; i < Ho; i++) {
      for (let j = 0; j < Wo; j++) {
        for (let f = 0; f < F; f++) {
          let s = bias ? bias[f] : 0;
          for (let a = 0; a < kh; a++) {
            for (let b = 0; b < kw; b++) {
              for (let c = 0; c < C; c++) s += x[((n * H + i + a) * W + j + b) * C + c] * kernel[((a * kw + b) * C + c) * F + f];
            }
          }
          y[((n * Ho + i) * Wo + j) * F + f] = activation === 'tanh' ? Math.tanh(s) : s;
        }
      }
    }
  }
  return y;
}
