/**
 * The backend parity suite (./suite.ts) in Node: cpu and wasm, and
 * tensorflow (tfjs-node) when `@tensorflow/tfjs-node` can be imported;
 * when it cannot, one loud line says so and its test is reported as
 * skipped (REQUIRE_TFJS_NODE=1 makes that a failure). The browser backends
 * run the same suite in test/browser/parity.test.ts.
 */
import * as tf from '@tensorflow/tfjs';
import {setWasmPaths} from '@tensorflow/tfjs-backend-wasm';
import * as path from 'path';

import * as lib from '../../src/index';
import {loadReferenceCases} from '../fixtures';
import {reportTfjsNodeMissing, tryTfjsNode} from '../helpers';
import {buildCases, FixtureCase, toHalf} from './cases';
import {expectAllPass} from './expect';
import {runFamilyParity} from './family';
import {checkRunningStats, formatSummary, maxErr, ParityReport, runParity, RunningStatsFixture, useBackend} from './suite';
import {runWsParity, WsRecord} from './ws';
import runningStatsFile from '../fixtures/instance-norm-running-stats.json';

const runningStatsFixture = runningStatsFile as unknown as RunningStatsFixture;

const fixtures = loadReferenceCases() as FixtureCase[];
const wasmDist = path.join(path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'dist') + path.sep;

const NO_TFJS_NODE_MESSAGE = 'tensorflow (tfjs-node) backend NOT tested: @tensorflow/tfjs-node is not installed';

describe('parity suite itself', () => {
  test('covers fixtures, ranks 2-5, both layouts, group counts, center/scale, LN axis lists, RMS, large values', () => {
    const built = buildCases({fixtures, only: ['random/', 'large/']});
    const names = built.map((c) => c.name);
    expect(buildCases({fixtures, only: ['fixture/']}).length).toBe(fixtures.length);
    for (const rank of [2, 3, 4, 5]) expect(names.some((n) => n.startsWith(`random/group r${rank} last`))).toBe(true);
    for (const rank of [3, 4, 5]) expect(names.some((n) => n.startsWith(`random/group r${rank} first`))).toBe(true);
    const groupCases = built.filter((c) => c.name.startsWith('random/group'));
    expect(new Set(groupCases.map((c) => c.groups)).size).toBeGreaterThanOrEqual(4);
    const affine = new Set(groupCases.map((c) => `${c.gamma != null}/${c.beta != null}`));
    expect([...affine].sort()).toEqual(['false/false', 'false/true', 'true/false', 'true/true']);
    expect(names.filter((n) => n.startsWith('random/layer')).length).toBeGreaterThanOrEqual(6);
    expect(names.filter((n) => n.includes('rms')).length).toBeGreaterThanOrEqual(4);
    // Squares above the float16 maximum.
    const large = built.filter((c) => c.name.startsWith('large/'));
    expect(large.length).toBeGreaterThanOrEqual(5);
    for (const c of large) {
      const m = c.x.reduce((s, v) => s + v, 0) / c.x.length;
      const maxSq = c.kind === 'rms' ? Math.max(...c.x.map((v) => v * v)) : Math.max(...c.x.map((v) => (v - m) ** 2));
      expect(maxSq).toBeGreaterThan(65504);
    }
  });

  test('error measure: |a - r| / max(1, |r|), NaN and Inf are infinite', () => {
    expect(maxErr([1, 2, 100], [1, 2.5, 101])).toBeCloseTo(0.2, 12);
    expect(maxErr([0.5, 200], [0.5, 201])).toBeCloseTo(1 / 201, 12);
    expect(maxErr([NaN], [0])).toBe(Infinity);
    expect(maxErr([Infinity], [0])).toBe(Infinity);
    expect(maxErr([1, 2], [1])).toBe(Infinity);
  });

  test('float16 rounding', () => {
    expect(toHalf(1)).toBe(1);
    expect(toHalf(1 + 2 ** -11)).toBe(1);             // tie to even
    expect(toHalf(1 + 3 * 2 ** -11)).toBe(1 + 2 ** -9);  // tie to even, upwards
    expect(toHalf(10003)).toBe(10000);                // spacing 8 at 1e4
    expect(toHalf(65504)).toBe(65504);
    expect(toHalf(70000)).toBe(Infinity);
    expect(toHalf(-0.1)).toBeCloseTo(-0.0999755859375, 15);
  });

  test('a wrong result fails the suite (sabotaged op: y + 2e-4)', async () => {
    await tf.setBackend('cpu');
    const sabotaged = {
      ...lib,
      ops: {...lib.ops, groupNorm: (x: tf.Tensor, o: lib.GroupNormOptions) => tf.tidy(() => tf.add(lib.ops.groupNorm(x, o), 2e-4))},
    } as typeof lib;
    const report = await runParity(tf, sabotaged, {backends: ['cpu'], fixtures, only: ['fixture/gn[4, 32]g8']});
    const op = report.records.filter((r) => r.path === 'op');
    const layer = report.records.filter((r) => r.path !== 'op');
    expect(op.length).toBe(2);
    op.forEach((r) => {
      expect(r.pass).toBe(false);
      expect(r.maxErrVsRef).toBeGreaterThan(1.9e-4);
    });
    layer.forEach((r) => expect(r.pass).toBe(true));
  });
});

describe('parity on cpu and wasm (Node)', () => {
  let report: ParityReport;

  beforeAll(async () => {
    setWasmPaths(wasmDist);
    report = await runParity(tf, lib, {backends: ['cpu', 'wasm'], fixtures});
    process.stderr.write(`\n${report.summary.map(formatSummary).join('\n')}\n`);
  }, 180000);

  test.each(['cpu', 'wasm'])('%s: forward, dx, dgamma, dbeta of every op and layer within 1e-4 of float64 and cpu, no leaks', (b) => {
    const s = report.summary.find((x) => x.backend === b);
    expect(s?.active).toBe(b);
    expectAllPass(report.records, b);
  });

  test.each(['cpu', 'wasm'])('%s: weight standardization (op, WSConv2D, WSConv1D; y and gradients) within 1e-4 of float64 (1e-3 at mean 1e3), no leaks', async (b) => {
    await useBackend(tf, b);
    expectWsPass(await runWsParity(tf, lib), b);
  });

  test.each(['cpu', 'wasm'])('%s: InstanceNormalization running statistics match PyTorch, no leaks', async (b) => {
    await useBackend(tf, b);
    const {maxErr: err, leaked} = await checkRunningStats(tf, lib, runningStatsFixture);
    expect(err).toBeLessThan(1e-4);
    expect(leaked).toBe(0);
  });
});

describe('family parity on cpu and wasm (Node): UnitNormalization, LocalResponseNormalization, FRN, TLU, SpectralNormalization, WeightNormalization', () => {
  test.each(['cpu', 'wasm'])('%s: y, the gradients and the wrappers\' updated weights of every op and layer within 1e-4 of float64 and cpu, no leaks', async (b) => {
    setWasmPaths(wasmDist);
    const records = await runFamilyParity(tf, lib, {backends: [b], log: (l) => process.stderr.write(`${l}\n`)});
    expect(records.filter((r) => r.backend === b).length).toBeGreaterThanOrEqual(10);
    expect(records.filter((r) => r.backend === b && /^(spectral|weight)\//.test(r.case)).length).toBe(14);
    expectAllPass(records, b);
  }, 180000);

  test('a wrong wrapper fails it (SpectralNormalization with one power iteration too many): the training cases fail, inference passes', async () => {
    await tf.setBackend('cpu');
    class OneMore extends lib.SpectralNormalization {
      constructor(args: lib.SpectralNormalizationArgs) {
        super({...args, powerIterations: (args.powerIterations ?? 1) + 1});
      }
    }
    const records = await runFamilyParity(tf, {...lib, SpectralNormalization: OneMore} as typeof lib, {backends: ['cpu'], only: ['spectral/dense [4,5]']});
    expect(records.map((r) => [r.case, r.pass])).toEqual([
      ['spectral/dense [4,5]->3, 1 iteration inference', true], ['spectral/dense [4,5]->3, 1 iteration training', false]]);
    expect(records[1].maxErrVsRef).toBeGreaterThan(1e-3);
  });

  test('a wrong result fails it (sabotaged op: y + 2e-4), the layer path still passes', async () => {
    await tf.setBackend('cpu');
    const sabotaged = {...lib, ops: {...lib.ops, unitNorm: (x: tf.Tensor, o: lib.UnitNormOptions) => tf.tidy(() => tf.add(lib.ops.unitNorm(x, o), 2e-4))}} as typeof lib;
    const records = await runFamilyParity(tf, sabotaged, {backends: ['cpu'], only: ['unit/[3,7]']});
    expect(records.map((r) => [r.path, r.pass])).toEqual([['op', false], ['layer', true]]);
    expect(records[0].maxErrVsRef).toBeGreaterThan(1.9e-4);
  });
});

/** Every WS record passes; the conv layers' gradients are checked wherever tfjs can compute them (all but wasm). */
function expectWsPass(records: WsRecord[], backend: string): void {
  expect(records.length).toBe(9);
  for (const r of records) {
    expect([r.name, r.backend, r.error, r.maxErr <= r.tol, r.tol <= 1e-3, r.leaked]).toEqual([r.name, backend, undefined, true, true, 0]);
    expect([r.name, r.gradChecked]).toEqual([r.name, backend !== 'wasm' || r.name.startsWith('op ')]);
  }
}

/** The tfjs-node module, or null when it cannot be imported. */
const tfjsNode = tryTfjsNode();
if (!tfjsNode) {
  reportTfjsNodeMissing(NO_TFJS_NODE_MESSAGE, 'tensorflow (tfjs-node) backend');
} else {
  describe('parity on tensorflow (tfjs-node)', () => {
    test('tensorflow: every op and layer within 1e-4 of float64 and cpu, no leaks', async () => {
      const report = await runParity(tf, lib, {backends: ['tensorflow'], fixtures});
      process.stderr.write(`\n${report.summary.map(formatSummary).join('\n')}\n`);
      expectAllPass(report.records, 'tensorflow');
      const family = await runFamilyParity(tf, lib, {backends: ['tensorflow'], log: (l) => process.stderr.write(`${l}\n`)});
      expectAllPass(family, 'tensorflow');
    }, 180000);

    test('tensorflow: weight standardization (op, WSConv2D, WSConv1D; y and gradients) within 1e-4 of float64 (1e-3 at mean 1e3), no leaks', async () => {
      await useBackend(tf, 'tensorflow');
      expectWsPass(await runWsParity(tf, lib), 'tensorflow');
    });
  });
}
