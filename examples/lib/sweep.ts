/** What the batch-size sweeps share: per-run results, their summary and the markdown table. */
import {SummaryRow} from './chart';

/** One training run of a sweep. */
export interface RunResult {
  norm: string;
  batchSize: number;
  seed: number;
  learningRate: number;
  steps: number;
  trainLoss: number;
  validationError: number;
  seconds: number;
}

/** Mean and sample standard deviation of the validation error per (normalization, batch size). */
export function summarize(results: RunResult[]): SummaryRow[] {
  const groups = new Map<string, RunResult[]>();
  results.forEach((r) => {
    const k = `${r.norm}|${r.batchSize}`;
    groups.set(k, [...(groups.get(k) ?? []), r]);
  });
  return [...groups.values()].map((rs) => {
    const e = rs.map((r) => r.validationError);
    const mean = e.reduce((s, v) => s + v, 0) / e.length;
    const std = e.length > 1 ? Math.sqrt(e.reduce((s, v) => s + (v - mean) ** 2, 0) / (e.length - 1)) : 0;
    return {norm: rs[0].norm, batchSize: rs[0].batchSize, mean, std, runs: e.length};
  });
}

/** The table of validation error (mean ± std), one row per normalization, one column per batch size. */
export function markdownTable(rows: SummaryRow[], norms: string[], batchSizesGiven: number[], showRuns = false): string {
  // Largest batch first, as in the paper's figure, whatever order the runs had.
  const batchSizes = [...batchSizesGiven].sort((a, b) => b - a);
  const cell = (norm: string, b: number) => {
    const r = rows.find((x) => x.norm === norm && x.batchSize === b);
    return r ? `${r.mean.toFixed(1)} ± ${r.std.toFixed(1)}${showRuns ? ` (${r.runs})` : ''}` : '';
  };
  const lines = [
    `| validation error (%) | ${batchSizes.map((b) => `batch ${b}`).join(' | ')} |`,
    `|---|${batchSizes.map(() => '---:').join('|')}|`,
    ...norms.map((n) => `| ${n} | ${batchSizes.map((b) => cell(n, b)).join(' | ')} |`),
  ];
  return lines.join('\n') + '\n';
}
