/**
 * The layering of src/ (ARCHITECTURE.md): no import cycle anywhere, and
 * each layer imports only the layers below it:
 * - src/kernels/contract.ts imports nothing of this package;
 * - src/kernels/** never imports src/ops, src/layers, src/io or the package root;
 * - src/ops/** never imports src/layers or src/io;
 * - src/layers/** never imports src/io or the package files (index.ts, register.ts).
 * Read from the sources' import statements (type-only imports included:
 * a type cycle is a cycle of the design).
 */
import * as fs from 'fs';
import * as path from 'path';

const SRC = path.resolve(__dirname, '..', 'src');

function sources(dir: string): string[] {
  return fs.readdirSync(dir, {withFileTypes: true}).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? sources(p) : e.name.endsWith('.ts') ? [p] : [];
  });
}

/** The files of src/ each file imports (relative imports, resolved to .ts files or index.ts). */
function importGraph(): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const file of sources(SRC)) {
    const text = fs.readFileSync(file, 'utf8');
    const specs = [...text.matchAll(/^\s*(?:import|export)\s[^;]*?\sfrom\s+'([^']+)'|^\s*import\s+'([^']+)'/gms)]
        .map((m) => m[1] ?? m[2]).filter((s) => s.startsWith('.'));
    graph.set(rel(file), specs.map((s) => {
      const base = path.resolve(path.dirname(file), s);
      const target = [`${base}.ts`, path.join(base, 'index.ts'), base].find((p) => fs.existsSync(p) && fs.statSync(p).isFile());
      if (target == null) throw new Error(`${rel(file)}: cannot resolve import '${s}'`);
      return rel(target);
    }));
  }
  return graph;
}

const rel = (p: string) => path.relative(SRC, p).split(path.sep).join('/');

/** Every cycle found by a depth-first walk (each as the path that closes it). */
function cycles(graph: Map<string, string[]>): string[][] {
  const found: string[][] = [];
  const state = new Map<string, 'open'|'done'>();
  const stack: string[] = [];
  const visit = (f: string) => {
    state.set(f, 'open');
    stack.push(f);
    for (const g of graph.get(f) ?? []) {
      if (state.get(g) === 'open') found.push([...stack.slice(stack.indexOf(g)), g]);
      else if (state.get(g) == null) visit(g);
    }
    stack.pop();
    state.set(f, 'done');
  };
  for (const f of graph.keys()) if (state.get(f) == null) visit(f);
  return found;
}

const graph = importGraph();

test('the import graph is read from every source file', () => {
  expect(graph.size).toBeGreaterThan(30);
  expect(graph.get('ops/core.ts')).toContain('kernels/index.ts');
  expect(graph.get('kernels/index.ts')).toContain('kernels/cpu.ts');
});

test('the cycle check finds a cycle when there is one', () => {
  const g = new Map([['a.ts', ['b.ts']], ['b.ts', ['c.ts']], ['c.ts', ['a.ts']], ['d.ts', ['a.ts']]]);
  expect(cycles(g)).toEqual([['a.ts', 'b.ts', 'c.ts', 'a.ts']]);
});

test('src/ has no import cycle', () => {
  expect(cycles(graph).map((c) => c.join(' -> '))).toEqual([]);
});

test('each layer imports only the layers below it', () => {
  const violations: string[] = [];
  for (const [file, deps] of graph) {
    for (const dep of deps) {
      const bad = file === 'kernels/contract.ts' ||
          (file.startsWith('kernels/') && !dep.startsWith('kernels/')) ||
          (file.startsWith('ops/') && (dep.startsWith('layers/') || dep.startsWith('io/') || !dep.includes('/'))) ||
          (file.startsWith('layers/') && (dep.startsWith('io/') || !dep.includes('/')));
      if (bad) violations.push(`${file} imports ${dep}`);
    }
  }
  expect(violations).toEqual([]);
});

test('the kernels\' test counters (src/kernels/trace.ts) count only under test: null on import, installed by no file of src/', async () => {
  const installers = [...graph.keys()].filter(
      (f) => f !== 'kernels/trace.ts' && fs.readFileSync(path.join(SRC, f), 'utf8').includes('installKernelTrace'));
  expect(installers).toEqual([]);
  const readers = [...graph.keys()].filter((f) => (graph.get(f) ?? []).includes('kernels/trace.ts')).sort();
  expect(readers).toEqual(['kernels/simd/engine.ts', 'kernels/simd/run.ts', 'kernels/tensorflow.ts']);
  // This test file installs nothing: the counters are null, so the kernels count nothing.
  const trace = await import('../src/kernels/trace');
  expect(trace.kernelTrace).toBeNull();
  const installed = trace.installKernelTrace();
  expect(trace.kernelTrace).toBe(installed);
  expect(trace.installKernelTrace()).toBe(installed);
  expect(installed.simd.forward).toEqual({copy: 0, view: 0});
});
