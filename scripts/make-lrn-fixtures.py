#!/usr/bin/env python3
"""Writes the local response normalization references:

- test/fixtures/lrn-torch.json: torch.nn.LocalResponseNorm(size, alpha, beta, k)
  in float64 (PyTorch 2.13), inputs [N, C, ...] as PyTorch takes them; for
  each case y and x.grad of sum(y * dy).
- test/fixtures/lrn-tf.json: tf.nn.local_response_normalization(x,
  depth_radius, bias, alpha, beta) (TensorFlow 2.21, float32: its kernel has
  no float64), inputs [N, H, W, C]; y and the gradient of sum(y * dy).

Run: python3 -m venv .venv-torch && .venv-torch/bin/pip install --retries 0 --timeout 5 torch==2.13.0+cpu numpy
     .venv-torch/bin/python scripts/make-lrn-fixtures.py torch
     ~/.cache/tfjs-normalization/venv-keras/bin/python scripts/make-lrn-fixtures.py tf
"""
import json
import os
import sys

import numpy as np

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'test', 'fixtures')
rng = np.random.default_rng(20261202)

TORCH_CASES = [
    # (name, shape [N, C, ...], size, alpha, beta, k)
    ('size2 defaults [2,5,3,3]', [2, 5, 3, 3], 2, 1e-4, 0.75, 1.0),
    ('size3 [2,6,2,3]', [2, 6, 2, 3], 3, 0.5, 0.75, 1.0),
    ('size4 even [2,7,2,2] alpha2 beta0.6 k0.5', [2, 7, 2, 2], 4, 2.0, 0.6, 0.5),
    ('size5 3D [3,8,4]', [3, 8, 4], 5, 1.0, 0.75, 2.0),
    ('size6 even 5D [2,6,2,2,2]', [2, 6, 2, 2, 2], 6, 3.0, 0.9, 1.0),
    ('size1 [2,4,3]', [2, 4, 3], 1, 1.5, 0.75, 1.0),
    ('size9 wider than C [2,4,3,2]', [2, 4, 3, 2], 9, 4.0, 0.5, 1.0),
]

TF_CASES = [
    # (name, shape [N, H, W, C], depth_radius, bias, alpha, beta)
    ('defaults [2,3,3,12]', [2, 3, 3, 12], 5, 1.0, 1.0, 0.5),
    ('r2 [2,2,3,7] alpha0.1 beta0.75 bias2', [2, 2, 3, 7], 2, 2.0, 0.1, 0.75),
    ('r0 [1,2,2,5]', [1, 2, 2, 5], 0, 1.0, 0.5, 0.5),
    ('r7 wider than C [2,2,2,4]', [2, 2, 2, 4], 7, 0.5, 0.3, 1.2),
]


def torch_cases():
    import torch
    out = []
    for name, shape, size, alpha, beta, k in TORCH_CASES:
        x = torch.tensor(rng.normal(0.2, 1.5, shape), dtype=torch.float64, requires_grad=True)
        dy = torch.tensor(rng.normal(0, 1, shape), dtype=torch.float64)
        y = torch.nn.LocalResponseNorm(size, alpha=alpha, beta=beta, k=k)(x)
        (y * dy).sum().backward()
        out.append({'name': name, 'shape': shape, 'size': size, 'alpha': alpha, 'beta': beta, 'k': k,
                    'x': x.detach().reshape(-1).tolist(), 'dy': dy.reshape(-1).tolist(),
                    'y': y.detach().reshape(-1).tolist(), 'dx': x.grad.reshape(-1).tolist()})
    return {'framework': 'torch ' + torch.__version__, 'cases': out}


def tf_cases():
    os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
    import tensorflow as tf
    out = []
    for name, shape, r, bias, alpha, beta in TF_CASES:
        xn = rng.normal(0.2, 1.5, shape).astype('float32')
        dyn = rng.normal(0, 1, shape).astype('float32')
        x = tf.constant(xn)
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = tf.nn.local_response_normalization(x, depth_radius=r, bias=bias, alpha=alpha, beta=beta)
            loss = tf.reduce_sum(y * dyn)
        dx = tape.gradient(loss, x)
        out.append({'name': name, 'shape': shape, 'depth_radius': r, 'bias': bias, 'alpha': alpha, 'beta': beta,
                    'x': xn.reshape(-1).tolist(), 'dy': dyn.reshape(-1).tolist(),
                    'y': np.asarray(y).reshape(-1).tolist(), 'dx': np.asarray(dx).reshape(-1).tolist()})
    return {'framework': 'tensorflow ' + tf.__version__ + ' (float32)', 'cases': out}


def main():
    which = sys.argv[1] if len(sys.argv) > 1 else 'torch'
    data = torch_cases() if which == 'torch' else tf_cases()
    path = os.path.join(OUT, f'lrn-{which}.json')
    with open(path, 'w') as f:
        json.dump(data, f)
    print('wrote', path, data['framework'])


if __name__ == '__main__':
    main()
