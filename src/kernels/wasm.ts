/**
 * The wasm backend's fused kernels: the loops of ./host.ts on views of the
 * backend's heap (no copy in or out; the SIMD module runs on that heap).
 * Its own rule: without the SIMD loops, RMS norm over whole rows keeps
 * the tf-op forward, which measured faster there (docs/performance.md);
 * its backward stays fused.
 */
import * as tf from '@tensorflow/tfjs';

import {FusedBackend, MODES, NormPlan} from './contract';
import {ArrayHost, hostBackward, hostForward} from './host';
import {layoutOf} from './layout';
import {simdEngineForWasm} from './simd/engine';
import {simdEnabled} from './simd/run';

/** What the wasm backend (tfjs-backend-wasm's BackendWasm) offers a kernel. */
interface WasmBackendLike {
  makeOutput(shape: number[], dtype: 'float32'): tf.TensorInfo;
  typedArrayFromHeap(t: tf.TensorInfo): Float32Array|Int32Array|Uint8Array;
}

function wasmHost(backend: WasmBackendLike): ArrayHost<tf.TensorInfo> {
  const engine = simdEngineForWasm(backend);
  return {
    placement: engine ? {kind: 'view', engine} : null,
    alloc: (shape) => backend.makeOutput(shape, 'float32'),
    array: (t) => backend.typedArrayFromHeap(t) as Float32Array,
    info: (t) => t,
  };
}

/** Whether the SIMD loops can run on the active wasm backend. */
const simdOnWasm = () => simdEnabled() && simdEngineForWasm(tf.backend()) != null;

export const wasmBackend: FusedBackend = {
  backend: 'wasm',
  forward: (args) => hostForward(wasmHost(args.backend as WasmBackendLike), args),
  backward: (args) => hostBackward(wasmHost(args.backend as WasmBackendLike), args),
  accepts: (plan: NormPlan, direction) =>
    direction === 'backward' || !(!MODES[plan.mode].centred && layoutOf(plan).kind === 'row' && !simdOnWasm()),
};
