// Baselines for `syncstorm run --baseline DIR`: DIR/<scenario>/ keeps the report.json of the
// last N passing runs of each scenario; a new run is compared with the newest of them, and if it
// passed (and did not regress) it is added and the oldest beyond N removed. Single-threaded use
// per DIR: two runs storing into the same DIR at once may each prune the other's file.
#pragma once

#include "reports/compare.hpp"

#include <nlohmann/json.hpp>

#include <cstddef>
#include <filesystem>
#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

namespace syncstorm::reports {

struct baseline_options {
  std::string dir;       // empty: no baseline
  std::size_t keep = 5;  // passing reports kept per scenario (>= 1)
  compare_options compare;
};

// The folder of a scenario's baselines: DIR/<name>, the name's characters outside
// [A-Za-z0-9._-] replaced by '_'.
std::filesystem::path baseline_folder(const std::string& dir, const std::string& scenario);

// The stored reports of a scenario, oldest first (names sort by the run's start time).
std::vector<std::filesystem::path> stored_baselines(const std::string& dir, const std::string& scenario);

// Stores `report` as DIR/<scenario>/<start time>.json (through a temporary file and a rename)
// and removes the oldest beyond `keep`. Returns the stored file. Throws std::runtime_error
// naming the path when it cannot write.
std::filesystem::path store_baseline(const std::string& dir, const nlohmann::json& report, std::size_t keep);

// What `run --baseline` does after the report is written: compares with the newest stored
// report of the scenario (printing the table to `out` and writing run_dir/compare.json), then
// stores this report if it passed and did not regress. Returns the run's exit code after the
// comparison (DESIGN §9 precedence: 2, 3, 4 and 1 stay; a regression turns 0 or 5 into 1).
// A run that ended with 2, 3 or 4 is neither compared nor stored.
// Problems with DIR are printed to `err` as one line naming --baseline and turn 0/5 into 3.
int apply_baseline(const nlohmann::json& report, const std::string& run_dir, const baseline_options& o, int exit_code,
                   std::ostream& out, std::ostream& err);

}  // namespace syncstorm::reports
