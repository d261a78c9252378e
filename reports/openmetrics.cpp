// The live view as OpenMetrics / Prometheus text. See openmetrics.hpp.
#include "reports/openmetrics.hpp"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <string_view>

namespace syncstorm::reports {
namespace {

using label_list = std::vector<std::pair<std::string, std::string>>;

enum class family_type { gauge, counter, histogram, info };

struct family {
  std::string name;  // the OpenMetrics family name (counters without _total)
  family_type type;
  std::string help;
  std::vector<live_sample> samples;
};

// "push.latency@api" -> {"push.latency", "api"}.
std::pair<std::string, std::string> split_load(const std::string& name) {
  const auto at = name.find('@');
  if (at == std::string::npos) return {name, ""};
  return {name.substr(0, at), name.substr(at + 1)};
}

std::string number(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (v == std::floor(v) && std::fabs(v) < 1e15) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.0f", v);
    return buf;
  }
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  // The shortest of %.15g..%.17g that reads back the same keeps the text readable.
  for (int precision = 15; precision < 17; ++precision) {
    char shorter[40];
    std::snprintf(shorter, sizeof shorter, "%.*g", precision, v);
    if (std::strtod(shorter, nullptr) == v) return shorter;
  }
  return buf;
}

void escape_label(std::string& out, std::string_view v) {
  for (char c : v) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '"')
      out += "\\\"";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
}

std::string seconds_text(double s) {
  std::string t = number(s);
  // Bucket boundaries read as floats ("1.0", not "1"): OpenMetrics' canonical form for le.
  if (t.find_first_of(".eI") == std::string::npos) t += ".0";
  return t;
}

// A deque: add() hands out references that later add()s must not move.
std::deque<family> families_of(const live_view& v) {
  std::deque<family> fs;
  auto add = [&fs](std::string name, family_type t, std::string help) -> family& {
    fs.push_back({std::move(name), t, std::move(help), {}});
    return fs.back();
  };

  add("syncstorm_run", family_type::info, "The run: its scenario and run directory name.")
      .samples.push_back({"syncstorm_run_info", {{"scenario", v.scenario}, {"run", v.run}}, 1});
  add("syncstorm_run_start_timestamp_seconds", family_type::gauge,
      "When the load started (the run clock's zero), in seconds since the Unix epoch.")
      .samples.push_back({"syncstorm_run_start_timestamp_seconds", {}, v.start_unix_s});
  add("syncstorm_run_elapsed_seconds", family_type::gauge, "Time since the load started.")
      .samples.push_back({"syncstorm_run_elapsed_seconds", {}, v.elapsed_s});
  add("syncstorm_run_planned_seconds", family_type::gauge, "The run's planned duration.")
      .samples.push_back({"syncstorm_run_planned_seconds", {}, v.planned_s});
  add("syncstorm_run_finished", family_type::gauge, "1 once the run ended and the values are final.")
      .samples.push_back({"syncstorm_run_finished", {}, v.finished ? 1.0 : 0.0});

  family& events = add("syncstorm_events", family_type::counter,
                       "Events of a metric (requests, pushes, deliveries, conflicts) by outcome.");
  family& latency = add("syncstorm_latency_seconds", family_type::histogram,
                        "The metric's values since the run started (latencies, waits, delays).");
  family& pct = add("syncstorm_latency_percentile_seconds", family_type::gauge,
                    "Whole-run percentiles of the metric's values, exact to 0.05%.");
  family& levels = add("syncstorm_gauge", family_type::gauge, "A level now (queue depth, connections).");
  if (v.metrics) {
    for (const auto& full : v.metrics->names()) {
      const timed_metric& m = *v.metrics->find(full);
      auto [metric, load] = split_load(full);
      const label_list base = {{"metric", metric}, {"load", load}};
      label_list ok = base, err = base;
      ok.emplace_back("outcome", "ok");
      err.emplace_back("outcome", "error");
      events.samples.push_back({"syncstorm_events_total", ok, static_cast<double>(m.ok_count())});
      events.samples.push_back({"syncstorm_events_total", err, static_cast<double>(m.error_count())});
      const histogram& h = m.hist();
      if (h.count() == 0) continue;
      for (double le : openmetrics_buckets) {
        label_list l = base;
        l.emplace_back("le", seconds_text(le));
        const auto bound_us = static_cast<std::int64_t>(std::llround(le * 1e6));
        latency.samples.push_back(
            {"syncstorm_latency_seconds_bucket", l, static_cast<double>(h.count() - h.count_above(bound_us))});
      }
      label_list inf = base;
      inf.emplace_back("le", "+Inf");
      latency.samples.push_back({"syncstorm_latency_seconds_bucket", inf, static_cast<double>(h.count())});
      latency.samples.push_back({"syncstorm_latency_seconds_count", base, static_cast<double>(h.count())});
      latency.samples.push_back({"syncstorm_latency_seconds_sum", base, h.sum() / 1e6});
      for (double q : openmetrics_quantiles) {
        label_list l = base;
        l.emplace_back("quantile", number(q));
        pct.samples.push_back(
            {"syncstorm_latency_percentile_seconds", l, static_cast<double>(h.percentile(q * 100.0)) / 1e6});
      }
    }
    for (const auto& full : v.metrics->gauge_names()) {
      auto [metric, load] = split_load(full);
      levels.samples.push_back(
          {"syncstorm_gauge", {{"metric", metric}, {"load", load}}, v.metrics->find_gauge(full)->last()});
    }
  }

  family& active = add("syncstorm_fault_active", family_type::gauge, "1 while an occurrence of the fault is applied.");
  family& applied = add("syncstorm_fault_applied", family_type::counter, "Occurrences of the fault applied so far.");
  for (const auto& f : v.faults) {
    active.samples.push_back(
        {"syncstorm_fault_active", {{"fault", f.name}, {"kind", f.kind}, {"target", f.target}}, f.active ? 1.0 : 0.0});
    applied.samples.push_back(
        {"syncstorm_fault_applied_total", {{"fault", f.name}, {"kind", f.kind}}, static_cast<double>(f.applied)});
  }

  add("syncstorm_generator_cpu_ratio", family_type::gauge,
      "The generator's CPU over the last interval, as a share of its cores (0..1).")
      .samples.push_back({"syncstorm_generator_cpu_ratio", {}, v.generator_cpu});
  add("syncstorm_generator_cores", family_type::gauge, "Cores the generator's CPU share is taken of.")
      .samples.push_back({"syncstorm_generator_cores", {}, v.generator_cores});

  family& state = add("syncstorm_rule_state", family_type::gauge,
                      "Each rule on the run so far: 0 ok, 1 warning, 2 breached, -1 pending.");
  family& value = add("syncstorm_rule_value", family_type::gauge, "Each rule's value on the run so far, in `unit`.");
  family& bound =
      add("syncstorm_rule_bound", family_type::gauge, "Each rule's bound (fail) and warning bound, in `unit`.");
  if (v.verdicts.is_array()) {
    for (const auto& j : v.verdicts) {
      const std::string name = j.value("name", "");
      const std::string unit = j.value("unit", "value");
      state.samples.push_back({"syncstorm_rule_state",
                               {{"rule", name},
                                {"metric", j.value("metric", "")},
                                {"stat", j.value("stat", "")},
                                {"window", j.value("window", "")},
                                {"load", j.value("load", "")}},
                               static_cast<double>(rule_state(j))});
      if (j.contains("value") && j["value"].is_number())
        value.samples.push_back({"syncstorm_rule_value", {{"rule", name}, {"unit", unit}}, j["value"].get<double>()});
      if (j.contains("bound") && j["bound"].is_number())
        bound.samples.push_back(
            {"syncstorm_rule_bound", {{"rule", name}, {"unit", unit}, {"bound", "fail"}}, j["bound"].get<double>()});
      if (j.contains("warn_bound") && j["warn_bound"].is_number())
        bound.samples.push_back({"syncstorm_rule_bound",
                                 {{"rule", name}, {"unit", unit}, {"bound", "warn"}},
                                 j["warn_bound"].get<double>()});
    }
  }
  return fs;
}

const char* type_name(family_type t) {
  switch (t) {
    case family_type::counter:
      return "counter";
    case family_type::histogram:
      return "histogram";
    case family_type::info:
      return "info";
    case family_type::gauge:
      break;
  }
  return "gauge";
}

}  // namespace

const char* content_type(exposition f) {
  return f == exposition::openmetrics ? "application/openmetrics-text; version=1.0.0; charset=utf-8"
                                      : "text/plain; version=0.0.4; charset=utf-8";
}

exposition negotiate(const std::string& accept) {
  return accept.find("application/openmetrics-text") != std::string::npos ? exposition::openmetrics
                                                                          : exposition::prometheus_text;
}

int rule_state(const nlohmann::json& verdict) {
  if (verdict.value("inconclusive", false)) return -1;
  if (!verdict.value("pass", false)) return 2;
  if (verdict.value("warn", false)) return 1;
  return 0;
}

std::vector<live_sample> live_samples(const live_view& v) {
  std::vector<live_sample> out;
  for (auto& f : families_of(v))
    for (auto& s : f.samples) out.push_back(std::move(s));
  return out;
}

std::string render_metrics(const live_view& v, exposition f) {
  std::string out;
  out.reserve(16 * 1024);
  for (const auto& fam : families_of(v)) {
    const bool om = f == exposition::openmetrics;
    // The Prometheus text format has no info type and names a counter with its _total.
    std::string name = fam.name;
    const char* type = type_name(fam.type);
    if (!om && fam.type == family_type::counter) name += "_total";
    if (!om && fam.type == family_type::info) {
      name += "_info";
      type = "gauge";
    }
    out += "# HELP " + name + " " + fam.help + "\n";
    out += "# TYPE " + name + " " + type + "\n";
    for (const auto& s : fam.samples) {
      out += s.name;
      if (!s.labels.empty()) {
        out += '{';
        bool first = true;
        for (const auto& [k, lv] : s.labels) {
          if (!first) out += ',';
          first = false;
          out += k;
          out += "=\"";
          escape_label(out, lv);
          out += '"';
        }
        out += '}';
      }
      out += ' ';
      out += number(s.value);
      out += '\n';
    }
  }
  if (f == exposition::openmetrics) out += "# EOF\n";
  return out;
}

std::vector<std::string> exported_families() {
  live_view v;
  std::vector<std::string> out;
  for (const auto& f : families_of(v)) out.push_back(f.name);
  return out;
}

}  // namespace syncstorm::reports
