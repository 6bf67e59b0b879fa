import * as tf from '@tensorflow/tfjs';

import {fusedSave} from '../kernels/index';
import {taping, untaped} from './core';
import {argError, checkFloatTensor, checkOptionKeys, checkParam} from './validate';

/** Options of {@link filterResponseNorm}. */
export interface FilterResponseNormOptions {
  /**
   * Added to the mean square, as its absolute value (TensorFlow Addons takes
   * `abs(epsilon)`). A number, or a float32 tensor of one element (then
   * differentiable, as the layer's learned epsilon). Default 1e-6.
   */
  epsilon?: number|tf.Tensor;
  /** Per-channel scale, shape [1, 1, 1, C] (TensorFlow Addons' shape) or [C]. */
  gamma?: tf.Tensor|null;
  /** Per-channel offset, shaped like gamma. */
  beta?: tf.Tensor|null;
}

/**
 * Filter response normalization (Singh & Krishnan, 2019) as TensorFlow
 * Addons' `FilterResponseNormalization` computes it, on [N, H, W, C]:
 * `nu2 = mean(x², axes [1, 2])`, `y = gamma * x * rsqrt(nu2 + |epsilon|) + beta`.
 * No mean subtraction. Analytic gradients for x, gamma, beta and a tensor
 * epsilon: with `g = dy * gamma`, `xh = x * r`, `r = rsqrt(nu2 + eps)`:
 * `dx = r * (g - xh * mean(g * xh))`, `deps = -r² / 2 * sum(g * xh)`.
 */
export function filterResponseNorm(x: tf.Tensor4D, opts: FilterResponseNormOptions = {}): tf.Tensor4D {
  return filterResponseNormImpl(x, opts, 'filterResponseNorm');
}

/** {@link filterResponseNorm} with errors naming `who`. */
export function filterResponseNormImpl(x: tf.Tensor, opts: FilterResponseNormOptions, who: string): tf.Tensor4D {
  checkOptionKeys(who, 'opts', opts, ['epsilon', 'gamma', 'beta']);
  checkFloatTensor(who, 'x', x);
  if (x.rank !== 4) {
    throw argError(who, 'x', x.shape, 'a tensor of rank 4, [batch, height, width, channels] (TensorFlow Addons supports only these)');
  }
  const C = x.shape[3] as number;
  const paramShape = (t: tf.Tensor|null|undefined) => (t != null && t.rank === 1 ? [C] : [1, 1, 1, C]);
  checkParam(who, 'gamma', opts.gamma, paramShape(opts.gamma));
  checkParam(who, 'beta', opts.beta, paramShape(opts.beta));
  const eps = opts.epsilon ?? 1e-6;
  if (eps instanceof tf.Tensor) {
    checkFloatTensor(who, 'epsilon', eps);
    if (eps.size !== 1) throw argError(who, 'epsilon', eps.shape, 'a number or a tensor of one element');
  } else if (typeof eps !== 'number' || !Number.isFinite(eps)) {
    throw argError(who, 'epsilon', eps, 'a finite number or a tensor of one element');
  }
  const gamma = opts.gamma ?? null;
  const beta = opts.beta ?? null;
  const epsT = eps instanceof tf.Tensor ? eps : null;
  const inputs: tf.Tensor[] = [x, ...(gamma ? [gamma] : []), ...(beta ? [beta] : []), ...(epsT ? [epsT] : [])];
  const count = (x.shape[1] as number) * (x.shape[2] as number);
  const f = tf.customGrad((...args: Array<tf.Tensor|tf.GradSaveFunc>) => {
    const save = args[args.length - 1] as tf.GradSaveFunc;
    const xin = args[0] as tf.Tensor4D;
    let k = 1;
    const g = gamma ? args[k++] as tf.Tensor : null;
    const b = beta ? args[k++] as tf.Tensor : null;
    const e = epsT ? args[k++] as tf.Tensor : null;
    const [y, xh, r] = tf.tidy(() => {
      const p = frnParts(xin, e ?? (eps as number));
      let out: tf.Tensor = p.xh;
      if (g) out = tf.mul(out, tf.reshape(g, [1, 1, 1, C]));
      if (b) out = tf.add(out, tf.reshape(b, [1, 1, 1, C]));
      return [out, p.xh, p.r];
    });
    // x last, for a backward that a tape records (see below).
    fusedSave(save, [xh, r, ...(g ? [g] : []), ...(e ? [e] : []), xin]);
    return {
      value: y,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.tidy(() => {
        const gs = g ? saved[2] : null;
        const es = e ? saved[g ? 3 : 2] : null;
        // A recorded backward (tf.grad of a function that calls tf.grad) recomputes xh and r from the
        // saved x (and epsilon) in differentiable ops, so that second derivatives reach x and the
        // learned epsilon; the saved ones are constants to the tape.
        const [xhs, rs] = taping() ? (() => {
          const p = frnParts(saved[saved.length - 1], es ?? (eps as number));
          return [p.xh, p.r];
        })() : saved;
        const gdy = gs ? tf.mul(dy, tf.reshape(gs, [1, 1, 1, C])) : dy;
        const s = tf.sum(tf.mul(gdy, xhs), [1, 2], true);
        const dx = tf.mul(rs, tf.sub(gdy, tf.mul(xhs, tf.div(s, count))));
        const out: tf.Tensor[] = [dx];
        if (gs) out.push(tf.reshape(tf.sum(tf.mul(dy, xhs), [0, 1, 2]), gs.shape));
        if (b) out.push(tf.reshape(tf.sum(dy, [0, 1, 2]), b.shape));
        if (es) {
          // d|e| / de = sign(e), as TensorFlow's abs (0 at e = 0).
          const dAbs = tf.mul(tf.scalar(-0.5), tf.sum(tf.mul(tf.square(rs), s)));
          out.push(tf.reshape(tf.mul(dAbs, tf.sign(es)), es.shape));
        }
        return out;
      }),
    };
  });
  return f(...inputs) as tf.Tensor4D;
}

/**
 * `xh = x * rsqrt(mean(x², [1, 2]) + |eps|)` and `r = rsqrt(mean(x², [1, 2]) + |eps|)`, taken in
 * units of s = max(max|x|, sqrt(|eps|)) per sample and channel (1 where both are 0), so that the
 * squares stay in range (float16 textures included): xh = (x / s) * rsqrt(mean((x / s)²) + |eps| / s²),
 * r = that rsqrt / s. s is a constant to a recording tape (xh and r are the same for any s).
 */
function frnParts(x: tf.Tensor, eps: tf.Tensor|number): {xh: tf.Tensor, r: tf.Tensor} {
  const epsAbs = eps instanceof tf.Tensor ? tf.reshape(absSignGrad(eps), []) : tf.scalar(Math.abs(eps));
  const sc = untaped(x, (v) => {
    const m = tf.maximum(tf.max(tf.abs(v), [1, 2], true), tf.sqrt(epsAbs));
    return tf.where(tf.greater(m, 0), m, tf.onesLike(m));
  });
  const xs = tf.div(x, sc);
  const rs = tf.rsqrt(tf.add(tf.mean(tf.square(xs), [1, 2], true), tf.div(tf.div(epsAbs, sc), sc)));
  return {xh: tf.mul(xs, rs), r: tf.div(rs, sc)};
}

/**
 * |t| whose gradient is TensorFlow's, `dy * sign(t)` (0 at t = 0); tfjs's Abs gradient is -dy at 0.
 * TensorFlow Addons' learned epsilon enters as `tf.math.abs(eps_learned)`, so at 0 (where a NonNeg
 * constraint puts it) it gets no gradient.
 */
export function absSignGrad(t: tf.Tensor): tf.Tensor {
  const f = tf.customGrad((...args: Array<tf.Tensor|tf.GradSaveFunc>) => {
    const v = args[0] as tf.Tensor;
    (args[1] as tf.GradSaveFunc)([v]);
    return {value: tf.abs(v), gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.mul(dy, tf.sign(saved[0]))};
  });
  return f(t);
}
