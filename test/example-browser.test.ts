/**
 * The browser example (examples/browser) in headless Chromium: vite serves
 * the page, the page trains the GroupNorm digits CNN on WebGL (SwiftShader),
 * saves it to indexeddb:// and reloads it. Checks that the loss fell and
 * that the reloaded model predicts exactly what the trained one did, and
 * writes a screenshot to tmp/browser-example.png (ignored by git);
 * `npm run docs:screenshot` (WRITE_DOCS_SCREENSHOT=1) writes the committed
 * docs/browser-example.png instead.
 *
 * Skipped with one loud line when no Chromium is found (REQUIRE_BROWSER=1
 * makes that a failure): see test/browser/chromium.ts.
 */
import {ChildProcess, spawn} from 'child_process';
import * as fs from 'fs';
import * as path from 'path';

import {chromiumOrSkip, launchChromium} from './browser/chromium';

const ROOT = path.resolve(__dirname, '..');
const SCREENSHOT = process.env.WRITE_DOCS_SCREENSHOT === '1'
  ? path.join(ROOT, 'docs', 'browser-example.png')
  : path.join(ROOT, 'tmp', 'browser-example.png');

interface Result {
  done: boolean;
  error?: string;
  backend: string;
  tried: string[];
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

/** Starts vite's dev server on a free port; resolves with its URL. */
function startVite(): Promise<{url: string, server: ChildProcess}> {
  return new Promise((resolve, reject) => {
    const server = spawn(process.execPath, [
      path.join(ROOT, 'node_modules', 'vite', 'bin', 'vite.js'), '--config', path.join(ROOT, 'examples', 'browser', 'vite.config.mjs'),
      '--port', '0', '--host', '127.0.0.1',
    ], {cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe']});
    let out = '';
    const timer = setTimeout(() => reject(new Error(`vite did not start within 30 s:\n${out}`)), 30000);
    const onData = (b: Buffer) => {
      out += b.toString();
      // eslint-disable-next-line no-control-regex
      const m = out.replace(/\x1b\[[0-9;]*m/g, '').match(/Local:\s+(http:\/\/127\.0\.0\.1:\d+\/)/);
      if (m) {
        clearTimeout(timer);
        resolve({url: m[1], server});
      }
    };
    server.stdout?.on('data', onData);
    server.stderr?.on('data', onData);
    server.on('exit', (code) => reject(new Error(`vite exited with ${code}:\n${out}`)));
  });
}

const exe = chromiumOrSkip();
const maybe = exe ? test : test.skip;

maybe('examples/browser: trains on WebGL, loss falls, the indexeddb:// reload predicts identically; screenshot saved', async () => {
  const {url, server} = await startVite();
  const browser = await launchChromium(exe as string);
  try {
    const page = await browser.context.newPage();
    const logs: string[] = [];
    page.on('console', (m) => logs.push(`${m.type()}: ${m.text()}`));
    page.on('pageerror', (e) => logs.push(`pageerror: ${e.message}`));
    await page.setViewportSize({width: 1000, height: 720});
    // 1024 training digits, batch 64, 3 epochs: quick on SwiftShader's software WebGL.
    await page.goto(`${url}?train=1024&batch=64&epochs=3`);
    await page.waitForFunction(() => (window as unknown as {digitsExample?: {done: boolean}}).digitsExample?.done === true,
                               undefined, {timeout: 240000});
    const r = await page.evaluate(() => (window as unknown as {digitsExample: Result}).digitsExample);
    if (r.error) throw new Error(`the page failed: ${r.error}\n${logs.join('\n')}`);
    fs.mkdirSync(path.dirname(SCREENSHOT), {recursive: true});
    await page.screenshot({path: SCREENSHOT, fullPage: true});
    process.stdout.write(`browser example: ${r.backend}, ${r.seconds.toFixed(1)} s, epoch losses ${r.epochLosses.map((l) => l.toFixed(3)).join(', ')}, ` +
                         `accuracy ${(100 * r.accuracy).toFixed(1)}%\n`);

    expect(r.backend).toBe('webgl');
    expect(r.tried).toEqual(['webgl']);
    // The loss fell: the last epoch's mean is well under the first's, and the last batches under the first ones.
    expect(r.epochLosses.length).toBeGreaterThanOrEqual(2);
    expect(r.epochLosses[r.epochLosses.length - 1]).toBeLessThan(0.5 * r.epochLosses[0]);
    const mean = (a: number[]) => a.reduce((s, v) => s + v, 0) / a.length;
    expect(mean(r.losses.slice(-10))).toBeLessThan(0.25 * mean(r.losses.slice(0, 10)));
    // It learned the digits, and the reload from indexeddb:// is the same model.
    expect(r.accuracy).toBeGreaterThan(0.9);
    expect(r.predictionsEqual).toBe(true);
    expect(r.reloadedAccuracy).toBe(r.accuracy);
    expect(r.maxProbabilityDifference).toBe(0);
    expect(r.reloadedLayerClasses.filter((c) => c === 'GroupNormalization')).toHaveLength(2);
    expect(r.leakedTensors).toBe(0);
  } finally {
    await browser.close();
    server.kill();
  }
}, 300000);
