#!/bin/sh
# Creates (once) the Python venv with PyTorch 2.x (CPU) and numpy that
# `npm run bench` times as its PyTorch peer (bench/torch_worker.py).
# Idempotent: does nothing when the venv already imports torch >= 2 and numpy.
# Directory: $TORCH_VENV, default ~/.cache/tfjs-normalization/venv-torch.
# pip flags: the wheel store here is local; never wait on an index.
# Exit status 0 with the venv ready, 1 where it cannot be made (the bench
# then falls back to Debian's python3-torch, or skips PyTorch loudly).
set -e
VENV="${TORCH_VENV:-$HOME/.cache/tfjs-normalization/venv-torch}"
check='import torch, numpy, sys; sys.exit(0 if int(torch.__version__.split(".")[0]) >= 2 else 1)'
if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c "$check" 2>/dev/null; then
  echo "torch-venv: $VENV is ready"
  exit 0
fi
mkdir -p "$(dirname "$VENV")"
python3 -m venv "$VENV"
"$VENV/bin/pip" install -q --retries 0 --timeout 5 torch==2.13.0+cpu numpy
"$VENV/bin/python" -c "$check"
echo "torch-venv: $VENV created"
