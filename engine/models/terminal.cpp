// The `terminal` model (DESIGN §5): POS lanes, `stores × terminals_per_store`, a store per
// stream; each lane journals locally, batches and pushes with backoff and a circuit breaker
// (loadgen/terminal_model). Its keys, settings and factory.
#include "engine/models/sync_client.hpp"

#include "core/units.hpp"

namespace syncstorm::engine::models {
namespace {

using namespace spec;

std::vector<field> keys() {
  std::vector<field> f = {
      req("stores", integer("stores (a store is a stream)", 1)),
      req("terminals_per_store", integer("terminals per store", 1)),
      opt("rate", rate("transactions per second per terminal (phases may override)")),
      opt("sync", object("sync policy", {opt("mode", enumeration("continuous or periodic", {"continuous", "periodic"})),
                                         opt("every", duration("period of periodic sync", true))})),
      opt("stream_prefix", spec::string("stream name prefix; store i is <prefix><i> (default \"store-\")"))};
  for (auto& x : sync_client_fields()) f.push_back(std::move(x));
  return f;
}

}  // namespace

model_kind terminal_kind() {
  model_kind k;
  k.info.name = "terminal";
  k.info.doc = "POS lanes: a local journal, a batcher, pushes with backoff and a circuit breaker";
  k.info.fields = keys();
  k.info.metrics = sync_client_metrics();
  k.info.progress_latency = "push.latency";
  k.info.phase_needs_rate = sync_client_needs_rate;
  k.info.check = sync_client_check;
  k.info.peak_requests = [](const nlohmann::json& l, double peak) {
    const double per = l.contains("rate") ? rate_value(l["rate"]) : 0;
    return std::max(peak, per) * l.value("stores", 1) * l.value("terminals_per_store", 1);
  };
  k.info.parse = [](const load_entry& e, const std::string& where) -> std::shared_ptr<const load_settings> {
    auto s = std::make_shared<sync_client_settings>();
    s->c = loadgen::terminal_settings_from(e.name, e.fields, phases_of(e), where);
    return s;
  };
  k.build = build_sync_client;
  k.describe = [](const load_entry& e, const plan_context& ctx) {
    return describe_sync_client(planned_sync_client(e, ctx), e.name);
  };
  return k;
}

}  // namespace syncstorm::engine::models
