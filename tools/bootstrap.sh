#!/usr/bin/env bash
# Installs the Debian 12 packages fo needs, if any is missing: tools/bootstrap.sh [--test]
#   (no option)  what building and running fo needs (tools/run.sh)
#   --test       that plus what the tests run (tools/test.sh)
# Safe to rerun: it does nothing when everything is present. Needs root (or sudo).
set -euo pipefail
. "$(dirname "$0")/current-cli.sh"

# Building fo-run and running it: the compiler and build tools, the C libraries it links,
# lua-cjson (fo's Lua modules require "cjson"), and the CA certificates real AWS endpoints
# are verified with.
run_packages=(
  build-essential cmake pkg-config ca-certificates
  liblua5.4-dev lua-cjson
  libcurl4-openssl-dev libssl-dev libexpat1-dev libmicrohttpd-dev libedit-dev
)

# Only the tests use these (fo itself never runs them).
test_packages=(
  lua-unit  # the suites are LuaUnit (tests/lua, tests/recipes)
  git  # tools/test.sh: the first run in a fresh clone, the style check's file list
  clang-format  # tools/test.sh: the style check (.clang-format)
  openssl  # the openssl CLI makes a self-signed certificate (tests/lua/runtime/test_http.lua)
  python3  # its pty module drives the REPL on a terminal (tests/lua/repl/test_repl.lua)
  python3-botocore  # the oracle of tests/conformance, Debian's /usr/bin/python3 with botocore
  python3-jsonschema  # checks --json events against their schema (tests/lua/engine/test_json_events.lua)
  awscli  # the AWS CLI against the served simulator (tests/lua/sim/test_awscli.lua)
  clang libclang-rt-14-dev  # the libFuzzer targets (tests/fuzz, tools/fuzz.sh)
  graphviz  # fo-run --graph FILE.svg draws with dot (tests/lua/engine/test_dot.lua)
  man-db  # man -l renders the generated fo-run.1 (tests/lua/install/test_install.lua)
  zsh  # the zsh completion is run in zsh (tests/lua/install/test_install.lua)
)

packages=("${run_packages[@]}")
case "${1:-}" in
  "") ;;
  --test) packages+=("${test_packages[@]}") ;;
  *)
    echo "usage: tools/bootstrap.sh [--test]" >&2
    exit 2
    ;;
esac

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "bootstrap: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The tests' second oracle, the current AWS CLI (pip's awscli with the newest botocore), when
# the machine has none first on PATH: into a virtual environment that sees Debian's Python
# packages (jsonschema), so that only botocore and the CLI are pip's.
if [ "${1:-}" = "--test" ] && ! current_cli_on_path && [ ! -x "$FO_CURRENT_CLI_VENV/bin/aws" ]; then
  echo "bootstrap: installing the current AWS CLI (pip awscli) into $FO_CURRENT_CLI_VENV"
  $SUDO apt-get install -y -qq --no-install-recommends python3-venv python3-pip >/dev/null
  $SUDO python3 -m venv --system-site-packages "$FO_CURRENT_CLI_VENV"
  $SUDO "$FO_CURRENT_CLI_VENV/bin/pip" install -q awscli
fi
