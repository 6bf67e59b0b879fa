#!/usr/bin/env python3
"""Writes test/fixtures/keras3-batchnorm-probe.json: Keras 3's numbers, in
float64, for keras.layers.BatchNormalization on adversarial inputs, the
reference of the 'against Keras 3 in float64 (adversarial)' tests of
test/batch_normalization.test.ts.

Run: KERAS_VENV=~/.cache/tfjs-normalization/venv-keras scripts/keras-venv.sh &&
~/.cache/tfjs-normalization/venv-keras/bin/python scripts/make-batchnorm-probe-fixtures.py
(Keras 3.15 / TensorFlow 2.21 from pip, KERAS_BACKEND=tensorflow).

Each case: a float64 Keras layer (dtype='float64': Keras's arithmetic, in
float64) with its weights set to given float32 values, then a few training
calls on float32 batches: for each, the output y, the gradients of
loss = sum(c * y) (tf.GradientTape) with respect to x and to the trainable
weights, and every weight after the call; at the end the inference output
on the last batch.

Masked cases: the mask has rank inputs - 1 (Keras's rule) and c is 0 at
masked positions (this package treats masked outputs as don't-cares, see
docs/guarantees.md). `x` is what the package is fed: the batch with garbage
(NaN, Inf, 1e30) at masked positions; Keras is run on `x` with 0 there
instead, since its own gradient carries 0 * NaN from padding into dgamma
(loss-masked or not), which is what the package must not do. Outputs are
compared at valid positions only.

Cases: renorm with a mask and NaN / Inf / 1e30 padding (dgamma was NaN
here before the fix in BatchNormalization.composeMasked), renorm
clipping that clips (rmax, rmin, dmax each alone, and together),
renorm_stddev below sqrt(epsilon), a fully masked batch, a mask that varies
per channel (axis 1), momentum 0 and 1, ranks 2 and 5 with middle axes,
constant channels with a tiny epsilon.
"""
import json
import math
import os

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
os.environ.setdefault('KERAS_BACKEND', 'tensorflow')

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, '..', 'test', 'fixtures', 'keras3-batchnorm-probe.json')
rng = np.random.default_rng(20261203)


def enc(a):
    """Flat float64 list; NaN and +-Inf as the strings 'NaN', 'Infinity', '-Infinity' (JSON has none)."""
    out = []
    for v in np.asarray(a, dtype=np.float64).ravel().tolist():
        if math.isnan(v):
            out.append('NaN')
        elif math.isinf(v):
            out.append('Infinity' if v > 0 else '-Infinity')
        else:
            out.append(v)
    return out


def channel_normal(shape, axis, scales, offsets):
    """x ~ N(offset_c, scale_c) per channel c along axis."""
    bs = [1] * len(shape)
    bs[axis % len(shape)] = shape[axis % len(shape)]
    return lambda: (rng.normal(0, 1, shape) * np.reshape(scales, bs) + np.reshape(offsets, bs)).astype('float32')


def lengths(shape, ls):
    """A [batch, time, ...] mask of rank len(shape) - 1, valid where the index along axis 1 is below the sample's length."""
    idx = np.indices(shape[:-1])
    return idx[1] < np.array(ls).reshape((-1,) + (1,) * (len(shape) - 2))


def case(name, kwargs, shape, xgen, steps=3, mask=None, garbage=None, weights=None):
    layer = keras.layers.BatchNormalization(dtype='float64', **kwargs)
    layer.build(shape)
    init = {}
    for w in layer.weights:
        s = tuple(w.shape)
        if weights and w.name in weights:
            v = np.asarray(weights[w.name], 'float32')
        elif 'variance' in w.name or 'stddev' in w.name or w.name == 'gamma':
            v = rng.uniform(0.5, 1.5, s).astype('float32')
        else:
            v = rng.normal(0, 0.5, s).astype('float32')
        init[w.name] = v
        w.assign(v.astype('float64'))
    out_steps = []
    for _ in range(steps):
        x = xgen()
        c = rng.normal(0, 1, shape).astype('float32')
        m = None if mask is None else mask(shape)
        x_keras = x
        if m is not None:
            valid = np.broadcast_to(np.expand_dims(m, -1), shape)
            c = np.where(valid, c, 0).astype('float32')
            if garbage is not None:
                x = np.where(valid, x, np.float32(garbage)).astype('float32')
                x_keras = np.where(valid, x, 0).astype('float32')
        xt = tf.constant(x_keras.astype('float64'))
        with tf.GradientTape() as tape:
            tape.watch(xt)
            y = layer(xt, training=True, mask=None if m is None else tf.constant(m))
            loss = tf.reduce_sum(tf.constant(c.astype('float64')) * y)
        grads = tape.gradient(loss, [xt] + [w.value for w in layer.trainable_weights])
        out_steps.append({
            'x': enc(x), 'c': enc(c), 'mask': None if m is None else enc(m.astype('float64')),
            'mask_shape': None if m is None else list(m.shape),
            'y': enc(y), 'dx': enc(grads[0]),
            'weight_gradients': {w.name: enc(g) for w, g in zip(layer.trainable_weights, grads[1:])},
            'weights_after': {w.name: enc(w.numpy()) for w in layer.weights},
        })
    # Inference ignores the mask (as Keras) and is elementwise: garbage in, garbage out at padding only.
    inference = enc(layer(tf.constant(x.astype('float64')), training=False))
    config = {k: v for k, v in layer.get_config().items() if k in (
        'axis', 'momentum', 'epsilon', 'center', 'scale', 'renorm', 'renorm_clipping', 'renorm_momentum')}
    return {
        'name': name, 'config': config, 'shape': list(shape),
        'weight_names': [w.name for w in layer.weights], 'initial_weights': {k: enc(v) for k, v in init.items()},
        'steps': out_steps, 'inference_y': inference,
    }


def main():
    keras.utils.set_random_seed(20261203)
    s4 = [0.2, 1.0, 3.0, 6.0]
    o4 = [-2.0, 0.0, 0.5, 3.0]
    x64 = channel_normal((6, 4), -1, s4, o4)
    x354 = channel_normal((3, 5, 4), -1, s4, o4)
    cases = [
        case('renorm, masked, NaN padding and an all-masked row', {
            'renorm': True, 'renorm_clipping': {'rmax': 1.3, 'dmax': 0.5}, 'renorm_momentum': 0.6},
            (3, 5, 4), x354, mask=lambda s: lengths(s, [5, 0, 2]), garbage=float('nan')),
        case('renorm, masked, +Inf padding, center off', {
            'renorm': True, 'center': False, 'renorm_clipping': {'rmin': 0.9}},
            (3, 5, 4), x354, mask=lambda s: lengths(s, [5, 3, 2]), garbage=float('inf')),
        case('renorm, masked per channel (axis 1), 1e30 padding', {
            'renorm': True, 'axis': 1, 'renorm_clipping': {'dmax': 0.2}},
            (3, 4, 5), lambda: rng.normal(0.3, 1.5, (3, 4, 5)).astype('float32'),
            mask=lambda s: rng.uniform(size=s[:-1]) < 0.6, garbage=1e30),
        case('renorm, masked, NaN padding, scale off', {'renorm': True, 'scale': False},
             (3, 5, 4), lambda: rng.normal(0.3, 1.5, (3, 5, 4)).astype('float32'),
             mask=lambda s: lengths(s, [5, 3, 0]), garbage=float('nan')),
        case('renorm, rmax alone clips', {'renorm': True, 'renorm_clipping': {'rmax': 1.2}, 'renorm_momentum': 0.5},
             (6, 4), x64),
        case('renorm, rmin alone clips', {'renorm': True, 'renorm_clipping': {'rmin': 0.8}, 'renorm_momentum': 0.5},
             (6, 4), x64),
        case('renorm, dmax alone clips', {'renorm': True, 'renorm_clipping': {'dmax': 0.3}, 'renorm_momentum': 0.5},
             (6, 4), x64),
        case('renorm, rmax rmin dmax together, rank 3', {
            'renorm': True, 'renorm_clipping': {'rmax': 1.5, 'rmin': 0.7, 'dmax': 0.4}, 'renorm_momentum': 0.6,
            'momentum': 0.8}, (5, 3, 4), channel_normal((5, 3, 4), -1, s4, o4), steps=4),
        case('renorm, renorm_stddev below sqrt(epsilon)', {'renorm': True, 'epsilon': 1e-2, 'renorm_momentum': 0.5},
             (6, 4), x64, weights={'renorm_stddev': [1e-4, 0.0, 0.05, 2.0]}),
        case('renorm, renorm_momentum 0, momentum 1', {'renorm': True, 'renorm_momentum': 0.0, 'momentum': 1.0},
             (6, 4), x64),
        case('fully masked batch, 1e30 padding', {'momentum': 0.7}, (3, 4, 3),
             lambda: rng.normal(0.3, 1.5, (3, 4, 3)).astype('float32'), steps=2,
             mask=lambda s: np.zeros(s[:-1], bool), garbage=1e30),
        case('mask per channel (axis 1), a channel fully masked, NaN padding', {'axis': 1, 'momentum': 0.6},
             (3, 4, 5), lambda: rng.normal(0.3, 1.5, (3, 4, 5)).astype('float32'),
             mask=lambda s: np.tile(np.array([1, 0, 1, 1], bool), (3, 1)), garbage=float('nan')),
        case('rank 5, axis 2, masked, NaN padding', {'axis': 2, 'momentum': 0.6}, (2, 3, 4, 2, 2),
             lambda: rng.normal(0.3, 1.5, (2, 3, 4, 2, 2)).astype('float32'),
             mask=lambda s: rng.uniform(size=s[:-1]) < 0.6, garbage=float('nan')),
        case('rank 2, axis 0', {'axis': 0, 'momentum': 0.7}, (4, 6),
             lambda: rng.normal(0.3, 1.5, (4, 6)).astype('float32')),
        case('rank 5, axis -3, momentum 0', {'axis': -3, 'momentum': 0.0}, (2, 2, 3, 2, 3),
             lambda: rng.normal(0.3, 1.5, (2, 2, 3, 2, 3)).astype('float32')),
        case('epsilon 1e-10, constant channels', {'epsilon': 1e-10, 'momentum': 0.5}, (6, 4),
             channel_normal((6, 4), -1, [1, 0, 0, 1e-3], [0, 3.7, -1e3, 2])),
    ]
    with open(OUT, 'w') as f:
        json.dump({'keras_version': keras.__version__, 'tensorflow_version': tf.__version__, 'cases': cases}, f)
    print('wrote', len(cases), 'cases to', OUT)


if __name__ == '__main__':
    main()
