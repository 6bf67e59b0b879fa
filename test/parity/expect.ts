/** Jest-side assertions on parity reports (Node only; not in the browser bundle). */
import type {ParityRecord} from './suite';

/** Fails with every failing record spelled out (the first 20). */
export function expectAllPass(records: ParityRecord[], backend: string): void {
  const mine = records.filter((r) => r.backend === backend);
  expect(mine.length).toBeGreaterThan(0);
  const failed = mine.filter((r) => !r.pass);
  if (failed.length > 0) {
    throw new Error(`${backend}: ${failed.length} of ${mine.length} parity runs failed:\n` +
        failed.slice(0, 20).map((r) => JSON.stringify(r)).join('\n'));
  }
}
