#!/usr/bin/env bash
# Fault proxy (lab relay) overhead vs the direct path: bench/proxy_bench_driver.cpp.
# Usage: SYNCSTORM_BUILD_DIR=build bench/proxy_bench.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${SYNCSTORM_BUILD_DIR:-$root/build}
if [[ ! -f $build/build.ninja && ! -f $build/Makefile ]]; then
  cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSYNCSTORM_TESTS=OFF >/dev/null
fi
cmake --build "$build" --target proxy_bench_driver -j2 >/dev/null
"$build/bench/proxy_bench_driver"
