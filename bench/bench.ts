/**
 * `npm run bench`: this package's normalizations against the alternatives a
 * user could pick, in Node on the cpu and wasm backends, and against
 * PyTorch (single thread) when Debian's python3-torch is installed.
 *
 * Variants, interleaved round by round (every variant of every case runs
 * once per round, the PyTorch worker included):
 * - fused: this package (the fused kernel of the backend, src/kernels, on
 *   its WebAssembly SIMD loops where they cover the case);
 * - fusedJS: the same kernel on its JS loops (TFJS_NORMALIZATION_SIMD off);
 * - tfop: this package with the fused kernels off (the tf-op fallback);
 * - naive: the composite a user writes (5-D reshape, tf.moments, broadcast);
 * - bn: the built-in tf.layers.batchNormalization, training mode;
 * - builtinLN: the built-in tf.layers.layerNormalization;
 * - torch: torch.nn.functional.group_norm / layer_norm (NCHW for GN/IN).
 *
 * Reports median, p25, p75 (ms) and ratios from the same run, the peak
 * bytes of a forward (tf.profile), fidelity on an input with mean 1e3 and
 * std 1e-2, and the memory-bandwidth floor of one fused pass (read x twice,
 * write y once) at the copy bandwidth measured in the same run.
 *
 *   npm run bench                    # 7 rounds, cpu and wasm, PyTorch if present
 *   npm run bench -- --rounds 11 --backends wasm --no-torch
 *   NODE_PATH=$(bash scripts/tfjs-node-local.sh):node_modules npm run bench -- --backends tensorflow
 *
 * Writes tmp/bench/node.json and tmp/bench/RESULTS.md (ignored by git);
 * with --write, the committed bench/results/node.json and RESULTS.md.
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';

import {ChildProcessWithoutNullStreams, spawn} from 'node:child_process';
import {existsSync, mkdirSync, writeFileSync} from 'node:fs';
import {cpus} from 'node:os';
import {join} from 'node:path';
import {createInterface} from 'node:readline';

import {ops} from '../src';
import {FUSED_FLAG, SIMD_FLAG} from '../src/kernels/index';
import {axesSpec, groupSpec, normals, refForward, rng} from '../test/reference';

type Op = 'gn'|'in'|'ln'|'rms';
type Variant = 'fused'|'fusedJS'|'tfop'|'naive'|'bn'|'builtinLN'|'torch';

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

function args() {
  const a = process.argv.slice(2);
  const get = (k: string) => {
    const i = a.indexOf(k);
    return i >= 0 ? a[i + 1] : undefined;
  };
  return {
    rounds: Number(get('--rounds') ?? 7),
    backends: (get('--backends') ?? 'cpu,wasm').split(','),
    torch: !a.includes('--no-torch'),
    write: a.includes('--write'),
  };
}

// ---------------------------------------------------------------- PyTorch worker

interface Torch {
  version: string;
  call(req: object): Promise<Record<string, unknown>>;
  close(): void;
}

async function startTorch(): Promise<Torch|string> {
  const py = '/usr/bin/python3';
  if (!existsSync(py)) return `${py} not found`;
  // glibc returns big blocks to the OS on free by default; in this
  // sandbox every fresh 2 MB output then costs ~10 ms of page faults.
  // Keeping freed memory in the heap gives PyTorch's usual steady state.
  const env = {...process.env, MALLOC_MMAP_THRESHOLD_: '4294967296', MALLOC_TRIM_THRESHOLD_: '4294967296',
    MALLOC_TOP_PAD_: '536870912', OMP_NUM_THREADS: '1'};
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
  const call = (req: object) => new Promise<Record<string, unknown>>((res) => {
    if (dead) return res({error: dead});
    queue.push((l) => res(JSON.parse(l) as Record<string, unknown>));
    child.stdin.write(JSON.stringify(req) + '\n');
  });
  const info: Record<string, unknown> =
      await Promise.race([call({cmd: 'info'}), exited.then(() => ({error: dead}))]);
  if (info.error != null || info.torch == null) {
    child.kill();
    return `python3-torch not importable (${String(info.error)})`;
  }
  return {version: String(info.torch), call, close: () => child.stdin.end()};
}

// ---------------------------------------------------------------- tfjs variants

interface Inputs {
  x: tf.Tensor;
  gamma: tf.Tensor;
  beta: tf.Tensor;
  dy: tf.Tensor;
}

function makeInputs(c: Case): Inputs {
  const C = c.shape[c.shape.length - 1];
  const x = tf.randomNormal(c.shape, 0.5, 2, 'float32', 1);
  const gamma = tf.randomNormal([C], 1, 0.3, 'float32', 2);
  const beta = tf.randomNormal([C], 0, 1, 'float32', 3);
  const dy = tf.randomNormal(c.shape, 0, 1, 'float32', 4);
  return {x, gamma, beta, dy};
}

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

/**
 * The variants of a case. Forward + backward: tf.grads with dy given, with
 * respect to x, gamma and beta (the built-in BatchNormalization as its
 * training step computes it: tf.moments, then tf.batchNorm).
 */
function variantFns(c: Case, inp: Inputs): Partial<Record<Variant, Fn>> {
  const C = c.shape[c.shape.length - 1];
  const ours = (x: tf.Tensor, g: tf.Tensor, b: tf.Tensor): tf.Tensor => {
    switch (c.op) {
      case 'gn': return ops.groupNorm(x, {groups: c.groups, epsilon: EPS, gamma: g, beta: b});
      case 'in': return ops.instanceNorm(x, {epsilon: EPS, gamma: g, beta: b});
      case 'ln': return ops.layerNorm(x, {epsilon: EPS, gamma: g, beta: b});
      case 'rms': return ops.rmsNorm(x, {epsilon: EPS, gamma: g});
    }
  };
  type F3 = (x: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => tf.Tensor;
  const args = c.op === 'rms' ? [inp.x, inp.gamma] : [inp.x, inp.gamma, inp.beta];
  const run = (f: F3): Fn => (c.grad ?
    () => tf.grads((...a: tf.Tensor[]) => f(a[0], a[1], a[2] ?? inp.beta))(args, inp.dy) :
    () => f(inp.x, inp.gamma, inp.beta));
  const withFlag = (on: boolean, f: Fn, simd = true): Fn => () => {
    tf.env().set(FUSED_FLAG, on);
    tf.env().set(SIMD_FLAG, simd);
    try {
      return f();
    } finally {
      tf.env().set(FUSED_FLAG, true);
      tf.env().set(SIMD_FLAG, true);
    }
  };
  const fns: Partial<Record<Variant, Fn>> = {};
  fns.fused = withFlag(true, run(ours));
  fns.fusedJS = withFlag(true, run(ours), false);
  fns.tfop = withFlag(false, run(ours));
  if (c.op === 'gn' || c.op === 'in') {
    const G = c.op === 'in' ? C : c.groups;
    fns.naive = run((x, g, b) => naiveGroupNorm(x, G, g, b));
  }
  if (c.grad) {
    const axes = c.shape.slice(0, -1).map((_, i) => i);
    fns.bn = run((x, g, b) => {
      const {mean, variance} = tf.moments(x, axes);
      return tf.batchNorm(x, mean, variance, b, g, EPS);
    });
  } else {
    const bn = tf.layers.batchNormalization({axis: -1, epsilon: EPS});
    bn.build(c.shape);
    fns.bn = () => bn.apply(inp.x, {training: true}) as tf.Tensor;
  }
  // The built-in LayerNormalization's backward takes about 30 s on this
  // shape (it tiles everything to the input size): forward only.
  if (c.op === 'ln' && !c.grad) {
    const ln = tf.layers.layerNormalization({axis: -1, epsilon: EPS});
    ln.build(c.shape);
    fns.builtinLN = () => ln.apply(inp.x) as tf.Tensor;
  }
  return fns;
}

function timeOnce(f: Fn): number {
  const t0 = performance.now();
  const out = f();
  const t = performance.now() - t0;
  tf.dispose(out);
  return t;
}

// ---------------------------------------------------------------- statistics

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
  backend: string;
  ms: Partial<Record<Variant, Stat>>;
  floorMs: number;
  peakExtraBytes?: {fused: number, tfop: number, outputBytes: number, statsBytes: number};
}

async function main() {
  const opt = args();
  const torch = opt.torch ? await startTorch() : 'disabled with --no-torch';
  if (typeof torch === 'string') {
    console.log(`\n*** PyTorch NOT measured: ${torch}. Install it with: apt-get install -y python3-torch ***\n`);
  } else {
    console.log(`PyTorch ${torch.version}, 1 thread`);
    for (const c of CASES) {
      const r = await torch.call({cmd: 'case', id: c.id, op: c.op, shape: c.shape, groups: c.groups, grad: c.grad, eps: EPS});
      if (r.error) throw new Error(`torch worker: ${String(r.error)}`);
    }
  }
  const bw = copyBandwidth();
  console.log(`copy bandwidth ${(bw / 1e9).toFixed(1)} GB/s (read + write)`);
  const torchSamples = new Map<string, number[]>();
  const results: CaseResult[] = [];
  const fidelity: Record<string, Record<string, number>> = {};

  for (const backend of opt.backends) {
    // 'tensorflow': tfjs-node, from node_modules or NODE_PATH (the test
    // lane's build: NODE_PATH=$(bash scripts/tfjs-node-local.sh):node_modules).
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    if (backend === 'tensorflow') require('@tensorflow/tfjs-node');
    if (!(await tf.setBackend(backend)) || tf.getBackend() !== backend) throw new Error(`backend ${backend} unavailable`);
    console.log(`\n== ${backend} ==`);
    const setups = CASES.map((c) => {
      const inp = makeInputs(c);
      return {c, inp, fns: variantFns(c, inp), samples: new Map<Variant, number[]>()};
    });
    for (const s of setups) {
      for (const f of Object.values(s.fns)) {
        timeOnce(f as Fn);
        timeOnce(f as Fn);
      }
    }
    for (let r = 0; r < opt.rounds; r++) {
      for (const s of setups) {
        const names = Object.keys(s.fns) as Variant[];
        // Rotate the order each round.
        const order = names.map((_, i) => names[(i + r) % names.length]);
        for (const v of order) {
          const list = s.samples.get(v) ?? [];
          list.push(timeOnce(s.fns[v] as Fn));
          s.samples.set(v, list);
        }
        if (typeof torch !== 'string') {
          const t = await torch.call({cmd: 'run', id: s.c.id});
          const list = torchSamples.get(s.c.id) ?? [];
          list.push(Number(t.ms));
          torchSamples.set(s.c.id, list);
        }
      }
      process.stdout.write(`round ${r + 1}/${opt.rounds}\r`);
    }
    for (const s of setups) {
      const ms: Partial<Record<Variant, Stat>> = {};
      for (const [v, list] of s.samples) ms[v] = stat(list);
      const bytes = s.c.shape.reduce((a, b) => a * b, 1) * 4;
      const res: CaseResult = {id: s.c.id, label: s.c.label, backend, ms, floorMs: (3 * bytes) / bw * 1000};
      if (!s.c.grad) {
        const peak = async (on: boolean) => {
          const start = tf.memory().numBytes;
          const info = await tf.profile(() => (s.fns[on ? 'fused' : 'tfop'] as () => tf.Tensor)());
          tf.dispose(info.result as tf.Tensor);
          return info.peakBytes - start;
        };
        const sets = s.c.op === 'ln' || s.c.op === 'rms' ? bytes / 4 / s.c.shape[2] :
                                                           s.c.shape[0] * (s.c.op === 'in' ? s.c.shape[3] : s.c.groups);
        res.peakExtraBytes = {fused: await peak(true), tfop: await peak(false), outputBytes: bytes,
          statsBytes: sets * 4 * (s.c.op === 'rms' ? 1 : 3)};
      }
      results.push(res);
      tf.dispose([s.inp.x, s.inp.gamma, s.inp.beta, s.inp.dy]);
    }
    fidelity[backend] = fidelityOf();
  }
  if (typeof torch !== 'string') {
    for (const r of results) {
      const t = torchSamples.get(r.id);
      if (t) r.ms.torch = stat(t);
    }
    fidelity.torch = await torchFidelity(torch);
    torch.close();
  }
  const out = {
    date: new Date().toISOString(),
    command: `npm run bench -- ${process.argv.slice(2).join(' ')}`.trim(),
    machine: {cpus: cpus().length, model: cpus()[0]?.model, node: process.version, tfjs: tf.version.tfjs},
    torch: typeof torch === 'string' ? null : torch.version,
    torchMissing: typeof torch === 'string' ? torch : null,
    rounds: opt.rounds,
    copyBandwidthGBs: bw / 1e9,
    results,
    fidelity,
  };
  const dir = opt.write ? join(__dirname, 'results') : join(__dirname, '..', 'tmp', 'bench');
  mkdirSync(dir, {recursive: true});
  writeFileSync(join(dir, 'node.json'), JSON.stringify(out, null, 1) + '\n');
  const md = markdown(out);
  writeFileSync(join(dir, 'RESULTS.md'), md);
  console.log('\n' + md);
  console.log(`wrote ${join(dir, 'node.json')} and RESULTS.md${opt.write ? '' : ' (add --write to update bench/results/)'}`);
}

// ---------------------------------------------------------------- fidelity

const FID_SHAPE = [2, 16, 16, 64];
const FID_LN_SHAPE = [64, 768];

function fidelityInput(shape: number[]): Float32Array {
  return normals(rng(42), shape.reduce((a, b) => a * b, 1), 1e3, 1e-2);
}

/** Max |y - float64 answer| for mean 1e3, std 1e-2 input: GN (column loop) and LN (row loop). */
function fidelityOf(): Record<string, number> {
  const out: Record<string, number> = {};
  const gx = fidelityInput(FID_SHAPE);
  const lx = fidelityInput(FID_LN_SHAPE);
  const gref = refForward(groupSpec(FID_SHAPE, 32, 3, EPS), gx);
  const lref = refForward(axesSpec(FID_LN_SHAPE, [1], EPS, 'center'), lx);
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
  const gx = fidelityInput(FID_SHAPE);
  const lx = fidelityInput(FID_LN_SHAPE);
  const g = await torch.call({cmd: 'fidelity', op: 'gn', shape: FID_SHAPE, groups: 32, eps: EPS, x: Array.from(gx)});
  const l = await torch.call({cmd: 'fidelity', op: 'ln', shape: FID_LN_SHAPE, eps: EPS, x: Array.from(lx)});
  return {
    gn: maxErr(g.y as number[], refForward(groupSpec(FID_SHAPE, 32, 3, EPS), gx)),
    ln: maxErr(l.y as number[], refForward(axesSpec(FID_LN_SHAPE, [1], EPS, 'center'), lx)),
  };
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
  torch: string|null;
  torchMissing: string|null;
  rounds: number;
  copyBandwidthGBs: number;
  results: CaseResult[];
  fidelity: Record<string, Record<string, number>>;
}

const VARIANTS: Array<[Variant, string]> = [
  ['fused', 'this package, fused (SIMD)'], ['fusedJS', 'fused, JS loops'], ['tfop', 'this package, tf-op path'], ['naive', 'naive composite'],
  ['bn', 'built-in BatchNorm (training)'], ['builtinLN', 'built-in LayerNorm'], ['torch', 'PyTorch, 1 thread'],
];

function fmt(s?: Stat): string {
  if (!s) return '–';
  const d = (v: number) => (v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2));
  return `${d(s.median)} (${d(s.p25)}–${d(s.p75)})`;
}

function ratio(a?: Stat, b?: Stat): string {
  return a && b ? `${(a.median / b.median).toFixed(2)}×` : '–';
}

function markdown(o: Out): string {
  const L: string[] = [];
  L.push('# Benchmark results', '');
  L.push(`Generated by \`${o.command}\` on ${o.date}: ${o.machine.cpus} CPUs (${o.machine.model}), ` +
      `Node ${o.machine.node}, tfjs ${o.machine.tfjs}, ${o.rounds} interleaved rounds. ` +
      (o.torch ? `PyTorch ${o.torch} (Debian python3-torch), 1 thread.` : `**PyTorch not measured**: ${o.torchMissing}.`));
  L.push('', 'Milliseconds: median (p25–p75). Channels-last (NHWC) inputs; PyTorch normalizes the NCHW ' +
      'tensor of the same size. Floor: one pass reading x twice and writing y once at the copy bandwidth ' +
      `measured in the same run (${o.copyBandwidthGBs.toFixed(1)} GB/s, read + write).`, '');
  for (const backend of [...new Set(o.results.map((r) => r.backend))]) {
    L.push(`## ${backend} backend`, '');
    L.push(`| case | ${VARIANTS.map((v) => v[1]).join(' | ')} | floor | fused / PyTorch | fused / BatchNorm | ` +
        'built-in LN / fused | fused / tf-op path | JS loops / SIMD |');
    L.push(`|---|${VARIANTS.map(() => '---').join('|')}|---|---|---|---|---|---|`);
    for (const r of o.results.filter((x) => x.backend === backend)) {
      L.push(`| ${r.label} | ${VARIANTS.map(([v]) => fmt(r.ms[v])).join(' | ')} | ${r.floorMs.toFixed(2)} | ` +
          `${ratio(r.ms.fused, r.ms.torch)} | ${ratio(r.ms.fused, r.ms.bn)} | ${ratio(r.ms.builtinLN, r.ms.fused)} | ` +
          `${ratio(r.ms.fused, r.ms.tfop)} | ${ratio(r.ms.fusedJS, r.ms.fused)} |`);
    }
    L.push('');
    L.push('Peak bytes allocated by one forward beyond its input (`tf.profile`), against the output size:', '');
    L.push('| case | fused | tf-op path | output | statistics (m1, m2, inv) |');
    L.push('|---|---|---|---|---|');
    for (const r of o.results.filter((x) => x.backend === backend && x.peakExtraBytes)) {
      const p = r.peakExtraBytes as NonNullable<CaseResult['peakExtraBytes']>;
      const kb = (b: number) => `${(b / 1024).toFixed(0)} KiB`;
      L.push(`| ${r.label} | ${kb(p.fused)} | ${kb(p.tfop)} | ${kb(p.outputBytes)} | ${kb(p.statsBytes)} |`);
    }
    L.push('');
  }
  L.push('## Fidelity', '', 'Max |y − float64 answer| for an input with mean 1e3 and std 1e-2 ' +
      `(GroupNorm ${JSON.stringify(FID_SHAPE)} G=32, LayerNorm ${JSON.stringify(FID_LN_SHAPE)}, eps ${EPS}, no affine):`, '');
  L.push('| | GroupNorm | LayerNorm |', '|---|---|---|');
  for (const [k, v] of Object.entries(o.fidelity)) {
    if (k === 'torch') {
      L.push(`| PyTorch float32 | ${v.gn.toExponential(1)} | ${v.ln.toExponential(1)} |`);
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
