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

import {attrsOf, ForwardAttrs, FUSED_NORM_KERNEL, FusedBackend, MODES, NormPlan} from './contract';
import {runGpuForward} from './gpu_forward';
import {webgpuGradAccepts, webgpuGradKernel} from './webgpu_grad';
import {CHUNK, gpuPlanOf, GpuPlan} from './webgpu_webgl_plan';
import {
  BASE_OF, DIM_UNIFORMS, dimUniforms, flatView, i32u, PLAN_UNIFORMS, planUniforms, program, ProgramUniform, walk,
  WebGPUBackendLike, WebGPUProgramLike,
} from './wgsl';

/** Whether the webgpu kernel takes this plan. */
export function webgpuAccepts(plan: NormPlan): boolean {
  return gpuPlanOf(plan) != null;
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
                 DIM_UNIFORMS,
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
  const be = backend as WebGPUBackendLike;
  const plan = attrsOf<ForwardAttrs>(attrs);
  const p = gpuPlanOf(plan);
  if (p == null) throw new Error(`${FUSED_NORM_KERNEL} (webgpu): plan not supported; canFuse should have declined it`);
  const run = (prog: WebGPUProgramLike, ins: tf.TensorInfo[], u: ProgramUniform) => be.runWebGPUProgram(prog, ins, 'float32', u);
  const pu = planUniforms(p);
  const invU = (which: number): ProgramUniform => [
    i32u(p.setSize), i32u(p.nChunks), i32u(which), i32u(MODES[plan.mode].epsilonOn === 'std' ? 1 : 0),
    {type: 'float32', data: [plan.epsilon]},
  ];
  return runGpuForward({
    partialSum: (x) => run(partialSumProgram(p), [x], pu),
    mean: (x, part, which) => run(meanProgram(p), [x, part], [...pu, i32u(which)]),
    partialNorm: (x, mean) => run(partialNormProgram(p, mean != null), [x, ...(mean ?? [])], pu),
    inv: (norms, which) => run(invProgram(p), [norms], invU(which)),
    apply: (ins, subtractsMean) => run(applyProgram(p, subtractsMean, plan.hasGamma, plan.hasBeta), ins, dimUniforms(p)),
    flat: flatView,
    flatAllocates: false,
    dispose: (t) => be.disposeData(t.dataId),
  }, plan, inputs as Record<string, tf.TensorInfo>, `${FUSED_NORM_KERNEL} (webgpu)`);
};

/** The webgpu backend: forward and backward; each declines a plan with more axes than its shaders take. */
export const webgpuBackend: FusedBackend = {
  backend: 'webgpu',
  forward: webgpuKernel,
  backward: webgpuGradKernel,
  accepts: (plan, direction) => (direction === 'forward' ? webgpuAccepts(plan) : webgpuGradAccepts(plan)),
};
