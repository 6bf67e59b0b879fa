/**
 * `io.loadLayersModel`: tf.loadLayersModel with the checks a user wants
 * when a file comes from elsewhere. Before any weight is decoded it checks
 * that the weights data is as long as the manifest says and that every
 * weight of the model is in the manifest with the layer's shape; errors
 * name the layer, the weight and both shapes. On any failure it disposes
 * what it created (the half-built model's variables, decoded weights), and
 * only that, so nothing is left half-loaded and concurrent loads or the
 * app's own variables are untouched. Keras 3 models converted with
 * tensorflowjs_converter (both its keras and keras_keras routes) are
 * translated first (see ./keras3.ts); TensorFlow Addons' unprefixed
 * `learned_epsilon` weight names are fixed (see ./tfa.ts).
 */
import * as tf from '@tensorflow/tfjs';

import {REGISTERED_CLASSES} from '../register';
import {buildModel, disposeCreated} from './build';
import {fileSystem, storedBytesPerElement, weightDataBytes} from './file_system';
import {dropAliases, isKeras3Topology, renameKeras3Weights, translateKeras3Topology} from './keras3';
import {renameTfaWeights} from './tfa';

/** A load handler for a URL or path: http(s):// via tf.io.http, file:// or a plain path via io.fileSystem. */
function handlerFor(source: string): tf.io.IOHandler {
  if (/^https?:\/\//.test(source)) return tf.io.http(source);
  const routed = tf.io.getLoadHandlers(source);
  if (routed.length > 0 && !source.startsWith('file://')) return routed[0];
  return fileSystem(source);
}

const sizeOf = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

/** Checks that the weights data holds exactly the bytes the manifest describes. */
function checkWeightData(artifacts: tf.io.ModelArtifacts): void {
  const specs = artifacts.weightSpecs;
  if (artifacts.weightData == null) {
    if (specs != null && specs.length > 0) {
      throw new Error(`io.loadLayersModel: the manifest lists ${specs.length} weight(s) but no weights data was found.`);
    }
    return;
  }
  if (specs == null) throw new Error('io.loadLayersModel: weights data without a weights manifest.');
  const have = weightDataBytes(artifacts.weightData);
  let offset = 0;
  for (const spec of specs) {
    const bytes = sizeOf(spec.shape) * storedBytesPerElement(spec);
    if (!Number.isFinite(bytes)) {
      throw new Error(`io.loadLayersModel: weight ${JSON.stringify(spec.name)} has unsupported dtype ` +
                      `${JSON.stringify(spec.quantization?.dtype ?? spec.dtype)}.`);
    }
    if (offset + bytes > have) {
      throw new Error(
          `io.loadLayersModel: the weights data holds ${have} bytes but the manifest needs more: weight ` +
          `${JSON.stringify(spec.name)} (shape ${JSON.stringify(spec.shape)}, ${spec.quantization?.dtype ?? spec.dtype}) ` +
          `needs bytes ${offset}..${offset + bytes}. The weights file is truncated or belongs to another model.`);
    }
    offset += bytes;
  }
  if (offset !== have) {
    throw new Error(`io.loadLayersModel: the weights data holds ${have} bytes but the manifest describes ${offset}: ` +
                    'the weights file belongs to another model.');
  }
}

/**
 * The shape this package gave a LayerNormalization/RMSNormalization weight
 * before it followed tfjs's and Keras's convention: the normalized axes'
 * sizes in increasing axis order (differs for an unsorted axis list). The
 * bytes mean the same in both (the weight is reshaped, not transposed), so
 * such files load by a reshape. Null for other layers or when it cannot tell.
 */
function legacyAxisOrderShape(layer: tf.layers.Layer, shape: readonly (number|null)[]): number[]|null {
  const name = layer.getClassName();
  const axis = (layer as unknown as {axis?: unknown}).axis;
  if ((name !== 'LayerNormalization' && name !== 'RMSNormalization') || !Array.isArray(axis)) return null;
  let rank: number;
  try {
    rank = (layer.input as tf.SymbolicTensor).shape.length;
  } catch {
    return null;
  }
  const resolved = (axis as number[]).map((a) => (a < 0 ? a + rank : a));
  const order = resolved.map((a, i) => [a, i]).sort((p, q) => p[0] - q[0]).map(([, i]) => i);
  return order.map((i) => shape[i] as number);
}

/**
 * Checks the manifest against the model's weights (names and shapes), naming
 * the layer on a mismatch. Returns the weights to reshape to the layer's
 * shape (files this package wrote with the old axis-order shape).
 */
function checkWeightSpecs(model: tf.LayersModel, specs: tf.io.WeightsManifestEntry[]): Map<string, number[]> {
  const reshape = new Map<string, number[]>();
  const byName = new Map(specs.filter((s) => s.group !== 'optimizer').map((s) => [s.name, s]));
  for (const layer of model.layers) {
    for (const w of layer.weights) {
      const spec = byName.get(w.originalName);
      const who = `${layer.getClassName()} layer '${layer.name}'`;
      if (spec === undefined) {
        throw new Error(`io.loadLayersModel: ${who}: weight ${JSON.stringify(w.originalName)} (shape ` +
                        `${JSON.stringify(w.shape)}) is missing from the weights manifest.`);
      }
      const legacy = legacyAxisOrderShape(layer, w.shape);
      const same = (shape: readonly (number|null)[]) => spec.shape.length === shape.length && spec.shape.every((d, i) => d === shape[i]);
      if (!same(w.shape) && legacy != null && same(legacy)) {
        reshape.set(spec.name, w.shape as number[]);
      } else if (!same(w.shape)) {
        throw new Error(`io.loadLayersModel: ${who}: weight ${JSON.stringify(w.originalName)} has shape ` +
                        `${JSON.stringify(spec.shape)} in the weights manifest, but the layer's config gives shape ` +
                        `${JSON.stringify(w.shape)}.`);
      }
      byName.delete(w.originalName);
    }
  }
  if (byName.size > 0) {
    throw new Error(`io.loadLayersModel: the weights manifest has weight(s) no layer of the model owns: ` +
                    `${JSON.stringify(Array.from(byName.keys()))}.`);
  }
  return reshape;
}

/**
 * model.loadWeights with every weight's constraint off while writing: the
 * weights are the file's, as Keras loads them (tfjs would project a
 * constrained weight on write, e.g. clip a NonNeg beta, and leave the
 * projected copy's tensor undisposed).
 */
function loadWeightsAsStored(model: tf.LayersModel, weights: tf.NamedTensorMap): void {
  type Writable = {constraint: tf.LayerVariable['constraint']|null};
  const constrained = model.weights.filter((w) => w.constraint != null).map((w) => [w, w.constraint] as const);
  for (const [w] of constrained) (w as unknown as Writable).constraint = null;
  try {
    model.loadWeights(weights, true);
  } finally {
    for (const [w, c] of constrained) (w as unknown as Writable).constraint = c;
  }
}

/**
 * Loads a layers model (any model, not only one with this package's layers)
 * from a URL, a path or an IO handler, strictly: every weight must be
 * present with the right shape. Throws a named error and leaves nothing
 * allocated on any failure.
 */
export async function loadLayersModel(source: string|tf.io.IOHandler): Promise<tf.LayersModel> {
  const handler = typeof source === 'string' ? handlerFor(source) : source;
  if (handler.load == null) throw new Error('io.loadLayersModel: the IO handler has no load() method.');
  const artifacts = await handler.load();
  if (artifacts.modelTopology == null || artifacts.modelTopology instanceof ArrayBuffer) {
    throw new Error('io.loadLayersModel: the artifacts have no JSON model topology: not a tfjs layers model.');
  }
  checkWeightData(artifacts);
  let created: tf.Variable[] = [];
  let model: tf.LayersModel|null = null;
  let decoded: tf.NamedTensorMap = {};
  try {
    // Keras 3 (tensorflowjs_converter's keras and keras_keras routes): config and weight names translated.
    const keras3 = isKeras3Topology(artifacts.modelTopology);
    const topology = keras3 ? translateKeras3Topology(artifacts.modelTopology as Record<string, tf.serialization.ConfigDictValue>) :
                              artifacts.modelTopology;
    const built = buildModel(topology);
    created = built.created;
    model = await built.model;
    if (artifacts.trainingConfig != null) model.loadTrainingConfig(artifacts.trainingConfig as Parameters<tf.LayersModel['loadTrainingConfig']>[0]);
    if (artifacts.userDefinedMetadata != null) model.setUserDefinedMetadata(artifacts.userDefinedMetadata);
    const renamed = keras3 ? renameKeras3Weights(artifacts.weightSpecs ?? [], topology as Record<string, tf.serialization.ConfigDictValue>, model) :
                             renameTfaWeights(topology, artifacts.weightSpecs ?? []);
    // A .keras file's aliases of a weight stored twice (SpectralNormalization's kernel) are dropped.
    const {weightSpecs, weightData} = keras3 ? dropAliases(artifacts, renamed) : {weightSpecs: renamed, weightData: artifacts.weightData};
    const specs = weightSpecs ?? [];
    const reshape = checkWeightSpecs(model, specs);
    if (weightData != null) {
      decoded = tf.io.decodeWeights(weightData, specs);
      for (const [name, shape] of reshape) {
        const old = decoded[name];
        decoded[name] = tf.reshape(old, shape);
        old.dispose();
      }
      const modelWeights: tf.NamedTensorMap = {};
      const optimizerWeights: Array<{name: string, tensor: tf.Tensor}> = [];
      for (const spec of specs) {
        if (spec.group === 'optimizer') optimizerWeights.push({name: spec.name, tensor: decoded[spec.name]});
        else modelWeights[spec.name] = decoded[spec.name];
      }
      loadWeightsAsStored(model, modelWeights);
      if (model.optimizer != null && optimizerWeights.length > 0) await model.optimizer.setWeights(optimizerWeights);
    }
    return model;
  } catch (e) {
    // Only what this load created: another load's model, or variables the
    // app made while this one was pending, are left alone.
    if (model != null) model.dispose();
    disposeCreated(created);
    let message = (e as Error)?.message ?? String(e);
    const unknownClass = /^Unknown layer: ([^\s.]+)/.exec(message);
    if (unknownClass != null) {
      message = `unknown layer class ${JSON.stringify(unknownClass[1])}. This package registers the normalization classes ` +
                `${REGISTERED_CLASSES.map((c) => c.className).join(', ')} (InstanceNormalization also loads keras-contrib's ` +
                'and pix2pix\'s configs); a custom layer must be registered with tf.serialization.registerClass before ' +
                `loading. (tfjs: ${message.split('\n')[0]})`;
    }
    // Errors from tfjs itself (an unknown layer class, a broken topology) get the loader's name.
    throw message.startsWith('io.') ? e : new Error(`io.loadLayersModel: cannot build the model: ${message}`);
  } finally {
    tf.dispose(Object.values(decoded));
  }
}
