#!/usr/bin/env bash
# The sanitizer and fuzzing job: configures build-san/ with clang-14 (ASan + UBSan on every
# library, libFuzzer coverage; -O0, see below), builds the unit tests (and, unless
# SYNCSTORM_SAN_TEST_BIN names one, the sanitized syncstorm three of them run) and the fuzz targets only, runs `ctest -L unit` there, then every fuzz target for
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
# Optimization: -O0 by default, for CI's time budget. Measured from scratch without ccache on
# 2 cores: with the libraries at -O1 the build took 1195 s and the whole job 1382 s (ASan+UBSan
# double the -O1 compile of the Asio coroutine files: terminal_model.cpp 145 s); at -O0 the build
# took 808 s and the job 1016 s, but each fuzz target runs 5-20 times fewer inputs in its 15 s.
# With line tables instead of -g, build/'s syncstorm for the CLI tests and two fuzz targets at a
# time, the job as scripts/test.sh runs it takes 775 s (build 639 s; docs/architecture.md,
# "Fuzzing and sanitizers").
# SYNCSTORM_SAN_OPT=-O1 builds as the CMake cache default (RelWithDebInfo: the libraries at -O1,
# test code at -O0); -O0 is a Debug build, where nothing adds -O1 back to the cold sources.
opt=${SYNCSTORM_SAN_OPT:--O0}
type=RelWithDebInfo
[[ $opt == -O0 ]] && type=Debug
t0=$(date +%s)
# SYNCSTORM_SAN_TEST_BIN: a syncstorm for the three unit tests that run one (scripts/test.sh
# passes build/'s, saving the CLI's compile here); unset, build-san/ builds a sanitized one.
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=$type -DSYNCSTORM_SANITIZE=address,undefined \
  -DSYNCSTORM_SANITIZE_OPT="$opt" -DSYNCSTORM_FUZZ=ON -DCMAKE_CXX_COMPILER_LAUNCHER="$launcher" \
  -DSYNCSTORM_TEST_BIN="${SYNCSTORM_SAN_TEST_BIN:-}" >/dev/null
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
