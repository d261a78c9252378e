// The scenario contract of DESIGN §9: the spec tree (what every key may hold, with the keys each
// load model and fault kind registers), loading with --set / --time-scale, complete validation
// (shape and cross-references, every problem one line), `${env:NAME}` references, and the typed
// scenario the engine runs. The registry is built once, before threads start; read-only after.
#pragma once

#include "core/spec.hpp"

#include <cstdint>
#include <functional>
#include <memory>
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

struct load_entry;
struct fault_entry;

// A load model's or fault kind's own settings, typed, with its defaults applied: parsed once
// from the validated, time-scaled entry by the parse its file registered (engine/models/,
// injectors/kinds/). Read-only after loading; shared by every copy of the scenario.
struct load_settings {
  virtual ~load_settings() = default;
};
struct fault_settings {
  virtual ~fault_settings() = default;
};

// What a model's or fault kind's reference checks see of the document besides its own entry
// (the shape of the whole document already held).
struct reference_context {
  const json* doc = nullptr;
  bool lab = false;           // target.lab
  bool attached = false;      // target.lab.id: a running lab
  bool replica = false;       // target.lab.replica
  bool endpoints = false;     // target.endpoints
  bool proxied = false;       // target.proxy
  std::string http_endpoint;  // target.endpoints.http
  std::int64_t run_us = 0;    // the run's length (duration, else the longest load)
};

using reference_check =
    std::function<void(const json& entry, const reference_context& ctx, const std::string& path, spec::errors& out)>;

struct load_model_info {
  std::string name;
  std::string doc;
  std::vector<spec::field> fields;   // the model's own keys, beside name/model/phases
  std::vector<metric_info> metrics;  // metrics the model records
  bool available = false;            // implemented in this build
  // The live progress line: the model's request counter (empty: its latency metric counts
  // the requests) and its latency metric.
  std::string progress_requests, progress_latency;
  // An open model: true when a phase without "rate" or "to" is an error for this entry.
  std::function<bool(const json& entry)> phase_needs_rate;
  // Checks the shape cannot state, after it held; one line each, paths under `path`.
  reference_check check;
  // Requests per second at the entry's peak, given the phases' highest rate (capture sizing).
  std::function<double(const json& entry, double phase_peak)> peak_requests;
  // The typed settings of a validated, time-scaled entry; throws std::invalid_argument with one
  // line naming the key's path when a value is out of what the model can run.
  std::function<std::shared_ptr<const load_settings>(const load_entry& entry, const std::string& path)> parse;
};

struct fault_kind_info {
  std::string name;
  std::string doc;
  std::vector<spec::field> fields;  // the kind's own keys, beside the schedule and target
  bool needs_target = true;
  bool available = false;
  // A single blow (kill, db_failover, …): recovery counts from the apply. Otherwise the
  // effect lasts until reverted and recovery counts from the revert.
  bool instant = false;
  reference_check check;  // as load_model_info::check
  // The typed settings of a validated, time-scaled fault (as load_model_info::parse).
  std::function<std::shared_ptr<const fault_settings>(const fault_entry& entry, const std::string& path)> parse;
};

// The registry behind validation, `syncstorm schema` and loading. Models and fault kinds add
// themselves (their keys, metrics, checks and parse) from their own files: the engine's model
// registry (engine/registry.hpp) and the injectors' fault kinds do it for the built-ins, which
// engine::register_builtins() brings in; a test can add its own the same way.
class scenario_registry {
 public:
  static scenario_registry& instance();
  void add_model(load_model_info m);
  void add_fault_kind(fault_kind_info f);
  void set_available(const std::string& model_or_kind, bool available);
  // A check that needs more than the document (the capture's privilege and interfaces): run by
  // validate_document once the document's own checks held; each problem one line. Registered by
  // the CLI (cli/), so core/ itself stays free of what the checks need.
  void add_environment_check(std::function<spec::errors(const json& doc)> check);
  const std::vector<std::function<spec::errors(const json&)>>& environment_checks() const {
    return environment_checks_;
  }

  spec::node_ptr root() const;  // the whole scenario
  json schema() const;          // JSON Schema 2020-12
  const std::vector<load_model_info>& models() const { return models_; }
  const std::vector<fault_kind_info>& fault_kinds() const { return faults_; }
  const std::vector<metric_info>& core_metrics() const { return core_metrics_; }
  const load_model_info* find_model(const std::string& name) const;
  const fault_kind_info* find_fault_kind(const std::string& name) const;

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
  std::optional<double> rate, to;  // per second; `to` ramps from the previous phase's rate
};

struct load_entry {
  std::string name, model;
  std::vector<phase_plan> phases;
  json fields;                                    // the entry as validated (time-scaled, refs unresolved)
  std::shared_ptr<const load_settings> settings;  // the model's typed settings (its parse); may be null
};

struct fault_entry {
  std::string name, kind;
  json target;  // as written
  std::int64_t at_us = 0;
  std::optional<std::int64_t> for_us, every_us, jitter_us;
  std::optional<std::int64_t> count;
  json fields;                                     // the whole fault entry (time-scaled)
  std::shared_ptr<const fault_settings> settings;  // the kind's typed settings (its parse); may be null
};

struct rule_entry {
  std::string name, metric, stat, window = "all";
  std::optional<double> max, min, warn;  // in the metric's unit: µs for time, percent for ratio
  std::optional<std::int64_t> for_us;
  std::string load;  // optional: only this load entry's samples
  metric_unit unit = metric_unit::time;
};

struct abort_entry {
  std::string name;
  std::optional<rule_entry> rule;  // a metric condition
  json probe;                      // or an HTTP probe {url, every, timeout, fail_after}
};

struct scenario {
  std::string name, description;
  std::int64_t duration_us = 0;
  std::uint64_t seed = 1;
  double time_scale = 1.0;
  json target;  // {"lab": {...}} or {"endpoints": ...}
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
  std::vector<std::string> sets;  // "a.b[0].c=VALUE"
  double time_scale = 1.0;
  std::optional<std::uint64_t> seed;
  bool require_env = false;  // run: every ${env:NAME} must be set
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
