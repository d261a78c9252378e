#!/usr/bin/env bash
# Builds syncstorm (installing what is missing) and runs the quickstart scenario against the
# lab: PostgreSQL 15, syncd pods and HAProxy started for the run and removed after it. The
# last line printed is `report: <run dir>/report.html`. Extra arguments go to `syncstorm run`
# (e.g. --time-scale 0.5). Exit code: syncstorm's (0 pass, 1 a rule failed, ...).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" --target syncstorm syncd >/dev/null
exec build/harness/syncstorm run scenarios/quickstart.json --out runs "$@"
