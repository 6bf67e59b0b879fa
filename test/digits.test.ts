/** The digits data module the examples share, and the examples' conv filter-gradient kernel. */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';

import {useFastConvFilterGrad} from '../examples/lib/conv-filter-grad';
import {parseDigitsCsv, permutation, splitDigits} from '../examples/lib/digits';
import {loadDigits, loadDigitsSplit} from '../examples/lib/digits-node';
import {maxAbsDiff} from './helpers';

test('data/digits.csv.gz: 1797 images of 64 pixels in [0, 1], labels 0..9, about 180 per class', () => {
  const d = loadDigits();
  expect(d.count).toBe(1797);
  expect(d.images.length).toBe(1797 * 64);
  expect(Math.min(...d.images)).toBe(0);
  expect(Math.max(...d.images)).toBe(1);
  const counts = new Array(10).fill(0);
  d.labels.forEach((l) => counts[l]++);
  expect(counts).toEqual([178, 182, 177, 183, 181, 182, 181, 179, 174, 180]);
  // The first row of the file: 0,0,5,13,9,1,0,0,... label 0.
  expect(Array.from(d.images.slice(0, 8), (v) => v * 16)).toEqual([0, 0, 5, 13, 9, 1, 0, 0]);
  expect(d.labels[0]).toBe(0);
});

test('the split is fixed, stratified and disjoint: 1438 / 359, the same every time', () => {
  const a = loadDigitsSplit();
  const b = loadDigitsSplit();
  expect([a.train.count, a.validation.count]).toEqual([1438, 359]);
  expect(maxAbsDiff(a.validation.images, b.validation.images)).toBe(0);
  expect(Array.from(a.validation.labels)).toEqual(Array.from(b.validation.labels));
  const perClass = new Array(10).fill(0);
  a.validation.labels.forEach((l) => perClass[l]++);
  perClass.forEach((c) => expect(c).toBeGreaterThanOrEqual(35));
  // Disjoint: no validation image appears in training (compare rows as strings).
  const rows = (imgs: Float32Array, n: number) => Array.from({length: n}, (_, i) => imgs.slice(i * 64, i * 64 + 64).join());
  const trainRows = new Set(rows(a.train.images, a.train.count));
  const dupes = rows(a.validation.images, a.validation.count).filter((r) => trainRows.has(r));
  // The UCI set itself has a few duplicate images; the split must not add any beyond those.
  const all = rows(loadDigits().images, 1797);
  expect(dupes.length).toBeLessThanOrEqual(all.length - new Set(all).size);
  // Another seed gives another split.
  const c = splitDigits(loadDigits(), 1);
  expect(Array.from(c.validation.labels)).not.toEqual(Array.from(a.validation.labels));
});

test('permutation is a seeded permutation; parse errors name the row and the value', () => {
  const p = permutation(100, 5);
  expect([...p].sort((x, y) => x - y)).toEqual(Array.from({length: 100}, (_, i) => i));
  expect(Array.from(permutation(100, 5))).toEqual(Array.from(p));
  expect(() => parseDigitsCsv('1,2,3\n')).toThrow('digits: row 1 has 3 values; expected 65 (64 pixels and a label)');
  const row = new Array(64).fill('0');
  row[5] = '17';
  expect(() => parseDigitsCsv([...row, '3'].join(','))).toThrow("digits: row 1, pixel 5 is '17'; expected an integer 0..16");
  expect(() => parseDigitsCsv([...new Array(64).fill('0'), '10'].join(','))).toThrow("digits: row 1 has label '10'; expected an integer 0..9");
});

describe('examples/lib/conv-filter-grad: the fast Conv2DBackpropFilter', () => {
  type Shape4 = [number, number, number, number];
  const cases: Array<[string, Shape4, Shape4, number|[number, number], 'same'|'valid']> = [
    ['3x3 same stride 1', [3, 8, 8, 1], [3, 3, 1, 16], 1, 'same'],
    ['3x3 same stride 2', [2, 8, 8, 16], [3, 3, 16, 32], 2, 'same'],
    ['2x3 valid strides [1, 2]', [2, 7, 9, 3], [2, 3, 3, 5], [1, 2], 'valid'],
    ['5x5 same stride 3, odd sizes', [1, 10, 11, 2], [5, 5, 2, 4], 3, 'same'],
  ];

  async function filterGrad(backend: string, xShape: Shape4, wShape: Shape4, strides: number|[number, number], pad: 'same'|'valid') {
    await tf.setBackend(backend);
    const x = tf.randomNormal(xShape, 0, 1, 'float32', 1) as tf.Tensor4D;
    const w = tf.randomNormal(wShape, 0, 1, 'float32', 2) as tf.Tensor4D;
    const y = tf.conv2d(x, w, strides, pad);
    const dy = tf.randomNormal(y.shape, 0, 1, 'float32', 3) as tf.Tensor4D;
    const before = tf.memory().numTensors;
    const dw = tf.grad((ww: tf.Tensor) => tf.sum(tf.mul(tf.conv2d(x, ww as tf.Tensor4D, strides, pad), dy)))(w);
    const values = await dw.data();
    dw.dispose();
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([x, w, y, dy]);
    return values;
  }

  test.each(cases)('%s: cpu and wasm match the built-in cpu kernel', async (_name, xShape, wShape, strides, pad) => {
    const builtIn = await filterGrad('cpu', xShape, wShape, strides, pad);
    const restore = useFastConvFilterGrad();
    try {
      const fastCpu = await filterGrad('cpu', xShape, wShape, strides, pad);
      expect(maxAbsDiff(fastCpu, builtIn)).toBeLessThan(1e-4 * Math.max(1, ...Array.from(builtIn, Math.abs)));
      const fastWasm = await filterGrad('wasm', xShape, wShape, strides, pad);
      expect(tf.getBackend()).toBe('wasm');
      expect(maxAbsDiff(fastWasm, builtIn)).toBeLessThan(1e-4 * Math.max(1, ...Array.from(builtIn, Math.abs)));
    } finally {
      restore();
      await tf.setBackend('cpu');
    }
    // Restored: the built-in kernel is back, wasm has none again.
    expect(tf.getKernel('Conv2DBackpropFilter', 'wasm')).toBeUndefined();
  });
});
