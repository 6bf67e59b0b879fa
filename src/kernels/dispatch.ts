/**
 * What core.ts calls: whether a plan runs through a fused kernel on the
 * active backend ({@link canFuse}) and running it ({@link fusedNorm},
 * {@link fusedNormGrad}). The backends' records (./index.ts registers
 * them) decide which plans they take; this file holds no backend's rules.
 */
import * as tf from '@tensorflow/tfjs';

import {
  BackwardAttrs, Direction, FUSED_FLAG, FUSED_NORM_GRAD_KERNEL, FUSED_NORM_KERNEL, FusedBackend, FusedKernelDeclined,
  ForwardAttrs, isNormMode, NormPlan, numStats, planOf,
} from './contract';

const records = new Map<string, FusedBackend>();

/** Makes `record` the one dispatch consults for its backend (./index.ts calls it for each record). */
export function useFusedBackend(record: FusedBackend): void {
  records.set(record.backend, record);
}

/** Whether the fused kernels are enabled (the TFJS_NORMALIZATION_FUSED flag). */
export function fusedEnabled(): boolean {
  return tf.env().getBool(FUSED_FLAG);
}

/**
 * Whether normalize() would run `plan` through a fused kernel on the active
 * backend: the flag is on, the backend has a record with a kernel of that
 * direction registered, the record accepts the plan, the mode is known,
 * every tensor is float32 and x is not empty.
 */
export function canFuse(
    plan: NormPlan, tensors: Array<tf.Tensor|null|undefined>, direction: Direction = 'forward'): boolean {
  if (!fusedEnabled() || !isNormMode(plan.mode)) return false;
  const backend = tf.getBackend();
  const record = records.get(backend);
  if (record == null || (direction === 'backward' && record.backward == null)) return false;
  if (tf.getKernel(direction === 'forward' ? FUSED_NORM_KERNEL : FUSED_NORM_GRAD_KERNEL, backend) == null) return false;
  if (!record.accepts(plan, direction)) return false;
  for (const t of tensors) {
    if (t != null && t.dtype !== 'float32') return false;
  }
  return tensors[0] != null && tensors[0].size > 0;
}

/**
 * Runs the fused forward of `plan` on x (its own shape; gamma/beta in
 * their own shapes, flattened in the same order as plan.paramViewShape).
 * Returns y (x's shape) and, with `withStats` (default true), the
 * statistics core.ts saves for its backward (MODES[mode].stats), each
 * shaped like plan.viewShape with the reduced axes set to 1; without, no
 * statistics (stats is empty). Returns null where {@link canFuse} says no.
 */
export function fusedNorm(
    x: tf.Tensor, plan: NormPlan, gamma?: tf.Tensor|null, beta?: tf.Tensor|null,
    withStats = true): {y: tf.Tensor, stats: tf.Tensor[]}|null {
  if (!canFuse(plan, [x, gamma, beta])) return null;
  const inputs: tf.NamedTensorMap = {x};
  if (gamma != null) inputs.gamma = gamma;
  if (beta != null) inputs.beta = beta;
  const attrs: ForwardAttrs = {...planOf(plan), hasGamma: gamma != null, hasBeta: beta != null, withStats};
  const out = runDeclinable(FUSED_NORM_KERNEL, inputs, attrs);
  if (out == null) return null;
  if (withStats) return {y: out[0], stats: out.slice(1)};
  tf.dispose(out.slice(1));
  return {y: out[0], stats: []};
}

/**
 * The backward of normalize(), fused: from dy and what the forward saved
 * ([x, ...stats, gamma?], stats as {@link fusedNorm} returns them), the
 * gradients [dx, dgamma?, dbeta?] in the shapes of x, gamma, beta. The
 * same formulas as core.ts's tf-op backward. Returns null where
 * {@link canFuse} says no.
 */
export function fusedNormGrad(
    dy: tf.Tensor, saved: tf.Tensor[], plan: NormPlan, hasGamma: boolean, hasBeta: boolean,
    gammaShape?: number[], betaShape?: number[]): tf.Tensor[]|null {
  if (!isNormMode(plan.mode)) return null;
  const nStats = numStats(plan.mode);
  if (saved.length !== 1 + nStats + (hasGamma ? 1 : 0)) return null;
  if (!canFuse(plan, [saved[0], dy, ...saved.slice(1)], 'backward')) return null;
  const inputs: tf.NamedTensorMap = {x: saved[0], dy};
  saved.slice(1, 1 + nStats).forEach((t, i) => (inputs[`s${i}`] = t));
  if (hasGamma) inputs.gamma = saved[saved.length - 1];
  const attrs: BackwardAttrs = {
    ...planOf(plan), hasGamma, hasBeta, gammaShape: gammaShape ?? [], betaShape: betaShape ?? [],
  };
  return runDeclinable(FUSED_NORM_GRAD_KERNEL, inputs, attrs);
}

/**
 * tf.customGrad's save of `tensors` after a fused forward, through the
 * active backend's {@link FusedBackend.saveShared} where it has one (wasm:
 * the saved clones share x's data instead of copying it).
 */
export function fusedSave(save: tf.GradSaveFunc, tensors: tf.Tensor[]): void {
  const share = records.get(tf.getBackend())?.saveShared;
  if (share) {
    share(() => save(tensors));
  } else {
    save(tensors);
  }
}

/** Runs a kernel; null where it declined for its data ({@link FusedKernelDeclined}). */
function runDeclinable(kernelName: string, inputs: tf.NamedTensorMap, attrs: ForwardAttrs|BackwardAttrs): tf.Tensor[]|null {
  try {
    return tf.engine().runKernel(kernelName, inputs, attrs) as tf.Tensor[];
  } catch (e) {
    if (e instanceof FusedKernelDeclined) return null;
    throw e;
  }
}
