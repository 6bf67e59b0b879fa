/**
 * The fused normalization kernels: one record per backend (the table
 * below), registered with tfjs's kernel registry and with the dispatch
 * that core.ts calls (./dispatch.ts). Each backend file owns its kernels
 * and its rules (`accepts`):
 *
 * - cpu (./cpu.ts): forward and backward, the loops of ./host.ts on the
 *   backend's own arrays;
 * - wasm (./wasm.ts): forward and backward, the same loops on views of the
 *   wasm heap;
 * - webgl (./webgl.ts): the forward, as shaders; the backward is core.ts's
 *   tf-op one;
 * - webgpu (./webgpu.ts, ./webgpu_grad.ts): forward and backward, as WGSL
 *   shaders;
 * - tensorflow, tfjs-node (./tensorflow.ts): forward and backward as short
 *   chains of native TensorFlow ops; they decline (FusedKernelDeclined: the
 *   tf-op path runs) where their float32 arithmetic is not safe for the data;
 * - every other backend: no record, so core.ts keeps its tf-op path.
 *
 * A new backend: a file exporting one FusedBackend record
 * (./contract.ts), one import and one entry in FUSED_BACKEND_RECORDS.
 *
 * `tf.env().set('TFJS_NORMALIZATION_FUSED', false)` turns the kernels off
 * (every op then takes the tf-op path).
 */
import * as tf from '@tensorflow/tfjs';

import {FUSED_FLAG, FUSED_NORM_GRAD_KERNEL, FUSED_NORM_KERNEL, FusedBackend, SIMD_FLAG, WEBGL_ROWS_FLAG} from './contract';
import {cpuBackend} from './cpu';
import {useFusedBackend} from './dispatch';
import {registerMovingUpdateKernels} from './moving_update';
import {tensorflowBackend} from './tensorflow';
import {wasmBackend} from './wasm';
import {webglBackend} from './webgl';
import {webgpuBackend} from './webgpu';

export {FUSED_FLAG, FUSED_NORM_GRAD_KERNEL, FUSED_NORM_KERNEL, SIMD_FLAG, WEBGL_ROWS_FLAG} from './contract';
export {canFuse, fusedEnabled, fusedNorm, fusedNormGrad, fusedSave} from './dispatch';
export {fusedMovingUpdate, MOVING_UPDATE_KERNEL} from './moving_update';
export {simdEnabled} from './simd/run';

/** The backends this package has fused kernels for, one record each. */
export const FUSED_BACKEND_RECORDS: readonly FusedBackend[] =
    [cpuBackend, wasmBackend, webglBackend, webgpuBackend, tensorflowBackend];

/** Their names. */
export const FUSED_BACKENDS: readonly string[] = FUSED_BACKEND_RECORDS.map((r) => r.backend);

/**
 * Registers the kernels (once; a second copy of the package finds them
 * registered), BatchNormalization's moving-statistics update on webgl and
 * webgpu (./moving_update.ts), and the flags.
 */
export function registerFusedKernels(): void {
  for (const record of FUSED_BACKEND_RECORDS) {
    useFusedBackend(record);
    const kernels: Array<[string, tf.KernelFunc|undefined]> =
        [[FUSED_NORM_KERNEL, record.forward], [FUSED_NORM_GRAD_KERNEL, record.backward]];
    for (const [kernelName, kernelFunc] of kernels) {
      if (kernelFunc != null && tf.getKernel(kernelName, record.backend) == null) {
        tf.registerKernel({kernelName, backendName: record.backend, kernelFunc});
      }
    }
  }
  registerMovingUpdateKernels();
  for (const [flag, value] of [[FUSED_FLAG, true], [SIMD_FLAG, true], [WEBGL_ROWS_FLAG, false]] as const) {
    try {
      tf.env().get(flag);
    } catch {
      tf.env().registerFlag(flag, () => value);
    }
  }
}

registerFusedKernels();
