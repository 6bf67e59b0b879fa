/**
 * Keras 3 models converted with tensorflowjs_converter (test/fixtures/keras3/,
 * made by scripts/make-keras3-fixtures.py from real Keras 3.15.1 /
 * TensorFlow 2.21 models, through the converter's `keras` (.h5) and
 * `keras_keras` (.keras) routes): each loads through io.loadLayersModel and
 * through tf.loadLayersModel(io.fromKeras3(handler)), predicts as Keras did,
 * and its gradients (input and every normalization weight) match Keras's
 * tf.GradientTape gradients. Error measure: max |a - r| / max(1, |r|).
 */
import * as tf from '@tensorflow/tfjs';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import {io, LayerNormalization} from '../src';
import {relErr} from './family_helpers';
import {useTestBackend} from './helpers';

interface Expected {
  name: string;
  keras_version: string;
  inputs: Array<{shape: number[], data: number[]}>;
  outputs: Array<{shape: number[], data: number[]}>;
  coefficients: number[][];
  input_gradients: number[][];
  weight_gradients: Record<string, {shape: number[], data: number[]}>;
}

const ROOT = path.join(__dirname, 'fixtures', 'keras3');
const MODELS = ['sequential', 'axes', 'multi_io', 'nested', 'zoo_2d', 'zoo_seq', 'zoo_misc', 'nested_functional', 'masked_seq'];
const ROUTES = ['keras', 'keras_keras'];
const PREDICT_TOL = 1e-5;
const GRAD_TOL = 1e-4;

/**
 * model.dispose() and then the variables it left: tfjs 4.22's dispose skips the
 * weights of a layer called more than once (a shared layer), in any model.
 */
function disposeModel(model: tf.LayersModel, variablesBefore: Set<string>): void {
  model.dispose();
  const vars = tf.engine().registeredVariables;
  for (const name of Object.keys(vars)) if (!variablesBefore.has(name)) vars[name].dispose();
}

/**
 * Tensors tfjs itself leaves behind when it builds this model (and disposes
 * it): 0, except that tfjs 4.22's LSTM cell with unitForgetBias (Keras's
 * default) leaks its bias initializer's pieces at build. The loaders must
 * leave nothing more.
 */
async function tfjsBuildLeak(topology: Record<string, tf.serialization.ConfigDictValue>): Promise<number> {
  const before = tf.memory().numTensors;
  const vars = new Set(Object.keys(tf.engine().registeredVariables));
  disposeModel(await tf.models.modelFromJSON({modelTopology: io.translateKeras3Topology(topology)}), vars);
  return tf.memory().numTensors - before;
}

const expected = (name: string): Expected => JSON.parse(fs.readFileSync(path.join(ROOT, name, 'expected.json'), 'utf8'));
const worst: Record<string, {predict: number, grad: number}> = {};

/**
 * Fixtures whose input gradient tfjs cannot take, and why: the weights'
 * gradients are still compared.
 */
const NO_INPUT_GRADIENT: Record<string, string> = {
  masked_seq: "tfjs 4.22's Masking layer has no gradient for its input (the Any of its mask has none)",
};

/** Checks predictions and gradients against Keras's; returns the worst errors. */
function check(model: tf.LayersModel, exp: Expected, what: string): {predict: number, grad: number} {
  const noInputGradient = NO_INPUT_GRADIENT[exp.name];
  const xs = exp.inputs.map((i) => tf.tensor(i.data, i.shape));
  let predict = 0;
  let grad = 0;
  try {
    const ys = model.predict(xs.length === 1 ? xs[0] : xs) as tf.Tensor|tf.Tensor[];
    const list = Array.isArray(ys) ? ys : [ys];
    expect(list.length).toBe(exp.outputs.length);
    list.forEach((y, k) => {
      expect(y.shape).toEqual(exp.outputs[k].shape);
      predict = Math.max(predict, relErr(y.dataSync(), exp.outputs[k].data));
    });
    tf.dispose(list);

    // Gradients of sum_k sum(c_k * y_k) for the inputs and every normalization weight.
    const byName = new Map(model.layers.flatMap((l) => (l instanceof tf.LayersModel ? l.layers : [l]))
        .flatMap((l) => l.trainableWeights).map((w) => [w.originalName, w]));
    const names = Object.keys(exp.weight_gradients);
    expect(names.length).toBeGreaterThan(0);
    const weights = names.map((n) => {
      const w = byName.get(n);
      if (w == null) throw new Error(`${what}: no weight ${n} in the loaded model (has ${Array.from(byName.keys())})`);
      expect(w.shape).toEqual(exp.weight_gradients[n].shape);
      return w.read() as tf.Variable;
    });
    if (noInputGradient != null) console.log(`${what}: input gradient not compared: ${noInputGradient}`);
    const xVars = noInputGradient == null ? xs.map((x) => tf.variable(x)) : [];
    const applied = noInputGradient == null ? xVars : xs;
    try {
      const {value, grads} = tf.variableGrads(() => {
        const out = model.apply(applied.length === 1 ? applied[0] : applied, {training: false}) as tf.Tensor|tf.Tensor[];
        const outs = Array.isArray(out) ? out : [out];
        return tf.addN(outs.map((y, k) => tf.sum(tf.mul(y, tf.tensor(exp.coefficients[k], y.shape))))) as tf.Scalar;
      }, [...xVars, ...weights]);
      xVars.forEach((v, k) => { grad = Math.max(grad, relErr(grads[v.name].dataSync(), exp.input_gradients[k])); });
      weights.forEach((w, k) => { grad = Math.max(grad, relErr(grads[w.name].dataSync(), exp.weight_gradients[names[k]].data)); });
      tf.dispose([value, ...Object.values(grads)]);
    } finally {
      xVars.forEach((v) => v.dispose());
    }
  } finally {
    tf.dispose(xs);
  }
  expect(predict).toBeLessThanOrEqual(PREDICT_TOL);
  expect(grad).toBeLessThanOrEqual(GRAD_TOL);
  return {predict, grad};
}

beforeAll(async () => {
  await useTestBackend();
});

afterAll(() => {
  // The measured errors, for the README's loading table.
  console.log(`Keras 3 fixtures, max |a - r| / max(1, |r|):\n${
    Object.entries(worst).map(([k, v]) => `  ${k}: predict ${v.predict.toExponential(1)}, gradients ${v.grad.toExponential(1)}`).join('\n')}`);
});

describe.each(MODELS)('Keras 3 model %s', (name) => {
  const exp = expected(name);

  test('the fixture comes from Keras 3', () => {
    expect(exp.keras_version).toMatch(/^3\./);
  });

  test.each(ROUTES)('%s route: io.loadLayersModel predicts and differentiates as Keras', async (route) => {
    const file = path.join(ROOT, name, route, 'model.json');
    const json = JSON.parse(fs.readFileSync(file, 'utf8'));
    expect(io.isKeras3Topology(json.modelTopology)).toBe(true);
    const buildLeak = await tfjsBuildLeak(json.modelTopology);
    if (buildLeak > 0) console.log(`${name} (${route}): tfjs's own build of this model leaks ${buildLeak} tensor(s)`);
    const before = tf.memory().numTensors;
    const vars = new Set(Object.keys(tf.engine().registeredVariables));
    const model = await io.loadLayersModel(file);
    try {
      worst[`${name} (${route})`] = check(model, exp, `${name} ${route}`);
    } finally {
      disposeModel(model, vars);
    }
    expect(tf.memory().numTensors - before).toBe(buildLeak);
  });

  test.each(ROUTES)('%s route: tf.loadLayersModel(io.fromKeras3(handler))', async (route) => {
    const file = path.join(ROOT, name, route, 'model.json');
    const buildLeak = await tfjsBuildLeak(JSON.parse(fs.readFileSync(file, 'utf8')).modelTopology);
    const before = tf.memory().numTensors;
    const vars = new Set(Object.keys(tf.engine().registeredVariables));
    const model = await tf.loadLayersModel(io.fromKeras3(io.fileSystem(file)));
    try {
      check(model, exp, `${name} ${route} fromKeras3`);
    } finally {
      disposeModel(model, vars);
    }
    expect(tf.memory().numTensors - before).toBe(buildLeak);
  });
});

describe('Keras 3 translation', () => {
  test('without translation, tfjs cannot read a Keras 3 file (what the fixtures guard against)', async () => {
    await expect(tf.loadLayersModel(io.fileSystem(path.join(ROOT, 'sequential', 'keras', 'model.json'))))
        .rejects.toThrow(/batchInputShape|inputShape/);
  });

  test('a weight of a .keras file that no layer has is a named error, and nothing is left allocated', async () => {
    const file = path.join(ROOT, 'nested', 'keras_keras', 'model.json');
    const handler = io.fileSystem(file);
    const broken: tf.io.IOHandler = {
      load: async () => {
        const a = await (handler.load as () => Promise<tf.io.ModelArtifacts>)();
        const specs = (a.weightSpecs ?? []).map((s, i) => (i === 0 ? {...s, name: 'layers/dense/vars/7'} : s));
        return {...a, weightSpecs: specs};
      },
    };
    const before = tf.memory().numTensors;
    const vars = Object.keys(tf.engine().registeredVariables).length;
    await expect(io.loadLayersModel(broken)).rejects.toThrow(
        /weight "layers\/dense\/vars\/7" of the \.keras weights file: Dense layer 'outer_dense' has 2 weight\(s\) \(outer_dense\/kernel, outer_dense\/bias\)/);
    expect(tf.memory().numTensors).toBe(before);
    expect(Object.keys(tf.engine().registeredVariables).length).toBe(vars);
  });

  test('a mixed-precision dtype policy is a named error', async () => {
    const json = JSON.parse(fs.readFileSync(path.join(ROOT, 'sequential', 'keras', 'model.json'), 'utf8'));
    const layers = json.modelTopology.model_config.config.layers;
    layers[1].config.dtype.config.name = 'mixed_float16';
    expect(() => io.translateKeras3Topology(json.modelTopology)).toThrow(
        /Conv2D layer 'conv2d': dtype policy "mixed_float16" is not supported/);
  });

  test('a tensor keyword argument is a named error', () => {
    const json = JSON.parse(fs.readFileSync(path.join(ROOT, 'nested', 'keras', 'model.json'), 'utf8'));
    const layers = json.modelTopology.model_config.config.layers;
    const node = layers[2].inbound_nodes[0];
    node.kwargs = {mask: node.args[0]};
    expect(() => io.translateKeras3Topology(json.modelTopology)).toThrow(/layer 'outer_gn': keyword argument 'mask' is a tensor/);
  });

  test('the mask of Embedding(mask_zero=True) in a functional model (a NotEqual op layer, as Keras 3.15 writes it) is an error naming the consumer and the op layer', () => {
    // Keras 3.15's config for Input(7, int32) -> Embedding(mask_zero=True) -> ... -> LSTM: the mask is
    // not_equal(tokens, 0), an op layer listed before its consumer, which takes it as a `mask` keyword tensor.
    const json = JSON.parse(fs.readFileSync(path.join(ROOT, 'nested', 'keras_keras', 'model.json'), 'utf8'));
    const layers = json.modelTopology.model_config.config.layers;
    const input = layers[0].config.name;
    const tensor = (layer: string, shape: Array<number|null>, dtype: string) =>
      ({class_name: '__keras_tensor__', config: {shape, dtype, keras_history: [layer, 0, 0]}});
    layers.splice(2, 0, {class_name: 'NotEqual', config: {name: 'not_equal'}, name: 'not_equal',
                         inbound_nodes: [{args: [tensor(input, [null, 5], 'float32'), 0], kwargs: {}}]});
    const gn = layers.find((l: {name: string}) => l.name === 'outer_gn');
    gn.inbound_nodes[0].kwargs = {mask: tensor('not_equal', [null, 5], 'bool')};
    expect(() => io.translateKeras3Topology(json.modelTopology)).toThrow(
        /io.fromKeras3: Functional layer 'nested' > GroupNormalization layer 'outer_gn': keyword argument 'mask' is a tensor, the output of NotEqual layer 'not_equal': Keras 3 writes the mask of a functional model \(from Embedding\(mask_zero=True\) or Masking\)/);
  });
});

describe('LayerNormalization weight shapes for axis lists', () => {
  test.each([[[3, 1]], [[1, -1]], [[-1, 1, 2]], [[2, 1]]])(
      'axis %j: gamma/beta shaped as tfjs\'s built-in shapes them, same outputs', (axis) => {
        const x = tf.randomNormal([2, 3, 4, 5], 0.5, 1.3, 'float32', 7);
        const builtin = tf.layers.layerNormalization({axis});
        const ours = new LayerNormalization({axis});
        builtin.apply(x);
        ours.apply(x);
        expect(ours.weights.map((w) => w.shape)).toEqual(builtin.weights.map((w) => w.shape));
        const params = builtin.weights.map((w, i) => tf.randomUniform(w.shape as number[], 0.5, 1.5, 'float32', i + 1));
        builtin.setWeights(params);
        ours.setWeights(params);
        const yb = builtin.apply(x) as tf.Tensor;
        const yo = ours.apply(x) as tf.Tensor;
        expect(relErr(yo.dataSync(), yb.dataSync())).toBeLessThan(1e-5);
        tf.dispose([x, yb, yo, ...params]);
        builtin.dispose();
        ours.dispose();
      });
});

test('a file this package wrote before (gamma/beta in increasing axis order) loads by a reshape, same outputs', async () => {
  const model = tf.sequential({layers: [new LayerNormalization({axis: [3, 1], inputShape: [3, 4, 5]})]});
  model.setWeights(model.getWeights().map((w, i) => tf.randomUniform(w.shape, 0.5, 1.5, 'float32', i + 3)));
  const x = tf.randomNormal([2, 3, 4, 5], 0, 1, 'float32', 9);
  const want = model.predict(x) as tf.Tensor;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ln-legacy-'));
  try {
    await model.save(io.fileSystem(dir));
    const file = path.join(dir, 'model.json');
    const json = JSON.parse(fs.readFileSync(file, 'utf8'));
    const specs = json.weightsManifest[0].weights as Array<{name: string, shape: number[]}>;
    expect(specs.map((w) => w.shape)).toEqual([[5, 3], [5, 3]]);
    for (const w of specs) w.shape = [3, 5];  // the old convention: axes 1, 3 in increasing order
    fs.writeFileSync(file, JSON.stringify(json));
    const before = tf.memory().numTensors;
    const loaded = await io.loadLayersModel(file);
    const got = loaded.predict(x) as tf.Tensor;
    expect(relErr(got.dataSync(), want.dataSync())).toBe(0);
    got.dispose();
    loaded.dispose();
    expect(tf.memory().numTensors).toBe(before);
  } finally {
    fs.rmSync(dir, {recursive: true, force: true});
    tf.dispose([x, want]);
    model.dispose();
  }
});
