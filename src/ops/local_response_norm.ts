import * as tf from '@tensorflow/tfjs';

import {fusedSave} from '../kernels/index';
import {taping} from './core';
import {argError, checkFloatTensor, checkOptionKeys, resolveAxis} from './validate';

/** The two conventions of local response normalization's arguments. */
export type LrnConvention = 'tensorflow'|'pytorch';

/** Options of {@link localResponseNorm}. */
export interface LocalResponseNormOptions {
  /**
   * 'tensorflow' (default): `tf.nn.local_response_normalization`'s
   * `depthRadius`, `bias`, `alpha`, `beta`. 'pytorch':
   * `torch.nn.LocalResponseNorm`'s `size`, `alpha`, `beta`, `k`.
   */
  convention?: LrnConvention;
  /** The channel axis the window runs along. Default -1 (tensorflow), 1 (pytorch: [N, C, ...]). */
  axis?: number;
  /** tensorflow: half-width of the window (channels c - r .. c + r). Default 5. */
  depthRadius?: number;
  /** tensorflow: added to the scaled sum of squares. Default 1. */
  bias?: number;
  /** Scale of the sum of squares. Default 1 (tensorflow), 1e-4 (pytorch, divided by `size`). */
  alpha?: number;
  /** Exponent. Default 0.5 (tensorflow), 0.75 (pytorch). */
  beta?: number;
  /** pytorch: the window's width in channels (c - floor(size/2) .. c + floor((size-1)/2)). Required. */
  size?: number;
  /** pytorch: added to the scaled sum of squares. Default 1. */
  k?: number;
}

/** The resolved parameters: window [c - before, c + after], y = x / (bias + alpha * sum)^beta. */
export interface LrnParams {
  convention: LrnConvention;
  axis: number;
  before: number;
  after: number;
  bias: number;
  /** The multiplier of the window sum as applied (pytorch: alpha / size). */
  alpha: number;
  beta: number;
}

const KEYS: Record<LrnConvention, string[]> = {
  tensorflow: ['convention', 'axis', 'depthRadius', 'bias', 'alpha', 'beta'],
  pytorch: ['convention', 'axis', 'size', 'alpha', 'beta', 'k'],
};

function finite(who: string, arg: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isFinite(v)) throw argError(who, arg, v, 'a finite number');
  return v;
}

/**
 * Validates the options (`arg` names the options object in errors) and
 * resolves them to the window and the coefficients; the axis stays as
 * given (negative allowed) until the rank is known.
 */
export function lrnParams(who: string, opts: LocalResponseNormOptions, arg = 'opts'): LrnParams {
  const convention = opts.convention ?? 'tensorflow';
  if (convention !== 'tensorflow' && convention !== 'pytorch') {
    throw argError(who, 'convention', convention, "'tensorflow' or 'pytorch'");
  }
  const other = convention === 'tensorflow' ? 'pytorch' : 'tensorflow';
  checkOptionKeys(who, arg, opts, KEYS[convention], {
    hints: Object.fromEntries(KEYS[other].filter((k) => !KEYS[convention].includes(k)).map((k) => [
      k, `'${k}' is an argument of the ${other} convention (convention: '${other}'); this is the ${convention} one.`])),
  });
  const axis = opts.axis ?? (convention === 'tensorflow' ? -1 : 1);
  if (typeof axis !== 'number' || !Number.isInteger(axis)) {
    throw argError(who, 'axis', axis, 'an integer axis (negative counts from the end)');
  }
  const alpha = finite(who, 'alpha', opts.alpha ?? (convention === 'tensorflow' ? 1 : 1e-4));
  const beta = finite(who, 'beta', opts.beta ?? (convention === 'tensorflow' ? 0.5 : 0.75));
  if (convention === 'tensorflow') {
    const r = opts.depthRadius ?? 5;
    if (typeof r !== 'number' || !Number.isInteger(r) || r < 0) throw argError(who, 'depthRadius', r, 'an integer >= 0');
    return {convention, axis, before: r, after: r, bias: finite(who, 'bias', opts.bias ?? 1), alpha, beta};
  }
  const size = opts.size;
  if (size === undefined) throw argError(who, 'size', size, "given with convention 'pytorch' (the window's width in channels, an integer >= 1)");
  if (typeof size !== 'number' || !Number.isInteger(size) || size < 1) throw argError(who, 'size', size, 'an integer >= 1');
  return {
    convention, axis, before: Math.floor(size / 2), after: Math.floor((size - 1) / 2),
    bias: finite(who, 'k', opts.k ?? 1), alpha: alpha / size, beta,
  };
}

/**
 * Local response normalization across channels:
 * `y = x / (bias + alpha * sum(x[c'] ** 2 for c' in window(c))) ** beta`.
 *
 * - `convention: 'tensorflow'` (default) is `tf.nn.local_response_normalization`
 *   (`depthRadius` 5, `bias` 1, `alpha` 1, `beta` 0.5; window c - r .. c + r;
 *   channels last, `axis` -1).
 * - `convention: 'pytorch'` is `torch.nn.LocalResponseNorm(size, alpha, beta, k)`
 *   (`alpha` 1e-4 divided by `size`, `beta` 0.75, `k` 1; window
 *   c - floor(size/2) .. c + floor((size-1)/2), so an even size is one channel
 *   shorter above; channels at `axis` 1).
 *
 * Channels outside the tensor count as zeros. Runs on
 * `tf.localResponseNormalization` (its kernels and gradient on every backend)
 * where the window is symmetric, with a differentiable backward when a tape
 * records it (second-order gradients); an even PyTorch size runs on tf ops
 * (window sums of shifted slices, so a NaN reaches only its windows, as in
 * PyTorch). Any rank >= 1, any channel axis.
 */
export function localResponseNorm<R extends tf.Rank>(x: tf.Tensor<R>, opts: LocalResponseNormOptions = {}): tf.Tensor<R> {
  const who = 'localResponseNorm';
  return localResponseNormImpl(x, lrnParams(who, opts), who);
}

/** {@link localResponseNorm} with resolved parameters, errors naming `who`. */
export function localResponseNormImpl<R extends tf.Rank>(x: tf.Tensor<R>, p: LrnParams, who: string): tf.Tensor<R> {
  checkFloatTensor(who, 'x', x);
  if (x.rank === 0) throw argError(who, 'x', 'a scalar', 'a tensor of rank >= 1');
  const axis = resolveAxis(who, 'axis', p.axis, x.rank);
  if (x.size === 0) return tf.clone(x);
  return tf.tidy(() => {
    // Channels last, flattened to [1, 1, M, C] (the window runs along the channels only).
    const perm = x.shape.map((_, i) => i).filter((i) => i !== axis).concat([axis]);
    const last = axis === x.rank - 1;
    const moved = last ? x : tf.transpose(x, perm);
    const C = x.shape[axis];
    const flat = tf.reshape(moved, [1, 1, moved.size / C, C]) as tf.Tensor4D;
    const y = p.before === p.after ? lrnKernel(flat, p) :
        // PyTorch's even sizes: the window sums of the squares, from shifted slices (NaN-safe: a channel
        // reaches only the windows it is in, as PyTorch's padded average pool).
        tf.div(flat, tf.pow(tf.add(tf.mul(windowSum(tf.square(flat), p.before, p.after), p.alpha), p.bias), p.beta));
    const back = tf.reshape(y, moved.shape);
    if (last) return back as tf.Tensor<R>;
    const inverse = perm.map((_, i) => perm.indexOf(i));
    return tf.transpose(back, inverse) as tf.Tensor<R>;
  });
}

/** The config keys of a convention, for the layer (`convention` and `axis` included). */
export function lrnConfigKeys(convention: LrnConvention): readonly string[] {
  return KEYS[convention];
}

/**
 * The sums over the windows [c - before, c + after] along the last axis
 * (channels outside count as zeros), as the sum of before + after + 1
 * shifted slices of the zero-padded tensor: differentiable to any order on
 * every backend, and a NaN or Inf reaches only the windows its channel is in
 * (a banded matrix product would spread it over every channel: NaN * 0).
 */
function windowSum(t: tf.Tensor, before: number, after: number): tf.Tensor {
  const C = t.shape[t.rank - 1];
  // A window beyond the channels sums the same as one clipped to them.
  const b = Math.min(before, C - 1);
  const a = Math.min(after, C - 1);
  if (a === 0 && b === 0) return t;
  const pads = t.shape.map((): [number, number] => [0, 0]);
  pads[t.rank - 1] = [b, a];
  const padded = tf.pad(t, pads);
  const parts: tf.Tensor[] = [];
  for (let i = 0; i <= a + b; i++) {
    // A new begin array for each slice: tfjs keeps the array in the slice's gradient attributes.
    const begin = t.shape.map((_, k) => (k === t.rank - 1 ? i : 0));
    parts.push(tf.slice(padded, begin, t.shape));
  }
  return tf.addN(parts);
}

/**
 * tfjs's LRN kernel (a symmetric window, radius p.before) with its LRNGrad
 * kernel as the gradient; a backward that a tape records (tf.grad of a
 * function that calls tf.grad: LRNGrad has no gradient of its own) computes
 * `dx = dy * D^-beta - 2 alpha beta x * windowSum(dy * x * D^(-beta-1))`,
 * `D = bias + alpha * windowSum(x²)`, in differentiable ops from the saved x.
 */
function lrnKernel(flat: tf.Tensor4D, p: LrnParams): tf.Tensor {
  const C = flat.shape[3];
  // tfjs asserts an integer radius; a radius beyond the channels is the same as C - 1.
  const radius = Math.min(p.before, C);
  // No tape records this call (inference): the kernel alone, without customGrad's closures.
  if (!taping()) return tf.localResponseNormalization(flat, radius, p.bias, p.alpha, p.beta);
  const f = tf.customGrad((...args: Array<tf.Tensor|tf.GradSaveFunc>) => {
    const x = args[0] as tf.Tensor4D;
    const save = args[1] as tf.GradSaveFunc;
    const y = tf.localResponseNormalization(x, radius, p.bias, p.alpha, p.beta);
    fusedSave(save, [x, y]);
    return {
      value: y,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [xs, ys] = saved;
        if (!taping()) {
          const attrs = {depthRadius: radius, bias: p.bias, alpha: p.alpha, beta: p.beta};
          return tf.engine().runKernel('LRNGrad', {x: xs, y: ys, dy}, attrs as unknown as tf.NamedAttrMap) as tf.Tensor;
        }
        return tf.tidy(() => {
          const d = tf.add(tf.mul(windowSum(tf.square(xs), p.before, p.after), p.alpha), p.bias);
          const dPow = tf.pow(d, -p.beta);
          const inner = windowSum(tf.mul(tf.mul(dy, xs), tf.div(dPow, d)), p.after, p.before);
          return tf.sub(tf.mul(dy, dPow), tf.mul(tf.mul(xs, 2 * p.alpha * p.beta), inner));
        });
      },
    };
  });
  return f(flat);
}
