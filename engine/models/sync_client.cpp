// See sync_client.hpp.
#include "engine/models/sync_client.hpp"

#include "core/units.hpp"
#include "injectors/client_control.hpp"
#include "loadgen/target_access.hpp"

#include <sstream>

namespace syncstorm::engine::models {
namespace {

using namespace spec;

node_ptr retry_node() {
  return object("retry with exponential backoff and full jitter",
                {opt("base", duration("first backoff")), opt("max", duration("largest backoff")),
                 opt("limit", integer("attempts before the batch is parked", 0)),
                 opt("park_for", duration("how long a parked batch waits before it is retried"))});
}

node_ptr batch_node() {
  return object("the batcher", {opt("max_ops", integer("ops per push", 1, 100000)),
                                opt("max_wait", duration("longest an op waits for its batch"))});
}

// The terminals of one sync-client load as the client faults see them: "<load>/<client>".
class terminal_clients final : public injectors::client_control {
 public:
  explicit terminal_clients(loadgen::terminal_model& m) : m_(m) {}
  std::vector<std::string> clients() const override {
    std::vector<std::string> out;
    for (std::size_t i = 0; i < m_.terminals(); ++i) out.push_back(std::string(m_.name()) + "/" + m_.client(i));
    return out;
  }
  void crash(const std::string& client) override { m_.crash(find(client)); }
  void corrupt_journal(const std::string& client, int bytes, std::uint64_t) override {
    m_.journal_corrupt(find(client), static_cast<std::size_t>(bytes));
  }
  bool recovered(const std::string& client) const override { return m_.settled(find(client)); }
  std::string journal_path(const std::string& client) const override { return m_.journal_path(find(client)); }

 private:
  std::size_t find(const std::string& client) const {
    for (std::size_t i = 0; i < m_.terminals(); ++i)
      if (std::string(m_.name()) + "/" + m_.client(i) == client) return i;
    throw std::invalid_argument("no terminal " + client);
  }
  loadgen::terminal_model& m_;
};

class sync_client_load final : public load_instance {
 public:
  explicit sync_client_load(const loadgen::terminal_config& c)
      : model_(loadgen::make_terminal_model(c)), drain_us_(c.drain_us), clients_(*model_) {}
  loadgen::load_model& model() override { return *model_; }
  std::int64_t drain_us() const override { return drain_us_; }
  bool audited() const override { return true; }
  void collect(audit_input& in) const override { model_->collect(in.ops); }
  injectors::client_control* clients() override { return &clients_; }

 private:
  std::unique_ptr<loadgen::terminal_model> model_;
  std::int64_t drain_us_;
  terminal_clients clients_;
};

}  // namespace

std::vector<field> sync_client_fields() {
  return {
      opt("ops", object("op mix in percent", {opt("append", percent("sales")), opt("add", percent("stock deltas")),
                                              opt("set", percent("value updates"))})),
      opt("keys", integer("counter/value keys per store", 1)),
      opt("batch", batch_node()),
      opt("timeout", duration("per-push timeout")),
      opt("retry", retry_node()),
      opt("breaker", object("circuit breaker", {opt("threshold", integer("failures that open it", 1)),
                                                opt("open_for", duration("time open before half-open")),
                                                opt("half_open_probes", integer("probes while half-open", 1))})),
      opt("conflict", enumeration("conflict policy for set ops", {"lww", "queue"})),
      opt("journal", object("local journal", {opt("fsync", enumeration("fsync policy", {"always", "batch", "never"})),
                                              opt("dir", spec::string("journal directory"))})),
      opt("drain", duration("how long stopping keeps pushing queued ops (default 30s)"))};
}

std::vector<metric_info> sync_client_metrics() {
  return {{"push.latency", metric_unit::time, "push round trip"},
          {"push.e2e", metric_unit::time, "created to acked"},
          {"local.write", metric_unit::time, "journal write"},
          {"local.fsync", metric_unit::time, "journal fsync before a push (fsync batch)"},
          {"queue.depth", metric_unit::gauge, "ops queued locally"},
          {"conflicts", metric_unit::count, "set conflicts"},
          {"push.requests", metric_unit::count, "push attempts (ok and errors)"},
          {"push.rejected", metric_unit::count, "ops a per-op result refused"},
          {"push.parked", metric_unit::count, "batches parked after the retry limit"},
          {"breaker.open", metric_unit::count, "circuit breaker openings"},
          {"journal.corrupt", metric_unit::count, "journal corruptions detected"}};
}

void sync_client_check(const nlohmann::json& entry, const reference_context& ctx, const std::string& path,
                       spec::errors& out) {
  if (ctx.doc && ctx.doc->contains("target"))
    loadgen::check_profile_use((*ctx.doc)["target"], entry, path, {.writes_ops = true}, out);
}

bool sync_client_needs_rate(const nlohmann::json& entry) { return !entry.contains("rate"); }

std::unique_ptr<load_instance> build_sync_client(const load_entry& e, const load_context& ctx) {
  loadgen::terminal_config c = settings_of<sync_client_settings>(e).c;
  loadgen::bind_terminal(c, *ctx.target, ctx.http_base, ctx.run_dir, ctx.run_tag, ctx.seed, true);
  c.on_event = ctx.on_event;
  return std::make_unique<sync_client_load>(c);
}

loadgen::terminal_config planned_sync_client(const load_entry& e, const plan_context& ctx) {
  loadgen::terminal_config c = settings_of<sync_client_settings>(e).c;
  loadgen::bind_terminal(c, ctx.s->target, ctx.http_base, "<run dir>", "<run tag>", ctx.s->seed, false);
  return c;
}

std::string describe_sync_client(const loadgen::terminal_config& c, const std::string& name) {
  std::ostringstream out;
  out << "  load " << name << ": " << c.stores << " stores x " << c.terminals_per_store << " terminals, mix append "
      << c.pct_append << "% add " << c.pct_add << "% set " << c.pct_set << "%, "
      << (c.periodic ? "periodic" : "continuous") << " sync to " << c.url << c.profile.push_path << ", timeout "
      << units::format_duration(c.timeout_us) << ", drain " << units::format_duration(c.drain_us) << ", journals in "
      << c.journal_dir << "\n";
  return out.str();
}

}  // namespace syncstorm::engine::models
