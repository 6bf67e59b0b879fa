/**
 * replaceBatchNormalization's `weightStandardization` option: in a model's
 * topology JSON, the Conv2D / Conv1D layers whose output goes straight into
 * a BatchNormalization layer become WSConv2D / WSConv1D (same config, same
 * weights: the raw kernel), so that the GroupNormalization replacing the
 * BatchNormalization follows a weight-standardized conv (GN + WS).
 */
import * as tf from '@tensorflow/tfjs';

import {WSConv1D, WSConv2D} from './layers/weight_standardization';

type Json = tf.serialization.ConfigDictValue;
interface LayerJson {
  class_name: string;
  config: Record<string, Json>;
  inbound_nodes?: Json;
}

const TO_WS: Record<string, string> = {Conv2D: WSConv2D.className, Conv1D: WSConv1D.className};

function isLayerJson(v: unknown): v is LayerJson {
  return typeof v === 'object' && v !== null && typeof (v as LayerJson).class_name === 'string' &&
      typeof (v as LayerJson).config === 'object' && (v as LayerJson).config !== null;
}

/** The name of the layer an inbound node's only input comes from, or null. */
function nodeInputName(node: unknown): string|null {
  // tfjs: [[name, nodeIndex, tensorIndex, kwargs], ...]; Keras 3: {args: [{config: {keras_history: [name, ...]}}]}.
  if (Array.isArray(node)) return node.length === 1 && Array.isArray(node[0]) && typeof node[0][0] === 'string' ? node[0][0] : null;
  const history = (node as {args?: Array<{config?: {keras_history?: unknown[]}}>})?.args?.[0]?.config?.keras_history;
  return Array.isArray(history) && typeof history[0] === 'string' ? history[0] : null;
}

/**
 * The names of the layers feeding a functional model's layer: the input of
 * each of its inbound nodes (a layer called twice, on the outputs of one
 * layer or of two, has two), each name once.
 */
function inboundNames(layer: LayerJson): string[] {
  const nodes = layer.inbound_nodes;
  if (!Array.isArray(nodes)) return [];
  const names = nodes.map(nodeInputName).filter((n): n is string => n != null);
  return Array.from(new Set(names));
}

/**
 * Rewrites, in place, every Conv2D / Conv1D entry that feeds a
 * BatchNormalization entry of the same (possibly nested) model; returns the
 * rewritten names ('outer/inner' for nested models). Other layer kinds
 * before a BatchNormalization (DepthwiseConv2D, Dense, ...) are reported
 * through `warn` and left alone.
 */
export function standardizeConvsBeforeBatchNorm(topology: Json, who: string, warn: (m: string) => void): string[] {
  const done: string[] = [];
  const visit = (node: Json, prefix: string, top: boolean): void => {
    if (!isLayerJson(node) || !Array.isArray(node.config.layers)) return;
    const list: LayerJson[] = (node.config.layers as unknown[]).filter(isLayerJson);
    const sequential = node.class_name === 'Sequential';
    const here = top ? prefix : `${prefix}${String(node.config.name ?? '')}/`;
    list.forEach((layer, i) => {
      if (layer.class_name !== 'BatchNormalization') return;
      const sources = sequential ? (i > 0 ? [list[i - 1]] : []) :
          inboundNames(layer).map((n) => list.find((l) => l.config.name === n)).filter((l): l is LayerJson => l != null);
      for (const src of sources) {
        if (TO_WS[src.class_name] != null) {
          src.class_name = TO_WS[src.class_name];
          done.push(here + String(src.config.name));
        } else if (!Object.values(TO_WS).includes(src.class_name)) {
          warn(`${who}: weightStandardization: layer '${here}${String(src.config.name)}' (${src.class_name}) before ` +
               `BatchNormalization '${here}${String(layer.config.name)}' is not a Conv2D or Conv1D; left as it is.`);
        }
      }
    });
    list.forEach((l) => visit(l as unknown as Json, here, false));
  };
  visit(topology, '', true);
  return done;
}
