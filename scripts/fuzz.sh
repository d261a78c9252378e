#!/usr/bin/env bash
# Runs every libFuzzer target (fuzz/*.cpp, built in build-san/ by scripts/sanitize.sh) for
# SECONDS each (default 15), starting from a copy of its seed corpus (fuzz/corpus/<name>/) in a
# temporary directory, so the repository's corpus is never modified. Fails when any target
# crashes, leaks, times out on an input or violates a property; the input that did it is kept in
# $SYNCSTORM_SAN_BUILD/fuzz-artifacts/ and named in the output. Prints each target's executions
# (libFuzzer's final stat::number_of_executed_units).
#   scripts/fuzz.sh [SECONDS] [TARGET...]     e.g. scripts/fuzz.sh 60 fuzz_ledger
#   FUZZ_ARGS="-runs=1000000" scripts/fuzz.sh 180    extra libFuzzer flags for every target
#   FUZZ_JOBS=1 scripts/fuzz.sh                      one target at a time (default: one per core)
# Environment: SYNCSTORM_SAN_BUILD (default build-san). ASAN_OPTIONS, UBSAN_OPTIONS and
# LSAN_OPTIONS default to detect_leaks=1:abort_on_error=1, print_stacktrace=1:halt_on_error=1 and
# the suppressions in fuzz/lsan.supp. Reproduce a finding with `build-san/fuzz/<target> FILE`.
set -uo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-15}
shift $(( $# > 0 ? 1 : 0 ))
build=${SYNCSTORM_SAN_BUILD:-build-san}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
# Leaks that are not leaks, each with its reason: fuzz/lsan.supp.
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$PWD/fuzz/lsan.supp}
if [[ $# -gt 0 ]]; then
  targets=("$@")
else
  targets=()
  for f in fuzz/fuzz_*.cpp; do targets+=("$(basename "$f" .cpp)"); done
fi
artifacts=$build/fuzz-artifacts
mkdir -p "$artifacts"
work=$(mktemp -d "${TMPDIR:-/tmp}/syncstorm-fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT

# One target: its result line goes to $work/<target>.result, its details to .detail.
run_one() {
  local t=$1 bin=$build/fuzz/$1 corpus=$work/$1 log=$work/$1.log start took execs rc
  local out=$work/$t.result detail=$work/$t.detail
  : >"$detail"
  if [[ ! -x $bin ]]; then
    printf '%-22s %12s %8s  %s\n' "$t" - - "MISSING: $bin (run scripts/sanitize.sh)" >"$out"
    return
  fi
  mkdir -p "$corpus"
  cp fuzz/corpus/"$t"/* "$corpus"/ 2>/dev/null
  local dict=()
  [[ -f fuzz/$t.dict ]] && dict=(-dict="fuzz/$t.dict")
  start=$(date +%s.%N)
  # -timeout: one input taking 10 s is a finding (a hang), as is a crash, a leak or an abort.
  # shellcheck disable=SC2086
  "$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$artifacts/$t-" "${dict[@]}" ${FUZZ_ARGS:-} "$corpus" >"$log" 2>&1
  rc=$?
  took=$(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }')
  execs=$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\).*/\1/p' "$log" | tail -1)
  [[ -n $execs ]] || execs=$(sed -n 's/^Done \([0-9]*\) runs.*/\1/p' "$log" | tail -1)
  if [[ $rc -eq 0 ]]; then
    printf '%-22s %12s %8s  %s\n' "$t" "${execs:-?}" "$took" ok >"$out"
  else
    printf '%-22s %12s %8s  %s\n' "$t" "${execs:-?}" "$took" "FAILED (exit $rc)" >"$out"
    cp "$log" "$artifacts/$t.log"
    {
      grep -E 'ERROR: |SUMMARY: |runtime error|fuzz: property|Test unit written to|deadly signal|Timeout|out-of-memory' "$log" | head -20 | sed 's/^/    /'
      echo "    full log: $artifacts/$t.log"
    } >"$detail"
  fi
}

# FUZZ_JOBS targets at a time (default: one per core); each runs on one core for SECONDS, so
# the executions per target are those of a sequential run.
parallel=${FUZZ_JOBS:-$(nproc)}
for t in "${targets[@]}"; do
  while [[ $(jobs -rp | wc -l) -ge $parallel ]]; do wait -n || true; done
  run_one "$t" &
done
wait
failed=()
printf '%-22s %12s %8s  %s\n' target executions seconds result
for t in "${targets[@]}"; do
  cat "$work/$t.result" "$work/$t.detail" 2>/dev/null
  grep -q ' ok$' "$work/$t.result" 2>/dev/null || failed+=("$t")
done
if [[ ${#failed[@]} -gt 0 ]]; then
  echo "fuzz: FAILED: ${failed[*]}" >&2
  exit 1
fi
echo "fuzz: all ${#targets[@]} targets ran ${seconds}s without a finding"
