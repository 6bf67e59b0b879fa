import * as tf from '@tensorflow/tfjs';

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
 * where the window is symmetric; an even PyTorch size runs on tf ops (a
 * banded matrix product over the channels). Any rank >= 1, any channel axis.
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
    let y: tf.Tensor;
    if (p.before === p.after) {
      // tfjs asserts an integer radius; a radius beyond the channels is the same as C - 1.
      y = tf.localResponseNormalization(flat, Math.min(p.before, C), p.bias, p.alpha, p.beta);
    } else {
      const band = new Float32Array(C * C);
      for (let j = 0; j < C; j++) {
        for (let c = Math.max(0, j - p.after); c <= Math.min(C - 1, j + p.before); c++) band[j * C + c] = 1;
      }
      const sums = tf.matMul(tf.reshape(tf.square(flat), [-1, C]), tf.tensor2d(band, [C, C]));
      y = tf.div(tf.reshape(flat, [-1, C]), tf.pow(tf.add(tf.mul(sums, p.alpha), p.bias), p.beta));
    }
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
