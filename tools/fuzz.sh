#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (build-fuzz/) and runs each for SECONDS over a
# working copy of its seed corpus: tools/fuzz.sh [SECONDS] [TARGET...]
# TARGET is json, xml or cbor (default: all three). New inputs go to build-fuzz/corpus/<target>/,
# crashes to build-fuzz/crashes/<target>/ (the run then fails). See docs/fuzzing.md.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-30}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(json xml cbor)
dir=${FO_FUZZ_DIR:-build-fuzz}
CC=${CC:-clang} cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFO_FUZZ=ON >/dev/null
for t in "${targets[@]}"; do
  cmake --build "$dir" -j"$(nproc)" --target "fuzz_${t}_parse" >/dev/null
done
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
# The targets fuzz side by side (each for SECONDS of wall time), then each one's summary.
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
for t in "${targets[@]}"; do
  corpus="$dir/corpus/$t" crashes="$dir/crashes/$t"
  mkdir -p "$corpus" "$crashes"
  cp -n tests/fuzz/corpus/"$t"/* "$corpus"/
  "$dir/tests/fuzz/fuzz_${t}_parse" -max_total_time="$seconds" -max_len=65536 -timeout=10 \
    -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$crashes/" "$corpus" \
    >"$logs/$t" 2>&1 &
done
wait || true # (a crash is found below, by its artifact)
failed=0
for t in "${targets[@]}"; do
  corpus="$dir/corpus/$t" crashes="$dir/crashes/$t"
  echo "== fuzz_${t}_parse for ${seconds}s (corpus $corpus, crashes $crashes)"
  grep -E "^(#[0-9]+[[:space:]]+(INITED|DONE)|stat::|==|SUMMARY|.*ERROR|fuzz:|artifact)" "$logs/$t" || true
  if ! grep -q "DONE" "$logs/$t"; then
    echo "fuzz_${t}_parse did not run to its end:" >&2
    tail -20 "$logs/$t" >&2
    failed=1
  elif [ -n "$(ls -A "$crashes")" ]; then
    echo "fuzz_${t}_parse: crashing inputs in $crashes:" >&2
    ls -l "$crashes" >&2
    failed=1
  fi
done
exit $failed
