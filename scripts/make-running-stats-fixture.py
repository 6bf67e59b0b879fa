#!/usr/bin/python3
"""Writes test/fixtures/instance-norm-running-stats.json: PyTorch's
InstanceNorm2d with track_running_stats=True (float64), as the reference for
InstanceNormalization({trackRunningStats: true}).

Run with Debian's python3-torch: /usr/bin/python3 scripts/make-running-stats-fixture.py

Three training steps (instance statistics, running stats updated with
momentum and the unbiased variance), then one evaluation step (running
statistics). Data is written channels-last (NHWC), as tfjs uses it.
"""
import json
import os

import torch

torch.manual_seed(20261130)
N, C, H, W = 3, 4, 5, 6
EPS, MOMENTUM = 1e-5, 0.1

layer = torch.nn.InstanceNorm2d(C, eps=EPS, momentum=MOMENTUM, affine=True, track_running_stats=True).double()
with torch.no_grad():
    layer.weight.copy_(torch.rand(C, dtype=torch.float64) + 0.5)
    layer.bias.copy_(torch.randn(C, dtype=torch.float64) * 0.5)


def nhwc(t):
    return t.permute(0, 2, 3, 1).contiguous().reshape(-1).tolist()


steps = []
layer.train()
for step in range(3):
    x = torch.randn(N, C, H, W, dtype=torch.float64) * (1 + step) + step
    y = layer(x)
    steps.append({
        'x': nhwc(x), 'y': nhwc(y.detach()),
        'running_mean': layer.running_mean.tolist(), 'running_var': layer.running_var.tolist(),
    })

layer.eval()
x_eval = torch.randn(N, C, H, W, dtype=torch.float64) * 2 + 1
y_eval = layer(x_eval)

out = {
    'meta': {
        'generator': f'PyTorch {torch.__version__}, torch.nn.InstanceNorm2d(track_running_stats=True), float64',
        'script': 'scripts/make-running-stats-fixture.py',
        'layout': 'channels-last (NHWC), flat row-major',
    },
    'shape': [N, H, W, C], 'epsilon': EPS, 'momentum': MOMENTUM,
    'gamma': layer.weight.tolist(), 'beta': layer.bias.tolist(),
    'train_steps': steps,
    'eval': {'x': nhwc(x_eval), 'y': nhwc(y_eval.detach())},
}
path = os.path.join(os.path.dirname(__file__), '..', 'test', 'fixtures', 'instance-norm-running-stats.json')
with open(path, 'w') as f:
    json.dump(out, f)
print('wrote', os.path.normpath(path))
