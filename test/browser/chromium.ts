/**
 * Finding and launching Chromium for the browser tests (see
 * ../shared/docs/browser-testing.md): CHROMIUM_PATH, then /usr/bin/chromium,
 * then Playwright's own browser. When none is found the browser tests are
 * skipped with one loud line, and REQUIRE_BROWSER=1 turns that skip into a
 * failure.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import type {BrowserContext} from 'playwright-core';

export const NO_CHROMIUM_MESSAGE = 'browser backends NOT tested: no Chromium found (install: apt-get install chromium)';

/** The Chromium executable to use, or null when there is none. */
export function findChromium(): string|null {
  const fromEnv = process.env.CHROMIUM_PATH;
  if (fromEnv && fs.existsSync(fromEnv)) return fromEnv;
  if (fs.existsSync('/usr/bin/chromium')) return '/usr/bin/chromium';
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const {chromium} = require('playwright-core') as typeof import('playwright-core');
    const own = chromium.executablePath();
    if (own && fs.existsSync(own)) return own;
  } catch {
    // playwright-core has no browser of its own here.
  }
  return null;
}

/**
 * Returns the Chromium path, or prints the loud skip line and returns null;
 * throws instead when REQUIRE_BROWSER=1.
 */
export function chromiumOrSkip(): string|null {
  const exe = findChromium();
  if (exe) return exe;
  if (process.env.REQUIRE_BROWSER === '1') {
    throw new Error(`${NO_CHROMIUM_MESSAGE}; REQUIRE_BROWSER=1 makes this a failure`);
  }
  process.stderr.write(`\n!!! ${NO_CHROMIUM_MESSAGE} !!!\n\n`);
  return null;
}

export const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-quic', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--use-angle=swiftshader', '--enable-unsafe-swiftshader',
  '--enable-unsafe-webgpu',
];

/** Launches headless Chromium with a fresh profile; close the context when done. */
export async function launchChromium(executablePath: string): Promise<{context: BrowserContext, close: () => Promise<void>}> {
  const {chromium} = await import('playwright-core');
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tfjs-norm-chromium-'));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath, headless: true, chromiumSandbox: false, args: CHROMIUM_ARGS,
  });
  return {
    context,
    close: async () => {
      await context.close();
      fs.rmSync(userDataDir, {recursive: true, force: true});
    },
  };
}
