/**
 * The fused forward for the webgl backend: GPGPU programs run through the
 * backend's own `runWebGLProgram` (the same route as tfjs's kernels), on
 * flat views of x, gamma and beta. The backend package is never imported:
 * its types are described structurally here, so Node builds that never
 * load webgl are unaffected.
 *
 * Passes (one output value per fragment, float32 textures):
 * 1. per (set, chunk of CHUNK elements): Kahan sum of x - K, K the set's
 *    first element (shifted data: no cancellation when the mean is large);
 * 2. per set: m1 = the mean in float32 and m2 = its rounding error
 *    (TwoSum of K + S/n, plus the Kahan residual), as core.ts saves them;
 * 3. per (set, chunk): sqrt(sum d^2) of d = (x - m1) - m2 (of x for RMS),
 *    accumulated scaled (LAPACK's nrm2: no overflow for |d| up to the
 *    float32 limit) with a Kahan sum;
 * 4. per set: the chunks' norms merged the same way, then inv
 *    (1/sqrt(var + eps), 0 where that is 0; for stdEps 1/(std + eps) and
 *    1/std; for RMS 1/sqrt(mean(x^2) + eps));
 * 5. per element: y = (x - mu) * (inv * gamma) + beta.
 * The variance is therefore two-pass (centered on the accurate mean),
 * never E[x^2] - E[x]^2.
 *
 * Half-float textures (WEBGL_RENDER_FLOAT32_ENABLED false) would store the
 * partial sums and m2 in float16: the kernel declines there (see
 * {@link webglAccepts}) and core.ts keeps its tf-op path, which rescales.
 * WebGL 1 (no dynamic loops) declines too.
 */
import * as tf from '@tensorflow/tfjs';

import {attrsOf, ForwardAttrs, FUSED_NORM_KERNEL, FusedBackend, MODES, NormPlan, WEBGL_ROWS_FLAG} from './contract';
import {runGpuForward} from './gpu_forward';
import {layoutOf} from './layout';
import {CHUNK, gpuPlanOf, GpuPlan} from './webgpu_webgl_plan';

type UniformType = 'float'|'int'|'ivec4';

/** tfjs-backend-webgl's GPGPUProgram, the fields this file uses. */
interface GPGPUProgramLike {
  variableNames: string[];
  outputShape: number[];
  userCode: string;
  customUniforms?: Array<{name: string, arrayIndex?: number, type: UniformType}>;
}

/** tfjs-backend-webgl's MathBackendWebGL, the methods this file uses. */
interface WebGLBackendLike {
  runWebGLProgram(program: GPGPUProgramLike, inputs: tf.TensorInfo[], outputDtype: 'float32',
                  customUniformValues?: number[][]): tf.TensorInfo;
  disposeIntermediateTensorInfo(t: tf.TensorInfo): void;
}

/** Whether the webgl kernel takes this plan in the current environment. */
export function webglAccepts(plan: NormPlan): boolean {
  const env = tf.env();
  if (!env.getBool('WEBGL_RENDER_FLOAT32_ENABLED')) return false;
  if (env.getNumber('WEBGL_VERSION') < 2) return false;
  return gpuPlanOf(plan) != null;
}

const PLAN_UNIFORMS: Array<{name: string, type: UniformType}> = [
  {name: 'n', type: 'int'}, {name: 'nChunks', type: 'int'}, {name: 'kSize', type: 'ivec4'},
  {name: 'kStride', type: 'ivec4'}, {name: 'rSize', type: 'ivec4'}, {name: 'rStride', type: 'ivec4'},
];

function planValues(p: GpuPlan): number[][] {
  return [[p.setSize], [p.nChunks], p.kSize, p.kStride, p.rSize, p.rStride];
}

/** x offset of set s (row-major over the kept axes). */
const BASE_OF = `
  int baseOf(int s) {
    int r = s;
    int b = (r % kSize.w) * kStride.w; r /= kSize.w;
    b += (r % kSize.z) * kStride.z; r /= kSize.z;
    b += (r % kSize.y) * kStride.y; r /= kSize.y;
    return b + r * kStride.x;
  }`;

/** Walks elements k0..k1 of the set at `base`, running BODY with float v = x. */
function walk(body: string): string {
  return `
    int rem = k0;
    ivec4 c;
    c.w = rem % rSize.w; rem /= rSize.w;
    c.z = rem % rSize.z; rem /= rSize.z;
    c.y = rem % rSize.y; rem /= rSize.y;
    c.x = rem;
    int off = c.x * rStride.x + c.y * rStride.y + c.z * rStride.z + c.w * rStride.w;
    for (int k = k0; k < k1; k++) {
      float v = getX(base + off);
      ${body}
      c.w++; off += rStride.w;
      if (c.w == rSize.w) {
        c.w = 0; off += rStride.z - rSize.w * rStride.w; c.z++;
        if (c.z == rSize.z) {
          c.z = 0; off += rStride.y - rSize.z * rStride.z; c.y++;
          if (c.y == rSize.y) { c.y = 0; off += rStride.x - rSize.y * rStride.y; c.x++; }
        }
      }
    }`;
}

/** Kahan: sum + t, with comp the running compensation (true sum = sum - comp). */
const KAHAN = `
  void kahan(inout float sum, inout float comp, float t) {
    float y = t - comp;
    float s2 = sum + y;
    comp = (s2 - sum) - y;
    sum = s2;
  }
  /** Scaled sum of squares: scale * sqrt(ssq - comp) is the norm so far. */
  void addSquare(inout float scale, inout float ssq, inout float comp, inout bool bad, float d) {
    float a = abs(d);
    if (!(a <= 3.4e38)) {
      bad = true;
    } else if (a > scale) {
      float r = scale / a;
      r *= r;
      ssq *= r;
      comp *= r;
      scale = a;
      kahan(ssq, comp, 1.0);
    } else if (a > 0.0) {
      float r = a / scale;
      kahan(ssq, comp, r * r);
    }
  }`;

/** main()'s head in the per-(set, chunk) passes: the set s, its elements k0..k1 of the chunk, its base. */
const CHUNK_HEAD = `int o = getOutputCoords();
        int s = o / nChunks;
        int k0 = (o - s * nChunks) * ${CHUNK};
        int k1 = min(k0 + ${CHUNK}, n);
        int base = baseOf(s);`;

function partialSumProgram(p: GpuPlan): GPGPUProgramLike {
  return {
    variableNames: ['x'],
    outputShape: [p.numSets * p.nChunks],
    customUniforms: PLAN_UNIFORMS,
    userCode: `${BASE_OF}${KAHAN}
      void main() {
        ${CHUNK_HEAD}
        float K = getX(base);
        float sum = 0.0;
        float comp = 0.0;
        ${walk('kahan(sum, comp, v - K);')}
        setOutput(sum - comp);
      }`,
  };
}

function meanProgram(p: GpuPlan): GPGPUProgramLike {
  return {
    variableNames: ['x', 'p'],
    outputShape: [p.numSets],
    customUniforms: [...PLAN_UNIFORMS, {name: 'which', type: 'int'}],
    userCode: `${BASE_OF}${KAHAN}
      void main() {
        int s = getOutputCoords();
        float K = getX(baseOf(s));
        float sum = 0.0;
        float comp = 0.0;
        for (int c = 0; c < nChunks; c++) kahan(sum, comp, getP(s * nChunks + c));
        float q = sum / float(n);
        float m1 = K + q;
        float bb = m1 - K;
        float m2 = ((K - (m1 - bb)) + (q - bb)) - comp / float(n);
        setOutput(which == 0 ? m1 : m2);
      }`,
  };
}

function partialNormProgram(p: GpuPlan, centered: boolean): GPGPUProgramLike {
  return {
    variableNames: centered ? ['x', 'm1', 'm2'] : ['x'],
    outputShape: [p.numSets * p.nChunks],
    customUniforms: PLAN_UNIFORMS,
    userCode: `${BASE_OF}${KAHAN}
      void main() {
        ${CHUNK_HEAD}
        ${centered ? 'float mu1 = getM1(s); float mu2 = getM2(s);' : ''}
        float scale = 0.0;
        float ssq = 0.0;
        float comp = 0.0;
        bool bad = false;
        ${walk(`addSquare(scale, ssq, comp, bad, ${centered ? '(v - mu1) - mu2' : 'v'});`)}
        setOutput(bad ? NAN : scale * sqrt(max(ssq - comp, 0.0)));
      }`,
  };
}

function invProgram(p: GpuPlan): GPGPUProgramLike {
  return {
    variableNames: ['q'],
    outputShape: [p.numSets],
    customUniforms: [
      {name: 'n', type: 'int'}, {name: 'nChunks', type: 'int'}, {name: 'which', type: 'int'},
      {name: 'stdEps', type: 'int'}, {name: 'eps', type: 'float'},
    ],
    userCode: `${KAHAN}
      void main() {
        int s = getOutputCoords();
        float scale = 0.0;
        float ssq = 0.0;
        float comp = 0.0;
        bool bad = false;
        for (int c = 0; c < nChunks; c++) addSquare(scale, ssq, comp, bad, getQ(s * nChunks + c));
        float sd = scale * sqrt(max(ssq - comp, 0.0)) / sqrt(float(n));
        float r;
        if (stdEps == 1) {
          r = which == 0 ? (sd + eps > 0.0 ? 1.0 / (sd + eps) : 0.0) : (sd > 0.0 ? 1.0 / sd : 0.0);
        } else if (sd > 1e18) {
          r = 1.0 / sd;
        } else {
          float ve = sd * sd + eps;
          r = ve > 0.0 ? 1.0 / sqrt(ve) : 0.0;
        }
        setOutput(bad ? NAN : r);
      }`,
  };
}

function applyProgram(p: GpuPlan, centered: boolean, hasGamma: boolean, hasBeta: boolean): GPGPUProgramLike {
  const names = centered ? ['x', 'm1', 'm2', 'a'] : ['x', 'a'];
  if (hasGamma) names.push('g');
  if (hasBeta) names.push('b');
  return {
    variableNames: names,
    outputShape: [p.size],
    customUniforms: [
      {name: 'nd', type: 'int'}, {name: 'dSize', arrayIndex: 8, type: 'int'},
      {name: 'dS', arrayIndex: 8, type: 'int'}, {name: 'dP', arrayIndex: 8, type: 'int'},
    ],
    userCode: `
      void main() {
        int i = getOutputCoords();
        int rem = i;
        int si = 0;
        int pi = 0;
        for (int j = 7; j >= 0; j--) {
          if (j < 8 - nd) break;
          int sz = dSize[j];
          int cj = rem % sz;
          rem /= sz;
          si += cj * dS[j];
          pi += cj * dP[j];
        }
        float v = getX(i);
        float d = ${centered ? '(v - getM1(si)) - getM2(si)' : 'v'};
        float y = d * (getA(si)${hasGamma ? ' * getG(pi)' : ''})${hasBeta ? ' + getB(pi)' : ''};
        setOutput(y);
      }`,
  };
}

export const webglKernel: tf.KernelFunc = ({inputs, backend, attrs}) => {
  const be = backend as WebGLBackendLike;
  const plan = attrsOf<ForwardAttrs>(attrs);
  const p = gpuPlanOf(plan);
  if (p == null) throw new Error(`${FUSED_NORM_KERNEL} (webgl): plan not supported; canFuse should have declined it`);
  const reshapeFn = tf.getKernel('Reshape', 'webgl')?.kernelFunc as tf.KernelFunc;
  const run = (prog: GPGPUProgramLike, ins: tf.TensorInfo[], uniforms: number[][]) =>
    be.runWebGLProgram(prog, ins, 'float32', uniforms);
  const pv = planValues(p);
  const invU = (which: number) =>
    [[p.setSize], [p.nChunks], [which], [MODES[plan.mode].epsilonOn === 'std' ? 1 : 0], [plan.epsilon]];
  return runGpuForward({
    partialSum: (x) => run(partialSumProgram(p), [x], pv),
    mean: (x, part, which) => run(meanProgram(p), [x, part], [...pv, [which]]),
    partialNorm: (x, mean) => run(partialNormProgram(p, mean != null), [x, ...(mean ?? [])], pv),
    inv: (norms, which) => run(invProgram(p), [norms], invU(which)),
    apply: (ins, subtractsMean) => run(applyProgram(p, subtractsMean, plan.hasGamma, plan.hasBeta), ins,
                                       [[p.nd], p.dSize, p.dSStride, p.dPStride]),
    flat: (t) => reshapeFn({inputs: {x: t}, backend, attrs: {shape: [tf.util.sizeFromShape(t.shape)]}}) as tf.TensorInfo,
    flatAllocates: true,
    dispose: (t) => be.disposeIntermediateTensorInfo(t),
  }, plan, inputs as Record<string, tf.TensorInfo>, `${FUSED_NORM_KERNEL} (webgl)`);
};

/**
 * The webgl backend: the forward only (core.ts's tf-op backward follows
 * it). Row layouts (layer/RMS norm over the last axes, channels-first
 * group norm) are opt-in (TFJS_NORMALIZATION_WEBGL_ROWS): there the fused
 * forward measured a tie or slower than tfjs's own webgl reductions
 * (docs/performance.md, bench/results/BROWSER.md).
 */
export const webglBackend: FusedBackend = {
  backend: 'webgl',
  forward: webglKernel,
  accepts: (plan, direction) => direction === 'forward' && webglAccepts(plan) &&
      (layoutOf(plan).kind !== 'row' || tf.env().getBool(WEBGL_ROWS_FLAG)),
};
