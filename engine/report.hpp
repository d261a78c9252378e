// report.json (DESIGN §9) assembled from what a run measured and decided: the verdicts, the
// merged metrics, the faults with their recovery, the audit, the generator's self-watch, the
// events. The writers (reports/) render every other file from this document.
// Pure: no I/O; the inputs must outlive the call.
#pragma once

#include "core/metrics.hpp"
#include "core/scenario.hpp"
#include "core/sla.hpp"
#include "engine/outcome.hpp"

#include <nlohmann/json.hpp>

#include <cstddef>
#include <map>
#include <optional>
#include <string>

namespace syncstorm::engine {

struct generator_report {
  double cpu = 0;                    // the process's CPU, in cores, over the run
  std::optional<double> lag_p99_ms;  // generator.lag p99
  bool saturated = false;
  std::string reason;  // why saturated
  std::size_t threads = 1;
  std::uint64_t late = 0;  // generator.late count
};

struct report_input {
  const scenario* s = nullptr;
  std::string started_at, ended_at;  // ISO-8601 UTC with ms
  std::int64_t run_end_us = 0;
  outcome result;
  nlohmann::json verdicts = nlohmann::json::array();  // verdict_json / abort_verdict_json
  const metrics_shard* merged = nullptr;
  std::map<std::string, double> scalars;  // judged once (recovery.*, audit.*, …), µs for times
  nlohmann::json faults = nlohmann::json::array();
  nlohmann::json audit;  // null when the audit did not run
  generator_report generator;
  nlohmann::json events = nlohmann::json::array();
  std::string run_dir;
  nlohmann::json capture;  // optional sections: null leaves them out
  nlohmann::json ws_drops;
  nlohmann::json safety;  // the allowlist in force (safety_policy::to_json)
};

nlohmann::json build_report(const report_input& in);

// One verdicts[] entry.
nlohmann::json verdict_json(const verdict& v);
// The verdict of an abort condition that fired (DESIGN §9: it counts as a failed rule). `a` is
// the scenario's entry of that name, if any.
nlohmann::json abort_verdict_json(const std::string& name, const std::string& reason, const abort_entry* a);

// report.json's `metrics`, `series` and `gauges` from the merged metrics: times in ms, counts as
// they are; a gauge's series is its level at the end of each second, [[t_s, value], ...].
void metrics_for_report(const metrics_shard& m, nlohmann::json& metrics, nlohmann::json& series,
                        nlohmann::json& gauges);

}  // namespace syncstorm::engine
