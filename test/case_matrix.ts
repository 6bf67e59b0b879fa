/**
 * The case matrix of the op-level suites: one builder per op family gives
 * a case's shape, its float64 reference spec (test/reference.ts), the
 * gamma/beta shape, whether it has a beta, and, given the library, the op
 * it runs and the plan the op makes.
 *
 * No tfjs and no package import here (types only): the library is passed
 * in, so that the same builders serve the Node suites (test/cases.ts binds
 * them to src/) and the browser page (test/parity/gpu_fused.ts passes the
 * bundle it is given; test/parity/cases.ts takes the references' specs).
 */
import type * as TfModule from '@tensorflow/tfjs';

import type {NormMode, NormPlan} from '../src/kernels/contract';
import type * as LibModule from '../src/index';
import {axesSpec, groupSpec, RefSpec} from './reference';

type Tensor = TfModule.Tensor;

/** What a case runs: x, gamma, beta (those the case has), and an optional mask. */
export type CaseRun = (x: Tensor, gamma?: Tensor, beta?: Tensor, mask?: Tensor|null) => Tensor;

/**
 * src/ops internals, which the bundle does not export (Node suites only):
 * the plan each op makes, and a plan run in a mode no public op selects
 * with that layout.
 */
export interface CaseInternals {
  groupNormPlan(who: string, shape: number[], groups: number, axis: number, epsilon: number): NormPlan;
  axesPlan(shape: number[], axes: number[], epsilon: number, mode: NormMode): NormPlan;
  normalizeMasked(
      who: string, x: Tensor, plan: NormPlan, gamma: Tensor|null|undefined, beta: Tensor|null|undefined,
      mask: Tensor|null|undefined): Tensor;
}

/**
 * The library a case runs with: the package's ops (src/ under jest, the
 * bundle in the browser page); src/ops internals where the suite has them;
 * ContribInstanceNormalization, which runs the 'stdEps' instance case
 * without them.
 */
export interface CaseLib {
  ops: Pick<typeof LibModule.ops, 'groupNorm'|'instanceNorm'|'layerNorm'|'rmsNorm'>;
  internals?: CaseInternals;
  ContribInstanceNormalization?: typeof LibModule.ContribInstanceNormalization;
}

/** One case of the matrix, before it is bound to a library. */
export interface MatrixCase {
  name: string;
  shape: number[];
  spec: RefSpec;
  /** gamma/beta shape, or null for none. */
  paramShape: number[]|null;
  beta: boolean;
  /** The op this case runs, with lib. */
  runWith(lib: CaseLib): CaseRun;
  /** The plan the op makes (src/ops internals). */
  planWith(internals: CaseInternals): NormPlan;
}

export interface CaseOptions {
  /** gamma (and beta, where the mode has one). Default true. */
  affine?: boolean;
  /** Default 1e-3. */
  epsilon?: number;
}

const resolve = (a: number, rank: number) => (a < 0 ? a + rank : a);

/**
 * groupNorm (mode 'center'), or the same plan in another mode run through
 * core.ts directly ('stdEps' is keras-contrib's instance norm; 'rms'). The
 * browser page, without src/ops internals, runs only the 'stdEps' instance
 * case without gamma and beta (through ContribInstanceNormalization).
 */
export function groupCase(
    shape: number[], groups: number, axis: number, {affine = true, epsilon = 1e-3}: CaseOptions = {},
    mode: NormMode = 'center'): MatrixCase {
  const a = resolve(axis, shape.length);
  const name = `${mode === 'center' ? 'groupNorm' : `${mode} (group plan)`} ${JSON.stringify(shape)} groups=${groups} axis=${axis}` +
      `${affine ? '' : ' no affine'}`;
  const planWith = (internals: CaseInternals): NormPlan => ({...internals.groupNormPlan('t', shape, groups, axis, epsilon), mode});
  return {
    name, shape, spec: {...groupSpec(shape, groups, a, epsilon), mode}, paramShape: affine ? [shape[a]] : null,
    beta: affine, planWith,
    runWith: (lib) => {
      if (mode === 'center') return (x, gamma, beta, mask) => lib.ops.groupNorm(x, {groups, axis, epsilon, gamma, beta, mask});
      const {internals, ContribInstanceNormalization} = lib;
      if (internals) {
        const plan = planWith(internals);
        return (x, gamma, beta, mask) => internals.normalizeMasked('t', x, plan, gamma, beta, mask);
      }
      if (mode === 'stdEps' && groups === shape[a] && !affine && ContribInstanceNormalization) {
        return (x, _gamma, _beta, mask) => {
          if (mask != null) throw new Error(`${name}: ContribInstanceNormalization takes no mask here`);
          const layer = new ContribInstanceNormalization({axis, epsilon, center: false, scale: false});
          const y = layer.apply(x) as Tensor;
          layer.dispose();
          return y;
        };
      }
      throw new Error(`${name}: needs src/ops internals (the plan in mode '${mode}')`);
    },
  };
}

/** instanceNorm: groupNorm with one group per channel. */
export function instanceCase(shape: number[], axis: number, {affine = true, epsilon = 1e-3}: CaseOptions = {}): MatrixCase {
  const a = resolve(axis, shape.length);
  return {
    name: `instanceNorm ${JSON.stringify(shape)} axis=${axis}${affine ? '' : ' no affine'}`,
    shape, spec: groupSpec(shape, shape[a], a, epsilon), paramShape: affine ? [shape[a]] : null, beta: affine,
    planWith: (internals) => internals.groupNormPlan('t', shape, -1, axis, epsilon),
    runWith: (lib) => (x, gamma, beta, mask) => lib.ops.instanceNorm(x, {axis, epsilon, gamma, beta, mask}),
  };
}

/**
 * layerNorm ('center', 'rmsScaling') or rmsNorm ('rms') over an axis or a
 * list of axes, passed to the op as given; gamma/beta in sorted axis order.
 */
export function axesCase(
    shape: number[], axis: number|number[], mode: 'center'|'rms'|'rmsScaling',
    {affine = true, epsilon = 1e-3}: CaseOptions = {}): MatrixCase {
  const sorted = (Array.isArray(axis) ? axis : [axis]).map((a) => resolve(a, shape.length)).sort((p, q) => p - q);
  return {
    name: `${mode === 'rms' ? 'rmsNorm' : 'layerNorm'} ${JSON.stringify(shape)} axis=${JSON.stringify(axis)} ${mode}` +
        `${affine ? '' : ' no affine'}`,
    shape, spec: axesSpec(shape, sorted, epsilon, mode), paramShape: affine ? sorted.map((a) => shape[a]) : null,
    beta: affine && mode === 'center', planWith: (internals) => internals.axesPlan(shape, sorted, epsilon, mode),
    runWith: (lib) => mode === 'rms' ?
        (x, gamma, _beta, mask) => lib.ops.rmsNorm(x, {axis, epsilon, gamma, mask}) :
        (x, gamma, beta, mask) => lib.ops.layerNorm(x, {axis, epsilon, gamma, beta, mask, rmsScaling: mode === 'rmsScaling'}),
  };
}
