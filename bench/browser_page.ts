/**
 * The in-page half of `npm run bench:browser` (bench/browser.ts): bundled
 * into the browser test page (test/browser/page.ts), which exposes it as
 * `tfjsNormTest.bench`. The cases and variants of bench/bench.ts:
 * - fused: this package (the backend's fused kernel where it has one);
 * - tfop: this package, TFJS_NORMALIZATION_FUSED false (the tf-op path);
 * - jsLoops (wasm only): the fused kernels with TFJS_NORMALIZATION_SIMD
 *   false, i.e. their JS loops (what the threaded build ran before the SIMD
 *   module took its shared heap);
 *   'fused' sets TFJS_NORMALIZATION_WEBGL_ROWS too (webgl's opt-in row layouts);
 * - naive: 5-D reshape + tf.moments + broadcast (GN/IN only);
 * - bn: the built-in BatchNormalization in training mode (forward: the
 *   layer with training true; forward + backward: tf.moments + tf.batchNorm
 *   under tf.grads, as its training step computes it);
 * - builtinLN: the built-in LayerNormalization (LN forward only).
 * Variants run interleaved, one of each per round. A run is timed from the
 * call to the moment one element of its output has been read back (GPU
 * work is asynchronous: the read waits for everything queued before it).
 */
import type * as TfModule from '@tensorflow/tfjs';

import type * as LibModule from '../src/index';

type TF = typeof TfModule;
type Lib = typeof LibModule;
type Tensor = TfModule.Tensor;

export interface BrowserCase {
  id: string;
  label: string;
  op: 'gn'|'in'|'ln'|'rms';
  shape: number[];
  groups: number;
  grad: boolean;
}

export const BROWSER_CASES: BrowserCase[] = [
  {id: 'gn-s1', label: 'GroupNorm [8,32,32,64] G=32, forward', op: 'gn', shape: [8, 32, 32, 64], groups: 32, grad: false},
  {id: 'gn-s2', label: 'GroupNorm [2,64,64,128] G=32, forward', op: 'gn', shape: [2, 64, 64, 128], groups: 32, grad: false},
  {id: 'gn-s3', label: 'GroupNorm [32,16,16,32] G=8, forward', op: 'gn', shape: [32, 16, 16, 32], groups: 8, grad: false},
  {id: 'gn-s1-grad', label: 'GroupNorm [8,32,32,64] G=32, forward + backward', op: 'gn', shape: [8, 32, 32, 64], groups: 32, grad: true},
  {id: 'in-s1', label: 'InstanceNorm [8,32,32,64], forward', op: 'in', shape: [8, 32, 32, 64], groups: 64, grad: false},
  {id: 'ln', label: 'LayerNorm [8,128,768], forward', op: 'ln', shape: [8, 128, 768], groups: 0, grad: false},
  {id: 'ln-grad', label: 'LayerNorm [8,128,768], forward + backward', op: 'ln', shape: [8, 128, 768], groups: 0, grad: true},
  {id: 'rms', label: 'RMSNorm [8,128,768], forward', op: 'rms', shape: [8, 128, 768], groups: 0, grad: false},
];

export interface BrowserBenchResult {
  backend: string;
  id: string;
  label: string;
  shape: number[];
  /** Per variant: the samples in ms. */
  samples: Record<string, number[]>;
}

const EPS = 1e-5;
const FLAG = 'TFJS_NORMALIZATION_FUSED';
const ROWS_FLAG = 'TFJS_NORMALIZATION_WEBGL_ROWS';
const SIMD_FLAG = 'TFJS_NORMALIZATION_SIMD';

type Fn = () => Tensor|Tensor[];

function variants(tf: TF, lib: Lib, c: BrowserCase, x: Tensor, gamma: Tensor, beta: Tensor, dy: Tensor) {
  const C = c.shape[c.shape.length - 1];
  const ours = (xx: Tensor, g: Tensor, b: Tensor): Tensor => {
    switch (c.op) {
      case 'gn': return lib.ops.groupNorm(xx, {groups: c.groups, epsilon: EPS, gamma: g, beta: b});
      case 'in': return lib.ops.instanceNorm(xx, {epsilon: EPS, gamma: g, beta: b});
      case 'ln': return lib.ops.layerNorm(xx, {epsilon: EPS, gamma: g, beta: b});
      case 'rms': return lib.ops.rmsNorm(xx, {epsilon: EPS, gamma: g});
    }
  };
  type F3 = (xx: Tensor, g: Tensor, b: Tensor) => Tensor;
  const args = c.op === 'rms' ? [x, gamma] : [x, gamma, beta];
  const run = (f: F3): Fn => (c.grad ?
    () => tf.grads((...a: Tensor[]) => f(a[0], a[1], a[2] ?? beta))(args, dy) :
    () => f(x, gamma, beta));
  // 'fused' forces the fused kernels everywhere, including webgl's opt-in row layouts
  // (TFJS_NORMALIZATION_WEBGL_ROWS, off by default because it measured no faster).
  const withFlag = (on: boolean, f: Fn): Fn => () => {
    tf.env().set(FLAG, on);
    tf.env().set(ROWS_FLAG, on);
    try {
      return f();
    } finally {
      tf.env().set(FLAG, true);
      tf.env().set(ROWS_FLAG, false);
    }
  };
  const fns: Record<string, Fn> = {fused: withFlag(true, run(ours)), tfop: withFlag(false, run(ours))};
  if (tf.getBackend() === 'wasm') {
    const fused = fns.fused;
    fns.jsLoops = () => {
      tf.env().set(SIMD_FLAG, false);
      try {
        return fused();
      } finally {
        tf.env().set(SIMD_FLAG, true);
      }
    };
  }
  if (c.op === 'gn' || c.op === 'in') {
    const G = c.op === 'in' ? C : c.groups;
    fns.naive = run((xx, g, b) => tf.tidy(() => {
      const [N, H, W] = xx.shape;
      const x5 = tf.reshape(xx, [N, H, W, G, C / G]);
      const {mean, variance} = tf.moments(x5, [1, 2, 4], true);
      const xn = tf.reshape(tf.div(tf.sub(x5, mean), tf.sqrt(tf.add(variance, EPS))), xx.shape);
      return tf.add(tf.mul(xn, g), b);
    }));
  }
  const disposers: Array<() => void> = [];
  if (c.grad) {
    const axes = c.shape.slice(0, -1).map((_, i) => i);
    fns.bn = run((xx, g, b) => {
      const {mean, variance} = tf.moments(xx, axes);
      return tf.batchNorm(xx, mean, variance, b, g, EPS);
    });
  } else {
    const bn = tf.layers.batchNormalization({axis: -1, epsilon: EPS});
    bn.build(c.shape);
    fns.bn = () => bn.apply(x, {training: true}) as Tensor;
    disposers.push(() => disposeLayer(bn));
  }
  if (c.op === 'ln' && !c.grad) {
    const ln = tf.layers.layerNormalization({axis: -1, epsilon: EPS});
    ln.build(c.shape);
    fns.builtinLN = () => ln.apply(x) as Tensor;
    disposers.push(() => disposeLayer(ln));
  }
  return {fns, dispose: () => disposers.forEach((d) => d())};
}

/** A layer built and applied eagerly has no symbolic use count, so Layer.dispose refuses: free its weights. */
function disposeLayer(layer: TfModule.layers.Layer): void {
  for (const w of layer.weights) (w as unknown as {dispose(): void}).dispose();
}

async function timeOnce(tf: TF, f: Fn): Promise<number> {
  const t0 = performance.now();
  const out = f();
  const first = Array.isArray(out) ? out[0] : out;
  const probe = tf.tidy(() => tf.slice(tf.reshape(first, [-1]), 0, 1));
  await probe.data();
  const t = performance.now() - t0;
  tf.dispose([out, probe]);
  return t;
}

/** Runs `rounds` interleaved rounds (after one warm-up round) of every case on the active backend. */
export async function runBrowserBench(tf: TF, lib: Lib, rounds: number, only?: string[]): Promise<BrowserBenchResult[]> {
  const out: BrowserBenchResult[] = [];
  for (const c of BROWSER_CASES) {
    if (only && !only.includes(c.id)) continue;
    const C = c.shape[c.shape.length - 1];
    const x = tf.randomNormal(c.shape, 0.5, 2, 'float32', 1);
    const gamma = tf.randomNormal([C], 1, 0.3, 'float32', 2);
    const beta = tf.randomNormal([C], 0, 1, 'float32', 3);
    const dy = tf.randomNormal(c.shape, 0, 1, 'float32', 4);
    const {fns, dispose} = variants(tf, lib, c, x, gamma, beta, dy);
    const samples: Record<string, number[]> = {};
    for (let r = 0; r <= rounds; r++) {
      for (const [name, f] of Object.entries(fns)) {
        const t = await timeOnce(tf, f);
        if (r > 0) (samples[name] ??= []).push(t);
      }
    }
    dispose();
    tf.dispose([x, gamma, beta, dy]);
    out.push({backend: tf.getBackend(), id: c.id, label: c.label, shape: c.shape, samples});
  }
  return out;
}
