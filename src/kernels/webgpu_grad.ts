/**
 * The fused backward for the webgpu backend (TfjsNormalizationFusedNormGrad):
 * core.ts's analytic gradient, in WGSL compute shaders run through the
 * backend's `runWebGPUProgram`, on flat views, every buffer float32.
 *
 * From dy, x, the statistics the forward saved and gamma (gd = dy * gamma):
 * 1. per (set, chunk of 256): Kahan sums of gd and gd * xn (two outputs
 *    interleaved);
 * 2. per set: the chunk sums merged (Kahan) and divided by the set size:
 *    mg = mean(gd), mgx = mean(gd * xn);
 * 3. dx, elementwise, with the formulas of core.ts's backward();
 * 4. per (gamma entry, chunk of 256): Kahan sums of dy * xn and dy over the
 *    axes gamma/beta broadcast along (a second plan: those axes reduced);
 * 5. per gamma entry: the chunks merged: dgamma, dbeta.
 * The plan goes in as uniforms (one compiled shader per mode and gamma/beta
 * presence, whatever the shape).
 *
 * Where the sets are the gamma/beta entries (batch norm: one set per
 * channel, over every other axis), gamma is constant over a set, so pass 1
 * sums dy and dy * xn instead (mg = gamma * sum(dy) / n, mgx = gamma *
 * sum(dy * xn) / n in pass 3), and those sums are dbeta and dgamma: passes 4
 * and 5 (a third full read of x and dy) give way to two per-set copies out
 * of the interleaved sums.
 */
import * as tf from '@tensorflow/tfjs';

import {attrsOf, BackwardAttrs, MODES, NormMode, NormPlan, StatName, statIndex} from './contract';
import {CHUNK, gpuPlanOf, GpuPlan} from './webgpu_webgl_plan';
import {
  BASE_OF, DIM_IDX, DIM_UNIFORMS, dimUniforms, flatView, i32u, PLAN_UNIFORMS, planUniforms, program, ProgramUniform, walk,
  WebGPUBackendLike, WebGPUProgramLike,
} from './wgsl';

/** The plan whose sets are the gamma/beta entries: the axes they broadcast along reduced. */
function paramPlanOf(plan: NormPlan): GpuPlan|null {
  const reduceAxes: number[] = [];
  plan.paramViewShape.forEach((d, i) => {
    if (d === 1) reduceAxes.push(i);
  });
  return gpuPlanOf({...plan, reduceAxes});
}

/** Whether every set is one gamma/beta entry: the axes gamma/beta broadcast along are exactly the reduced ones. */
function setsAreParams(plan: NormPlan): boolean {
  const broadcast = plan.paramViewShape.flatMap((d, i) => (d === 1 && plan.viewShape[i] !== 1 ? [i] : []));
  const reduced = plan.reduceAxes.filter((a) => plan.viewShape[a] !== 1);
  return broadcast.length === reduced.length && broadcast.every((a) => reduced.includes(a)) &&
      plan.paramViewShape.every((d, i) => d === 1 || d === plan.viewShape[i]);
}

/** Whether the webgpu backward takes this plan. */
export function webgpuGradAccepts(plan: NormPlan): boolean {
  return gpuPlanOf(plan) != null && paramPlanOf(plan) != null;
}

/** The binding of a saved statistic: s0, s1, ... in the order MODES[mode].stats lists them. */
const statVar = (mode: NormMode, name: StatName) => `s${statIndex(mode, name)}`;
/** The binding of what x (or x - mean) is multiplied by: inv, or s without centred statistics. */
const scaleVar = (mode: NormMode) => statVar(mode, MODES[mode].centred ? 'inv' : 's');

/** WGSL: xn (what gamma multiplies) of value v in set s. */
function xnOf(mode: NormMode, s = 's', v = 'v'): string {
  const k = `${scaleVar(mode)}[${s}]`;
  if (!MODES[mode].subtractsMean) return `${v} * ${k}`;
  return `((${v} - ${statVar(mode, 'm1')}[${s}]) - ${statVar(mode, 'm2')}[${s}]) * ${k}`;
}

/**
 * The statistics a pass reads, and nothing more: a binding the shader does
 * not use drops out of its pipeline layout, and binding it anyway fails.
 * xn needs these; dx also the mean pair (rmsScaling) and 1 / std (stdEps).
 */
const xnStats = (mode: NormMode) =>
  (MODES[mode].subtractsMean ? [statVar(mode, 'm1'), statVar(mode, 'm2'), scaleVar(mode)] : [scaleVar(mode)]);
const dxStats = (mode: NormMode) => MODES[mode].stats.map((name) => statVar(mode, name));

/**
 * The head of the passes with two outputs per (set, chunk) (which = index %
 * 2): the set s, its elements k0..k1 of the chunk, its base, a Kahan sum.
 */
const PAIR_CHUNK_HEAD = `let j = index / 2;
    let which = index - 2 * j;
    let s = j / uniforms.nChunks;
    let k0 = (j - s * uniforms.nChunks) * ${CHUNK};
    let k1 = min(k0 + ${CHUNK}, uniforms.n);
    ${BASE_OF}
    var acc = vec2<f32>(0.0, 0.0);`;

/** Pass 1: per (set, chunk), which = index % 2: 0 sum(gd), 1 sum(gd * xn). */
function setPartialProgram(p: GpuPlan, mode: NormMode, hasGamma: boolean): WebGPUProgramLike {
  const names = ['x', 'dy', ...xnStats(mode), ...(hasGamma ? ['g'] : [])];
  return program(`gradSetPartial_${mode}_${hasGamma}`, p.numSets * p.nChunks * 2, names,
                 `${PLAN_UNIFORMS} ${DIM_UNIFORMS}`, `
    ${PAIR_CHUNK_HEAD}
    ${walk(`let f = base + off;
      let gd = dy[f]${hasGamma ? ' * g[dimIdx(f).y]' : ''};
      if (which == 0) { acc = kahanAdd(acc, gd); } else { acc = kahanAdd(acc, gd * (${xnOf(mode)})); }`)}
    setOutputAtIndex(index, acc.x - acc.y);`, DIM_IDX);
}

/** Pass 2 and 5: merges nChunks interleaved partials per set; output 2 per set (scale 1/n) or 1 per set (`which`). */
function mergeProgram(numSets: number, both: boolean): WebGPUProgramLike {
  return program(`gradMerge_${both}`, both ? numSets * 2 : numSets, ['part'], 'nChunks : i32, which : i32, scale : f32,', `
    var s = index;
    var which = uniforms.which;
    ${both ? 's = index / 2; which = index - 2 * s;' : ''}
    var acc = vec2<f32>(0.0, 0.0);
    for (var c = 0; c < uniforms.nChunks; c = c + 1) { acc = kahanAdd(acc, part[(s * uniforms.nChunks + c) * 2 + which]); }
    setOutputAtIndex(index, (acc.x - acc.y) * uniforms.scale);`);
}

/**
 * Pass 3: dx. `setSums`: red holds the per-set sums of dy and dy * xn (sets
 * that are gamma entries), scaled here by gamma / n into mean(gd), mean(gd * xn).
 */
function dxProgram(p: GpuPlan, mode: NormMode, hasGamma: boolean, setSums: boolean): WebGPUProgramLike {
  const names = ['x', 'dy', ...dxStats(mode), ...(hasGamma ? ['g'] : []), 'red'];
  const {centred, subtractsMean, epsilonOn} = MODES[mode];
  const k = `${scaleVar(mode)}[s]`;
  let expr: string;
  if (epsilonOn === 'std') {
    expr = `${k} * (gd - mg) - xn * (mgx * ${statVar(mode, 'invStd')}[s])`;
  } else if (subtractsMean) {
    expr = `${k} * ((gd - mg) - xn * mgx)`;
  } else if (centred) {
    // rmsScaling: xhat = (x - mean) * s multiplies mean(gd * xn).
    expr = `${k} * (gd - (((v - ${statVar(mode, 'm1')}[s]) - ${statVar(mode, 'm2')}[s]) * ${k}) * mgx)`;
  } else {
    expr = `${k} * (gd - xn * mgx)`;
  }
  const sc = setSums ? ` * (uniforms.invN${hasGamma ? ' * g[ix.y]' : ''})` : '';
  return program(`gradDx_${mode}_${hasGamma}_${setSums}`, p.size, names, `${DIM_UNIFORMS} invN : f32,`, `
    let ix = dimIdx(index);
    let s = ix.x;
    let v = x[index];
    let gd = dy[index]${hasGamma ? ' * g[ix.y]' : ''};
    let mg = red[2 * s]${sc};
    let mgx = red[2 * s + 1]${sc};
    let xn = ${xnOf(mode)};
    setOutputAtIndex(index, ${expr});`, DIM_IDX);
}

/** Pass 4: per (gamma entry, chunk) of the param plan q, which = index % 2: 0 sum(dy * xn), 1 sum(dy). */
function paramPartialProgram(q: GpuPlan, mode: NormMode): WebGPUProgramLike {
  const names = ['x', 'dy', ...xnStats(mode)];
  return program(`gradParamPartial_${mode}`, q.numSets * q.nChunks * 2, names, `${PLAN_UNIFORMS} ${DIM_UNIFORMS}`, `
    ${PAIR_CHUNK_HEAD}
    ${walk(`let f = base + off;
      if (which == 1) { acc = kahanAdd(acc, dy[f]); } else {
        let si = dimIdx(f).x;
        acc = kahanAdd(acc, dy[f] * (${xnOf(mode, 'si')}));
      }`)}
    setOutputAtIndex(index, acc.x - acc.y);`, DIM_IDX);
}

export const webgpuGradKernel: tf.KernelFunc = ({inputs, backend, attrs}) => {
  const be = backend as WebGPUBackendLike;
  const plan = attrsOf<BackwardAttrs>(attrs);
  const p = gpuPlanOf(plan);
  const q = paramPlanOf(plan);
  if (p == null || q == null) {
    throw new Error('TfjsNormalizationFusedNormGrad (webgpu): plan not supported; canFuse should have declined it');
  }
  const ins = inputs as Record<string, tf.TensorInfo>;
  const flat = flatView;
  const run = (prog: WebGPUProgramLike, xs: tf.TensorInfo[], u: ProgramUniform) => be.runWebGPUProgram(prog, xs, 'float32', u);
  const temps: tf.TensorInfo[] = [];
  const outs: tf.TensorInfo[] = [];
  const xdy = [flat(ins.x), flat(ins.dy)];
  const xnIn = [...xdy, ...xnStats(plan.mode).map((k) => flat(ins[k]))];
  const dxIn = [...xdy, ...dxStats(plan.mode).map((k) => flat(ins[k]))];
  const gIn = plan.hasGamma ? [flat(ins.gamma)] : [];
  const du = dimUniforms(p);
  const f32u = (v: number) => ({type: 'float32' as const, data: [v]});
  const invN = f32u(1 / p.setSize);
  // Sets that are gamma entries: pass 1 without gamma (sums of dy, dy * xn), which are dbeta and dgamma too.
  const setSums = setsAreParams(plan);
  try {
    const part = run(setPartialProgram(p, plan.mode, plan.hasGamma && !setSums), [...xnIn, ...(setSums ? [] : gIn)],
                     [...planUniforms(p), ...du]);
    temps.push(part);
    const red = run(mergeProgram(p.numSets, true), [part], [i32u(p.nChunks), i32u(0), setSums ? f32u(1) : invN]);
    temps.push(red);
    const dx = run(dxProgram(p, plan.mode, plan.hasGamma, setSums), [...dxIn, ...gIn, red], [...du, invN]);
    outs.push({...dx, shape: ins.x.shape});
    if (setSums) {
      // red interleaves [sum(dy), sum(dy * xn)] per set: a merge of one chunk copies either out.
      const copy = (which: number, shape: number[]) => {
        const t = run(mergeProgram(p.numSets, false), [red], [i32u(1), i32u(which), f32u(1)]);
        outs.push({...t, shape});
      };
      if (plan.hasGamma) copy(1, plan.gammaShape);
      if (plan.hasBeta) copy(0, plan.betaShape);
    } else if (plan.hasGamma || plan.hasBeta) {
      const pp = run(paramPartialProgram(q, plan.mode), xnIn, [...planUniforms(q), ...du]);
      temps.push(pp);
      const merge = (which: number, shape: number[]) => {
        const t = run(mergeProgram(q.numSets, false), [pp], [i32u(q.nChunks), i32u(which), f32u(1)]);
        outs.push({...t, shape});
      };
      if (plan.hasGamma) merge(0, plan.gammaShape);
      if (plan.hasBeta) merge(1, plan.betaShape);
    }
    return outs;
  } catch (e) {
    outs.forEach((t) => be.disposeData(t.dataId));
    throw e;
  } finally {
    temps.forEach((t) => be.disposeData(t.dataId));
  }
};
