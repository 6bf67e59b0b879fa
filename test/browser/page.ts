/**
 * The test page's script, bundled by esbuild (./serve.ts) with tfjs, its
 * webgl, webgpu and wasm backends, the package's browser build (dist/index.mjs)
 * and the parity suite. It exposes `window.tfjsNormTest`; the jest side
 * (./parity.test.ts, ./threaded.test.ts, bench/browser.ts) calls it with
 * page.evaluate and asserts the results.
 *
 * `?half=1` in the page URL turns WEBGL_RENDER_FLOAT32_ENABLED off before
 * any backend starts: half-float textures, as on many phones. `?su=1` sets
 * WEBGL_USE_SHAPES_UNIFORMS (fewer shader compilations; see parity.test.ts).
 * `?probe=1` watches the SIMD module (./simd_probe.ts); `?cores=N` and
 * `?threads=N` size the threaded wasm build's pool (below); `?isolated=0`
 * (read by the server) serves the page without COOP/COEP.
 */
import '@tensorflow/tfjs-backend-webgpu';

import * as tf from '@tensorflow/tfjs';
import {getThreadsCount, setThreadsCount, setWasmPaths} from '@tensorflow/tfjs-backend-wasm';
import * as lib from 'tfjs-normalization';

import fixtureFile from '../fixtures/reference-cases.json';
import type {FixtureCase} from '../parity/cases';
import {normals, rng} from '../reference';
import {checkRunningStats, Lib, ParityOptions, ParityRecord, ParityReport, runParity, RunningStatsFixture, TF, useBackend} from '../parity/suite';
import {runWsParity, WsRecord} from '../parity/ws';
import runningStatsFile from '../fixtures/instance-norm-running-stats.json';
import {FusedRecord, runFusedGpuCheck} from '../parity/gpu_fused';
import {BnInferenceRecord, runBnInferenceCheck} from '../parity/bn_inference';
import {MovingUpdateRecord, runMovingUpdateCheck} from '../parity/moving_update';
import {runFamilyParity} from '../parity/family';
import {BrowserBenchResult, runBrowserBench} from '../../bench/browser_page';
import {BnBenchResult, runBatchNormBench} from '../../bench/batch_norm_core';
import {runWasmSimdCheck, simdInstanceSummary, WasmBuildInfo, wasmBuildInfo, WasmSimdRecord} from '../parity/wasm_simd';
import {installSimdProbe} from './simd_probe';

const halfFloat = new URLSearchParams(location.search).get('half') === '1';
if (halfFloat) tf.env().set('WEBGL_RENDER_FLOAT32_ENABLED', false);
if (new URLSearchParams(location.search).get('su') === '1') tf.env().set('WEBGL_USE_SHAPES_UNIFORMS', true);
setWasmPaths(new URL('/wasm/', location.href).href);
// `?probe=1`: watch the package's SIMD module (./simd_probe.ts), before any kernel instantiates it.
const probe = new URLSearchParams(location.search).get('probe') === '1';
if (probe) installSimdProbe();
// `?cores=N`: navigator.hardwareConcurrency reads N. The threaded build sizes its
// thread pool (XNNPACK's) at hardwareConcurrency / 2, at most 8, whatever
// setThreadsCount asks: on a 2-core machine, 1 thread. `?threads=N`: setThreadsCount(N).
const cores = Number(new URLSearchParams(location.search).get('cores') ?? 0);
if (cores > 0) Object.defineProperty(navigator, 'hardwareConcurrency', {get: () => cores});
const threads = Number(new URLSearchParams(location.search).get('threads') ?? 0);
if (threads > 0) setThreadsCount(threads);

const fixtures = (fixtureFile as unknown as {cases: FixtureCase[]}).cases;
const runningStatsFixture = runningStatsFile as unknown as RunningStatsFixture;
// The page's tf and the package's must be one instance (one engine, one registry).
const tfjs = tf as unknown as TF;
const pkg = lib as unknown as Lib;

export interface TrainResult {
  backend: string;
  layer: string;
  losses: number[];
  /** Per route: weights and predictions after save -> load, compared exactly. */
  routes: RouteResult[];
  leaked: number;
}

export interface RouteResult {
  url: string;
  /** Every weight, in order: max |saved - loaded| (0 when identical). */
  maxWeightDiff: number;
  weightNames: string[];
  loadedWeightNames: string[];
  /** max |predict(original) - predict(loaded)|. */
  maxPredDiff: number;
  /** The class names in the loaded model's layers. */
  classNames: string[];
  leaked: number;
}

async function maxDiff(a: tf.Tensor[], b: tf.Tensor[]): Promise<number> {
  if (a.length !== b.length) return Infinity;
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    if (a[i].shape.join() !== b[i].shape.join()) return Infinity;
    const [x, y] = [await a[i].data(), await b[i].data()];
    for (let j = 0; j < x.length; j++) {
      const d = Math.abs(x[j] - y[j]);
      if (!(d <= m)) m = Number.isNaN(d) ? Infinity : d;
    }
  }
  return m;
}

/** Saves to each route, loads back, and compares weights and predictions exactly. */
async function roundTrip(model: tf.LayersModel, x: tf.Tensor, name: string): Promise<RouteResult[]> {
  const out: RouteResult[] = [];
  for (const scheme of ['indexeddb://', 'localstorage://']) {
    const url = `${scheme}tfjs-normalization-test-${name}`;
    const before = tf.memory().numTensors;
    await model.save(url);
    const loaded = await tf.loadLayersModel(url);
    const p0 = model.predict(x) as tf.Tensor;
    const p1 = loaded.predict(x) as tf.Tensor;
    out.push({
      url,
      maxWeightDiff: await maxDiff(model.getWeights(), loaded.getWeights()),
      weightNames: model.weights.map((w) => w.name),
      loadedWeightNames: loaded.weights.map((w) => w.name),
      maxPredDiff: await maxDiff([p0], [p1]),
      classNames: loaded.layers.map((l) => l.getClassName()),
      leaked: 0,
    });
    tf.dispose([p0, p1]);
    loaded.dispose();
    await tf.io.removeModel(url);
    out[out.length - 1].leaked = tf.memory().numTensors - before;
  }
  return out;
}

const seeded = (shape: number[], seed: number, mean = 0, std = 1) =>
  tf.tensor(normals(rng(seed), shape.reduce((a, b) => a * b, 1), mean, std), shape);

/**
 * dense -> layerNormalization or groupNormalization -> dense, trained with
 * model.fit for a few steps; then saved to and loaded from indexeddb:// and
 * localstorage://.
 */
async function train(backend: string, layer: 'layerNormalization'|'groupNormalization', epochs: number): Promise<TrainResult> {
  await useBackend(tfjs, backend);
  const before = tf.memory().numTensors;
  const norm = layer === 'layerNormalization' ? lib.layers.layerNormalization() : lib.layers.groupNormalization({groups: 4});
  const model = tf.sequential({
    layers: [
      tf.layers.dense({inputShape: [8], units: 16, activation: 'relu', kernelInitializer: tf.initializers.glorotNormal({seed: 1})}),
      norm,
      tf.layers.dense({units: 1, kernelInitializer: tf.initializers.glorotNormal({seed: 2})}),
    ],
  });
  model.compile({optimizer: tf.train.adam(0.02), loss: 'meanSquaredError'});
  const x = seeded([64, 8], 3);
  const w = seeded([8, 1], 4);
  const y = tf.tidy(() => tf.add(tf.matMul(x, w), tf.sin(tf.sum(x, 1, true))));
  const history = await model.fit(x, y, {epochs, batchSize: 16, shuffle: false, verbose: 0});
  const losses = history.history.loss.map(Number);
  const routes = await roundTrip(model, x, `train-${layer}`);
  tf.dispose([x, w, y]);
  model.optimizer.dispose();  // Adam's moments; model.dispose() leaves the optimizer alone
  model.dispose();
  return {backend, layer, losses, routes, leaked: tf.memory().numTensors - before};
}

/** Each of the package's layers, in a small model with non-trivial weights, through both routes. */
async function saveLoadLayers(backend: string): Promise<Array<{layer: string, routes: RouteResult[], leaked: number}>> {
  await useBackend(tfjs, backend);
  const makers: Array<[string, () => tf.layers.Layer]> = [
    ['GroupNormalization', () => lib.layers.groupNormalization({groups: 2, inputShape: [3, 4, 6]})],
    ['InstanceNormalization', () => lib.layers.instanceNormalization({axis: 1, inputShape: [3, 4, 6]})],
    ['LayerNormalization', () => lib.layers.layerNormalization({axis: [1, 3], inputShape: [3, 4, 6]})],
    ['LayerNormalization(rms)', () => lib.layers.layerNormalization({rms: true, inputShape: [3, 4, 6]})],
    ['RMSNormalization', () => lib.layers.rmsNormalization({axis: [2, 3], inputShape: [3, 4, 6]})],
    ['BatchNormalization', () => lib.layers.batchNormalization({axis: 1, inputShape: [3, 4, 6]})],
    ['BatchNormalization(renorm)', () => lib.layers.batchNormalization({renorm: true, renormClipping: {rmax: 2}, inputShape: [3, 4, 6]})],
  ];
  const out = [];
  for (const [name, make] of makers) {
    const before = tf.memory().numTensors;
    const model = tf.sequential({layers: [make(), tf.layers.dense({units: 5})]});
    // Variances and standard deviations (BatchNormalization's statistics) positive.
    const values = model.weights.map((v, i) => (/(variance|stddev)(_\d+)?$/.test(v.name) ?
        tf.tidy(() => tf.add(tf.abs(seeded(v.shape as number[], 10 + i, 0.5, 1)), 0.1)) : seeded(v.shape as number[], 10 + i, 0.5, 1)));
    model.setWeights(values);
    tf.dispose(values);
    const x = seeded([2, 3, 4, 6], 99, 1, 2);
    const routes = await roundTrip(model, x, name.replace(/\W/g, ''));
    x.dispose();
    model.dispose();
    out.push({layer: name, routes, leaked: tf.memory().numTensors - before});
  }
  return out;
}

export interface PageApi {
  halfFloat: boolean;
  runParity(opts: Omit<ParityOptions, 'fixtures'|'log'>): Promise<ParityReport&{log: string[]}>;
  train(backend: string, layer: 'layerNormalization'|'groupNormalization', epochs: number): Promise<TrainResult>;
  saveLoadLayers(backend: string): Promise<Array<{layer: string, routes: RouteResult[], leaked: number}>>;
  /** The fused GPU kernels against the tf-op path and float64 (test/parity/gpu_fused.ts). */
  fusedGpu(backend: string, only?: string[], webglRows?: boolean): Promise<{backend: string, info: string, records: FusedRecord[]}>;
  /** BatchNormalization's moving-statistics update on this backend: its kernel (webgl, webgpu) and the layer (test/parity/moving_update.ts). */
  movingUpdate(backend: string): Promise<MovingUpdateRecord>;
  /** BatchNormalization's inference path and its gradient on this backend (test/parity/bn_inference.ts). */
  bnInference(backend: string): Promise<BnInferenceRecord[]>;
  /** bench/browser_page.ts on one backend (npm run bench:browser). */
  bench(backend: string, rounds: number, only?: string[]): Promise<BrowserBenchResult[]>;
  /** bench/batch_norm_core.ts on one backend (npx tsx bench/batch_norm.ts --browser). */
  benchBatchNorm(backend: string, rounds: number, steps?: number, shape?: number[]): Promise<BnBenchResult>;
  /** Whether a training step of a conv net runs on this backend, and the error when not. */
  convTrainStep(backend: string): Promise<string>;
  /** InstanceNormalization running statistics against PyTorch on this backend. */
  runningStats(backend: string): Promise<{maxErr: number, leaked: number}>;
  /** The family parity suite (test/parity/family.ts). */
  runFamilyParity(backends: string[], tol?: Record<string, number>): Promise<{records: ParityRecord[], log: string[]}>;
  /** Weight standardization (op, WSConv2D, WSConv1D) against float64 on this backend (test/parity/ws.ts). */
  wsParity(backend: string): Promise<WsRecord[]>;
  /** The wasm build the page got: isolation, SharedArrayBuffer, binary, threads (test/parity/wasm_simd.ts). */
  wasmBuild(): Promise<WasmBuildInfo>;
  /** The wasm fused kernels on the SIMD loops against the JS loops, the tf-op path and float64 (`?probe=1` pages). */
  wasmSimd(only?: string[]): Promise<{records: WasmSimdRecord[], instances: ReturnType<typeof simdInstanceSummary>}>;
  /** The SIMD instances seen so far (`?probe=1` pages). */
  simdInstances(): Promise<ReturnType<typeof simdInstanceSummary>>;
}

declare global {
  interface Window {
    tfjsNormTest: PageApi;
  }
}

window.tfjsNormTest = {
  halfFloat,
  runParity: async (opts) => {
    const log: string[] = [];
    const report = await runParity(tfjs, pkg, {halfFloat, ...opts, fixtures, log: (l) => log.push(l)});
    return {...report, log};
  },
  train,
  saveLoadLayers,
  runFamilyParity: async (backends, tol) => {
    const log: string[] = [];
    const records = await runFamilyParity(tfjs, pkg, {backends, tol, halfFloat, log: (l) => log.push(l)});
    return {records, log};
  },
  runningStats: async (backend) => {
    await useBackend(tfjs, backend);
    return checkRunningStats(tfjs, pkg, runningStatsFixture);
  },
  wsParity: async (backend) => {
    await useBackend(tfjs, backend);
    return runWsParity(tfjs, pkg);
  },
  wasmBuild: async () => {
    await useBackend(tfjs, 'wasm');
    return wasmBuildInfo(tfjs, getThreadsCount);
  },
  wasmSimd: async (only) => {
    if (!probe) throw new Error('wasmSimd needs the page opened with ?probe=1');
    await useBackend(tfjs, 'wasm');
    const records = await runWasmSimdCheck(tfjs, pkg, only);
    return {records, instances: simdInstanceSummary(tfjs)};
  },
  simdInstances: async () => {
    await useBackend(tfjs, 'wasm');
    return simdInstanceSummary(tfjs);
  },
  fusedGpu: async (backend, only, webglRows) => {
    await useBackend(tfjs, backend);
    const info = backend === 'webgl' ? `WEBGL_RENDER_FLOAT32_ENABLED ${String(tf.env().getBool('WEBGL_RENDER_FLOAT32_ENABLED'))}` : '';
    return {backend: tf.getBackend(), info, records: await runFusedGpuCheck(tfjs, pkg, {only, webglRows})};
  },
  movingUpdate: async (backend) => {
    await useBackend(tfjs, backend);
    return runMovingUpdateCheck(tfjs, pkg);
  },
  bnInference: async (backend) => {
    await useBackend(tfjs, backend);
    return runBnInferenceCheck(tfjs, pkg);
  },
  bench: async (backend, rounds, only) => {
    await useBackend(tfjs, backend);
    return runBrowserBench(tfjs, pkg, rounds, only);
  },
  benchBatchNorm: async (backend, rounds, steps, shape) => {
    await useBackend(tfjs, backend);
    return runBatchNormBench(tfjs, pkg, rounds, undefined, steps, shape);
  },
  convTrainStep: async (backend) => {
    await useBackend(tfjs, backend);
    const k = tf.variable(seeded([3, 3, 2, 4], 5));
    const x = seeded([1, 5, 5, 2], 6);
    try {
      const {value, grads} = tf.variableGrads(() => tf.sum(tf.conv2d(x as tf.Tensor4D, k as tf.Tensor4D, 1, 'same')) as tf.Scalar, [k]);
      tf.dispose([value, ...Object.values(grads)]);
      return 'ok';
    } catch (e) {
      return (e as Error).message;
    } finally {
      tf.dispose([k, x]);
    }
  },
};
