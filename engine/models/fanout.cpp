// The `fanout` model (DESIGN §5): WebSocket subscribers over streams, each change matched to its
// push; delivery latency, missing, duplicates, order, gaps repaired by replay, reconnects, and
// the sockets the servers dropped (loadgen/fanout_model). Its keys, settings and factory.
#include "engine/models/builtin.hpp"

#include "loadgen/fanout_model.hpp"
#include "loadgen/target_access.hpp"

namespace syncstorm::engine::models {
namespace {

using namespace spec;

struct fanout_settings final : load_settings {
  loadgen::fanout_config c;  // the entry's keys with defaults; the target and run bound at build
};

class fanout_load final : public load_instance {
 public:
  explicit fanout_load(const loadgen::fanout_config& c)
      : model_(loadgen::make_fanout_model(c)), drain_us_(c.drain_us + 1'000'000) {}
  loadgen::load_model& model() override { return *model_; }
  std::int64_t drain_us() const override { return drain_us_; }
  bool drains_after_writers() const override { return true; }
  std::size_t planned_connections(std::size_t threads) const override { return model_->planned_connections(threads); }
  bool audited() const override { return true; }
  void collect(audit_input& in) const override {
    model_->collect(in.ops);
    model_->collect_views(in.views);
    model_->collect_deliveries(in.delivered, in.delivery_disagreements);
  }
  void collect_delivery(delivery_totals& t) const override {
    t.any = true;
    t.missing += model_->missing();
    model_->collect_drops(t.drops);
  }

 private:
  std::unique_ptr<loadgen::fanout_model> model_;
  std::int64_t drain_us_;
};

std::vector<field> keys() {
  return {
      req("subscribers", integer("subscribers", 1)),
      req("streams", integer("streams", 1)),
      opt("streams_per_subscriber", integer("streams each subscriber takes", 1)),
      opt("stream_prefix", spec::string("stream name prefix; stream i is <prefix><i> (default \"store-\")")),
      opt("rate", rate("changes pushed per second by this model")),
      opt("connect_rate", rate("new connections per second")),
      opt("reconnect", object("reconnect backoff", {opt("base", duration("first")), opt("max", duration("largest"))})),
      opt("storm", boolean("reconnect all at once after a drop (a reconnect storm)")),
      opt("repair", boolean("reconnect with after= when a hole outlives gap_grace (default true)")),
      opt("gap_grace", duration("how long a hole may stay open before it is a gap")),
      opt("drain",
          duration(
              "how long stopping waits for the last frames and for the views to equal the records, counted from the end of the writers' drain (default 5s)")),
      opt("timeout", duration("push timeout; connect + handshake timeout")),
      opt("idle_timeout", duration("no frame nor pong for this long drops a connection")),
      opt("views", integer("subscribers that keep a materialized view for the audit", 0)),
      opt("keys", integer("counter keys per stream", 1)),
      opt("push_connections", integer("push connections per worker", 1)),
      opt("max_batch", integer("ops per push", 1)),
      opt("spread_sources", boolean("bind sockets to 127.0.0.2-254 when the target is 127.0.0.1")),
      opt("server_header",
          spec::string(
              "the WebSocket handshake reply's header naming the server (default \"X-Served-By\"; \"\" for none)"))};
}

std::vector<metric_info> metrics() {
  return {{"fanout.delivery", metric_unit::time, "ack to receipt"},
          {"fanout.delivery.commit", metric_unit::time, "commit (server clock) to receipt (our clock)"},
          {"fanout.missing", metric_unit::count, "acked changes a subscriber never received"},
          {"fanout.duplicates", metric_unit::count, "changes received twice"},
          {"fanout.out_of_order", metric_unit::count, "frames with a lower cursor than the previous one"},
          {"fanout.stale", metric_unit::count,
           "frames at or below the cursor the connection resumed from (reads went backwards)"},
          {"fanout.mismatched", metric_unit::count,
           "delivered changes that differ from the stored change at their cursor (judged after the audit)"},
          {"fanout.gaps", metric_unit::count, "holes older than gap_grace"},
          {"fanout.repaired", metric_unit::count, "changes first received in a replay"},
          {"fanout.reconnects", metric_unit::count, "connections after the first"},
          {"fanout.early", metric_unit::count, "frames that beat their push's ack"},
          {"fanout.catchup", metric_unit::count, "changes from before a subscriber's first connect"},
          {"fanout.frames", metric_unit::count, "fresh frames received"},
          {"ws.connect", metric_unit::time, "connect and WebSocket handshake"},
          {"ws.connected", metric_unit::gauge, "connected subscribers"},
          {"ws.dropped", metric_unit::count, "established connections lost (server close, read error, idle)"},
          {"ws.dropped.bystanders", metric_unit::count,
           "connections lost on servers no fault touched at the time (after the run)"}};
}

}  // namespace

model_kind fanout_kind() {
  model_kind k;
  k.info.name = "fanout";
  k.info.doc = "WebSocket subscribers over streams; each change matched to its push";
  k.info.fields = keys();
  k.info.metrics = metrics();
  k.info.progress_latency = "fanout.delivery";
  k.info.peak_requests = [](const nlohmann::json& l, double) {
    const double pushes = l.contains("rate") ? rate_value(l["rate"]) : 0;
    return pushes + pushes * l.value("subscribers", 1) / std::max(1, l.value("streams", 1));
  };
  k.info.check = [](const nlohmann::json& l, const reference_context& ctx, const std::string& p, spec::errors& out) {
    if (ctx.doc && ctx.doc->contains("target"))
      loadgen::check_profile_use((*ctx.doc)["target"], l, p, {.records = true, .ws = true}, out);
  };
  k.info.parse = [](const load_entry& e, const std::string& where) -> std::shared_ptr<const load_settings> {
    auto s = std::make_shared<fanout_settings>();
    s->c = loadgen::fanout_settings_from(e.name, e.fields, phases_of(e), where);
    return s;
  };
  k.build = [](const load_entry& e, const load_context& ctx) -> std::unique_ptr<load_instance> {
    loadgen::fanout_config c = settings_of<fanout_settings>(e).c;
    loadgen::bind_fanout(c, *ctx.target, ctx.http_base, ctx.ws_base, ctx.run_tag, ctx.seed, true);
    c.on_event = ctx.on_event;
    return std::make_unique<fanout_load>(c);
  };
  k.describe = [](const load_entry&, const plan_context&) { return std::string(); };
  return k;
}

}  // namespace syncstorm::engine::models
