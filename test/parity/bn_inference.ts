/**
 * BatchNormalization's inference path (`training: false`, and any call of a
 * layer with `trainable: false`) and its gradient, on the active backend.
 * Run in Node (test/batch_normalization.test.ts: cpu, wasm, and tensorflow
 * in its lane) and in the browser page (test/browser/page.ts: webgl,
 * webgpu, wasm).
 *
 * Per case (channels-last of rank 2 and 4, rank 5, channels-first, a middle
 * axis; with and without gamma and beta), for a trainable layer and a
 * frozen one (trainable: false), gamma, beta and the moving statistics set
 * to random values:
 * - y against float64, and bit for bit the same whether a tape records the
 *   call or not (and, channels-last of rank <= 4, the same bits as
 *   tf.batchNorm, tfjs's built-in layer's call);
 * - the gradients of sum(y * dy) (tf.variableGrads over x, gamma, beta,
 *   moving_mean and moving_variance, all made trainable tf.Variables for
 *   the call) against central finite differences
 *   of the float64 forward: all five for a trainable layer, x alone for a
 *   frozen one (its weights constants to the tape, as Keras's non-trainable
 *   weights: no gradient reaches them);
 * - tf.memory().numTensors around it all.
 */
import type * as TfModule from '@tensorflow/tfjs';

import {gradsFD} from '../family_reference';
import {normals, rng} from '../reference';
import {maxErr, type Lib, type TF} from './suite';

type Tensor = TfModule.Tensor;

export interface BnInferenceRecord {
  case: string;
  trainable: boolean;
  /** y against float64. */
  errY: number;
  /** The gradients present against finite differences of float64 (the worst one). */
  errGrads: number;
  worst: string;
  /** The names of the gradients present, in order of x, gamma, beta, moving_mean, moving_variance. */
  grads: string[];
  /** The names expected present. */
  expected: string[];
  /** y the same bits with and without a tape; and, channels-last of rank <= 4, as tf.batchNorm's. */
  identicalY: boolean;
  leaked: number;
  error?: string;
}

interface Case {
  name: string;
  shape: number[];
  axis: number;
  center: boolean;
  scale: boolean;
}

const CASES: Case[] = [
  {name: 'dense [6,5]', shape: [6, 5], axis: -1, center: true, scale: true},
  {name: 'nhwc [2,3,4,5]', shape: [2, 3, 4, 5], axis: -1, center: true, scale: true},
  {name: 'nhwc [2,3,2,4] scale only', shape: [2, 3, 2, 4], axis: 3, center: false, scale: true},
  {name: 'rank 5 [2,2,3,2,3]', shape: [2, 2, 3, 2, 3], axis: -1, center: true, scale: true},
  {name: 'nchw [2,5,3,4]', shape: [2, 5, 3, 4], axis: 1, center: true, scale: true},
  {name: 'nchw [3,4,5] neither', shape: [3, 4, 5], axis: 1, center: false, scale: false},
  {name: 'middle [2,3,4,3] axis 2', shape: [2, 3, 4, 3], axis: 2, center: true, scale: false},
];

/** The float64 forward: inputs x, then gamma, beta (those present), moving mean, moving variance. */
function forward64(c: Case, inputs: Float64Array[], eps: number): Float64Array {
  const rank = c.shape.length;
  const a = c.axis < 0 ? c.axis + rank : c.axis;
  const inner = c.shape.slice(a + 1).reduce((p, d) => p * d, 1);
  const C = c.shape[a];
  let k = 1;
  const x = inputs[0];
  const g = c.scale ? inputs[k++] : null;
  const b = c.center ? inputs[k++] : null;
  const m = inputs[k++];
  const v = inputs[k++];
  return x.map((xi, i) => {
    const ch = Math.floor(i / inner) % C;
    return (xi - m[ch]) / Math.sqrt(v[ch] + eps) * (g ? g[ch] : 1) + (b ? b[ch] : 0);
  });
}

const sameBits = (a: Float32Array, b: Float32Array) => a.length === b.length && a.every((v, i) => Object.is(v, b[i]));

async function runCase(tf: TF, lib: Lib, c: Case, trainable: boolean): Promise<BnInferenceRecord> {
  const eps = 1e-3;
  const rand = rng(7 + c.shape.length * 3 + c.axis);
  const n = c.shape.reduce((p, d) => p * d, 1);
  const rank = c.shape.length;
  const a = c.axis < 0 ? c.axis + rank : c.axis;
  const C = c.shape[a];
  const xv = normals(rand, n, 0.5, 2);
  const dyv = normals(rand, n);
  const gv = normals(rand, C, 1, 0.5);
  const bv = normals(rand, C, 0, 0.5);
  const mv = normals(rand, C, 0.5, 1);
  const vv = Float32Array.from(normals(rand, C), (e) => 0.2 + Math.abs(e));
  const names = [...(c.scale ? ['gamma'] : []), ...(c.center ? ['beta'] : []), 'moving_mean', 'moving_variance'];
  const values = [...(c.scale ? [gv] : []), ...(c.center ? [bv] : []), mv, vv];
  const ref = gradsFD((ins) => forward64(c, ins, eps), [xv, ...values], dyv);
  const refY = forward64(c, [xv, ...values].map((t) => Float64Array.from(t)), eps);
  const before = tf.memory().numTensors;
  const layer = new lib.BatchNormalization({axis: c.axis, center: c.center, scale: c.scale, epsilon: eps, trainable});
  const x = tf.tensor(xv, c.shape);
  const dy = tf.tensor(dyv, c.shape);
  tf.dispose(layer.apply(x) as Tensor);
  const ws = values.map((t) => tf.tensor1d(t));
  layer.setWeights(ws);
  tf.dispose(ws);
  const y = layer.apply(x, {training: false}) as Tensor;
  const xVar = tf.variable(x, true);
  const vars = [xVar, ...layer.weights.map((w) => w.read() as TfModule.Variable)];
  // tf.variableGrads drops non-trainable variables from its list: the moving
  // statistics are made trainable tf.Variables for the call (their
  // LayerVariables stay non-trainable).
  const wasTrainable = vars.map((v) => v.trainable);
  vars.forEach((v) => {
    v.trainable = true;
  });
  let yTaped: Tensor|null = null;
  const {value, grads} = tf.variableGrads(() => {
    const out = layer.apply(xVar, {training: false}) as Tensor;
    yTaped = tf.keep(tf.clone(out));
    return tf.sum(tf.mul(out, dy)) as TfModule.Scalar;
  }, vars);
  vars.forEach((v, i) => {
    v.trainable = wasTrainable[i];
  });
  const yData = await y.data() as Float32Array;
  let identicalY = sameBits(yData, await (yTaped as unknown as Tensor).data() as Float32Array);
  if (a === rank - 1 && rank <= 4) {
    const [g, b, m, v] = [gv, bv, mv, vv].map((t) => tf.tensor1d(t));
    const builtin = tf.batchNorm(x, m, v, c.center ? b : undefined, c.scale ? g : undefined, eps);
    identicalY = identicalY && sameBits(yData, await builtin.data() as Float32Array);
    tf.dispose([g, b, m, v, builtin]);
  }
  const present: string[] = [];
  let errGrads = 0;
  let worst = '-';
  const allNames = ['x', ...names];
  for (let i = 0; i < vars.length; i++) {
    const gt = grads[vars[i].name];
    if (gt == null) continue;
    present.push(allNames[i]);
    const e = maxErr(await gt.data(), ref[i]);
    if (!(e <= errGrads)) {
      errGrads = e;
      worst = `d${allNames[i]}`;
    }
  }
  tf.dispose([x, dy, y, xVar, value, ...Object.values(grads), yTaped as unknown as Tensor]);
  layer.dispose();
  return {
    case: c.name, trainable, errY: maxErr(yData, refY), errGrads, worst, grads: present,
    expected: trainable ? allNames : ['x'], identicalY, leaked: tf.memory().numTensors - before,
  };
}

export async function runBnInferenceCheck(tf: TF, lib: Lib): Promise<BnInferenceRecord[]> {
  const out: BnInferenceRecord[] = [];
  for (const c of CASES) {
    for (const trainable of [true, false]) {
      try {
        out.push(await runCase(tf, lib, c, trainable));
      } catch (e) {
        out.push({
          case: c.name, trainable, errY: Infinity, errGrads: Infinity, worst: '-', grads: [], expected: [], identicalY: false,
          leaked: 0, error: (e as Error).message,
        });
      }
    }
  }
  return out;
}
