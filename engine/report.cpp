// See report.hpp.
#include "engine/report.hpp"

#include "core/report_schema.hpp"
#include "core/units.hpp"

#include <cmath>

namespace syncstorm::engine {
namespace {

nlohmann::json opt(const std::optional<double>& v) { return v ? nlohmann::json(*v) : nlohmann::json(); }

// Values judged once per run (recovery.<fault>, ready.<fault>, detect.<fault>, outage.max): ms,
// null with "unbounded" when never reached. Counts judged once (fanout.missing,
// ws.dropped.bystanders) keep their unit. audit.* live in the audit section.
void add_scalars(const report_input& in, nlohmann::json& metrics) {
  for (const auto& [k, val] : in.scalars) {
    if (k.starts_with("audit.")) continue;
    if (auto info = metric_lookup(in.s->document, k); info && info->unit == metric_unit::count) {
      metrics[k] = {{"unit", "count"}, {"value", val}};
      continue;
    }
    nlohmann::json j = {{"unit", "ms"}, {"value", std::isinf(val) ? nlohmann::json() : nlohmann::json(val / 1000.0)}};
    if (std::isinf(val)) j["unbounded"] = true;
    metrics[k] = j;
  }
}

// Error counts per bucket of the whole run (not per load view).
nlohmann::json error_counts(const metrics_shard& m) {
  nlohmann::json errors = nlohmann::json::object();
  for (const auto& name : m.names())
    if (name.find(".errors.") != std::string::npos && name.find('@') == std::string::npos)
      errors[name] = m.find(name)->count();
  return errors;
}

}  // namespace

void metrics_for_report(const metrics_shard& m, nlohmann::json& metrics, nlohmann::json& series,
                        nlohmann::json& gauges) {
  metrics = nlohmann::json::object();
  series = nlohmann::json::object();
  gauges = nlohmann::json::object();
  for (const auto& name : m.names()) {
    const timed_metric* t = m.find(name);
    const histogram& h = t->hist();
    const bool timed = h.count() > 0;
    nlohmann::json j = {
        {"unit", timed ? "ms" : "count"}, {"count", t->count()}, {"ok", t->ok_count()}, {"errors", t->error_count()}};
    if (timed) {
      j["min"] = units::us_to_ms(h.min());
      j["mean"] = h.mean() / 1000.0;
      j["p50"] = units::us_to_ms(h.percentile(50));
      j["p90"] = units::us_to_ms(h.percentile(90));
      j["p99"] = units::us_to_ms(h.percentile(99));
      j["p99_9"] = units::us_to_ms(h.percentile(99.9));
      j["p99_99"] = units::us_to_ms(h.percentile(99.99));
      j["max"] = units::us_to_ms(h.max());
    }
    metrics[name] = j;
    nlohmann::json rows = nlohmann::json::array();
    for (const auto& row : t->coarse().to_json())
      rows.push_back({row[0], row[1], row[2], row[3].get<double>() / 1000.0, row[4].get<double>() / 1000.0,
                      row[5].get<double>() / 1000.0});
    series[name] = rows;
  }
  for (const auto& name : m.gauge_names()) {
    const gauge_series* g = m.find_gauge(name);
    metrics[name] = {{"unit", "value"}, {"last", g->last()}, {"peak", g->peak()}};
    nlohmann::json rows = nlohmann::json::array();
    for (const auto& p : g->coarse()) rows.push_back({static_cast<double>(p.step), p.value});
    gauges[name] = rows;
  }
}

nlohmann::json verdict_json(const verdict& v) {
  nlohmann::json j = {{"name", v.name},
                      {"metric", v.metric},
                      {"stat", v.stat},
                      {"window", v.window},
                      {"value", opt(v.value)},
                      {"bound", opt(v.bound)},
                      {"op", v.op},
                      {"pass", v.pass},
                      {"warn", v.warn},
                      {"inconclusive", v.inconclusive},
                      {"unit", v.unit},
                      {"samples", v.samples},
                      {"reason", v.reason},
                      {"warn_bound", opt(v.warn_bound)}};
  if (!v.load.empty()) j["load"] = v.load;
  return j;
}

nlohmann::json abort_verdict_json(const std::string& name, const std::string& reason, const abort_entry* a) {
  return {{"name", name},
          {"metric", a && a->rule ? a->rule->metric : std::string("probe")},
          {"stat", a && a->rule ? a->rule->stat : std::string("fail_after")},
          {"window", "all"},
          {"value", nullptr},
          {"bound", nullptr},
          {"op", "<="},
          {"pass", false},
          {"warn", false},
          {"inconclusive", false},
          {"reason", "abort condition fired: " + reason}};
}

nlohmann::json build_report(const report_input& in) {
  nlohmann::json metrics, series, gauges;
  metrics_for_report(*in.merged, metrics, series, gauges);
  add_scalars(in, metrics);
  const auto& g = in.generator;
  nlohmann::json report = {{"schema_version", report_schema_version},
                           {"syncstorm_version", SYNCSTORM_VERSION},
                           {"seed", in.s->seed},
                           {"scenario", in.s->document},
                           {"time_scale", in.s->time_scale},
                           {"started_at", in.started_at},
                           {"ended_at", in.ended_at},
                           {"duration_s", static_cast<double>(in.run_end_us) / 1e6},
                           {"outcome", in.result.name},
                           {"exit_code", in.result.exit_code},
                           {"reason", in.result.reason},
                           {"verdicts", in.verdicts},
                           {"metrics", metrics},
                           {"series", series},
                           {"gauges", gauges},
                           {"faults", in.faults},
                           {"audit", in.audit},
                           {"generator",
                            {{"cpu", g.cpu},
                             {"lag_p99", opt(g.lag_p99_ms)},
                             {"saturated", g.saturated},
                             {"reason", g.reason},
                             {"threads", g.threads},
                             {"late", g.late}}},
                           {"events", in.events},
                           {"run_dir", in.run_dir},
                           {"errors", error_counts(*in.merged)}};
  if (!in.capture.is_null()) report["capture"] = in.capture;
  if (!in.ws_drops.is_null()) report["ws_drops"] = in.ws_drops;
  if (!in.safety.is_null()) report["safety"] = in.safety;
  return report;
}

}  // namespace syncstorm::engine
