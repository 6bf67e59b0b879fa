/**
 * What the family tests share: checking a Keras 3 fixture of
 * test/fixtures/keras3-family (scripts/make-keras3-family-fixtures.py) on
 * both converter routes, and a save/load round trip of a model that
 * compares every weight and the predictions.
 */
import * as tf from '@tensorflow/tfjs';
import * as fs from 'fs';
import * as path from 'path';

import {io} from '../src';
import {saveToMemory} from './helpers';

export const FAMILY_FIXTURES = path.join(__dirname, 'fixtures', 'keras3-family');

interface Expected {
  keras_version: string;
  inputs: Array<{shape: number[], data: number[]}>;
  outputs: Array<{shape: number[], data: number[]}>;
  coefficients: number[][];
  input_gradients: number[][];
  weight_gradients: Record<string, {shape: number[], data: number[]}>;
}

/** max |a - r| / max(1, |r|); NaN anywhere is NaN. */
export function relErr(a: ArrayLike<number>, r: ArrayLike<number>): number {
  if (a.length !== r.length) throw new Error(`length ${a.length} vs ${r.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const e = Math.abs(a[i] - r[i]) / Math.max(1, Math.abs(r[i]));
    if (Number.isNaN(e)) return NaN;
    m = Math.max(m, e);
  }
  return m;
}

/**
 * Loads fixture `name` through `route` ('keras' or 'keras_keras') with
 * io.loadLayersModel, and returns the worst errors of the predictions and
 * of the gradients (input and every weight Keras recorded) against Keras's,
 * and the tensors left behind after dispose.
 */
export async function checkKeras3Fixture(name: string, route: string): Promise<{predict: number, grad: number, leaked: number, weights: number}> {
  const exp = JSON.parse(fs.readFileSync(path.join(FAMILY_FIXTURES, name, 'expected.json'), 'utf8')) as Expected;
  if (!/^3\./.test(exp.keras_version)) throw new Error(`${name}: not a Keras 3 fixture`);
  const before = tf.memory().numTensors;
  const model = await io.loadLayersModel(path.join(FAMILY_FIXTURES, name, route, 'model.json'));
  let predict = 0;
  let grad = 0;
  const xs = exp.inputs.map((i) => tf.tensor(i.data, i.shape));
  const names = Object.keys(exp.weight_gradients);
  try {
    const y = model.predict(xs.length === 1 ? xs[0] : xs) as tf.Tensor;
    predict = relErr(y.dataSync(), exp.outputs[0].data);
    tf.dispose(y);
    const byName = new Map(model.layers.flatMap((l) => l.trainableWeights).map((w) => [w.originalName, w]));
    const weights = names.map((n) => {
      const w = byName.get(n);
      if (w == null) throw new Error(`${name} ${route}: no weight ${n} (has ${Array.from(byName.keys())})`);
      return w.read() as tf.Variable;
    });
    const xVar = tf.variable(xs[0]);
    const {value, grads} = tf.variableGrads(() => {
      const out = model.apply(xVar, {training: false}) as tf.Tensor;
      return tf.sum(tf.mul(out, tf.tensor(exp.coefficients[0], out.shape))) as tf.Scalar;
    }, [xVar, ...weights]);
    grad = relErr(grads[xVar.name].dataSync(), exp.input_gradients[0]);
    weights.forEach((w, k) => { grad = Math.max(grad, relErr(grads[w.name].dataSync(), exp.weight_gradients[names[k]].data)); });
    tf.dispose([value, xVar, ...Object.values(grads)]);
  } finally {
    tf.dispose(xs);
    model.dispose();
  }
  return {predict, grad, leaked: tf.memory().numTensors - before, weights: names.length};
}

/**
 * Saves the model to memory and loads it back (tf.loadLayersModel): the
 * loaded model's weights (names and values) and predictions on x must equal
 * the original's exactly. Returns the loaded model's class names.
 */
export async function expectExactRoundTrip(model: tf.LayersModel, x: tf.Tensor, training = false): Promise<string[]> {
  const artifacts = await saveToMemory(model);
  const loaded = await tf.loadLayersModel(tf.io.fromMemory(artifacts));
  try {
    const a = model.weights;
    const b = loaded.weights;
    expect(b.map((w) => w.originalName)).toEqual(a.map((w) => w.originalName));
    a.forEach((w, i) => {
      expect(b[i].shape).toEqual(w.shape);
      expect(Array.from(b[i].read().dataSync())).toEqual(Array.from(w.read().dataSync()));
    });
    const y0 = model.apply(x, {training}) as tf.Tensor;
    const y1 = loaded.apply(x, {training}) as tf.Tensor;
    expect(Array.from(y1.dataSync())).toEqual(Array.from(y0.dataSync()));
    tf.dispose([y0, y1]);
    return loaded.layers.map((l) => l.getClassName());
  } finally {
    loaded.dispose();
  }
}
