/**
 * replaceBatchNormalization: the paper's main use case (Wu & He, 2018):
 * swap a model's BatchNormalization layers for GroupNormalization when the
 * batches get small, keeping everything else, weights included.
 */
import * as tf from '@tensorflow/tfjs';

import {standardizeConvsBeforeBatchNorm} from './convert_ws';
import {GroupNormalization} from './layers/group_normalization';
import {checkGroups} from './ops/group_norm';
import {checkBoolean, checkEpsilon} from './ops/validate';

/** Options of {@link replaceBatchNormalization}. */
export interface ReplaceBatchNormalizationOptions {
  /**
   * Groups for every new GroupNormalization layer (default 32, as in the
   * paper). Where a layer's channel count is not divisible by it, the
   * largest divisor of the channel count not larger than `groups` is used,
   * with a warning. -1: one group per channel.
   */
  groups?: number;
  /** Epsilon of the new layers; default: each BatchNormalization layer's own. */
  epsilon?: number;
  /**
   * Also turn each Conv2D / Conv1D that feeds a BatchNormalization layer
   * directly into a WSConv2D / WSConv1D (GN + WS; same config, its kernel
   * carried over as the raw kernel). Default false.
   */
  weightStandardization?: boolean;
  /** Where warnings go (default console.warn). */
  warn?: (message: string) => void;
}

const WHO = 'replaceBatchNormalization';

type Json = tf.serialization.ConfigDictValue;
interface LayerJson {
  class_name: string;
  config: Record<string, Json>;
  [key: string]: Json;
}

function isLayerJson(v: unknown): v is LayerJson {
  return typeof v === 'object' && v !== null && typeof (v as LayerJson).class_name === 'string' &&
      typeof (v as LayerJson).config === 'object' && (v as LayerJson).config !== null;
}

/** The largest divisor of `channels` that is not larger than `groups`. */
export function largestDivisorAtMost(channels: number, groups: number): number {
  for (let g = Math.min(groups, channels); g > 1; g--) if (channels % g === 0) return g;
  return 1;
}

/** Every layer of a model, depth first, nested models included (the models themselves too). */
function flattenLayers(model: tf.LayersModel, out = new Map<string, tf.layers.Layer>(), prefix = ''): Map<string, tf.layers.Layer> {
  for (const layer of model.layers) {
    out.set(prefix + layer.name, layer);
    if (layer instanceof tf.LayersModel) flattenLayers(layer, out, `${prefix}${layer.name}/`);
  }
  return out;
}

/** The channel count of a built BatchNormalization layer (from its moving mean). */
function bnChannels(layer: tf.layers.Layer): number {
  const mean = layer.weights.find((w) => /moving_mean(_\d+)?$/.test(w.originalName) || /moving_mean/.test(w.name));
  if (mean == null || mean.shape.length !== 1 || mean.shape[0] == null) {
    throw new Error(`${WHO}: BatchNormalization layer '${layer.name}' has no 1-D moving_mean weight ` +
                    `(shapes: ${JSON.stringify(layer.weights.map((w) => w.shape))}); is the model built?`);
  }
  return mean.shape[0] as number;
}

/**
 * Rebuilds a `tf.sequential` or functional model with every
 * BatchNormalization layer (nested models and TimeDistributed wrappers included) replaced by a
 * GroupNormalization layer of the same name, axis, center/scale,
 * initializers, regularizers, constraints and trainability, and with gamma
 * and beta carried over. Every other layer keeps its config and weights;
 * the moving mean and variance are dropped (GroupNormalization has none).
 *
 * Returns a new, uncompiled model; the input model is left unchanged.
 * Compile it and fine-tune: group statistics differ from batch statistics,
 * so the outputs change.
 *
 * @example
 * const gnModel = await replaceBatchNormalization(bnModel, {groups: 8});
 * gnModel.compile({optimizer: 'adam', loss: 'categoricalCrossentropy'});
 */
export async function replaceBatchNormalization(
    model: tf.LayersModel, options: ReplaceBatchNormalizationOptions = {}): Promise<tf.LayersModel> {
  if (!(model instanceof tf.LayersModel)) {
    throw new Error(`${WHO}: argument 'model' must be a tf.LayersModel (tf.sequential or tf.model); received ${String(model)}.`);
  }
  // Any positive groups is fine here: a layer whose channels it does not divide gets the largest divisor below it.
  const groups = checkGroups(WHO, options.groups ?? 32, 'a positive integer or -1 (one group per channel)');
  if (options.epsilon !== undefined) checkEpsilon(WHO, options.epsilon);
  if (options.weightStandardization !== undefined) checkBoolean(WHO, 'weightStandardization', options.weightStandardization);
  const warn = options.warn ?? ((m: string) => console.warn(m));
  const oldLayers = flattenLayers(model);

  const topology = model.toJSON(null, false) as unknown as LayerJson;
  const replaced = new Map<string, {groups: number, scale: boolean, center: boolean}>();

  /**
   * Rewrites one BatchNormalization entry in place as GroupNormalization;
   * `old` is the built layer, `where` its name in messages, `carryKey` the
   * rebuilt layer whose weights take its gamma and beta.
   */
  const replaceEntry = (node: LayerJson, where: string, old: tf.layers.Layer, carryKey: string): void => {
    const cfg = node.config;
    let axis = cfg.axis;
    if (Array.isArray(axis)) {
      if (axis.length !== 1) {
        throw new Error(`${WHO}: BatchNormalization layer '${where}' normalizes over axes ${JSON.stringify(axis)}; ` +
                        'GroupNormalization takes exactly one channel axis.');
      }
      axis = axis[0];
    }
    const channels = bnChannels(old);
    let g = groups === -1 ? channels : groups;
    if (channels % g !== 0) {
      const chosen = largestDivisorAtMost(channels, g);
      warn(`${WHO}: layer '${where}' has ${channels} channels, not divisible by groups ${g}; using ${chosen} groups ` +
           `(the largest divisor of ${channels} not larger than ${g}).`);
      g = chosen;
    }
    const scale = cfg.scale !== false;
    const center = cfg.center !== false;
    const keep = ['name', 'trainable', 'dtype', 'batch_input_shape', 'input_dtype', 'epsilon', 'center', 'scale',
      'beta_initializer', 'gamma_initializer', 'beta_regularizer', 'gamma_regularizer', 'beta_constraint', 'gamma_constraint'];
    const config: Record<string, Json> = {};
    for (const k of keep) if (cfg[k] !== undefined) config[k] = cfg[k];
    config.groups = g;
    config.axis = axis as Json;
    if (options.epsilon !== undefined) config.epsilon = options.epsilon;
    node.class_name = GroupNormalization.className;
    node.config = config;
    replaced.set(carryKey, {groups: g, scale, center});
  };

  /** Rewrites BatchNormalization entries in place; `prefix` names the enclosing models. */
  const rewrite = (node: Json, prefix: string): void => {
    if (Array.isArray(node)) {
      node.forEach((n) => rewrite(n, prefix));
      return;
    }
    if (!isLayerJson(node)) return;
    const cfg = node.config;
    const name = typeof cfg.name === 'string' ? cfg.name : '';
    if (node.class_name === 'BatchNormalization') {
      const key = prefix + name;
      const old = oldLayers.get(key);
      if (old == null) throw new Error(`${WHO}: BatchNormalization layer '${key}' is in the topology but not in the model.`);
      replaceEntry(node, key, old, key);
      return;
    }
    // A wrapper (TimeDistributed) of a BatchNormalization layer: the wrapped layer is replaced; the wrapper's
    // weights are the wrapped layer's, carried as the wrapper's.
    const wrapped = cfg.layer;
    if (isLayerJson(wrapped) && wrapped.class_name === 'BatchNormalization') {
      const key = prefix + name;
      const inner = (oldLayers.get(key) as unknown as {layer?: tf.layers.Layer}|undefined)?.layer;
      if (inner == null) throw new Error(`${WHO}: ${node.class_name} layer '${key}' wraps a BatchNormalization layer that is not in the model.`);
      replaceEntry(wrapped, `${key}/${String(wrapped.config.name ?? '')}`, inner, key);
      return;
    }
    if (Array.isArray(cfg.layers)) {
      // A nested model: its layers are named inside it.
      const inner = node.class_name === 'Sequential' || node.class_name === 'Model' || node.class_name === 'Functional';
      rewrite(cfg.layers, inner && prefix + name !== '' && node !== topology ? `${prefix}${name}/` : prefix);
    }
  };
  if (options.weightStandardization === true) standardizeConvsBeforeBatchNorm(topology, WHO, warn);
  rewrite(topology, '');

  // tf.models.modelFromJSON without weights builds the model before its first await: the variables registered
  // during the call are the rebuild's own (not a concurrent load's or the app's), disposed if it fails.
  const registered = tf.engine().registeredVariables;
  const before = new Set(Object.keys(registered));
  let pending: Promise<tf.LayersModel>;
  try {
    pending = tf.models.modelFromJSON({modelTopology: topology} as unknown as Parameters<typeof tf.models.modelFromJSON>[0]);
  } catch (e) {
    pending = Promise.reject(e);
  }
  const created = Object.keys(registered).filter((n) => !before.has(n)).map((n) => registered[n]);
  let rebuilt: tf.LayersModel;
  try {
    rebuilt = await pending;
  } catch (e) {
    for (const v of created) if (tf.engine().registeredVariables[v.name] === v) v.dispose();
    throw new Error(`${WHO}: cannot rebuild the model from its topology: ${(e as Error)?.message ?? String(e)}`);
  }
  try {
    const newLayers = flattenLayers(rebuilt);
    for (const [key, layer] of newLayers) {
      if (layer instanceof tf.LayersModel) continue;
      const old = oldLayers.get(key);
      if (old == null) throw new Error(`${WHO}: layer '${key}' of the rebuilt model has no counterpart in the original.`);
      const oldWeights = old.getWeights();
      const r = replaced.get(key);
      if (r == null) {
        if (oldWeights.length > 0) layer.setWeights(oldWeights);
        continue;
      }
      // BatchNormalization weights: [gamma if scale], [beta if center], moving_mean, moving_variance.
      const carried = oldWeights.slice(0, (r.scale ? 1 : 0) + (r.center ? 1 : 0));
      if (carried.length > 0) layer.setWeights(carried);
    }
  } catch (e) {
    rebuilt.dispose();
    throw e;
  }
  return rebuilt;
}
