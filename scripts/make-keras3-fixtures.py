#!/usr/bin/env python3
"""Writes test/fixtures/keras3/: real Keras 3 models in tensorflowjs_converter's
format, with Keras's own outputs and gradients, as the reference for
io.loadLayersModel's Keras 3 translation (test/keras3.test.ts).

Run: scripts/keras-venv.sh && .venv-keras/bin/python scripts/make-keras3-fixtures.py
(Keras 3.15 / TensorFlow 2.21 from pip; the `tensorflowjs` pip package does
not install here, so the two converter routes are written following its source,
tfjs-converter/python/tensorflowjs/converters/keras_h5_conversion.py and
write_weights.py):

- `keras` (--input_format=keras, a Keras 3 `model.save('m.h5')` file):
  h5_merged_saved_model_to_tfjs_format: modelTopology = {keras_version,
  backend, model_config (the h5 file's attribute, as is)}; weights: for each
  group of `model_weights` (h5py order), the datasets listed in its
  `weight_names` attribute, named by those names without a ':0' suffix.
- `keras_keras` (--input_format=keras_keras, a `.keras` zip):
  h5_v3_merged_saved_model_to_tfjs_format: modelTopology = {keras_version
  (metadata.json), model_config (config.json with every `module`,
  `registered_name` and `date_saved` key removed)}; weights: every dataset of
  model.weights.h5, named by its h5 path (`layers/<layer>/vars/<i>`).

write_artifacts/write_weights: model.json = {format: 'layers-model',
generatedBy: 'keras v<version>', convertedBy, modelTopology, weightsManifest:
[{paths: ['group1-shard1of1.bin'], weights: [{name, shape, dtype}]}]}, the
weights' bytes concatenated in manifest order (little-endian float32).

Each model gets random weights (moving variances positive; a weight with a
constraint is passed through it, as after a Keras training step), then for a fixed
input x and fixed output coefficients c: y = model(x, training=False) and the
gradients of loss = sum_k sum(c_k * y_k) (tf.GradientTape) with respect to x
and to every weight of every normalization layer, stored in expected.json
(weight gradients keyed '<layer>/<weight name>').
"""
import json
import os
import shutil
import sys
import tempfile
import zipfile

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
os.environ.setdefault('KERAS_BACKEND', 'tensorflow')

import h5py  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from keras import layers as L  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'test', 'fixtures', 'keras3')
CONVERTED_BY = 'TensorFlow.js Converter v4.22.0 (format as written by scripts/make-keras3-fixtures.py)'
NORM_CLASSES = ('GroupNormalization', 'LayerNormalization', 'RMSNormalization', 'BatchNormalization')
rng = np.random.default_rng(20261201)


def as_text(v):
    return v.decode('utf-8') if isinstance(v, bytes) else str(v)


def normalize_weight_name(name):
    name = as_text(name)
    return name[:-2] if name.endswith(':0') else name


def discard_keys(d, keys):
    if isinstance(d, dict):
        for k in list(d.keys()):
            if k in keys:
                del d[k]
            else:
                discard_keys(d[k], keys)
    elif isinstance(d, list):
        for item in d:
            discard_keys(item, keys)


def h5_group_weights(group):
    """keras_h5_conversion._convert_h5_group."""
    out = []
    if 'weight_names' in group.attrs:
        names = [as_text(n) for n in group.attrs['weight_names'].tolist()]
        out += [{'name': normalize_weight_name(n), 'data': np.array(group[n])} for n in names]
    else:
        for key in group.keys():
            out += h5_group_weights(group[key])
    return out


def v3_group_weights(group, prefix=''):
    """keras_h5_conversion._convert_v3_group_structure_to_weights."""
    out = []
    for key in group.keys():
        if isinstance(group[key], h5py.Group):
            out += v3_group_weights(group[key], prefix + key + '/')
        elif isinstance(group[key], h5py.Dataset):
            out += [{'name': prefix + k, 'data': np.array(group[k])} for k in group.keys()]
            break
    return out


def write_artifacts(topology, weights, out_dir):
    os.makedirs(out_dir, exist_ok=True)
    specs, chunks = [], []
    for w in weights:
        data = w['data']
        if data.dtype != np.float32:
            raise ValueError(f"weight {w['name']}: dtype {data.dtype}, expected float32")
        specs.append({'name': w['name'], 'shape': list(data.shape), 'dtype': 'float32'})
        chunks.append(data.astype('<f4').tobytes())
    with open(os.path.join(out_dir, 'group1-shard1of1.bin'), 'wb') as f:
        f.write(b''.join(chunks))
    model_json = {
        'format': 'layers-model', 'generatedBy': 'keras v%s' % topology['keras_version'],
        'convertedBy': CONVERTED_BY, 'modelTopology': topology,
        'weightsManifest': [{'paths': ['group1-shard1of1.bin'], 'weights': specs}],
    }
    with open(os.path.join(out_dir, 'model.json'), 'w') as f:
        json.dump(model_json, f, indent=1)


def convert_keras_h5(model, out_dir):
    tmp = tempfile.mkdtemp()
    try:
        path = os.path.join(tmp, 'm.h5')
        model.save(path)
        with h5py.File(path, 'r') as h5:
            topology = {'keras_version': as_text(h5.attrs['keras_version']), 'backend': as_text(h5.attrs['backend'])}
            cfg = h5.attrs['model_config']
            topology['model_config'] = cfg if isinstance(cfg, dict) else json.loads(as_text(cfg))
            weights = []
            mw = h5['model_weights']
            for name in [as_text(n) for n in mw]:
                weights += h5_group_weights(mw[name])
        write_artifacts(topology, weights, out_dir)
    finally:
        shutil.rmtree(tmp)


def convert_keras_keras(model, out_dir):
    tmp = tempfile.mkdtemp()
    try:
        path = os.path.join(tmp, 'm.keras')
        model.save(path)
        with zipfile.ZipFile(path) as z:
            z.extractall(tmp)
        with open(os.path.join(tmp, 'metadata.json')) as f:
            meta = json.load(f)
        with open(os.path.join(tmp, 'config.json')) as f:
            config = json.load(f)
        discard_keys(config, ['module', 'registered_name', 'date_saved'])
        topology = {'keras_version': meta['keras_version'], 'model_config': config}
        with h5py.File(os.path.join(tmp, 'model.weights.h5'), 'r') as h5:
            weights = v3_group_weights(h5)
        write_artifacts(topology, weights, out_dir)
    finally:
        shutil.rmtree(tmp)


def all_layers(model):
    for layer in model.layers:
        yield layer
        if isinstance(layer, keras.Model):
            yield from all_layers(layer)


def randomize(model):
    for layer in all_layers(model):
        if isinstance(layer, keras.Model):
            continue
        for w in layer.weights:
            shape = tuple(w.shape)
            name = w.name
            if 'variance' in name:
                v = rng.uniform(0.5, 1.5, shape)
            elif name in ('gamma', 'scale'):
                v = rng.uniform(0.5, 1.5, shape)
            else:
                v = rng.normal(0, 0.5, shape)
            v = v.astype('float32')
            if w.constraint is not None:
                # As after a Keras training step (tfjs applies a weight's constraint when it is written, on load).
                v = np.asarray(w.constraint(tf.constant(v)))
            w.assign(v)


def reference(model, name):
    inputs = model.inputs
    xs = INPUTS[name]() if name in INPUTS else [rng.normal(0.3, 1.2, (2,) + tuple(t.shape[1:])).astype('float32')
                                                  for t in inputs]
    outs = model.outputs
    coefs = [rng.normal(0, 1, (2,) + tuple(t.shape[1:])).astype('float32') for t in outs]
    norm_weights = []
    for layer in all_layers(model):
        if layer.__class__.__name__ in NORM_CLASSES:
            for w in layer.trainable_weights:
                norm_weights.append((f'{layer.name}/{w.name}', w))
    xt = [tf.constant(x) for x in xs]
    with tf.GradientTape(persistent=True) as tape:
        for x in xt:
            tape.watch(x)
        ys = model(xt if len(xt) > 1 else xt[0], training=False)
        ys = ys if isinstance(ys, (list, tuple)) else [ys]
        loss = tf.add_n([tf.reduce_sum(tf.constant(c) * y) for c, y in zip(coefs, ys)])
    dx = tape.gradient(loss, xt)
    dw = tape.gradient(loss, [w.value for _, w in norm_weights])
    return {
        'name': name, 'keras_version': keras.__version__, 'tensorflow_version': tf.__version__,
        'inputs': [{'shape': list(x.shape), 'data': x.ravel().tolist()} for x in xs],
        'outputs': [{'shape': list(y.shape), 'data': np.asarray(y).ravel().tolist()} for y in ys],
        'coefficients': [c.ravel().tolist() for c in coefs],
        'input_gradients': [np.asarray(g).ravel().tolist() for g in dx],
        'weight_gradients': {k: {'shape': list(w.shape), 'data': np.asarray(g).ravel().tolist()}
                             for (k, w), g in zip(norm_weights, dw)},
    }


def sequential():
    return keras.Sequential([
        keras.Input((6, 6, 3)), L.Conv2D(4, 3), L.BatchNormalization(), L.GroupNormalization(groups=2),
        L.LayerNormalization(), L.RMSNormalization(), L.Flatten(), L.Dense(3),
    ], name='sequential')


def axes():
    x = keras.Input((4, 5, 6))
    y = L.LayerNormalization(axis=[1, -1], name='ln_1_m1')(x)
    y = L.LayerNormalization(axis=[-1, 1, 2], name='ln_m1_1_2')(y)
    y = L.LayerNormalization(axis=[2, 1], center=False, name='ln_2_1_nocenter')(y)
    y = L.LayerNormalization(axis=-2, scale=False, name='ln_m2_noscale')(y)
    y = L.LayerNormalization(axis=[3], rms_scaling=True, name='ln_rms_scaling')(y)
    y = L.LayerNormalization(axis=[1, 2, 3], epsilon=1e-5, name='ln_all')(y)
    y = L.GroupNormalization(groups=2, axis=1, name='gn_channels_first')(y)
    y = L.RMSNormalization(axis=[2, 3], name='rms_2_3')(y)
    return keras.Model(x, y, name='axes')


def multi_io():
    a = keras.Input((8,), name='a')
    b = keras.Input((8,), name='b')
    shared = L.Dense(6, name='shared')
    sa, sb = shared(a), shared(b)
    sa = L.LayerNormalization(gamma_constraint=keras.constraints.MaxNorm(2.0, axis=0),
                              beta_regularizer=keras.regularizers.L1(0.01), name='ln_reg')(sa)
    sb = L.RMSNormalization(name='rms')(sb)
    c = L.Concatenate()([sa, sb])
    c = L.Dense(4, name='head')(c)
    out1 = L.GroupNormalization(groups=2, gamma_regularizer=keras.regularizers.L2(0.01),
                                beta_constraint=keras.constraints.NonNeg(), name='gn_reg')(c)
    out2 = L.Add(name='sum')([sa, sb])
    out2 = L.GroupNormalization(groups=3, center=False, scale=False, name='gn_plain')(out2)
    return keras.Model([a, b], [out1, out2], name='multi_io')


def nested():
    inner = keras.Sequential([keras.Input((5,)), L.Dense(4, name='inner_dense'), L.LayerNormalization(name='inner_ln')],
                             name='inner')
    x = keras.Input((5,))
    y = inner(x)
    y = L.GroupNormalization(groups=2, scale=False, name='outer_gn')(y)
    y = L.Dense(2, name='outer_dense')(y)
    return keras.Model(x, y, name='nested')


def zoo_2d():
    """Layers tfjs supports, around the normalization layers (images)."""
    x = keras.Input((8, 8, 3))
    y = L.ZeroPadding2D(1)(x)
    y = L.Conv2D(4, 3, strides=2, activation='relu')(y)
    y = L.DepthwiseConv2D(3, padding='same')(y)
    y = L.GroupNormalization(groups=4, name='gn_instance')(y)
    y = L.SeparableConv2D(6, 3, padding='same', use_bias=False)(y)
    y = L.BatchNormalization(momentum=0.9)(y)  # center=False: tfjs's batchNorm gradient fails without beta
    y = L.Activation('tanh')(y)
    a = L.MaxPooling2D(2)(y)
    b = L.AveragePooling2D(2)(y)
    y = L.Multiply()([a, b])
    # UpSampling2D left out: tfjs 4.22's gradient through it disagrees with finite differences (Keras's agrees).
    y = L.Conv2DTranspose(4, 3, strides=2, padding='same')(y)
    y = L.LayerNormalization(axis=[1, 2, 3], name='ln_hwc')(y)
    y = L.Cropping2D(1)(y)
    y = L.GlobalAveragePooling2D()(y)
    y = L.Dropout(0.3)(y)
    y = L.Dense(5, activation='softmax')(y)
    return keras.Model(x, y, name='zoo_2d')


def zoo_seq():
    """Layers tfjs supports, around the normalization layers (sequences)."""
    x = keras.Input((7, 4))
    y = L.Conv1D(6, 3, padding='same')(x)  # tfjs has no causal padding
    y = L.LayerNormalization(name='ln_seq')(y)
    y = L.LSTM(5, return_sequences=True)(y)
    y = L.RMSNormalization(name='rms_seq')(y)
    y = L.GRU(4, return_sequences=True, reset_after=False)(y)  # tfjs has no reset_after=True
    y = L.SimpleRNN(3, return_sequences=True)(y)
    y = L.Bidirectional(L.LSTM(2, return_sequences=True))(y)
    y = L.GroupNormalization(groups=2, name='gn_seq')(y)
    y = L.Permute((2, 1))(y)
    y = L.Reshape((7, 4))(y)
    y = L.MaxPooling1D(2)(y)
    y = L.TimeDistributed(L.Dense(3))(y)
    y = L.GlobalMaxPooling1D()(y)  # over distinct values: at ties, TF splits the gradient and tfjs does not
    y = L.RepeatVector(2)(y)
    y = L.Flatten()(y)
    return keras.Model(x, y, name='zoo_seq')


def zoo_misc():
    """More layers tfjs supports: activations as layers, merges. (Masking is left out: Keras 3 writes the mask as
    NotEqual/Any op layers passed to the next layers as a `mask` tensor keyword, which tfjs cannot take.)"""
    a = keras.Input((6, 4), name='seq')
    b = keras.Input((4,), name='vec')
    m = L.LayerNormalization(name='ln_seq_misc')(a)
    m = L.GroupNormalization(groups=2, name='gn_seq_misc')(m)
    m = L.LSTM(4)(m)
    d = L.Dense(4)(b)
    d = L.LeakyReLU(0.2)(d)
    d = L.PReLU()(d)
    e = L.ELU()(L.Dense(4)(b))
    f = L.ReLU(max_value=2.0)(L.Dense(4)(b))
    merged = [L.Multiply()([d, e]),  # tfjs has no Subtract layer
              L.Maximum()([d, f]), L.Minimum()([e, f]), L.Average()([d, e, f]), m]
    y = L.Concatenate()(merged)
    y = L.RMSNormalization(name='rms_misc')(y)
    y = L.Softmax()(L.Dense(3)(y))
    z = L.Dot(axes=1)([d, e])
    return keras.Model([a, b], [y, z], name='zoo_misc')


def nested_functional():
    """A nested Functional with two outputs and a nested Sequential, each called twice; model outputs taken from
    both nested models' first calls (Keras 3 numbers a nested Functional's nodes from 1 in output_layers, from 0
    in inbound nodes)."""
    p = keras.Input((4,), name='p')
    q = keras.Input((4,), name='q')
    h = L.Concatenate(name='pq')([L.Dense(6, name='pd')(p), L.Dense(6, name='qd')(q)])
    o1 = L.GroupNormalization(groups=3, name='two_gn')(h)
    o2 = L.RMSNormalization(name='two_rms')(L.Dense(5, name='two_dense')(h))
    two = keras.Model([p, q], [o1, o2], name='two')
    one = keras.Sequential([keras.Input((12,)), L.Dense(4, name='one_dense'), L.LayerNormalization(name='one_ln')],
                           name='one')
    a = keras.Input((4,), name='a')
    b = keras.Input((4,), name='b')
    r1, r2 = two([a, b])
    s1, s2 = two([b, a])
    t = one(r1)
    u = one(s1)
    y = L.Concatenate(name='all')([t, u, r2, s2])
    y = L.BatchNormalization(axis=1, name='bn_features')(y)
    return keras.Model([a, b], [y, r2, t], name='nested_functional')


def masked_seq():
    """Masks in a Sequential model (Keras 3 writes no op layers there): Masking -> LayerNormalization over
    [time, features] and GroupNormalization, whose statistics span the time axis and include the masked steps
    in Keras 3 (their call takes no mask; they pass it on), an LSTM that uses the mask, RMSNormalization, which
    drops it (supports_masking false), and an LSTM that sees none. Inputs: MASKED_SEQ_INPUTS (zero steps)."""
    return keras.Sequential([
        keras.Input((7, 4)), L.Masking(0.0), L.LayerNormalization(axis=[1, 2], name='ln_time'),
        L.GroupNormalization(groups=2, name='gn_time'), L.LSTM(5, return_sequences=True, name='lstm_masked'),
        L.RMSNormalization(name='rms_drops'), L.LSTM(3, name='lstm_unmasked'), L.Dense(2),
    ], name='masked_seq')


def masked_seq_inputs():
    """Two sequences of 7 steps: the first whole, the second 4 steps then 3 zero steps (masked)."""
    x = rng.normal(0.3, 1.2, (2, 7, 4)).astype('float32')
    x[1, 4:, :] = 0
    return [x]


INPUTS = {'masked_seq': masked_seq_inputs}


def main():
    keras.utils.set_random_seed(20261201)
    builders = {'sequential': sequential, 'axes': axes, 'multi_io': multi_io, 'nested': nested,
                'zoo_2d': zoo_2d, 'zoo_seq': zoo_seq, 'zoo_misc': zoo_misc, 'nested_functional': nested_functional,
                'masked_seq': masked_seq}
    only = sys.argv[1:]
    for name, build in builders.items():
        if only and name not in only:
            continue
        model = build()
        randomize(model)
        d = os.path.join(OUT, name)
        if os.path.isdir(d):
            shutil.rmtree(d)
        convert_keras_h5(model, os.path.join(d, 'keras'))
        convert_keras_keras(model, os.path.join(d, 'keras_keras'))
        with open(os.path.join(d, 'expected.json'), 'w') as f:
            json.dump(reference(model, name), f)
        print('wrote', d)


if __name__ == '__main__':
    main()
