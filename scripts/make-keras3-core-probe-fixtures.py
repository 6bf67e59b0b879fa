#!/usr/bin/env python3
"""Writes test/fixtures/keras3-core-probe.json: Keras 3's numbers, in
float64, for keras.layers.GroupNormalization, LayerNormalization (with and
without rms_scaling) and RMSNormalization on adversarial inputs, the
reference of test/keras3_core_probe.test.ts.

Run: KERAS_VENV=~/.cache/tfjs-normalization/venv-keras scripts/keras-venv.sh &&
~/.cache/tfjs-normalization/venv-keras/bin/python scripts/make-keras3-core-probe-fixtures.py
(Keras 3.15 / TensorFlow from pip, KERAS_BACKEND=tensorflow).

Unmasked cases: a float64 Keras layer (dtype='float64') built on the shape,
its weights set to given float32 values, called on a float32 x; y and the
gradients of loss = sum(dy * y) (tf.GradientTape) with respect to x and to
every weight; the layer's get_config() after build (Keras 3.15 sorts an
axis list and writes it as a list) and its weights' names and shapes.
Ranks 2 to 5, negative, channels-first and middle channel axes, axis lists,
center/scale off, epsilon 0, data scaled by 1e-20 or 1e20, offset by 1e4,
and constant sets. Left out: constant sets at 1e20 and data offset by 1e20,
where Keras's own float64 arithmetic (x * inv + (beta - mean * inv)) loses
beta (y = 0 for a constant set instead of beta); second-order gradients,
where TensorFlow's moments (a stop_gradient on the mean inside the
variance) give wrong second derivatives with respect to x (PyTorch agrees
with this package there, not with Keras).

Masked cases: Keras 3.15's GroupNormalization and LayerNormalization pass a
mask on but leave it out of their statistics (RMSNormalization drops it);
this package leaves masked positions out of the statistics
(docs/guarantees.md). The reference is therefore Keras run on each sample's
valid time steps alone (gathered; gamma/beta rows gathered with them when
they span time), through keras.ops.layer_normalization /
rms_normalization and an unscaled GroupNormalization times gamma plus beta;
x and dy carry garbage (NaN, 1e30) at the masked steps, where dx is 0.
"""
import json
import os
import sys

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
os.environ.setdefault('KERAS_BACKEND', 'tensorflow')

import warnings  # noqa: E402

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from keras import ops  # noqa: E402

warnings.filterwarnings('ignore', message='You passed `rms_scaling=True`')
rng = np.random.default_rng(20261203)
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'test', 'fixtures', 'keras3-core-probe.json')


def f32(a):
    return np.asarray(a, np.float32).astype(np.float64)


def flat(a):
    return [None if np.isnan(v) else float(v) for v in np.asarray(a, np.float64).ravel()]


def layer_of(kind, args):
    cls = {'gn': keras.layers.GroupNormalization, 'ln': keras.layers.LayerNormalization,
           'rms': keras.layers.RMSNormalization}[kind]
    return cls(dtype='float64', **args)


def unmasked(name, kind, args, shape, scale=1.0, offset=0.0, const=False):
    x = f32(np.full(shape, offset) if const else rng.standard_normal(shape) * scale + offset)
    dy = f32(rng.standard_normal(shape))
    layer = layer_of(kind, args)
    layer.build(shape)
    weights = []
    for w in layer.weights:
        v = f32(rng.standard_normal(w.shape) * 0.5 + (1.0 if w.name in ('gamma', 'scale') else 0.0))
        w.assign(v)
        weights.append(v)
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        y = layer(xt)
        loss = tf.reduce_sum(y * dy)
    grads = tape.gradient(loss, [xt] + [w.value for w in layer.weights])
    config = {k: v for k, v in layer.get_config().items() if k not in ('name', 'dtype', 'trainable')}
    return dict(name=name, kind=kind, args=args, shape=list(shape), x=flat(x), dy=flat(dy),
                weightNames=[w.name for w in layer.weights], weightShapes=[list(w.shape) for w in layer.weights],
                weights=[flat(w) for w in weights], config=config,
                y=flat(y.numpy()), dx=flat(grads[0].numpy()), dw=[flat(g.numpy()) for g in grads[1:]])


def masked(name, kind, args, shape, valid, garbage):
    batch, steps, _ = shape
    x = f32(rng.standard_normal(shape))
    dy = f32(rng.standard_normal(shape))
    mask = np.zeros((batch, steps))
    for b, v in enumerate(valid):
        mask[b, v] = 1
    axis = args.get('axis', -1)
    axes = sorted(axis) if isinstance(axis, list) else [axis]
    pshape = (shape[-1],) if kind == 'gn' else tuple(shape[a] for a in axes)
    spans_time = kind != 'gn' and 1 in axes
    gamma = f32(rng.standard_normal(pshape) * 0.5 + 1)
    beta = f32(rng.standard_normal(pshape) * 0.5)
    eps = args.get('epsilon', 1e-6 if kind == 'rms' else 1e-3)
    y = np.zeros(shape)
    dx = np.zeros(shape)
    dgamma = np.zeros(pshape)
    dbeta = np.zeros(pshape)
    has_beta = kind == 'gn' or (kind == 'ln' and not args.get('rms_scaling'))
    for b in range(batch):
        idx = np.array(valid[b])
        xb = tf.constant(x[b:b + 1, idx])
        gb = tf.constant(gamma[idx] if spans_time else gamma)
        bb = tf.constant(beta[idx] if spans_time else beta)
        with tf.GradientTape() as tape:
            tape.watch([xb, gb, bb])
            if kind == 'gn':
                plain = keras.layers.GroupNormalization(groups=args['groups'], epsilon=eps, center=False, scale=False,
                                                        dtype='float64')
                yb = plain(xb) * gb + bb
            elif kind == 'ln':
                yb = ops.layer_normalization(xb, gb, None if args.get('rms_scaling') else bb, axis=axis, epsilon=eps,
                                             rms_scaling=bool(args.get('rms_scaling')))
            else:
                yb = ops.rms_normalization(xb, gb, axis=axis, epsilon=eps)
            loss = tf.reduce_sum(yb * dy[b:b + 1, idx])
        gx, gg, gbeta = tape.gradient(loss, [xb, gb, bb])
        y[b, idx] = yb.numpy()[0]
        dx[b, idx] = gx.numpy()[0]
        if spans_time:
            dgamma[idx] += gg.numpy()
            if gbeta is not None:
                dbeta[idx] += gbeta.numpy()
        else:
            dgamma += gg.numpy()
            if gbeta is not None:
                dbeta += gbeta.numpy()
    bad = np.repeat(mask[:, :, None] == 0, shape[-1], axis=2)
    xg = np.where(bad, garbage, x)
    dyg = np.where(bad, garbage, dy)
    names = ['scale'] if kind == 'rms' else (['gamma', 'beta'] if has_beta else ['gamma'])
    ws = [gamma, beta][:len(names)]
    dws = [dgamma, dbeta][:len(names)]
    return dict(name=name, kind=kind, args=args, shape=list(shape), mask=flat(mask), x=flat(xg), dy=flat(dyg),
                weightNames=names, weights=[flat(w) for w in ws], y=flat(y), dx=flat(dx), dw=[flat(d) for d in dws])


def main():
    cases = []
    u = lambda *a, **k: cases.append(unmasked(*a, **k))  # noqa: E731
    u('gn r4 groups 2', 'gn', dict(groups=2), (2, 3, 3, 4))
    u('gn r2 groups 2', 'gn', dict(groups=2), (3, 6))
    u('gn r3 groups -1', 'gn', dict(groups=-1), (2, 5, 3))
    u('gn r5 groups 3', 'gn', dict(groups=3), (2, 2, 3, 2, 6))
    u('gn channels-first', 'gn', dict(groups=2, axis=1), (2, 4, 3, 3))
    u('gn axis -2', 'gn', dict(groups=2, axis=-2), (2, 3, 4, 5))
    u('gn axis 2 of rank 4', 'gn', dict(groups=3, axis=2), (2, 3, 6, 2))
    u('gn center false', 'gn', dict(groups=2, center=False), (2, 4, 4))
    u('gn scale false', 'gn', dict(groups=2, scale=False), (2, 4, 4))
    u('gn no weights', 'gn', dict(groups=2, scale=False, center=False), (2, 4, 4))
    u('gn x 1e-20 epsilon 0', 'gn', dict(groups=2, epsilon=0.0), (2, 3, 4), scale=1e-20)
    u('gn x 1e-20', 'gn', dict(groups=2), (2, 3, 4), scale=1e-20)
    u('gn x 1e20 epsilon 0', 'gn', dict(groups=2, epsilon=0.0), (2, 3, 4), scale=1e20)
    u('gn offset 1e4', 'gn', dict(groups=2), (2, 3, 4), offset=1e4)
    u('gn constant', 'gn', dict(groups=2), (2, 3, 4), offset=3.0, const=True)
    u('gn epsilon 0.5', 'gn', dict(groups=1, epsilon=0.5), (2, 3, 4))
    u('ln r2', 'ln', dict(), (3, 7))
    u('ln axis [1, 2]', 'ln', dict(axis=[1, 2]), (2, 3, 4))
    u('ln axis [-1, 1]', 'ln', dict(axis=[-1, 1]), (2, 3, 4, 5))
    u('ln axis [2, 1]', 'ln', dict(axis=[2, 1]), (2, 3, 4, 5))
    u('ln axis [2, 4] of rank 5', 'ln', dict(axis=[2, 4]), (2, 2, 3, 2, 4))
    u('ln axis 1', 'ln', dict(axis=1), (2, 5, 3))
    u('ln rms_scaling', 'ln', dict(rms_scaling=True), (2, 3, 6))
    u('ln rms_scaling axis [1, 2]', 'ln', dict(rms_scaling=True, axis=[1, 2]), (2, 3, 6))
    u('ln rms_scaling center/scale false', 'ln', dict(rms_scaling=True, scale=False, center=False), (2, 3, 6))
    u('ln center false', 'ln', dict(center=False), (2, 3, 6))
    u('ln scale false', 'ln', dict(scale=False), (2, 3, 6))
    u('ln x 1e-20 epsilon 0', 'ln', dict(epsilon=0.0), (2, 8), scale=1e-20)
    u('ln x 1e20 epsilon 0', 'ln', dict(epsilon=0.0), (2, 8), scale=1e20)
    u('ln x 1e20', 'ln', dict(), (2, 8), scale=1e20)
    u('ln rms_scaling x 1e-20', 'ln', dict(rms_scaling=True), (2, 8), scale=1e-20)
    u('ln rms_scaling x 1e20 epsilon 0', 'ln', dict(rms_scaling=True, epsilon=0.0), (2, 8), scale=1e20)
    u('rms r2', 'rms', dict(), (3, 7))
    u('rms axis [1, 2]', 'rms', dict(axis=[1, 2]), (2, 3, 4))
    u('rms axis [-1, -2] of rank 5', 'rms', dict(axis=[-1, -2]), (2, 2, 2, 3, 4))
    u('rms x 1e-20', 'rms', dict(), (2, 8), scale=1e-20)
    u('rms x 1e-3', 'rms', dict(), (2, 8), scale=1e-3)
    u('rms x 1e20', 'rms', dict(), (2, 8), scale=1e20)
    u('rms zeros', 'rms', dict(), (2, 8), offset=0.0, const=True)
    u('rms epsilon 0', 'rms', dict(epsilon=0.0), (3, 7))
    valid = [[0, 1, 2], [0, 2, 3, 4]]
    for garbage, gname in [(float('nan'), 'NaN'), (1e30, '1e30')]:
        m = lambda *a: cases.append(masked(*a, garbage))  # noqa: E731
        m(f'masked gn groups 2, {gname}', 'gn', dict(groups=2), (2, 5, 4), valid)
        m(f'masked gn groups 4, {gname}', 'gn', dict(groups=4), (2, 5, 4), [[0, 1], [1, 2, 3, 4]])
        m(f'masked ln axis [1, 2], {gname}', 'ln', dict(axis=[1, 2]), (2, 5, 4), valid)
        m(f'masked ln rms_scaling axis [1, 2], {gname}', 'ln', dict(axis=[1, 2], rms_scaling=True), (2, 5, 4), valid)
        m(f'masked ln axis -1, {gname}', 'ln', dict(axis=-1), (2, 5, 4), valid)
        m(f'masked rms axis [1, 2], {gname}', 'rms', dict(axis=[1, 2]), (2, 5, 4), valid)
    meta = dict(keras=keras.__version__, tensorflow=tf.__version__, script='scripts/make-keras3-core-probe-fixtures.py')
    with open(sys.argv[1] if len(sys.argv) > 1 else OUT, 'w') as f:
        json.dump(dict(meta=meta, cases=cases), f, separators=(',', ':'))
    print(len(cases), 'cases')


if __name__ == '__main__':
    main()
