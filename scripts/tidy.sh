#!/usr/bin/env bash
# Runs clang-tidy-14 with the root .clang-tidy over the product sources (every .cpp under core,
# process, loadgen, proxy, labstack, syncd, reports, injectors, capture, engine and cli), or over the
# files named. By hand, not in CI (a full run takes ~20-30 min on 2 cores). Uses the
# compile_commands.json of build-tidy/, which it configures (file by file, no unity batches) and
# never builds. Exit 0
# when clang-tidy reported nothing, 1 otherwise; the findings are printed.
#   scripts/tidy.sh                      every product source
#   scripts/tidy.sh proxy/fault_proxy.cpp core/histogram.cpp
#   TIDY_JOBS=1 scripts/tidy.sh          one file at a time (default: one per core)
set -uo pipefail
cd "$(dirname "$0")/.."
if ! command -v clang-tidy-14 >/dev/null || ! command -v run-clang-tidy-14 >/dev/null; then
  echo "tidy: clang-tidy-14 is missing: apt-get install clang-tidy-14" >&2
  exit 2
fi
# Its own build-tidy/, configured only (nothing is compiled there): file by file (no unity
# batches, whose compile commands name the batch instead of the files in it).
cmake -S . -B build-tidy -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_EXPORT_COMPILE_COMMANDS=ON \
  -DSYNCSTORM_UNITY=OFF >/dev/null || exit 2
if [[ $# -gt 0 ]]; then
  files=("$@")
else
  mapfile -t files < <(git ls-files 'core/*.cpp' 'process/*.cpp' 'loadgen/*.cpp' 'proxy/*.cpp' 'labstack/*.cpp' 'syncd/*.cpp' \
    'reports/*.cpp' 'injectors/*.cpp' 'capture/*.cpp' 'engine/*.cpp' 'cli/*.cpp')
fi
# The build's GCC-only warning flags mean nothing to clang: not a finding.
out=$(run-clang-tidy-14 -quiet -p build-tidy -j "${TIDY_JOBS:-$(nproc)}" -extra-arg=-Wno-unknown-warning-option \
  "${files[@]/#/$PWD/}" 2>&1 | sed 's/\x1b\[[0-9;]*m//g'; exit "${PIPESTATUS[0]}")
rc=$?
findings=$(grep -cE '^/.*: (warning|error): ' <<<"$out")
grep -vE '^(clang-tidy-14 |[0-9]+ warnings? (and [0-9]+ errors? )?generated|Suppressed [0-9]+ warnings|Use -header-filter|Running clang-tidy|Enabled checks)' <<<"$out"
echo "tidy: ${#files[@]} files, $findings findings"
[[ $rc -eq 0 && $findings -eq 0 ]]
