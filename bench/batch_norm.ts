/**
 * `npx tsx bench/batch_norm.ts`: the BatchNormalization training step
 * against this package's GroupNorm forward + backward and the built-in
 * BatchNormalization, on the same shape (bench/batch_norm_core.ts). Node
 * backends run here; `--browser` also runs webgl, webgpu and wasm in
 * headless Chromium (the test page; SwiftShader there: absolute times say
 * little about real GPUs, the ratios are what counts).
 *
 *   npx tsx bench/batch_norm.ts                    # cpu, wasm; 9 rounds
 *   npx tsx bench/batch_norm.ts --rounds 15 --backends wasm --cpu-time
 *   npx tsx bench/batch_norm.ts --rounds 21 --steps 10 --cpu-time   # each sample the mean of 10 steps
 *   node --expose-gc --import tsx bench/batch_norm.ts --rounds 41 --steps 10 --cpu-time   # and a full GC before each sample
 *   npm run build && npx tsx bench/batch_norm.ts --browser
 *
 * Prints one table (median ms, bnLayer / gn, bnLayer / gnLayer, and the
 * frozen layer's step, trainable: false, against the built-in's), then the
 * kernels one run of each variant dispatches and their summed time
 * (tf.profile; where the backend times its kernels), and writes
 * tmp/bench/batchnorm.json (ignored by git).
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';

import {mkdirSync, writeFileSync} from 'node:fs';
import {join} from 'node:path';

import * as lib from '../src';
import {BN_BENCH_SHAPE, BN_VARIANTS, BnBenchResult, BnVariant, canForceGc, median, runBatchNormBench} from './batch_norm_core';

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const get = (k: string) => {
    const i = argv.indexOf(k);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const rounds = Number(get('--rounds') ?? 9);
  // --steps N: each sample of the package's variants the mean of N consecutive steps (the built-in: 1).
  const steps = Number(get('--steps') ?? 1);
  if (!(Number.isInteger(steps) && steps >= 1)) throw new Error(`--steps must be a positive integer; received ${get('--steps')}`);
  // --cpu-time: on cpu and wasm (which compute on this thread) the process's CPU
  // time instead of wall time, less disturbed by other jobs on a shared
  // machine; tensorflow (TensorFlow's own threads) and the browser: wall time.
  const cpuTime = argv.includes('--cpu-time');
  const cpuClock = () => {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1000;
  };
  const clocks: Record<string, string> = {};
  const results: BnBenchResult[] = [];
  for (const backend of (get('--backends') ?? 'cpu,wasm').split(',')) {
    if (backend === 'tensorflow') {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      require('@tensorflow/tfjs-node');
    }
    if (!(await tf.setBackend(backend)) || tf.getBackend() !== backend) throw new Error(`backend ${backend} cannot be set`);
    const onThread = cpuTime && (backend === 'cpu' || backend === 'wasm');
    clocks[backend] = onThread ? 'CPU time' : 'wall time';
    results.push(await runBatchNormBench(tf, lib, rounds, onThread ? cpuClock : () => performance.now(), steps));
  }
  if (argv.includes('--browser')) {
    const {findChromium, launchChromium} = await import('../test/browser/chromium');
    const {bundlePage, servePage} = await import('../test/browser/serve');
    const exe = findChromium();
    if (!exe) throw new Error('--browser needs Chromium');
    const server = await servePage(await bundlePage());
    const browser = await launchChromium(exe);
    try {
      const page = await browser.context.newPage();
      await page.goto(`${server.url}?su=1`);
      await page.waitForFunction(() => (window as unknown as {tfjsNormTest?: unknown}).tfjsNormTest != null, undefined, {timeout: 60000});
      for (const backend of ['webgl', 'webgpu', 'wasm']) {
        clocks[`${backend} (Chromium)`] = 'wall time';
        results.push(await page.evaluate(([b, r]) => (window as unknown as {tfjsNormTest: {benchBatchNorm(b: string, r: number): Promise<BnBenchResult>}})
            .tfjsNormTest.benchBatchNorm(b as string, r as number), [backend, rounds] as const));
      }
    } finally {
      await browser.close();
      await server.close();
    }
  }
  const lines = [
    `BatchNormalization training step vs GroupNorm forward + backward, ${JSON.stringify(BN_BENCH_SHAPE)}, median ms of ${rounds} rounds` +
        (steps > 1 ? ` (each the mean of ${steps} steps; the built-in 1)` : '') +
        (canForceGc() ? '; a full GC before each sample in Node (--expose-gc)' : ''),
    `| backend | clock | ${BN_VARIANTS.join(' | ')} | bnLayer / gn | bnLayer / gn, paired | bnLayer / gnLayer | bnLayer / builtin | bnFrozen / builtinFrozen |`,
    `|---|---|${BN_VARIANTS.map(() => '---|').join('')}---|---|---|---|---|`,
  ];
  // "paired": the median over rounds of the round's bnLayer / gn (the two
  // samples of a round minutes apart at most, so a load that drifts over
  // the run cancels more than in the ratio of the medians).
  const paired = (r: BnBenchResult) => median(r.samples.bnLayer.map((b, k) => b / r.samples.gn[k]));
  const names = results.map((r, i) => (i < results.length - (argv.includes('--browser') ? 3 : 0) ? r.backend : `${r.backend} (Chromium)`));
  results.forEach((r, i) => {
    const name = names[i];
    (r as BnBenchResult&{clock?: string}).clock = clocks[name];
    const m = Object.fromEntries(BN_VARIANTS.map((v) => [v, median(r.samples[v])])) as Record<string, number>;
    lines.push(`| ${name} | ${clocks[name]} | ${BN_VARIANTS.map((v) => m[v].toFixed(2)).join(' | ')} | ${(m.bnLayer / m.gn).toFixed(2)} | ${paired(r).toFixed(2)} | ${(m.bnLayer / m.gnLayer).toFixed(2)} | ` +
               `${(m.bnLayer / m.builtin).toFixed(3)} | ${(m.bnFrozen / m.builtinFrozen).toFixed(3)} |`);
  });
  // Kernels of one run (tf.profile), and the sum of their times where the backend measures them (webgl, webgpu, cpu).
  const kernelCell = (r: BnBenchResult, v: BnVariant) => {
    const ms = r.kernelTimes[v].reduce((a, [, t]) => a + t, 0);
    return Number.isFinite(ms) ? `${r.kernels[v]} (${ms.toFixed(1)} ms)` : `${r.kernels[v]}`;
  };
  lines.push('', '| kernels of one run (their time) | ' + BN_VARIANTS.join(' | ') + ' |', `|---|${BN_VARIANTS.map(() => '---|').join('')}`);
  results.forEach((r, i) => lines.push(`| ${names[i]} | ${BN_VARIANTS.map((v) => kernelCell(r, v)).join(' | ')} |`));
  console.log(lines.join('\n'));
  const dir = join('tmp', 'bench');
  mkdirSync(dir, {recursive: true});
  writeFileSync(join(dir, 'batchnorm.json'), JSON.stringify(results, null, 1));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
