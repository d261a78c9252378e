// SLA evaluation: turns a rule (DESIGN §9) and the run's merged metrics into a verdict. Time
// windows come from the plan and what happened (fault times); percentiles over the whole run
// come from the merged histogram (never averaged percentiles), over a window from the merged
// 100 ms points of that window. A verdict is inconclusive, not passed, when the generator
// saturated (latency rules), when the metric has no samples, or when there are too few samples
// to show the bound. A rule with `load` reads that entry's view of the metric, named
// "<metric>@<load>" (models record per load entry; the engine merges them into "<metric>").
// Pure: no I/O, no threads.
#pragma once

#include "core/metrics.hpp"
#include "core/scenario.hpp"

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace syncstorm {

struct verdict {
  std::string name, metric, stat, window, load;
  std::optional<double> value, bound, warn_bound;  // in `unit`
  std::string op = "<=";
  std::string unit = "value";  // ms, count, percent, per_s, value
  bool pass = false, warn = false, inconclusive = false;
  std::uint64_t samples = 0;
  std::string reason;
};

// A time range of the run, µs from its start: [from_us, to_us).
struct time_window {
  std::int64_t from_us = 0, to_us = 0;
};

struct evaluation_context {
  const metrics_shard* metrics = nullptr;
  std::int64_t run_end_us = 0;
  bool generator_saturated = false;
  std::string saturation_reason;
  // generator.lag p99 (µs) when saturated: a latency that breaks a `max` bound by more than the
  // generator's own delay fails even so (the breach is the server's); otherwise inconclusive.
  std::int64_t generator_lag_p99_us = 0;
  // Resolves a rule's window ("all", "phase:l/p", "during:f", ...) to ranges; an empty result
  // means the window never happened (the rule is inconclusive).
  std::function<std::vector<time_window>(const std::string& window)> resolve_window;
  // Values that are not series (audit.*, recovery.<fault>): metric -> value in the metric's
  // natural unit (µs for times). Absent: the metric was not measured in this run.
  std::map<std::string, double> scalars;
  // Why a scalar the rule names is absent ("detect.kill-pod: no client-visible failure
  // followed the fault"); without a note the metric reads as not measured.
  std::map<std::string, std::string> absent;
  // The wire capture dropped packets: rules on wire.* are inconclusive (DESIGN §7).
  bool capture_dropped = false;
  std::string capture_reason;
};

verdict evaluate(const rule_entry& rule, const evaluation_context& ctx);

// Samples needed before `stat` can show `bound` (percentiles: 10 beyond the percentile;
// ratios: the rule of three, 3 / (1 - bound)). 0 when any count will do.
std::uint64_t samples_needed(const std::string& stat, std::optional<double> min_bound);

// Parses "p99.9" into 99.9; nullopt for other stats.
std::optional<double> percentile_of(const std::string& stat);

}  // namespace syncstorm
