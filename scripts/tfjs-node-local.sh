#!/usr/bin/env bash
# Builds @tensorflow/tfjs-node from source against the TensorFlow C library
# inside the tensorflow-cpu Python wheel, for the test lane: tfjs-node's own
# install script downloads libtensorflow and a prebuilt addon, which CI
# machines cannot reach, but pip can fetch the wheel.
#
# The build goes into a cache folder outside the repository, keyed by the
# versions, and is reused on later runs (idempotent: a finished build is
# marked by a stamp file and not redone):
#   ${TFJS_NODE_CACHE:-~/.cache/tfjs-normalization}/tfjs-node-<v>-tf-<v>/
#     wheel/   the tensorflow-cpu wheel (pip download --no-deps; removed once unpacked)
#     tf/      its libtensorflow_cc.so.2, libtensorflow_framework.so.2, include/
#     prefix/node_modules/@tensorflow/tfjs-node   the built package
# The prefix's own copies of @tensorflow/tfjs* are removed: tfjs-node then
# resolves @tensorflow/tfjs from the repository's node_modules (NODE_PATH /
# jest's modulePaths), so one tfjs engine holds every backend. Nothing in the
# repository (package.json, package-lock.json) changes.
#
# This is TensorFlow 2.21 behind tfjs-node 4.22 (which officially ships 2.9.1):
# a test-lane substitute for the official binary.
#
# Prints the prefix's node_modules folder as its last line of stdout.
# Exit codes: 0 built (or cached), 3 the wheel cannot be fetched,
# 4 npm cannot fetch tfjs-node, 1 anything else (build failure).
set -euo pipefail

TF_VERSION="${TF_VERSION:-2.21.0}"
TFJS_NODE_VERSION="${TFJS_NODE_VERSION:-4.22.0}"
CACHE_ROOT="${TFJS_NODE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tfjs-normalization}"
DIR="$CACHE_ROOT/tfjs-node-$TFJS_NODE_VERSION-tf-$TF_VERSION"
PKG="$DIR/prefix/node_modules/@tensorflow/tfjs-node"
STAMP="$DIR/.built"

log() { echo "[tfjs-node-local] $*" >&2; }

if [ -f "$STAMP" ] && [ -f "$PKG/package.json" ] && ls "$PKG"/lib/napi-v*/tfjs_binding.node >/dev/null 2>&1; then
  log "cached build: $PKG"
  echo "$DIR/prefix/node_modules"
  exit 0
fi

start=$(date +%s)
rm -rf "$DIR"
mkdir -p "$DIR/wheel" "$DIR/tf" "$DIR/prefix"

PY="${PYTHON:-python3}"
log "pip download tensorflow-cpu==$TF_VERSION"
if ! "$PY" -m pip download --no-deps --retries 0 --timeout 10 --only-binary=:all: \
    -d "$DIR/wheel" "tensorflow-cpu==$TF_VERSION" >&2; then
  log "!!! cannot fetch the tensorflow-cpu==$TF_VERSION wheel with pip: tfjs-node NOT built !!!"
  rm -rf "$DIR"
  exit 3
fi
WHEEL=$(ls "$DIR"/wheel/tensorflow_cpu-*.whl | head -n1)

log "unzip the TensorFlow C library and headers from $(basename "$WHEEL")"
"$PY" - "$WHEEL" "$DIR/tf" <<'EOF'
import sys, zipfile
wheel, out = sys.argv[1], sys.argv[2]
want = ('tensorflow/libtensorflow_cc.so.2', 'tensorflow/libtensorflow_framework.so.2')
with zipfile.ZipFile(wheel) as z:
    names = [n for n in z.namelist() if n in want or n.startswith('tensorflow/include/')]
    missing = [w for w in want if w not in names]
    if missing:
        sys.exit(f'wheel lacks {missing}')
    for n in names:
        z.extract(n, out)
EOF
rm -f "$WHEEL"

log "npm install --ignore-scripts @tensorflow/tfjs-node@$TFJS_NODE_VERSION"
echo '{"private": true, "description": "tfjs-normalization test lane: tfjs-node built from source"}' > "$DIR/prefix/package.json"
if ! (cd "$DIR/prefix" && npm install --ignore-scripts --no-audit --no-fund --no-package-lock \
    "@tensorflow/tfjs-node@$TFJS_NODE_VERSION" >&2); then
  log "!!! npm cannot install @tensorflow/tfjs-node@$TFJS_NODE_VERSION: tfjs-node NOT built !!!"
  rm -rf "$DIR"
  exit 4
fi

log "deps/ from the wheel"
mkdir -p "$PKG/deps/lib"
cp "$DIR/tf/tensorflow/libtensorflow_cc.so.2" "$DIR/tf/tensorflow/libtensorflow_framework.so.2" "$PKG/deps/lib/"
ln -sf libtensorflow_cc.so.2 "$PKG/deps/lib/libtensorflow.so"
ln -sf libtensorflow_framework.so.2 "$PKG/deps/lib/libtensorflow_framework.so"
ln -sfn "$DIR/tf/tensorflow/include" "$PKG/deps/include"

NODE_PREFIX=$(dirname "$(dirname "$(readlink -f "$(command -v node)")")")
NPM_DIR=$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")
NODE_GYP="$NPM_DIR/node_modules/node-gyp/bin/node-gyp.js"
[ -f "$NODE_PREFIX/include/node/node_api.h" ] || { log "no Node headers in $NODE_PREFIX/include/node"; exit 1; }
[ -f "$NODE_GYP" ] || { log "no node-gyp bundled with npm at $NODE_GYP"; exit 1; }

log "node-pre-gyp rebuild --build-from-source (nodedir $NODE_PREFIX)"
(cd "$PKG" && npm_config_node_gyp="$NODE_GYP" JOBS="${JOBS:-2}" \
  node ../../@mapbox/node-pre-gyp/bin/node-pre-gyp rebuild --build-from-source \
  --nodedir="$NODE_PREFIX" >&2)

# One tfjs engine: the consumer's @tensorflow/tfjs, not a second copy.
for d in "$DIR"/prefix/node_modules/@tensorflow/*; do
  [ "$(basename "$d")" = tfjs-node ] || rm -rf "$d"
done

touch "$STAMP"
log "built in $(( $(date +%s) - start )) s: $PKG"
echo "$DIR/prefix/node_modules"
