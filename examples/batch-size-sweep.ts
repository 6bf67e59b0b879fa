/**
 * Wu & He (2018), Figure 1, in miniature (npm run sweep; add -- --quick for
 * a one-minute smoke run).
 *
 * The same small CNN (examples/lib/cnn.ts) is trained on the digits with
 * BatchNormalization, GroupNormalization (4 groups), LayerNormalization
 * (GroupNormalization with 1 group, i.e. over C, H, W as in the paper) and
 * InstanceNormalization, at batch sizes 32, 16, 8, 4 and 2, with several
 * seeds each. As in the paper, every run has the same number of epochs and
 * the learning rate scales linearly with the batch size
 * (lr = 0.1 * batch / 32, SGD with momentum 0.9). BatchNorm is evaluated
 * with its moving statistics (model.predict), as it would be used at
 * inference.
 *
 * Writes <out>.json (every run and the summary), <out>.md (the table of
 * validation error, mean ± std), <out>.svg and <out>.png (the chart).
 * Default <out>: tmp/batch-size-sweep (tmp/batch-size-sweep-quick with --quick),
 * ignored by git; --write (full run) updates the committed docs/batch-size-sweep.
 *
 * Options: --quick, --epochs N, --seeds N, --batch-sizes 32,16,..,
 * --norms batch,group,layer,instance, --train-size N, --backend wasm|cpu,
 * --out PREFIX.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import {SingleBar} from 'cli-progress';

import {renderSvg, svgToPng, sweepChartSpec} from './lib/chart';
import {buildDigitsCnn, disposeOptimizer, fitEpochSeeded, NORM_LABELS, NormKind} from './lib/cnn';
import {useFastConvFilterGrad} from './lib/conv-filter-grad';
import {accuracy, Digits, subset, toTensors} from './lib/digits';
import {loadDigitsSplit} from './lib/digits-node';
import {markdownTable, RunResult, summarize} from './lib/sweep';

const ROOT = path.resolve(__dirname, '..');
const BASE_LR = 0.1;
const BASE_BATCH = 32;
const MOMENTUM = 0.9;
const GROUPS = 4;

interface Options {
  quick: boolean;
  epochs: number;
  seeds: number;
  batchSizes: number[];
  norms: NormKind[];
  trainSize: number|null;
  backend: string;
  out: string;
}

function parseArgs(argv: string[]): Options {
  const get = (name: string): string|undefined => {
    const i = argv.indexOf(`--${name}`);
    if (i < 0) return undefined;
    const v = argv[i + 1];
    if (v === undefined || v.startsWith('--')) throw new Error(`batch-size-sweep: option --${name} needs a value`);
    return v;
  };
  const known = new Set(['quick', 'epochs', 'seeds', 'batch-sizes', 'norms', 'train-size', 'backend', 'out', 'write']);
  argv.filter((a) => a.startsWith('--')).forEach((a) => {
    if (!known.has(a.slice(2))) throw new Error(`batch-size-sweep: unknown option '${a}'; expected one of --${[...known].join(', --')}`);
  });
  const int = (name: string, dflt: number, min: number): number => {
    const v = get(name);
    if (v === undefined) return dflt;
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) throw new Error(`batch-size-sweep: --${name} is '${v}'; expected an integer >= ${min}`);
    return n;
  };
  const quick = argv.includes('--quick');
  const batchSizes = (get('batch-sizes') ?? '32,16,8,4,2').split(',').map(Number);
  batchSizes.forEach((b) => {
    if (!Number.isInteger(b) || b < 1) throw new Error(`batch-size-sweep: --batch-sizes has '${b}'; expected positive integers`);
  });
  const norms = (get('norms') ?? 'batch,group,layer,instance').split(',') as NormKind[];
  norms.forEach((n) => {
    if (!(n in NORM_LABELS)) throw new Error(`batch-size-sweep: --norms has '${n}'; expected batch, group, layer or instance`);
  });
  const trainSize = get('train-size') === undefined ? (quick ? 480 : null) : int('train-size', 0, 32);
  return {
    quick,
    epochs: int('epochs', quick ? 1 : 5, 1),
    seeds: int('seeds', quick ? 1 : 3, 1),
    batchSizes,
    norms,
    trainSize,
    backend: get('backend') ?? 'wasm',
    out: path.resolve(ROOT, get('out') ?? (quick ? 'tmp/batch-size-sweep-quick' : argv.includes('--write') ? 'docs/batch-size-sweep' : 'tmp/batch-size-sweep')),
  };
}

async function trainOne(norm: NormKind, batchSize: number, seed: number, train: Digits, validation: Digits,
                        epochs: number): Promise<RunResult> {
  const t0 = Date.now();
  const model = buildDigitsCnn({norm, groups: GROUPS, seed});
  const learningRate = BASE_LR * batchSize / BASE_BATCH;
  const optimizer = tf.train.momentum(learningRate, MOMENTUM);
  model.compile({optimizer, loss: 'categoricalCrossentropy'});
  const {xs, ys} = toTensors(train);
  let trainLoss = NaN;
  for (let e = 0; e < epochs; e++) trainLoss = await fitEpochSeeded(model, xs, ys, batchSize, seed * 1000 + e);
  // model.predict runs the layers in inference mode: BatchNorm uses its moving mean and variance.
  const validationError = 100 * (1 - accuracy(model, validation));
  tf.dispose([xs, ys]);
  model.dispose();
  disposeOptimizer(optimizer);
  return {
    norm: NORM_LABELS[norm], batchSize, seed, learningRate, steps: epochs * Math.ceil(train.count / batchSize), trainLoss,
    validationError, seconds: (Date.now() - t0) / 1000,
  };
}

async function main(): Promise<void> {
  const opts = parseArgs(process.argv.slice(2));
  useFastConvFilterGrad();
  if (!(await tf.setBackend(opts.backend)) || tf.getBackend() !== opts.backend) {
    console.warn(`backend '${opts.backend}' is not available; using cpu`);
    await tf.setBackend('cpu');
  }
  await tf.ready();
  const split = loadDigitsSplit();
  const train = opts.trainSize == null ? split.train : subset(split.train, Array.from({length: Math.min(opts.trainSize, split.train.count)}, (_, i) => i));
  const {validation} = split;
  const seeds = Array.from({length: opts.seeds}, (_, i) => i + 1);
  console.log(`tfjs ${tf.version.tfjs}, backend ${tf.getBackend()}; ${train.count} training and ${validation.count} validation digits; ` +
              `${opts.epochs} epoch(s) per run, lr = ${BASE_LR} * batch / ${BASE_BATCH}, ${opts.seeds} seeds${opts.quick ? ' (--quick)' : ''}`);

  const jobs: Array<[NormKind, number, number]> = [];
  for (const seed of seeds) for (const b of opts.batchSizes) for (const n of opts.norms) jobs.push([n, b, seed]);
  const bar = new SingleBar({
    format: 'sweep [{bar}] {value}/{total} runs | {run} | elapsed {duration_formatted} | eta {eta_formatted}',
    etaBuffer: 8, hideCursor: true, noTTYOutput: true, notTTYSchedule: 15000,
  });
  bar.start(jobs.length, 0, {run: ''});
  const t0 = Date.now();
  const results: RunResult[] = [];
  const before = tf.memory().numTensors;
  for (const [norm, batchSize, seed] of jobs) {
    bar.update({run: `${NORM_LABELS[norm]} batch ${batchSize} seed ${seed}`});
    results.push(await trainOne(norm, batchSize, seed, train, validation, opts.epochs));
    bar.increment();
  }
  bar.stop();
  const seconds = (Date.now() - t0) / 1000;
  const leaked = tf.memory().numTensors - before;
  if (leaked !== 0) throw new Error(`batch-size-sweep: ${leaked} tensors leaked`);

  const summary = summarize(results);
  const norms = opts.norms.map((n) => NORM_LABELS[n]);
  const table = markdownTable(summary, norms, opts.batchSizes);
  const setup = `${train.count} training / ${validation.count} validation digits, ${opts.epochs} epoch${opts.epochs > 1 ? 's' : ''}, ` +
                `${opts.seeds} seed${opts.seeds > 1 ? 's' : ''} per point, lr = 0.1 × batch / 32`;
  fs.mkdirSync(path.dirname(opts.out), {recursive: true});
  const json = {
    command: process.argv.length > 2 ? `npm run sweep -- ${process.argv.slice(2).join(' ')}` : 'npm run sweep',
    date: new Date().toISOString(),
    tfjs: tf.version.tfjs,
    backend: tf.getBackend(),
    machine: `${os.cpus().length} x ${os.cpus()[0]?.model ?? 'unknown cpu'}, node ${process.version}`,
    seconds,
    setup: {
      model: 'conv3x3(16) -> norm -> relu -> conv3x3(32, stride 2) -> norm -> relu -> dense(10)',
      groups: GROUPS, trainImages: train.count, validationImages: validation.count, epochs: opts.epochs,
      seeds, batchSizes: opts.batchSizes, optimizer: `SGD momentum ${MOMENTUM}`, learningRate: `${BASE_LR} * batch / ${BASE_BATCH}`,
      batchNormEvaluation: 'moving statistics (inference mode)',
    },
    summary,
    runs: results,
  };
  fs.writeFileSync(`${opts.out}.json`, JSON.stringify(json, null, 2) + '\n');
  fs.writeFileSync(`${opts.out}.md`,
      `${table}\n${setup}; ${json.backend} backend, ${seconds.toFixed(0)} s on ${json.machine}. ` +
      `Reproduce: \`${json.command}\`.\n`);
  const svg = await renderSvg(sweepChartSpec(summary, 'Digits CNN: validation error vs batch size', setup));
  fs.writeFileSync(`${opts.out}.svg`, svg);
  const png = await svgToPng(svg);
  if (png) fs.writeFileSync(`${opts.out}.png`, png);
  console.log(`\n${table}\n${setup}\nfinished in ${seconds.toFixed(0)} s; wrote ${path.relative(ROOT, opts.out)}.{json,md,svg${png ? ',png' : ''}}`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
