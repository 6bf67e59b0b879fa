import * as tf from '@tensorflow/tfjs';

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (Number.isNaN(d)) return NaN;
    if (d > m) m = d;
  }
  return m;
}

/** Asserts |a - b| <= tol elementwise, with the worst error in the message. */
export function expectClose(actual: tf.Tensor|ArrayLike<number>, expected: ArrayLike<number>, tol: number, what = ''): void {
  const a = actual instanceof tf.Tensor ? actual.dataSync() : actual;
  const err = maxAbsDiff(a, expected);
  if (!(err <= tol)) {
    throw new Error(`${what}: max abs error ${err} exceeds ${tol}`);
  }
}

/** Counts the distinct tensors in a value (a tensor, an array or an object of tensors). */
function countTensors(v: unknown, seen = new Set<number>()): number {
  if (v instanceof tf.Tensor) {
    if (!seen.has(v.id) && !v.isDisposed) seen.add(v.id);
  } else if (Array.isArray(v)) {
    v.forEach((e) => countTensors(e, seen));
  } else if (v && typeof v === 'object' && !(v instanceof tf.layers.Layer)) {
    Object.values(v).forEach((e) => countTensors(e, seen));
  }
  return seen.size;
}

/**
 * Runs fn and asserts that tf.memory().numTensors grew by exactly the
 * number of tensors fn returned: nothing else was left behind.
 */
export async function expectNoLeak<T>(fn: () => T|Promise<T>, what = 'call'): Promise<T> {
  const before = tf.memory().numTensors;
  const out = await fn();
  const leaked = tf.memory().numTensors - before - countTensors(out);
  if (leaked !== 0) throw new Error(`${what} leaked ${leaked} tensor(s)`);
  return out;
}

/** Synchronous variant of expectNoLeak. */
export function expectNoLeakSync<T>(fn: () => T, what = 'call'): T {
  const before = tf.memory().numTensors;
  const out = fn();
  const leaked = tf.memory().numTensors - before - countTensors(out);
  if (leaked !== 0) throw new Error(`${what} leaked ${leaked} tensor(s)`);
  return out;
}

type AnyLayer = tf.layers.Layer;
type LayerClass = {new (args: never): AnyLayer, className: string};

export interface LayerTestSpec {
  /** The layer class under test. */
  cls: LayerClass;
  /** Constructor args. */
  args: Record<string, unknown>;
  /** A concrete input shape (with batch). */
  inputShape: number[];
  /** Expected weights, in order: [name, shape] or [name, shape, dtype] (default 'float32'). */
  weights: Array<[string, number[]]|[string, number[], string]>;
  /** Keys getConfig() must return (besides the base keys), in any order. */
  configKeys: string[];
  /**
   * Whether the layer's statistics leave masked positions out (default
   * true). False for a layer that passes tfjs's mask on without using it
   * (Keras's UnitNormalization does the same).
   */
  usesMask?: boolean;
  /** Indices of non-trainable float weights no call changes (WeightNormalization's clone copies); default none. */
  constantWeights?: number[];
}

/**
 * The shared layer test: output shape (eager and symbolic), weight count,
 * order, names and shapes, getConfig keys, fromConfig(getConfig()) giving
 * an identical config and identical outputs, and no tensor leaks per call.
 */
export async function runLayerTest(spec: LayerTestSpec): Promise<void> {
  const {cls, args, inputShape} = spec;
  const make = (a: Record<string, unknown>) => new cls(a as never);
  const layer = make(args);
  const x = tf.randomNormal(inputShape, 0.5, 2, 'float32', 7);
  const y0 = layer.apply(x) as tf.Tensor;
  expect(y0.shape).toEqual(inputShape);
  expect(layer.computeOutputShape(inputShape)).toEqual(inputShape);
  // Weights: count, order, names, shapes, dtype; make them non-trivial.
  expect(layer.weights.map((w) => w.name.split('/').pop())).toEqual(spec.weights.map((w) => w[0]));
  expect(layer.weights.map((w) => w.shape)).toEqual(spec.weights.map((w) => w[1]));
  layer.weights.forEach((w, i) => expect(w.dtype).toBe(spec.weights[i][2] ?? 'float32'));
  randomizeWeights(layer, 11);
  // A second call leaks nothing.
  const y1 = await expectNoLeak(() => layer.apply(x) as tf.Tensor, `${cls.className}.apply`);
  // Config: the expected keys, and a faithful round trip.
  const config = layer.getConfig();
  const baseKeys = ['name', 'trainable', 'dtype', 'batchInputShape'].filter((k) => k in config);
  expect(Object.keys(config).sort()).toEqual([...spec.configKeys, ...baseKeys].sort());
  const json = JSON.stringify(config);
  const clone = (cls as unknown as typeof tf.layers.Layer & {fromConfig: typeof tf.serialization.Serializable.fromConfig})
                    .fromConfig(cls as never, JSON.parse(json)) as AnyLayer;
  expect(clone.getClassName()).toBe(cls.className);
  expect(JSON.stringify(clone.getConfig())).toBe(json);
  clone.apply(x);
  clone.setWeights(layer.getWeights());
  const y2 = clone.apply(x) as tf.Tensor;
  expect(maxAbsDiff(y2.dataSync(), y1.dataSync())).toBe(0);
  // Symbolic use in a functional model.
  const input = tf.input({shape: inputShape.slice(1)});
  const sym = make(args).apply(input) as tf.SymbolicTensor;
  expect(sym.shape).toEqual([null, ...inputShape.slice(1)]);
  tf.dispose([x, y0, y1, y2]);
  layer.dispose();
  clone.dispose();
  checkWeightGradients(spec);
  checkMasks(spec);
  await checkTraining(spec);
}

/** Float weights get seeded random values in [0.5, 1.5); others (a bool flag) keep theirs. */
function randomizeWeights(layer: AnyLayer, seed: number): void {
  tf.tidy(() => layer.setWeights(layer.weights.map(
      (w, i) => (w.dtype === 'float32' ? tf.randomUniform(w.shape as number[], 0.5, 1.5, 'float32', seed + i) : w.read().clone()))));
}

/** A new built layer of the spec with non-trivial weights (seeded), and the input it was built on. */
function builtLayer(spec: LayerTestSpec, seed: number): {layer: AnyLayer, x: tf.Tensor} {
  const layer = new spec.cls(spec.args as never);
  const x = tf.randomNormal(spec.inputShape, 0.5, 2, 'float32', seed);
  tf.dispose(layer.apply(x) as tf.Tensor);
  randomizeWeights(layer, seed + 11);
  return {layer, x};
}

/**
 * Gradients of sum(layer(x) * dy) with respect to each trainable weight
 * (inference call) against central differences in float32, a few elements
 * of each weight. The step starts at 0.05 and halves until the differences
 * at h and h/2 agree (a piecewise-linear layer such as TLU then has no kink
 * within the step); the two are Richardson-extrapolated.
 */
function checkWeightGradients(spec: LayerTestSpec): void {
  const {layer, x} = builtLayer(spec, 21);
  const dy = tf.randomNormal(spec.inputShape, 0, 1, 'float32', 5);
  const loss = () => tf.sum(tf.mul(layer.apply(x) as tf.Tensor, dy)) as tf.Scalar;
  const vars = layer.trainableWeights.map((w) => w.read() as tf.Variable);
  expect(vars.length).toBe(layer.weights.filter((w) => w.trainable).length);
  if (vars.length > 0) {
    const {value, grads} = tf.variableGrads(loss, vars);
    for (const v of vars) {
      const g = grads[v.name].dataSync();
      const w0 = v.dataSync().slice();
      for (const i of [0, Math.floor(w0.length / 2), w0.length - 1]) {
        const at = (d: number) => {
          const w = w0.slice();
          w[i] += d;
          tf.tidy(() => v.assign(tf.tensor(w, v.shape)));
          return tf.tidy(() => loss().dataSync()[0]);
        };
        const central = (h: number) => (at(h) - at(-h)) / (2 * h);
        const tol = (ref: number) => 2e-3 * Math.max(1, Math.abs(ref));
        let h = 0.05;
        let fd = NaN;
        for (let k = 0; k < 7; k++, h /= 2) {
          const [d1, d2] = [central(h), central(h / 2)];
          fd = (4 * d2 - d1) / 3;
          if (Math.abs(d1 - d2) <= tol(d2)) break;
        }
        tf.tidy(() => v.assign(tf.tensor(w0, v.shape)));
        if (!(Math.abs(g[i] - fd) <= tol(fd))) {
          throw new Error(`${spec.cls.className} d/d${v.name}[${i}]: analytic ${g[i]}, central difference ${fd}`);
        }
      }
    }
    tf.dispose([value, ...Object.values(grads)]);
  }
  tf.dispose([x, dy]);
  layer.dispose();
}

/**
 * With a [batch, time] mask (the prefix tfjs propagates): the mask passes
 * through (computeMask), and, unless the spec says the layer does not use
 * it, garbage (NaN, 1e30) at masked positions reaches no valid output, in
 * inference and in training, nor any non-trainable weight a training call
 * updates. A layer that does not support masking is skipped.
 */
function checkMasks(spec: LayerTestSpec): void {
  // A layer that does not take masks (tfjs's Conv layers, as WSConv*) refuses one: nothing to check.
  if (!new spec.cls(spec.args as never).supportsMasking) return;
  const [N, T] = spec.inputShape;
  const mask = tf.tensor2d(Array.from({length: N * T}, (_, i) => (i % T < Math.max(1, T - 1 - (i / T | 0)) ? 1 : 0)), [N, T], 'bool');
  const per = spec.inputShape.slice(2).reduce((a, b) => a * b, 1);
  const valid = Array.from(mask.dataSync()).flatMap((m) => new Array<number>(per).fill(m));
  const clean = tf.randomNormal(spec.inputShape, 0.5, 2, 'float32', 13);
  const dirty = tf.tensor(Array.from(clean.dataSync(), (v, i) => (valid[i] ? v : i % 2 ? NaN : 1e30)), spec.inputShape);
  for (const training of [false, true]) {
    const run = (x: tf.Tensor) => {
      const {layer} = builtLayer(spec, 31);
      const y = layer.apply(x, {mask, training}) as tf.Tensor;
      const out = {y: y.dataSync(), weights: layer.getWeights().map((w) => w.dataSync())};
      expect(layer.computeMask(x, mask)).toBe(mask);
      tf.dispose([y]);
      layer.dispose();
      return out;
    };
    const a = run(clean);
    if (spec.usesMask === false) continue;
    const b = run(dirty);
    const at = (y: ArrayLike<number>) => Array.from(y).filter((_, i) => valid[i]);
    expect(at(b.y).every(Number.isFinite)).toBe(true);
    expect(maxAbsDiff(at(b.y), at(a.y))).toBe(0);
    b.weights.forEach((w, i) => expect(maxAbsDiff(w, a.weights[i])).toBe(0));
  }
  tf.dispose([mask, clean, dirty]);
}

/**
 * Training through model.fit: every trainable weight moves and the loss
 * goes down; non-trainable weights (moving statistics) move in training
 * and not in inference; a save and load (tf.loadLayersModel) restores
 * every weight, trainable or not, and the same predictions.
 */
async function checkTraining(spec: LayerTestSpec): Promise<void> {
  const input = tf.input({shape: spec.inputShape.slice(1)});
  const model = tf.model({inputs: input, outputs: new spec.cls(spec.args as never).apply(input) as tf.SymbolicTensor});
  const layer = model.layers[1];
  randomizeWeights(layer, 41);
  const x = tf.randomNormal(spec.inputShape, 0.5, 2, 'float32', 17);
  const target = tf.randomNormal(spec.inputShape, 0, 1, 'float32', 19);
  const before = layer.getWeights().map((w) => w.dataSync().slice());
  if (layer.trainableWeights.length > 0) {
    model.compile({optimizer: tf.train.sgd(0.1), loss: 'meanSquaredError'});
    const history = await model.fit(x, target, {epochs: 4, batchSize: spec.inputShape[0], verbose: 0, shuffle: false});
    const losses = history.history.loss as number[];
    expect(losses.every(Number.isFinite)).toBe(true);
    expect(losses[3]).toBeLessThan(losses[0]);
    const after = layer.getWeights().map((w) => w.dataSync());
    layer.weights.forEach((w, i) => {
      if (w.trainable) expect(maxAbsDiff(after[i], before[i])).toBeGreaterThan(0);
    });
  }
  // Non-trainable float weights (moving statistics, a power iteration's vector): a training call
  // updates them, an inference call may not.
  const constant = spec.constantWeights ?? [];
  const frozen = layer.weights.flatMap((w, i) => (w.trainable || w.dtype !== 'float32' || constant.includes(i) ? [] : [i]));
  if (frozen.length > 0 || constant.length > 0) {
    tf.dispose(layer.apply(x, {training: true}) as tf.Tensor);
    const trained = layer.getWeights().map((w) => w.dataSync().slice());
    frozen.forEach((i) => expect(maxAbsDiff(trained[i], before[i])).toBeGreaterThan(0));
    constant.forEach((i) => expect(maxAbsDiff(trained[i], before[i])).toBe(0));
    tf.dispose(model.predict(x) as tf.Tensor);
    const inferred = layer.getWeights().map((w) => w.dataSync());
    frozen.forEach((i) => expect(maxAbsDiff(inferred[i], trained[i])).toBe(0));
  }
  // Save and load: every weight, and the predictions.
  const loaded = await tf.loadLayersModel(tf.io.fromMemory(await saveToMemory(model)));
  expectSameModel(loaded, model, x);
  tf.dispose([x, target]);
  model.dispose();
  loaded.dispose();
}

/** Asserts that two models hold the same weights (shapes and values) and predict the same for x, exactly. */
export function expectSameModel(actual: tf.LayersModel, expected: tf.LayersModel, x: tf.Tensor|tf.Tensor[]): void {
  const wa = actual.getWeights();
  const we = expected.getWeights();
  expect(wa.map((w) => w.shape)).toEqual(we.map((w) => w.shape));
  we.forEach((w, i) => expect(maxAbsDiff(wa[i].dataSync(), w.dataSync())).toBe(0));
  const pa = actual.predict(x) as tf.Tensor;
  const pe = expected.predict(x) as tf.Tensor;
  expect(maxAbsDiff(pa.dataSync(), pe.dataSync())).toBe(0);
  tf.dispose([pa, pe]);
}

/** Saves a model through tf.io.withSaveHandler and returns the artifacts (for tf.io.fromMemory). */
export async function saveToMemory(model: tf.LayersModel): Promise<tf.io.ModelArtifacts> {
  let artifacts: tf.io.ModelArtifacts|undefined;
  await model.save(tf.io.withSaveHandler(async (a) => {
    artifacts = a;
    return {modelArtifactsInfo: {dateSaved: new Date(), modelTopologyType: 'JSON'}};
  }));
  return artifacts as tf.io.ModelArtifacts;
}

/**
 * The backend the backend-independent suites run on: TFJS_TEST_BACKEND
 * (default 'cpu'). 'tensorflow' imports @tensorflow/tfjs-node first (the
 * test lane of scripts/tfjs-node-test.sh sets it), 'wasm' the wasm backend; a
 * backend that cannot be set is an error, never a silent fallback to cpu.
 */
export async function useTestBackend(): Promise<string> {
  const name = process.env.TFJS_TEST_BACKEND ?? 'cpu';
  if (name === 'tensorflow') {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    require('@tensorflow/tfjs-node');
  } else if (name === 'wasm') {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    require('@tensorflow/tfjs-backend-wasm');
  }
  const ok = await tf.setBackend(name);
  if (!ok || tf.getBackend() !== name) {
    throw new Error(`TFJS_TEST_BACKEND='${name}': backend cannot be set (active: '${tf.getBackend()}')`);
  }
  return name;
}

/** Runs fn with the given tf flags set, then puts the previous values back. */
export function withFlags<T>(flags: Record<string, boolean>, fn: () => T): T {
  const prev: Record<string, boolean> = {};
  for (const [k, v] of Object.entries(flags)) {
    prev[k] = tf.env().getBool(k);
    tf.env().set(k, v);
  }
  try {
    return fn();
  } finally {
    for (const [k, v] of Object.entries(prev)) tf.env().set(k, v);
  }
}

/** `@tensorflow/tfjs-node`'s module where it can be imported (the tfjs-node lane), or null. */
export function tryTfjsNode(): unknown {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return require('@tensorflow/tfjs-node');
  } catch {
    return null;
  }
}

/**
 * Where tfjs-node cannot be imported: says so loudly (`!!! message !!!`)
 * and reports the suite as one skipped test named by `message`; with
 * REQUIRE_TFJS_NODE=1 (the tfjs-node lane) a test named `name` fails instead.
 */
export function reportTfjsNodeMissing(message: string, name: string): void {
  if (process.env.REQUIRE_TFJS_NODE === '1') {
    test(name, () => {
      throw new Error(`${message}; REQUIRE_TFJS_NODE=1 makes this a failure`);
    });
  } else {
    process.stderr.write(`\n!!! ${message} !!!\n\n`);
    test.skip(message, () => undefined);
  }
}
