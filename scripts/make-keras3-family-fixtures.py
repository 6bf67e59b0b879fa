#!/usr/bin/env python3
"""Writes test/fixtures/keras3-family/: Keras 3 models with the family layers
(UnitNormalization, SpectralNormalization, also wrapping DepthwiseConv2D) in tensorflowjs_converter's format,
with Keras's own outputs and gradients, for test/family_keras3.test.ts.

Run: KERAS_VENV=~/.cache/tfjs-normalization/venv-keras scripts/keras-venv.sh &&
     ~/.cache/tfjs-normalization/venv-keras/bin/python scripts/make-keras3-family-fixtures.py

The converter routes, the weight randomization and the reference (y and the
gradients of sum(c * y) for x and every weight of the listed layers) are those
of scripts/make-keras3-fixtures.py, imported from it.
"""
import importlib.util
import json
import os
import shutil
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location('k3fix', os.path.join(HERE, 'make-keras3-fixtures.py'))
k3 = importlib.util.module_from_spec(spec)
spec.loader.exec_module(k3)
keras, L, np, tf = k3.keras, k3.L, k3.np, k3.tf

OUT = os.path.join(HERE, '..', 'test', 'fixtures', 'keras3-family')
# Layers whose trainable weights' gradients the reference records.
k3.NORM_CLASSES = ('UnitNormalization', 'SpectralNormalization', 'Dense', 'Conv2D')
k3.rng = np.random.default_rng(20261202)


def unit_norm():
    x = keras.Input((4, 5))
    y = L.Dense(6, name='dense_in')(x)
    y = L.UnitNormalization(name='un_last')(y)
    y = L.UnitNormalization(axis=[1, 2], name='un_1_2')(y)
    y = L.UnitNormalization(axis=1, name='un_1')(y)
    y = L.Flatten()(y)
    y = L.Dense(3, name='dense_out')(y)
    return keras.Model(x, y, name='unit_norm')


def spectral():
    x = keras.Input((6, 6, 2))
    y = L.SpectralNormalization(L.Conv2D(3, 3, name='conv'), name='sn_conv')(x)
    y = L.SpectralNormalization(L.Conv2DTranspose(2, 3, strides=2, name='deconv'), power_iterations=2, name='sn_deconv')(y)
    y = L.Reshape((81, 2))(y)
    y = L.SpectralNormalization(L.Conv1D(4, 3, name='conv1d'), name='sn_conv1d')(y)
    y = L.Flatten()(y)
    y = L.SpectralNormalization(L.Dense(3, name='dense'), name='sn_dense')(y)
    return keras.Model(x, y, name='spectral')


def spectral_depthwise():
    # Keras 3's DepthwiseConv2D holds its kernel as `kernel` (tfjs: depthwise_kernel): the .h5 file lists the wrapped
    # layer's kernel and bias, then vector_u; the wrapper's weights are [kernel, vector_u, bias].
    x = keras.Input((6, 6, 2))
    y = L.SpectralNormalization(L.DepthwiseConv2D(3, depth_multiplier=2, name='dw'), power_iterations=2, name='sn_dw')(x)
    y = L.SpectralNormalization(L.DepthwiseConv2D(2, use_bias=False, name='dw_nb'), name='sn_dw_nb')(y)
    return keras.Model(x, y, name='spectral_depthwise')


def training_step(model, exp):
    """One call with training=True (power iteration, kernel / sigma assigned): the output on the recorded
    input and every SpectralNormalization layer's vector_u and kernel after it."""
    x = tf.constant(np.array(exp['inputs'][0]['data'], dtype='float32').reshape(exp['inputs'][0]['shape']))
    y = model(x, training=True)
    layers = {}
    for layer in model.layers:
        if layer.__class__.__name__ == 'SpectralNormalization':
            layers[layer.name] = {'vector_u': np.asarray(layer.vector_u.value).ravel().tolist(),
                                  'kernel': np.asarray(layer.kernel.value).ravel().tolist()}
    y2 = model(x, training=False)
    return {'output': np.asarray(y).ravel().tolist(), 'layers': layers, 'output_after': np.asarray(y2).ravel().tolist()}


# New builders go last: the random draws of the earlier ones (one generator) stay as they were.
BUILDERS = {'unit_norm': unit_norm, 'spectral': spectral, 'spectral_depthwise': spectral_depthwise}


def main():
    keras.utils.set_random_seed(20261202)
    only = sys.argv[1:]
    for name, build in BUILDERS.items():
        if only and name not in only:
            continue
        model = build()
        k3.randomize(model)
        for layer in model.layers:
            if layer.__class__.__name__ == 'SpectralNormalization':
                # A unit-norm-ish vector_u, as after training (randomize draws it like any weight).
                layer.vector_u.assign(k3.rng.normal(0, 1, tuple(layer.vector_u.shape)).astype('float32'))
        d = os.path.join(OUT, name)
        if os.path.isdir(d):
            shutil.rmtree(d)
        k3.convert_keras_h5(model, os.path.join(d, 'keras'))
        k3.convert_keras_keras(model, os.path.join(d, 'keras_keras'))
        exp = k3.reference(model, name)
        if name.startswith('spectral'):
            exp['training'] = training_step(model, exp)
        with open(os.path.join(d, 'expected.json'), 'w') as f:
            json.dump(exp, f)
        print('wrote', d)


if __name__ == '__main__':
    main()
