/**
 * The kernel contract: what the ops (src/ops/core.ts) and the fused
 * kernels (src/kernels/*) agree on, as tfjs-core's kernel_names.ts is for
 * tfjs. Both sides import this file; it imports nothing of this package.
 *
 * - the kernels' names in tfjs's registry and the environment flags;
 * - the modes ({@link MODES}: what each computes, as data);
 * - the plan ({@link NormPlan}: the reshape view every op reduces to);
 * - the attributes of the forward and backward kernels;
 * - the shape helpers both sides use (statistics shape, cache key, sizes).
 * - the record a backend file exports ({@link FusedBackend}).
 */
import * as tf from '@tensorflow/tfjs';

/** The forward kernel's name in tfjs's registry. */
export const FUSED_NORM_KERNEL = 'TfjsNormalizationFusedNorm';
/** The backward kernel's name (the analytic gradient of core.ts, fused). */
export const FUSED_NORM_GRAD_KERNEL = 'TfjsNormalizationFusedNormGrad';
/** The environment flag that enables the fused kernels (default true). */
export const FUSED_FLAG = 'TFJS_NORMALIZATION_FUSED';
/**
 * The environment flag that lets the cpu and wasm kernels, forward and
 * backward, use the WebAssembly SIMD loops (src/kernels/simd; default
 * true). Off, or where WebAssembly SIMD is unavailable, they run the JS
 * loops of compute.ts.
 */
export const SIMD_FLAG = 'TFJS_NORMALIZATION_SIMD';
/**
 * Whether webgl runs its fused forward for row layouts too (default false;
 * why: webgl.ts's record and docs/performance.md).
 */
export const WEBGL_ROWS_FLAG = 'TFJS_NORMALIZATION_WEBGL_ROWS';

/** The mode names; what each means is {@link MODES}. */
export type NormMode = 'center'|'rms'|'rmsScaling'|'stdEps';

/** The statistics a forward saves for the backward, by name, in the order they are saved. */
export type StatName = 'm1'|'m2'|'inv'|'invStd'|'s';

export interface ModeInfo {
  /**
   * The statistics are centred (the variance around the mean, with the
   * mean saved as the pair m1 + m2); false: the mean of squares (RMS).
   */
  centred: boolean;
  /** y subtracts the mean (false: x itself is scaled). */
  subtractsMean: boolean;
  /** The mode takes an offset beta. */
  hasBeta: boolean;
  /** Where epsilon goes: rsqrt(var + eps) ('variance') or 1 / (std + eps) ('std'). */
  epsilonOn: 'variance'|'std';
  /**
   * What the forward saves after x, in order: m1 (the mean in float32), m2
   * (its rounding error), inv (what x - mean is multiplied by), invStd
   * (1 / std, 'std' epsilon only), or s (1 / rms) alone.
   */
  stats: readonly StatName[];
}

/**
 * The modes, as data (read by core.ts, compute.ts, simd/*, the shaders):
 * - `center`: y = (x - mean) / sqrt(var + eps) * gamma + beta (GN, IN, LN).
 * - `rms`: y = x / sqrt(mean(x^2) + eps) * gamma (RMSNorm; no beta).
 * - `rmsScaling`: y = x / sqrt(var + eps) * gamma, Keras's legacy
 *   `LayerNormalization(rms_scaling=True)`: centred variance, no mean
 *   subtraction, no beta.
 * - `stdEps`: y = (x - mean) / (sqrt(var) + eps) * gamma + beta, the
 *   keras-contrib InstanceNormalization: epsilon added to the standard
 *   deviation, not the variance.
 */
export const MODES: Readonly<Record<NormMode, ModeInfo>> = {
  center: {centred: true, subtractsMean: true, hasBeta: true, epsilonOn: 'variance', stats: ['m1', 'm2', 'inv']},
  rms: {centred: false, subtractsMean: false, hasBeta: false, epsilonOn: 'variance', stats: ['s']},
  rmsScaling: {centred: true, subtractsMean: false, hasBeta: false, epsilonOn: 'variance', stats: ['m1', 'm2', 'inv']},
  stdEps: {centred: true, subtractsMean: true, hasBeta: true, epsilonOn: 'std', stats: ['m1', 'm2', 'inv', 'invStd']},
};

/** Whether a value is one of the {@link MODES}. */
export function isNormMode(mode: unknown): mode is NormMode {
  return typeof mode === 'string' && Object.prototype.hasOwnProperty.call(MODES, mode);
}

/** The number of statistics the forward of `mode` saves (after x). */
export const numStats = (mode: NormMode): number => MODES[mode].stats.length;

/** Where statistic `name` is among the saved ones of `mode` (-1: not saved). */
export const statIndex = (mode: NormMode, name: StatName): number => MODES[mode].stats.indexOf(name);

/**
 * What every op reduces to: a view of x (a reshape, never a transpose),
 * the axes of that view the statistics are taken over, and the shape
 * gamma/beta take in that view. The kernels read exactly these fields
 * (see {@link planOf}); a field added here must be handled by them
 * (test/architecture.test.ts lists them).
 */
export type NormPlan = {
  /** Shape x is reshaped to (same size as x). */
  viewShape: number[];
  /** Axes of viewShape the statistics are taken over. */
  reduceAxes: number[];
  /** Shape gamma/beta are reshaped to: viewShape's rank, 1 where they broadcast. */
  paramViewShape: number[];
  epsilon: number;
  mode: NormMode;
};

/** The plan's own fields, copied out of a plan that may carry a planner's extras (channels, groups). */
export function planOf(plan: NormPlan): NormPlan {
  const {viewShape, reduceAxes, paramViewShape, epsilon, mode} = plan;
  return {viewShape, reduceAxes, paramViewShape, epsilon, mode};
}

/**
 * Attributes of the forward kernel: the plan, which of gamma and beta are
 * inputs, and whether the caller needs the statistics (`withStats`; absent:
 * true). false: no gradient will read them (no tape records), so a kernel
 * may return y alone (cpu and wasm do: three fewer outputs a call); one
 * that returns them anyway has them disposed by the dispatch.
 */
export type ForwardAttrs = NormPlan&{
  hasGamma: boolean;
  hasBeta: boolean;
  withStats?: boolean;
};

/**
 * Attributes of the backward kernel: the forward's, and the shapes dgamma
 * and dbeta are returned in (the parameters' own shapes). epsilon is read
 * by the JS backward, which recomputes the statistics of a set whose saved
 * 1 / std overflowed float32 (compute.ts).
 */
export type BackwardAttrs = ForwardAttrs&{
  gammaShape: number[];
  betaShape: number[];
};

/**
 * A kernel's attributes, typed as the dispatch passed them (ForwardAttrs or
 * BackwardAttrs; the attribute types are plain object types, so they pass
 * to tfjs's runKernel as a NamedAttrMap without a cast).
 */
export function attrsOf<A extends ForwardAttrs>(attrs: tf.NamedAttrMap|undefined): A {
  return attrs as A;
}

/** Product of a shape's dimensions. */
export const sizeOf = (shape: readonly number[]): number => shape.reduce((p, d) => p * d, 1);

/** The shape of a statistics tensor: the view with the reduced axes set to 1. */
export function statsShapeOf(plan: Pick<NormPlan, 'viewShape'|'reduceAxes'>): number[] {
  return plan.viewShape.map((d, i) => (plan.reduceAxes.includes(i) ? 1 : d));
}

/** A cache key for what a plan's layout depends on (shapes and axes; not epsilon or mode). */
export function layoutKey(plan: Pick<NormPlan, 'viewShape'|'reduceAxes'|'paramViewShape'>): string {
  return `${plan.viewShape}|${plan.reduceAxes}|${plan.paramViewShape}`;
}

/**
 * fn cached by the plan's layout ({@link layoutKey}): what a kernel derives
 * from the shapes and axes alone (plans repeat, one per layer and shape).
 * Keeps at most about 256 layouts (then starts again).
 */
export function cachedByLayout<T>(fn: (plan: NormPlan) => T): (plan: NormPlan) => T {
  const cache = new Map<string, T>();
  // The last plan's shapes (copies) and value: a layer calls with the same
  // shapes again and again, and comparing them costs less than building the key.
  let last: {viewShape: number[], reduceAxes: number[], paramViewShape: number[], value: T}|null = null;
  return (plan) => {
    if (last != null && sameNumbers(last.viewShape, plan.viewShape) && sameNumbers(last.reduceAxes, plan.reduceAxes) &&
        sameNumbers(last.paramViewShape, plan.paramViewShape)) {
      return last.value;
    }
    const key = layoutKey(plan);
    let value: T;
    if (cache.has(key)) {
      value = cache.get(key) as T;
    } else {
      value = fn(plan);
      if (cache.size > 256) cache.clear();
      cache.set(key, value);
    }
    last = {viewShape: [...plan.viewShape], reduceAxes: [...plan.reduceAxes], paramViewShape: [...plan.paramViewShape], value};
    return value;
  };
}

function sameNumbers(a: readonly number[], b: readonly number[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** n rounded up to a multiple of 16 (byte offsets in the SIMD module's memory). */
export const align16 = (n: number): number => (n + 15) & ~15;

/** Which kernel a backend is asked about. */
export type Direction = 'forward'|'backward';

/**
 * Thrown by a kernel whose arithmetic is not safe for the data it was
 * given (the 'tensorflow' kernels check their float32 statistics, which
 * `accepts` cannot see); the dispatch catches it and returns null, so
 * core.ts runs its tf-op path.
 */
export class FusedKernelDeclined extends Error {
  constructor(why: string) {
    super(`fused kernel declined: ${why}`);
    this.name = 'FusedKernelDeclined';
  }
}

/**
 * What a backend file exports: its kernels and its own rules for which
 * plans they take. `accepts` may decline a plan (too many axes for a
 * shader, a layout measured slower than the tf-op path, an environment
 * the kernel is not safe in); core.ts then keeps its tf-op path.
 */
export interface FusedBackend {
  /** The tfjs backend name ('cpu', 'wasm', 'webgl', 'webgpu', ...). */
  backend: string;
  forward: tf.KernelFunc;
  /** Absent: the tf-op backward of core.ts runs after the fused forward. */
  backward?: tf.KernelFunc;
  /** Whether the kernel of `direction` takes this plan in the current environment. */
  accepts(plan: NormPlan, direction: Direction): boolean;
  /**
   * Runs `save` (core.ts's tf.customGrad save of x, the statistics and
   * gamma for the fused backward) so that the clones it keeps share their
   * inputs' data instead of copying it. Absent: save runs as it is.
   */
  saveShared?(save: () => void): void;
}
