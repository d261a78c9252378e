// `syncstorm run` as a library: the run of a scenario's plan as a pipeline of stages that own
// what they start (run directory and events, signal watch, target, loads, capture, faults and
// abort watch, audit), then the pure decisions (verdicts, outcome_of, build_report) and the
// report files. Runs on the calling thread; the worker pool owns the load threads. Nothing is
// global to a run: one process may run plans one after another.
#pragma once

#include "core/plan.hpp"
#include "core/scenario.hpp"
#include "injectors/allowlist.hpp"
#include "reports/baseline.hpp"

#include <nlohmann/json.hpp>

#include <cstddef>
#include <string>

namespace syncstorm::engine {

struct run_options {
  std::string out_dir = "runs";
  std::size_t threads = 1;
  bool dry_run = false;
  reports::baseline_options baseline;  // --baseline DIR, --baseline-keep N, --max-regression PCT
  // The allowlist in force (the operator's, narrowed by the scenario): what faults may touch
  // beyond the run's own parts; recorded in report.json's `safety`.
  injectors::safety_policy safety;
  // --metrics-listen ADDR (empty: no endpoint) and --metrics-linger: the live OpenMetrics
  // endpoint (engine/live_metrics.hpp) and how long its final values stay up after the run.
  std::string metrics_listen;
  std::int64_t metrics_linger_us = 0;
  std::string prometheus_remote_write;  // --prometheus-remote-write URL (empty: none)
};

struct run_result {
  int exit_code = 3;
  std::string run_dir;    // empty when none was made
  nlohmann::json report;  // report.json as written (null when no run directory was made)
};

// Runs the plan and writes the run directory. Prints progress and problems on stderr, the
// verdict table, the baseline comparison and `report: <run dir>/report.html` on stdout.
run_result run(const scenario& s, const plan& p, const run_options& o);

// run(...).exit_code: the exit code of DESIGN §9.
int run_scenario(const scenario& s, const plan& p, const run_options& o);

// What --dry-run prints after the timeline: resolved targets and what would be started.
std::string dry_run_details(const scenario& s, const run_options& o);

}  // namespace syncstorm::engine
