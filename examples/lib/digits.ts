/**
 * The digits data set (data/digits.csv.gz: 1797 real 8x8 handwritten
 * digits, UCI "Optical Recognition of Handwritten Digits", CC BY 4.0; see
 * data/README.md), parsed and split the same way for every example and
 * test. This module runs anywhere (Node and the browser); reading the file
 * is left to `digits-node.ts` (Node) and the browser page.
 */
import * as tf from '@tensorflow/tfjs';

export const IMAGE_SIZE = 8;
export const NUM_CLASSES = 10;
/** Pixels are integers 0..16 in the file; they are scaled to 0..1. */
export const PIXEL_MAX = 16;

export interface Digits {
  /** n * 64 pixels, row-major, scaled to [0, 1]. */
  images: Float32Array;
  /** n labels 0..9. */
  labels: Int32Array;
  count: number;
}

export interface DigitsSplit {
  train: Digits;
  validation: Digits;
}

/** Parses the CSV text: one image a row, 64 pixels then the label, no header. */
export function parseDigitsCsv(text: string): Digits {
  const rows = text.split(/\r?\n/).filter((line) => line.trim() !== '');
  const n = rows.length;
  const images = new Float32Array(n * 64);
  const labels = new Int32Array(n);
  rows.forEach((line, i) => {
    const cells = line.split(',');
    if (cells.length !== 65) {
      throw new Error(`digits: row ${i + 1} has ${cells.length} values; expected 65 (64 pixels and a label)`);
    }
    for (let j = 0; j < 64; j++) {
      const v = Number(cells[j]);
      if (!Number.isInteger(v) || v < 0 || v > PIXEL_MAX) {
        throw new Error(`digits: row ${i + 1}, pixel ${j} is '${cells[j]}'; expected an integer 0..${PIXEL_MAX}`);
      }
      images[i * 64 + j] = v / PIXEL_MAX;
    }
    const label = Number(cells[64]);
    if (!Number.isInteger(label) || label < 0 || label >= NUM_CLASSES) {
      throw new Error(`digits: row ${i + 1} has label '${cells[64]}'; expected an integer 0..9`);
    }
    labels[i] = label;
  });
  return {images, labels, count: n};
}

/** mulberry32: a small, fast, seeded PRNG returning floats in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6D2B79F5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A seeded Fisher-Yates permutation of 0..n-1. */
export function permutation(n: number, seed: number): Int32Array {
  const p = Int32Array.from({length: n}, (_, i) => i);
  const rand = mulberry32(seed);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    const t = p[i];
    p[i] = p[j];
    p[j] = t;
  }
  return p;
}

/** The rows of d at the given indices, in that order. */
export function subset(d: Digits, indices: ArrayLike<number>): Digits {
  const images = new Float32Array(indices.length * 64);
  const labels = new Int32Array(indices.length);
  for (let k = 0; k < indices.length; k++) {
    const i = indices[k];
    images.set(d.images.subarray(i * 64, i * 64 + 64), k * 64);
    labels[k] = d.labels[i];
  }
  return {images, labels, count: indices.length};
}

export const SPLIT_SEED = 20180322;  // Wu & He's arXiv submission date
export const VALIDATION_FRACTION = 0.2;

/**
 * The fixed split every example and test uses: a seeded, per-class
 * (stratified) shuffle; 20% of each class goes to validation. For the 1797
 * digits that is 1438 training and 359 validation images.
 */
export function splitDigits(d: Digits, seed = SPLIT_SEED, validationFraction = VALIDATION_FRACTION): DigitsSplit {
  const order = permutation(d.count, seed);
  const train: number[] = [];
  const validation: number[] = [];
  for (let c = 0; c < NUM_CLASSES; c++) {
    const ofClass = Array.from(order).filter((i) => d.labels[i] === c);
    const nVal = Math.round(ofClass.length * validationFraction);
    validation.push(...ofClass.slice(0, nVal));
    train.push(...ofClass.slice(nVal));
  }
  // Interleave classes: sort each list by its position in the permutation.
  const rank = new Int32Array(d.count);
  order.forEach((i, k) => {
    rank[i] = k;
  });
  train.sort((a, b) => rank[a] - rank[b]);
  validation.sort((a, b) => rank[a] - rank[b]);
  return {train: subset(d, train), validation: subset(d, validation)};
}

/** Images as a [n, 8, 8, 1] tensor and labels one-hot as [n, 10]. */
export function toTensors(d: Digits): {xs: tf.Tensor4D, ys: tf.Tensor2D} {
  const xs = tf.tensor4d(d.images, [d.count, IMAGE_SIZE, IMAGE_SIZE, 1]);
  const ys = tf.tidy(() => tf.oneHot(tf.tensor1d(d.labels, 'int32'), NUM_CLASSES).toFloat() as tf.Tensor2D);
  return {xs, ys};
}

/** Accuracy of a model's predictions on d, in [0, 1]; leaks nothing. */
export function accuracy(model: tf.LayersModel, d: Digits, batchSize = 128): number {
  const predicted = predictLabels(model, d, batchSize);
  let correct = 0;
  for (let i = 0; i < d.count; i++) if (predicted[i] === d.labels[i]) correct++;
  return correct / d.count;
}

/** The predicted class of every image of d. */
export function predictLabels(model: tf.LayersModel, d: Digits, batchSize = 128): Int32Array {
  return tf.tidy(() => {
    const xs = tf.tensor4d(d.images, [d.count, IMAGE_SIZE, IMAGE_SIZE, 1]);
    const probs = model.predict(xs, {batchSize}) as tf.Tensor;
    return tf.argMax(probs, -1).dataSync() as Int32Array;
  });
}
