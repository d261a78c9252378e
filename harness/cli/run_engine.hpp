// The engine behind `syncstorm run`: creates the run directory, brings up the target, starts the
// load models on the worker pool, walks the plan on the engine clock, stops on the deadline or a
// signal, judges the rules and writes the reports. Runs on the main thread; the worker pool owns
// the load threads; a signal thread turns SIGINT/SIGTERM into an orderly stop (exit 4).
#pragma once

#include "harness/plan.hpp"
#include "harness/scenario.hpp"
#include "reports/baseline.hpp"

#include <cstddef>
#include <string>

namespace syncstorm::cli {

struct run_options {
  std::string out_dir = "runs";
  std::size_t threads = 1;
  bool dry_run = false;
  reports::baseline_options baseline;  // --baseline DIR, --baseline-keep N, --max-regression PCT
};

// What --dry-run prints after the timeline: resolved targets and what would be started.
std::string dry_run_details(const scenario& s, const run_options& o);

// Runs the scenario; returns the exit code of DESIGN §9. The last line on stdout is
// `report: <run dir>/report.html` whenever a run directory was made.
int run_scenario(const scenario& s, const plan& p, const run_options& o);

}  // namespace syncstorm::cli
