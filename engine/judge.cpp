// See judge.hpp.
#include "engine/judge.hpp"

#include "core/self_monitor.hpp"
#include "core/units.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <iomanip>
#include <sstream>

namespace syncstorm::engine {
namespace {

nlohmann::json seconds_or_unbounded(const std::optional<double>& us) {
  if (!us || std::isinf(*us)) return nullptr;
  return *us / 1e6;
}

// availability.attempts / availability.ops from http.requests when no model recorded them
// (per load view too): the http model makes one attempt per request and no retries.
void alias_availability(metrics_shard& m) {
  for (const auto& [alias, source] : availability_aliases(m)) m.metric(alias).merge(*m.find(source));
}

// The generator's self-watch (DESIGN §7): saturated when a worker thread was busy > 90% of the
// time or arrivals ran late (lag p99 > 10 ms). The CPU bound is applied per worker thread (the
// pool knows each thread's CPU), not to the process, which shares the machine with the lab.
generator_report self_watch(const metrics_shard& merged, double worker_cpu_max) {
  generator_report g;
  const timed_metric* lag = merged.find("generator.lag");
  if (lag && lag->hist().count()) g.lag_p99_ms = units::us_to_ms(lag->hist().percentile(99));
  const saturation_limits limits;
  if (worker_cpu_max > limits.cpu_share)
    g.reason =
        "a worker thread was busy " + std::to_string(static_cast<int>(worker_cpu_max * 100)) + "% of the run (> 90%)";
  if (g.lag_p99_ms && *g.lag_p99_ms > static_cast<double>(limits.lag_p99_us) / 1000.0) {
    std::ostringstream r;
    r << std::setprecision(3) << "generator.lag p99 " << *g.lag_p99_ms << " ms (> 10 ms)";
    g.reason += (g.reason.empty() ? "" : "; ") + r.str();
  }
  g.saturated = !g.reason.empty();
  g.late = merged.find("generator.late") ? merged.find("generator.late")->count() : 0;
  return g;
}

std::vector<timeline_event> timeline_events(const nlohmann::json& lab_events) {
  std::vector<timeline_event> out;
  for (const auto& e : lab_events) {
    if (!e.contains("t_s") || !e["t_s"].is_number()) continue;
    out.push_back({static_cast<std::int64_t>(e["t_s"].get<double>() * 1e6), e.value("event", ""),
                   e.value("name", e.value("server", e.value("subject", "")))});
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.t_us < b.t_us; });
  return out;
}

// Judged once, after the drain: acked changes some subscriber never received, and WebSockets
// lost on servers no fault touched at the time (timeline.hpp says how).
void judge_delivery(const judge_input& in, const std::vector<timeline_event>& events, evaluation_context& ctx,
                    judgement& j) {
  if (!in.delivery || !in.delivery->any) return;
  ctx.scalars["fanout.missing"] = static_cast<double>(in.delivery->missing);
  const ws_drop_counts wd = attribute_ws_drops(in.delivery->drops, in.occurrences, events, in.run_end_us);
  j.ws_drops = {
      {"total", wd.total}, {"faulted", wd.faulted}, {"bystanders", wd.bystanders}, {"unattributed", wd.unattributed}};
  if (wd.unattributed == 0)
    ctx.scalars["ws.dropped.bystanders"] = static_cast<double>(wd.bystanders);
  else
    ctx.absent["ws.dropped.bystanders"] =
        "ws.dropped.bystanders: " + std::to_string(wd.unattributed) + " of " + std::to_string(wd.total) +
        " dropped WebSockets were on servers that did not name themselves (server_header)";
}

void judge_audit(const judge_input& in, evaluation_context& ctx) {
  const char* keys[] = {"audit.lost",     "audit.duplicates", "audit.in_doubt",   "audit.order_violations",
                        "audit.diverged", "audit.lost_age",   "audit.mismatched", "audit.phantoms"};
  if (!in.audit) {
    for (const char* k : keys) ctx.absent[k] = std::string(k) + ": " + in.audit_absent;
    ctx.absent["fanout.mismatched"] = "fanout.mismatched: " + in.audit_absent;
    return;
  }
  const audit_result& a = *in.audit;
  ctx.scalars["audit.lost"] = static_cast<double>(a.lost);
  ctx.scalars["audit.duplicates"] = static_cast<double>(a.duplicates);
  ctx.scalars["audit.in_doubt"] = static_cast<double>(a.in_doubt);
  ctx.scalars["audit.order_violations"] = static_cast<double>(a.order_violations);
  ctx.scalars["audit.diverged"] = static_cast<double>(a.diverged);
  ctx.scalars["audit.mismatched"] = static_cast<double>(a.mismatched);
  ctx.scalars["audit.phantoms"] = static_cast<double>(a.phantoms);
  if (a.deliveries_judged)
    ctx.scalars["fanout.mismatched"] = static_cast<double>(a.fanout_mismatched);
  else
    ctx.absent["fanout.mismatched"] = "fanout.mismatched: no subscriber received a change";
  ctx.scalars["audit.lost_age"] = a.lost_oldest_age_us ? static_cast<double>(*a.lost_oldest_age_us) : 0.0;
}

// Why a fault's recovery.*, ready.* or detect.* has no value.
void note_unmeasured_faults(const scenario& s, const timeline& tl, evaluation_context& ctx) {
  for (const auto& f : s.faults) {
    for (const char* kind : {"recovery.", "ready.", "detect."}) {
      std::string key = kind + f.name;
      if (ctx.scalars.count(key)) continue;
      bool fired =
          std::any_of(tl.effects().begin(), tl.effects().end(), [&](const auto& e) { return e.name == f.name; });
      ctx.absent[key] = !fired                           ? "fault " + f.name + " was never applied in this run"
                        : std::string(kind) == "detect." ? "no client-visible failure followed fault " + f.name
                                                         : key + " could not be measured (no client samples)";
    }
  }
}

}  // namespace

std::int64_t warmup_end_us(const plan& p, std::int64_t run_end_us) {
  std::int64_t end = std::min<std::int64_t>(1'000'000, run_end_us);
  for (const auto& ph : p.phases) {
    std::string n = ph.phase;
    std::transform(n.begin(), n.end(), n.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (ph.start_us == 0 && (n.starts_with("warm") || n.starts_with("ramp"))) end = std::max(end, ph.end_us);
  }
  return std::min(end, run_end_us);
}

judgement judge(judge_input in) {
  judgement j;
  j.generator = self_watch(*in.merged, in.worker_cpu_max);
  // availability.* for loads without their own (the http model): every request is an attempt
  // and, without retries, an op.
  alias_availability(*in.merged);
  timeline_input tin;
  tin.metrics = in.merged;
  tin.run_end_us = in.run_end_us;
  tin.warmup_end_us = warmup_end_us(*in.p, in.run_end_us);
  tin.faults = in.occurrences;
  tin.events = timeline_events(in.lab_events);
  const std::vector<timeline_event> events = tin.events;
  const timeline tl(std::move(tin));
  j.effects = tl.effects();

  evaluation_context ctx;
  ctx.metrics = in.merged;
  ctx.run_end_us = in.run_end_us;
  ctx.generator_saturated = j.generator.saturated;
  ctx.saturation_reason = j.generator.reason;
  if (j.generator.lag_p99_ms) ctx.generator_lag_p99_us = static_cast<std::int64_t>(*j.generator.lag_p99_ms * 1000.0);
  // DESIGN §7: a capture that lost packets leaves wire.* rules inconclusive.
  ctx.capture_reason = in.capture_loss;
  ctx.capture_dropped = !ctx.capture_reason.empty();
  ctx.scalars = tl.scalars();
  judge_delivery(in, events, ctx, j);
  judge_audit(in, ctx);
  note_unmeasured_faults(*in.s, tl, ctx);
  ctx.resolve_window = [&](const std::string& w) -> std::vector<time_window> {
    std::vector<time_window> phase;
    if (w.starts_with("phase:")) {
      std::string rest = w.substr(6);
      std::string ln = rest.substr(0, rest.find('/')), pn = rest.substr(rest.find('/') + 1);
      for (const auto& ph : in.p->phases)
        if (ph.load == ln && ph.phase == pn && ph.start_us < in.run_end_us)
          phase.push_back({ph.start_us, std::min(ph.end_us, in.run_end_us)});
    }
    return tl.window(w, phase);
  };
  if (in.abort) {
    // The abort condition that fired is a failed rule (DESIGN §9 exit 1).
    const abort_entry* a = nullptr;
    for (const auto& x : in.s->aborts)
      if (x.name == in.abort->first) a = &x;
    j.verdicts.push_back(abort_verdict_json(in.abort->first, in.abort->second, a));
    j.rules.push_back({false, false});
  }
  for (const auto& r : in.s->slas) {
    verdict v = evaluate(r, ctx);
    j.rules.push_back({v.pass, v.inconclusive});
    j.verdicts.push_back(verdict_json(v));
  }
  j.scalars = std::move(ctx.scalars);
  return j;
}

std::vector<std::pair<std::string, std::string>> availability_aliases(const metrics_shard& m) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& n : m.names()) {
    if (!n.starts_with("http.requests")) continue;
    std::string suffix = n.substr(std::string("http.requests").size());  // "" or "@load"
    if (!suffix.empty() && suffix[0] != '@') continue;
    for (const char* a : {"availability.attempts", "availability.ops"})
      if (!m.find(std::string(a) + suffix)) out.emplace_back(std::string(a) + suffix, n);
  }
  return out;
}

std::vector<fault_occurrence> occurrences_of(const std::vector<injectors::fault_record>& records) {
  std::vector<fault_occurrence> out;
  for (const auto& rec : records) {
    if (!rec.applied_us) continue;
    fault_occurrence o;
    o.name = rec.name;
    o.kind = rec.kind;
    o.applied_us = *rec.applied_us;
    o.reverted_us = rec.reverted_us.value_or(-1);
    const fault_kind_info* k = scenario_registry::instance().find_fault_kind(rec.kind);
    o.lasting = !(k && k->instant);
    for (const auto& t : rec.targets)
      if (t.value("backend", "") == "lab" && t.contains("name")) o.units.push_back(t["name"].get<std::string>());
    out.push_back(std::move(o));
  }
  return out;
}

nlohmann::json faults_report(const std::vector<injectors::fault_record>& records,
                             const std::vector<fault_effects>& effects, const audit_result* audit) {
  nlohmann::json out = nlohmann::json::array();
  std::size_t applied_index = 0;
  for (const auto& r : records) {
    nlohmann::json j = r.to_report();
    if (r.applied_us) {
      for (const auto& e : effects) {
        if (e.name != r.name || e.applied_us != *r.applied_us) continue;
        j["recovery_s"] = seconds_or_unbounded(e.recovery_us);
        j["ready_s"] = seconds_or_unbounded(e.ready_us);
        j["detect_s"] = seconds_or_unbounded(e.detect_us);
        if (e.recovery_us && std::isinf(*e.recovery_us)) j["recovery_unbounded"] = true;
        if (e.ready_us && std::isinf(*e.ready_us)) j["ready_unbounded"] = true;
        j["baseline"] = {{"ratio", e.baseline_ratio}, {"p99_ms", e.baseline_p99_us / 1000.0}};
        break;
      }
      if (audit && applied_index < audit->inflight.size()) j["inflight_ops"] = audit->inflight[applied_index].ops;
      ++applied_index;
    }
    out.push_back(j);
  }
  return out;
}

}  // namespace syncstorm::engine
