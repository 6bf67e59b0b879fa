/**
 * The browser example: loads the package on WebGL (falling back to wasm,
 * then cpu; ?backend=NAME forces one; ?epochs=, ?batch=, ?train= set the
 * epochs (3), the batch size (32) and how many training digits to use (all)), trains the digits CNN with
 * GroupNormalization in the page, draws the loss curve (vega) and a grid of
 * predictions, saves the model to indexeddb:// and reloads it.
 *
 * The outcome is published as `window.digitsExample` for the Playwright
 * test (test/example-browser.test.ts).
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-webgl';
import {setWasmPaths} from '@tensorflow/tfjs-backend-wasm';
import wasmUrl from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm?url';
import wasmSimdUrl from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-simd.wasm?url';
import wasmThreadedUrl from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-threaded-simd.wasm?url';
import * as vega from 'vega';
import {GroupNormalization} from 'tfjs-normalization';

import digitsUrl from '../../data/digits.csv.gz?url';
import {buildDigitsCnn} from '../lib/cnn';
import {useFastConvFilterGrad} from '../lib/conv-filter-grad';
import {Digits, parseDigitsCsv, predictLabels, splitDigits, subset, toTensors} from '../lib/digits';

export interface DigitsExampleResult {
  done: boolean;
  error?: string;
  backend: string;
  tried: string[];
  epochs: number;
  losses: number[];
  epochLosses: number[];
  accuracy: number;
  reloadedAccuracy: number;
  predictionsEqual: boolean;
  maxProbabilityDifference: number;
  reloadedLayerClasses: string[];
  leakedTensors: number;
  seconds: number;
}

declare global {
  interface Window {
    digitsExample?: DigitsExampleResult;
  }
}

const $ = (id: string) => document.getElementById(id) as HTMLElement;
const status = (text: string) => {
  $('status').textContent = text;
};

async function pickBackend(): Promise<string[]> {
  setWasmPaths({
    'tfjs-backend-wasm.wasm': wasmUrl, 'tfjs-backend-wasm-simd.wasm': wasmSimdUrl,
    'tfjs-backend-wasm-threaded-simd.wasm': wasmThreadedUrl,
  });
  const forced = new URLSearchParams(location.search).get('backend');
  const tried: string[] = [];
  for (const name of forced ? [forced] : ['webgl', 'wasm', 'cpu']) {
    tried.push(name);
    try {
      if (await tf.setBackend(name) && tf.getBackend() === name) break;
    } catch (e) {
      console.warn(`backend ${name} failed:`, e);
    }
  }
  return tried;
}

/** Fetches data/digits.csv.gz; gunzips it unless the server already did. */
async function fetchDigits(): Promise<Digits> {
  const bytes = new Uint8Array(await (await fetch(digitsUrl)).arrayBuffer());
  let text: string;
  if (bytes[0] === 0x1f && bytes[1] === 0x8b) {
    const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream('gzip'));
    text = await new Response(stream).text();
  } else {
    text = new TextDecoder().decode(bytes);
  }
  return parseDigitsCsv(text);
}

function lossChart(el: HTMLElement): vega.View {
  const spec: vega.Spec = {
    $schema: 'https://vega.github.io/schema/vega/v5.json',
    width: 360, height: 220, padding: 5,
    data: [{name: 'loss', values: []}],
    scales: [
      {name: 'x', type: 'linear', domain: {data: 'loss', field: 'step'}, range: 'width', zero: false},
      {name: 'y', type: 'linear', domain: {data: 'loss', field: 'loss'}, range: 'height', zero: true, nice: true},
    ],
    axes: [
      {orient: 'bottom', scale: 'x', title: 'batch'},
      {orient: 'left', scale: 'y', title: 'cross-entropy loss'},
    ],
    marks: [{
      type: 'line', from: {data: 'loss'},
      encode: {
        enter: {stroke: {value: '#e45756'}, strokeWidth: {value: 1.5}},
        update: {x: {scale: 'x', field: 'step'}, y: {scale: 'y', field: 'loss'}},
      },
    }],
  };
  const view = new vega.View(vega.parse(spec), {renderer: 'svg', container: el, hover: false});
  void view.runAsync();
  return view;
}

function drawGrid(d: Digits, predicted: Int32Array, count: number): void {
  const grid = $('grid');
  grid.innerHTML = '';
  for (let i = 0; i < count; i++) {
    const cell = document.createElement('div');
    cell.className = 'cell' + (predicted[i] === d.labels[i] ? '' : ' wrong');
    const canvas = document.createElement('canvas');
    canvas.width = 8;
    canvas.height = 8;
    const ctx = canvas.getContext('2d') as CanvasRenderingContext2D;
    const img = ctx.createImageData(8, 8);
    for (let p = 0; p < 64; p++) {
      const v = 255 - Math.round(255 * d.images[i * 64 + p]);
      img.data.set([v, v, v, 255], p * 4);
    }
    ctx.putImageData(img, 0, 0);
    const label = document.createElement('div');
    label.textContent = `${predicted[i]}` + (predicted[i] === d.labels[i] ? '' : ` (is ${d.labels[i]})`);
    cell.append(canvas, label);
    grid.append(cell);
  }
}

async function main(): Promise<void> {
  const t0 = performance.now();
  const params = new URLSearchParams(location.search);
  const epochs = Number(params.get('epochs') ?? 3);
  const batchSize = Number(params.get('batch') ?? 32);
  const trainSize = params.get('train') == null ? null : Number(params.get('train'));
  useFastConvFilterGrad();  // gives the wasm backend the conv filter gradient it lacks
  const tried = await pickBackend();
  const backend = tf.getBackend();
  $('backend').textContent = backend;
  $('backend-note').textContent = tried.length > 1 ? `(tried ${tried.join(' → ')})` : '';

  status('Loading digits…');
  const split = splitDigits(await fetchDigits());
  const {validation} = split;
  const train = trainSize == null ? split.train : subset(split.train, Array.from({length: Math.min(trainSize, split.train.count)}, (_, i) => i));
  const {xs, ys} = toTensors(train);
  const before = tf.memory().numTensors;

  const model = buildDigitsCnn({norm: 'group', groups: 4, seed: 7});
  const optimizer = tf.train.adam(0.01);
  model.compile({optimizer, loss: 'categoricalCrossentropy', metrics: ['accuracy']});
  const chart = lossChart($('loss-chart'));
  const losses: number[] = [];
  const epochLosses: number[] = [];
  const steps = Math.ceil(train.count / batchSize);
  await model.fit(xs, ys, {
    epochs, batchSize, shuffle: true, verbose: 0,
    callbacks: {
      onBatchEnd: async (batch, logs) => {
        const loss = logs?.loss ?? NaN;
        losses.push(loss);
        if (batch % 4 === 0) await chart.data('loss', losses.map((l, i) => ({step: i + 1, loss: l}))).runAsync();
        status(`Training on ${train.count} digits: epoch ${Math.floor((losses.length - 1) / steps) + 1}/${epochs}, ` +
               `batch ${batch + 1}/${steps}, loss ${loss.toFixed(4)}`);
      },
      onEpochEnd: async (_epoch, logs) => {
        epochLosses.push(logs?.loss ?? NaN);
      },
    },
  });
  await chart.data('loss', losses.map((l, i) => ({step: i + 1, loss: l}))).runAsync();

  status('Saving to indexeddb://digits-groupnorm and reloading…');
  const predict = (m: tf.LayersModel) => tf.tidy(() => {
    const x = tf.tensor4d(validation.images, [validation.count, 8, 8, 1]);
    return (m.predict(x) as tf.Tensor).dataSync() as Float32Array;
  });
  const probs = predict(model);
  const labels = predictLabels(model, validation);
  await model.save('indexeddb://digits-groupnorm');
  const reloaded = await tf.loadLayersModel('indexeddb://digits-groupnorm');
  const probs2 = predict(reloaded);
  const labels2 = predictLabels(reloaded, validation);
  let maxDiff = 0;
  probs.forEach((p, i) => {
    maxDiff = Math.max(maxDiff, Math.abs(p - probs2[i]));
  });
  const acc = (l: Int32Array) => l.reduce((n, v, i) => n + (v === validation.labels[i] ? 1 : 0), 0) / validation.count;
  drawGrid(validation, labels2, 48);
  const reloadedLayerClasses = reloaded.layers.map((l) => l.getClassName());
  if (!reloaded.layers.some((l) => l instanceof GroupNormalization)) throw new Error('reloaded model has no GroupNormalization layer');
  model.dispose();
  reloaded.dispose();
  optimizer.dispose();
  const leakedTensors = tf.memory().numTensors - before;
  tf.dispose([xs, ys]);

  const result: DigitsExampleResult = {
    done: true, backend, tried, epochs, losses, epochLosses, accuracy: acc(labels), reloadedAccuracy: acc(labels2),
    predictionsEqual: labels.every((v, i) => v === labels2[i]), maxProbabilityDifference: maxDiff, reloadedLayerClasses,
    leakedTensors, seconds: (performance.now() - t0) / 1000,
  };
  status(`Done in ${result.seconds.toFixed(1)} s on ${backend}. Loss ${losses[0].toFixed(3)} → ${losses[losses.length - 1].toFixed(3)} ` +
         `(epoch means ${epochLosses.map((l) => l.toFixed(3)).join(', ')}).\n` +
         `Validation accuracy ${(100 * result.accuracy).toFixed(1)}%; reloaded from indexeddb:// ` +
         `${(100 * result.reloadedAccuracy).toFixed(1)}%, predictions ${result.predictionsEqual ? 'identical' : 'DIFFERENT'} ` +
         `(max probability difference ${maxDiff.toExponential(1)}).`);
  window.digitsExample = result;
}

main().catch((e: Error) => {
  status(`Failed: ${e.message}`);
  window.digitsExample = {
    done: true, error: `${e.message}\n${e.stack ?? ''}`, backend: tf.getBackend() ?? 'none', tried: [], epochs: 0, losses: [],
    epochLosses: [], accuracy: 0, reloadedAccuracy: 0, predictionsEqual: false, maxProbabilityDifference: NaN,
    reloadedLayerClasses: [], leakedTensors: NaN, seconds: 0,
  };
});
