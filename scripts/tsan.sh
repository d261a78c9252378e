#!/usr/bin/env bash
# The ThreadSanitizer job (label `long`, not in CI: configure with -DSYNCSTORM_LONG_TESTS=ON and run
# `ctest -L long`, or run this directly). Configures build-tsan/ with clang-14 and
# -fsanitize=thread on every library (-O1, line tables), builds the tests of the threaded parts and the
# syncstorm they run, and runs them:
#   unit_loadgen_workers_test   the worker pool (one io_context per thread, merges, stop)
#   unit_capture_test           the capture's ring reader and series
#   unit_injectors_test         the fault runner's scheduler and occurrence threads, the ledger
#   integration_faults_cli_test the fault runner and the reaper through `syncstorm run`, revert,
#                               a killed reaper started again (root; no lab)
# Zero reports: TSAN_OPTIONS halts on the first. Uses ccache when present. Exit code: non-zero when
# the build or a test failed. Needs clang-14 and libclang-rt-14-dev (scripts/setup.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${SYNCSTORM_TSAN_BUILD:-build-tsan}
jobs=$(nproc)
export CC=clang-14 CXX=clang++-14
export TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1:history_size=4}
launcher=
command -v ccache >/dev/null && launcher=ccache
tests=(unit_loadgen_workers_test unit_capture_test unit_injectors_test integration_faults_cli_test)
t0=$(date +%s)
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Debug -DSYNCSTORM_SANITIZE=thread -DSYNCSTORM_SANITIZE_OPT=-O1 -DSYNCSTORM_FUZZ=OFF \
  -DSYNCSTORM_SANITIZE_INTEGRATION=faults_cli_test -DCMAKE_CXX_COMPILER_LAUNCHER="$launcher" >/dev/null
cmake --build "$build" -j"$jobs" --target syncstorm "${tests[@]}"
t1=$(date +%s)
echo "tsan: $build built in $((t1 - t0)) s"
regex="^($(IFS='|'; echo "${tests[*]}"))\$"
rc=0
(cd "$build" && ctest -R "$regex" --output-on-failure --timeout 1800) || rc=1
t2=$(date +%s)
echo "tsan: ${#tests[@]} test programs under ThreadSanitizer in $((t2 - t1)) s (exit $rc)"
exit $rc
