"""PyTorch side of `npm run bench`: a worker that times one case per request.

Protocol (one JSON object per line, on stdin and stdout):
  {"cmd": "info"}                               -> {"torch": version, "threads": n}
  {"cmd": "case", "id", "op", "shape", "groups", "grad", "eps"}  -> {"ok": true, "reps": r}
  {"cmd": "run", "id"}                          -> {"ms": mean ms per call over r calls}
  {"cmd": "fidelity", "op", "shape", "groups", "eps", "x": [...]}  -> {"y": [...]}
Shapes are channels-last like the tfjs side; group/instance norm run on
the contiguous NCHW tensor of the same size (PyTorch's native layout).
Single thread (torch.set_num_threads(1)).
"""
import json
import sys
import time

import torch
import torch.nn.functional as F

torch.set_num_threads(1)
cases = {}


def make(op, shape, groups, eps, grad):
    n, c = shape[0], shape[-1]
    if op in ('gn', 'in'):
        # NHWC shape -> the NCHW tensor PyTorch normalizes natively.
        nchw = [n, c] + list(shape[1:-1])
        x = torch.randn(*nchw, requires_grad=grad)
        w = torch.randn(c, requires_grad=grad)
        b = torch.randn(c, requires_grad=grad)
        g = c if op == 'in' else groups
        f = lambda: F.group_norm(x, g, w, b, eps)
    elif op == 'ln':
        x = torch.randn(*shape, requires_grad=grad)
        w = torch.randn(c, requires_grad=grad)
        b = torch.randn(c, requires_grad=grad)
        f = lambda: F.layer_norm(x, (c,), w, b, eps)
    elif op == 'rms':
        # PyTorch 1.13 has no rms_norm: the usual composite.
        x = torch.randn(*shape, requires_grad=grad)
        w = torch.randn(c, requires_grad=grad)
        f = lambda: x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w
    else:
        raise ValueError(op)
    if not grad:
        def run():
            with torch.no_grad():
                return f()
        return run
    dy = torch.randn(*x.shape)
    params = [x, w] + ([b] if op != 'rms' else [])

    def run_grad():
        y = f()
        return torch.autograd.grad(y, params, dy)
    return run_grad


def timed(fn, reps):
    t0 = time.perf_counter()
    for _ in range(reps):
        fn()
    return (time.perf_counter() - t0) * 1000 / reps


def main():
    for line in sys.stdin:
        req = json.loads(line)
        cmd = req['cmd']
        if cmd == 'info':
            out = {'torch': torch.__version__, 'threads': torch.get_num_threads()}
        elif cmd == 'case':
            fn = make(req['op'], req['shape'], req.get('groups'), req['eps'], req['grad'])
            for _ in range(10):  # warm the allocator (see bench.ts: MALLOC_* settings)
                fn()
            one = timed(fn, 3)
            reps = max(1, min(200, int(5 / max(one, 1e-3))))  # about 5 ms a sample
            cases[req['id']] = (fn, reps)
            out = {'ok': True, 'reps': reps}
        elif cmd == 'run':
            fn, reps = cases[req['id']]
            out = {'ms': timed(fn, reps)}
        elif cmd == 'fidelity':
            shape = req['shape']
            x = torch.tensor(req['x'], dtype=torch.float32).reshape(*shape)
            c = shape[-1]
            if req['op'] == 'gn':
                xc = x.permute(0, len(shape) - 1, *range(1, len(shape) - 1)).contiguous()
                y = F.group_norm(xc, req['groups'], eps=req['eps'])
                y = y.permute(0, *range(2, len(shape)), 1).contiguous()
            else:
                y = F.layer_norm(x, (c,), eps=req['eps'])
            out = {'y': y.reshape(-1).tolist()}
        else:
            out = {'error': 'unknown cmd ' + cmd}
        sys.stdout.write(json.dumps(out) + '\n')
        sys.stdout.flush()


if __name__ == '__main__':
    main()
