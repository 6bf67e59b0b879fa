/**
 * TensorFlow Addons models converted from tf.keras 2 files: weight names as
 * tensorflowjs_converter writes them, fixed where tfjs cannot match them.
 *
 * FilterResponseNormalization creates `learned_epsilon` in `__init__`
 * (tensorflow/addons tensorflow_addons/layers/normalizations.py @2f10b9e,
 * lines 413-415), outside the name scope tf.keras gives a layer while it
 * builds, so its variable is `learned_epsilon:0`, not
 * `<layer>/learned_epsilon:0`; the converter writes the weight names of the
 * file with the `:0` removed, so the manifest names it `learned_epsilon`
 * (the same name for every such layer of the model). tfjs matches weights
 * by `<layer>/<weight>`; each bare `learned_epsilon` entry is renamed after
 * the layer whose weights follow it (the converter writes a layer's weights
 * together, in the order tf.keras lists them: learned_epsilon, gamma, beta).
 */
import * as tf from '@tensorflow/tfjs';

type Json = tf.serialization.ConfigDictValue;
type JsonDict = {[key: string]: Json};

const isDict = (v: unknown): v is JsonDict => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Names of the FilterResponseNormalization layers with learned_epsilon anywhere in the topology. */
function learnedEpsilonLayers(v: Json, out = new Set<string>()): Set<string> {
  if (Array.isArray(v)) {
    v.forEach((e) => learnedEpsilonLayers(e, out));
  } else if (isDict(v)) {
    const cfg = v.config;
    if (v.class_name === 'Addons>FilterResponseNormalization' && isDict(cfg) && cfg.learned_epsilon === true &&
        typeof cfg.name === 'string') {
      out.add(cfg.name);
    }
    Object.values(v).forEach((e) => learnedEpsilonLayers(e, out));
  }
  return out;
}

/**
 * The manifest with TFA's bare `learned_epsilon` entries named
 * `<layer>/learned_epsilon`, the layer being the FilterResponseNormalization
 * (with learned_epsilon) whose `gamma` comes next; other entries unchanged.
 */
export function renameTfaWeights(topology: unknown, specs: tf.io.WeightsManifestEntry[]): tf.io.WeightsManifestEntry[] {
  const frn = learnedEpsilonLayers(topology as Json);
  if (frn.size === 0) return specs;
  return specs.map((spec, i) => {
    if (spec.name !== 'learned_epsilon') return spec;
    const next = specs[i + 1]?.name ?? '';
    const prefix = next.endsWith('/gamma') ? next.slice(0, -'/gamma'.length) : '';
    return frn.has(prefix.split('/').pop() as string) ? {...spec, name: `${prefix}/learned_epsilon`} : spec;
  });
}
