#!/usr/bin/env bash
# Runs one syncstorm scenario as a CI gate: the run (with --baseline), its files copied to one
# place for the CI's artifacts (junit.xml, summary.md, report.json, report.html, compare.json),
# summary.md appended to $GITHUB_STEP_SUMMARY when GitHub Actions gives one, and syncstorm's exit
# code (DESIGN §9) mapped to the job's result with a one-line reason. Used by
# deploy/ci/github-actions.yml and deploy/ci/gitlab-ci.yml; see deploy/ci/README.md.
#
# Environment:
#   SYNCSTORM_SCENARIO      the scenario file (required)
#   SYNCSTORM               the syncstorm binary (default: syncstorm on PATH)
#   SYNCSTORM_ARGS          extra `run` arguments, split on spaces (e.g. "--time-scale 0.1")
#   SYNCSTORM_OUT           where the run and the files for artifacts go (default: syncstorm-out)
#   SYNCSTORM_BASELINE      the baselines folder kept between pipelines (default: syncstorm-baseline)
#   SYNCSTORM_INCONCLUSIVE  "warn" (default: exit 5 passes the job with a warning) or "fail"
# Exit: 0 the gate passed (or an inconclusive run under "warn"); otherwise syncstorm's code:
# 1 a rule failed or the run regressed against the baseline, 2 invalid scenario, 3 runtime
# error, 4 interrupted, 5 inconclusive under "fail".
set -uo pipefail

: "${SYNCSTORM_SCENARIO:?set SYNCSTORM_SCENARIO to the scenario file}"
bin=${SYNCSTORM:-syncstorm}
out=${SYNCSTORM_OUT:-syncstorm-out}
baseline=${SYNCSTORM_BASELINE:-syncstorm-baseline}
mkdir -p "$out" "$baseline"
rm -f "$out"/{junit.xml,summary.md,report.json,report.html,compare.json,exit_code}

# Annotations where the CI shows them (GitHub: ::error::; GitLab: the log line itself).
note() {  # level message
  if [[ "${GITHUB_ACTIONS:-}" == "true" ]]; then echo "::$1::syncstorm: $2"; else echo "syncstorm $1: $2"; fi
}

read -r -a extra <<<"${SYNCSTORM_ARGS:-}"
"$bin" run "$SYNCSTORM_SCENARIO" --out "$out/runs" --baseline "$baseline" "${extra[@]}" 2>&1 | tee "$out/run.log"
rc=${PIPESTATUS[0]}
echo "$rc" >"$out/exit_code"

# The run directory from the last line (`report: <run dir>/report.html`).
run_dir=$(sed -n 's/^report: \(.*\)\/report\.html$/\1/p' "$out/run.log" | tail -1)
if [[ -n "$run_dir" && -d "$run_dir" ]]; then
  for f in junit.xml summary.md report.json report.html compare.json; do
    [[ -f "$run_dir/$f" ]] && cp "$run_dir/$f" "$out/$f"
  done
fi
if [[ -n "${GITHUB_STEP_SUMMARY:-}" && -f "$out/summary.md" ]]; then
  cat "$out/summary.md" >>"$GITHUB_STEP_SUMMARY"
fi

case $rc in
  0) echo "syncstorm: gate passed (every rule held)"; exit 0 ;;
  1) note error "a rule failed or the run regressed against the baseline (exit 1; see summary.md)" ;;
  2) note error "invalid scenario or arguments, nothing ran (exit 2)" ;;
  3) note error "runtime error: target unreachable, lab not up, or a fault not applied/reverted (exit 3)" ;;
  4) note error "interrupted by a signal (exit 4)" ;;
  5)
    if [[ "${SYNCSTORM_INCONCLUSIVE:-warn}" == "fail" ]]; then
      note error "inconclusive: something could not be judged (exit 5)"
    else
      note warning "inconclusive: nothing failed, something could not be judged (exit 5; see summary.md)"
      exit 0
    fi
    ;;
  *) note error "syncstorm exited $rc" ;;
esac
exit "$rc"
