/**
 * Fused normalization kernels, registered per backend with
 * `tf.registerKernel`, and the dispatch that core.ts's forward calls.
 *
 * - cpu: the loops of compute.ts on the backend's own arrays.
 * - wasm: the same loops on views of the wasm heap (no copy in or out).
 * - webgl: the forward only, as shaders (./webgl.ts); it declines
 *   half-float textures (the tf-op path rescales there).
 * - webgpu: forward and backward, as WGSL shaders (./webgpu.ts,
 *   ./webgpu_grad.ts).
 * - every other backend (tfjs-node's 'tensorflow'): no kernel, so core.ts
 *   keeps its tf-op path.
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
import {FusedArrays, fusedBackward, FusedGradArrays, fusedForward, numStatsOutputs} from './compute';
import {FusedPlan, layoutOf} from './layout';
import {webglAccepts, webglKernel} from './webgl';
import {webgpuAccepts, webgpuKernel} from './webgpu';
import {webgpuGradAccepts, webgpuGradKernel} from './webgpu_grad';
import {simdEngineForWasm} from './simd/engine';
import {simdBackwardCpu, simdBackwardWasm, simdForwardCpu, simdForwardWasm, simdSafeStats} from './simd/run';

/** The forward kernel's name in tfjs's registry. */
export const FUSED_NORM_KERNEL = 'TfjsNormalizationFusedNorm';
/** The backward kernel's name (the analytic gradient of core.ts, fused). */
export const FUSED_NORM_GRAD_KERNEL = 'TfjsNormalizationFusedNormGrad';
/** The environment flag that enables the fused kernels (default true). */
export const FUSED_FLAG = 'TFJS_NORMALIZATION_FUSED';
/**
 * The environment flag that lets the forward kernels use the WebAssembly
 * SIMD loops (src/kernels/simd; default true). Off, or where WebAssembly
 * SIMD is unavailable, they run the JS loops of compute.ts.
 */
export const SIMD_FLAG = 'TFJS_NORMALIZATION_SIMD';
/**
 * Whether webgl runs its fused forward for row layouts too (default false:
 * on SwiftShader it was no faster than the tf-op path there).
 */
export const WEBGL_ROWS_FLAG = 'TFJS_NORMALIZATION_WEBGL_ROWS';
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
  const xv = cpuValues(be, x);
  const gv = a.hasGamma ? cpuValues(be, gamma) : null;
  const bv = a.hasBeta ? cpuValues(be, beta) : null;
  // The SIMD loops first (y comes back as a copy out of the module's memory).
  // Statistics outside the range the SIMD loops' float32 arithmetic is
  // safe for (simdSafeStats): the JS loops again, in float64.
  let ySimd = simdEnabled() ? simdForwardCpu(L, a.mode, a.epsilon, xv, gv, bv, stats) : null;
  if (ySimd && !simdSafeStats(a.mode, stats)) ySimd = null;
  const arr: FusedArrays = {x: xv, gamma: gv, beta: bv, y: ySimd ?? new Float32Array(L.size), stats};
  if (!ySimd) fusedForward(arr, L, a.mode, a.epsilon);
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
  if (simdEnabled() && simdForwardWasm(be, L, a.mode, a.epsilon, {
    x: () => view(x),
    gamma: a.hasGamma ? () => view(gamma) : null,
    beta: a.hasBeta ? () => view(beta) : null,
    y: () => view(yInfo),
    stats: statInfos.map((t) => () => view(t)),
  }) && simdSafeStats(a.mode, statInfos.map(view))) {
    return [yInfo, ...statInfos];
  }
  // No SIMD loops, or statistics outside their safe range (simdSafeStats): the JS loops, in float64.
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

interface FusedGradAttrs extends FusedAttrs {
  gammaShape: number[];
  betaShape: number[];
}

/** The stats inputs of the grad kernel: s0, s1, ... */
const statKeys = (mode: NormMode) => Array.from({length: numStatsOutputs(mode)}, (_, i) => `s${i}`);

const cpuGradKernel: tf.KernelFunc = ({inputs, backend, attrs}) => {
  const be = backend as CpuBackendLike;
  const a = attrs as unknown as FusedGradAttrs;
  const L = layoutOf(a);
  const ins = inputs as Record<string, tf.TensorInfo>;
  const arr: FusedGradArrays = {
    x: cpuValues(be, ins.x),
    dy: cpuValues(be, ins.dy),
    gamma: a.hasGamma ? cpuValues(be, ins.gamma) : null,
    stats: statKeys(a.mode).map((k) => cpuValues(be, ins[k])),
    dx: new Float32Array(0),
    dgamma: a.hasGamma ? new Float32Array(L.paramSize) : null,
    dbeta: a.hasBeta ? new Float32Array(L.paramSize) : null,
  };
  const dxSimd = simdEnabled() ?
      simdBackwardCpu(L, a.mode, arr.x, arr.dy, arr.gamma, arr.stats, arr.dgamma, arr.dbeta) : null;
  if (dxSimd) {
    arr.dx = dxSimd;
  } else {
    arr.dx = new Float32Array(L.size);
    fusedBackward(arr, L, a.mode, a.epsilon);
  }
  const out = [be.makeTensorInfo(ins.x.shape, 'float32', arr.dx)];
  if (arr.dgamma) out.push(be.makeTensorInfo(a.gammaShape, 'float32', arr.dgamma));
  if (arr.dbeta) out.push(be.makeTensorInfo(a.betaShape, 'float32', arr.dbeta));
  return out;
};

const wasmGradKernel: tf.KernelFunc = ({inputs, backend, attrs}) => {
  const be = backend as WasmBackendLike;
  const a = attrs as unknown as FusedGradAttrs;
  const L = layoutOf(a);
  const ins = inputs as Record<string, tf.TensorInfo>;
  const dxInfo = be.makeOutput(ins.x.shape, 'float32');
  const dgInfo = a.hasGamma ? be.makeOutput(a.gammaShape, 'float32') : null;
  const dbInfo = a.hasBeta ? be.makeOutput(a.betaShape, 'float32') : null;
  const view = (t: tf.TensorInfo) => be.typedArrayFromHeap(t) as Float32Array;
  const outs = [dxInfo, ...[dgInfo, dbInfo].filter((t): t is tf.TensorInfo => t != null)];
  if (simdEnabled() && simdBackwardWasm(be, L, a.mode, {
    x: () => view(ins.x),
    dy: () => view(ins.dy),
    gamma: a.hasGamma ? () => view(ins.gamma) : null,
    dx: () => view(dxInfo),
    stats: statKeys(a.mode).map((k) => () => view(ins[k])),
    dgamma: dgInfo ? () => view(dgInfo) : null,
    dbeta: dbInfo ? () => view(dbInfo) : null,
  })) {
    return outs;
  }
  const arr: FusedGradArrays = {
    x: view(ins.x),
    dy: view(ins.dy),
    gamma: a.hasGamma ? view(ins.gamma) : null,
    stats: statKeys(a.mode).map((k) => view(ins[k])),
    dx: view(dxInfo),
    dgamma: dgInfo ? view(dgInfo) : null,
    dbeta: dbInfo ? view(dbInfo) : null,
  };
  fusedBackward(arr, L, a.mode, a.epsilon);
  return outs;
};

/** Registers the kernels (once; a second copy of the package finds them registered). */
export function registerFusedKernels(): void {
  const kernels: Array<[string, string, tf.KernelFunc]> = [
    [FUSED_NORM_KERNEL, 'cpu', cpuKernel], [FUSED_NORM_KERNEL, 'wasm', wasmKernel],
    // GPU forward kernels (./webgl.ts, ./webgpu.ts); the webgpu backward (./webgpu_grad.ts);
    // webgl's backward is core.ts's tf-op one.
    [FUSED_NORM_KERNEL, 'webgl', webglKernel], [FUSED_NORM_KERNEL, 'webgpu', webgpuKernel],
    [FUSED_NORM_GRAD_KERNEL, 'webgpu', webgpuGradKernel],
    [FUSED_NORM_GRAD_KERNEL, 'cpu', cpuGradKernel], [FUSED_NORM_GRAD_KERNEL, 'wasm', wasmGradKernel],
  ];
  for (const [kernelName, backendName, kernelFunc] of kernels) {
    if (tf.getKernel(kernelName, backendName) == null) {
      tf.registerKernel({kernelName, backendName, kernelFunc});
    }
  }
  for (const [flag, value] of [[FUSED_FLAG, true], [SIMD_FLAG, true], [WEBGL_ROWS_FLAG, false]] as const) {
    try {
      tf.env().get(flag);
    } catch {
      tf.env().registerFlag(flag, () => value);
    }
  }
}

registerFusedKernels();

/** Whether the forward kernels may use the WebAssembly SIMD loops (the TFJS_NORMALIZATION_SIMD flag). */
export function simdEnabled(): boolean {
  return tf.env().getBool(SIMD_FLAG);
}

/** Whether the fused kernels are enabled (the TFJS_NORMALIZATION_FUSED flag). */
export function fusedEnabled(): boolean {
  return tf.env().getBool(FUSED_FLAG);
}

/**
 * Where a forward kernel lost to the tf-op path in bench/results (so that
 * path stays): on wasm without the SIMD loops (flag off, or a backend
 * whose memory the module cannot import), RMS norm whose sets are whole
 * rows ([8,128,768]: 3.38 ms for the JS loop against 2.99 ms for the wasm
 * backend's own SIMD square, mean and multiply; the SIMD loops take about
 * 0.5 ms). Its backward stays fused.
 */
function slowerThanTfOps(backend: string, plan: NormPlan): boolean {
  if (backend === 'webgl') {
    // Row layouts (layer/RMS norm over the last axes, channels-first group norm):
    // the webgl forward measured a tie or slower than tfjs's own reductions
    // (bench/results/BROWSER.md), so it is opt-in there.
    return layoutOf(plan).kind === 'row' && !tf.env().getBool(WEBGL_ROWS_FLAG);
  }
  return backend === 'wasm' && plan.mode === 'rms' && layoutOf(plan).kind === 'row' &&
      !(simdEnabled() && simdEngineForWasm(tf.backend()) != null);
}

/**
 * Whether normalize() would run `plan` through a fused kernel on the active
 * backend: the flag is on, the backend has a kernel, the plan has nothing
 * the kernel does not know (a mask, a new mode), every tensor is float32.
 */
export function canFuse(
    plan: NormPlan, tensors: Array<tf.Tensor|null|undefined>, kernelName = FUSED_NORM_KERNEL): boolean {
  if (!fusedEnabled()) return false;
  const backend = tf.getBackend();
  if (tf.getKernel(kernelName, backend) == null) return false;
  if (!MODES.includes(plan.mode)) return false;
  if (kernelName === FUSED_NORM_KERNEL && slowerThanTfOps(backend, plan)) return false;
  if (backend === 'webgl' && !webglAccepts(plan)) return false;
  if (backend === 'webgpu' && !(kernelName === FUSED_NORM_GRAD_KERNEL ? webgpuGradAccepts(plan) : webgpuAccepts(plan))) {
    return false;
  }
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

/**
 * The backward of normalize(), fused: from dy and what the forward saved
 * ([x, ...stats, gamma?], stats as {@link fusedNorm} returns them), the
 * gradients [dx, dgamma?, dbeta?] in the shapes of x, gamma, beta. The
 * same formulas as core.ts's tf-op backward, accumulated in float64.
 * Returns null where {@link canFuse} says no.
 */
export function fusedNormGrad(
    dy: tf.Tensor, saved: tf.Tensor[], plan: NormPlan, hasGamma: boolean, hasBeta: boolean,
    gammaShape?: number[], betaShape?: number[]): tf.Tensor[]|null {
  const nStats = numStatsOutputs(plan.mode);
  if (saved.length !== 1 + nStats + (hasGamma ? 1 : 0)) return null;
  if (!canFuse(plan, [saved[0], dy, ...saved.slice(1)], FUSED_NORM_GRAD_KERNEL)) return null;
  const inputs: tf.NamedTensorMap = {x: saved[0], dy};
  saved.slice(1, 1 + nStats).forEach((t, i) => (inputs[`s${i}`] = t));
  if (hasGamma) inputs.gamma = saved[saved.length - 1];
  const attrs: FusedGradAttrs = {
    viewShape: plan.viewShape,
    reduceAxes: plan.reduceAxes,
    paramViewShape: plan.paramViewShape,
    epsilon: plan.epsilon,
    mode: plan.mode,
    hasGamma,
    hasBeta,
    gammaShape: gammaShape ?? [],
    betaShape: betaShape ?? [],
  };
  return tf.engine().runKernel(FUSED_NORM_GRAD_KERNEL, inputs, attrs as unknown as tf.NamedAttrMap) as tf.Tensor[];
}
