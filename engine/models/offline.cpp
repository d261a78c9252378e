// The `offline` model (DESIGN §5): clients offline in given windows (or random ones by duty
// cycle), still writing into their queue, draining on reconnect. The terminal model's client
// with an online gate (loadgen/offline_model). Its keys, settings and factory.
#include "engine/models/sync_client.hpp"

#include "core/units.hpp"
#include "loadgen/offline_model.hpp"

#include <sstream>

namespace syncstorm::engine::models {
namespace {

using namespace spec;

std::vector<field> keys() {
  std::vector<field> f = {
      req("clients", integer("clients (each its own stream)", 1)),
      opt("offline",
          array("offline windows", object("an offline window", {req("at", duration("when the window opens", true)),
                                                                req("for", duration("how long", true))}))),
      opt("random", object("random offline windows, each client its own (seeded)",
                           {req("duty_cycle", percent("share of time offline")),
                            req("period", duration("mean cycle length (>= 1s)", true))})),
      opt("rate", rate("transactions per second per client (phases may override)")),
      opt("stream_prefix",
          spec::string("stream name prefix; client i writes <prefix><i> (default \"<load name>-c\")"))};
  for (auto& x : sync_client_fields()) f.push_back(std::move(x));
  return f;
}

std::vector<metric_info> metrics() {
  std::vector<metric_info> m = {
      {"offline.drain_time", metric_unit::time, "reconnect to the backlog held at reconnect acked"},
      {"offline.resume_time", metric_unit::time, "reconnect to first ack"},
      {"offline.peak_queue", metric_unit::count, "ops held at a reconnect (value)"},
      {"offline.cut", metric_unit::count, "pushes cut by a window opening"}};
  for (auto& x : sync_client_metrics()) m.push_back(std::move(x));
  return m;
}

void check(const nlohmann::json& l, const reference_context& ctx, const std::string& p, spec::errors& out) {
  sync_client_check(l, ctx, p, out);
  if (!l.contains("offline") && !l.contains("random"))
    out.push_back(p + ": found neither \"offline\" nor \"random\"; expected offline windows or a random duty cycle");
  const nlohmann::json no_period;
  const nlohmann::json& period = l.contains("random") && l["random"].is_object() && l["random"].contains("period")
                                     ? l["random"]["period"]
                                     : no_period;
  const bool period_parsed =
      period.is_number() || (period.is_string() && units::parse_duration_us(period.get<std::string>()));
  // Shorter cycles than the gate's resolution would be noise (offline_logic.hpp).
  if (period_parsed && duration_us(period) < 1'000'000)
    out.push_back(p + ".random.period: found " + period.dump() + "; expected a duration >= 1s");
}

std::string describe(const load_entry& e, const plan_context& ctx) {
  const auto c = planned_sync_client(e, ctx);
  std::ostringstream out;
  out << "  load " << e.name << ": " << c.stores << " clients offline in";
  for (const auto& w : c.offline.windows)
    out << " [" << units::format_duration(w.start_us) << ", " << units::format_duration(w.end_us) << ")";
  if (c.offline.duty_cycle > 0)
    out << " random windows (duty cycle " << c.offline.duty_cycle * 100 << "%, period "
        << units::format_duration(c.offline.period_us) << ", seeded per client)";
  out << "; on reconnect they drain\n";
  return out.str() + describe_sync_client(c, e.name);
}

}  // namespace

model_kind offline_kind() {
  model_kind k;
  k.info.name = "offline";
  k.info.doc = "clients offline in windows, queueing, draining on reconnect";
  k.info.fields = keys();
  k.info.metrics = metrics();
  k.info.progress_latency = "push.latency";
  k.info.phase_needs_rate = sync_client_needs_rate;
  k.info.check = check;
  k.info.peak_requests = [](const nlohmann::json& l, double peak) {
    const double per = l.contains("rate") ? rate_value(l["rate"]) : 0;
    return std::max(peak, per) * l.value("clients", 1);
  };
  k.info.parse = [](const load_entry& e, const std::string& where) -> std::shared_ptr<const load_settings> {
    auto s = std::make_shared<sync_client_settings>();
    s->c = loadgen::offline_settings_from(e.name, e.fields, phases_of(e), where);
    return s;
  };
  k.build = build_sync_client;
  k.describe = describe;
  return k;
}

}  // namespace syncstorm::engine::models
