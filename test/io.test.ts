/**
 * Save and load through every IO route Node has (memory, files via
 * io.fileSystem, http:// from a local server), topology stability, Keras's
 * exact config keys and weight names, and malformed models.
 * (localstorage:// and indexeddb:// run in the browser suite.)
 */
import * as tf from '@tensorflow/tfjs';
import {execFile, spawn} from 'child_process';
import * as fs from 'fs';
import * as http from 'http';
import {AddressInfo} from 'net';
import * as os from 'os';
import * as path from 'path';
import {promisify} from 'util';

import {io, layers} from '../src';
import {maxAbsDiff, saveToMemory, useTestBackend} from './helpers';

let tmp: string;
beforeAll(async () => {
  await useTestBackend();
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tfjs-norm-io-'));
});
afterAll(() => fs.rmSync(tmp, {recursive: true, force: true}));

/** A model with every layer, in configs that stress serialization. */
function everyLayerModel(): tf.LayersModel {
  const input = tf.input({shape: [4, 4, 6]});
  let h = layers.groupNormalization({groups: -1, name: 'gn_all'}).apply(input) as tf.SymbolicTensor;
  h = layers.groupNormalization({
    groups: 3, axis: -1, epsilon: 1e-5, name: 'gn',
    gammaRegularizer: tf.regularizers.l1l2({l1: 0.01, l2: 0.02}), betaRegularizer: 'l1l2',
    gammaConstraint: tf.constraints.maxNorm({maxValue: 2, axis: 0}), betaConstraint: 'nonNeg',
    gammaInitializer: tf.initializers.randomNormal({mean: 1, stddev: 0.1, seed: 3}),
    betaInitializer: tf.initializers.constant({value: 0.1}),
  }).apply(h) as tf.SymbolicTensor;
  h = layers.instanceNormalization({axis: 1, center: false, name: 'in'}).apply(h) as tf.SymbolicTensor;
  h = layers.layerNormalization({axis: [3, 1], name: 'ln_unsorted', gammaInitializer: 'glorotUniform'}).apply(h) as tf.SymbolicTensor;
  h = layers.layerNormalization({rmsScaling: true, name: 'ln_rms_scaling'}).apply(h) as tf.SymbolicTensor;
  h = layers.layerNormalization({rms: true, epsilon: 1e-6, name: 'ln_rms'}).apply(h) as tf.SymbolicTensor;
  h = layers.rmsNormalization({axis: [-2, -1], name: 'rms'}).apply(h) as tf.SymbolicTensor;
  const model = tf.model({inputs: input, outputs: h});
  model.setWeights(model.getWeights().map((w, i) => tf.randomUniform(w.shape, 0.5, 1.5, 'float32', 100 + i)));
  return model;
}

function expectSameModel(a: tf.LayersModel, b: tf.LayersModel): void {
  const wa = a.getWeights();
  const wb = b.getWeights();
  expect(wb.map((w) => w.shape)).toEqual(wa.map((w) => w.shape));
  wa.forEach((w, i) => expect(maxAbsDiff(wb[i].dataSync(), w.dataSync())).toBe(0));
  const x = tf.randomNormal([2, 4, 4, 6], 0, 1, 'float32', 1);
  const [pa, pb] = [a.predict(x) as tf.Tensor, b.predict(x) as tf.Tensor];
  expect(maxAbsDiff(pa.dataSync(), pb.dataSync())).toBe(0);
  tf.dispose([x, pa, pb]);
}

describe('save and load', () => {
  test('io.fileSystem writes model.json + weights.bin in the standard format and loads them back', async () => {
    const model = everyLayerModel();
    const dir = path.join(tmp, 'fs-model');
    const before = tf.memory().numTensors;
    await model.save(io.fileSystem(dir));
    expect(tf.memory().numTensors).toBe(before);
    const json = JSON.parse(fs.readFileSync(path.join(dir, 'model.json'), 'utf8'));
    expect(json.format).toBe('layers-model');
    expect(json.weightsManifest).toHaveLength(1);
    expect(json.weightsManifest[0].paths).toEqual(['weights.bin']);
    const bytes = json.weightsManifest[0].weights.reduce(
        (n: number, w: {shape: number[]}) => n + 4 * w.shape.reduce((a, b) => a * b, 1), 0);
    expect(fs.statSync(path.join(dir, 'weights.bin')).size).toBe(bytes);
    for (const load of [() => io.loadLayersModel(dir), () => tf.loadLayersModel(io.fileSystem(path.join(dir, 'model.json'))),
      () => io.loadLayersModel(`file://${path.join(dir, 'model.json')}`)]) {
      const loaded = await load();
      expectSameModel(model, loaded);
      loaded.dispose();
    }
    expect(tf.memory().numTensors).toBe(before);
    model.dispose();
  });

  test('http:// from a local server, through tf.loadLayersModel (in a plain Node process, using the built package)', async () => {
    // Under jest, Node's fetch returns arrays from another realm, which
    // tfjs-layers' deserializer rejects; a user's Node process has no such
    // split, so the loading side runs in a child process.
    const model = everyLayerModel();
    const dir = path.join(tmp, 'http-model');
    await model.save(io.fileSystem(dir));
    const server = http.createServer((req, res) => {
      const file = path.join(dir, path.basename(req.url ?? ''));
      if (!fs.existsSync(file)) {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(200, {'Content-Type': file.endsWith('.json') ? 'application/json' : 'application/octet-stream'});
      res.end(fs.readFileSync(file));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const x = tf.randomNormal([2, 4, 4, 6], 0, 1, 'float32', 1);
    try {
      const {port} = server.address() as AddressInfo;
      const script = `
        const tf = require('@tensorflow/tfjs');
        const {io} = require('tfjs-normalization');
        (async () => {
          const x = tf.tensor(${JSON.stringify(Array.from(x.dataSync()))}, [2, 4, 4, 6]);
          const url = 'http://127.0.0.1:${port}/model.json';
          const out = [];
          for (const m of [await tf.loadLayersModel(url), await io.loadLayersModel(url)]) {
            out.push({classes: m.layers.map((l) => l.getClassName()), y: Array.from(m.predict(x).dataSync())});
          }
          console.log(JSON.stringify(out));
        })().catch((e) => { console.error(e); process.exit(1); });`;
      const {stdout} = await promisify(execFile)(process.execPath, ['-e', script], {cwd: path.resolve(__dirname, '..')});
      const results = JSON.parse(stdout.trim().split('\n').filter((l) => l.startsWith('[')).pop() as string) as Array<{classes: string[], y: number[]}>;
      const expected = model.predict(x) as tf.Tensor;
      expect(results).toHaveLength(2);
      for (const r of results) {
        expect(r.classes).toEqual(model.layers.map((l) => l.getClassName()));
        expect(maxAbsDiff(r.y, expected.dataSync())).toBe(0);
      }
      expected.dispose();
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      x.dispose();
      model.dispose();
    }
  });

  test('save -> load -> save gives an identical topology JSON (groups -1, unsorted axes, regularizers, constraints, initializers with arguments)', async () => {
    const model = everyLayerModel();
    const first = await saveToMemory(model);
    const loaded = await tf.loadLayersModel(tf.io.fromMemory(first));
    const second = await saveToMemory(loaded);
    expect(JSON.stringify(second.modelTopology)).toBe(JSON.stringify(first.modelTopology));
    expectSameModel(model, loaded);
    const layersJson = (first.modelTopology as {config: {layers: Array<{name: string, config: Record<string, unknown>}>}}).config.layers;
    const gn = layersJson.find((l) => l.name === 'gn_all')?.config;
    expect(gn?.groups).toBe(-1);
    expect(layersJson.find((l) => l.name === 'ln_unsorted')?.config.axis).toEqual([3, 1]);
    expect(layersJson.find((l) => l.name === 'gn')?.config).toMatchObject({
      gamma_regularizer: {class_name: 'L1L2', config: {l1: 0.01, l2: 0.02}},
      gamma_constraint: {class_name: 'MaxNorm', config: {max_value: 2, axis: 0}},
      beta_constraint: {class_name: 'NonNeg', config: {}},
      gamma_initializer: {class_name: 'RandomNormal', config: {mean: 1, stddev: 0.1, seed: 3}},
      beta_initializer: {class_name: 'Constant', config: {value: 0.1}},
    });
    model.dispose();
    loaded.dispose();
  });
});

describe('io.fileSystem checkpoints: no shared weights, atomic saves', () => {
  /** A model whose every weight is `value`, with `value` also in its metadata. */
  function filledModel(value: number): tf.LayersModel {
    const model = tf.sequential({layers: [tf.layers.dense({inputShape: [6], units: 6}), layers.groupNormalization({groups: 3})]});
    model.setWeights(model.getWeights().map((w) => tf.fill(w.shape, value)));
    model.setUserDefinedMetadata({value});
    return model;
  }
  const weightValues = (m: tf.LayersModel) => new Set(m.getWeights().flatMap((w) => Array.from(w.dataSync())));

  test('saves to two .json paths in one folder keep their own weights; a folder keeps model.json + weights.bin', async () => {
    const dir = path.join(tmp, 'ckpt');
    const [m1, m2] = [filledModel(1), filledModel(2)];
    await m1.save(io.fileSystem(path.join(dir, 'epoch1.json')));
    await m2.save(io.fileSystem(path.join(dir, 'epoch2.json')));
    expect(fs.readdirSync(dir).sort()).toEqual(['epoch1.json', 'epoch1.weights.bin', 'epoch2.json', 'epoch2.weights.bin']);
    const json1 = JSON.parse(fs.readFileSync(path.join(dir, 'epoch1.json'), 'utf8')) as tf.io.ModelJSON;
    expect(json1.weightsManifest[0].paths).toEqual(['epoch1.weights.bin']);
    for (const [file, value] of [['epoch1.json', 1], ['epoch2.json', 2]] as const) {
      for (const loaded of [await io.loadLayersModel(path.join(dir, file)), await tf.loadLayersModel(io.fileSystem(path.join(dir, file)))]) {
        expect(weightValues(loaded)).toEqual(new Set([value]));
        loaded.dispose();
      }
    }
    const folder = path.join(tmp, 'ckpt-folder');
    await m1.save(io.fileSystem(folder));
    await m2.save(io.fileSystem(path.join(folder, 'model.json')));
    expect(fs.readdirSync(folder).sort()).toEqual(['model.json', 'weights.bin']);
    const loaded = await io.loadLayersModel(folder);
    expect(weightValues(loaded)).toEqual(new Set([2]));
    for (const m of [m1, m2, loaded]) m.dispose();
  });

  test('two saves to the same path at once (a save not awaited before the next) never leave model.json of one with the other\'s weights', async () => {
    // After every rename a save makes, the pair on disk (if there is a model.json) must be one save's.
    const dir = path.join(tmp, 'two-saves');
    const [m1, m2, m3] = [filledModel(1), filledModel(2), filledModel(3)];
    await m1.save(io.fileSystem(dir));
    const realRename = fs.promises.rename;
    const states: string[] = [];
    // The renames run one at a time, in the order the saves ask for them, each followed by the check.
    let queue: Promise<void> = Promise.resolve();
    const check = () => {
      const modelPath = path.join(dir, 'model.json');
      if (!fs.existsSync(modelPath)) return;
      const value = (JSON.parse(fs.readFileSync(modelPath, 'utf8')) as tf.io.ModelJSON).userDefinedMetadata?.value;
      const buf = fs.readFileSync(path.join(dir, 'weights.bin'));
      const weights = new Set(new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4));
      states.push(weights.size === 1 && weights.has(value as number) ? 'consistent' : `model.json ${value}, weights ${[...weights]}`);
    };
    const spy = jest.spyOn(fs.promises, 'rename').mockImplementation(((from: fs.PathLike, to: fs.PathLike) => {
      const run = queue.then(async () => {
        await realRename(from, to);
        check();
      });
      queue = run.catch(() => undefined);
      return run;
    }) as typeof fs.promises.rename);
    try {
      await Promise.all([m2.save(io.fileSystem(dir)), m3.save(io.fileSystem(path.join(dir, 'model.json')))]);
    } finally {
      spy.mockRestore();
    }
    expect(states.length).toBeGreaterThan(0);
    expect(states).toEqual(states.map(() => 'consistent'));
    const loaded = await io.loadLayersModel(dir);
    expect(loaded.getUserDefinedMetadata()).toEqual({value: 3});  // the later save wins
    expect(weightValues(loaded)).toEqual(new Set([3]));
    for (const m of [m1, m2, m3, loaded]) m.dispose();
  });

  test('a load that overlaps a re-save to the same path returns one save\'s pair, never model.json of one save with another\'s weights', async () => {
    // The re-save lands exactly between the load's read of model.json and its
    // read of the weights (the moment a training process's checkpoint save
    // and a server's load overlap; measured with a child process re-saving a
    // model in a loop: 182 of 1990 loads were model.json k with weights k+1).
    const dir = path.join(tmp, 'overlap');
    const [m1, m2, m3] = [filledModel(1), filledModel(2), filledModel(3)];
    await m1.save(io.fileSystem(dir));
    const realReadFile = fs.promises.readFile;
    const saves: number[] = [];
    const spy = jest.spyOn(fs.promises, 'readFile').mockImplementation((async (file: unknown, ...rest: unknown[]) => {
      // The first two reads of weights.bin each find a save that started after the load read model.json.
      if (String(file).endsWith('weights.bin') && saves.length < 2) {
        const next = saves.length === 0 ? m2 : m3;
        saves.push(saves.length + 2);
        await next.save(io.fileSystem(dir));
      }
      return (realReadFile as (...a: unknown[]) => Promise<unknown>)(file, ...rest);
    }) as typeof fs.promises.readFile);
    try {
      for (const load of [() => io.loadLayersModel(dir), () => tf.loadLayersModel(io.fileSystem(dir))]) {
        saves.length = 0;
        await m1.save(io.fileSystem(dir));
        const loaded = await load();
        const value = (loaded.getUserDefinedMetadata() as {value: number}).value;
        expect(weightValues(loaded)).toEqual(new Set([value]));
        expect(value).toBe(3);
        expect(saves).toEqual([2, 3]);
        loaded.dispose();
      }
      // A save at every read of the weights: the load gives up with an error instead of mixing two saves.
      spy.mockImplementation((async (file: unknown, ...rest: unknown[]) => {
        if (String(file).endsWith('weights.bin')) await m2.save(io.fileSystem(dir));
        return (realReadFile as (...a: unknown[]) => Promise<unknown>)(file, ...rest);
      }) as typeof fs.promises.readFile);
      const before = tf.memory().numTensors;
      await expect(io.loadLayersModel(dir)).rejects.toThrow(
          /io.fileSystem: ".*overlap\/model.json" was replaced while its weights were read \(a save to the same path\), 5 times in a row; load again when the saves stop/);
      expect(tf.memory().numTensors).toBe(before);
    } finally {
      spy.mockRestore();
      for (const m of [m1, m2, m3]) m.dispose();
    }
  });

  test('a save killed mid-write never leaves a model.json naming half-written or foreign weights', async () => {
    // A child process re-saves a 16 MiB model to one path in a loop, every
    // weight equal to the save's number (also in the metadata); it is killed
    // at a different moment in each round. Whatever is left must either fail
    // to load for want of a model.json or load as one consistent save.
    // Each round starts a Node process that loads tfjs and src/ through tsx
    // (5-15 s on a loaded 2-core machine): the timeout leaves room for that.
    const script = `
      const tf = require('@tensorflow/tfjs');
      const {io} = require('./src');
      (async () => {
        const model = tf.sequential({layers: [tf.layers.dense({inputShape: [1024], units: 4096, useBias: false})]});
        for (let k = 1; ; k++) {
          const w = tf.fill([1024, 4096], k);
          model.setWeights([w]);
          w.dispose();
          model.setUserDefinedMetadata({value: k});
          process.stdout.write('saving ' + k + '\\n');
          await model.save(io.fileSystem(process.argv[1]));
        }
      })();`;
    const outcomes: string[] = [];
    for (let round = 0; round < 6; round++) {
      const target = path.join(tmp, `killed-${round}`, round % 2 === 0 ? 'model.json' : 'ckpt.json');
      const child = spawn(process.execPath, ['--import', 'tsx', '-e', script, target], {cwd: path.resolve(__dirname, '..'), stdio: ['ignore', 'pipe', 'inherit']});
      await new Promise<void>((resolve, reject) => {
        let out = '';
        child.stdout.on('data', (chunk: Buffer) => {
          out += chunk.toString();
          if (/saving 3\n/.test(out)) {
            setTimeout(() => child.kill('SIGKILL'), round * 8);
            resolve();
          }
        });
        child.on('exit', (code) => reject(new Error(`the saving child exited early (code ${code})`)));
      });
      await new Promise((resolve) => child.on('exit', resolve));
      if (!fs.existsSync(target)) {
        await expect(io.loadLayersModel(target)).rejects.toThrow(/io.fileSystem: cannot read model.json/);
        outcomes.push('no model.json');
        continue;
      }
      const loaded = await io.loadLayersModel(target);
      const value = (loaded.getUserDefinedMetadata() as {value: number}).value;
      expect(weightValues(loaded)).toEqual(new Set([value]));
      outcomes.push(`save ${value}`);
      loaded.dispose();
    }
    expect(outcomes).toHaveLength(6);
  }, 300000);
});

describe('model.json has exactly Keras\'s config keys and weight names', () => {
  const BASE = ['name', 'trainable', 'dtype'];
  const AFFINE = ['epsilon', 'center', 'scale', 'beta_initializer', 'gamma_initializer', 'beta_regularizer',
    'gamma_regularizer', 'beta_constraint', 'gamma_constraint'];
  test.each([
    ['GroupNormalization (keras.layers.GroupNormalization)', () => layers.groupNormalization({groups: 2}), [...BASE, 'groups', 'axis', ...AFFINE], ['gamma', 'beta']],
    ['InstanceNormalization (= keras.layers.GroupNormalization with groups -1)', () => layers.instanceNormalization(), [...BASE, 'groups', 'axis', ...AFFINE], ['gamma', 'beta']],
    ['LayerNormalization (keras.layers.LayerNormalization)', () => layers.layerNormalization(), [...BASE, 'axis', 'rms_scaling', ...AFFINE], ['gamma', 'beta']],
    ['RMSNormalization (keras.layers.RMSNormalization)', () => layers.rmsNormalization(), [...BASE, 'axis', 'epsilon'], ['scale']],
  ])('%s', async (_name, make, keys, weights) => {
    const model = tf.sequential({layers: [tf.layers.inputLayer({inputShape: [3, 4]}), make()]});
    const artifacts = await saveToMemory(model);
    const config = (artifacts.modelTopology as {config: {layers: Array<{class_name: string, config: Record<string, unknown>}>}}).config.layers[1].config;
    expect(Object.keys(config).sort()).toEqual([...keys].sort());
    expect(artifacts.weightSpecs?.map((w) => w.name.split('/').pop())).toEqual(weights);
    model.dispose();
  });
});

describe('malformed models fail with a named error and leave nothing allocated', () => {
  async function saved(): Promise<{topology: {config: {layers: Array<{config: Record<string, unknown>}>}}, specs: tf.io.WeightsManifestEntry[], data: ArrayBuffer}> {
    const model = tf.sequential({layers: [tf.layers.dense({inputShape: [6], units: 6, name: 'd'}), layers.groupNormalization({groups: 3, name: 'gn'})]});
    const a = await saveToMemory(model);
    model.dispose();
    return {topology: JSON.parse(JSON.stringify(a.modelTopology)), specs: JSON.parse(JSON.stringify(a.weightSpecs)), data: a.weightData as ArrayBuffer};
  }
  const gnConfig = (t: {config: {layers: Array<{config: Record<string, unknown>}>}}) => t.config.layers[1].config;

  const cases: Array<[string, (s: Awaited<ReturnType<typeof saved>>) => void, RegExp]> = [
    ['groups of the wrong type', (s) => {
      gnConfig(s.topology).groups = 'three';
    }, /GroupNormalization layer 'gn': argument 'groups' must be a positive integer.*received "three"/],
    ['groups not dividing the channels', (s) => {
      gnConfig(s.topology).groups = 4;
    }, /GroupNormalization layer 'gn': argument 'groups' must be a divisor of the number of channels \(6\).*received 4/],
    ['axis out of range', (s) => {
      gnConfig(s.topology).axis = 3;
    }, /GroupNormalization layer 'gn': argument 'axis' must be an axis in \[-2, 1\].*received 3/],
    ['an unknown initializer', (s) => {
      gnConfig(s.topology).gamma_initializer = {class_name: 'NoSuchInit', config: {}};
    }, /GroupNormalization layer 'gn': argument 'gamma_initializer' must be a known initializer; 'NoSuchInit' is not registered/],
    ['a misspelled config key, named as model.json spells it', (s) => {
      gnConfig(s.topology).gamma_initialiser = gnConfig(s.topology).gamma_initializer;
    }, /GroupNormalization layer 'gn': unknown key 'gamma_initialiser' in 'config'; known keys: groups, axis, epsilon, center, scale, beta_initializer, gamma_initializer, .*batch_input_shape/],
    ['an unknown layer class', (s) => {
      (s.topology.config.layers[1] as {class_name?: string}).class_name = 'GroupNormalisation';
    }, /unknown layer class "GroupNormalisation". This package registers the normalization classes GroupNormalization, InstanceNormalization, LayerNormalization, RMSNormalization, Addons>GroupNormalization, Addons>InstanceNormalization/],
    ['an InstanceNormalization config of no known flavour, keys as model.json spells them', (s) => {
      const layer = s.topology.config.layers[1] as {class_name?: string, config: Record<string, unknown>};
      layer.class_name = 'InstanceNormalization';
      delete layer.config.groups;
      layer.config.track_running_stats = true;
    }, /unrecognised config keys .*"track_running_stats"/],
    ['a weight of the wrong shape', (s) => {
      s.specs[3].shape = [5];
      s.data = s.data.slice(0, s.data.byteLength - 4);
    }, /GroupNormalization layer 'gn': weight "gn\/beta" has shape \[5\] in the weights manifest, but the layer's config gives shape \[6\]/],
    ['a missing weight', (s) => {
      s.specs.pop();
      s.data = s.data.slice(0, s.data.byteLength - 24);
    }, /GroupNormalization layer 'gn': weight "gn\/beta" \(shape \[6\]\) is missing from the weights manifest/],
    ['a truncated weights file', (s) => {
      s.data = s.data.slice(0, s.data.byteLength - 10);
    }, /the weights data holds 206 bytes but the manifest needs more: weight "gn\/beta".*truncated/],
  ];
  test.each(cases)('%s', async (_name, breakIt, message) => {
    const s = await saved();
    breakIt(s);
    const before = tf.memory().numTensors;
    const variables = Object.keys(tf.engine().registeredVariables).length;
    await expect(io.loadLayersModel(tf.io.fromMemory({modelTopology: s.topology, weightSpecs: s.specs, weightData: s.data})))
        .rejects.toThrow(message);
    expect(tf.memory().numTensors).toBe(before);
    expect(Object.keys(tf.engine().registeredVariables).length).toBe(variables);
  });

  test('a failed load disposes only what it created: concurrent loads in both orders, and the app\'s variables', async () => {
    const good = await saved();
    const bad = await saved();
    bad.specs[3].shape = [5];
    bad.data = bad.data.slice(0, bad.data.byteLength - 4);
    const handler = (s: typeof good) => tf.io.fromMemory({modelTopology: s.topology, weightSpecs: s.specs, weightData: s.data});
    const before = tf.memory().numTensors;
    const reference = tf.io.decodeWeights(good.data, good.specs);
    const variables = Object.keys(tf.engine().registeredVariables).length;
    for (const order of ['bad first', 'good first']) {
      const loads = order === 'bad first' ? [io.loadLayersModel(handler(bad)), io.loadLayersModel(handler(good))] :
                                            [io.loadLayersModel(handler(good)), io.loadLayersModel(handler(bad))];
      // The app makes a variable at every turn of the event loop while the loads are pending.
      const appVariables: tf.Variable[] = [];
      const app = (async () => {
        for (let i = 0; i < 50; i++) {
          await Promise.resolve();
          appVariables.push(tf.tidy(() => tf.variable(tf.scalar(i), true, `app_variable_${order.replace(' ', '_')}_${i}`)));
        }
      })();
      const [first, second] = await Promise.allSettled(loads);
      await app;
      const [okResult, failed] = order === 'bad first' ? [second, first] : [first, second];
      expect(failed.status).toBe('rejected');
      expect(String((failed as PromiseRejectedResult).reason)).toMatch(/weight "gn\/beta" has shape \[5\]/);
      expect(okResult.status).toBe('fulfilled');
      const model = (okResult as PromiseFulfilledResult<tf.LayersModel>).value;
      const weights = model.getWeights();  // throws if any of its variables was disposed
      expect(weights.map((w) => maxAbsDiff(w.dataSync(), reference[model.weights[weights.indexOf(w)].originalName].dataSync()))).toEqual(weights.map(() => 0));
      expect(appVariables.map((v) => v.isDisposed)).toEqual(appVariables.map(() => false));
      expect(appVariables.map((v) => v.dataSync()[0])).toEqual(appVariables.map((_, i) => i));
      model.dispose();
      for (const v of appVariables) v.dispose();
    }
    tf.dispose(Object.values(reference));
    expect(tf.memory().numTensors).toBe(before);
    expect(Object.keys(tf.engine().registeredVariables).length).toBe(variables);
  });

  test('truncated model.json and a missing weights file, through io.fileSystem', async () => {
    const dir = path.join(tmp, 'broken');
    const model = tf.sequential({layers: [tf.layers.dense({inputShape: [6], units: 6}), layers.groupNormalization({groups: 3})]});
    await model.save(io.fileSystem(dir));
    model.dispose();
    const text = fs.readFileSync(path.join(dir, 'model.json'), 'utf8');
    fs.writeFileSync(path.join(dir, 'model.json'), text.slice(0, text.length / 2));
    await expect(io.loadLayersModel(dir)).rejects.toThrow(/io.fileSystem: ".*broken\/model.json" is not valid JSON \(truncated\?\)/);
    fs.writeFileSync(path.join(dir, 'model.json'), text);
    fs.rmSync(path.join(dir, 'weights.bin'));
    await expect(io.loadLayersModel(dir)).rejects.toThrow(/io.fileSystem: weights file ".*weights.bin" listed in ".*model.json" cannot be read/);
    await expect(io.loadLayersModel(path.join(tmp, 'nowhere'))).rejects.toThrow(/io.fileSystem: cannot read model.json at ".*nowhere\/model.json"/);
  });
});
