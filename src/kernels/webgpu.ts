/**
 * The fused forward for the webgpu backend: WGSL compute shaders run
 * through the backend's own `runWebGPUProgram`, on flat views of x, gamma
 * and beta. The same five passes and the same arithmetic as ./webgl.ts
 * (Kahan sums of shifted data per chunk, TwoSum mean pair, scaled Kahan
 * sum of squares of the centered data, per-set merge, normalize), written
 * in WGSL; every buffer is float32. The backend package is never imported:
 * its program type is described structurally.
 */
import * as tf from '@tensorflow/tfjs';

import {numStatsOutputs} from './compute';
import type {FusedKernelAttrs} from './webgl';
import {CHUNK, gpuPlanOf, GpuPlan} from './webgpu_webgl_plan';

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

/** Whether the webgpu kernel takes this plan. */
export function webgpuAccepts(plan: Parameters<typeof gpuPlanOf>[0]): boolean {
  return gpuPlanOf(plan) != null;
}

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

const CHUNK_HEAD = `
    let s = index / uniforms.nChunks;
    let k0 = (index - s * uniforms.nChunks) * ${CHUNK};
    let k1 = min(k0 + ${CHUNK}, uniforms.n);
    ${BASE_OF}`;

function partialSumProgram(p: GpuPlan): WebGPUProgramLike {
  return program('partialSum', p.numSets * p.nChunks, ['x'], PLAN_UNIFORMS, `${CHUNK_HEAD}
    let K = x[base];
    var acc = vec2<f32>(0.0, 0.0);
    ${walk('acc = kahanAdd(acc, v - K);')}
    setOutputAtIndex(index, acc.x - acc.y);`);
}

function meanProgram(p: GpuPlan): WebGPUProgramLike {
  return program('mean', p.numSets, ['x', 'part'], `${PLAN_UNIFORMS} which : i32,`, `
    let s = index;
    ${BASE_OF}
    let K = x[base];
    var acc = vec2<f32>(0.0, 0.0);
    for (var c = 0; c < uniforms.nChunks; c = c + 1) { acc = kahanAdd(acc, part[s * uniforms.nChunks + c]); }
    let nf = f32(uniforms.n);
    let q = acc.x / nf;
    let m1 = K + q;
    let bb = m1 - K;
    let m2 = ((K - (m1 - bb)) + (q - bb)) - acc.y / nf;
    setOutputAtIndex(index, select(m2, m1, uniforms.which == 0));`);
}

function partialNormProgram(p: GpuPlan, centered: boolean): WebGPUProgramLike {
  return program(`partialNorm_${centered}`, p.numSets * p.nChunks, centered ? ['x', 'm1', 'm2'] : ['x'], PLAN_UNIFORMS,
                 `${CHUNK_HEAD}
    ${centered ? 'let mu1 = m1[s]; let mu2 = m2[s];' : ''}
    var st = vec4<f32>(0.0, 0.0, 0.0, 0.0);
    ${walk(`st = addSquare(st, ${centered ? '(v - mu1) - mu2' : 'v'});`)}
    setOutputAtIndex(index, normOf(st));`);
}

function invProgram(p: GpuPlan): WebGPUProgramLike {
  return program('inv', p.numSets, ['q'], 'n : i32, nChunks : i32, which : i32, stdEps : i32, eps : f32,', `
    var st = vec4<f32>(0.0, 0.0, 0.0, 0.0);
    for (var c = 0; c < uniforms.nChunks; c = c + 1) { st = addSquare(st, q[index * uniforms.nChunks + c]); }
    let sd = normOf(st) / sqrt(f32(uniforms.n));
    let eps = uniforms.eps;
    var r = 0.0;
    if (uniforms.stdEps == 1) {
      if (uniforms.which == 0) {
        if (sd + eps > 0.0) { r = 1.0 / (sd + eps); }
      } else if (sd > 0.0) {
        r = 1.0 / sd;
      }
    } else if (sd > 1e18) {
      r = 1.0 / sd;
    } else {
      let ve = sd * sd + eps;
      if (ve > 0.0) { r = 1.0 / sqrt(ve); }
    }
    if (st.w > 0.0) { r = uniforms.NAN; }
    setOutputAtIndex(index, r);`);
}

function applyProgram(p: GpuPlan, centered: boolean, hasGamma: boolean, hasBeta: boolean): WebGPUProgramLike {
  const names = centered ? ['x', 'm1', 'm2', 'a'] : ['x', 'a'];
  if (hasGamma) names.push('g');
  if (hasBeta) names.push('b');
  return program(`apply_${centered}_${hasGamma}_${hasBeta}`, p.size, names,
                 'nd : i32, dSizeA : vec4<i32>, dSizeB : vec4<i32>, dSA : vec4<i32>, dSB : vec4<i32>, dPA : vec4<i32>, dPB : vec4<i32>,',
                 `
    var sz = array<i32, 8>(uniforms.dSizeA.x, uniforms.dSizeA.y, uniforms.dSizeA.z, uniforms.dSizeA.w,
                           uniforms.dSizeB.x, uniforms.dSizeB.y, uniforms.dSizeB.z, uniforms.dSizeB.w);
    var ss = array<i32, 8>(uniforms.dSA.x, uniforms.dSA.y, uniforms.dSA.z, uniforms.dSA.w,
                           uniforms.dSB.x, uniforms.dSB.y, uniforms.dSB.z, uniforms.dSB.w);
    var ps = array<i32, 8>(uniforms.dPA.x, uniforms.dPA.y, uniforms.dPA.z, uniforms.dPA.w,
                           uniforms.dPB.x, uniforms.dPB.y, uniforms.dPB.z, uniforms.dPB.w);
    var rem = index;
    var si = 0;
    var pi = 0;
    for (var j = 7; j >= 8 - uniforms.nd; j = j - 1) {
      let cj = rem % sz[j];
      rem = rem / sz[j];
      si = si + cj * ss[j];
      pi = pi + cj * ps[j];
    }
    let v = x[index];
    let d = ${centered ? '(v - m1[si]) - m2[si]' : 'v'};
    setOutputAtIndex(index, d * (a[si]${hasGamma ? ' * g[pi]' : ''})${hasBeta ? ' + b[pi]' : ''});`);
}

export const webgpuKernel: tf.KernelFunc = ({inputs, backend, attrs}) => {
  const be = backend as unknown as WebGPUBackendLike;
  const a = attrs as unknown as FusedKernelAttrs;
  const p = gpuPlanOf(a);
  if (p == null) throw new Error('TfjsNormalizationFusedNorm (webgpu): plan not supported; canFuse should have declined it');
  const {x, gamma, beta} = inputs as Record<string, tf.TensorInfo>;
  // WebGPU buffers are flat: a view of another shape is the same buffer.
  const flat = (t: tf.TensorInfo): tf.TensorInfo => ({dataId: t.dataId, shape: [tf.util.sizeFromShape(t.shape)], dtype: t.dtype});
  const temps: tf.TensorInfo[] = [];
  const stats: tf.TensorInfo[] = [];
  const run = (prog: WebGPUProgramLike, ins: tf.TensorInfo[], u: ProgramUniform) => be.runWebGPUProgram(prog, ins, 'float32', u);
  const xf = flat(x);
  const pu = planUniforms(p);
  const centered = a.mode !== 'rms';
  const statsShape = a.viewShape.map((d, i) => (a.reduceAxes.includes(i) ? 1 : d));
  try {
    let m1: tf.TensorInfo|null = null;
    let m2: tf.TensorInfo|null = null;
    if (centered) {
      const part = run(partialSumProgram(p), [xf], pu);
      temps.push(part);
      m1 = run(meanProgram(p), [xf, part], [...pu, i32u(0)]);
      stats.push(m1);
      m2 = run(meanProgram(p), [xf, part], [...pu, i32u(1)]);
      stats.push(m2);
    }
    const norms = run(partialNormProgram(p, centered), centered ? [xf, m1 as tf.TensorInfo, m2 as tf.TensorInfo] : [xf], pu);
    temps.push(norms);
    const invU = (which: number): ProgramUniform =>
      [i32u(p.setSize), i32u(p.nChunks), i32u(which), i32u(a.mode === 'stdEps' ? 1 : 0), {type: 'float32', data: [a.epsilon]}];
    const inv = run(invProgram(p), [norms], invU(0));
    stats.push(inv);
    if (a.mode === 'stdEps') stats.push(run(invProgram(p), [norms], invU(1)));
    const applyCentered = a.mode === 'center' || a.mode === 'stdEps';
    const ins = applyCentered ? [xf, m1 as tf.TensorInfo, m2 as tf.TensorInfo, inv] : [xf, inv];
    if (a.hasGamma) ins.push(flat(gamma));
    if (a.hasBeta) ins.push(flat(beta));
    const y = run(applyProgram(p, applyCentered, a.hasGamma, a.hasBeta), ins, [
      i32u(p.nd), i32u(...p.dSize.slice(0, 4)), i32u(...p.dSize.slice(4)), i32u(...p.dSStride.slice(0, 4)),
      i32u(...p.dSStride.slice(4)), i32u(...p.dPStride.slice(0, 4)), i32u(...p.dPStride.slice(4)),
    ]);
    if (stats.length !== numStatsOutputs(a.mode)) throw new Error('webgpu fused kernel: wrong number of statistics');
    return [{...y, shape: x.shape}, ...stats.map((t) => ({...t, shape: statsShape}))];
  } catch (e) {
    stats.forEach((t) => be.disposeData(t.dataId));
    throw e;
  } finally {
    temps.forEach((t) => be.disposeData(t.dataId));
  }
};
