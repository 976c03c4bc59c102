#!/usr/bin/env bash
# Sets up a fresh Debian 12 machine, builds fo and runs the main job (or the given file)
# on the embedded default target: tools/run.sh [fo-run arguments, e.g. --drill recipes/trading.lua]
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/bootstrap.sh
bash tools/build.sh build >/dev/null
if [ $# -eq 0 ]; then
  # The main job: the trading failover topology on the embedded simulator (stack "dev",
  # state in .fo/). A rerun finds it applied and changes nothing.
  set -- recipes/trading.lua
fi
exec ./build/fo-run "$@"
