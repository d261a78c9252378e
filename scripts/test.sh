#!/usr/bin/env bash
# Builds syncstorm and runs the whole test suite (unit and integration, against the real lab
# parts). Installs the Debian packages it needs when they are missing. Run as root (the lab's
# namespaces, iptables rules and tmpfs volumes need it). Exit code: ctest's.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
jobs=$(nproc)
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$jobs"
cd build
# Two at a time: every integration test and shipped-scenario run starts a lab of its own; the
# few that must have the machine to themselves are RUN_SERIAL (tests/CMakeLists.txt).
# `scripts/test.sh -LE scenarios` leaves the shipped scenarios out.
ctest --output-on-failure -j2 --timeout 900 "$@"
