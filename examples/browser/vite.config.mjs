// Vite config of the browser example (npm run example:browser). The page
// imports the package from its sources ('tfjs-normalization' -> src/index.ts)
// and the digits from data/. COOP/COEP headers let the wasm backend use threads.
import path from 'node:path';
import {fileURLToPath} from 'node:url';
import {defineConfig} from 'vite';

const root = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(root, '..', '..') + path.sep;
const headers = {'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp'};

export default defineConfig({
  root,
  resolve: {alias: {'tfjs-normalization': `${repo}src/index.ts`}},
  server: {host: '127.0.0.1', headers, fs: {allow: [repo]}},
  preview: {host: '127.0.0.1', headers},
  // Keep the .gz bytes as they are (served, not inlined).
  build: {outDir: `${repo}tmp/browser-example-dist`, emptyOutDir: true, assetsInlineLimit: 0},
  assetsInclude: ['**/*.gz'],
  logLevel: 'info',
});
