#!/usr/bin/env bash
# Fault proxy (lab relay) overhead vs the direct path: bench/proxy_bench_driver.cpp.
# Usage: SYNCSTORM_BUILD_DIR=build bench/proxy_bench.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${SYNCSTORM_BUILD_DIR:-$root/build}
if [[ ! -f $build/build.ninja && ! -f $build/Makefile ]]; then
  cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSYNCSTORM_TESTS=OFF >/dev/null
fi
cmake --build "$build" --target syncstorm_labstack syncstorm_core syncstorm_asio -j2 >/dev/null
tmp=$(mktemp -d /tmp/syncstorm-bench.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
c++ -std=c++20 -O2 -DNDEBUG -DBOOST_ASIO_SEPARATE_COMPILATION -DBOOST_BEAST_SEPARATE_COMPILATION \
  -DBOOST_ASIO_NO_DEPRECATED -DBOOST_BEAST_USE_STD_STRING_VIEW -I"$root" \
  "$root/bench/proxy_bench_driver.cpp" -o "$tmp/proxy_bench_driver" \
  "$build/labstack/libsyncstorm_labstack.a" "$build/core/libsyncstorm_core.a" \
  "$build/libsyncstorm_asio.a" -lssl -lcrypto -pthread
"$tmp/proxy_bench_driver"
