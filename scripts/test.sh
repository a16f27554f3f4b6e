#!/usr/bin/env bash
# Runs the whole test suite: installs what is missing, builds, runs every test through ctest.
#   scripts/test.sh           release build in build/
#   scripts/test.sh --asan    ASan+UBSan build in build-asan/
# Extra arguments after the mode go to ctest (e.g. -R unit/ or -L integration).
set -euo pipefail
cd "$(dirname "$0")/.."
mode=--release
case "${1:-}" in --asan|--release) mode=$1; shift ;; esac
if [ "$mode" = --asan ]; then dir=build-asan; else dir=build; fi
bash scripts/setup.sh "$mode"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:strict_string_checks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
cd "$dir"
# Unit tests in parallel, integration tests (real servers, timing) one at a time.
# Many tests compare timings and CPU figures against ground truth with tolerances for a loaded
# 2-core machine; a noisy neighbour (steal) can still push one over. A test that fails is run
# once more, alone: it counts as passed only if the rerun passes, and it is named as flaky
# in the summary so that it is looked at, never hidden.
rc=0 flaky=""
run_label() { # label, ctest args...
  local label=$1; shift
  if ctest --output-on-failure -L "$label" "$@"; then return 0; fi
  local failed
  failed=$(sed 's/^[0-9]*://' Testing/Temporary/LastTestsFailed.log 2>/dev/null | tr '\n' ' ')
  echo; echo "ctxlab tests: rerunning what failed, alone: $failed"
  if ctest --output-on-failure --rerun-failed; then
    flaky="$flaky $failed"
    return 0
  fi
  return 1
}
run_label unit -j"$(nproc)" "$@" || rc=1
run_label integration "$@" || rc=1
echo
if [ -n "$flaky" ]; then
  echo "ctxlab tests: FLAKY (failed once, passed when rerun alone):$flaky"
fi
if [ $rc -eq 0 ]; then echo "ctxlab tests: all passed ($dir)"; else echo "ctxlab tests: FAILED ($dir)"; fi
exit $rc
