/**
 * Fused normalization kernels, registered per backend with
 * `tf.registerKernel`, and the dispatch that core.ts's forward calls.
 *
 * - cpu: the loops of compute.ts on the backend's own arrays.
 * - wasm: the same loops on views of the wasm heap (no copy in or out).
 * - every other backend (webgl, webgpu, tfjs-node's 'tensorflow'): no
 *   kernel, so core.ts keeps its tf-op path.
 *
 * The kernel computes the forward only: y plus the per-set statistics the
 * tf-op analytic backward of core.ts needs, so the gradient stays the
 * portable one.
 *
 * `tf.env().set('TFJS_NORMALIZATION_FUSED', false)` turns the kernels off
 * (every op then takes the tf-op path).
 */
import * as tf from '@tensorflow/tfjs';

import type {NormMode, NormPlan} from '../ops/core';
import {FusedArrays, fusedForward, numStatsOutputs} from './compute';
import {FusedPlan, layoutOf} from './layout';

/** The kernel's name in tfjs's registry. */
export const FUSED_NORM_KERNEL = 'TfjsNormalizationFusedNorm';
/** The environment flag that enables the fused kernels (default true). */
export const FUSED_FLAG = 'TFJS_NORMALIZATION_FUSED';
/** The backends this package registers a fused kernel for. */
export const FUSED_BACKENDS = ['cpu', 'wasm'] as const;

const MODES: readonly NormMode[] = ['center', 'rms', 'rmsScaling', 'stdEps'];
/**
 * The plan fields the kernels read, plus the informational ones the ops'
 * planners add. A plan with anything else set (a mask, a future option)
 * takes the tf-op path until the kernels learn it; test/kernels.test.ts
 * checks that every op's plan does reach the kernel.
 */
const KNOWN_PLAN_KEYS = new Set([
  'viewShape', 'reduceAxes', 'paramViewShape', 'epsilon', 'mode', 'channels', 'groups', 'paramShape',
]);

interface FusedAttrs extends FusedPlan {
  hasGamma: boolean;
  hasBeta: boolean;
}

function attrsOf(attrs: tf.NamedAttrMap|undefined): FusedAttrs {
  return attrs as unknown as FusedAttrs;
}

function statsShapeOf(plan: FusedPlan): number[] {
  return plan.viewShape.map((d, i) => (plan.reduceAxes.includes(i) ? 1 : d));
}

/** What the cpu backend (tfjs-backend-cpu's MathBackendCPU) offers a kernel. */
interface CpuBackendLike {
  data: {get(dataId: object): {values?: unknown}};
  readSync(dataId: object): unknown;
  makeTensorInfo(shape: number[], dtype: 'float32', values: Float32Array): tf.TensorInfo;
}

/** What the wasm backend (tfjs-backend-wasm's BackendWasm) offers a kernel. */
interface WasmBackendLike {
  makeOutput(shape: number[], dtype: 'float32'): tf.TensorInfo;
  typedArrayFromHeap(t: tf.TensorInfo): Float32Array|Int32Array|Uint8Array;
}

function cpuValues(backend: CpuBackendLike, t: tf.TensorInfo): Float32Array {
  const v = backend.data.get(t.dataId).values;
  if (v instanceof Float32Array) return v;
  return Float32Array.from(backend.readSync(t.dataId) as ArrayLike<number>);
}

const cpuKernel: tf.KernelFunc = ({inputs, backend, attrs}) => {
  const be = backend as CpuBackendLike;
  const a = attrsOf(attrs);
  const L = layoutOf(a);
  const {x, gamma, beta} = inputs as Record<string, tf.TensorInfo>;
  const stats = Array.from({length: numStatsOutputs(a.mode)}, () => new Float32Array(L.numSets));
  const arr: FusedArrays = {
    x: cpuValues(be, x),
    gamma: a.hasGamma ? cpuValues(be, gamma) : null,
    beta: a.hasBeta ? cpuValues(be, beta) : null,
    y: new Float32Array(L.size),
    stats,
  };
  fusedForward(arr, L, a.mode, a.epsilon);
  const statsShape = statsShapeOf(a);
  return [
    be.makeTensorInfo(x.shape, 'float32', arr.y),
    ...stats.map((s) => be.makeTensorInfo(statsShape, 'float32', s)),
  ];
};

const wasmKernel: tf.KernelFunc = ({inputs, backend, attrs}) => {
  const be = backend as WasmBackendLike;
  const a = attrsOf(attrs);
  const L = layoutOf(a);
  const {x, gamma, beta} = inputs as Record<string, tf.TensorInfo>;
  const statsShape = statsShapeOf(a);
  // Allocate every output first: an allocation can grow the wasm memory,
  // which detaches views taken before it.
  const yInfo = be.makeOutput(x.shape, 'float32');
  const statInfos = Array.from({length: numStatsOutputs(a.mode)}, () => be.makeOutput(statsShape, 'float32'));
  const view = (t: tf.TensorInfo) => be.typedArrayFromHeap(t) as Float32Array;
  const arr: FusedArrays = {
    x: view(x),
    gamma: a.hasGamma ? view(gamma) : null,
    beta: a.hasBeta ? view(beta) : null,
    y: view(yInfo),
    stats: statInfos.map(view),
  };
  fusedForward(arr, L, a.mode, a.epsilon);
  return [yInfo, ...statInfos];
};

/** Registers the kernels (once; a second copy of the package finds them registered). */
export function registerFusedKernels(): void {
  const kernels: Array<[string, tf.KernelFunc]> = [['cpu', cpuKernel], ['wasm', wasmKernel]];
  for (const [backendName, kernelFunc] of kernels) {
    if (tf.getKernel(FUSED_NORM_KERNEL, backendName) == null) {
      tf.registerKernel({kernelName: FUSED_NORM_KERNEL, backendName, kernelFunc});
    }
  }
  try {
    tf.env().get(FUSED_FLAG);
  } catch {
    tf.env().registerFlag(FUSED_FLAG, () => true);
  }
}

registerFusedKernels();

/** Whether the fused kernels are enabled (the TFJS_NORMALIZATION_FUSED flag). */
export function fusedEnabled(): boolean {
  return tf.env().getBool(FUSED_FLAG);
}

/**
 * Whether normalize() would run `plan` through a fused kernel on the active
 * backend: the flag is on, the backend has a kernel, the plan has nothing
 * the kernel does not know (a mask, a new mode), every tensor is float32.
 */
export function canFuse(plan: NormPlan, tensors: Array<tf.Tensor|null|undefined>): boolean {
  if (!fusedEnabled()) return false;
  if (tf.getKernel(FUSED_NORM_KERNEL, tf.getBackend()) == null) return false;
  if (!MODES.includes(plan.mode)) return false;
  for (const [k, v] of Object.entries(plan)) {
    if (!KNOWN_PLAN_KEYS.has(k) && v != null) return false;
  }
  for (const t of tensors) {
    if (t != null && t.dtype !== 'float32') return false;
  }
  return tensors[0] != null && tensors[0].size > 0;
}

/**
 * Runs the fused forward of `plan` on x (its own shape; gamma/beta in
 * their own shapes, flattened in the same order as plan.paramViewShape).
 * Returns y (x's shape) and the statistics core.ts saves for its backward:
 * [m1, m2, inv] ('center', 'rmsScaling'), [m1, m2, inv, invStd]
 * ('stdEps') or [s] ('rms'), each shaped like plan.viewShape with the
 * reduced axes set to 1. Returns null where {@link canFuse} says no.
 */
export function fusedNorm(
    x: tf.Tensor, plan: NormPlan, gamma?: tf.Tensor|null,
    beta?: tf.Tensor|null): {y: tf.Tensor, stats: tf.Tensor[]}|null {
  if (!canFuse(plan, [x, gamma, beta])) return null;
  const inputs: tf.NamedTensorMap = {x};
  if (gamma != null) inputs.gamma = gamma;
  if (beta != null) inputs.beta = beta;
  const attrs: FusedAttrs = {
    viewShape: plan.viewShape,
    reduceAxes: plan.reduceAxes,
    paramViewShape: plan.paramViewShape,
    epsilon: plan.epsilon,
    mode: plan.mode,
    hasGamma: gamma != null,
    hasBeta: beta != null,
  };
  const out = tf.engine().runKernel(FUSED_NORM_KERNEL, inputs, attrs as unknown as tf.NamedAttrMap) as tf.Tensor[];
  return {y: out[0], stats: out.slice(1)};
}
