/**
 * A faster cpu kernel for Conv2DBackpropFilter (the gradient of a conv2d
 * with respect to its filter), for the examples.
 *
 * Why: tfjs 4.22's cpu backend computes this gradient by reading every
 * element through `TensorBuffer.get(b, r, c, d)`, which makes one training
 * step of the small digits CNN take about 0.7 s at batch 32 on this
 * project's 2-core machine; nearly all of it is this one kernel. This
 * version does the same sum (dW[r, c, i, o] = sum over batch and output
 * positions of x * dy) straight on the typed arrays, accumulating in
 * float64, and is about 100x faster. It is numerically checked against the
 * built-in kernel in test/digits.test.ts. It changes nothing on other
 * backends (webgl, wasm, tfjs-node), and the channels-first layout still
 * goes to the built-in kernel.
 *
 * The same function also fills a gap of tfjs 4.22's wasm backend, which
 * has no Conv2DBackpropFilter at all (so conv nets cannot train on it).
 */
import * as tf from '@tensorflow/tfjs';

type KernelFunc = tf.KernelConfig['kernelFunc'];
type Conv4 = [number, number, number, number];

interface CpuBackendLike {
  data: {get(dataId: tf.DataId): {values: tf.TypedArray}};
  makeTensorInfo(shape: number[], dtype: tf.DataType, values: tf.TypedArray): tf.TensorInfo;
}

interface WasmBackendLike {
  typedArrayFromHeap(t: tf.TensorInfo): tf.TypedArray;
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
}

interface FilterGradAttrs {
  strides: number|[number, number];
  pad: 'valid'|'same'|number|tf.backend_util.ExplicitPadding;
  dataFormat: 'NHWC'|'NCHW';
  dimRoundingMode?: 'floor'|'round'|'ceil';
  filterShape: Conv4;
}

let original: KernelFunc|null = null;
let wasmAdded = false;

/** dW of a channels-last conv2d, from x and dy, summed in float64. */
function filterGrad(xv: tf.TypedArray, dyv: tf.TypedArray, info: tf.backend_util.Conv2DInfo): Float32Array {
  const {batchSize, inHeight, inWidth, inChannels, outHeight, outWidth, outChannels, filterHeight, filterWidth,
    strideHeight, strideWidth} = info;
  const top = info.padInfo.top;
  const left = info.padInfo.left;
  const acc = new Float64Array(filterHeight * filterWidth * inChannels * outChannels);
  for (let b = 0; b < batchSize; b++) {
    for (let yr = 0; yr < outHeight; yr++) {
      for (let yc = 0; yc < outWidth; yc++) {
        const dyOff = ((b * outHeight + yr) * outWidth + yc) * outChannels;
        for (let wr = 0; wr < filterHeight; wr++) {
          const xr = yr * strideHeight + wr - top;
          if (xr < 0 || xr >= inHeight) continue;
          for (let wc = 0; wc < filterWidth; wc++) {
            const xc = yc * strideWidth + wc - left;
            if (xc < 0 || xc >= inWidth) continue;
            const xOff = ((b * inHeight + xr) * inWidth + xc) * inChannels;
            const wBase = (wr * filterWidth + wc) * inChannels;
            for (let i = 0; i < inChannels; i++) {
              const xi = xv[xOff + i];
              if (xi === 0) continue;
              const wOff = (wBase + i) * outChannels;
              for (let o = 0; o < outChannels; o++) acc[wOff + o] += xi * dyv[dyOff + o];
            }
          }
        }
      }
    }
  }
  return Float32Array.from(acc);
}

function convInfo(args: Parameters<KernelFunc>[0]) {
  const a = args.attrs as unknown as FilterGradAttrs;
  const x = args.inputs.x as tf.TensorInfo;
  const dy = args.inputs.dy as tf.TensorInfo;
  if (a.dataFormat === 'NCHW' || x.dtype !== 'float32' || dy.dtype !== 'float32') return null;
  const info = tf.backend_util.computeConv2DInfo(
      x.shape as Conv4, a.filterShape, a.strides, 1, a.pad, a.dimRoundingMode, false, 'channelsLast');
  return {x, dy, info};
}

const cpuFilterGrad: KernelFunc = (args) => {
  const c = convInfo(args);
  if (c == null) return (original as KernelFunc)(args);
  const cpu = args.backend as unknown as CpuBackendLike;
  const dw = filterGrad(cpu.data.get(c.x.dataId).values, cpu.data.get(c.dy.dataId).values, c.info);
  return cpu.makeTensorInfo(c.info.filterShape, 'float32', dw);
};

const wasmFilterGrad: KernelFunc = (args) => {
  const c = convInfo(args);
  if (c == null) throw new Error('Conv2DBackpropFilter (wasm, examples/lib): only float32 channels-last is supported');
  const wasm = args.backend as unknown as WasmBackendLike;
  const dw = filterGrad(wasm.typedArrayFromHeap(c.x), wasm.typedArrayFromHeap(c.dy), c.info);
  const out = wasm.makeOutput(c.info.filterShape, 'float32');
  wasm.typedArrayFromHeap(out).set(dw);
  return out;
};

/**
 * Replaces the cpu backend's Conv2DBackpropFilter with the fast version,
 * and gives the wasm backend the kernel it lacks (tfjs 4.22's wasm backend
 * cannot train a conv net without it). Idempotent. Returns a function that
 * restores the built-in cpu kernel and removes the wasm one.
 */
export function useFastConvFilterGrad(): () => void {
  if (original == null) {
    const builtIn = tf.getKernel('Conv2DBackpropFilter', 'cpu');
    if (builtIn != null) {
      original = builtIn.kernelFunc;
      tf.unregisterKernel('Conv2DBackpropFilter', 'cpu');
      tf.registerKernel({kernelName: 'Conv2DBackpropFilter', backendName: 'cpu', kernelFunc: cpuFilterGrad});
    }
  }
  if (!wasmAdded && tf.getKernel('Conv2DBackpropFilter', 'wasm') == null) {
    tf.registerKernel({kernelName: 'Conv2DBackpropFilter', backendName: 'wasm', kernelFunc: wasmFilterGrad});
    wasmAdded = true;
  }
  return () => {
    if (original != null) {
      tf.unregisterKernel('Conv2DBackpropFilter', 'cpu');
      tf.registerKernel({kernelName: 'Conv2DBackpropFilter', backendName: 'cpu', kernelFunc: original});
      original = null;
    }
    if (wasmAdded) {
      tf.unregisterKernel('Conv2DBackpropFilter', 'wasm');
      wasmAdded = false;
    }
  };
}
