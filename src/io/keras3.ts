/**
 * Keras 3 models as tensorflowjs_converter writes them, translated to what
 * tfjs's layers deserializer reads (the tf.keras 2 format). Both converter
 * routes are covered:
 *
 * - `--input_format=keras` (a Keras 3 `.h5` file): the config as Keras 3
 *   writes it (`module` / `registered_name` keys, `DTypePolicy` dtypes,
 *   InputLayer `batch_shape`, node dicts, flat input/output lists); weights
 *   named by Keras 3's variable paths (`sequential/conv2d/kernel`).
 * - `--input_format=keras_keras` (a `.keras` file): the same config without
 *   `module` / `registered_name`; weights named by their place in the
 *   `.keras` weights file (`layers/<layer>/vars/<i>`, `<layer>` being the
 *   snake-cased class name made unique per model, as Keras's saving_lib does).
 *
 * Anything it cannot translate is an error naming what and where.
 */
import * as tf from '@tensorflow/tfjs';

import {buildModel, disposeCreated} from './build';
import {storedBytesPerElement} from './file_system';

type Json = tf.serialization.ConfigDictValue;
type JsonDict = {[key: string]: Json};

const WHO = 'io.fromKeras3';

const isDict = (v: unknown): v is JsonDict => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The model config inside a topology (the converter wraps it in {keras_version, backend, model_config}). */
function modelConfigOf(topology: JsonDict): JsonDict {
  return isDict(topology.model_config) ? topology.model_config : topology;
}

/** Whether any value in `v` is Keras 3-only: an InputLayer `batch_shape`, a node dict or a keras tensor. */
function hasKeras3Markers(v: Json): boolean {
  if (Array.isArray(v)) return v.some(hasKeras3Markers);
  if (!isDict(v)) return false;
  if (v.class_name === '__keras_tensor__' || v.class_name === 'DTypePolicy') return true;
  if (v.class_name === 'InputLayer' && isDict(v.config) && v.config.batch_shape !== undefined) return true;
  return Object.values(v).some(hasKeras3Markers);
}

/** True for a topology written by Keras 3 (by its `keras_version`, or by Keras 3-only config entries). */
export function isKeras3Topology(topology: unknown): boolean {
  if (!isDict(topology)) return false;
  const version = topology.keras_version;
  if (typeof version === 'string') return Number.parseInt(version, 10) >= 3;
  return hasKeras3Markers(modelConfigOf(topology));
}

/** Keras's to_snake_case: 'RMSNormalization' -> 'rms_normalization', 'Conv2D' -> 'conv2d'. */
export function toSnakeCase(name: string): string {
  return name.replace(/(.)([A-Z][a-z]+)/g, '$1_$2').replace(/([a-z])([A-Z])/g, '$1_$2').toLowerCase();
}

const MODEL_CLASSES = new Set(['Sequential', 'Functional', 'Model']);

/** Translates a dtype: a string stays; a DTypePolicy becomes its name, which must be a plain float32 policy. */
function translateDtype(dtype: Json, where: string): Json {
  if (!isDict(dtype)) return dtype;
  if (dtype.class_name !== 'DTypePolicy' && dtype.class_name !== 'FloatDTypePolicy') {
    throw new Error(`${WHO}: ${where}: dtype ${JSON.stringify(dtype)} is not a Keras DTypePolicy.`);
  }
  const name = isDict(dtype.config) ? dtype.config.name : undefined;
  if (typeof name !== 'string') throw new Error(`${WHO}: ${where}: DTypePolicy without a name: ${JSON.stringify(dtype)}.`);
  if (name !== 'float32' && name !== 'int32' && name !== 'bool') {
    throw new Error(`${WHO}: ${where}: dtype policy ${JSON.stringify(name)} is not supported by tfjs layers ` +
                    "(expected 'float32'; mixed-precision policies have no tfjs counterpart).");
  }
  return name;
}

/** Keras 3 regularizer classes tfjs does not have, as tfjs's L1L2. */
function translateRegularizer(v: JsonDict): JsonDict {
  const cfg = isDict(v.config) ? v.config : {};
  if (v.class_name === 'L1') return {class_name: 'L1L2', config: {l1: cfg.l1 ?? 0, l2: 0}};
  if (v.class_name === 'L2') return {class_name: 'L1L2', config: {l1: 0, l2: cfg.l2 ?? 0}};
  return v;
}

/** Removes Keras 3's serialization keys, unwraps tuples, translates dtypes and regularizers, recursively. */
function cleanValue(v: Json, where: string): Json {
  if (Array.isArray(v)) return v.map((item) => cleanValue(item, where));
  if (!isDict(v)) return v;
  if (v.class_name === '__tuple__' && isDict(v.config)) return cleanValue(v.config.value, where);
  if (v.class_name === '__keras_tensor__') {
    throw new Error(`${WHO}: ${where}: a Keras tensor in a place tfjs cannot take one: ${JSON.stringify(v).slice(0, 200)}.`);
  }
  const out: JsonDict = {};
  for (const [k, item] of Object.entries(v)) {
    if (k === 'module' || k === 'registered_name' || k === 'build_config' || k === 'compile_config') continue;
    out[k] = k === 'dtype' ? translateDtype(item, where) : cleanValue(item, where);
  }
  if (typeof out.class_name === 'string' && /^L[12]$/.test(out.class_name) && isDict(out.config)) return translateRegularizer(out);
  return out;
}

/** A keras tensor's [layer, node, tensor] history. */
function historyOf(t: Json, where: string): [string, number, number] {
  const h = isDict(t) && isDict(t.config) ? t.config.keras_history : undefined;
  if (!Array.isArray(h) || h.length !== 3 || typeof h[0] !== 'string' || typeof h[1] !== 'number' || typeof h[2] !== 'number') {
    throw new Error(`${WHO}: ${where}: expected a Keras tensor with keras_history [layer, node, index]; received ` +
                    `${JSON.stringify(t).slice(0, 200)}.`);
  }
  return [h[0], h[1], h[2]];
}

const isKerasTensor = (v: Json): boolean => isDict(v) && v.class_name === '__keras_tensor__';

/** A Keras 3 node dict {args, kwargs} as a tfjs node: [[layer, node, index, kwargs], ...]. */
function translateNode(node: Json, where: string): Json {
  if (Array.isArray(node)) return node;  // already the Keras 2 format
  if (!isDict(node) || !Array.isArray(node.args)) {
    throw new Error(`${WHO}: ${where}: expected an inbound node {args, kwargs}; received ${JSON.stringify(node).slice(0, 200)}.`);
  }
  const kwargs: JsonDict = {};
  for (const [k, v] of Object.entries(isDict(node.kwargs) ? node.kwargs : {})) {
    if (isKerasTensor(v) || (Array.isArray(v) && v.some(isKerasTensor))) {
      throw new Error(`${WHO}: ${where}: keyword argument '${k}' is a tensor; tfjs layers take tensors only as ` +
                      'the first positional argument.');
    }
    if (v !== null) kwargs[k] = cleanValue(v, where);
  }
  const [first, ...rest] = node.args;
  if (rest.some((a) => isKerasTensor(a) || (Array.isArray(a) && a.some(isKerasTensor)))) {
    throw new Error(`${WHO}: ${where}: the layer is called with tensors in more than one positional argument; ` +
                    'tfjs layers take one tensor or one list of tensors.');
  }
  if (rest.length > 0) {
    throw new Error(`${WHO}: ${where}: the layer is called with extra positional arguments ${JSON.stringify(rest)}; ` +
                    'tfjs layers take only the inputs positionally.');
  }
  const tensors = Array.isArray(first) ? first : [first];
  return tensors.map((t) => [...historyOf(t, where), kwargs]);
}

/** ['name', 0, 0] (one tensor, Keras 3) or [['name', 0, 0], ...] as the list of lists tfjs reads. */
function translateTensorList(v: Json, key: string, where: string): Json {
  if (Array.isArray(v) && v.length === 3 && typeof v[0] === 'string') return [v];
  if (Array.isArray(v) && v.every((e) => Array.isArray(e) && e.length === 3 && typeof e[0] === 'string')) return v;
  throw new Error(`${WHO}: ${where}: '${key}' must be [layer, node, index] or a list of them (dict inputs and ` +
                  `outputs have no tfjs counterpart); received ${JSON.stringify(v).slice(0, 200)}.`);
}

/**
 * Keras 3 arguments tfjs reads under another name or not at all: LeakyReLU's
 * `negative_slope` is tfjs's `alpha` (tfjs would silently use its default
 * 0.3); ReLU's `negative_slope` and `threshold` have no tfjs counterpart
 * (an error unless 0).
 */
function translateRenamedArgs(className: string, cfg: JsonDict, where: string): void {
  if (className === 'LeakyReLU' && cfg.negative_slope !== undefined) {
    cfg.alpha = cfg.negative_slope;
    delete cfg.negative_slope;
  }
  if (className === 'ReLU') {
    for (const k of ['negative_slope', 'threshold']) {
      if (cfg[k] != null && cfg[k] !== 0) {
        throw new Error(`${WHO}: ${where}: ${k} ${JSON.stringify(cfg[k])} has no tfjs counterpart (tfjs's ReLU takes only max_value).`);
      }
      delete cfg[k];
    }
  }
}

/**
 * What Keras 3's layers do with a mask, as this package's `masking`
 * argument: GroupNormalization and LayerNormalization pass it on unused
 * (their `call` takes no mask), RMSNormalization drops it
 * (`supports_masking` false). This package's default, masked statistics,
 * would give other outputs wherever a mask reaches them.
 */
const KERAS3_MASKING: Readonly<Record<string, string>> = {
  GroupNormalization: 'propagate', LayerNormalization: 'propagate', RMSNormalization: 'drop',
};

/** Translates one layer entry {class_name, config, name?, inbound_nodes?}; models recursively. */
function translateLayer(entry: Json, where: string): JsonDict {
  if (!isDict(entry) || typeof entry.class_name !== 'string' || !isDict(entry.config)) {
    throw new Error(`${WHO}: ${where}: expected a layer {class_name, config}; received ${JSON.stringify(entry).slice(0, 200)}.`);
  }
  const className = entry.class_name;
  const name = typeof entry.config.name === 'string' ? entry.config.name : String(entry.name ?? '?');
  const here = `${where}${where === '' ? '' : ' > '}${className} layer '${name}'`;
  const out: JsonDict = {class_name: className};
  if (entry.name !== undefined) out.name = entry.name;
  if (MODEL_CLASSES.has(className)) {
    out.config = translateModelConfig(className, entry.config, here);
  } else {
    const cfg = cleanValue(entry.config, here) as JsonDict;
    if (className === 'InputLayer') {
      if (cfg.batch_shape !== undefined) {
        cfg.batch_input_shape = cfg.batch_shape;
        delete cfg.batch_shape;
      }
      if (cfg.optional === true) throw new Error(`${WHO}: ${here}: optional inputs have no tfjs counterpart.`);
      if (cfg.ragged === true) throw new Error(`${WHO}: ${here}: ragged inputs have no tfjs counterpart.`);
      delete cfg.optional;
      delete cfg.ragged;
    }
    translateRenamedArgs(className, cfg, here);
    if (KERAS3_MASKING[className] !== undefined && cfg.masking === undefined) cfg.masking = KERAS3_MASKING[className];
    out.config = cfg;
  }
  if (entry.inbound_nodes !== undefined) {
    if (!Array.isArray(entry.inbound_nodes)) throw new Error(`${WHO}: ${here}: inbound_nodes must be a list.`);
    out.inbound_nodes = entry.inbound_nodes.map((n) => translateNode(n, here));
  }
  return out;
}

/**
 * Keras 3 writes the mask of a functional model (from Embedding(mask_zero=True)
 * or Masking) as op layers (NotEqual, Any) whose output later layers take as a
 * `mask` keyword tensor; tfjs propagates masks itself and its layers take no
 * mask tensor. An error naming the consumer and the op layer, before the op
 * layer's own arguments (`not_equal(x, 0)`) fail less clearly.
 */
function checkNoMaskTensors(layers: Json[], where: string): void {
  const byName = new Map<string, string>();
  for (const l of layers) {
    if (isDict(l) && isDict(l.config) && typeof l.config.name === 'string' && typeof l.class_name === 'string') {
      byName.set(l.config.name, l.class_name);
    }
  }
  for (const l of layers) {
    if (!isDict(l) || !Array.isArray(l.inbound_nodes)) continue;
    for (const node of l.inbound_nodes) {
      const mask = isDict(node) && isDict(node.kwargs) ? node.kwargs.mask : undefined;
      if (mask == null || !isKerasTensor(mask)) continue;
      const [source] = historyOf(mask, where);
      const name = isDict(l.config) && typeof l.config.name === 'string' ? l.config.name : String(l.name ?? '?');
      throw new Error(`${WHO}: ${where}${where === '' ? '' : ' > '}${String(l.class_name)} layer '${name}': keyword argument ` +
                      `'mask' is a tensor, the output of ${byName.get(source) ?? 'the'} layer '${source}': Keras 3 writes the mask of a functional ` +
                      'model (from Embedding(mask_zero=True) or Masking) as op layers whose output later layers take as a ' +
                      "'mask' keyword tensor; tfjs propagates masks itself and its layers take no mask tensor. A " +
                      'Sequential model of the same layers has no such op layers.');
    }
  }
}

function translateModelConfig(className: string, config: JsonDict, where: string): JsonDict {
  const out: JsonDict = {};
  for (const [k, v] of Object.entries(config)) {
    if (k === 'layers') continue;
    if (k === 'input_layers' || k === 'output_layers') out[k] = translateTensorList(v, k, where);
    else if (k === 'dtype') out[k] = translateDtype(v, where);
    else out[k] = cleanValue(v, where);
  }
  if (!Array.isArray(config.layers)) throw new Error(`${WHO}: ${where}: a ${className} config without a 'layers' list.`);
  checkNoMaskTensors(config.layers, where);
  const layers = config.layers.map((l) => translateLayer(l, where));
  out.layers = layers;
  // A nested model built from its config has a node of its own in tfjs (node 0: its inputs to its outputs), which
  // tf.keras 2 counted and Keras 3 does not in inbound nodes: references to its nodes move up by one. In
  // input_layers / output_layers Keras 3 counts that node for a nested Functional (its get_config numbers a
  // Functional's nodes from 1, its functional_from_config subtracts 1), not for a Sequential: only those move.
  const shifted = new Set(layers.filter(hasOwnNode).map((l) => (l.config as JsonDict).name as string));
  const countedInEnds = new Set(layers.filter((l) => l.class_name === 'Functional' || l.class_name === 'Model')
      .map((l) => (l.config as JsonDict).name as string));
  if (shifted.size > 0) {
    const shiftOf = (skip: Set<string>) => (ref: Json): Json =>
      (Array.isArray(ref) && typeof ref[0] === 'string' && shifted.has(ref[0]) && !skip.has(ref[0]) &&
       typeof ref[1] === 'number' ? [ref[0], ref[1] + 1, ...ref.slice(2)] : ref);
    const shift = shiftOf(new Set());
    for (const l of layers) {
      if (Array.isArray(l.inbound_nodes)) l.inbound_nodes = l.inbound_nodes.map((n) => (Array.isArray(n) ? n.map(shift) : n));
    }
    const shiftEnd = shiftOf(countedInEnds);
    for (const k of ['input_layers', 'output_layers']) if (Array.isArray(out[k])) out[k] = (out[k] as Json[]).map(shiftEnd);
  }
  return out;
}

/** Whether tfjs gives this (translated) layer entry a node when it is built from config: a nested, built model. */
function hasOwnNode(l: JsonDict): boolean {
  if (l.class_name === 'Functional' || l.class_name === 'Model') return true;
  if (l.class_name !== 'Sequential' || !isDict(l.config) || !Array.isArray(l.config.layers)) return false;
  const first = l.config.layers[0];
  return isDict(first) && (first.class_name === 'InputLayer' ||
                           (isDict(first.config) && first.config.batch_input_shape != null));
}

/** Translates a Keras 3 topology ({keras_version, backend?, model_config} or a bare model config) for tfjs. */
export function translateKeras3Topology(topology: JsonDict): JsonDict {
  const config = modelConfigOf(topology);
  const model = translateLayer(config, '');
  return config === topology ? model : {...topology, model_config: model};
}

/** Every layer of a built model, nested models included, by name (a name used twice maps to null). */
function layersByName(model: tf.LayersModel, out = new Map<string, tf.layers.Layer|null>()): Map<string, tf.layers.Layer|null> {
  for (const layer of model.layers) {
    out.set(layer.name, out.has(layer.name) ? null : layer);
    if (layer instanceof tf.LayersModel) layersByName(layer, out);
  }
  return out;
}

/** The `.keras` paths ('layers/<snake>[/layers/<snake>...]') of every layer of a translated config, to layer names. */
function kerasFilePaths(entry: JsonDict, prefix: string, out: Map<string, string>): void {
  const layers = isDict(entry.config) ? entry.config.layers : undefined;
  if (!Array.isArray(layers)) return;
  const used = new Map<string, number>();
  for (const l of layers) {
    if (!isDict(l) || typeof l.class_name !== 'string' || !isDict(l.config)) continue;
    const base = toSnakeCase(l.class_name.split('>').pop() as string);
    const n = used.get(base);
    used.set(base, n === undefined ? 0 : n + 1);
    const key = `${prefix}layers/${n === undefined ? base : `${base}_${n + 1}`}`;
    if (typeof l.config.name === 'string') out.set(key, l.config.name);
    if (MODEL_CLASSES.has(l.class_name)) kerasFilePaths(l, `${key}/`, out);
  }
}

/** Order of a layer's sub-objects in the .keras weights file, as tfjs orders their weights (own vars first). */
function subObjectRank(sub: string): number {
  if (sub === '') return 0;
  if (sub.startsWith('forward_layer')) return 1;
  if (sub.startsWith('backward_layer')) return 2;
  return 3;
}

/** Manifest entries renamed to this prefix are aliases of another entry: translateKeras3Artifacts drops them. */
const ALIAS = '__keras3_alias__/';

/**
 * A `.keras` file stores a SpectralNormalization layer's kernel twice: as the
 * wrapper's own `vars/0` (Keras tracks `self.kernel = self.layer.kernel`) and
 * as the wrapped layer's `layer/vars/0`; then `vars/1` is vector_u. The
 * wrapped layer's vars go to its weights in order, vector_u to the wrapper's,
 * and the alias is dropped. Returns false for any other layer or file.
 */
function placeSpectralNormalization(
    layer: tf.layers.Layer, list: Array<{index: number, key: [number, number], short: string}>,
    specs: tf.io.WeightsManifestEntry[], out: tf.io.WeightsManifestEntry[]): boolean {
  if (layer.getClassName() !== 'SpectralNormalization' || !list.every((e) => /\/vars\/\d+$/.test(specs[e.index].name))) return false;
  const inner = (layer as unknown as {layer: tf.layers.Layer}).layer.weights.map((w) => w.originalName);
  const own = layer.weights.map((w) => w.originalName).filter((n) => !inner.includes(n));
  const sub = list.filter((e) => e.key[0] !== 0).sort((a, b) => a.key[1] - b.key[1]);
  const mine = list.filter((e) => e.key[0] === 0).sort((a, b) => a.key[1] - b.key[1]);
  if (sub.length !== inner.length || mine.length !== own.length + 1) {
    throw new Error(`${WHO}: SpectralNormalization layer '${layer.name}': the .keras file has ${sub.length} weight(s) for the ` +
                    `wrapped layer and ${mine.length} of its own (${list.map((e) => specs[e.index].name).join(', ')}); ` +
                    `expected ${inner.length} and ${own.length + 1} (the kernel alias, then ${own.join(', ')}).`);
  }
  sub.forEach((e, k) => { out[e.index] = {...specs[e.index], name: inner[k]}; });
  out[mine[0].index] = {...specs[mine[0].index], name: `${ALIAS}${specs[mine[0].index].name}`};
  mine.slice(1).forEach((e, k) => { out[e.index] = {...specs[e.index], name: own[k]}; });
  return true;
}

/** The manifest and weights data without the alias entries (and their bytes). */
export function dropAliases(artifacts: tf.io.ModelArtifacts, specs: tf.io.WeightsManifestEntry[]): tf.io.ModelArtifacts {
  if (!specs.some((s) => s.name.startsWith(ALIAS)) || artifacts.weightData == null) return {...artifacts, weightSpecs: specs};
  const data = new Uint8Array(tf.io.CompositeArrayBuffer.join(artifacts.weightData));
  const kept: tf.io.WeightsManifestEntry[] = [];
  const chunks: Uint8Array[] = [];
  let offset = 0;
  for (const spec of specs) {
    const bytes = spec.shape.reduce((a, b) => a * b, 1) * storedBytesPerElement(spec);
    if (!spec.name.startsWith(ALIAS)) {
      kept.push(spec);
      chunks.push(data.subarray(offset, offset + bytes));
    }
    offset += bytes;
  }
  const joined = new Uint8Array(chunks.reduce((a, c) => a + c.length, 0));
  let at = 0;
  for (const c of chunks) {
    joined.set(c, at);
    at += c.length;
  }
  return {...artifacts, weightSpecs: kept, weightData: joined.buffer};
}

/**
 * Renames the weights of a Keras 3 manifest to the tfjs model's weight names
 * (`<layer>/<weight>`), for either converter route. `translated` is the
 * translated topology, `model` the model built from it.
 *
 * Each manifest weight is assigned to the layer that owns it: in a `.keras`
 * file by its path (`layers/<layer>[/<sub-object>]/vars/<i>`, the layer's
 * weights in index order, a Bidirectional layer's forward layer before its
 * backward one); in an `.h5` file by the first component of its variable path
 * that names a (non-model) layer. A layer's weights are then matched by name
 * where every one matches a tfjs weight name of that layer (Keras 3's
 * `kernel` is a DepthwiseConv2D's `depthwise_kernel`), else in order (the
 * order Keras and tfjs both create them in: Keras 3 renamed some). The strict loader then
 * checks every shape. Optimizer variables of a `.keras` file become group
 * 'optimizer' (ignored by the loader). A weight it cannot place is an error
 * naming it.
 */
export function renameKeras3Weights(
    specs: tf.io.WeightsManifestEntry[], translated: JsonDict, model: tf.LayersModel): tf.io.WeightsManifestEntry[] {
  const layers = layersByName(model);
  const paths = new Map<string, string>();
  kerasFilePaths(modelConfigOf(translated), '', paths);
  const out = specs.slice();
  const owners = new Map<string, Array<{index: number, key: [number, number], short: string}>>();
  const own = (layerName: string, index: number, key: [number, number], short: string) => {
    const list = owners.get(layerName) ?? [];
    list.push({index, key, short});
    owners.set(layerName, list);
  };
  specs.forEach((spec, index) => {
    if (spec.group === 'optimizer') return;
    if (/^optimizer\//.test(spec.name)) {
      out[index] = {...spec, group: 'optimizer'};
      return;
    }
    const v3 = /^(layers\/.*)\/vars\/(\d+)$/.exec(spec.name);
    if (v3 != null) {
      // The longest prefix of the path that is a layer of the config; the rest is a sub-object (a cell, a wrapped layer).
      const parts = v3[1].split('/');
      for (let n = parts.length; n >= 2; n--) {
        const layerName = paths.get(parts.slice(0, n).join('/'));
        if (layerName === undefined) continue;
        own(layerName, index, [subObjectRank(parts.slice(n).join('/')), Number(v3[2])], '');
        return;
      }
      throw new Error(`${WHO}: weight ${JSON.stringify(spec.name)} of the .keras weights file: no layer of the config ` +
                      `is at '${v3[1]}'.`);
    }
    // A Keras 3 variable path: [model scopes/]layer[/sub-object]/weight.
    const parts = spec.name.split('/');
    for (let i = 0; i < parts.length - 1; i++) {
      const layer = layers.get(parts[i]);
      if (layer != null && !(layer instanceof tf.LayersModel)) {
        own(parts[i], index, [0, index], parts[parts.length - 1]);
        return;
      }
    }
    // Left as is: the strict check names it as owned by no layer.
  });
  for (const [layerName, list] of owners) {
    const layer = layers.get(layerName);
    if (layer == null) {
      throw new Error(`${WHO}: weight ${JSON.stringify(specs[list[0].index].name)}: layer name '${layerName}' is used ` +
                      'twice in the model (nested models) or not at all; its weights cannot be placed.');
    }
    if (placeSpectralNormalization(layer, list, specs, out)) continue;
    const targets = layer.weights.map((w) => w.originalName);
    const shortOf = (name: string) => name.slice(name.lastIndexOf('/') + 1);
    // Keras 3's DepthwiseConv2D names its kernel 'kernel' (tfjs: 'depthwise_kernel'); by name, not by order, for a
    // layer holding one (a SpectralNormalization wrapping it lists [kernel, vector_u, bias], the .h5 file kernel, bias,
    // vector_u). Not a SeparableConv2D's (its Keras names are tfjs's).
    const shorts = targets.map(shortOf);
    const depthwise = shorts.includes('depthwise_kernel') && !shorts.includes('kernel') && !shorts.includes('pointwise_kernel');
    const tfjsShort = (short: string) => (depthwise && short === 'kernel' ? 'depthwise_kernel' : short);
    const byName = list.every((e) => targets.some((t) => shortOf(t) === tfjsShort(e.short))) &&
        new Set(list.map((e) => tfjsShort(e.short))).size === list.length;
    if (byName) {
      for (const e of list) out[e.index] = {...specs[e.index], name: targets.find((t) => shortOf(t) === tfjsShort(e.short)) as string};
      continue;
    }
    if (list.length !== targets.length) {
      throw new Error(`${WHO}: ${layer.getClassName()} layer '${layerName}' has ${targets.length} weight(s) ` +
                      `(${targets.join(', ')}), but the file has ${list.length} for it ` +
                      `(${list.map((e) => specs[e.index].name).join(', ')}).`);
    }
    const beyond = list.find((e) => /\/vars\/\d+$/.test(specs[e.index].name) && e.key[1] >= targets.length);
    if (beyond !== undefined) {
      throw new Error(`${WHO}: weight ${JSON.stringify(specs[beyond.index].name)} of the .keras weights file: ` +
                      `${layer.getClassName()} layer '${layerName}' has ${targets.length} weight(s) (${targets.join(', ')}).`);
    }
    list.sort((a, b) => a.key[0] - b.key[0] || a.key[1] - b.key[1]);
    list.forEach((e, k) => { out[e.index] = {...specs[e.index], name: targets[k]}; });
  }
  return out;
}

/** Keras 3 artifacts translated: topology for tfjs, weights renamed (builds and disposes a scratch model). */
export async function translateKeras3Artifacts(artifacts: tf.io.ModelArtifacts): Promise<tf.io.ModelArtifacts> {
  const topology = artifacts.modelTopology;
  if (!isDict(topology) || !isKeras3Topology(topology)) return artifacts;
  const translated = translateKeras3Topology(topology);
  const built = buildModel(translated);
  let scratch: tf.LayersModel|null = null;
  try {
    scratch = await built.model;
    const weightSpecs = renameKeras3Weights(artifacts.weightSpecs ?? [], translated, scratch);
    return dropAliases({...artifacts, modelTopology: translated}, weightSpecs);
  } finally {
    // Only the scratch model's variables: not those of a concurrent load or of the app.
    if (scratch != null) scratch.dispose();
    disposeCreated(built.created);
  }
}

/**
 * Wraps an IO handler so that `tf.loadLayersModel` (or `io.loadLayersModel`)
 * reads Keras 3 models converted with tensorflowjs_converter; Keras 2
 * artifacts pass through unchanged.
 *
 * @example
 * const model = await tf.loadLayersModel(io.fromKeras3(tf.io.http(url)));
 */
export function fromKeras3(handler: tf.io.IOHandler): tf.io.IOHandler {
  if (handler == null || typeof handler.load !== 'function') {
    throw new Error(`${WHO}: argument 'handler' must be an IO handler with a load() method; received ${String(handler)}.`);
  }
  return {load: async () => translateKeras3Artifacts(await (handler.load as () => Promise<tf.io.ModelArtifacts>)())};
}
