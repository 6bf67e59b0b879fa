/**
 * What the webgpu kernels (./webgpu.ts, ./webgpu_grad.ts) share: the
 * backend's program and backend types (described structurally: the
 * backend package is never imported), the program builder, the uniforms of
 * a plan, and the WGSL helpers (Kahan sums, the scaled sum of squares, the
 * walk over a set's elements).
 */
import * as tf from '@tensorflow/tfjs';

import type {GpuPlan} from './webgpu_webgl_plan';

/** tfjs-backend-webgpu's WebGPUProgram, the fields this file uses. */
export interface WebGPUProgramLike {
  outputShape: number[];
  shaderKey: string;
  dispatchLayout: {x: number[]};
  dispatch: [number, number, number];
  workgroupSize: [number, number, number];
  variableNames: string[];
  uniforms?: string;
  size?: boolean;
  getUserCode: () => string;
}

export type ProgramUniform = Array<{type: 'int32'|'float32', data: number[]}>;

/** tfjs-backend-webgpu's WebGPUBackend, the methods this file uses. */
export interface WebGPUBackendLike {
  runWebGPUProgram(program: WebGPUProgramLike, inputs: tf.TensorInfo[], outputDtype: 'float32',
                   programDefinedUniform?: ProgramUniform): tf.TensorInfo;
  disposeData(dataId: object, force?: boolean): boolean;
}

export const WG = 64;

export function program(key: string, n: number, names: string[], uniforms: string, body: string, fns = ''): WebGPUProgramLike {
  return {
    outputShape: [n],
    shaderKey: `tfjsNormalization_${key}`,
    dispatchLayout: {x: [0]},
    dispatch: [Math.ceil(n / WG), 1, 1],
    workgroupSize: [WG, 1, 1],
    variableNames: names,
    uniforms,
    size: true,
    getUserCode: () => `${HELPERS}${fns}
      fn main(index : i32) {
        if (index >= uniforms.size) { return; }
        ${body}
      }`,
  };
}

export const PLAN_UNIFORMS = 'n : i32, nChunks : i32, kSize : vec4<i32>, kStride : vec4<i32>, rSize : vec4<i32>, rStride : vec4<i32>,';
export const i32u = (...v: number[]) => ({type: 'int32' as const, data: v});

export function planUniforms(p: GpuPlan): ProgramUniform {
  return [i32u(p.setSize), i32u(p.nChunks), i32u(...p.kSize), i32u(...p.kStride), i32u(...p.rSize), i32u(...p.rStride)];
}

export const HELPERS = `
  fn kahanAdd(acc : vec2<f32>, t : f32) -> vec2<f32> {
    // acc.x: sum, acc.y: compensation (true sum = x - y).
    let y = t - acc.y;
    let s2 = acc.x + y;
    return vec2<f32>(s2, (s2 - acc.x) - y);
  }
  // Scaled sum of squares: st.x scale, st.y ssq, st.z compensation, st.w 1 when a value was NaN/Inf.
  fn addSquare(st : vec4<f32>, d : f32) -> vec4<f32> {
    let a = abs(d);
    if (!(a <= 3.4e38)) { return vec4<f32>(st.xyz, 1.0); }
    if (a > st.x) {
      var r = st.x / a;
      r = r * r;
      let k = kahanAdd(vec2<f32>(st.y * r, st.z * r), 1.0);
      return vec4<f32>(a, k.x, k.y, st.w);
    }
    if (a > 0.0) {
      let r = a / st.x;
      let k = kahanAdd(st.yz, r * r);
      return vec4<f32>(st.x, k.x, k.y, st.w);
    }
    return st;
  }
  fn normOf(st : vec4<f32>) -> f32 {
    if (st.w > 0.0) { return uniforms.NAN; }
    return st.x * sqrt(max(st.y - st.z, 0.0));
  }`;

export const BASE_OF = `
    var r = s;
    var base = (r % uniforms.kSize.w) * uniforms.kStride.w; r = r / uniforms.kSize.w;
    base = base + (r % uniforms.kSize.z) * uniforms.kStride.z; r = r / uniforms.kSize.z;
    base = base + (r % uniforms.kSize.y) * uniforms.kStride.y; r = r / uniforms.kSize.y;
    base = base + r * uniforms.kStride.x;`;

export function walk(body: string): string {
  return `
    let rs = uniforms.rSize;
    let rt = uniforms.rStride;
    var rem = k0;
    var c = vec4<i32>(0, 0, 0, 0);
    c.w = rem % rs.w; rem = rem / rs.w;
    c.z = rem % rs.z; rem = rem / rs.z;
    c.y = rem % rs.y; rem = rem / rs.y;
    c.x = rem;
    var off = c.x * rt.x + c.y * rt.y + c.z * rt.z + c.w * rt.w;
    for (var k = k0; k < k1; k = k + 1) {
      let v = x[base + off];
      ${body}
      c.w = c.w + 1; off = off + rt.w;
      if (c.w == rs.w) {
        c.w = 0; off = off + rt.z - rs.w * rt.w; c.z = c.z + 1;
        if (c.z == rs.z) {
          c.z = 0; off = off + rt.y - rs.z * rt.z; c.y = c.y + 1;
          if (c.y == rs.y) { c.y = 0; off = off + rt.x - rs.y * rt.y; c.x = c.x + 1; }
        }
      }
    }`;
}

/** The normalize-pass axes (statistics and gamma offsets of a flat index), as webgpu.ts's apply pass and webgpu_grad.ts's passes read them. */
export const DIM_UNIFORMS = 'nd : i32, dSizeA : vec4<i32>, dSizeB : vec4<i32>, dSA : vec4<i32>, dSB : vec4<i32>, dPA : vec4<i32>, dPB : vec4<i32>,';

export function dimUniforms(p: GpuPlan): ProgramUniform {
  return [
    i32u(p.nd), i32u(...p.dSize.slice(0, 4)), i32u(...p.dSize.slice(4)), i32u(...p.dSStride.slice(0, 4)),
    i32u(...p.dSStride.slice(4)), i32u(...p.dPStride.slice(0, 4)), i32u(...p.dPStride.slice(4)),
  ];
}


/** fn dimIdx(flat) -> (statistics index, gamma index), unrolled over the 8 axes (innermost first). */
export const DIM_IDX = (() => {
  const comps = ['w', 'z', 'y', 'x'];
  const steps: string[] = [];
  for (let j = 0; j < 8; j++) {
    const half = j < 4 ? 'B' : 'A';
    const c = comps[j % 4];
    steps.push(`if (uniforms.nd > ${j}) {
      let sz = uniforms.dSize${half}.${c};
      let cj = rem % sz;
      rem = rem / sz;
      si = si + cj * uniforms.dS${half}.${c};
      pi = pi + cj * uniforms.dP${half}.${c};
    }`);
  }
  return `
  fn dimIdx(flat : i32) -> vec2<i32> {
    var rem = flat;
    var si = 0;
    var pi = 0;
    ${steps.join('\n    ')}
    return vec2<i32>(si, pi);
  }`;
})();

/** A flat view of a tensor (WebGPU buffers are flat: a view of another shape is the same buffer). */
export const flatView = (t: tf.TensorInfo): tf.TensorInfo =>
  ({dataId: t.dataId, shape: [tf.util.sizeFromShape(t.shape)], dtype: t.dtype});
