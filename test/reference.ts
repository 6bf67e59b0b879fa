/**
 * An independent float64 reference for every normalization in this
 * package, written as plain loops over Float64Array (no tfjs), plus
 * central finite differences of it. Tests compare the tfjs ops and their
 * analytic gradients against these.
 */

export type RefMode = 'center'|'rms'|'rmsScaling'|'stdEps';

export interface RefSpec {
  shape: number[];
  /** For each flat index: the statistics set it belongs to. */
  setOf: (flat: number) => number;
  /** For each flat index: the gamma/beta index it uses (-1: none). */
  paramOf: (flat: number) => number;
  numSets: number;
  epsilon: number;
  mode: RefMode;
}

export function unravel(flat: number, shape: readonly number[]): number[] {
  const idx = new Array<number>(shape.length);
  for (let i = shape.length - 1; i >= 0; i--) {
    idx[i] = flat % shape[i];
    flat = Math.floor(flat / shape[i]);
  }
  return idx;
}

const size = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

/** Group norm over channel axis `axis` (resolved, > 0) with G groups. */
export function groupSpec(shape: number[], groups: number, axis: number, epsilon: number): RefSpec {
  const a = axis < 0 ? axis + shape.length : axis;
  const C = shape[a];
  const Cg = C / groups;
  return {
    shape, epsilon, mode: 'center', numSets: shape[0] * groups,
    setOf: (i) => {
      const idx = unravel(i, shape);
      return idx[0] * groups + Math.floor(idx[a] / Cg);
    },
    paramOf: (i) => unravel(i, shape)[a],
  };
}

/**
 * Batch statistics: one set per channel of axis `axis` (over every other
 * axis, batch included); params indexed by the channel.
 */
export function channelSpec(shape: number[], axis: number, epsilon: number): RefSpec {
  const a = axis < 0 ? axis + shape.length : axis;
  const channel = (i: number) => unravel(i, shape)[a];
  return {shape, epsilon, mode: 'center', numSets: shape[a], setOf: channel, paramOf: channel};
}

/** Statistics over `axes` (any subset); params indexed by those axes in sorted order. */
export function axesSpec(shape: number[], axes: number[], epsilon: number, mode: RefMode): RefSpec {
  const A = axes.map((a) => (a < 0 ? a + shape.length : a)).sort((p, q) => p - q);
  const rest = shape.map((_, i) => i).filter((i) => !A.includes(i));
  const flatOf = (idx: number[], which: number[]) => which.reduce((acc, ax) => acc * shape[ax] + idx[ax], 0);
  return {
    shape, epsilon, mode, numSets: size(rest.map((i) => shape[i])),
    setOf: (i) => flatOf(unravel(i, shape), rest),
    paramOf: (i) => flatOf(unravel(i, shape), A),
  };
}

/**
 * y = normalize(x) * gamma + beta, in float64. With a mask (one 0/1 per
 * element), only valid elements enter the statistics; every element is
 * normalized with them (an all-masked set has mean 0 and variance 0).
 */
export function refForward(
    spec: RefSpec, x: ArrayLike<number>, gamma?: ArrayLike<number>|null, beta?: ArrayLike<number>|null,
    mask?: ArrayLike<number>|null): Float64Array {
  const n = x.length;
  const cnt = new Float64Array(spec.numSets);
  const sum = new Float64Array(spec.numSets);
  const set = new Int32Array(n);
  const valid = (i: number) => mask == null || mask[i] !== 0;
  for (let i = 0; i < n; i++) {
    set[i] = spec.setOf(i);
    if (!valid(i)) continue;
    cnt[set[i]]++;
    sum[set[i]] += x[i];
  }
  const mean = sum.map((s, k) => (cnt[k] > 0 ? s / cnt[k] : 0));
  const acc = new Float64Array(spec.numSets);
  for (let i = 0; i < n; i++) {
    if (!valid(i)) continue;
    const v = spec.mode === 'rms' ? x[i] : x[i] - mean[set[i]];
    acc[set[i]] += v * v;
  }
  for (let k = 0; k < spec.numSets; k++) cnt[k] = Math.max(cnt[k], 1);
  const y = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const k = set[i];
    const m2 = acc[k] / cnt[k];
    let v: number;
    // A set whose denominator is exactly 0 (constant, epsilon 0) gives 0 (then beta), as documented.
    const inv = (den: number) => (den === 0 ? 0 : 1 / den);
    switch (spec.mode) {
      case 'center': v = (x[i] - mean[k]) * inv(Math.sqrt(m2 + spec.epsilon)); break;
      case 'rms': v = x[i] * inv(Math.sqrt(m2 + spec.epsilon)); break;
      case 'rmsScaling': v = x[i] * inv(Math.sqrt(m2 + spec.epsilon)); break;
      case 'stdEps': v = (x[i] - mean[k]) * inv(Math.sqrt(m2) + spec.epsilon); break;
    }
    const p = spec.paramOf(i);
    if (gamma) v *= gamma[p];
    if (beta) v += beta[p];
    y[i] = v;
  }
  return y;
}

/**
 * Gradients of loss = sum(y * dy) with respect to x, gamma and beta, by
 * central finite differences of refForward in float64.
 */
export function refGradsFD(
    spec: RefSpec, x: ArrayLike<number>, dy: ArrayLike<number>, gamma?: ArrayLike<number>|null,
    beta?: ArrayLike<number>|null, h = 1e-6,
    mask?: ArrayLike<number>|null): {dx: Float64Array, dgamma?: Float64Array, dbeta?: Float64Array} {
  const loss = (xx: ArrayLike<number>, g?: ArrayLike<number>|null, b?: ArrayLike<number>|null) => {
    const y = refForward(spec, xx, g, b, mask);
    let s = 0;
    for (let i = 0; i < y.length; i++) s += y[i] * dy[i];
    return s;
  };
  const diff = (arr: ArrayLike<number>, f: (a: Float64Array) => number) => {
    const a = Float64Array.from(arr);
    const out = new Float64Array(a.length);
    // The step follows the data's spread, not its magnitude: data offset by
    // 1e4 with std 1 needs a step of ~1e-6, not 1e-2.
    const mean = a.reduce((p, v) => p + v, 0) / a.length;
    const spread = Math.sqrt(a.reduce((p, v) => p + (v - mean) * (v - mean), 0) / a.length);
    for (let i = 0; i < a.length; i++) {
      const keep = a[i];
      const step = h * (spread > 0 ? Math.min(spread, Math.max(1, Math.abs(keep))) : Math.max(1, Math.abs(keep)));
      a[i] = keep + step;
      const up = f(a);
      a[i] = keep - step;
      const down = f(a);
      a[i] = keep;
      out[i] = (up - down) / (2 * step);
    }
    return out;
  };
  return {
    dx: diff(x, (a) => loss(a, gamma, beta)),
    dgamma: gamma ? diff(gamma, (a) => loss(x, a, beta)) : undefined,
    dbeta: beta ? diff(beta, (a) => loss(x, gamma, a)) : undefined,
  };
}

/**
 * Gradients of loss = sum(y * dy) with respect to x, gamma and beta, by
 * the analytic formulas in float64 (no mask): with g = dy * gamma and xn
 * what gamma multiplies, dx = d(xn)/dx applied to g, dgamma = sum(dy * xn),
 * dbeta = sum(dy). Exact where refGradsFD is limited by its step.
 */
export function refGrads64(
    spec: RefSpec, x: ArrayLike<number>, dy: ArrayLike<number>,
    gamma?: ArrayLike<number>|null): {dx: Float64Array, dgamma: Float64Array, dbeta: Float64Array} {
  const n = x.length;
  const K = spec.numSets;
  const set = new Int32Array(n);
  const par = new Int32Array(n);
  const cnt = new Float64Array(K);
  const mean = new Float64Array(K);
  let np = 0;
  for (let i = 0; i < n; i++) {
    set[i] = spec.setOf(i);
    par[i] = spec.paramOf(i);
    np = Math.max(np, par[i] + 1);
    cnt[set[i]]++;
    mean[set[i]] += x[i];
  }
  for (let k = 0; k < K; k++) mean[k] /= cnt[k];
  const m2 = new Float64Array(K);
  for (let i = 0; i < n; i++) {
    const v = spec.mode === 'rms' ? x[i] : x[i] - mean[set[i]];
    m2[set[i]] += v * v;
  }
  const inv = new Float64Array(K);
  const invStd = new Float64Array(K);
  for (let k = 0; k < K; k++) {
    const v = m2[k] / cnt[k];
    inv[k] = spec.mode === 'stdEps' ? 1 / (Math.sqrt(v) + spec.epsilon) : 1 / Math.sqrt(v + spec.epsilon);
    invStd[k] = 1 / Math.sqrt(v);
  }
  const off = (k: number) => (spec.mode === 'center' || spec.mode === 'stdEps' ? mean[k] : 0);
  const xn = (i: number) => (x[i] - off(set[i])) * inv[set[i]];
  const sg = new Float64Array(K);
  const sgx = new Float64Array(K);
  const dgamma = new Float64Array(np);
  const dbeta = new Float64Array(np);
  for (let i = 0; i < n; i++) {
    const gd = dy[i] * (gamma ? gamma[par[i]] : 1);
    sg[set[i]] += gd / cnt[set[i]];
    sgx[set[i]] += (gd * xn(i)) / cnt[set[i]];
    dgamma[par[i]] += dy[i] * xn(i);
    dbeta[par[i]] += dy[i];
  }
  const dx = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const k = set[i];
    const gd = dy[i] * (gamma ? gamma[par[i]] : 1);
    const iv = inv[k];
    switch (spec.mode) {
      case 'center': dx[i] = iv * (gd - sg[k] - xn(i) * sgx[k]); break;
      case 'stdEps': dx[i] = iv * (gd - sg[k]) - (x[i] - mean[k]) * iv * sgx[k] * invStd[k]; break;
      case 'rms': dx[i] = iv * (gd - xn(i) * sgx[k]); break;
      case 'rmsScaling': dx[i] = iv * (gd - (x[i] - mean[k]) * iv * sgx[k]); break;
    }
  }
  return {dx, dgamma, dbeta};
}

/** A small seeded PRNG (mulberry32) and normal samples, so tests are reproducible. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6D2B79F5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function normals(rand: () => number, n: number, mean = 0, std = 1): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const u = Math.max(rand(), 1e-12);
    const v = rand();
    out[i] = mean + std * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }
  return out;
}
