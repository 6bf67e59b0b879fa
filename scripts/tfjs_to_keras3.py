#!/usr/bin/env python3
"""Builds a Keras 3 model from a model saved by tfjs-normalization (or any
tfjs layers model): model.json + its weight files.

`tensorflowjs_converter --output_format=keras` goes through tf_keras, which
has no RMSNormalization and no `rms_scaling`; this helper goes straight to
Keras 3 instead:

    from tfjs_to_keras3 import load_tfjs_model
    model = load_tfjs_model('path/to/model.json')
    model.save('model.keras')

or from the shell (writes the .keras file):

    python scripts/tfjs_to_keras3.py path/to/model.json model.keras

What it does:
- the topology (tf.keras 2 format, as tfjs writes it) is read with Keras 3's
  own reader for tf.keras 2 configs (the one Keras uses for legacy .h5 files);
- this package's layers map to Keras 3 built-ins: GroupNormalization,
  LayerNormalization (incl. `rms_scaling`), RMSNormalization;
  InstanceNormalization (written as GroupNormalization's config with
  groups -1) loads as GroupNormalization; LayerNormalization(rms=True) becomes
  RMSNormalization (same math; gamma -> scale). Other classes of this package
  (the TFA, keras-contrib, pix2pix flavours) have no Keras 3 built-in: error.
- weights are set by name (`<layer>/<weight>`), or where a layer's names
  differ (tfjs's DepthwiseConv2D `depthwise_kernel` is Keras 3's `kernel`,
  wrapped layers) in the order tfjs wrote that layer's weights; each must
  have the Keras layer's size; LayerNormalization/RMSNormalization weights are
  reshaped (not transposed) to Keras's shape (its sorted axis list), which
  reads the bytes in the same order tfjs and Keras broadcast them.

Used by test/keras3_back.test.ts (`--check CASES.json`: builds each model and
writes its predictions, for the test to compare).
"""
import copy
import json
import os
import sys

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
os.environ.setdefault('KERAS_BACKEND', 'tensorflow')

import keras  # noqa: E402
import numpy as np  # noqa: E402

RESHAPED = ('LayerNormalization', 'RMSNormalization')
NO_KERAS_COUNTERPART = ('AddonsGroupNormalization', 'AddonsInstanceNormalization', 'ContribInstanceNormalization',
                        'Pix2PixInstanceNormalization', 'Addons>GroupNormalization', 'Addons>InstanceNormalization')


def read_weights(model_json, base_dir):
    """{name: np.ndarray} from the weightsManifest and its shard files."""
    out = {}
    for group in model_json.get('weightsManifest', []):
        data = b''.join(open(os.path.join(base_dir, p), 'rb').read() for p in group['paths'])
        offset = 0
        for spec in group['weights']:
            if 'quantization' in spec:
                raise ValueError(f"weight {spec['name']}: quantized weights are not supported")
            dtype = {'float32': '<f4', 'int32': '<i4'}.get(spec['dtype'])
            if dtype is None:
                raise ValueError(f"weight {spec['name']}: dtype {spec['dtype']} is not supported")
            n = int(np.prod(spec['shape'])) if spec['shape'] else 1
            out[spec['name']] = np.frombuffer(data, dtype, n, offset).reshape(spec['shape'])
            offset += 4 * n
        if offset != len(data):
            raise ValueError(f"weights group {group['paths']}: {len(data)} bytes, the manifest describes {offset}")
    return out


def _trailing(axis, rank):
    axes = sorted(a % rank for a in (axis if isinstance(axis, list) else [axis]))
    return axes == list(range(rank - len(axes), rank))


def _translate(entry, renames, where):
    """Rewrites this package's layer entries in place into Keras 3 built-ins; models recursively."""
    cls = entry.get('class_name')
    cfg = entry.get('config', {})
    name = cfg.get('name', '?')
    if cls in NO_KERAS_COUNTERPART:
        raise ValueError(f"{where}{cls} layer '{name}': no Keras 3 built-in computes this flavour's math")
    # This package's `masking` (what the layer does with a mask) has no Keras key: Keras 3's GroupNormalization and
    # LayerNormalization pass a mask on unused ('propagate'), its RMSNormalization drops it ('drop').
    if isinstance(cfg, dict):
        cfg.pop('masking', None)
    if cls == 'InstanceNormalization':
        if cfg.get('groups', -1) != -1:
            raise ValueError(f"{where}InstanceNormalization layer '{name}': groups {cfg.get('groups')}, expected -1")
        entry['class_name'] = 'GroupNormalization'
        keep = {k: v for k, v in cfg.items() if k not in ('track_running_stats', 'momentum')}
        if cfg.get('track_running_stats'):
            raise ValueError(f"{where}InstanceNormalization layer '{name}': trackRunningStats has no Keras counterpart")
        entry['config'] = keep
    elif cls == 'LayerNormalization' and cfg.get('rms'):
        entry['class_name'] = 'RMSNormalization'
        entry['config'] = {k: cfg[k] for k in ('name', 'trainable', 'dtype', 'axis', 'epsilon') if k in cfg}
        renames[f'{name}/scale'] = (f'{name}/gamma', cfg.get('scale', True))
    elif cls == 'LayerNormalization':
        cfg.pop('rms', None)
    if entry['class_name'] in RESHAPED and isinstance(entry['config'].get('axis'), list):
        # Keras 3's tf.keras 2 reader (saving_utils.model_from_config) drops an `axis` list of more than one
        # axis; carried under another key and put back by _keep_axis_list.
        entry['config']['tfjs_axis'] = entry['config']['axis']
    subs = cfg.get('layers', []) if isinstance(cfg.get('layers'), list) else []
    for sub in subs:
        _translate(sub, renames, f"{where}{cls} '{name}' > ")
    # tfjs (as tf.keras 2) counts a nested model's own node (its inputs to its outputs) as node 0; Keras 3's reader
    # does not in inbound nodes: references to a nested model's nodes move down by one. In input_layers /
    # output_layers Keras 3's functional_from_config itself subtracts one for a nested Functional (not for a
    # Sequential): those references stay.
    nested = {sub['config'].get('name') for sub in subs if _has_own_node(sub)}
    functional = {sub['config'].get('name') for sub in subs if sub.get('class_name') in ('Functional', 'Model')}
    if nested:
        def shift_of(skip):
            def shift(ref):
                if isinstance(ref, list) and len(ref) >= 3 and ref[0] in nested and ref[0] not in skip and \
                        isinstance(ref[1], int):
                    if ref[1] < 1:
                        raise ValueError(f"{where}{cls} '{name}': reference {ref} to the nested model's own node")
                    return [ref[0], ref[1] - 1] + ref[2:]
                return ref
            return shift
        shift = shift_of(set())
        for sub in subs:
            sub['inbound_nodes'] = [[shift(r) for r in node] for node in sub.get('inbound_nodes', [])]
        shift_end = shift_of(functional)
        for key in ('input_layers', 'output_layers'):
            if isinstance(cfg.get(key), list):
                cfg[key] = [shift_end(r) for r in cfg[key]]


def _has_own_node(entry):
    cls = entry.get('class_name')
    if cls in ('Functional', 'Model'):
        return True
    layers = entry.get('config', {}).get('layers')
    if cls != 'Sequential' or not isinstance(layers, list) or not layers:
        return False
    first = layers[0]
    return first.get('class_name') == 'InputLayer' or first.get('config', {}).get('batch_input_shape') is not None


def _keep_axis_list(cls):
    """custom_objects entry: builds a genuine `cls` with the axis list carried in `tfjs_axis`."""
    class Restore:
        @classmethod
        def from_config(cls_, config):
            config = dict(config)
            axis = config.pop('tfjs_axis', None)
            if axis is not None:
                config['axis'] = axis
            return cls.from_config(config)
    return Restore


def all_layers(model):
    for layer in model.layers:
        yield layer
        if isinstance(layer, keras.Model):
            yield from all_layers(layer)


def load_tfjs_model(model_json_path):
    """The Keras 3 model of a tfjs layers model.json (with its weights)."""
    with open(model_json_path) as f:
        model_json = json.load(f)
    topology = model_json['modelTopology']
    config = copy.deepcopy(topology.get('model_config', topology))
    renames = {}
    _translate(config, renames, '')
    from keras.src.legacy.saving import saving_utils  # Keras's reader for tf.keras 2 configs (.h5 files)
    # Every built-in layer by name too: wrapped layers (Bidirectional's, TimeDistributed's) are read without a
    # module, which Keras 3 only resolves through custom_objects.
    custom = {k: v for k, v in vars(keras.layers).items() if isinstance(v, type) and issubclass(v, keras.layers.Layer)}
    custom |= {'LayerNormalization': _keep_axis_list(keras.layers.LayerNormalization),
              'RMSNormalization': _keep_axis_list(keras.layers.RMSNormalization)}
    model = saving_utils.model_from_config(config, custom_objects=custom)
    weights = read_weights(model_json, os.path.dirname(os.path.abspath(model_json_path)))
    used = set()
    for layer in all_layers(model):
        if isinstance(layer, keras.Model):
            continue
        # By name (`<layer>/<weight>`) where every weight's name is in the manifest, else the manifest's weights of
        # this layer in order (tfjs writes a layer's weights in the order Keras creates them; some names differ,
        # e.g. tfjs's DepthwiseConv2D `depthwise_kernel` is Keras 3's `kernel`, and wrapped layers' paths).
        keys = [f'{layer.name}/{w.name}' for w in layer.weights]
        sources = [renames.get(k, (k, True)) for k in keys]
        if not all(src in weights or not present for src, present in sources):
            mine = [n for n in weights if n.split('/')[0] == layer.name and n not in used]
            if len(mine) != len(layer.weights):
                raise ValueError(f"{layer.__class__.__name__} layer '{layer.name}': Keras builds {len(layer.weights)} "
                                 f"weight(s) {keys}, the manifest has {len(mine)} for it: {mine}")
            sources = [(n, True) for n in mine]
        for w, (source, present) in zip(layer.weights, sources):
            if not present:
                w.assign(np.ones(tuple(w.shape), 'float32'))  # LayerNormalization(rms, scale=False): scale 1
                continue
            value = weights[source]
            if tuple(value.shape) != tuple(w.shape):
                if layer.__class__.__name__ in RESHAPED and value.size == int(np.prod(w.shape)):
                    value = value.reshape(tuple(w.shape))  # tfjs: axis-list order; Keras: its sorted list
                else:
                    raise ValueError(f"{layer.__class__.__name__} layer '{layer.name}': weight {source} has shape "
                                     f"{list(value.shape)} in the manifest, Keras builds {list(w.shape)}")
            if layer.__class__.__name__ == 'RMSNormalization' and not _trailing(layer.axis, len(layer.input.shape)):
                raise ValueError(f"RMSNormalization layer '{layer.name}': axis {layer.axis} is not the trailing axes; "
                                 "Keras 3's RMSNormalization does not broadcast its scale over other axes")
            w.assign(value)
            used.add(source)
    unused = sorted(set(weights) - used)
    if unused:
        raise ValueError(f'weights no Keras layer owns: {unused}')
    return model


def check(cases_path):
    """For each case {model, inputs: [{shape, data}], out}: builds the model and writes its predictions to out."""
    with open(cases_path) as f:
        cases = json.load(f)
    for case in cases:
        model = load_tfjs_model(case['model'])
        xs = [np.array(i['data'], 'float32').reshape(i['shape']) for i in case['inputs']]
        ys = model(xs if len(xs) > 1 else xs[0], training=False)
        ys = ys if isinstance(ys, (list, tuple)) else [ys]
        classes = sorted({layer.__class__.__name__ for layer in all_layers(model)})
        with open(case['out'], 'w') as f:
            json.dump({'keras_version': keras.__version__, 'classes': classes,
                       'outputs': [{'shape': list(y.shape), 'data': np.asarray(y).ravel().tolist()} for y in ys]}, f)


if __name__ == '__main__':
    if len(sys.argv) == 3 and sys.argv[1] == '--check':
        check(sys.argv[2])
    elif len(sys.argv) == 3:
        load_tfjs_model(sys.argv[1]).save(sys.argv[2])
    else:
        sys.exit('usage: tfjs_to_keras3.py MODEL_JSON OUT.keras | --check CASES.json')
