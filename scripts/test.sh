#!/usr/bin/env bash
# Builds syncstorm and runs the whole test suite (unit and integration, against the real lab
# parts). Installs the Debian packages it needs when they are missing. Run as root (the lab's
# namespaces, iptables rules and tmpfs volumes need it). First scripts/format.sh --check (every
# .cpp/.hpp as .clang-format says), then the suite, then scripts/sanitize.sh (the unit tests under
# ASan+UBSan and the fuzz targets, in build-san/). Exit code: ctest's, else sanitize.sh's, else
# the format check's (an unformatted file fails CI, after the suite has still run).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
fmt=0
bash scripts/format.sh --check || fmt=$?
jobs=$(nproc)
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$jobs"
cd build
# Two at a time: every integration test and shipped-scenario run starts a lab of its own; the
# few that must have the machine to themselves are RUN_SERIAL (tests/CMakeLists.txt).
# `scripts/test.sh -LE scenarios` leaves the shipped scenarios out.
rc=0
ctest --output-on-failure -j2 --timeout 900 "$@" || rc=$?
cd ..
# The sanitizer and fuzzing job (build-san/: unit tests under ASan+UBSan, each fuzz target 15 s),
# run whatever ctest said; the exit code is ctest's when it failed, else the job's.
# SYNCSTORM_NO_SANITIZE=1 leaves it out (a quick rerun of some tests by hand; CI never sets it).
san=0
if [[ ${SYNCSTORM_NO_SANITIZE:-} != 1 ]]; then
  SYNCSTORM_SAN_TEST_BIN=$PWD/build/cli/syncstorm bash scripts/sanitize.sh || san=$?
fi
if [[ $rc -ne 0 ]]; then exit "$rc"; fi
if [[ $san -ne 0 ]]; then exit "$san"; fi
exit "$fmt"
