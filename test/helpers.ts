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
  // Float weights get random values; others (a bool flag) keep theirs.
  layer.setWeights(layer.weights.map((w, i) => (w.dtype === 'float32' ? tf.randomUniform(w.shape as number[], 0.5, 1.5, 'float32', 11 + i) : w.read().clone())));
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
 * test lane of scripts/tfjs-node-test.sh sets it); a backend that cannot be
 * set is an error, never a silent fallback to cpu.
 */
export async function useTestBackend(): Promise<string> {
  const name = process.env.TFJS_TEST_BACKEND ?? 'cpu';
  if (name === 'tensorflow') {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    require('@tensorflow/tfjs-node');
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
