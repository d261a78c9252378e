// The scenario contract of DESIGN §9: the spec tree (what every key may hold, with the keys each
// load model and fault kind registers), loading with --set / --time-scale, complete validation
// (shape and cross-references, every problem one line), `${env:NAME}` references, and the typed
// scenario the engine runs. The registry is built once, before threads start; read-only after.
#pragma once

#include "harness/spec.hpp"

#include <functional>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace syncstorm {

using json = nlohmann::json;

// How a metric's values read: time (µs inside, ms in reports), a count, a gauge or a ratio.
enum class metric_unit { time, count, gauge };

struct metric_info {
  std::string name;
  metric_unit unit = metric_unit::time;
  std::string doc;
};

struct load_model_info {
  std::string name;
  std::string doc;
  std::vector<spec::field> fields;    // the model's own keys, beside name/model/phases
  std::vector<metric_info> metrics;   // metrics the model records
  bool available = false;             // implemented in this build
};

struct fault_kind_info {
  std::string name;
  std::string doc;
  std::vector<spec::field> fields;    // the kind's own keys, beside the schedule and target
  bool needs_target = true;
  bool available = false;
};

// The registry behind validation and `syncstorm schema`. Models and fault kinds add
// themselves (their keys, their metrics); the built-ins of §9 are registered on first use.
class scenario_registry {
 public:
  static scenario_registry& instance();
  void add_model(load_model_info m);
  void add_fault_kind(fault_kind_info f);
  void set_available(const std::string& model_or_kind, bool available);
  // A check that needs more than the document (the capture's privilege and interfaces): run by
  // validate_document once the document's own checks held; each problem one line. Registered by
  // the CLI (harness/cli), so the harness itself stays free of what the checks need.
  void add_environment_check(std::function<spec::errors(const json& doc)> check);
  const std::vector<std::function<spec::errors(const json&)>>& environment_checks() const { return environment_checks_; }

  spec::node_ptr root() const;   // the whole scenario
  json schema() const;           // JSON Schema 2020-12
  const std::vector<load_model_info>& models() const { return models_; }
  const std::vector<fault_kind_info>& fault_kinds() const { return faults_; }
  const std::vector<metric_info>& core_metrics() const { return core_metrics_; }

 private:
  scenario_registry();
  void rebuild();
  std::vector<load_model_info> models_;
  std::vector<fault_kind_info> faults_;
  std::vector<metric_info> core_metrics_;
  std::vector<std::function<spec::errors(const json&)>> environment_checks_;
  spec::node_ptr root_;
};

struct phase_plan {
  std::string name;
  std::int64_t for_us = 0;
  std::optional<double> rate, to;     // per second; `to` ramps from the previous phase's rate
};

struct load_entry {
  std::string name, model;
  std::vector<phase_plan> phases;
  json fields;                        // the entry as validated (time-scaled, refs unresolved)
};

struct fault_entry {
  std::string name, kind;
  json target;                        // as written
  std::int64_t at_us = 0;
  std::optional<std::int64_t> for_us, every_us, jitter_us;
  std::optional<std::int64_t> count;
  json fields;                        // the whole fault entry (time-scaled)
};

struct rule_entry {
  std::string name, metric, stat, window = "all";
  std::optional<double> max, min, warn;  // in the metric's unit: µs for time, percent for ratio
  std::optional<std::int64_t> for_us;
  std::string load;                   // optional: only this load entry's samples
  metric_unit unit = metric_unit::time;
};

struct abort_entry {
  std::string name;
  std::optional<rule_entry> rule;     // a metric condition
  json probe;                         // or an HTTP probe {url, every, timeout, fail_after}
};

struct scenario {
  std::string name, description;
  std::int64_t duration_us = 0;
  std::uint64_t seed = 1;
  double time_scale = 1.0;
  json target;                        // {"lab": {...}} or {"endpoints": ...}
  std::vector<load_entry> loads;
  std::vector<fault_entry> faults;
  std::vector<rule_entry> slas;
  std::vector<abort_entry> aborts;
  json capture, report;
  // The document as the user wrote it, with --set applied and `${env:}` NOT resolved: this is
  // what scenario.json and report.json record.
  json document;
};

// Options that change the document before validation.
struct load_options {
  std::vector<std::string> sets;      // "a.b[0].c=VALUE"
  double time_scale = 1.0;
  std::optional<std::uint64_t> seed;
  bool require_env = false;           // run: every ${env:NAME} must be set
};

// Applies one --set; returns an error line naming the flag, or empty.
std::string apply_set(json& doc, const std::string& assignment);

// Everything wrong with `doc` (shape, then cross-references), one line each.
spec::errors validate_document(const json& doc, bool require_env = false);

// Loads SCENARIO: read, parse, --set, validate, time-scale, type. On problems returns them
// (prefixed "scenario" paths) and no scenario.
struct load_result {
  std::optional<scenario> value;
  spec::errors errors;
};
load_result load_scenario_file(const std::string& path, const load_options& opt);
load_result load_scenario(json doc, const load_options& opt);

// `${env:NAME}` references: resolve in memory only. Unset names resolve to "".
std::string resolve_env(const std::string& text);
bool has_env_ref(const std::string& text);

// All metric names a rule in this document may use (core, the models present, per fault).
std::vector<std::string> known_metrics(const json& doc);
std::optional<metric_info> metric_lookup(const json& doc, const std::string& name);

// Parses a validated duration value ("30s" or a number of seconds).
std::int64_t duration_us(const json& v);
double rate_value(const json& v);
std::uint64_t size_value(const json& v);
double percent_value(const json& v);

}  // namespace syncstorm
