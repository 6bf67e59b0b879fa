"""PyTorch side of `npm run bench`: a worker that times one case per request.

Protocol (one JSON object per line, on stdin and stdout):
  {"cmd": "info"} -> {"torch": version, "threads": default thread count, "rms": "rms_norm"|"composite"}
  {"cmd": "case", "id", "op", "shape", "groups", "grad", "eps", "dir"}
      loads the case's data written by bench.ts (dir/x.f32, gamma.f32,
      beta.f32, dy.f32: float32, channels-last like the tfjs side) and
      writes what one call returns to dir/torch_out.f32 (y, or dx, dgamma
      and dbeta one after the other, channels-last) for bench.ts to check
      against float64; -> {"ok": true}
  {"cmd": "calibrate", "id", "threads", "sample_ms", "warm_ms"}
      warms the case up for warm_ms of wall clock (batches of calls doubling
      up to half a sample), then sets its calls per sample r to sample_ms
      over the wall ms per call of the last batch (no cap, as bench.ts
      does for its own variants); -> {"reps": r}
  {"cmd": "run", "id", "threads"} -> {"ms": mean wall ms per call over r calls, "cpu_ms": process CPU ms}
  {"cmd": "fidelity", "op", "shape", "groups", "eps", "x": [...]} -> {"y": [...]}
Group/instance norm run on the contiguous NCHW tensor of the same data
(PyTorch's native layout). RMS norm: F.rms_norm where PyTorch has it (2.4+),
else the usual composite. Thread count per run request (torch.set_num_threads).
"""
import json
import os
import sys
import time

import torch
import torch.nn.functional as F

DEFAULT_THREADS = torch.get_num_threads()
HAS_RMS = hasattr(F, 'rms_norm')
cases = {}


def load(path, shape):
    data = bytearray(open(path, 'rb').read())
    return torch.frombuffer(data, dtype=torch.float32).reshape(*shape).clone()


def to_nchw(t):
    return t.permute(0, t.dim() - 1, *range(1, t.dim() - 1)).contiguous()


def to_nhwc(t):
    return t.permute(0, *range(2, t.dim()), 1).contiguous()


def make(op, shape, groups, eps, grad, d):
    c = shape[-1]
    x = load(os.path.join(d, 'x.f32'), shape)
    w = load(os.path.join(d, 'gamma.f32'), [c])
    b = load(os.path.join(d, 'beta.f32'), [c])
    dy = load(os.path.join(d, 'dy.f32'), shape)
    channels_first = op in ('gn', 'in')
    if channels_first:
        x, dy = to_nchw(x), to_nchw(dy)
    for t in (x, w, b):
        t.requires_grad_(grad)
    if channels_first:
        g = c if op == 'in' else groups
        f = lambda: F.group_norm(x, g, w, b, eps)
    elif op == 'ln':
        f = lambda: F.layer_norm(x, (c,), w, b, eps)
    elif op == 'rms':
        if HAS_RMS:
            f = lambda: F.rms_norm(x, (c,), w, eps)
        else:
            f = lambda: x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w
    else:
        raise ValueError(op)
    params = [x, w] + ([b] if op != 'rms' else [])

    def run():
        with torch.no_grad():
            return f()

    def run_grad():
        y = f()
        return torch.autograd.grad(y, params, dy)

    def outputs():
        if not grad:
            y = run()
            return [to_nhwc(y) if channels_first else y]
        gs = list(run_grad())
        if channels_first:
            gs[0] = to_nhwc(gs[0])
        return gs

    return (run_grad if grad else run), outputs


def timed(fn, reps):
    t0 = time.perf_counter()
    for _ in range(reps):
        fn()
    return (time.perf_counter() - t0) * 1000 / reps


def clocked(fn, reps):
    """Mean wall and process CPU ms per call (CPU: every thread of the process)."""
    c0 = time.process_time()
    t0 = time.perf_counter()
    for _ in range(reps):
        fn()
    wall = (time.perf_counter() - t0) * 1000 / reps
    return wall, (time.process_time() - c0) * 1000 / reps


def use_threads(want, current):
    """Sets torch's thread count to `want` where it is not already; returns it."""
    if want != current:
        torch.set_num_threads(want)
    return want


def main():
    torch.set_num_threads(1)
    threads = 1
    for line in sys.stdin:
        req = json.loads(line)
        cmd = req['cmd']
        if cmd == 'info':
            out = {'torch': torch.__version__, 'threads': DEFAULT_THREADS,
                   'rms': 'rms_norm' if HAS_RMS else 'composite'}
        elif cmd == 'case':
            threads = use_threads(1, threads)
            fn, outputs = make(req['op'], req['shape'], req.get('groups'), req['eps'], req['grad'], req['dir'])
            with open(os.path.join(req['dir'], 'torch_out.f32'), 'wb') as fh:
                for t in outputs():
                    fh.write(t.detach().contiguous().reshape(-1).numpy().astype('<f4').tobytes())
            cases[req['id']] = (fn, 1)
            out = {'ok': True}
        elif cmd == 'calibrate':
            threads = use_threads(int(req.get('threads', 1)), threads)
            fn, _ = cases[req['id']]
            sample_ms = float(req['sample_ms'])
            t0 = time.perf_counter()
            n = 1
            per = timed(fn, 1)
            while True:
                n = max(1, min(2 * n, round(sample_ms / 2 / max(per, 1e-4))))
                per = timed(fn, n)
                if (time.perf_counter() - t0) * 1000 >= float(req['warm_ms']):
                    break
            reps = max(1, round(sample_ms / max(per, 1e-4)))
            cases[req['id']] = (fn, reps)
            out = {'reps': reps}
        elif cmd == 'run':
            threads = use_threads(int(req.get('threads', 1)), threads)
            fn, reps = cases[req['id']]
            wall, cpu = clocked(fn, reps)
            out = {'ms': wall, 'cpu_ms': cpu}
        elif cmd == 'fidelity':
            threads = use_threads(1, threads)
            shape = req['shape']
            x = torch.tensor(req['x'], dtype=torch.float32).reshape(*shape)
            c = shape[-1]
            if req['op'] == 'gn':
                y = to_nhwc(F.group_norm(to_nchw(x), req['groups'], eps=req['eps']))
            else:
                y = F.layer_norm(x, (c,), eps=req['eps'])
            out = {'y': y.reshape(-1).tolist()}
        else:
            out = {'error': 'unknown cmd ' + cmd}
        sys.stdout.write(json.dumps(out) + '\n')
        sys.stdout.flush()


if __name__ == '__main__':
    main()
