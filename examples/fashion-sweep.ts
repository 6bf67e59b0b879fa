/**
 * Wu & He (2018), Figure 1, on Fashion-MNIST (npm run sweep:fashion; add
 * -- --quick for a smoke run under a minute).
 *
 * A small ResNet-style CNN (examples/lib/resnet.ts) is trained with
 * BatchNormalization, GroupNormalization (8 groups), GroupNormalization with
 * weight-standardized convs (WSConv2D), LayerNormalization (GroupNorm with
 * one group, over C, H, W as in the paper) and InstanceNormalization, at
 * batch sizes 32, 16, 8, 4 and 2, with 3 seeds each. As in the paper, every
 * run has the same number of epochs and the learning rate scales linearly
 * with the batch (lr = 0.1 * batch / 32, SGD with momentum 0.9); BatchNorm
 * is evaluated with its moving statistics (model.predict, inference mode).
 *
 * The data: the `fashion-mnist` devDependency (see examples/lib/fashion.ts
 * and data/README.md), a fixed seeded stratified split of
 * --train-per-class training and --validation-per-class validation images.
 *
 * Backend: 'tensorflow' (tfjs-node) when it loads: from node_modules, from
 * NODE_PATH, from $TFJS_NODE_MODULES, or from the test lane's cached build
 * (scripts/tfjs-node-local.sh); else wasm with the examples' conv
 * filter-gradient kernel (examples/lib/conv-filter-grad.ts). --backend
 * picks one.
 *
 * Results are written after every run (so an interrupted sweep leaves what
 * it finished, with `complete: false`): <out>.json (every run and the
 * summary), <out>.md (the table), <out>.svg and <out>.png (the chart).
 * Default <out>: tmp/fashion-sweep (tmp/fashion-sweep-quick with --quick),
 * ignored by git; --write (full run) writes docs/fashion-sweep instead.
 *
 * Options: --quick, --epochs N, --seeds N, --batch-sizes 32,16,..,
 * --norms batch,group,group-ws,layer,instance, --groups G,
 * --train-per-class N, --validation-per-class N, --backend B, --out PREFIX,
 * --write, --only-seed S (that seed only: one process per seed can run side
 * by side), --merge a.json,b.json (combine such runs into one result),
 * --resume a.json,... (take the runs already there; jobs run in the order
 * of --batch-sizes, so e.g. --batch-sizes 2,4,8,16,32 runs batch 2 first).
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';

import {renderSvg, svgToPng, sweepChartSpec} from './lib/chart';
import {disposeOptimizer, fitEpochSeeded} from './lib/cnn';
import {useFastConvFilterGrad} from './lib/conv-filter-grad';
import {fashionAccuracy, fashionTensors, Images, loadFashionSplit} from './lib/fashion';
import {buildFashionResNet, SWEEP_NORM_LABELS, SweepNorm} from './lib/resnet';
import {markdownTable, RunResult, summarize} from './lib/sweep';

const ROOT = path.resolve(__dirname, '..');
const BASE_LR = 0.1;
const BASE_BATCH = 32;
const MOMENTUM = 0.9;
const WHO = 'fashion-sweep';

export interface Options {
  quick: boolean;
  epochs: number;
  seeds: number;
  batchSizes: number[];
  norms: SweepNorm[];
  groups: number;
  trainPerClass: number;
  validationPerClass: number;
  backend: string|null;
  out: string;
  write: boolean;
  /** Run this seed only (e.g. one process per seed, side by side; then --merge). */
  onlySeed: number|null;
  /** Merge the results of these JSON files instead of training. */
  merge: string[]|null;
  /** Runs already in these JSON files (same setup) are taken from them, not trained again. */
  resume: string[];
}

function parseArgs(argv: string[]): Options {
  const known = new Set(['quick', 'epochs', 'seeds', 'batch-sizes', 'norms', 'groups', 'train-per-class', 'validation-per-class',
    'backend', 'out', 'write', 'only-seed', 'merge', 'resume']);
  const flags = new Set(['quick', 'write']);
  argv.forEach((a, i) => {
    if (a.startsWith('--')) {
      if (!known.has(a.slice(2))) throw new Error(`${WHO}: unknown option '${a}'; expected one of --${[...known].join(', --')}`);
    } else if (i === 0 || !argv[i - 1].startsWith('--') || flags.has(argv[i - 1].slice(2))) {
      throw new Error(`${WHO}: unexpected argument '${a}'`);
    }
  });
  const get = (name: string): string|undefined => {
    const i = argv.indexOf(`--${name}`);
    if (i < 0) return undefined;
    const v = argv[i + 1];
    if (v === undefined || v.startsWith('--')) throw new Error(`${WHO}: option --${name} needs a value`);
    return v;
  };
  const int = (name: string, dflt: number, min: number): number => {
    const v = get(name);
    if (v === undefined) return dflt;
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) throw new Error(`${WHO}: --${name} is '${v}'; expected an integer >= ${min}`);
    return n;
  };
  const quick = argv.includes('--quick');
  const write = argv.includes('--write');
  if (quick && write) throw new Error(`${WHO}: --quick and --write do not go together (a smoke run never updates docs/)`);
  const batchSizes = (get('batch-sizes') ?? (quick ? '8,2' : '32,16,8,4,2')).split(',').map(Number);
  batchSizes.forEach((b) => {
    if (!Number.isInteger(b) || b < 1) throw new Error(`${WHO}: --batch-sizes has '${b}'; expected positive integers`);
  });
  const norms = (get('norms') ?? 'batch,group,group-ws,layer,instance').split(',') as SweepNorm[];
  norms.forEach((n) => {
    if (!(n in SWEEP_NORM_LABELS)) throw new Error(`${WHO}: --norms has '${n}'; expected ${Object.keys(SWEEP_NORM_LABELS).join(', ')}`);
  });
  const backend = get('backend') ?? null;
  const mergeArg = get('merge');
  return {
    onlySeed: get('only-seed') === undefined ? null : int('only-seed', 1, 1),
    merge: mergeArg === undefined ? null : mergeArg.split(','),
    resume: (get('resume') ?? '').split(',').filter((f) => f !== ''),
    quick,
    write,
    epochs: int('epochs', quick ? 1 : 2, 1),
    seeds: int('seeds', quick ? 1 : 3, 1),
    batchSizes,
    norms,
    groups: int('groups', 8, 1),
    trainPerClass: int('train-per-class', quick ? 8 : 300, 1),
    validationPerClass: int('validation-per-class', quick ? 10 : 300, 1),
    backend,
    out: path.resolve(ROOT, get('out') ?? (quick ? 'tmp/fashion-sweep-quick' : write ? 'docs/fashion-sweep' : 'tmp/fashion-sweep')),
  };
}

/** Loads tfjs-node if it can be found (see the header); returns whether it did. */
function loadTfjsNode(): boolean {
  const tryRequire = (): boolean => {
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      require('@tensorflow/tfjs-node');
      return true;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'MODULE_NOT_FOUND') throw e;
      return false;
    }
  };
  if (tryRequire()) return true;
  const cache = path.join(process.env.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache'), 'tfjs-normalization',
                          'tfjs-node-4.22.0-tf-2.21.0');
  const candidates = [process.env.TFJS_NODE_MODULES, fs.existsSync(path.join(cache, '.built')) ? path.join(cache, 'prefix', 'node_modules') : undefined];
  for (const dir of candidates) {
    if (dir == null || !fs.existsSync(path.join(dir, '@tensorflow', 'tfjs-node', 'package.json'))) continue;
    // tfjs-node must resolve @tensorflow/tfjs from this repository (one tfjs engine): both go on NODE_PATH.
    process.env.NODE_PATH = [dir, path.join(ROOT, 'node_modules'), process.env.NODE_PATH].filter(Boolean).join(path.delimiter);
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    (require('module') as {Module: {_initPaths(): void}}).Module._initPaths();
    if (tryRequire()) return true;
  }
  return false;
}

async function pickBackend(want: string|null): Promise<string> {
  useFastConvFilterGrad();
  if (want === 'tensorflow' || want == null) {
    if (!loadTfjsNode()) {
      if (want === 'tensorflow') throw new Error(`${WHO}: --backend tensorflow, but @tensorflow/tfjs-node cannot be loaded`);
    }
  }
  const order = want != null ? [want] : ['tensorflow', 'wasm', 'cpu'];
  for (const b of order) {
    if (tf.findBackendFactory(b) == null) continue;
    if (await tf.setBackend(b)) {
      await tf.ready();
      return tf.getBackend();
    }
  }
  throw new Error(`${WHO}: backend '${want}' is not available`);
}

async function trainOne(norm: SweepNorm, batchSize: number, seed: number, groups: number,
                        train: {xs: tf.Tensor, ys: tf.Tensor, count: number}, validation: Images, epochs: number): Promise<RunResult> {
  const t0 = Date.now();
  const model = buildFashionResNet({norm, groups, seed});
  const learningRate = BASE_LR * batchSize / BASE_BATCH;
  const optimizer = tf.train.momentum(learningRate, MOMENTUM);
  model.compile({optimizer, loss: 'categoricalCrossentropy'});
  let trainLoss = NaN;
  for (let e = 0; e < epochs; e++) trainLoss = await fitEpochSeeded(model, train.xs, train.ys, batchSize, seed * 1000 + e);
  // model.predict runs the layers in inference mode: BatchNorm uses its moving mean and variance.
  const validationError = 100 * (1 - fashionAccuracy(model, validation));
  model.dispose();
  disposeOptimizer(optimizer);
  return {
    norm: SWEEP_NORM_LABELS[norm], batchSize, seed, learningRate, steps: epochs * Math.ceil(train.count / batchSize), trainLoss,
    validationError, seconds: (Date.now() - t0) / 1000,
  };
}

/** What <out>.json holds. */
interface SweepJson {
  command: string;
  date: string;
  complete: boolean;
  runsDone: number;
  runsPlanned: number;
  seedsComplete: number;
  tfjs: string;
  backend: string;
  machine: string;
  loadavgAtEnd: number[];
  /** Wall seconds of the sweep; merged: of each process (they ran side by side). */
  seconds: number;
  processSeconds?: number[];
  setupText: string;
  setup: {trainImages: number, validationImages: number, epochs: number, seeds: number[], batchSizes: number[], norms: string[],
          groups: number, [key: string]: unknown};
  summary: ReturnType<typeof summarize>;
  runs: RunResult[];
}

/** Writes <out>.json, .md, .svg and .png from a sweep's results. */
async function writeOutputs(out: string, json: SweepJson): Promise<void> {
  const {setup} = json;
  const status = json.complete ? '' :
      ` **Partial: ${json.runsDone} of ${json.runsPlanned} runs (${json.seedsComplete} of ${setup.seeds.length} seeds complete).**`;
  const table = markdownTable(json.summary, setup.norms, setup.batchSizes, !json.complete);
  const time = json.processSeconds ? `${json.processSeconds.map((x) => x.toFixed(0)).join(' s, ')} s (processes side by side)` : `${json.seconds.toFixed(0)} s`;
  fs.mkdirSync(path.dirname(out), {recursive: true});
  fs.writeFileSync(`${out}.json`, JSON.stringify(json, null, 2) + '\n');
  fs.writeFileSync(`${out}.md`,
      `${table}\n${json.setupText}; ${json.backend} backend, ${time} on ${json.machine}.${status} Reproduce: \`${json.command}\`.\n`);
  const svg = await renderSvg(sweepChartSpec(json.summary, 'Fashion-MNIST ResNet: validation error vs batch size',
                                             `${json.setupText}${json.complete ? '' : ` (partial: ${json.runsDone}/${json.runsPlanned} runs)`}`));
  fs.writeFileSync(`${out}.svg`, svg);
  const png = await svgToPng(svg);
  if (png) fs.writeFileSync(`${out}.png`, png);
}

/** A setup without its seeds and batch sizes: sweeps with equal keys can be merged or resumed. */
function setupKey(setup: SweepJson['setup']): string {
  return JSON.stringify({...setup, seeds: null, batchSizes: null});
}

/** Whether every (norm, batch size, seed) of the setup has a run. */
function completeness(setup: SweepJson['setup'], runs: RunResult[]): {planned: number, seedsComplete: number} {
  const has = (n: string, b: number, s: number) => runs.some((r) => r.norm === n && r.batchSize === b && r.seed === s);
  const seedsComplete = setup.seeds.filter((s) => setup.norms.every((n) => setup.batchSizes.every((b) => has(n, b, s)))).length;
  return {planned: setup.norms.length * setup.batchSizes.length * setup.seeds.length, seedsComplete};
}

/**
 * --merge a.json,b.json,...: the runs of sweeps that ran side by side (e.g.
 * one process per seed with --only-seed) as one result. Their setups must
 * agree except for the seeds; a (norm, batch, seed) present twice is taken
 * from the first file.
 */
async function merge(files: string[], out: string, command: string): Promise<void> {
  const parts = files.map((f) => JSON.parse(fs.readFileSync(path.resolve(ROOT, f), 'utf8')) as SweepJson);
  const key = (p: SweepJson) => setupKey(p.setup);
  parts.forEach((p, i) => {
    if (key(p) !== key(parts[0])) throw new Error(`${WHO}: --merge: ${files[i]} has another setup than ${files[0]}`);
  });
  const runs: RunResult[] = [];
  for (const p of parts) {
    for (const r of p.runs) {
      if (!runs.some((x) => x.norm === r.norm && x.batchSize === r.batchSize && x.seed === r.seed)) runs.push(r);
    }
  }
  runs.sort((a, b) => a.seed - b.seed || b.batchSize - a.batchSize || parts[0].setup.norms.indexOf(a.norm) - parts[0].setup.norms.indexOf(b.norm));
  const seeds = [...new Set(parts.flatMap((p) => p.setup.seeds))].sort((a, b) => a - b);
  const batchSizes = [...new Set(parts.flatMap((p) => p.setup.batchSizes))].sort((a, b) => b - a);
  const setup = {...parts[0].setup, seeds, batchSizes};
  const {planned, seedsComplete} = completeness(setup, runs);
  await writeOutputs(out, {
    ...parts[0], setupText: parts.find((p) => p.setupText != null)?.setupText ?? parts[0].setupText, command, date: new Date().toISOString(), complete: runs.length === planned, runsDone: runs.length, runsPlanned: planned,
    seedsComplete, seconds: Math.max(...parts.map((p) => p.seconds)), processSeconds: parts.map((p) => p.seconds),
    loadavgAtEnd: os.loadavg(), setup, summary: summarize(runs), runs,
  });
  console.log(`${fs.readFileSync(`${out}.md`, 'utf8')}\nmerged ${files.length} files: wrote ${path.relative(ROOT, out)}.{json,md,svg,png}`);
}

async function main(): Promise<void> {
  const opts = parseArgs(process.argv.slice(2));
  const command = `npm run sweep:fashion${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`;
  if (opts.merge != null) return merge(opts.merge, opts.out, command);
  const backend = await pickBackend(opts.backend);
  const tLoad = Date.now();
  const {train, validation} = loadFashionSplit(opts.trainPerClass, opts.validationPerClass);
  const loadSeconds = (Date.now() - tLoad) / 1000;
  const seeds = opts.onlySeed != null ? [opts.onlySeed] : Array.from({length: opts.seeds}, (_, i) => i + 1);
  const setupText = `${train.count} training / ${validation.count} validation Fashion-MNIST images, ${opts.epochs} epoch${opts.epochs > 1 ? 's' : ''}, ` +
                    `lr = 0.1 × batch / 32, GroupNorm ${opts.groups} groups`;
  console.log(`tfjs ${tf.version.tfjs}, backend ${backend}; ${setupText}; seed(s) ${seeds.join(', ')}${opts.quick ? ' (--quick)' : ''}; ` +
              `data loaded in ${loadSeconds.toFixed(1)} s`);

  // Seeds outermost: a sweep stopped early has whole seeds done.
  const jobs: Array<[SweepNorm, number, number]> = [];
  for (const seed of seeds) for (const b of opts.batchSizes) for (const n of opts.norms) jobs.push([n, b, seed]);
  const t0 = Date.now();
  const results: RunResult[] = [];
  const before = tf.memory().numTensors;
  const trainT = {...fashionTensors(train), count: train.count};
  const norms = opts.norms.map((n) => SWEEP_NORM_LABELS[n]);
  const setup = {
    model: 'ResNet-style: conv3x3(16,/2)-norm-relu, residual block(16), conv3x3(32,/2)-norm-relu, residual block(32), ' +
           'global average pool, dense(10)',
    data: 'fashion-mnist npm package 1.1.0, seeded stratified split',
    groups: opts.groups, trainImages: train.count, validationImages: validation.count, epochs: opts.epochs,
    seeds, batchSizes: opts.batchSizes, norms, optimizer: `SGD momentum ${MOMENTUM}`, learningRate: `${BASE_LR} * batch / ${BASE_BATCH}`,
    batchNormEvaluation: 'moving statistics (inference mode), momentum 0.9',
    weightStandardization: 'WSConv2D, epsilon 1e-5, on every conv of the GroupNorm+WS network',
  };
  const writeOut = async (complete: boolean): Promise<void> => {
    const {planned, seedsComplete} = completeness(setup, results);
    await writeOutputs(opts.out, {
      command, date: new Date().toISOString(), complete, runsDone: results.length, runsPlanned: planned, seedsComplete,
      tfjs: tf.version.tfjs, backend, machine: `${os.cpus().length} x ${os.cpus()[0]?.model ?? 'unknown cpu'}, node ${process.version}`,
      loadavgAtEnd: os.loadavg(), seconds: (Date.now() - t0) / 1000, setupText, setup, summary: summarize(results), runs: results,
    });
  };

  for (const f of opts.resume) {
    const prev = JSON.parse(fs.readFileSync(path.resolve(ROOT, f), 'utf8')) as SweepJson;
    if (setupKey(prev.setup) !== setupKey(setup)) throw new Error(`${WHO}: --resume: ${f} has another setup`);
    for (const r of prev.runs) {
      const wanted = jobs.some(([n, b, sd]) => SWEEP_NORM_LABELS[n] === r.norm && b === r.batchSize && sd === r.seed);
      if (wanted && !results.some((x) => x.norm === r.norm && x.batchSize === r.batchSize && x.seed === r.seed)) results.push(r);
    }
    console.log(`resumed ${results.length} runs from ${opts.resume.join(', ')}`);
  }
  for (const [norm, batchSize, seed] of jobs) {
    if (results.some((x) => x.norm === SWEEP_NORM_LABELS[norm] && x.batchSize === batchSize && x.seed === seed)) continue;
    const r = await trainOne(norm, batchSize, seed, opts.groups, trainT, validation, opts.epochs);
    results.push(r);
    console.log(`[${results.length}/${jobs.length}] ${r.norm} batch ${batchSize} seed ${seed}: validation error ${r.validationError.toFixed(2)}%, ` +
                `train loss ${r.trainLoss.toFixed(3)}, ${r.seconds.toFixed(1)} s (elapsed ${((Date.now() - t0) / 1000).toFixed(0)} s)`);
    if (!opts.quick) await writeOut(false);
  }
  tf.dispose([trainT.xs, trainT.ys]);
  const leaked = tf.memory().numTensors - before;
  if (leaked !== 0) throw new Error(`${WHO}: ${leaked} tensors leaked`);
  await writeOut(true);
  console.log(`\n${fs.readFileSync(`${opts.out}.md`, 'utf8')}\nwrote ${path.relative(ROOT, opts.out)}.{json,md,svg,png}`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
