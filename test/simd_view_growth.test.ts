/**
 * The wasm kernels' SIMD path when the scratch allocation grows the heap
 * (an unshared WebAssembly.Memory: growing it detaches every view taken
 * before). The kernels take their views of x, y, the statistics, dgamma
 * and dbeta first, then the scratch block from the backend's malloc: the
 * arrays JS writes after that (statistics, dgamma, dbeta) must be taken
 * again on the grown memory, at their offsets and lengths (a detached view
 * reads length 0: before the fix they came out of a growing call
 * unwritten). A stand-in for tfjs-backend-wasm's backend, whose malloc
 * grows the memory on every call, against the same one with room to
 * spare, and against the JS loops.
 */
import type * as tf from '@tensorflow/tfjs';

import {fusedBackward, fusedForward} from '../src/kernels/compute';
import {align16, BackwardAttrs, ForwardAttrs, MODES, NormPlan, planOf, sizeOf, statsShapeOf} from '../src/kernels/contract';
import {layoutOf} from '../src/kernels/layout';
import {wasmBackend} from '../src/kernels/wasm';
import {groupNormPlan} from '../src/ops/group_norm';
import {axesPlan} from '../src/ops/layer_norm';
import {normals, rng} from './reference';

type Info = {dataId: object, shape: number[], dtype: 'float32'};

/** The parts of BackendWasm the kernels use, on a memory of its own; `growing`: every malloc grows it first. */
function standIn(growing: boolean) {
  const memory = new WebAssembly.Memory({initial: growing ? 4 : 512, maximum: 4096});
  let next = 1024;
  let grows = 0;
  const data = new Map<object, {off: number, n: number}>();
  const alloc = (bytes: number) => {
    const p = align16(next);
    next = p + bytes;
    const need = next - memory.buffer.byteLength;
    if (need > 0) memory.grow(Math.ceil(need / 65536));
    return p;
  };
  const backend = {
    wasm: {
      asm: {memory},
      _malloc: (bytes: number) => {
        if (growing) {
          memory.grow(1);
          grows++;
        }
        return alloc(bytes);
      },
      _free: () => undefined,
    },
    makeOutput(shape: number[]): Info {
      const dataId = {};
      data.set(dataId, {off: alloc(4 * sizeOf(shape)), n: sizeOf(shape)});
      return {dataId, shape, dtype: 'float32'};
    },
    typedArrayFromHeap(t: Info): Float32Array {
      const d = data.get(t.dataId) as {off: number, n: number};
      return new Float32Array(memory.buffer, d.off, d.n);
    },
  };
  const input = (values: Float32Array, shape: number[]) => {
    const t = backend.makeOutput(shape);
    backend.typedArrayFromHeap(t).set(values);
    return t;
  };
  const read = (t: Info) => Array.from(backend.typedArrayFromHeap(t));
  return {backend, input, read, grows: () => grows};
}

interface Case {
  name: string;
  plan: NormPlan;
  shape: number[];
  paramShape: number[];
}

const CASES: Case[] = [
  {name: 'groupNorm channels-last (column layout)', plan: groupNormPlan('t', [2, 6, 6, 32], 4, 3, 1e-3), shape: [2, 6, 6, 32], paramShape: [32]},
  {name: 'layerNorm over the last axis (row layout)', plan: axesPlan([6, 5, 40], [2], 1e-3, 'center'), shape: [6, 5, 40], paramShape: [40]},
];

describe.each(CASES)('wasm SIMD path, heap grown by the scratch allocation: $name', ({plan, shape, paramShape}) => {
  const n = sizeOf(shape);
  const p = sizeOf(paramShape);
  const x = normals(rng(1), n, 0.5, 2);
  const dy = normals(rng(2), n);
  const gamma = normals(rng(3), p, 1, 0.3);
  const beta = normals(rng(4), p);
  const nStats = MODES[plan.mode].stats.length;
  const fwdAttrs: ForwardAttrs = {...planOf(plan), hasGamma: true, hasBeta: true};
  const bwdAttrs: BackwardAttrs = {...fwdAttrs, gammaShape: paramShape, betaShape: paramShape};

  function run(growing: boolean) {
    const s = standIn(growing);
    const fwd = wasmBackend.forward({
      inputs: {x: s.input(x, shape), gamma: s.input(gamma, paramShape), beta: s.input(beta, paramShape)},
      attrs: fwdAttrs, backend: s.backend as never,
    }) as unknown as Info[];
    // The backward on a fresh stand-in (the engine keeps its scratch block between calls).
    const t = standIn(growing);
    const stats = fwd.slice(1).map((info) => s.backend.typedArrayFromHeap(info).slice());
    const inputs: Record<string, Info> = {x: t.input(x, shape), dy: t.input(dy, shape), gamma: t.input(gamma, paramShape)};
    stats.forEach((v, i) => (inputs[`s${i}`] = t.input(v, fwd[1 + i].shape)));
    const backward = wasmBackend.backward as tf.KernelFunc;
    const bwd = backward({inputs, attrs: bwdAttrs, backend: t.backend as never}) as unknown as Info[];
    return {
      y: s.read(fwd[0]), stats: fwd.slice(1).map(s.read), dx: t.read(bwd[0]), dgamma: t.read(bwd[1]), dbeta: t.read(bwd[2]),
      growsInForward: s.grows(), growsInBackward: t.grows(),
    };
  }

  test('statistics, y, dx, dgamma and dbeta equal a run with room to spare, and the JS loops', () => {
    const grown = run(true);
    const roomy = run(false);
    // The stand-in did grow the heap in both directions (the views taken before were detached).
    expect([grown.growsInForward, grown.growsInBackward]).toEqual([1, 1]);
    expect([roomy.growsInForward, roomy.growsInBackward]).toEqual([0, 0]);
    expect(grown.stats.map((v) => v.length)).toEqual(Array(nStats).fill(sizeOf(statsShapeOf(plan))));
    expect(grown).toEqual({...roomy, growsInForward: 1, growsInBackward: 1});

    // The JS loops (float64) on plain arrays.
    const L = layoutOf(plan);
    const y = new Float32Array(n);
    const stats = Array.from({length: nStats}, () => new Float32Array(sizeOf(statsShapeOf(plan))));
    fusedForward({x, gamma, beta, y, stats}, L, plan.mode, plan.epsilon);
    const [dx, dgamma, dbeta] = [new Float32Array(n), new Float32Array(p), new Float32Array(p)];
    fusedBackward({x, dy, gamma, stats, dx, dgamma, dbeta}, L, plan.mode, plan.epsilon);
    const maxDiff = (a: number[], b: Float32Array) => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i]) / Math.max(1, Math.abs(b[i]))), 0);
    const errs = [maxDiff(grown.y, y), ...grown.stats.map((v, i) => maxDiff(v, stats[i])), maxDiff(grown.dx, dx),
      maxDiff(grown.dgamma, dgamma), maxDiff(grown.dbeta, dbeta)];
    expect(Math.max(...errs)).toBeLessThan(1e-5);
    expect(errs.every(Number.isFinite)).toBe(true);
  });
});
