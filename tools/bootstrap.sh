#!/usr/bin/env bash
# Installs the Debian 12 packages fo needs to build and test, if any is missing.
# Safe to rerun: it does nothing when everything is present. Needs root (or sudo).
set -euo pipefail

packages=(
  build-essential cmake pkg-config ca-certificates git
  liblua5.4-dev lua-cjson lua-unit
  libcurl4-openssl-dev libssl-dev libexpat1-dev libmicrohttpd-dev libedit-dev
  clang-format openssl
  python3-botocore  # test-only: the oracle of tests/conformance (fo never runs Python)
  awscli  # test-only: the AWS CLI against the served simulator (tests/lua/sim/test_awscli.lua)
  clang libclang-rt-14-dev  # test-only: the libFuzzer targets (tests/fuzz, tools/fuzz.sh)
  graphviz  # test-only: fo-run --graph FILE.svg draws with dot (tests/lua/engine/test_dot.lua)
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "bootstrap: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
