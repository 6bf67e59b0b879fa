/**
 * The cpu backend's fused kernels: the loops of ./host.ts on the
 * backend's own arrays (copied into the SIMD module's memory when its
 * loops run). Forward and backward take every plan.
 */
import * as tf from '@tensorflow/tfjs';

import type {FusedBackend} from './contract';
import {ArrayHost, hostBackward, hostForward, PlainOut, plainOut} from './host';

/** What the cpu backend (tfjs-backend-cpu's MathBackendCPU) offers a kernel. */
interface CpuBackendLike {
  data: {get(dataId: object): {values?: unknown}};
  readSync(dataId: object): unknown;
  makeTensorInfo(shape: number[], dtype: 'float32', values: Float32Array): tf.TensorInfo;
}

function cpuHost(backend: CpuBackendLike): ArrayHost<PlainOut> {
  return {
    placement: {kind: 'copy'},
    alloc: plainOut,
    array: (t) => {
      if ('values' in t) return t.values;
      const v = backend.data.get(t.dataId).values;
      return v instanceof Float32Array ? v : Float32Array.from(backend.readSync(t.dataId) as ArrayLike<number>);
    },
    info: (out) => backend.makeTensorInfo(out.shape, 'float32', out.values),
  };
}

export const cpuBackend: FusedBackend = {
  backend: 'cpu',
  forward: (args) => hostForward(cpuHost(args.backend as CpuBackendLike), args),
  backward: (args) => hostBackward(cpuHost(args.backend as CpuBackendLike), args),
  accepts: () => true,
};
