/**
 * The order of the GPU forward's passes, shared by webgl.ts and webgpu.ts
 * (each supplies its programs as {@link GpuForwardPasses}): with centred
 * statistics, the partial sums and the mean pair m1, m2; the partial norms
 * of x - m1 - m2 (of x without centred statistics); inv (and invStd when
 * epsilon goes on the standard deviation); y. Returns y and the statistics
 * (MODES[mode].stats) in the shapes of x and of the statistics; temporary
 * results are disposed, and so are the statistics when a pass throws.
 */
import type * as tf from '@tensorflow/tfjs';

import {ForwardAttrs, MODES, numStats, statsShapeOf} from './contract';

export interface GpuForwardPasses {
  /** Per (set, chunk): the shifted sums of x. */
  partialSum(x: tf.TensorInfo): tf.TensorInfo;
  /** Per set: m1 (which 0) or m2 (which 1) from the partial sums. */
  mean(x: tf.TensorInfo, part: tf.TensorInfo, which: 0|1): tf.TensorInfo;
  /** Per (set, chunk): the scaled norm of x - m1 - m2 (or of x, `mean` null). */
  partialNorm(x: tf.TensorInfo, mean: [tf.TensorInfo, tf.TensorInfo]|null): tf.TensorInfo;
  /** Per set: inv (which 0) or invStd (which 1) from the partial norms. */
  inv(norms: tf.TensorInfo, which: 0|1): tf.TensorInfo;
  /** y from [x, m1, m2 (when y subtracts the mean), inv, gamma?, beta?]. */
  apply(inputs: tf.TensorInfo[], subtractsMean: boolean): tf.TensorInfo;
  /** A flat view of a tensor. */
  flat(t: tf.TensorInfo): tf.TensorInfo;
  /** Whether `flat` makes a new tensor, to dispose after the kernel (webgl's Reshape), or the same buffer (webgpu). */
  flatAllocates: boolean;
  dispose(t: tf.TensorInfo): void;
}

export function runGpuForward(
    passes: GpuForwardPasses, plan: ForwardAttrs, inputs: Record<string, tf.TensorInfo>, kernel: string): tf.TensorInfo[] {
  const {x, gamma, beta} = inputs;
  const {centred, subtractsMean, epsilonOn} = MODES[plan.mode];
  const temps: tf.TensorInfo[] = [];
  const stats: tf.TensorInfo[] = [];
  const temp = (t: tf.TensorInfo) => {
    temps.push(t);
    return t;
  };
  const flat = (t: tf.TensorInfo) => (passes.flatAllocates ? temp(passes.flat(t)) : passes.flat(t));
  try {
    const xf = flat(x);
    let mean: [tf.TensorInfo, tf.TensorInfo]|null = null;
    if (centred) {
      const part = temp(passes.partialSum(xf));
      mean = [passes.mean(xf, part, 0), passes.mean(xf, part, 1)];
      stats.push(...mean);
    }
    const norms = temp(passes.partialNorm(xf, mean));
    const inv = passes.inv(norms, 0);
    stats.push(inv);
    if (epsilonOn === 'std') stats.push(passes.inv(norms, 1));
    // rmsScaling scales x itself: the apply pass sees no mean.
    const applyIns = [xf, ...(subtractsMean && mean ? mean : []), inv];
    if (plan.hasGamma) applyIns.push(flat(gamma));
    if (plan.hasBeta) applyIns.push(flat(beta));
    const y = passes.apply(applyIns, subtractsMean);
    if (stats.length !== numStats(plan.mode)) throw new Error(`${kernel}: wrong number of statistics`);
    const statsShape = statsShapeOf(plan);
    return [{...y, shape: x.shape}, ...stats.map((t) => ({...t, shape: statsShape}))];
  } catch (e) {
    stats.forEach((t) => passes.dispose(t));
    throw e;
  } finally {
    temps.forEach((t) => passes.dispose(t));
  }
}
