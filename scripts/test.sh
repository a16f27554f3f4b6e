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
rc=0
ctest --output-on-failure -j"$(nproc)" -L unit "$@" || rc=1
ctest --output-on-failure -L integration "$@" || rc=1
echo
if [ $rc -eq 0 ]; then echo "ctxlab tests: all passed ($dir)"; else echo "ctxlab tests: FAILED ($dir)"; fi
exit $rc
