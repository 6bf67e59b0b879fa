#!/usr/bin/env python3
"""Writes test/fixtures/keras3-family/: Keras 3 models with the family layers
(UnitNormalization, SpectralNormalization) in tensorflowjs_converter's format,
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


BUILDERS = {'unit_norm': unit_norm}


def main():
    keras.utils.set_random_seed(20261202)
    only = sys.argv[1:]
    for name, build in BUILDERS.items():
        if only and name not in only:
            continue
        model = build()
        k3.randomize(model)
        d = os.path.join(OUT, name)
        if os.path.isdir(d):
            shutil.rmtree(d)
        k3.convert_keras_h5(model, os.path.join(d, 'keras'))
        k3.convert_keras_keras(model, os.path.join(d, 'keras_keras'))
        with open(os.path.join(d, 'expected.json'), 'w') as f:
            json.dump(k3.reference(model, name), f)
        print('wrote', d)


if __name__ == '__main__':
    main()
