#!/usr/bin/env bash
# The tensorflow (tfjs-node) test lane: builds tfjs-node from source with
# scripts/tfjs-node-local.sh (cached between runs), then runs the
# backend-independent Node suites on the 'tensorflow' backend with
# REQUIRE_TFJS_NODE=1 (a tfjs-node that does not load is a failure).
#
# Where the tensorflow-cpu wheel (or tfjs-node itself) cannot be fetched,
# it prints loudly that the backend is NOT tested and exits 0, or the build
# script's exit code (3 or 4) with REQUIRE_TFJS_NODE_BUILD=1.
# Extra arguments go to jest.
set -uo pipefail
cd "$(dirname "$0")/.."

start=$(date +%s)
modules=$(bash scripts/tfjs-node-local.sh)
rc=$?
if [ "$rc" = 3 ] || [ "$rc" = 4 ]; then
  echo "" >&2
  echo "!!! tensorflow (tfjs-node) backend NOT tested: scripts/tfjs-node-local.sh could not fetch what it builds from (exit $rc) !!!" >&2
  echo "" >&2
  if [ "${REQUIRE_TFJS_NODE_BUILD:-0}" = 1 ]; then exit "$rc"; fi
  exit 0
elif [ "$rc" != 0 ]; then
  echo "!!! tfjs-node-test: building tfjs-node failed (exit $rc) !!!" >&2
  exit "$rc"
fi
built=$(date +%s)
echo "[tfjs-node-test] tfjs-node ready in $((built - start)) s: $(echo "$modules" | tail -n1)" >&2

export TFJS_NODE_MODULES
TFJS_NODE_MODULES=$(echo "$modules" | tail -n1)
export REQUIRE_TFJS_NODE=1 TFJS_TEST_BACKEND=tensorflow PROPERTY_RUN_SCALE="${PROPERTY_RUN_SCALE:-0.25}"
npx jest -w 1 \
  test/parity/node.test.ts test/tfjs-node.test.ts test/running_stats.test.ts test/mask.test.ts \
  test/properties.test.ts test/model.test.ts test/tfjs-node-kernel.test.ts \
  test/batch_normalization.test.ts "$@"
rc=$?
echo "[tfjs-node-test] tensorflow lane: jest exit $rc, $(( $(date +%s) - built )) s of tests" >&2
exit "$rc"
