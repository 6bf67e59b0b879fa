/**
 * Bundling and serving the browser test page: esbuild bundles
 * test/browser/page.ts with tfjs, its backends and the package's browser
 * build (dist/index.mjs, the file `npm run build` ships), and a small static
 * server on 127.0.0.1 serves it with the COOP/COEP headers that give the
 * wasm backend its threads (`/?isolated=0`: without them). Used by
 * parity.test.ts, threaded.test.ts and bench/browser.ts.
 */
import * as fs from 'fs';
import * as http from 'http';
import type {AddressInfo} from 'net';
import * as path from 'path';

export const ROOT = path.resolve(__dirname, '..', '..');
const DIST = path.join(ROOT, 'dist', 'index.mjs');

/** The page script: one ES module with everything in it. */
export async function bundlePage(): Promise<string> {
  if (!fs.existsSync(DIST)) {
    throw new Error(`browser tests: ${DIST} is missing; run \`npm run build\` first (npm test and npm run test:browser do)`);
  }
  const {build} = await import('esbuild');
  const result = await build({
    entryPoints: [path.join(ROOT, 'test', 'browser', 'page.ts')],
    bundle: true,
    write: false,
    format: 'esm',
    platform: 'browser',
    target: 'es2020',
    logLevel: 'error',
    define: {'process.env.NODE_ENV': '"production"'},
    // The package's io.fileSystem imports node:fs/promises lazily, only when
    // used; in the page it never is.
    external: ['node:*'],
    plugins: [{
      name: 'package-under-test',
      setup(b) {
        // The built package, not src/ (tsconfig's paths would give src/).
        b.onResolve({filter: /^tfjs-normalization$/}, () => ({path: DIST}));
      },
    }],
  });
  return result.outputFiles[0].text;
}

const PAGE = '<!doctype html><meta charset="utf-8"><title>tfjs-normalization browser tests</title>' +
    '<script type="module" src="/page.js"></script><body>tfjs-normalization browser tests</body>';

/** Serves the page, its script and the wasm backend's binaries on 127.0.0.1 (a free port). */
export async function servePage(script: string): Promise<{url: string, close: () => Promise<void>}> {
  const wasmDir = path.join(path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'dist');
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    // `?isolated=0`: the page without COOP/COEP, so not cross-origin isolated
    // (no SharedArrayBuffer: tfjs loads its unthreaded SIMD build).
    const isolation = url.searchParams.get('isolated') === '0' ? {} : {
      'Cross-Origin-Opener-Policy': 'same-origin',
      'Cross-Origin-Embedder-Policy': 'require-corp',
    };
    const headers = {...isolation, 'Cross-Origin-Resource-Policy': 'same-origin', 'Cache-Control': 'no-store'};
    const send = (status: number, type: string, body: string|Buffer) => {
      res.writeHead(status, {...headers, 'Content-Type': type});
      res.end(body);
    };
    const wasm = /^\/wasm\/([\w.-]+\.wasm)$/.exec(url.pathname);
    if (url.pathname === '/') {
      send(200, 'text/html; charset=utf-8', PAGE);
    } else if (url.pathname === '/page.js') {
      send(200, 'text/javascript; charset=utf-8', script);
    } else if (wasm && fs.existsSync(path.join(wasmDir, wasm[1]))) {
      send(200, 'application/wasm', fs.readFileSync(path.join(wasmDir, wasm[1])));
    } else {
      send(404, 'text/plain', `not found: ${url.pathname}`);
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const {port} = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
