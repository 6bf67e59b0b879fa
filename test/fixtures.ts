import * as fs from 'fs';
import * as path from 'path';

/** One case of test/fixtures/reference-cases.json (PyTorch, float64, channels-last). */
export interface ReferenceCase {
  kind: 'group'|'instance'|'layer'|'rms';
  name: string;
  shape: number[];
  config: {groups?: number, axis: number|number[], epsilon: number, center?: boolean, scale?: boolean, rms?: boolean};
  x: number[];
  dy: number[];
  y: number[];
  dx: number[];
  gamma?: number[];
  beta?: number[];
  dgamma?: number[];
  dbeta?: number[];
  param_shape?: number[];
}

export function loadReferenceCases(): ReferenceCase[] {
  const file = path.join(__dirname, 'fixtures', 'reference-cases.json');
  return (JSON.parse(fs.readFileSync(file, 'utf8')) as {cases: ReferenceCase[]}).cases;
}
