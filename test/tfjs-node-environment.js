/**
 * jest's node environment, with the outer realm's typed arrays and
 * ArrayBuffer: tfjs-node's native addon creates its typed arrays there, and
 * tfjs's `instanceof Float32Array` checks (io's weight concatenation) would
 * reject them against the sandbox's own constructors. Used only by the
 * tensorflow lane (TFJS_NODE_MODULES set; see jest.config.js).
 */
const {TestEnvironment} = require('jest-environment-node');

const SHARED = [
  'ArrayBuffer', 'SharedArrayBuffer', 'DataView', 'Int8Array', 'Uint8Array', 'Uint8ClampedArray', 'Int16Array',
  'Uint16Array', 'Int32Array', 'Uint32Array', 'Float32Array', 'Float64Array', 'BigInt64Array', 'BigUint64Array',
];

class TfjsNodeEnvironment extends TestEnvironment {
  constructor(config, context) {
    super(config, context);
    for (const name of SHARED) this.global[name] = globalThis[name];
  }
}

module.exports = TfjsNodeEnvironment;
