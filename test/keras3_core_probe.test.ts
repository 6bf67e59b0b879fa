/**
 * GroupNormalization, LayerNormalization (rmsScaling too) and
 * RMSNormalization against Keras 3.15 in float64 on adversarial inputs
 * (test/fixtures/keras3-core-probe.json, made by
 * scripts/make-keras3-core-probe-fixtures.py; needs no Python): each layer
 * built from Keras's own get_config() has Keras's weight names and shapes and
 * writes Keras's config keys; y and the gradients with respect to x and every
 * weight match Keras's within 2e-5 of the tensor's largest value, on cpu and
 * wasm, on the SIMD loops, the JS loops and the tf-op path. Masked cases: x
 * and dy carry NaN or 1e30 at masked time steps; the reference is Keras on
 * each sample's valid steps alone (Keras 3.15's own GroupNormalization and
 * LayerNormalization pass a mask on but keep the masked steps in their
 * statistics; see docs/guarantees.md), dx is 0 at masked steps.
 */
import * as tf from '@tensorflow/tfjs';
import {setWasmPaths} from '@tensorflow/tfjs-backend-wasm';
import * as fs from 'fs';
import * as path from 'path';

import {GroupNormalization, LayerNormalization, RMSNormalization} from '../src';
import {FUSED_FLAG, SIMD_FLAG} from '../src/kernels/index';
import {withFlags} from './helpers';

type Arr = Array<number|null>;
interface ProbeCase {
  name: string;
  kind: 'gn'|'ln'|'rms';
  args: Record<string, unknown>;
  shape: number[];
  x: Arr;
  dy: Arr;
  mask?: number[];
  weightNames: string[];
  weightShapes?: number[][];
  weights: number[][];
  config?: Record<string, unknown>;
  y: number[];
  dx: number[];
  dw: number[][];
}

const FIXTURE = JSON.parse(fs.readFileSync(path.join(__dirname, 'fixtures', 'keras3-core-probe.json'), 'utf8')) as {
  meta: {keras: string}, cases: ProbeCase[],
};
const wasmDist = path.join(path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'dist') + path.sep;
const PATHS: Array<[string, Record<string, boolean>]> = [
  ['SIMD loops', {[FUSED_FLAG]: true, [SIMD_FLAG]: true}],
  ['JS loops', {[FUSED_FLAG]: true, [SIMD_FLAG]: false}],
  ['tf-op path', {[FUSED_FLAG]: false}],
];

const camel = (s: string) => s.replace(/_([a-z])/g, (_m, c: string) => c.toUpperCase());
const snake = (s: string) => s.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
const decode = (a: Arr): number[] => a.map((v) => (v === null ? NaN : v));

/** max |a - r| over the positions `keep` selects, divided by max |r| there (r from float64, compared as is). */
function scaledErr(a: ArrayLike<number>, r: number[], keep: (i: number) => boolean = () => true): number {
  let scale = 0;
  let e = 0;
  for (let i = 0; i < r.length; i++) if (keep(i)) scale = Math.max(scale, Math.abs(r[i]));
  for (let i = 0; i < r.length; i++) {
    if (!keep(i)) continue;
    const d = Math.abs(a[i] - r[i]);
    if (Number.isNaN(d)) return NaN;
    e = Math.max(e, scale === 0 ? d : d / scale);
  }
  return e;
}

/** The layer Keras's config describes (its initializers etc. are the defaults, left out). */
function layerOf(c: ProbeCase, source: Record<string, unknown>): tf.layers.Layer {
  const args: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(source)) {
    if (!/_(initializer|regularizer|constraint)$/.test(k)) args[camel(k)] = v;
  }
  if (c.kind === 'gn') return new GroupNormalization(args);
  if (c.kind === 'ln') return new LayerNormalization(args);
  return new RMSNormalization(args);
}

beforeAll(async () => {
  setWasmPaths(wasmDist);
  await tf.setBackend('cpu');
});

test('the fixture is Keras 3.15\'s and has the cases', () => {
  expect(FIXTURE.meta.keras).toBe('3.15.1');
  const names = FIXTURE.cases.map((c) => c.name);
  expect(names.filter((n) => n.startsWith('masked')).length).toBe(12);
  expect(names.filter((n) => /1e-20|1e20/.test(n)).length).toBeGreaterThanOrEqual(10);
});

const UNMASKED = FIXTURE.cases.filter((c) => !c.mask);
test.each(UNMASKED.map((c) => [c.name, c] as const))(
    'built from Keras\'s config: Keras\'s weight names, shapes and config keys: %s', (_n, c) => {
      const layer = layerOf(c, c.config as Record<string, unknown>);
      layer.build(c.shape);
      expect(layer.weights.map((w) => w.originalName.split('/').pop())).toEqual(c.weightNames);
      expect(layer.weights.map((w) => w.shape)).toEqual(c.weightShapes);
      const keys = Object.keys(layer.getConfig()).map(snake).filter((k) => !['name', 'trainable', 'dtype'].includes(k));
      expect(keys).toEqual(Object.keys(c.config as object));
      layer.weights.forEach((w) => w.dispose());
    });

describe.each([['cpu'], ['wasm']])('%s backend', (backend) => {
  beforeAll(async () => {
    expect(await tf.setBackend(backend)).toBe(true);
  });
  afterAll(async () => {
    await tf.setBackend('cpu');
  });

  test.each(FIXTURE.cases.map((c) => [c.name, c] as const))('%s: y, dx, every weight gradient', (_n, c) => {
    // Keras's constructor arguments (so that the defaults are this package's own).
    const layer = layerOf(c, c.args);
    layer.build(c.shape);
    expect(layer.weights.map((w) => w.originalName.split('/').pop())).toEqual(c.weightNames);
    // Keras's and this package's weights mean the same bytes (reshaped onto the axes).
    const init = c.weights.map((w, i) => tf.tensor(w, layer.weights[i].shape as number[]));
    layer.setWeights(init);
    tf.dispose(init);
    const channels = c.shape[c.shape.length - 1];
    const valid = c.mask ? (i: number) => c.mask?.[Math.floor(i / channels)] !== 0 : () => true;
    const before = tf.memory().numTensors;
    for (const [pathName, flags] of PATHS) {
      withFlags(flags, () => {
        const x0 = tf.tensor(decode(c.x), c.shape);
        const x = tf.variable(x0, true);
        x0.dispose();
        const mask = c.mask ? tf.tensor(c.mask, c.shape.slice(0, 2)) : null;
        // dy is a don't-care at masked steps: 0 there (its garbage must not matter: it is also fed).
        const dy = tf.tidy(() => {
          const raw = tf.tensor(decode(c.dy), c.shape);
          return mask ? tf.where(tf.cast(tf.expandDims(mask, -1), 'bool'), raw, tf.zerosLike(raw)) : raw;
        });
        const opts = mask ? {mask} : {};
        const y = layer.apply(x, opts) as tf.Tensor;
        const vars = [x, ...layer.trainableWeights.map((w) => w.read() as tf.Variable)];
        const {value, grads} = tf.variableGrads(
            () => tf.sum(tf.mul(layer.apply(x, opts) as tf.Tensor, dy)) as tf.Scalar, vars);
        const at = `${pathName}`;
        expect([at, 'y', scaledErr(y.dataSync(), c.y, valid) < 2e-5]).toEqual([at, 'y', true]);
        // dx everywhere: Keras's valid-steps gradient, 0 at masked steps.
        expect([at, 'dx', scaledErr(grads[x.name].dataSync(), c.dx) < 2e-5]).toEqual([at, 'dx', true]);
        layer.trainableWeights.forEach((w, i) => {
          const e = scaledErr(grads[(w.read() as tf.Variable).name].dataSync(), c.dw[i]);
          expect([at, c.weightNames[i], e < 2e-5]).toEqual([at, c.weightNames[i], true]);
        });
        tf.dispose([x, dy, y, value, ...Object.values(grads), ...(mask ? [mask] : [])]);
      });
    }
    expect(tf.memory().numTensors).toBe(before);
    layer.weights.forEach((w) => w.dispose());
  });
});
