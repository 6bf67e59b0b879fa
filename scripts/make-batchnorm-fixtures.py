#!/usr/bin/env python3
"""Writes test/fixtures/keras3-batchnorm.json and test/fixtures/keras3-batchnorm/:
Keras 3's own numbers for keras.layers.BatchNormalization, the reference of
test/batch_normalization.test.ts.

Run: KERAS_VENV=~/.cache/tfjs-normalization/venv-keras scripts/keras-venv.sh &&
~/.cache/tfjs-normalization/venv-keras/bin/python scripts/make-batchnorm-fixtures.py
(Keras 3.15 / TensorFlow 2.21 from pip, KERAS_BACKEND=tensorflow).

Each case: a layer built from a Keras config, its weights set to random
values (variances positive), then a few training steps on fixed batches
(x, optional mask of rank inputs - 1): for each step the training output y,
the gradients of loss = sum(c * y) with respect to x and to the trainable
weights (tf.GradientTape around the training call), and every weight after
the step (the moving statistics updated by the call); at the end the
inference output on the last batch. Cases cover renorm (with and without
clipping, channels-last and channels-first, with a mask), masked moments,
channels-first, center/scale off and trainable=False.

The model directory holds a small Keras 3 model with a renorm
BatchNormalization layer in tensorflowjs_converter's two formats (written
by make-keras3-fixtures.py's converter functions) and Keras's inference
output, to check that Keras 3 BatchNormalization configs translate and load.
"""
import importlib.util
import json
import os
import shutil

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
os.environ.setdefault('KERAS_BACKEND', 'tensorflow')

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, '..', 'test', 'fixtures')
rng = np.random.default_rng(20261202)


def load_converter():
    spec = importlib.util.spec_from_file_location('make_keras3_fixtures', os.path.join(HERE, 'make-keras3-fixtures.py'))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def randomize(layer):
    for w in layer.weights:
        shape = tuple(w.shape)
        if 'variance' in w.name or 'stddev' in w.name or w.name == 'gamma':
            v = rng.uniform(0.5, 1.5, shape)
        else:
            v = rng.normal(0, 0.5, shape)
        w.assign(v.astype('float32'))


def flat(a):
    return np.asarray(a, dtype=np.float64).ravel().tolist()


def case(name, config, shape, steps=3, mask_lengths=None, mean=0.3, std=1.5):
    layer = keras.layers.BatchNormalization(**config)
    layer.build(shape)
    randomize(layer)
    initial = {w.name: flat(w.numpy()) for w in layer.weights}
    out_steps = []
    for _ in range(steps):
        x = rng.normal(mean, std, shape).astype('float32')
        c = rng.normal(0, 1, shape).astype('float32')
        mask = None
        if mask_lengths is not None:
            # Rank inputs - 1 (Keras's rule): valid where the index along axis 1 is below the sample's length.
            idx = np.indices(shape[:-1])
            mask = idx[1] < np.array(mask_lengths).reshape((-1,) + (1,) * (len(shape) - 2))
            # Masked outputs are don't-cares in this package (their dy is dropped): c is 0 there.
            c = c * mask[..., None].astype('float32')
            # Garbage at masked positions, which must not reach the statistics.
            x = np.where(mask[..., None], x, 1e3).astype('float32')
        xt = tf.constant(x)
        with tf.GradientTape() as tape:
            tape.watch(xt)
            y = layer(xt, training=True, mask=None if mask is None else tf.constant(mask))
            loss = tf.reduce_sum(tf.constant(c) * y)
        grads = tape.gradient(loss, [xt] + [w.value for w in layer.trainable_weights])
        out_steps.append({
            'x': flat(x), 'c': flat(c), 'mask': None if mask is None else flat(mask.astype('float32')),
            'mask_shape': None if mask is None else list(mask.shape),
            'y': flat(y), 'dx': flat(grads[0]),
            'weight_gradients': {w.name: flat(g) for w, g in zip(layer.trainable_weights, grads[1:])},
            'weights_after': {w.name: flat(w.numpy()) for w in layer.weights},
        })
    inference = flat(layer(tf.constant(out_steps[-1]['x'], shape=shape, dtype='float32'), training=False))
    return {
        'name': name, 'config': layer.get_config(), 'shape': list(shape),
        'weight_names': [w.name for w in layer.weights], 'initial_weights': initial,
        'steps': out_steps, 'inference_y': inference,
    }


def jsonable(v):
    if isinstance(v, dict):
        return {k: jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [jsonable(x) for x in v]
    if isinstance(v, (np.floating, np.integer)):
        return v.item()
    return v


def model_fixture(conv):
    x = keras.Input((5, 4))
    y = keras.layers.Dense(6, name='dense')(x)
    y = keras.layers.BatchNormalization(renorm=True, renorm_clipping={'rmax': 2.0, 'rmin': 0.5, 'dmax': 1.0},
                                        renorm_momentum=0.9, momentum=0.8, name='bn_renorm')(y)
    y = keras.layers.BatchNormalization(axis=1, center=False, synchronized=False, name='bn_axis1')(y)
    model = keras.Model(x, y, name='bn_model')
    for layer in model.layers:
        randomize(layer)
    d = os.path.join(FIXTURES, 'keras3-batchnorm')
    if os.path.isdir(d):
        shutil.rmtree(d)
    conv.convert_keras_h5(model, os.path.join(d, 'keras'))
    conv.convert_keras_keras(model, os.path.join(d, 'keras_keras'))
    xs = rng.normal(0.3, 1.2, (3, 5, 4)).astype('float32')
    expected = {
        'x': flat(xs), 'shape': [3, 5, 4], 'y': flat(model(xs, training=False)),
        'y_training': flat(model(xs, training=True)),
        'weights_after_training': {f'{layer.name}/{w.name}': flat(w.numpy())
                                   for layer in model.layers[2:] for w in layer.weights},
    }
    with open(os.path.join(d, 'expected.json'), 'w') as f:
        json.dump(expected, f)
    print('wrote', d)


def main():
    keras.utils.set_random_seed(20261202)
    conv = load_converter()
    cases = [
        case('renorm, no clipping', {'renorm': True, 'momentum': 0.9, 'renorm_momentum': 0.8}, (4, 3, 5)),
        case('renorm, clipping', {'renorm': True, 'renorm_clipping': {'rmax': 1.1, 'rmin': 0.9, 'dmax': 0.1},
                                  'momentum': 0.9}, (6, 4), mean=1.0, std=2.5),
        case('renorm, channels-first, center off', {'renorm': True, 'axis': 1, 'center': False,
                                                    'renorm_clipping': {'rmax': 1.3}}, (2, 3, 4, 2)),
        case('renorm, scale off, epsilon 1e-5', {'renorm': True, 'scale': False, 'epsilon': 1e-5,
                                                 'renorm_clipping': {'dmax': 0.2}}, (5, 3)),
        case('renorm, masked', {'renorm': True, 'renorm_clipping': {'rmax': 1.5, 'rmin': 0.7}},
             (3, 5, 4), mask_lengths=[5, 2, 3]),
        case('masked moments', {'momentum': 0.9}, (3, 6, 4), mask_lengths=[6, 1, 4]),
        case('masked moments, rank 4', {'momentum': 0.5}, (2, 3, 2, 3), mask_lengths=[3, 1]),
        case('channels-first', {'axis': 1, 'momentum': 0.9}, (3, 4, 3, 3)),
        case('axis 2 of 4', {'axis': 2, 'momentum': 0.8}, (2, 3, 4, 2)),
        case('center and scale off', {'center': False, 'scale': False, 'momentum': 0.7}, (4, 2, 3)),
        case('center off', {'center': False}, (4, 5)),
        case('scale off, channels-first', {'scale': False, 'axis': 1}, (3, 2, 5)),
        case('trainable false', {'trainable': False, 'momentum': 0.5}, (4, 3), steps=2),
    ]
    with open(os.path.join(FIXTURES, 'keras3-batchnorm.json'), 'w') as f:
        json.dump(jsonable({'keras_version': keras.__version__, 'tensorflow_version': tf.__version__,
                            'cases': cases}), f)
    print('wrote', len(cases), 'cases')
    model_fixture(conv)


if __name__ == '__main__':
    main()
