#!/usr/bin/env python3
"""Writes test/fixtures/keras3-family/spectral-order.json: Keras 3's
SpectralNormalization weight order (`weights`, `trainable_weights`,
`non_trainable_weights`, also with `trainable = False`) and its
`get_weights()` arrays for a wrapped Dense, Conv2D and DepthwiseConv2D, with and without
bias, with Keras's outputs for one input in inference and after one training
call (and get_weights() after it), for test/spectral_normalization.test.ts.

Run: KERAS_VENV=~/.cache/tfjs-normalization/venv-keras scripts/keras-venv.sh &&
     ~/.cache/tfjs-normalization/venv-keras/bin/python scripts/make-keras3-spectral-order.py
"""
import json
import os

os.environ.setdefault('KERAS_BACKEND', 'tensorflow')
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
import keras  # noqa: E402
import numpy as np  # noqa: E402
from keras import layers as L  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, '..', 'test', 'fixtures', 'keras3-family', 'spectral-order.json')

CASES = [
    # name, wrapped layer, tfjs config of it, input shape (batch included)
    ('dense', lambda b: L.Dense(3, use_bias=b, name='d'), lambda b: {'className': 'Dense', 'config': {'units': 3, 'useBias': b, 'name': 'd'}},
     [2, 4]),
    ('conv2d', lambda b: L.Conv2D(2, 3, use_bias=b, name='c'),
     lambda b: {'className': 'Conv2D', 'config': {'filters': 2, 'kernelSize': 3, 'useBias': b, 'name': 'c'}}, [1, 5, 5, 2]),
    # Keras 3's DepthwiseConv2D holds its kernel as `kernel` (tfjs: depthwise_kernel), so Keras wraps it.
    ('depthwise', lambda b: L.DepthwiseConv2D(3, depth_multiplier=2, use_bias=b, name='dw'),
     lambda b: {'className': 'DepthwiseConv2D', 'config': {'kernelSize': 3, 'depthMultiplier': 2, 'useBias': b, 'name': 'dw'}},
     [2, 5, 5, 3]),
]


def flat(a):
    return np.asarray(a, dtype='float64').ravel().tolist()


def main():
    rng = np.random.default_rng(20261202)
    out = {'keras': keras.__version__, 'cases': []}
    for name, make, config, in_shape in CASES:
        for bias in (True, False):
            sn = L.SpectralNormalization(make(bias), name='sn')
            sn.build(tuple([None] + in_shape[1:]))
            names = lambda ws: [w.path for w in ws]  # noqa: E731
            order = {'weights': names(sn.weights), 'trainable_weights': names(sn.trainable_weights),
                     'non_trainable_weights': names(sn.non_trainable_weights)}
            sn.trainable = False
            frozen = {'weights': names(sn.weights), 'trainable_weights': names(sn.trainable_weights),
                      'non_trainable_weights': names(sn.non_trainable_weights)}
            sn.trainable = True
            values = [rng.normal(0, 0.7, a.shape).astype('float32') for a in sn.get_weights()]
            sn.set_weights(values)
            x = rng.normal(0, 1, in_shape).astype('float32')
            y = sn(x, training=False)
            y_train = sn(x, training=True)
            out['cases'].append({
                'name': f'{name}{"" if bias else ", no bias"}', 'layer': config(bias), 'order': order, 'frozen': frozen,
                'get_weights': [{'shape': list(a.shape), 'data': flat(a)} for a in values],
                'x': {'shape': in_shape, 'data': flat(x)},
                'output': flat(y), 'output_training': flat(y_train),
                'get_weights_after_training': [flat(a) for a in sn.get_weights()],
            })
            print(name, 'bias' if bias else 'no bias', order, 'frozen:', frozen)
    with open(OUT, 'w') as f:
        json.dump(out, f)
    print('wrote', OUT)


if __name__ == '__main__':
    main()
