/**
 * Back to Keras 3: models saved by this package (io.fileSystem) are built in
 * Keras 3 by scripts/tfjs_to_keras3.py and predict as they do here. Cases:
 * every Keras 3 fixture (loaded here, saved, rebuilt in Keras: a full round
 * trip, compared with Keras's original outputs) and a model built here with
 * every layer that has a Keras 3 counterpart (InstanceNormalization,
 * LayerNormalization over an unsorted axis list, rms and rmsScaling,
 * channels-first GroupNormalization, RMSNormalization).
 *
 * Needs Python with Keras 3 (scripts/keras-venv.sh makes .venv-keras; or set
 * KERAS_PYTHON). Without it the lane is skipped, loudly; REQUIRE_KERAS=1
 * turns the skip into a failure.
 */
import * as tf from '@tensorflow/tfjs';
import {spawnSync} from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import {GroupNormalization, InstanceNormalization, io, LayerNormalization, RMSNormalization} from '../src';

const ROOT = path.join(__dirname, '..');
const FIXTURES = path.join(__dirname, 'fixtures', 'keras3');
const MODELS = ['sequential', 'axes', 'multi_io', 'nested', 'zoo_2d', 'zoo_seq', 'zoo_misc', 'nested_functional', 'masked_seq'];
const TOL = 1e-5;

function findPython(): {python: string|null, why: string} {
  const python = process.env.KERAS_PYTHON ?? path.join(ROOT, '.venv-keras', 'bin', 'python');
  if (!fs.existsSync(python)) return {python: null, why: `${python} does not exist (run scripts/keras-venv.sh)`};
  const r = spawnSync(python, ['-c', 'import keras, sys; sys.exit(0 if keras.__version__.startswith("3.") else 1)'],
                      {env: {...process.env, TF_CPP_MIN_LOG_LEVEL: '3'}, encoding: 'utf8', timeout: 120000});
  return r.status === 0 ? {python, why: ''} : {python: null, why: `${python} cannot import Keras 3: ${r.stderr.slice(-300)}`};
}

const {python, why} = findPython();
if (python == null) {
  const message = `back to Keras 3 (test/keras3_back.test.ts) NOT tested: ${why}`;
  console.warn(`\n*** ${message} ***\n`);
  if (process.env.REQUIRE_KERAS === '1') throw new Error(`REQUIRE_KERAS=1: ${message}`);
}
const maybe = python == null ? describe.skip : describe;

function relErr(a: ArrayLike<number>, r: ArrayLike<number>): number {
  expect(a.length).toBe(r.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - r[i]) / Math.max(1, Math.abs(r[i])));
  return m;
}

interface Tensorish {shape: number[], data: number[]}
interface Case {model: string, inputs: Tensorish[], out: string, expected: Tensorish[], classes: string[]}

maybe('back to Keras 3 (scripts/tfjs_to_keras3.py)', () => {
  let tmp: string;
  const cases: Case[] = [];

  beforeAll(async () => {
    await tf.setBackend('cpu');
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'keras3-back-'));
    for (const name of MODELS) {
      const exp = JSON.parse(fs.readFileSync(path.join(FIXTURES, name, 'expected.json'), 'utf8'));
      const model = await io.loadLayersModel(path.join(FIXTURES, name, 'keras', 'model.json'));
      const dir = path.join(tmp, name);
      await model.save(io.fileSystem(dir));
      cases.push({model: path.join(dir, 'model.json'), inputs: exp.inputs, out: path.join(dir, 'keras.json'),
                  expected: exp.outputs, classes: []});
      model.dispose();
    }
    // A model built here, with every layer of this package that has a Keras 3 counterpart.
    const x = tf.input({shape: [4, 5, 6]});
    let y = new InstanceNormalization({axis: -1, name: 'instance'}).apply(x) as tf.SymbolicTensor;
    y = new LayerNormalization({axis: [3, 1], name: 'ln_unsorted'}).apply(y) as tf.SymbolicTensor;
    y = new LayerNormalization({rms: true, name: 'ln_rms'}).apply(y) as tf.SymbolicTensor;
    y = new LayerNormalization({axis: [2, 3], rmsScaling: true, name: 'ln_rms_scaling'}).apply(y) as tf.SymbolicTensor;
    y = new GroupNormalization({groups: 2, axis: 1, name: 'gn_first'}).apply(y) as tf.SymbolicTensor;
    y = new RMSNormalization({axis: -1, name: 'rms'}).apply(y) as tf.SymbolicTensor;
    const model = tf.model({inputs: x, outputs: y});
    model.setWeights(model.getWeights().map((w, i) => tf.randomUniform(w.shape, 0.5, 1.5, 'float32', i + 1)));
    const input = tf.randomNormal([2, 4, 5, 6], 0.3, 1.2, 'float32', 11);
    const out = model.predict(input) as tf.Tensor;
    const dir = path.join(tmp, 'built_here');
    await model.save(io.fileSystem(dir));
    cases.push({model: path.join(dir, 'model.json'), inputs: [{shape: input.shape, data: Array.from(input.dataSync())}],
                out: path.join(dir, 'keras.json'), expected: [{shape: out.shape, data: Array.from(out.dataSync())}],
                classes: ['GroupNormalization', 'LayerNormalization', 'RMSNormalization']});
    tf.dispose([input, out]);
    model.dispose();
    const casesFile = path.join(tmp, 'cases.json');
    fs.writeFileSync(casesFile, JSON.stringify(cases.map(({model: m, inputs, out: o}) => ({model: m, inputs, out: o}))));
    const r = spawnSync(python as string, [path.join(ROOT, 'scripts', 'tfjs_to_keras3.py'), '--check', casesFile],
                        {env: {...process.env, TF_CPP_MIN_LOG_LEVEL: '3'}, encoding: 'utf8', timeout: 300000});
    if (r.status !== 0) throw new Error(`tfjs_to_keras3.py failed (${r.status}): ${r.stderr.slice(-2000)}`);
  }, 300000);

  afterAll(() => {
    if (tmp) fs.rmSync(tmp, {recursive: true, force: true});
  });

  test.each([...MODELS, 'built_here'])('%s: Keras 3 predicts as this package does', (name) => {
    const c = cases.find((k) => k.model.includes(`${path.sep}${name}${path.sep}`)) as Case;
    const got = JSON.parse(fs.readFileSync(c.out, 'utf8'));
    expect(got.keras_version).toMatch(/^3\./);
    for (const cls of c.classes) expect(got.classes).toContain(cls);
    expect(got.outputs.length).toBe(c.expected.length);
    let err = 0;
    got.outputs.forEach((o: Tensorish, k: number) => {
      expect(o.shape).toEqual(c.expected[k].shape);
      err = Math.max(err, relErr(o.data, c.expected[k].data));
    });
    console.log(`back to Keras 3, ${name}: max |a - r| / max(1, |r|) = ${err.toExponential(1)}`);
    expect(err).toBeLessThanOrEqual(TOL);
  });
});
