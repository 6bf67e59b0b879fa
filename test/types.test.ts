/**
 * The type test (test/types/ops.types.ts: rank-typed uses of the ops, and
 * misuses marked @ts-expect-error) against the built declarations in
 * dist/types, as a consumer sees them; `npm run typecheck` checks the same
 * file against the sources. An unused @ts-expect-error is an error, so a
 * misuse that starts to type-check fails this test too.
 */
import {execFileSync} from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

const root = path.resolve(__dirname, '..');

test('ops keep the input rank in their types; misuses fail to type-check (built .d.ts)', () => {
  if (!fs.existsSync(path.join(root, 'dist', 'types', 'index.d.ts'))) {
    throw new Error('dist/types is missing: run `npm run build` (npm test does it first)');
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tfjs-normalization-types-'));
  try {
    const config = path.join(dir, 'tsconfig.json');
    fs.writeFileSync(config, JSON.stringify({
      compilerOptions: {
        strict: true, noEmit: true, target: 'es2020', module: 'commonjs', moduleResolution: 'node',
        skipLibCheck: true, types: [], baseUrl: root,
        paths: {'tfjs-normalization': ['dist/types/index.d.ts'], '@tensorflow/tfjs': ['node_modules/@tensorflow/tfjs']},
      },
      files: [path.join(root, 'test', 'types', 'ops.types.ts')],
    }));
    let out = '';
    try {
      execFileSync(process.execPath, [path.join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', config],
                   {cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe']});
    } catch (e) {
      out = String((e as {stdout?: string}).stdout ?? e);
    }
    expect(out).toBe('');
  } finally {
    fs.rmSync(dir, {recursive: true, force: true});
  }
}, 60000);
