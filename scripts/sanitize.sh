#!/usr/bin/env bash
# The sanitizer and fuzzing job: configures build-san/ with clang-14 (ASan + UBSan on every
# library, libFuzzer coverage, -O1), builds the unit tests (with the sanitized syncstorm some of
# them run) and the fuzz targets only, runs `ctest -L unit` there, then every fuzz target for
# FUZZ_SECONDS (default 15) from its seed corpus (scripts/fuzz.sh). Integration tests are not
# built here: they run in build/ (scripts/test.sh). Uses ccache when present
# (CCACHE_DISABLE=1 turns it off). Exit code: non-zero when the build, a unit test or a fuzz
# target failed. docs/architecture.md, "Fuzzing and sanitizers".
set -euo pipefail
cd "$(dirname "$0")/.."
build=${SYNCSTORM_SAN_BUILD:-build-san}
jobs=$(nproc)
export CC=clang-14 CXX=clang++-14
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
# Leaks that are not leaks, each with its reason: fuzz/lsan.supp.
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$PWD/fuzz/lsan.supp}
launcher=
command -v ccache >/dev/null && launcher=ccache
t0=$(date +%s)
# RelWithDebInfo: the libraries' -O2 becomes -O1 (SYNCSTORM_SANITIZE), test code stays at -O0.
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSYNCSTORM_SANITIZE=address,undefined \
  -DSYNCSTORM_FUZZ=ON -DCMAKE_CXX_COMPILER_LAUNCHER="$launcher" >/dev/null
cmake --build "$build" -j"$jobs" --target unit_tests fuzz_targets
t1=$(date +%s)
echo "sanitize: build-san built in $((t1 - t0)) s"

rc=0
(cd "$build" && ctest -L unit --output-on-failure -j"$jobs" --timeout 600) || rc=1
t2=$(date +%s)
echo "sanitize: unit tests under ASan+UBSan took $((t2 - t1)) s"
SYNCSTORM_SAN_BUILD=$build bash scripts/fuzz.sh "${FUZZ_SECONDS:-15}" || rc=1
t3=$(date +%s)
echo "sanitize: fuzzing took $((t3 - t2)) s; total $((t3 - t0)) s"
exit $rc
