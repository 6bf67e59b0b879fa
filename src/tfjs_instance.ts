/**
 * Two copies of @tensorflow/tfjs in one app (a bundler accident, or a
 * nested node_modules): tensors cross between them (the copies share one
 * engine), but each copy has its own layer classes, symbolic tensors and
 * serialization registry. This package registers its layers in the registry
 * of the copy it imports, so the other copy's `tf.loadLayersModel` fails
 * with "Unknown layer: GroupNormalization", and the other copy's models
 * cannot hold this package's layers. Registering the classes into the other
 * copy would not help: a layer class extends one copy's `tf.layers.Layer`,
 * and the other copy's model hands it symbolic tensors it cannot use.
 *
 * What this module offers instead: {@link checkTfjs}, which a user calls
 * with their app's `tf` to learn at once whether it is the package's copy
 * (and, if not, what happened and how to dedupe); and, on import, a warning
 * when another copy of tfjs-core was loaded before the package's.
 */
import * as tf from '@tensorflow/tfjs';

/** How to make the copies one. */
const DEDUPE =
    'Make them one: `npm ls @tensorflow/tfjs` shows the copies; `npm dedupe` (or one version satisfying the peer ' +
    "range ^4.22.0 of tfjs-normalization's package.json) merges them; bundlers: vite resolve.dedupe: " +
    "['@tensorflow/tfjs'], webpack resolve.alias to a single path. Until then, load models with " +
    "tfjs-normalization's io.loadLayersModel and build them with the `tf` it imports.";

interface TfjsLike {
  version?: {tfjs?: unknown};
  layers?: {Layer?: unknown};
  serialization?: {SerializationMap?: {getMap?: () => unknown}};
}

/** The version a tfjs namespace reports, for messages. */
function versionOf(t: TfjsLike): string {
  const v = t.version?.tfjs;
  return typeof v === 'string' ? v : 'unknown';
}

/**
 * Checks that `tfjs` (your app's `import * as tf from '@tensorflow/tfjs'`)
 * is the copy of @tensorflow/tfjs this package uses: the same layer classes
 * and the same serialization registry, so that the app's
 * `tf.loadLayersModel` knows this package's layers and the app's models can
 * hold them. Returns nothing when it is; throws an error that says what
 * happened and how to dedupe when it is another copy.
 */
export function checkTfjs(tfjs: unknown): void {
  const t = tfjs as TfjsLike|null|undefined;
  if (t == null || typeof t !== 'object' || t.layers == null || t.serialization == null) {
    throw new Error(
        "checkTfjs: argument 'tfjs' must be the @tensorflow/tfjs namespace (import * as tf from " +
        `'@tensorflow/tfjs'; checkTfjs(tf)); received ${t === null ? 'null' : typeof t}.`);
  }
  const sameLayers = t.layers.Layer === tf.layers.Layer;
  const sameRegistry = t.serialization.SerializationMap?.getMap?.() === tf.serialization.SerializationMap.getMap();
  if (sameLayers && sameRegistry) return;
  throw new Error(
      `checkTfjs: argument 'tfjs' is another copy of @tensorflow/tfjs (version ${versionOf(t)}) than the one ` +
      `tfjs-normalization uses (version ${tf.version.tfjs}): two copies are loaded. That copy's ` +
      '`tf.loadLayersModel` does not know this package\'s layers ("Unknown layer: GroupNormalization"), and its ' +
      `models cannot hold them ("argument 'x' must be a tf.Tensor"). ${DEDUPE}`);
}

/**
 * The warning for a tfjs-core copy that was loaded before the package's
 * (its engine and environment are the ones every copy then shares); null
 * when the environment is this copy's own.
 */
export function foreignEngineWarning(): string|null {
  if (tf.env() instanceof tf.Environment) return null;
  return (
      'tfjs-normalization: another copy of @tensorflow/tfjs-core was loaded before the one this package uses ' +
      `(@tensorflow/tfjs ${tf.version.tfjs}): two copies of @tensorflow/tfjs are in this app, and the other ` +
      'copy\'s tf.loadLayersModel and models do not know this package\'s layers (checkTfjs(tf) tells whether ' +
      `your tf is the other copy). ${DEDUPE}`);
}

let warned = false;

/** Warns once (console.warn) when {@link foreignEngineWarning} has something to say. */
export function warnIfForeignEngine(): void {
  const message = foreignEngineWarning();
  if (message == null || warned) return;
  warned = true;
  console.warn(message);
}
