/**
 * The README stays short and its usage example is the runnable
 * examples/quickstart.ts, character for character; every relative link in
 * the README and docs/ points at a file that exists.
 */
import {execFileSync} from 'child_process';
import * as fs from 'fs';
import * as path from 'path';

const root = path.join(__dirname, '..');
const readme = fs.readFileSync(path.join(root, 'README.md'), 'utf8');

test('README is at most 250 lines', () => {
  expect(readme.split('\n').length).toBeLessThanOrEqual(250);
});

test("README's usage example is examples/quickstart.ts, and it runs", () => {
  const block = /## Use\n[\s\S]*?```ts\n([\s\S]*?)```/.exec(readme);
  expect(block).not.toBeNull();
  const quickstart = fs.readFileSync(path.join(root, 'examples', 'quickstart.ts'), 'utf8');
  expect(block![1].trim()).toBe(quickstart.trim());
  const out = execFileSync(process.execPath, [require.resolve('tsx/cli'), 'examples/quickstart.ts'],
    {cwd: root, encoding: 'utf8'});
  expect(out).toMatch(/y \[ 2, 4, 4, 16 \] dx \[ 2, 4, 4, 16 \] z \[ 2, 4, 4, 16 \]/);
}, 120000);

test('every relative link in the README and docs/ exists', () => {
  const files = ['README.md', ...fs.readdirSync(path.join(root, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];
  const missing: string[] = [];
  for (const file of files) {
    const text = fs.readFileSync(path.join(root, file), 'utf8');
    for (const m of text.matchAll(/\]\(([^)#\s]+)(#[^)]*)?\)/g)) {
      if (/^[a-z]+:/.test(m[1])) continue;
      if (!fs.existsSync(path.join(root, path.dirname(file), m[1]))) missing.push(`${file}: ${m[1]}`);
    }
  }
  expect(missing).toEqual([]);
});
