/**
 * The built package (npm run build, run by `npm test` first): ESM and
 * CommonJS entry points and .d.ts types, from the repo itself
 * (self-reference) and from a consumer project.
 */
import {execFileSync} from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

const root = path.resolve(__dirname, '..');

function node(args: string[], cwd: string): string {
  return execFileSync(process.execPath, args, {cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe']});
}

const CJS = `
const tf = require('@tensorflow/tfjs');
const {ops, layers, GroupNormalization} = require('tfjs-normalization');
const y = ops.groupNorm(tf.tensor2d([[1, 2, 3, 5]]), {groups: 2, epsilon: 0});
const map = tf.serialization.SerializationMap.getMap().classNameMap;
console.log(JSON.stringify({y: Array.from(y.dataSync()), cls: layers.groupNormalization({groups: 2}) instanceof GroupNormalization,
  registered: ['GroupNormalization', 'InstanceNormalization', 'LayerNormalization', 'RMSNormalization'].map((k) => map[k] && map[k][0].name)}));
`;
const ESM = `
import * as tf from '@tensorflow/tfjs';
import {ops, layers, GroupNormalization} from 'tfjs-normalization';
const y = ops.groupNorm(tf.tensor2d([[1, 2, 3, 5]]), {groups: 2, epsilon: 0});
const map = tf.serialization.SerializationMap.getMap().classNameMap;
console.log(JSON.stringify({y: Array.from(y.dataSync()), cls: layers.groupNormalization({groups: 2}) instanceof GroupNormalization,
  registered: ['GroupNormalization', 'InstanceNormalization', 'LayerNormalization', 'RMSNormalization'].map((k) => map[k] && map[k][0].name)}));
`;
const EXPECTED = {
  y: [-1, 1, -1, 1], cls: true,
  registered: ['GroupNormalization', 'InstanceNormalization', 'LayerNormalization', 'RMSNormalization'],
};

function lastJson(out: string): unknown {
  const line = out.trim().split('\n').filter((l) => l.startsWith('{')).pop() as string;
  return JSON.parse(line);
}

beforeAll(() => {
  if (!fs.existsSync(path.join(root, 'dist', 'index.cjs'))) {
    throw new Error('dist/ is missing: run `npm run build` (npm test does it first)');
  }
});

test('the bundles hold no way to install the kernels\' test counters (src/kernels/trace.ts): nothing in them counts', () => {
  for (const file of ['index.mjs', 'index.cjs']) {
    const text = fs.readFileSync(path.join(root, 'dist', file), 'utf8');
    expect(`${file}: ${text.includes('installKernelTrace')}`).toBe(`${file}: false`);
    // The counters' one binding, declared null and never assigned.
    expect(`${file}: ${(text.match(/\bkernelTrace = /g) ?? []).length}`).toBe(`${file}: 1`);
  }
});

describe('from the repo itself (self-reference through package.json exports)', () => {
  test('require()', () => {
    expect(lastJson(node(['-e', CJS], root))).toEqual(EXPECTED);
  });
  test('import', () => {
    expect(lastJson(node(['--input-type=module', '-e', ESM], root))).toEqual(EXPECTED);
  });
});

describe('from a consumer project', () => {
  let dir: string;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tfjs-normalization-consumer-'));
    fs.mkdirSync(path.join(dir, 'node_modules'));
    fs.symlinkSync(root, path.join(dir, 'node_modules', 'tfjs-normalization'));
    fs.symlinkSync(path.join(root, 'node_modules', '@tensorflow'), path.join(dir, 'node_modules', '@tensorflow'));
    fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({name: 'consumer', private: true}));
  });
  afterAll(() => fs.rmSync(dir, {recursive: true, force: true}));

  test('require() and import give the package', () => {
    fs.writeFileSync(path.join(dir, 'a.cjs'), CJS);
    fs.writeFileSync(path.join(dir, 'b.mjs'), ESM);
    expect(lastJson(node(['a.cjs'], dir))).toEqual(EXPECTED);
    expect(lastJson(node(['b.mjs'], dir))).toEqual(EXPECTED);
  });

  test('the .d.ts types type-check a consumer (strict, node16 resolution)', () => {
    fs.writeFileSync(path.join(dir, 'c.mts'), `
import * as tf from '@tensorflow/tfjs';
import {ops, layers, GroupNormalization, type GroupNormalizationArgs} from 'tfjs-normalization';
const args: GroupNormalizationArgs = {groups: 4, axis: -1, epsilon: 1e-5};
const layer: GroupNormalization = layers.groupNormalization(args);
const y: tf.Tensor = ops.layerNorm(tf.ones([2, 3]), {axis: [-1]});
export {layer, y};
`);
    fs.writeFileSync(path.join(dir, 'tsconfig.json'), JSON.stringify({
      compilerOptions: {strict: true, module: 'node16', moduleResolution: 'node16', target: 'es2020', noEmit: true, skipLibCheck: true, types: []},
      files: ['c.mts'],
    }));
    execFileSync(process.execPath, [path.join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', dir], {cwd: dir, encoding: 'utf8'});
  });
});
