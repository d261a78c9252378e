// Comparison of two runs' report.json (`syncstorm compare BASE NEW`, `run --baseline`): per rule
// (value against value, pass -> fail transitions) and per metric (p50, p99, max, count, success
// ratio), each delta judged against a bound in the metric's bad direction (latency up, success
// ratio down, a rule's value past its bound's side). Pure functions of the two reports; safe
// from any thread.
#pragma once

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <vector>

namespace syncstorm::reports {

struct compare_options {
  // A value worse than the base by more than this share (percent) is a regression.
  double max_regression_pct = 10.0;
  // Latencies (ms) must also be worse by more than this many ms: a p99 of 0.2 ms that becomes
  // 0.3 ms is +50% but only scheduler noise.
  double min_delta_ms = 1.0;
};

// One compared figure. `better` is the direction a good change takes ("lower" or "higher");
// `judged` false marks an informational figure (count, max) that never regresses.
struct figure_delta {
  std::string subject;  // rule name or metric name
  std::string what;     // "value", "p50", "p99", "max", "count", "success_ratio", "lost", ...
  std::string unit;     // "ms", "count", "percent", ...
  std::optional<double> base, next;
  std::optional<double> change_pct;  // (next - base) / base * 100; empty when base is 0 or absent
  std::string better = "lower";
  bool judged = true;
  bool regression = false;
  std::string note;  // e.g. "PASS -> FAIL", "only in BASE"
};

struct comparison {
  std::string base_name, next_name;  // scenario names
  compare_options options;
  std::vector<figure_delta> rules;
  std::vector<figure_delta> metrics;
  std::vector<std::string> notes;  // differences that are not regressions (other scenario, ...)
  bool regressed = false;
};

comparison compare_reports(const nlohmann::json& base, const nlohmann::json& next, const compare_options& o = {});

// A fixed-width table: one line per figure (informational figures of per-load copies left out),
// regressions marked, then notes and a verdict line.
std::string format_comparison(const comparison& c);
// {"base", "new", "max_regression_pct", "min_delta_ms", "regressed", "notes", "rules": [...],
//  "metrics": [...]}, each figure {subject, what, unit, base, new, change_pct, better, judged,
//  regression, note}.
nlohmann::json comparison_json(const comparison& c);

// Parses "10", "10%" or "7.5%" into percent; empty on anything else (or a negative value).
std::optional<double> parse_percent(const std::string& s);

}  // namespace syncstorm::reports
