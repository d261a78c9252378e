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
# Unit tests in parallel; integration tests are RUN_SERIAL (they share ports and the lab).
ctest --output-on-failure -j"$jobs" --timeout 900 -LE scenarios "$@"
