/**
 * `npm run bench`: this package's normalizations against the strongest
 * peers a user could pick, in Node, in one run with every variant of a
 * case interleaved round by round (the PyTorch worker and ONNX Runtime
 * included, and every tfjs backend: the bench switches backend per call).
 *
 * Variants:
 * - per tfjs backend (cpu, wasm, tensorflow where tfjs-node loads):
 *   fused: this package (the backend's fused kernel, src/kernels, on its
 *   WebAssembly SIMD loops where they cover the case); read: the same plus
 *   reading every output into a JS array (dataSync); fusedJS: the fused
 *   kernel on its JS loops (TFJS_NORMALIZATION_SIMD off); tfop: the fused
 *   kernels off (the tf-op fallback); naive: the composite a user writes
 *   (5-D reshape, tf.moments, broadcast); bn: the built-in BatchNormalization
 *   training step; builtinLN: the built-in tf.layers.layerNormalization.
 * - torch1 / torchN: PyTorch 2.x (torch.nn.functional group_norm,
 *   layer_norm, rms_norm; NCHW for GN/IN) on 1 thread, and on its default
 *   thread count for reference. From $TORCH_PYTHON, else the venv that
 *   `sh scripts/torch-venv.sh` makes (~/.cache/tfjs-normalization/venv-torch,
 *   torch 2.13 CPU), else Debian's python3-torch (1.13), else skipped loudly.
 * - ortNode / ortWeb: onnxruntime-node (CPU EP) and onnxruntime-web (wasm
 *   EP, SIMD build) on 1 thread, forward only, on one-node ONNX models
 *   built at bench time (bench/onnx_models.ts). Their output always comes
 *   back as a JS array: compare them with the `read` variants.
 *
 * Every variant's output (y; forward + backward: dx, dgamma, dbeta) is
 * checked against float64 (test/reference.ts) on the same data before it is
 * timed; a variant that fails the check is not timed and is reported (the
 * bench exits nonzero if one of this package's variants fails).
 *
 * Timing: each variant is warmed up (250 ms of calls; 40 ms with --quick)
 * and then given as many calls per sample as make about 25 ms (10 ms with
 * --quick; --sample-ms), no cap; the PyTorch worker does the same for its
 * own loop. A warm-up round over every variant is run and dropped, then
 * --rounds rounds (25; 2 with --quick), each running every variant of a
 * case once, in an order shuffled per round (seeded; a variant whose one
 * call takes over 100 ms, the cpu composites, in the first 5 rounds only).
 * A sample is timed in wall clock (reported by default) and in CPU time of
 * the process that ran it (--clock cpu; Node's process.cpuUsage also
 * counts V8's GC threads).
 * Both processes run with the same glibc malloc settings (MALLOC_ENV: this
 * bench reruns itself in a child that has them). Tables: median (p25–p75)
 * over the rounds; ratios are paired (per round, then median and p25–p75
 * over the rounds) beside the ratio of the medians; node.json has every
 * round of both clocks, page faults and GC pauses per call, and the 1-minute
 * load average at the start and end of the rounds.
 * Also: the peak bytes of a forward (tf.profile), fidelity on an input with
 * mean 1e3 and std 1e-2 for every variant that has it, and the
 * memory-bandwidth floor of one fused pass at the copy bandwidth measured in
 * the same run.
 *
 *   npm run bench                    # 25 rounds, cpu, wasm (+ tensorflow where it loads), every peer
 *   npm run bench -- --quick         # CI: 2 short rounds, wasm only (~25 s); never writes bench/results/
 *   npm run bench -- --rounds 11 --backends wasm --no-torch --no-ort
 *   npm run bench -- --backends wasm --lean   # this package's fused op and op + read only, against the peers
 *   npm run bench -- --clock cpu     # report CPU-time medians (default: wall clock, see above)
 *   NODE_PATH=$(bash scripts/tfjs-node-local.sh):node_modules npm run bench -- --backends tensorflow
 *
 * Writes tmp/bench/node.json and tmp/bench/RESULTS.md (tmp/bench/quick/ with
 * --quick; ignored by git); with --write, the committed bench/results/node.json
 * and RESULTS.md.
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';

import {ChildProcessWithoutNullStreams, spawn, spawnSync} from 'node:child_process';
import {existsSync, mkdirSync, readFileSync, writeFileSync} from 'node:fs';
import {cpus, homedir, loadavg} from 'node:os';
import {join} from 'node:path';
import {PerformanceObserver} from 'node:perf_hooks';
import {createInterface} from 'node:readline';

import {buildSync} from 'esbuild';

import type * as Pkg from '../src';
import {RefSpec, axesSpec, groupSpec, normals, refForward, refGrads64, rng} from '../test/reference';
import type {OnnxKind} from './onnx_models';

/**
 * This package as users get it: src/index.ts bundled by esbuild as
 * `npm run build` bundles dist/index.cjs (tsx's per-module transpile of src/
 * adds a getter call to every cross-module call, about 8% of a GroupNorm
 * forward in a profile). @tensorflow/* stay external, so the bundle uses
 * the same tfjs as this file.
 */
function loadPackage(): typeof Pkg {
  const out = join(__dirname, '..', 'tmp', 'bench', 'package.cjs');
  buildSync({entryPoints: [join(__dirname, '..', 'src', 'index.ts')], bundle: true, external: ['@tensorflow/*', 'node:*'],
    target: 'es2020', keepNames: true, logLevel: 'warning', format: 'cjs', platform: 'node', outfile: out});
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require(out) as typeof Pkg;
}

/**
 * glibc's malloc settings of both processes that time things (this one and
 * the PyTorch worker): keep freed memory in the heap instead of returning
 * it to the OS. By default glibc serves big blocks with mmap and gives them
 * back on free (and trims the heap top), and in this VM every fresh 4 KiB
 * page costs ~10 µs to fault in: a 2 MiB output read into a fresh JS array
 * then costs up to 5 ms, in some runs and not in others (glibc's mmap
 * threshold adapts to what was freed before: the same variant took 0 page
 * faults per call in one run and 70-250 in the next). With these, both
 * processes reuse their freed memory, as a long-running one does.
 */
const MALLOC_ENV = {MALLOC_MMAP_THRESHOLD_: '4294967296', MALLOC_TRIM_THRESHOLD_: '4294967296', MALLOC_TOP_PAD_: '536870912'};

// glibc reads them at process start: rerun this bench in a child that has them.
if (process.platform === 'linux' && process.env.MALLOC_MMAP_THRESHOLD_ == null && !process.argv.includes('--no-malloc-env')) {
  const child = spawnSync(process.execPath, [...process.execArgv, ...process.argv.slice(1)],
      {stdio: 'inherit', env: {...process.env, ...MALLOC_ENV}});
  process.exit(child.status ?? 1);
}

const {ops} = loadPackage();
/** The package's documented flags (docs/performance.md): fused kernels, and their WebAssembly SIMD loops. */
const FUSED_FLAG = 'TFJS_NORMALIZATION_FUSED';
const SIMD_FLAG = 'TFJS_NORMALIZATION_SIMD';

type Op = 'gn'|'in'|'ln'|'rms';
type TfVariant = 'fused'|'read'|'fusedJS'|'tfop'|'naive'|'bn'|'builtinLN';
type Peer = 'torch1'|'torchN'|'ortNode'|'ortWeb';

interface Case {
  id: string;
  label: string;
  op: Op;
  shape: number[];
  groups: number;
  grad: boolean;
}

const EPS = 1e-5;
const CASES: Case[] = [
  {id: 'gn-s1', label: 'GroupNorm [8,32,32,64] G=32, forward', op: 'gn', shape: [8, 32, 32, 64], groups: 32, grad: false},
  {id: 'gn-s2', label: 'GroupNorm [2,64,64,128] G=32, forward', op: 'gn', shape: [2, 64, 64, 128], groups: 32, grad: false},
  {id: 'gn-s3', label: 'GroupNorm [32,16,16,32] G=8, forward', op: 'gn', shape: [32, 16, 16, 32], groups: 8, grad: false},
  {id: 'gn-s1-grad', label: 'GroupNorm [8,32,32,64] G=32, forward + backward', op: 'gn', shape: [8, 32, 32, 64], groups: 32, grad: true},
  {id: 'in-s1', label: 'InstanceNorm [8,32,32,64], forward', op: 'in', shape: [8, 32, 32, 64], groups: 64, grad: false},
  {id: 'ln', label: 'LayerNorm [8,128,768], forward', op: 'ln', shape: [8, 128, 768], groups: 0, grad: false},
  {id: 'ln-grad', label: 'LayerNorm [8,128,768], forward + backward', op: 'ln', shape: [8, 128, 768], groups: 0, grad: true},
  {id: 'rms', label: 'RMSNorm [8,128,768], forward', op: 'rms', shape: [8, 128, 768], groups: 0, grad: false},
];

/** Max error against float64, relative to the largest |reference| (at least 1), for a variant to be timed. */
const CHECK_TOL = 1e-3;

function args() {
  const a = process.argv.slice(2);
  const get = (k: string) => {
    const i = a.indexOf(k);
    return i >= 0 ? a[i + 1] : undefined;
  };
  const quick = a.includes('--quick');
  const o = {
    quick,
    rounds: Number(get('--rounds') ?? (quick ? 2 : 25)),
    sampleMs: Number(get('--sample-ms') ?? (quick ? 10 : 25)),
    warmMs: quick ? 40 : 250,
    backends: (get('--backends') ?? (quick ? 'wasm' : 'cpu,wasm,tensorflow')).split(','),
    torch: !a.includes('--no-torch'),
    ort: !a.includes('--no-ort'),
    write: a.includes('--write'),
    clock: (get('--clock') ?? 'wall') as 'cpu'|'wall',
    lean: a.includes('--lean'),
  };
  if (o.clock !== 'cpu' && o.clock !== 'wall') throw new Error(`bench: --clock must be cpu or wall, not ${o.clock}`);
  if (!(o.sampleMs > 0) || !(o.rounds >= 1)) throw new Error('bench: --sample-ms and --rounds must be positive');
  if (o.quick && o.write) throw new Error('bench: --quick never writes bench/results/ (drop --write)');
  return o;
}

const size = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

// ---------------------------------------------------------------- data and float64 references

interface Data {
  x: Float32Array;
  gamma: Float32Array;
  beta: Float32Array;
  dy: Float32Array;
}

/** The same float32 data for every variant: x ~ N(0.5, 2), gamma ~ N(1, 0.3), beta ~ N(0, 1), dy ~ N(0, 1). */
function makeData(c: Case, seed: number): Data {
  const C = c.shape[c.shape.length - 1];
  const r = rng(seed);
  return {x: normals(r, size(c.shape), 0.5, 2), gamma: normals(r, C, 1, 0.3), beta: normals(r, C, 0, 1),
    dy: normals(r, size(c.shape), 0, 1)};
}

function specOf(c: Case): RefSpec {
  switch (c.op) {
    case 'gn': return groupSpec(c.shape, c.groups, c.shape.length - 1, EPS);
    case 'in': return groupSpec(c.shape, c.shape[c.shape.length - 1], c.shape.length - 1, EPS);
    case 'ln': return axesSpec(c.shape, [c.shape.length - 1], EPS, 'center');
    case 'rms': return axesSpec(c.shape, [c.shape.length - 1], EPS, 'rms');
  }
}

/** Batch norm's statistics (per channel, over every other axis), for the BatchNormalization variant. */
function bnSpec(c: Case): RefSpec {
  const C = c.shape[c.shape.length - 1];
  return {shape: c.shape, epsilon: EPS, mode: 'center', numSets: C, setOf: (i) => i % C, paramOf: (i) => i % C};
}

/** Float64 answers: [y] for a forward, [dx, dgamma, dbeta] (RMS: [dx, dgamma]) for forward + backward. */
function reference(spec: RefSpec, c: Case, d: Data, affine = true): Float64Array[] {
  const beta = c.op === 'rms' ? null : d.beta;
  if (!c.grad) return [refForward(spec, d.x, affine ? d.gamma : null, affine ? beta : null)];
  const g = refGrads64(spec, d.x, d.dy, d.gamma);
  return c.op === 'rms' ? [g.dx, g.dgamma] : [g.dx, g.dgamma, g.dbeta];
}

/** Max |a - ref| over every output, relative to max(1, max |ref|) of that output. */
function checkErr(got: ArrayLike<number>[], ref: Float64Array[]): number {
  if (got.length !== ref.length) return Infinity;
  let worst = 0;
  for (let k = 0; k < ref.length; k++) {
    if (got[k].length !== ref[k].length) return Infinity;
    let scale = 1;
    for (let i = 0; i < ref[k].length; i++) scale = Math.max(scale, Math.abs(ref[k][i]));
    let e = 0;
    for (let i = 0; i < ref[k].length; i++) {
      const d = Math.abs(got[k][i] - ref[k][i]);
      if (!(d <= e)) e = Number.isNaN(d) ? Infinity : d;
    }
    worst = Math.max(worst, e / scale);
  }
  return worst;
}

/**
 * NHWC <-> NCHW for the channels-first peers: `shape` is the NHWC shape;
 * toFirst: NHWC data to NCHW, else NCHW data back to NHWC.
 */
function swapLayout(x: ArrayLike<number>, shape: number[], toFirst: boolean): Float32Array {
  const N = shape[0];
  const C = shape[shape.length - 1];
  const S = size(shape) / N / C;
  const out = new Float32Array(x.length);
  for (let n = 0; n < N; n++) {
    for (let s = 0; s < S; s++) {
      for (let c = 0; c < C; c++) {
        const last = (n * S + s) * C + c;
        const first = (n * C + c) * S + s;
        if (toFirst) out[first] = x[last];
        else out[last] = x[first];
      }
    }
  }
  return out;
}

const toNCHW = (x: Float32Array, shape: number[]): Float32Array => swapLayout(x, shape, true);
const toNHWC = (x: ArrayLike<number>, shape: number[]): Float32Array => swapLayout(x, shape, false);

// ---------------------------------------------------------------- a variant: one thing that is timed

/**
 * Milliseconds per call: wall clock, and CPU time of the process that ran
 * it; for this process's variants also the minor page faults per call and
 * the window [t0, t1] (performance.now()) the GC events are matched to.
 */
interface Sample {
  wall: number;
  cpu: number;
  faults?: number;
  t0?: number;
  t1?: number;
}

/**
 * One variant on one case: `time(reps)` the mean per call of `reps` calls;
 * `outputs()` what one call returns; `calibrate` (where the variant times
 * itself, the PyTorch worker) warms it and returns its calls per sample.
 */
interface Runner {
  time(reps: number): Promise<Sample>;
  outputs(): Promise<ArrayLike<number>[]>;
  calibrate?(sampleMs: number, warmMs: number): Promise<number>;
}

interface VariantInfo {
  key: string;
  /** tfjs backend the variant runs on (switched to before each sample), or null. */
  backend: string|null;
  make(c: Case, d: Data): Promise<Runner|null>;
  /** Float64 spec the output is checked against, when not the case's own (BatchNorm). */
  spec?: (c: Case) => RefSpec;
  /** The reference has no gamma/beta (the built-in layers, freshly built). */
  plain?: (c: Case) => boolean;
}

// ---------------------------------------------------------------- tfjs variants

/** The composite a user would write: 5-D reshape, tf.moments, broadcasting. */
function naiveGroupNorm(x: tf.Tensor, groups: number, gamma: tf.Tensor, beta: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const [N, H, W, C] = x.shape;
    const x5 = tf.reshape(x, [N, H, W, groups, C / groups]);
    const {mean, variance} = tf.moments(x5, [1, 2, 4], true);
    const xn = tf.reshape(tf.div(tf.sub(x5, mean), tf.sqrt(tf.add(variance, EPS))), x.shape);
    return tf.add(tf.mul(xn, gamma), beta);
  });
}

type Fn = () => tf.Tensor|tf.Tensor[];
type F3 = (x: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => tf.Tensor;

interface TfInputs {
  x: tf.Tensor;
  gamma: tf.Tensor;
  beta: tf.Tensor;
  dy: tf.Tensor;
}

/** This package's op for the case. */
function ours(c: Case): F3 {
  return (x, g, b) => {
    switch (c.op) {
      case 'gn': return ops.groupNorm(x, {groups: c.groups, epsilon: EPS, gamma: g, beta: b});
      case 'in': return ops.instanceNorm(x, {epsilon: EPS, gamma: g, beta: b});
      case 'ln': return ops.layerNorm(x, {epsilon: EPS, gamma: g, beta: b});
      case 'rms': return ops.rmsNorm(x, {epsilon: EPS, gamma: g});
    }
  };
}

/** Forward, or tf.grads with dy given with respect to x, gamma and beta (RMS: x, gamma). */
function call(c: Case, inp: TfInputs, f: F3): Fn {
  const args = c.op === 'rms' ? [inp.x, inp.gamma] : [inp.x, inp.gamma, inp.beta];
  return c.grad ?
    () => tf.grads((...a: tf.Tensor[]) => f(a[0], a[1], a[2] ?? inp.beta))(args, inp.dy) :
    () => f(inp.x, inp.gamma, inp.beta);
}

function withFlags(fused: boolean, simd: boolean, f: Fn): Fn {
  return () => {
    tf.env().set(FUSED_FLAG, fused);
    tf.env().set(SIMD_FLAG, simd);
    try {
      return f();
    } finally {
      tf.env().set(FUSED_FLAG, true);
      tf.env().set(SIMD_FLAG, true);
    }
  };
}

/** The tfjs-side function of variant `v` on case `c`, or null where it does not apply. */
function tfFn(v: TfVariant, c: Case, inp: TfInputs): Fn|null {
  const C = c.shape[c.shape.length - 1];
  switch (v) {
    case 'fused':
    case 'read': return withFlags(true, true, call(c, inp, ours(c)));
    case 'fusedJS': return withFlags(true, false, call(c, inp, ours(c)));
    case 'tfop': return withFlags(false, true, call(c, inp, ours(c)));
    case 'naive':
      if (c.op !== 'gn' && c.op !== 'in') return null;
      return call(c, inp, (x, g, b) => naiveGroupNorm(x, c.op === 'in' ? C : c.groups, g, b));
    case 'bn': {
      if (c.op === 'rms') return null;
      if (c.grad) {
        const axes = c.shape.slice(0, -1).map((_, i) => i);
        return call(c, inp, (x, g, b) => {
          const {mean, variance} = tf.moments(x, axes);
          return tf.batchNorm(x, mean, variance, b, g, EPS);
        });
      }
      const bn = tf.layers.batchNormalization({axis: -1, epsilon: EPS});
      bn.build(c.shape);
      return () => bn.apply(inp.x, {training: true}) as tf.Tensor;
    }
    case 'builtinLN': {
      // Its backward takes about 30 s on this shape (it tiles everything to the input size): forward only.
      if (c.op !== 'ln' || c.grad) return null;
      const ln = tf.layers.layerNormalization({axis: -1, epsilon: EPS});
      ln.build(c.shape);
      return () => ln.apply(inp.x) as tf.Tensor;
    }
  }
}

const tfInputs = new Map<string, TfInputs>();

async function useBackend(b: string) {
  if (tf.getBackend() !== b && !(await tf.setBackend(b))) throw new Error(`backend ${b} unavailable`);
}

function tfVariant(backend: string, v: TfVariant): VariantInfo {
  return {
    key: `${backend}:${v}`,
    backend,
    spec: v === 'bn' ? bnSpec : undefined,
    plain: (c) => (v === 'bn' && !c.grad) || v === 'builtinLN',
    async make(c, d) {
      await useBackend(backend);
      const k = `${backend}:${c.id}`;
      let inp = tfInputs.get(k);
      if (!inp) {
        const C = c.shape[c.shape.length - 1];
        inp = {x: tf.tensor(d.x, c.shape), gamma: tf.tensor(d.gamma, [C]), beta: tf.tensor(d.beta, [C]),
          dy: tf.tensor(d.dy, c.shape)};
        tfInputs.set(k, inp);
      }
      const f = tfFn(v, c, inp);
      if (!f) return null;
      const read = v === 'read';
      const one = () => {
        const out = f();
        if (read) for (const t of Array.isArray(out) ? out : [out]) t.dataSync();
        tf.dispose(out);
      };
      return {
        async time(reps) {
          await useBackend(backend);
          return clocked(reps, async () => one());
        },
        async outputs() {
          await useBackend(backend);
          const out = f();
          const list = Array.isArray(out) ? out : [out];
          const arrays = list.map((t) => t.dataSync() as Float32Array);
          tf.dispose(out);
          return arrays;
        },
      };
    },
  };
}

// ---------------------------------------------------------------- PyTorch worker

interface Torch {
  version: string;
  python: string;
  threads: number;
  rms: string;
  call(req: object): Promise<Record<string, unknown>>;
  close(): void;
}

function torchPythons(): string[] {
  const list: string[] = [];
  if (process.env.TORCH_PYTHON) list.push(process.env.TORCH_PYTHON);
  list.push(join(process.env.TORCH_VENV ?? join(homedir(), '.cache', 'tfjs-normalization', 'venv-torch'), 'bin', 'python'));
  list.push('/usr/bin/python3');
  return list;
}

async function startTorchWith(py: string): Promise<Torch|string> {
  if (!existsSync(py)) return `${py} not found`;
  // The same malloc settings as this process (MALLOC_ENV).
  const env = {...process.env, ...MALLOC_ENV,
    // OpenMP threads spin after a parallel region by default, taking a core
    // from whatever variant runs next on a 2-core machine: let them sleep.
    OMP_WAIT_POLICY: 'PASSIVE'};
  const child: ChildProcessWithoutNullStreams = spawn(py, [join(__dirname, 'torch_worker.py')], {env});
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += String(d)));
  const lines = createInterface({input: child.stdout});
  const queue: Array<(l: string) => void> = [];
  lines.on('line', (l) => queue.shift()?.(l));
  let dead: string|null = null;
  const exited = new Promise<void>((res) => child.on('exit', () => {
    dead = stderr.trim().split('\n').pop() ?? 'exited';
    queue.splice(0).forEach((f) => f(JSON.stringify({error: dead})));
    res();
  }));
  child.on('error', (e) => {
    dead = String(e);
  });
  const call = (req: object) => new Promise<Record<string, unknown>>((res) => {
    if (dead) return res({error: dead});
    queue.push((l) => res(JSON.parse(l) as Record<string, unknown>));
    child.stdin.write(JSON.stringify(req) + '\n');
  });
  const info: Record<string, unknown> =
      await Promise.race([call({cmd: 'info'}), exited.then(() => ({error: dead}))]);
  if (info.error != null || info.torch == null) {
    child.kill();
    return `${py}: torch not importable (${String(info.error)})`;
  }
  return {version: String(info.torch), python: py, threads: Number(info.threads), rms: String(info.rms), call,
    close: () => child.stdin.end()};
}

async function startTorch(): Promise<{torch: Torch|null, notes: string[]}> {
  const notes: string[] = [];
  for (const py of torchPythons()) {
    const t = await startTorchWith(py);
    if (typeof t !== 'string') {
      if (Number(t.version.split('.')[0]) < 2) {
        notes.push(`PyTorch 2.x NOT found (make it with: sh scripts/torch-venv.sh); measured PyTorch ${t.version} from ${py} instead`);
      }
      return {torch: t, notes};
    }
    notes.push(t);
  }
  return {torch: null, notes: [`PyTorch NOT measured: ${notes.join('; ')}. Make it with: sh scripts/torch-venv.sh`]};
}

const DATA_DIR = join(__dirname, '..', 'tmp', 'bench', 'data');

function torchVariant(torch: Torch, threads: number): VariantInfo {
  return {
    key: threads === 1 ? 'torch1' : 'torchN',
    backend: null,
    async make(c, d) {
      const dir = join(DATA_DIR, c.id);
      const id = `${c.id}:${threads}`;
      mkdirSync(dir, {recursive: true});
      for (const [k, v] of Object.entries(d)) writeFileSync(join(dir, `${k}.f32`), v as Float32Array);
      const r = await torch.call({cmd: 'case', id, op: c.op, shape: c.shape, groups: c.groups, grad: c.grad, eps: EPS, dir});
      if (r.error) throw new Error(`torch worker: ${String(r.error)}`);
      const buf = readFileSync(join(dir, 'torch_out.f32'));
      const all = new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4);
      const n = size(c.shape);
      const C = c.shape[c.shape.length - 1];
      const outs = c.grad ? [all.subarray(0, n), ...(c.op === 'rms' ? [1] : [1, 2]).map((k) => all.subarray(n + (k - 1) * C, n + k * C))] :
                            [all.subarray(0, n)];
      return {
        // The worker warms the case and sets its calls per sample as bench.ts does for its own variants.
        async calibrate(sampleMs, warmMs) {
          const t = await torch.call({cmd: 'calibrate', id, threads, sample_ms: sampleMs, warm_ms: warmMs});
          if (t.error) throw new Error(`torch worker: ${String(t.error)}`);
          return Number(t.reps);
        },
        // The worker times its own loop of the calls per sample calibrate set.
        async time() {
          const t = await torch.call({cmd: 'run', id, threads});
          if (t.error) throw new Error(`torch worker: ${String(t.error)}`);
          return {wall: Number(t.ms), cpu: Number(t.cpu_ms)};
        },
        async outputs() {
          return outs;
        },
      };
    },
  };
}

// ---------------------------------------------------------------- ONNX Runtime

// onnxruntime-common's types, shared by both packages.
type OrtModule = typeof import('onnxruntime-node');
type OrtSession = Awaited<ReturnType<OrtModule['InferenceSession']['create']>>;

interface OrtPeer {
  ort: OrtModule;
  name: string;
  providers: string[];
  version: string;
}

function loadOrt(which: 'node'|'web'): OrtPeer|string {
  try {
    if (which === 'node') {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const ort = require('onnxruntime-node') as OrtModule;
      return {ort, name: 'onnxruntime-node', providers: ['cpu'], version: ort.env.versions.node ?? '?'};
    }
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const ort = require('onnxruntime-web') as OrtModule;
    ort.env.wasm.numThreads = 1;
    return {ort, name: 'onnxruntime-web', providers: ['wasm'], version: ort.env.versions.web ?? '?'};
  } catch (e) {
    return `onnxruntime-${which} does not load (${String(e).split('\n')[0]})`;
  }
}

async function ortSession(p: OrtPeer, model: Uint8Array): Promise<OrtSession> {
  return p.ort.InferenceSession.create(model, {
    executionProviders: p.providers, intraOpNumThreads: 1, interOpNumThreads: 1, executionMode: 'sequential',
    graphOptimizationLevel: 'all',
  });
}

const ONNX_DIR = join(__dirname, '..', 'tmp', 'bench', 'onnx');
const ortNotes: string[] = [];

/** The model and session for a case (RMS: RMSNormalization opset 23, else SimplifiedLayerNormalization). */
async function ortModel(p: OrtPeer, op: Op, shape: number[], groups: number): Promise<{s: OrtSession, kind: OnnxKind}> {
  const C = shape[shape.length - 1];
  const onnxShape = op === 'gn' || op === 'in' ? [shape[0], C, ...shape.slice(1, -1)] : shape;
  const kinds: OnnxKind[] = op === 'rms' ? ['rms', 'rmsSimplified'] : [op];
  let err: unknown;
  // Loaded here, not at the top: without onnx-proto (no npm install) ONNX Runtime is skipped loudly.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const {buildModel} = require('./onnx_models') as typeof import('./onnx_models');
  for (const kind of kinds) {
    const model = buildModel(kind, onnxShape, EPS, op === 'in' ? 0 : groups);
    mkdirSync(ONNX_DIR, {recursive: true});
    writeFileSync(join(ONNX_DIR, `${kind}_${onnxShape.join('x')}${groups ? `_g${groups}` : ''}.onnx`), model);
    try {
      return {s: await ortSession(p, model), kind};
    } catch (e) {
      err = e;
      ortNotes.push(`${p.name}: ${kind} model not taken (${String(e).split('\n')[0].slice(0, 160)})`);
    }
  }
  throw err;
}

function ortFeeds(p: OrtPeer, op: Op, shape: number[], x: Float32Array, gamma: Float32Array, beta: Float32Array|null) {
  const C = shape[shape.length - 1];
  const channelsFirst = op === 'gn' || op === 'in';
  const onnxShape = channelsFirst ? [shape[0], C, ...shape.slice(1, -1)] : shape;
  const ps = op === 'gn' ? [C, 1, 1] : [C];
  const T = p.ort.Tensor;
  const feeds: Record<string, InstanceType<typeof T>> = {
    X: new T('float32', channelsFirst ? toNCHW(x, shape) : x, onnxShape),
    scale: new T('float32', gamma, ps),
  };
  if (op !== 'rms') feeds.B = new T('float32', beta ?? new Float32Array(C), ps);
  return feeds;
}

const ortKinds: Record<string, string> = {};

function ortVariant(p: OrtPeer, key: Peer): VariantInfo {
  return {
    key,
    backend: null,
    async make(c, d) {
      if (c.grad) return null;
      const {s, kind} = await ortModel(p, c.op, c.shape, c.op === 'gn' ? c.groups : 0);
      ortKinds[`${key}:${c.op}`] = kind;
      const feeds = ortFeeds(p, c.op, c.shape, d.x, d.gamma, d.beta);
      const channelsFirst = c.op === 'gn' || c.op === 'in';
      return {
        async time(reps) {
          return clocked(reps, async () => {
            const out = await s.run(feeds);
            // Already a JS array (the EP's output is copied out by run).
            if ((out.Y.data as Float32Array).length !== d.x.length) throw new Error(`${p.name}: wrong output size`);
          });
        },
        async outputs() {
          const y = (await s.run(feeds)).Y.data as Float32Array;
          return [channelsFirst ? toNHWC(y, c.shape) : y];
        },
      };
    },
  };
}

// ---------------------------------------------------------------- statistics

/** Mean wall and process CPU ms and minor page faults per call of `reps` calls of f. */
async function clocked(reps: number, f: () => Promise<void>): Promise<Sample> {
  const f0 = process.resourceUsage().minorPageFault;
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  for (let i = 0; i < reps; i++) await f();
  const t1 = performance.now();
  const c = process.cpuUsage(c0);
  const faults = process.resourceUsage().minorPageFault - f0;
  return {wall: (t1 - t0) / reps, cpu: (c.user + c.system) / 1000 / reps, faults: faults / reps, t0, t1};
}

/**
 * Warm a variant up for `warmMs` of wall clock (batches of calls doubling
 * up to half a sample), then its calls per sample: `sampleMs` over the
 * wall time per call of the last batch (no cap: a sample is about sampleMs
 * of work however short the call). The first calls of a variant are cold
 * (JIT, first allocations, page faults: 15-25 ms against 0.5 ms steady for a
 * wasm GroupNorm forward), so they set nothing.
 */
async function calibrate(r: Runner, sampleMs: number, warmMs: number): Promise<{reps: number, perCallMs: number}> {
  if (r.calibrate) {
    const reps = await r.calibrate(sampleMs, warmMs);
    return {reps, perCallMs: sampleMs / reps};
  }
  const t0 = performance.now();
  let n = 1;
  let per = (await r.time(1)).wall;
  do {
    n = Math.max(1, Math.min(2 * n, Math.round(sampleMs / 2 / Math.max(per, 1e-4))));
    per = (await r.time(n)).wall;
  } while (performance.now() - t0 < warmMs);
  return {reps: Math.max(1, Math.round(sampleMs / Math.max(per, 1e-4))), perCallMs: per};
}

/**
 * A variant whose one call takes longer than this is timed in the first
 * SLOW_ROUNDS rounds only: the cpu backend's tf-op, naive and BatchNorm
 * composites take 0.1-2.3 s a call, 23 s a round between them, which
 * would make a full 25-round run take 10 minutes. None of them is in a
 * target; their ratios pair over the rounds both variants ran.
 */
const SLOW_CALL_MS = 100;
const SLOW_ROUNDS = 5;

/** GC events (perf_hooks), matched to the samples they fall in after the run. */
const gcEvents: Array<{start: number, ms: number}> = [];
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) gcEvents.push({start: e.startTime, ms: e.duration});
}).observe({entryTypes: ['gc']});

/** GC pause ms per call in a sample of `reps` calls (events that started inside it). */
function gcPerCall(s: Sample, reps: number): number|undefined {
  if (s.t0 == null || s.t1 == null) return undefined;
  let ms = 0;
  for (const e of gcEvents) if (e.start >= s.t0 && e.start < s.t1) ms += e.ms;
  return ms / reps;
}

interface Stat {
  median: number;
  p25: number;
  p75: number;
  n: number;
}

function quantile(sorted: number[], q: number): number {
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

/** A copy of `a` in an order drawn from `rand` (Fisher-Yates). */
function shuffled<T>(a: readonly T[], rand: () => number): T[] {
  const out = [...a];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

function stat(samples: number[]): Stat {
  const s = [...samples].sort((a, b) => a - b);
  return {median: quantile(s, 0.5), p25: quantile(s, 0.25), p75: quantile(s, 0.75), n: s.length};
}

/** Copy bandwidth (bytes read + written per second) of a 64 MiB Float32Array. */
function copyBandwidth(): number {
  const n = 16 << 20;
  const a = new Float32Array(n).fill(1);
  const b = new Float32Array(n);
  const ts: number[] = [];
  for (let i = 0; i < 9; i++) {
    const t0 = performance.now();
    b.set(a);
    ts.push(performance.now() - t0);
  }
  return (2 * 4 * n) / (stat(ts).median / 1000);
}

// ---------------------------------------------------------------- main

interface CaseResult {
  id: string;
  label: string;
  op: Op;
  grad: boolean;
  /** The reported clock (--clock; PyTorch on several threads: wall clock). */
  ms: Record<string, Stat>;
  msWall: Record<string, Stat>;
  msCpu: Record<string, Stat>;
  /** Max error of each variant's output against float64, relative to max(1, max |reference|). */
  checkErr: Record<string, number>;
  /** Calls per sample (PyTorch: the worker's own count). */
  reps: Record<string, number>;
  /** The reported clock's ms per call, round by round (round r of every variant of the case: the same round). */
  rounds: Record<string, number[]>;
  roundsWall: Record<string, number[]>;
  roundsCpu: Record<string, number[]>;
  /** Median wall-clock length of a sample (ms), minor page faults and GC pause ms per call (this process's variants). */
  sampleMs: Record<string, number>;
  faultsPerCall: Record<string, number>;
  gcMsPerCall: Record<string, number>;
  floorMs: number;
  peakExtraBytes?: Record<string, {fused: number, tfop: number, outputBytes: number, statsBytes: number}>;
}

const TF_VARIANTS: TfVariant[] = ['fused', 'read', 'fusedJS', 'tfop', 'naive', 'bn', 'builtinLN'];
/** --lean: this package's fused op and op + read only (the slow tfjs composites left out). */
const LEAN_VARIANTS: TfVariant[] = ['fused', 'read'];

async function main() {
  const opt = args();
  const notes: string[] = [];
  const loud = (s: string) => {
    notes.push(s);
    console.log(`\n*** ${s} ***\n`);
  };
  if (process.env.MALLOC_MMAP_THRESHOLD_ !== MALLOC_ENV.MALLOC_MMAP_THRESHOLD_) {
    loud('this process runs on glibc\'s default malloc settings (--no-malloc-env, or not Linux): fresh output arrays may cost page faults that the PyTorch worker does not pay');
  }
  // Backends: 'tensorflow' is tfjs-node, from node_modules or NODE_PATH (the
  // test lane's build: NODE_PATH=$(bash scripts/tfjs-node-local.sh):node_modules).
  const backends: string[] = [];
  for (const b of opt.backends) {
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      if (b === 'tensorflow') require('@tensorflow/tfjs-node');
      if (!(await tf.setBackend(b)) || tf.getBackend() !== b) throw new Error('setBackend failed');
      backends.push(b);
    } catch (e) {
      loud(`backend ${b} NOT measured: ${String(e).split('\n')[0]}`);
    }
  }
  const variants: VariantInfo[] = [];
  for (const b of backends) for (const v of opt.lean ? LEAN_VARIANTS : TF_VARIANTS) variants.push(tfVariant(b, v));

  let torch: Torch|null = null;
  if (opt.torch) {
    const t = await startTorch();
    torch = t.torch;
    t.notes.forEach(loud);
    if (torch) {
      console.log(`PyTorch ${torch.version} (${torch.python}), 1 thread and ${torch.threads} threads (its default); RMS: ${torch.rms}`);
      variants.push(torchVariant(torch, 1));
      if (torch.threads > 1) variants.push(torchVariant(torch, torch.threads));
    }
  } else {
    loud('PyTorch NOT measured: --no-torch');
  }
  const orts: Partial<Record<'ortNode'|'ortWeb', OrtPeer>> = {};
  if (opt.ort) {
    for (const [key, which] of [['ortNode', 'node'], ['ortWeb', 'web']] as const) {
      const p = loadOrt(which);
      if (typeof p === 'string') {
        loud(`${p}: NOT measured`);
      } else {
        orts[key] = p;
        variants.push(ortVariant(p, key));
        console.log(`${p.name} ${p.version}, ${p.providers[0]} execution provider, 1 thread`);
      }
    }
  } else {
    loud('ONNX Runtime NOT measured: --no-ort');
  }

  const bw = copyBandwidth();
  console.log(`copy bandwidth ${(bw / 1e9).toFixed(1)} GB/s (read + write)`);

  // Setup: data, float64 answers, every variant checked, then warmed and its reps per sample chosen.
  interface Setup {
    c: Case;
    runners: Array<{v: VariantInfo, r: Runner, reps: number, slow: boolean}>;
    samples: Map<string, Sample[]>;
    res: CaseResult;
  }
  const setups: Setup[] = [];
  const badOurs: string[] = [];
  for (const [ci, c] of CASES.entries()) {
    process.stdout.write(`setting up ${c.label}\n`);
    const d = makeData(c, 100 + ci);
    const refs = new Map<string, Float64Array[]>();
    const refFor = (v: VariantInfo) => {
      const spec = v.spec ? v.spec(c) : specOf(c);
      const plain = v.plain?.(c) ?? false;
      const k = `${v.spec ? 'bn' : 'own'}:${plain}`;
      if (!refs.has(k)) refs.set(k, reference(spec, c, d, !plain));
      return refs.get(k) as Float64Array[];
    };
    const bytes = size(c.shape) * 4;
    const res: CaseResult = {id: c.id, label: c.label, op: c.op, grad: c.grad, ms: {}, msWall: {}, msCpu: {}, checkErr: {}, reps: {},
      rounds: {}, roundsWall: {}, roundsCpu: {}, sampleMs: {}, faultsPerCall: {}, gcMsPerCall: {}, floorMs: (3 * bytes) / bw * 1000};
    const s: Setup = {c, runners: [], samples: new Map(), res};
    for (const v of variants) {
      let r: Runner|null;
      try {
        r = await v.make(c, d);
      } catch (e) {
        loud(`${v.key} on ${c.id} NOT measured: ${String(e).split('\n')[0].slice(0, 200)}`);
        continue;
      }
      if (!r) continue;
      const err = checkErr(await r.outputs(), refFor(v));
      res.checkErr[v.key] = err;
      if (!(err <= CHECK_TOL)) {
        loud(`${v.key} on ${c.id}: output off float64 by ${err.toExponential(2)} (relative), over ${CHECK_TOL}: NOT timed`);
        if (v.backend) badOurs.push(`${v.key} on ${c.id}`);
        continue;
      }
      const {reps, perCallMs} = await calibrate(r, opt.sampleMs, opt.warmMs);
      res.reps[v.key] = reps;
      s.runners.push({v, r, reps, slow: perCallMs > SLOW_CALL_MS});
    }
    setups.push(s);
  }

  // Rounds: every variant of a case once per round, one case after the
  // other, in an order shuffled per round and case (seeded: the same
  // orders every run), so that no variant always follows the same one.
  // Round 0 is a warm-up round over everything, not kept: the JS around
  // the kernels is shared by every case and is still tiering up while the
  // first cases calibrate (a loop of one wasm GroupNorm forward took
  // 1.2-2.3 ms per call over its first second, 0.45 ms after).
  const loadStart = loadavg()[0];
  for (let round = 0; round <= opt.rounds; round++) {
    for (const [ci, s] of setups.entries()) {
      const order = shuffled(s.runners, rng(1000 * round + ci + 1));
      for (const {v, r, reps, slow} of order) {
        if (slow && round > SLOW_ROUNDS) continue;
        const sample = await r.time(reps);
        if (round === 0) continue;
        const list = s.samples.get(v.key) ?? [];
        list.push(sample);
        s.samples.set(v.key, list);
      }
    }
    process.stdout.write(round ? `round ${round}/${opt.rounds}\r` : 'warm-up round\r');
  }
  const loadEnd = loadavg()[0];

  const results: CaseResult[] = [];
  for (const s of setups) {
    for (const [k, list] of s.samples) {
      const reps = s.res.reps[k];
      s.res.msWall[k] = stat(list.map((x) => x.wall));
      s.res.msCpu[k] = stat(list.map((x) => x.cpu));
      // PyTorch on several threads: its CPU time is the threads' total, not a speed; wall clock always.
      const useWall = opt.clock === 'wall' || k === 'torchN';
      s.res.ms[k] = useWall ? s.res.msWall[k] : s.res.msCpu[k];
      s.res.rounds[k] = list.map((x) => useWall ? x.wall : x.cpu);
      s.res.roundsWall[k] = list.map((x) => x.wall);
      s.res.roundsCpu[k] = list.map((x) => x.cpu);
      const faults = list.map((x) => x.faults).filter((x): x is number => x != null);
      if (faults.length) s.res.faultsPerCall[k] = stat(faults).median;
      const gc = list.map((x) => gcPerCall(x, reps)).filter((x): x is number => x != null);
      if (gc.length) s.res.gcMsPerCall[k] = stat(gc).median;
      s.res.sampleMs[k] = stat(list.map((x) => x.wall * reps)).median;
    }
    if (!s.c.grad) {
      s.res.peakExtraBytes = {};
      for (const b of backends) {
        const inp = tfInputs.get(`${b}:${s.c.id}`);
        if (!inp) continue;
        await useBackend(b);
        const peak = async (fused: boolean) => {
          const start = tf.memory().numBytes;
          const f = withFlags(fused, true, call(s.c, inp, ours(s.c)));
          const info = await tf.profile(() => f() as tf.Tensor);
          tf.dispose(info.result as tf.Tensor);
          return info.peakBytes - start;
        };
        const c = s.c;
        const sets = c.op === 'ln' || c.op === 'rms' ? size(c.shape) / c.shape[2] :
                                                       c.shape[0] * (c.op === 'in' ? c.shape[3] : c.groups);
        s.res.peakExtraBytes[b] = {fused: await peak(true), tfop: await peak(false), outputBytes: size(c.shape) * 4,
          statsBytes: sets * 4 * (c.op === 'rms' ? 1 : 3)};
      }
    }
    results.push(s.res);
  }
  // Wall clock counts the time other jobs held the core. Niced jobs (the
  // machine's rule for builds and tests) barely take it from this nice-0
  // process; jobs at normal priority do: PyTorch on 1 thread then waits
  // beyond its CPU time, which it otherwise never does.
  const waits = results.map((r) => r.msWall.torch1 && r.msCpu.torch1 ? r.msWall.torch1.median / r.msCpu.torch1.median : null)
      .filter((x): x is number => x != null);
  if (opt.clock === 'wall' && waits.length && stat(waits).median > 1.15) {
    loud(`PyTorch 1 thread: wall clock ${stat(waits).median.toFixed(2)}× its CPU time (median over the cases): other jobs at ` +
        'normal priority held the cores, so the wall-clock samples include their time; rerun on a quieter machine or with --clock cpu');
  }
  for (const [k, inp] of tfInputs) {
    await useBackend(k.split(':')[0]);
    tf.dispose([inp.x, inp.gamma, inp.beta, inp.dy]);
  }

  const fidelity: Record<string, Record<string, number>> = {};
  for (const b of backends) {
    await useBackend(b);
    fidelity[b] = fidelityOf();
  }
  if (torch) {
    fidelity.torch = await torchFidelity(torch);
    torch.close();
  }
  for (const [key, p] of Object.entries(orts)) {
    try {
      fidelity[key] = await ortFidelity(p);
    } catch (e) {
      loud(`${p.name} fidelity NOT measured: ${String(e).split('\n')[0].slice(0, 200)}`);
    }
  }

  const out: Out = {
    date: new Date().toISOString(),
    command: `npm run bench -- ${process.argv.slice(2).join(' ')}`.trim().replace(/ --$/, ''),
    machine: {cpus: cpus().length, model: cpus()[0]?.model, node: process.version, tfjs: tf.version.tfjs},
    backends,
    torch: torch ? {version: torch.version, python: torch.python, threads: torch.threads, rms: torch.rms} : null,
    ort: Object.fromEntries(Object.entries(orts).map(([k, p]) => [k, `${p.name} ${p.version}`])),
    ortKinds,
    notes: [...notes, ...ortNotes],
    quick: opt.quick,
    clock: opt.clock,
    rounds: opt.rounds,
    copyBandwidthGBs: bw / 1e9,
    sampleMs: opt.sampleMs,
    warmMs: opt.warmMs,
    loadavg: [loadStart, loadEnd],
    results,
    targets: targetsOf(backends, results),
    fidelity,
  };
  const dir = opt.write ? join(__dirname, 'results') : join(__dirname, '..', 'tmp', 'bench', ...(opt.quick ? ['quick'] : []));
  mkdirSync(dir, {recursive: true});
  writeFileSync(join(dir, 'node.json'), JSON.stringify(out, null, 1) + '\n');
  const md = markdown(out);
  writeFileSync(join(dir, 'RESULTS.md'), md);
  console.log('\n' + md);
  console.log(`wrote ${join(dir, 'node.json')} and RESULTS.md${opt.write ? '' : ' (add --write to update bench/results/)'}`);
  if (badOurs.length) {
    console.error(`bench: this package's output was off float64 in: ${badOurs.join(', ')}`);
    process.exit(1);
  }
}

// ---------------------------------------------------------------- fidelity

const FID_SHAPE = [2, 16, 16, 64];
const FID_LN_SHAPE = [64, 768];

function fidelityInput(shape: number[]): Float32Array {
  return normals(rng(42), size(shape), 1e3, 1e-2);
}

function fidRefs() {
  const gx = fidelityInput(FID_SHAPE);
  const lx = fidelityInput(FID_LN_SHAPE);
  return {gx, lx, gref: refForward(groupSpec(FID_SHAPE, 32, 3, EPS), gx),
    lref: refForward(axesSpec(FID_LN_SHAPE, [1], EPS, 'center'), lx)};
}

/** Max |y - float64 answer| for mean 1e3, std 1e-2 input: GN (column loop) and LN (row loop). */
function fidelityOf(): Record<string, number> {
  const out: Record<string, number> = {};
  const {gx, lx, gref, lref} = fidRefs();
  for (const [name, on, simd] of [['fused', true, true], ['fusedJS', true, false], ['tfop', false, true]] as const) {
    tf.env().set(FUSED_FLAG, on);
    tf.env().set(SIMD_FLAG, simd);
    const y1 = tf.tidy(() => ops.groupNorm(tf.tensor(gx, FID_SHAPE), {groups: 32, epsilon: EPS}).dataSync());
    const y2 = tf.tidy(() => ops.layerNorm(tf.tensor(lx, FID_LN_SHAPE), {epsilon: EPS}).dataSync());
    out[`gn-${name}`] = maxErr(y1, gref);
    out[`ln-${name}`] = maxErr(y2, lref);
  }
  tf.env().set(FUSED_FLAG, true);
  tf.env().set(SIMD_FLAG, true);
  const naive = tf.tidy(() => naiveGroupNorm(tf.tensor(gx, FID_SHAPE), 32, tf.ones([64]), tf.zeros([64])).dataSync());
  out['gn-naive'] = maxErr(naive, gref);
  return out;
}

async function torchFidelity(torch: Torch): Promise<Record<string, number>> {
  const {gx, lx, gref, lref} = fidRefs();
  const g = await torch.call({cmd: 'fidelity', op: 'gn', shape: FID_SHAPE, groups: 32, eps: EPS, x: Array.from(gx)});
  const l = await torch.call({cmd: 'fidelity', op: 'ln', shape: FID_LN_SHAPE, eps: EPS, x: Array.from(lx)});
  return {gn: maxErr(g.y as number[], gref), ln: maxErr(l.y as number[], lref)};
}

async function ortFidelity(p: OrtPeer): Promise<Record<string, number>> {
  const {gx, lx, gref, lref} = fidRefs();
  const one = (n: number) => new Float32Array(n).fill(1);
  const gs = await ortModel(p, 'gn', FID_SHAPE, 32);
  const gy = (await gs.s.run(ortFeeds(p, 'gn', FID_SHAPE, gx, one(64), null))).Y.data as Float32Array;
  const ls = await ortModel(p, 'ln', FID_LN_SHAPE, 0);
  const ly = (await ls.s.run(ortFeeds(p, 'ln', FID_LN_SHAPE, lx, one(768), null))).Y.data as Float32Array;
  return {gn: maxErr(toNHWC(gy, FID_SHAPE), gref), ln: maxErr(ly, lref)};
}

function maxErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

// ---------------------------------------------------------------- report

interface Out {
  date: string;
  command: string;
  machine: {cpus: number, model?: string, node: string, tfjs: string};
  backends: string[];
  torch: {version: string, python: string, threads: number, rms: string}|null;
  ort: Record<string, string>;
  ortKinds: Record<string, string>;
  notes: string[];
  quick: boolean;
  clock: 'cpu'|'wall';
  rounds: number;
  copyBandwidthGBs: number;
  /** Milliseconds of work per sample asked for, and of warm-up per variant before its calls per sample are set. */
  sampleMs: number;
  warmMs: number;
  /** The 1-minute load average when the timed rounds began and ended. */
  loadavg: number[];
  results: CaseResult[];
  targets: Target[];
  fidelity: Record<string, Record<string, number>>;
}

const TF_LABELS: Record<TfVariant, string> = {
  fused: 'fused', read: 'fused + read', fusedJS: 'fused, JS loops', tfop: 'tf-op path', naive: 'naive composite',
  bn: 'BatchNorm (training)', builtinLN: 'built-in LayerNorm',
};

function fmt(s?: Stat): string {
  if (!s) return '–';
  const d = (v: number) => (v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2));
  return `${d(s.median)} (${d(s.p25)}–${d(s.p75)})`;
}

/**
 * The paired ratio num / den: round by round, num's sample over den's
 * sample of the same round (taken within the same few hundred ms, so both
 * saw about the same machine), then median (p25–p75) over the rounds.
 */
function pairedOf(r: CaseResult, num: string, den: string): Stat|null {
  const a = r.rounds[num];
  const b = r.rounds[den];
  // Round i of both is index i (a slow variant has only the first rounds).
  const n = Math.min(a?.length ?? 0, b?.length ?? 0);
  if (!n) return null;
  return stat(a.slice(0, n).map((x, i) => x / b[i]));
}

/** The ratio of the two medians (for comparison with the paired ratio). */
function mediansOf(r: CaseResult, num: string, den: string): number|null {
  const a = r.ms[num];
  const b = r.ms[den];
  return a && b ? a.median / b.median : null;
}

const x2 = (v: number) => `${v.toFixed(2)}×`;

/** Paired ratio with its p25–p75 (`spread`), or its median only. */
function ratio(r: CaseResult, num: string, den: string, spread = false): string {
  const p = pairedOf(r, num, den);
  if (!p) return '–';
  return spread ? `${x2(p.median)} (${p.p25.toFixed(2)}–${p.p75.toFixed(2)})` : x2(p.median);
}

interface Target {
  target: string;
  case: string;
  num: string;
  den: string;
  limit: number;
  /** Paired ratio over the rounds; the ratio of the medians. */
  paired: Stat|null;
  medians: number|null;
  met: boolean|null;
}

/** The targets of issue #16 on this run, judged on the paired ratio's median. */
function targetsOf(backends: string[], results: CaseResult[]): Target[] {
  const T: Target[] = [];
  const add = (target: string, r: CaseResult, num: string, den: string, limit: number) => {
    const paired = pairedOf(r, num, den);
    T.push({target, case: r.label, num, den, limit, paired, medians: mediansOf(r, num, den),
      met: paired ? paired.median <= limit : null});
  };
  for (const b of backends.filter((x) => x === 'wasm' || x === 'cpu')) {
    const fwd = b === 'wasm' ? 1.5 : 3;
    const grad = b === 'wasm' ? 2 : 4;
    for (const r of results) {
      if (r.grad && r.op !== 'gn' && r.op !== 'ln') continue;
      add(`${b} fused / PyTorch 1 thread`, r, `${b}:fused`, 'torch1', r.grad ? grad : fwd);
    }
    if (b === 'wasm') {
      for (const r of results.filter((x) => !x.grad)) add('wasm fused + read / onnxruntime-node', r, 'wasm:read', 'ortNode', 1);
    }
  }
  return T;
}

function targets(o: Out): string[] {
  const L = ['| target | case | paired ratio (p25–p75) | ratio of medians | limit | this run |', '|---|---|---|---|---|---|'];
  for (const t of o.targets) {
    const verdict = t.met == null ? 'not measured' : t.met ? '**met**' : '**not met**';
    const p = t.paired ? `${x2(t.paired.median)} (${t.paired.p25.toFixed(2)}–${t.paired.p75.toFixed(2)})` : '–';
    L.push(`| ${t.target} | ${t.case} | ${p} | ${t.medians == null ? '–' : x2(t.medians)} | ≤ ${t.limit}× | ${verdict} |`);
  }
  return L;
}

function markdown(o: Out): string {
  const L: string[] = [];
  L.push('# Benchmark results', '');
  const torch = o.torch ? `PyTorch ${o.torch.version} (${o.torch.python.includes('venv-torch') ? 'venv of scripts/torch-venv.sh' : o.torch.python}; ` +
      `RMS: ${o.torch.rms === 'rms_norm' ? 'F.rms_norm' : 'composite'}) on 1 thread and on ${o.torch.threads} (its default)` :
    '**PyTorch not measured**';
  const ort = Object.values(o.ort).join(', ') || '**ONNX Runtime not measured**';
  L.push(`Generated by \`${o.command}\` on ${o.date}: ${o.machine.cpus} CPUs (${o.machine.model}), ` +
      `Node ${o.machine.node}, tfjs ${o.machine.tfjs} (backends: ${o.backends.join(', ') || 'none'}), ${torch}; ${ort} ` +
      `on 1 thread; ${o.rounds} interleaved rounds after a warm-up round, load average ` +
      `${o.loadavg.map((x) => x.toFixed(2)).join(' → ')} (1 minute; ${o.machine.cpus} cores)${o.quick ? ' (quick run: short samples, not for comparisons)' : ''}.`);
  if (o.notes.length) L.push('', 'Not measured or fallen back:', '', ...o.notes.map((n) => `- ${n}`));
  L.push('', `Milliseconds per call: median (p25–p75) over the rounds of the mean of a sample of calls ` +
      `(each variant warmed up for ${o.warmMs} ms, then as many calls per sample as make about ${o.sampleMs} ms; ` +
      'the PyTorch worker does the same for its own loop; every variant of a case once per round, in an order shuffled per round), ' +
      (o.clock === 'cpu' ? '**CPU time** of the process that ran the call (Node\'s `process.cpuUsage`, which also counts V8\'s ' +
        'GC threads; the PyTorch worker\'s `time.process_time`; wall-clock medians are in node.json, `msWall`); PyTorch on ' +
        'several threads is wall clock. ' :
        '**wall clock** (CPU-time medians are in node.json, `msCpu`; wall clock also counts the time other jobs at normal ' +
        'priority held the core: the bench warns when PyTorch on 1 thread waited beyond its CPU time). ') +
      'Both processes run with the same glibc malloc settings (freed memory kept in the heap). Channels-last (NHWC) ' +
      'inputs; PyTorch and ONNX Runtime normalize the NCHW tensor of the same data for GroupNorm and InstanceNorm. ' +
      '"fused + read" reads every output into a JS array (`dataSync`), as ONNX Runtime always returns it. Every variant ' +
      `was checked against float64 on the same data before it was timed (max error relative to the largest |answer| ≤ ${CHECK_TOL}; ` +
      'per variant in node.json, `checkErr`). ONNX models: LayerNormalization (opset 17), InstanceNormalization, ' +
      `RMS: ${Object.entries(o.ortKinds).filter(([k]) => k.endsWith(':rms')).map(([k, v]) => `${k.split(':')[0]} ${v === 'rms' ? 'RMSNormalization (opset 23)' : 'SimplifiedLayerNormalization'}`).join(', ') || '–'}, ` +
      'GroupNorm as PyTorch exports it (Reshape → InstanceNormalization → Reshape → Mul → Add); forward only.', '');

  const peerCols: Array<[string, string]> = [];
  if (o.torch) {
    peerCols.push(['torch1', 'PyTorch, 1 thread']);
    if (o.torch.threads > 1) peerCols.push(['torchN', `PyTorch, ${o.torch.threads} threads`]);
  }
  if (o.ort.ortNode) peerCols.push(['ortNode', 'onnxruntime-node, 1 thread']);
  if (o.ort.ortWeb) peerCols.push(['ortWeb', 'onnxruntime-web (wasm SIMD), 1 thread']);
  const ourCols: Array<[string, string]> = [];
  for (const b of o.backends) ourCols.push([`${b}:fused`, `${b} fused`], [`${b}:read`, `${b} fused + read`]);
  const ratios: Array<[string, string, string]> = [];
  for (const b of o.backends) {
    if (o.torch) ratios.push([`${b}:fused`, 'torch1', `${b} / PyTorch 1 thread`]);
    if (o.ort.ortNode) ratios.push([`${b}:read`, 'ortNode', `${b} + read / onnxruntime-node`]);
  }
  L.push('## Against the peers', '');
  L.push(`| case | ${[...peerCols, ...ourCols].map((c) => c[1]).join(' | ')} | ${ratios.map((r) => r[2]).join(' | ')} |`);
  L.push(`|---|${[...peerCols, ...ourCols, ...ratios].map(() => '---').join('|')}|`);
  for (const r of o.results) {
    L.push(`| ${r.label} | ${[...peerCols, ...ourCols].map(([k]) => fmt(r.ms[k])).join(' | ')} | ` +
        `${ratios.map(([a, b]) => ratio(r, a, b, true)).join(' | ')} |`);
  }
  L.push('', 'Ratios are **paired**: round by round, the two variants\' samples of the same round (taken within a second of ' +
      'each other) divided, then the median (p25–p75) over the rounds; "ratio of medians" divides the two columns\' medians. ' +
      `A variant whose one call takes over ${SLOW_CALL_MS} ms (the cpu backend's composites) is timed in the first ` +
      `${SLOW_ROUNDS} rounds only, and its ratios pair over those.`);
  L.push('', '## Targets (issue #16) in this run', '', ...targets(o), '');

  for (const backend of o.backends) {
    L.push(`## ${backend} backend, every variant`, '');
    L.push(`| case | ${TF_VARIANTS.map((v) => TF_LABELS[v]).join(' | ')} | floor | fused / BatchNorm | ` +
        'built-in LN / fused | fused / tf-op path | JS loops / SIMD |');
    L.push(`|---|${TF_VARIANTS.map(() => '---').join('|')}|---|---|---|---|---|`);
    const m = (r: CaseResult, v: TfVariant) => r.ms[`${backend}:${v}`];
    const q = (r: CaseResult, a: TfVariant, b: TfVariant) => ratio(r, `${backend}:${a}`, `${backend}:${b}`);
    for (const r of o.results) {
      L.push(`| ${r.label} | ${TF_VARIANTS.map((v) => fmt(m(r, v))).join(' | ')} | ${r.floorMs.toFixed(2)} | ` +
          `${q(r, 'fused', 'bn')} | ${q(r, 'builtinLN', 'fused')} | ${q(r, 'fused', 'tfop')} | ${q(r, 'fusedJS', 'fused')} |`);
    }
    L.push('');
    L.push('Peak bytes allocated by one forward beyond its input (`tf.profile`), against the output size:', '');
    L.push('| case | fused | tf-op path | output | statistics (m1, m2, inv) |');
    L.push('|---|---|---|---|---|');
    for (const r of o.results) {
      const p = r.peakExtraBytes?.[backend];
      if (!p) continue;
      const kb = (b: number) => `${(b / 1024).toFixed(0)} KiB`;
      L.push(`| ${r.label} | ${kb(p.fused)} | ${kb(p.tfop)} | ${kb(p.outputBytes)} | ${kb(p.statsBytes)} |`);
    }
    L.push('');
  }
  L.push(`Floor: one pass reading x twice and writing y once at the copy bandwidth measured in the same run ` +
      `(${o.copyBandwidthGBs.toFixed(1)} GB/s, read + write).`, '');
  L.push('## Fidelity', '', 'Max |y − float64 answer| for an input with mean 1e3 and std 1e-2 ' +
      `(GroupNorm ${JSON.stringify(FID_SHAPE)} G=32, LayerNorm ${JSON.stringify(FID_LN_SHAPE)}, eps ${EPS}, no affine):`, '');
  L.push('| | GroupNorm | LayerNorm |', '|---|---|---|');
  const peerName: Record<string, string> = {torch: `PyTorch ${o.torch?.version ?? ''} float32`, ortNode: 'onnxruntime-node',
    ortWeb: 'onnxruntime-web'};
  for (const [k, v] of Object.entries(o.fidelity)) {
    if (peerName[k]) {
      L.push(`| ${peerName[k]} | ${v.gn.toExponential(1)} | ${v.ln.toExponential(1)} |`);
    } else {
      L.push(`| ${k}, fused (SIMD) | ${v['gn-fused'].toExponential(1)} | ${v['ln-fused'].toExponential(1)} |`);
      L.push(`| ${k}, fused, JS loops | ${v['gn-fusedJS'].toExponential(1)} | ${v['ln-fusedJS'].toExponential(1)} |`);
      L.push(`| ${k}, tf-op path | ${v['gn-tfop'].toExponential(1)} | ${v['ln-tfop'].toExponential(1)} |`);
      L.push(`| ${k}, naive composite | ${v['gn-naive'].toExponential(1)} | – |`);
    }
  }
  L.push('');
  return L.join('\n');
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
