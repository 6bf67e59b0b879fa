// npm run test:pack: what a registry user would get.
//
// Clones the repository's committed HEAD into a temporary folder (a fresh
// clone: no dist/, nothing untracked), links this checkout's node_modules
// for the build tools, runs `npm pack` there (whose prepack builds dist/),
// checks the tarball's file list, runs `npm publish --dry-run`, installs the
// tarball with @tensorflow/tfjs into a temporary consumer project and runs
// a CommonJS and an ES module smoke script and a strict type-check from it.
// Everything lives under the OS temp folder and is removed at the end.
import {execFileSync} from 'node:child_process';
import {mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {dirname, join, resolve} from 'node:path';
import {fileURLToPath} from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const work = mkdtempSync(join(tmpdir(), 'tfjs-normalization-pack-'));
const t0 = Date.now();
const run = (cmd, args, cwd) => {
  process.stdout.write(`pack-smoke: ${cmd} ${args.join(' ')}  (in ${cwd})\n`);
  return execFileSync(cmd, args, {cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit']});
};
function fail(message) {
  throw new Error(`pack-smoke: ${message}`);
}

try {
  const clone = join(work, 'clone');
  run('git', ['clone', '--quiet', '--no-local', root, clone], work);
  symlinkSync(join(root, 'node_modules'), join(clone, 'node_modules'), 'dir');
  const packed = JSON.parse(run(npm, ['pack', '--json', '--pack-destination', work], clone).replace(/^[^[]*/s, ''));
  const files = packed[0].files.map((f) => f.path).sort();
  const tarball = join(work, packed[0].filename);
  process.stdout.write(`pack-smoke: ${packed[0].filename}: ${files.length} files, ${packed[0].size} bytes\n  ${files.join('\n  ')}\n`);
  const required = ['package.json', 'README.md', 'LICENSE', 'CHANGELOG.md', 'dist/index.cjs', 'dist/index.mjs', 'dist/types/index.d.ts'];
  const missing = required.filter((f) => !files.includes(f));
  if (missing.length) fail(`the tarball lacks ${missing.join(', ')}`);
  const stray = files.filter((f) => !/^(package\.json|README\.md|LICENSE|CHANGELOG\.md|dist\/.*)$/.test(f));
  if (stray.length) fail(`the tarball ships files outside dist/ and the docs: ${stray.join(', ')}`);

  run(npm, ['publish', '--dry-run', '--ignore-scripts'], clone);

  const consumer = join(work, 'consumer');
  run('mkdir', ['-p', consumer], work);
  writeFileSync(join(consumer, 'package.json'), JSON.stringify({name: 'consumer', private: true, version: '0.0.0'}));
  const tfVersion = JSON.parse(readFileSync(join(root, 'node_modules', '@tensorflow', 'tfjs', 'package.json'), 'utf8')).version;
  run(npm, ['install', '--no-audit', '--no-fund', '--prefer-offline', tarball, `@tensorflow/tfjs@${tfVersion}`], consumer);

  const body = `
const y = ops.groupNorm(tf.tensor4d([1, 3, 0, 4, 3, 1, 4, 0], [1, 1, 2, 4]), {groups: 2, epsilon: 0});
const model = tf.sequential({layers: [layers.groupNormalization({inputShape: [4], groups: 2})]});
const map = tf.serialization.SerializationMap.getMap().classNameMap;
console.log(JSON.stringify({
  y: Array.from(y.dataSync(), (v) => Math.round(v * 1e4) / 1e4),
  layer: model.layers[0] instanceof GroupNormalization,
  registered: ['GroupNormalization', 'InstanceNormalization', 'LayerNormalization', 'RMSNormalization'].map((k) => map[k] && map[k][0].name),
}));
`;
  writeFileSync(join(consumer, 'smoke.cjs'), `const tf = require('@tensorflow/tfjs');\nconst {ops, layers, GroupNormalization} = require('tfjs-normalization');\n${body}`);
  writeFileSync(join(consumer, 'smoke.mjs'), `import * as tf from '@tensorflow/tfjs';\nimport {ops, layers, GroupNormalization} from 'tfjs-normalization';\n${body}`);
  // Group 0 (channels 0, 1) holds 1, 3, 3, 1 and group 1 holds 0, 4, 4, 0:
  // each has variance equal to its squared half-range, so y is +-1.
  const expected = JSON.stringify({
    y: [-1, 1, -1, 1, 1, -1, 1, -1],
    layer: true,
    registered: ['GroupNormalization', 'InstanceNormalization', 'LayerNormalization', 'RMSNormalization'],
  });
  for (const script of ['smoke.cjs', 'smoke.mjs']) {
    const out = run(process.execPath, [script], consumer).trim().split('\n').filter((l) => l.startsWith('{')).pop();
    if (out !== expected) fail(`${script} printed ${out}, expected ${expected}`);
    process.stdout.write(`pack-smoke: ${script} ok: ${out}\n`);
  }
  writeFileSync(join(consumer, 'types.mts'), `
import * as tf from '@tensorflow/tfjs';
import {ops, layers, GroupNormalization, type GroupNormalizationArgs} from 'tfjs-normalization';
const args: GroupNormalizationArgs = {groups: 4};
const layer: GroupNormalization = layers.groupNormalization(args);
const y: tf.Tensor = ops.layerNorm(tf.ones([2, 3]), {axis: [-1]});
export {layer, y};
`);
  writeFileSync(join(consumer, 'tsconfig.json'), JSON.stringify({
    compilerOptions: {strict: true, module: 'node16', moduleResolution: 'node16', target: 'es2020', noEmit: true, skipLibCheck: true, types: []},
    files: ['types.mts'],
  }));
  run(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', consumer], consumer);
  process.stdout.write(`pack-smoke: the tarball installs, runs (CJS and ESM) and type-checks in a consumer (${((Date.now() - t0) / 1000).toFixed(0)} s)\n`);
} finally {
  rmSync(work, {recursive: true, force: true});
}
