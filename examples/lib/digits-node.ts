/** Reads data/digits.csv.gz in Node (see ./digits.ts for the format and the split). */
import * as fs from 'fs';
import * as path from 'path';
import * as zlib from 'zlib';

import {Digits, DigitsSplit, parseDigitsCsv, splitDigits} from './digits';

export const DIGITS_PATH = path.resolve(__dirname, '..', '..', 'data', 'digits.csv.gz');

/** All 1797 digits, in file order. */
export function loadDigits(file = DIGITS_PATH): Digits {
  return parseDigitsCsv(zlib.gunzipSync(fs.readFileSync(file)).toString('utf8'));
}

/** The fixed, seeded train/validation split (1438 / 359). */
export function loadDigitsSplit(file = DIGITS_PATH): DigitsSplit {
  return splitDigits(loadDigits(file));
}
