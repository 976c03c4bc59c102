#!/usr/bin/env bash
# Sets up a fresh Debian 12 machine, builds fo and runs the main job (or the given file)
# on the embedded default target: tools/run.sh [FILE [args...]]
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/bootstrap.sh
bash tools/build.sh build >/dev/null
if [ $# -eq 0 ]; then
  # recipes/trading.lua once the simulator and the recipe exist (see README)
  set -- recipes/smoke.lua
fi
exec ./build/fo-run "$@"
