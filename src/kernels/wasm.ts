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
  incRef(dataId: tf.DataId): void;
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

/**
 * tf.customGrad's `save` keeps a clone of each tensor, made by the Identity
 * kernel, and the wasm backend's Identity copies its input (tfjs-backend-wasm
 * 4.22: a new buffer and a copy of the data), so every forward a tape
 * records copied x for its backward (8% of a LayerNorm [8,128,768]
 * forward + backward: docs/performance.md). Tensor data is immutable in
 * tfjs (kernels write only their outputs; Variable.assign takes the new
 * value's dataId), so a clone may share its input's data under the
 * backend's reference count, as the cpu backend's Identity and wasm's own
 * Reshape do: the clone keeps the data alive after the caller disposes x,
 * and the engine disposes the clone when the gradient is done (or the tape
 * dropped). For the duration of `fn` (the save), wasm's Identity is that
 * sharing one; the registered kernel is put back afterwards, thrown or not.
 */
function withSharedIdentity(fn: () => void): void {
  const own = tf.getKernel('Identity', 'wasm');
  if (own == null) {
    fn();
    return;
  }
  const shared: tf.KernelFunc = (args) => {
    const {x} = args.inputs as {x: tf.TensorInfo};
    if (x.dtype === 'string') return own.kernelFunc(args);
    (args.backend as unknown as WasmBackendLike).incRef(x.dataId);
    return {dataId: x.dataId, shape: x.shape, dtype: x.dtype};
  };
  tf.unregisterKernel('Identity', 'wasm');
  tf.registerKernel({...own, kernelFunc: shared});
  try {
    fn();
  } finally {
    tf.unregisterKernel('Identity', 'wasm');
    tf.registerKernel(own);
  }
}

export const wasmBackend: FusedBackend = {
  backend: 'wasm',
  forward: (args) => hostForward(wasmHost(args.backend as WasmBackendLike), args),
  backward: (args) => hostBackward(wasmHost(args.backend as WasmBackendLike), args),
  saveShared: withSharedIdentity,
  accepts: (plan: NormPlan, direction) =>
    direction === 'backward' || !(!MODES[plan.mode].centred && layoutOf(plan).kind === 'row' && !simdOnWasm()),
};
