#!/usr/bin/env bash
# Sets up a fresh Debian 12 machine and runs every test: the warnings-as-errors build,
# the style check, the whole suite, a bounded fuzzing run of the response parsers, then the
# whole suite again under ASan + UBSan.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/bootstrap.sh

echo "== build (warnings are errors)"
bash tools/build.sh build

echo "== style (.clang-format)"
git ls-files '*.c' '*.h' | xargs clang-format --dry-run -Werror

echo "== tests"
(cd build && ctest -j2 --output-on-failure --timeout 300)

echo "== fuzzing the response parsers (libFuzzer + ASan + UBSan, 30 s each; a crash fails)"
bash tools/fuzz.sh 30

echo "== tests under AddressSanitizer + UndefinedBehaviorSanitizer"
bash tools/build.sh build-asan -DCMAKE_BUILD_TYPE=Debug -DFO_SANITIZE=ON
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
(cd build-asan && ctest -j2 --output-on-failure --timeout 600)
