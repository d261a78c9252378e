#!/usr/bin/env bash
# Builds syncstorm (installing what is missing) and runs the quickstart: the shipped
# pos-pod-failover scenario at --time-scale 0.5 (five POS lanes at 50 transactions/s, a sync pod
# killed at T+15 s; recovery under 5 s and nothing lost) against the lab: PostgreSQL 15, syncd
# pods and HAProxy started for the run and removed after it. It ends with the verdict table and
# `report: <run dir>/report.html`. Extra arguments go to `syncstorm run`; one of them may be
# --time-scale (e.g. --time-scale 1 for the full minute), replacing the 0.5. Exit code:
# syncstorm's (0 pass, 1 a rule failed, ...).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" --target syncstorm syncd >/dev/null
scale=(--time-scale 0.5)
for a in "$@"; do [[ "$a" == --time-scale* ]] && scale=(); done
exec build/cli/syncstorm run scenarios/pos-pod-failover.json "${scale[@]}" --out runs "$@"
