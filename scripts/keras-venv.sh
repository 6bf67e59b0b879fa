#!/bin/sh
# Creates (once) the Python venv with Keras 3 and TensorFlow used by
# scripts/make-keras3-fixtures.py and test/keras3_back.test.ts.
# Idempotent: does nothing when the venv already imports keras 3, tensorflow,
# h5py and numpy. Directory: $KERAS_VENV, default .venv-keras (gitignored).
# pip flags: the wheel store here is local; never wait on an index.
set -e
cd "$(dirname "$0")/.."
VENV="${KERAS_VENV:-.venv-keras}"
check='import keras, tensorflow, h5py, numpy, sys; sys.exit(0 if keras.__version__.startswith("3.") else 1)'
if [ -x "$VENV/bin/python" ] && TF_CPP_MIN_LOG_LEVEL=3 "$VENV/bin/python" -c "$check" 2>/dev/null; then
  echo "keras-venv: $VENV is ready"
  exit 0
fi
python3 -m venv "$VENV"
"$VENV/bin/pip" install -q --retries 0 --timeout 5 tensorflow-cpu keras numpy h5py
TF_CPP_MIN_LOG_LEVEL=3 "$VENV/bin/python" -c "$check"
echo "keras-venv: $VENV created"
