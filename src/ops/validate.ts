/**
 * Argument checks shared by the ops and the layers. Every message names who
 * raised it (an op such as `groupNorm`, or a layer such as
 * `GroupNormalization 'gn1'`), the argument, the value received and what was
 * expected.
 */
import * as tf from '@tensorflow/tfjs';

/** Formats a value for an error message (short, JSON where possible). */
export function show(value: unknown): string {
  if (value === undefined) return 'undefined';
  if (typeof value === 'number' && !Number.isFinite(value)) return String(value);
  if (typeof value === 'function') return 'a function';
  try {
    const s = JSON.stringify(value);
    if (s === undefined) return String(value);
    return s.length > 120 ? `${s.slice(0, 117)}...` : s;
  } catch {
    return String(value);
  }
}

/** Builds the standard message: `<who>: argument '<arg>' <problem>; received <value>.` */
export function argError(who: string, arg: string, value: unknown, expected: string): Error {
  return new Error(`${who}: argument '${arg}' must be ${expected}; received ${show(value)}.`);
}

/**
 * Whether a value is a symbolic tensor of another copy of @tensorflow/tfjs:
 * tf.Tensor's instanceof accepts any copy's concrete tensors (they share one
 * engine), but a SymbolicTensor of another copy is not this copy's, so that
 * copy's model hands it to the layer's call() as if it were concrete.
 */
function isForeignSymbolicTensor(t: unknown): boolean {
  return t != null && typeof t === 'object' && !(t instanceof tf.SymbolicTensor) && 'sourceLayer' in t &&
      'nodeIndex' in t && Array.isArray((t as {shape?: unknown}).shape);
}

/** The error for a tensor of another copy of @tensorflow/tfjs: what happened and how to dedupe. */
export function foreignTfjsError(who: string, arg: string): Error {
  return new Error(
      `${who}: argument '${arg}' is a symbolic tensor of another copy of @tensorflow/tfjs: two copies are loaded ` +
      `(this package uses the one at version ${tf.version.tfjs}), and a model, layer or tensor of one is not ` +
      'one of the other\'s (nor are their serialization registries shared, so the other copy\'s ' +
      'tf.loadLayersModel does not know this package\'s layers). Make them one: `npm ls @tensorflow/tfjs` shows ' +
      'the copies; `npm dedupe` (or one version satisfying the peer range ^4.22.0 in package.json) merges them; ' +
      "bundlers: vite resolve.dedupe: ['@tensorflow/tfjs'], webpack resolve.alias to a single path.");
}

/** Throws unless an input shape has rank >= 2 (batch, ..., channels): the channel-axis ops and layers. */
export function checkChannelsRank(who: string, shape: readonly unknown[]): void {
  if (shape.length < 2) {
    throw new Error(
        `${who}: input must have rank >= 2 (batch, ..., channels); received shape ${show(shape)} of rank ${shape.length}.`);
  }
}

export function checkFloatTensor(who: string, arg: string, t: unknown): asserts t is tf.Tensor {
  if (isForeignSymbolicTensor(t)) throw foreignTfjsError(who, arg);
  if (!(t instanceof tf.Tensor)) {
    throw argError(who, arg, t === null ? null : typeof t, 'a tf.Tensor');
  }
  if (t.dtype !== 'float32') {
    throw new Error(
        `${who}: argument '${arg}' must be a float32 tensor; received dtype ` +
        `'${t.dtype}' (shape ${show(t.shape)}). Cast it first with tf.cast(${arg}, 'float32').`);
  }
}

export function checkEpsilon(who: string, epsilon: unknown): number {
  if (typeof epsilon !== 'number' || !Number.isFinite(epsilon) || epsilon < 0) {
    throw argError(who, 'epsilon', epsilon, 'a finite number >= 0');
  }
  return epsilon;
}

export function checkBoolean(who: string, arg: string, value: unknown): boolean {
  if (typeof value !== 'boolean') throw argError(who, arg, value, 'true or false');
  return value;
}

export function checkIntegerAxis(who: string, arg: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isInteger(value)) {
    throw argError(who, arg, value, 'an integer axis (negative counts from the end)');
  }
  return value;
}

/** Resolves a possibly negative axis against a rank, with a clear error. */
export function resolveAxis(who: string, arg: string, axis: number, rank: number): number {
  if (axis < -rank || axis >= rank) {
    throw argError(
        who, arg, axis,
        `an axis in [${-rank}, ${rank - 1}] for an input of rank ${rank}`);
  }
  return axis < 0 ? axis + rank : axis;
}

/**
 * Normalizes an axis or list of axes: resolves negatives, rejects
 * duplicates, returns them sorted.
 */
export function resolveAxes(
    who: string, arg: string, axis: number|readonly number[], rank: number): number[] {
  const list = Array.isArray(axis) ? axis : [axis];
  if (list.length === 0) throw argError(who, arg, axis, 'a non-empty list of axes');
  const out = list.map((a) => resolveAxis(who, arg, checkIntegerAxis(who, arg, a), rank));
  if (new Set(out).size !== out.length) {
    throw argError(who, arg, axis, 'a list of distinct axes');
  }
  return out.sort((a, b) => a - b);
}

/** Checks that gamma/beta (when given) are float32 tensors of exactly the expected shape. */
export function checkParam(
    who: string, arg: string, t: tf.Tensor|undefined|null, shape: readonly number[]): void {
  if (t == null) return;
  checkFloatTensor(who, arg, t);
  if (t.rank !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
    throw new Error(
        `${who}: argument '${arg}' must have shape ${show(shape)}; received shape ` +
        `${show(t.shape)}.`);
  }
}

/** `gammaInitializer` -> `gamma_initializer`: how a model.json (Keras's config) spells a key. */
export const toSnakeCase = (key: string): string => key.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toLowerCase();

/**
 * Checks an options or arguments object: undefined, or a plain object whose
 * keys are all among `known` (keys in `ignored` are allowed and not listed).
 * An unknown key is an error naming it and the known ones, spelled by
 * `spell` (snake_case while loading a model.json); `hints` add a reason for
 * a key that is known to be misplaced.
 */
export function checkOptionKeys(
    who: string, arg: string, opts: unknown, known: readonly string[],
    {spell = (k: string) => k, ignored = [], hints = {}}:
        {spell?: (k: string) => string, ignored?: readonly string[], hints?: Record<string, string>} = {}): void {
  if (opts === undefined) return;
  if (opts === null || typeof opts !== 'object' || Array.isArray(opts) || opts instanceof tf.Tensor) {
    throw argError(who, arg, opts, `an object with the keys ${known.map(spell).join(', ')}`);
  }
  const unknown = Object.keys(opts).filter((k) => !known.includes(k) && !ignored.includes(k));
  if (unknown.length === 0) return;
  const why = unknown.filter((k) => hints[k] != null).map((k) => ` ${hints[k]}`).join('');
  throw new Error(
      `${who}: unknown key${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => `'${spell(k)}'`).join(', ')} in '${arg}';` +
      ` known keys: ${known.map(spell).join(', ')}.${why}`);
}
