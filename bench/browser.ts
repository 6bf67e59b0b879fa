/**
 * `npm run bench:browser`: the browser half of the benchmark. Bundles and
 * serves the browser test page (test/browser/serve.ts: the same page and
 * server as the browser tests), opens it in headless Chromium
 * (test/browser/chromium.ts) and runs bench/browser_page.ts on webgl,
 * webgpu and wasm: the cases of bench/bench.ts, variants interleaved.
 *
 *   npm run bench:browser                         # 7 rounds, webgl, webgpu, wasm, wasm-unthreaded
 *   npm run bench:browser -- --rounds 5 --backends webgl --only gn-s1,ln
 *   npm run bench:browser -- --backends wasm,wasm-unthreaded --threads 2
 *
 * 'wasm' is the threaded build (the page cross-origin isolated, as
 * served; `--threads N`, default 2: the page reports 2N cores, since tfjs
 * sizes its pool at half of them, and asks for N); 'wasm-unthreaded' the
 * same page without COOP/COEP (tfjs's unthreaded SIMD build). Both add the
 * fused kernels on their JS loops (SIMD off) and report which build ran
 * and the calls into the SIMD module (test/browser/simd_probe.ts). Cases
 * run one after the other on every backend (a case's variants
 * interleaved within a page), so the two builds' numbers are minutes
 * apart at most.
 *
 * Chromium here draws WebGL2 and WebGPU with SwiftShader, a CPU emulation
 * of a GPU: absolute times say little about real GPUs.
 * Writes tmp/bench/browser.json and tmp/bench/BROWSER.md (ignored by git);
 * with --write, the committed bench/results/browser.json and BROWSER.md.
 */
import {mkdirSync, writeFileSync} from 'node:fs';
import {join} from 'node:path';

import {BROWSER_CASES, type BrowserBenchResult} from './browser_page';
import type {WasmBuildInfo} from '../test/parity/wasm_simd';
import {findChromium, launchChromium} from '../test/browser/chromium';
import type {Page} from 'playwright-core';

import type {PageApi} from '../test/browser/page';
import {bundlePage, servePage} from '../test/browser/serve';

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

const VARIANTS: Array<[string, string]> = [
  ['fused', 'this package, fused'], ['jsLoops', 'fused, JS loops (SIMD off)'], ['tfop', 'this package, tf-op path'],
  ['naive', 'naive composite'], ['bn', 'built-in BatchNorm (training)'], ['builtinLN', 'built-in LayerNorm'],
];

/** A --backends entry: the backend the page runs, and the page's query. */
interface Target {
  backend: string;
  query: string;
  title: string;
}

function targetOf(name: string, threads: number): Target {
  switch (name) {
    case 'wasm':
      return {backend: 'wasm', query: `?probe=1&cores=${2 * threads}&threads=${threads}`,
        title: `wasm, threaded build (cross-origin isolated, ${threads} threads)`};
    case 'wasm-unthreaded':
      return {backend: 'wasm', query: '?isolated=0&probe=1', title: 'wasm, unthreaded SIMD build (no COOP/COEP)'};
    default:
      return {backend: name, query: '', title: name};
  }
}

const fmt = (v: number) => (v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2));

async function main() {
  const argv = process.argv.slice(2);
  const get = (k: string) => {
    const i = argv.indexOf(k);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const rounds = Number(get('--rounds') ?? 7);
  const backends = (get('--backends') ?? 'webgl,webgpu,wasm,wasm-unthreaded').split(',');
  const only = get('--only')?.split(',');
  const threads = Number(get('--threads') ?? 2);
  const targets = new Map(backends.map((b) => [b, targetOf(b, threads)]));
  const exe = findChromium();
  if (!exe) throw new Error('bench:browser needs Chromium (apt-get install chromium)');
  const server = await servePage(await bundlePage());
  const browser = await launchChromium(exe);
  const results: Array<BrowserBenchResult&{stats: Record<string, Stat>}> = [];
  const builds: Record<string, {build: WasmBuildInfo, simd: Awaited<ReturnType<PageApi['simdInstances']>>}> = {};
  const t0 = Date.now();
  let chromiumVersion = '';
  try {
    const pages = new Map<string, Page>();
    const pageFor = async (query: string): Promise<Page> => {
      let page = pages.get(query);
      if (!page) {
        page = await browser.context.newPage();
        await page.goto(`${server.url}${query}`);
        await page.waitForFunction(() => (window as unknown as {tfjsNormTest?: PageApi}).tfjsNormTest != null);
        pages.set(query, page);
      }
      return page;
    };
    chromiumVersion = browser.context.browser()?.version() ??
        await (await pageFor('')).evaluate(() => navigator.userAgent);
    for (const c of BROWSER_CASES.filter((x) => !only || only.includes(x.id))) {
      for (const name of backends) {
        const target = targets.get(name) as Target;
        const page = await pageFor(target.query);
        const r = await page.evaluate(
            ([b, n, id]) => (window as unknown as {tfjsNormTest: PageApi}).tfjsNormTest.bench(b, n, [id]),
            [target.backend, rounds, c.id] as [string, number, string]);
        for (const res of r) {
          const stats = Object.fromEntries(Object.entries(res.samples).map(([k, v]) => [k, stat(v)]));
          results.push({...res, backend: name, stats});
          process.stderr.write(`${name} ${res.label}: ${Object.entries(stats).map(([k, st]) => `${k} ${fmt(st.median)}`).join(', ')}\n`);
        }
      }
    }
    for (const [name, target] of targets) {
      if (target.backend !== 'wasm') continue;
      const page = await pageFor(target.query);
      builds[name] = {
        build: await page.evaluate(() => (window as unknown as {tfjsNormTest: PageApi}).tfjsNormTest.wasmBuild()),
        simd: await page.evaluate(() => (window as unknown as {tfjsNormTest: PageApi}).tfjsNormTest.simdInstances()),
      };
      process.stderr.write(`${name}: ${JSON.stringify(builds[name])}\n`);
    }
  } finally {
    await browser.close();
    await server.close();
  }
  const outDir = argv.includes('--write') ? join(__dirname, 'results') : join(__dirname, '..', 'tmp', 'bench');
  mkdirSync(outDir, {recursive: true});
  const date = new Date().toISOString();
  const command = `npm run bench:browser -- ${argv.join(' ')}`.trim();
  writeFileSync(join(outDir, 'browser.json'),
                JSON.stringify({date, command, chromium: chromiumVersion, rounds, seconds: (Date.now() - t0) / 1000, builds, results}, null, 1));
  const lines = [
    '# Browser benchmark results', '',
    `Generated by \`${command}\` on ${date}: headless Chromium ${chromiumVersion} (Debian), 2 CPUs, ` +
    `tfjs 4.22.0, ${rounds} interleaved rounds after one warm-up round. WebGL2 and WebGPU run on **SwiftShader, a CPU ` +
    'emulation of a GPU**: the absolute numbers say little about real GPUs; the ratios compare code paths on the same ' +
    'emulated device. A run is timed until one element of its output is read back.', '',
    'Milliseconds: median (p25–p75). Channels-last (NHWC) inputs, the shapes of bench/bench.ts.', '',
  ];
  const ratio = (x: Stat|undefined, y: Stat|undefined) => (x && y ? `${(x.median / y.median).toFixed(2)}×` : '–');
  for (const backend of backends) {
    const rows = results.filter((r) => r.backend === backend);
    if (rows.length === 0) continue;
    const variants = VARIANTS.filter(([k]) => rows.some((r) => r.stats[k]));
    const loops = variants.some(([k]) => k === 'jsLoops');
    lines.push(`## ${(targets.get(backend) as Target).title}`, '');
    const b = builds[backend];
    if (b) {
      const simd = b.simd.map((i) => `${i.shared ? 'shared' : 'unshared'} memory, ${i.onBackendHeap ? 'on the backend\'s heap' : 'elsewhere'}, ${i.calls} calls`);
      lines.push(`Build: ${b.build.binaries.join(', ')}; cross-origin isolated ${String(b.build.crossOriginIsolated)}, ` +
          `${b.build.threads} thread(s), heap shared ${String(b.build.heapShared)}. SIMD module instances: ${simd.join('; ') || 'none'}.`, '');
    }
    lines.push(`| case | ${variants.map((v) => v[1]).join(' | ')} | fused / BatchNorm | fused / tf-op path |${loops ? ' JS loops / fused |' : ''}`);
    lines.push(`|---|${variants.map(() => '---').join('|')}|---|---|${loops ? '---|' : ''}`);
    for (const r of rows) {
      const cell = (k: string) => (r.stats[k] ? `${fmt(r.stats[k].median)} (${fmt(r.stats[k].p25)}–${fmt(r.stats[k].p75)})` : '–');
      lines.push(`| ${r.label} | ${variants.map((v) => cell(v[0])).join(' | ')} | ${ratio(r.stats.fused, r.stats.bn)} | ` +
          `${ratio(r.stats.fused, r.stats.tfop)} |${loops ? ` ${ratio(r.stats.jsLoops, r.stats.fused)} |` : ''}`);
    }
    lines.push('');
  }
  if (targets.has('wasm') && targets.has('wasm-unthreaded')) {
    const th = results.filter((r) => r.backend === 'wasm');
    const un = new Map(results.filter((r) => r.backend === 'wasm-unthreaded').map((r) => [r.id, r]));
    lines.push('## wasm: the threaded build beside the unthreaded one', '',
        'Medians (ms). "SIMD": the fused kernels on the SIMD module (on the threaded build: its shared-memory variant); ' +
        '"JS loops": the same kernels with TFJS_NORMALIZATION_SIMD false, what the threaded build ran before.', '',
        '| case | threaded, SIMD | threaded, JS loops | threaded, tf-op path | unthreaded, SIMD | unthreaded, JS loops | ' +
        'unthreaded, tf-op path | threaded: JS loops / SIMD | threaded SIMD / unthreaded SIMD |',
        '|---|---|---|---|---|---|---|---|---|');
    for (const r of th) {
      const u = un.get(r.id);
      const m = (x: Stat|undefined) => (x ? fmt(x.median) : '–');
      lines.push(`| ${r.label} | ${m(r.stats.fused)} | ${m(r.stats.jsLoops)} | ${m(r.stats.tfop)} | ${m(u?.stats.fused)} | ` +
          `${m(u?.stats.jsLoops)} | ${m(u?.stats.tfop)} | ${ratio(r.stats.jsLoops, r.stats.fused)} | ${ratio(r.stats.fused, u?.stats.fused)} |`);
    }
    lines.push('');
  }
  writeFileSync(join(outDir, 'BROWSER.md'), lines.join('\n'));
  process.stderr.write(`wrote ${join(outDir, 'browser.json')} and BROWSER.md (${((Date.now() - t0) / 1000).toFixed(0)} s)\n`);
}

main().catch((e) => {
  process.stderr.write(`${(e as Error).stack ?? String(e)}\n`);
  process.exit(1);
});
