/**
 * BatchNormalization's moving-statistics update on the GPU backends, in
 * one kernel: from the moving mean and variance and the fused forward's
 * statistics [m1, m2, inv] (src/ops/core.ts's Moments.saved), the new
 *
 *   mean     = moving_mean * momentum + (m1 + m2) * (1 - momentum),
 *   variance = moving_variance * momentum + v * (1 - momentum),
 *   v        = max(1 / inv^2 - epsilon, 0), 0 where inv is not > 0,
 *              NaN where m1 + m2 is not finite (a NaN or Inf in the
 *              channel leaves inv 0; the tf-op path's variance is NaN),
 *
 * the arithmetic of the layer's tf-op update (varianceFromInv and the
 * moving averages of src/layers/batch_normalization.ts), in float32, one
 * element per channel. One shader per output (two dispatches) where the tf
 * ops took 19 kernels a training step (docs/performance.md).
 *
 * Registered for webgl and webgpu only: on the backends whose data is in
 * CPU memory the layer updates in JS from the read values. The backend
 * packages are never imported (their types are described structurally, as
 * in ./webgl.ts and ./wgsl.ts).
 */
import * as tf from '@tensorflow/tfjs';

import {FUSED_FLAG} from './contract';
import {flatView, program, WebGPUBackendLike} from './wgsl';

/** The kernel's name in tfjs's registry. */
export const MOVING_UPDATE_KERNEL = 'TfjsNormalizationMovingUpdate';

/** The kernel's attributes. */
export interface MovingUpdateAttrs {
  momentum: number;
  epsilon: number;
}

/** The inputs, each of C float32 elements (any shape): moving mean, moving variance, m1, m2, inv. */
type MovingInputs = Record<'mean'|'variance'|'m1'|'m2'|'inv', tf.TensorInfo>;

// webgpu ----------------------------------------------------------------

function wgslProgram(which: 'mean'|'variance', n: number) {
  // Finiteness by the exponent bits (WGSL has no isnan, and a compiler may fold x != x); the NaN
  // made at run time from the mean's bits (a constant NaN is a shader-creation error in WGSL).
  const value = which === 'mean' ? '(m1[index] + m2[index])' :
                                   'select(bitcast<f32>(bitcast<u32>(m1[index] + m2[index]) | 0x7fc00000u), ' +
                                   'select(0.0, max(1.0 / (inv[index] * inv[index]) - uniforms.eps, 0.0), inv[index] > 0.0), ' +
                                   '(bitcast<u32>(m1[index] + m2[index]) & 0x7f800000u) != 0x7f800000u)';
  return program(`movingUpdate_${which}`, n, which === 'mean' ? ['moving', 'm1', 'm2'] : ['moving', 'm1', 'm2', 'inv'],
                 'momentum : f32, rest : f32, eps : f32,', `
    setOutputAtIndex(index, moving[index] * uniforms.momentum + ${value} * uniforms.rest);`);
}

const webgpuMovingUpdate: tf.KernelFunc = ({inputs, backend, attrs}) => {
  const be = backend as WebGPUBackendLike;
  const {mean, variance, m1, m2, inv} = inputs as MovingInputs;
  const {momentum, epsilon} = attrs as unknown as MovingUpdateAttrs;
  const n = tf.util.sizeFromShape(mean.shape);
  const u = [momentum, 1 - momentum, epsilon].map((v) => ({type: 'float32' as const, data: [v]}));
  const newMean = be.runWebGPUProgram(wgslProgram('mean', n), [mean, m1, m2].map(flatView), 'float32', u);
  const newVariance = be.runWebGPUProgram(wgslProgram('variance', n), [variance, m1, m2, inv].map(flatView), 'float32', u);
  return [{...newMean, shape: mean.shape}, {...newVariance, shape: variance.shape}];
};

// webgl -----------------------------------------------------------------

/** tfjs-backend-webgl's MathBackendWebGL and GPGPUProgram, the parts this file uses. */
interface WebGLBackendLike {
  runWebGLProgram(program: {variableNames: string[], outputShape: number[], userCode: string,
                            customUniforms?: Array<{name: string, type: 'float'}>},
                  inputs: tf.TensorInfo[], outputDtype: 'float32', customUniformValues?: number[][]): tf.TensorInfo;
  disposeIntermediateTensorInfo(t: tf.TensorInfo): void;
}

function glslProgram(which: 'mean'|'variance', n: number) {
  // Finiteness by the exponent bits (WebGL 2's floatBitsToUint; isnan is unreliable on some GPUs).
  const value = which === 'mean' ? '(getM1(i) + getM2(i))' :
                                   '((floatBitsToUint(getM1(i) + getM2(i)) & 0x7f800000u) == 0x7f800000u ? uintBitsToFloat(0x7fc00000u) : ' +
                                   '(getInv(i) > 0.0 ? max(1.0 / (getInv(i) * getInv(i)) - eps, 0.0) : 0.0))';
  return {
    variableNames: which === 'mean' ? ['moving', 'm1', 'm2'] : ['moving', 'm1', 'm2', 'inv'],
    outputShape: [n],
    customUniforms: [{name: 'momentum', type: 'float' as const}, {name: 'rest', type: 'float' as const},
                     {name: 'eps', type: 'float' as const}],
    userCode: `
      void main() {
        int i = getOutputCoords();
        setOutput(getMoving(i) * momentum + ${value} * rest);
      }`,
  };
}

const webglMovingUpdate: tf.KernelFunc = ({inputs, backend, attrs}) => {
  const be = backend as WebGLBackendLike;
  const {mean, variance, m1, m2, inv} = inputs as MovingInputs;
  const {momentum, epsilon} = attrs as unknown as MovingUpdateAttrs;
  const n = tf.util.sizeFromShape(mean.shape);
  const reshape = tf.getKernel('Reshape', 'webgl')?.kernelFunc as tf.KernelFunc;
  // 1-D views (the getters take one index on 1-D inputs only); webgl's Reshape adds a reference, released below.
  const flat = (t: tf.TensorInfo) => reshape({inputs: {x: t}, backend, attrs: {shape: [n]}}) as tf.TensorInfo;
  const u = [[momentum], [1 - momentum], [epsilon]];
  const run = (which: 'mean'|'variance', ins: tf.TensorInfo[]) => {
    const views = ins.map(flat);
    try {
      return be.runWebGLProgram(glslProgram(which, n), views, 'float32', u);
    } finally {
      views.forEach((v) => be.disposeIntermediateTensorInfo(v));
    }
  };
  const newMean = run('mean', [mean, m1, m2]);
  const newVariance = run('variance', [variance, m1, m2, inv]);
  return [{...newMean, shape: mean.shape}, {...newVariance, shape: variance.shape}];
};

/** The backends the kernel is registered for, with their kernel functions. */
export const MOVING_UPDATE_KERNELS: ReadonlyArray<[string, tf.KernelFunc]> =
    [['webgpu', webgpuMovingUpdate], ['webgl', webglMovingUpdate]];

/** Registers the kernel for each of {@link MOVING_UPDATE_KERNELS} (once; a second copy of the package finds it registered). */
export function registerMovingUpdateKernels(): void {
  for (const [backendName, kernelFunc] of MOVING_UPDATE_KERNELS) {
    if (tf.getKernel(MOVING_UPDATE_KERNEL, backendName) == null) {
      tf.registerKernel({kernelName: MOVING_UPDATE_KERNEL, backendName, kernelFunc});
    }
  }
}

/**
 * The new moving mean and variance from the kernel of the active backend,
 * or null where it has none (cpu, wasm, tensorflow and other backends),
 * the fused kernels are off (TFJS_NORMALIZATION_FUSED), webgl stores
 * half floats (1 / inv^2 overflows float16) or is WebGL 1 (no
 * floatBitsToUint for the finiteness test), or a tensor is not float32
 * with C elements. `saved`: [m1, m2, inv] as the fused forward returns them.
 */
export function fusedMovingUpdate(
    movingMean: tf.Tensor, movingVariance: tf.Tensor, saved: readonly tf.Tensor[], momentum: number,
    epsilon: number): [tf.Tensor, tf.Tensor]|null {
  const backend = tf.getBackend();
  if (!tf.env().getBool(FUSED_FLAG) || tf.getKernel(MOVING_UPDATE_KERNEL, backend) == null) return null;
  if (backend === 'webgl' && (!tf.env().getBool('WEBGL_RENDER_FLOAT32_ENABLED') || tf.env().getNumber('WEBGL_VERSION') !== 2)) return null;
  const [m1, m2, inv] = saved;
  const ins = [movingMean, movingVariance, m1, m2, inv];
  if (saved.length !== 3 || ins.some((t) => t.dtype !== 'float32' || t.size !== movingMean.size)) return null;
  const attrs: MovingUpdateAttrs = {momentum, epsilon};
  const out = tf.engine().runKernel(
      MOVING_UPDATE_KERNEL, {mean: movingMean, variance: movingVariance, m1, m2, inv},
      attrs as unknown as tf.NamedAttrMap) as tf.Tensor[];
  return [out[0], out[1]];
}
