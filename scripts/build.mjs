// Builds dist/: index.mjs (ESM) and index.cjs (CommonJS) with esbuild, and
// the .d.ts files with tsc. @tensorflow/* stay external (peer dependencies).
import {build} from 'esbuild';
import {execFileSync} from 'node:child_process';
import {rmSync} from 'node:fs';

rmSync('dist', {recursive: true, force: true});
const common = {
  entryPoints: ['src/index.ts'],
  bundle: true,
  external: ['@tensorflow/*', 'node:*'],
  target: 'es2020',
  sourcemap: true,
  keepNames: true,
  logLevel: 'warning',
};
await build({...common, format: 'esm', platform: 'neutral', outfile: 'dist/index.mjs'});
await build({...common, format: 'cjs', platform: 'node', outfile: 'dist/index.cjs'});
execFileSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.build.json'], {stdio: 'inherit'});
