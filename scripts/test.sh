#!/usr/bin/env bash
# Runs the whole test suite: installs what is missing, builds, runs every test through ctest.
#   scripts/test.sh           release build in build/
#   scripts/test.sh --asan    ASan+UBSan build in build-asan/
# Extra arguments after the mode go to ctest (e.g. -R unit/ or -L integration).
#
# What may run in parallel is declared in CMakeLists.txt (RUN_SERIAL), so this is plain
# `ctest -jN`, as a user would type it. Skips are reported as skips, with their reasons.
# A failed test is run once more, alone: it counts as passed only if that rerun passes, and
# it is named FLAKY in the summary. Under CI (CI=true) the flaky tests are recorded in
# $CTXLAB_FLAKY_DIR (default /var/tmp/ctxlab-tests); a test flaky in two consecutive CI runs
# of the same build fails the suite, so flakiness gets fixed instead of carried.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=--release
case "${1:-}" in --asan|--release) mode=$1; shift ;; esac
if [ "$mode" = --asan ]; then dir=build-asan; else dir=build; fi
bash scripts/setup.sh "$mode"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:strict_string_checks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
summary=$PWD/scripts/test-summary.py
cd "$dir"
rc=0 flaky=""
console=$(mktemp)
trap 'rm -f "$console"' EXIT
if ! ctest --output-on-failure -j"$(nproc)" "$@" 2>&1 | tee "$console"; then
  failed=$(sed 's/^[0-9]*://' Testing/Temporary/LastTestsFailed.log 2>/dev/null | tr '\n' ' ')
  echo; echo "ctxlab tests: rerunning what failed, alone: $failed"
  if ctest --output-on-failure --rerun-failed 2>&1 | tee -a "$console"; then
    flaky=$failed
  else
    rc=1
  fi
fi
# pipefail makes the `if` above see ctest's status through tee
echo
python3 "$summary" "$console" Testing/Temporary/LastTest.log || true
if [ -n "$flaky" ]; then
  echo "ctxlab tests: FLAKY (failed once, passed when rerun alone): $flaky"
fi
if [ "${CI:-}" = true ]; then
  state=${CTXLAB_FLAKY_DIR:-/var/tmp/ctxlab-tests}
  mkdir -p "$state"
  rec="$state/flaky-$dir.txt"
  again=""
  if [ -f "$rec" ]; then
    for t in $flaky; do grep -qxF "$t" "$rec" && again="$again $t"; done
  fi
  printf '%s\n' $flaky > "$rec"
  if [ -n "$again" ]; then
    echo "ctxlab tests: FAILED: flaky in two consecutive CI runs ($rec):$again — fix the test or the code, do not carry it"
    rc=1
  fi
fi
if [ $rc -eq 0 ]; then echo "ctxlab tests: all passed ($dir)"; else echo "ctxlab tests: FAILED ($dir)"; fi
exit $rc
