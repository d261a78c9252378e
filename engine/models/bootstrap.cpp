// The `bootstrap` model (DESIGN §5): new terminals pulling a stream from zero; time to a usable
// state (loadgen/bootstrap_model). Its keys, settings and factory.
#include "engine/models/builtin.hpp"

#include "loadgen/bootstrap_model.hpp"
#include "loadgen/target_access.hpp"

namespace syncstorm::engine::models {
namespace {

using namespace spec;

struct bootstrap_settings final : load_settings {
  loadgen::bootstrap_config c;  // the entry's keys with defaults; the target and run bound at build
};

class bootstrap_load final : public load_instance {
 public:
  explicit bootstrap_load(const loadgen::bootstrap_config& c) : model_(loadgen::make_bootstrap_model(c)) {}
  loadgen::load_model& model() override { return *model_; }
  bool audited() const override { return true; }
  void collect(audit_input& in) const override { model_->collect(in.ops); }

 private:
  std::unique_ptr<loadgen::bootstrap_model> model_;
};

}  // namespace

model_kind bootstrap_kind() {
  model_kind k;
  k.info.name = "bootstrap";
  k.info.doc = "new terminals pulling a stream from zero";
  k.info.fields = {req("clients", integer("new terminals", 1)),
                   opt("stream", spec::string("the stream to pull (default: one this run seeds)")),
                   opt("changes", integer("changes seeded into the stream first", 0)),
                   opt("page", integer("page size", 1, 100000)),
                   opt("seed_batch", integer("ops per seeding push", 1, 100000)),
                   opt("timeout", duration("per-request timeout")),
                   opt("retries", integer("consecutive failures before a client gives up", 0, 1000))};
  k.info.metrics = {{"bootstrap.time", metric_unit::time, "time to a usable state"},
                    {"pull.latency", metric_unit::time, "one page"},
                    {"bootstrap.changes", metric_unit::count, "changes pulled"},
                    {"bootstrap.incomplete", metric_unit::count, "clients that pulled fewer changes than seeded"}};
  k.info.progress_latency = "bootstrap.time";
  // A ceiling: pages of a pull back to back.
  k.info.peak_requests = [](const nlohmann::json& l, double) { return 50.0 * l.value("clients", 1); };
  k.info.check = [](const nlohmann::json& l, const reference_context& ctx, const std::string& p, spec::errors& out) {
    if (ctx.doc && ctx.doc->contains("target"))
      loadgen::check_profile_use((*ctx.doc)["target"], l, p, {.records = true}, out);
  };
  k.info.parse = [](const load_entry& e, const std::string& where) -> std::shared_ptr<const load_settings> {
    auto s = std::make_shared<bootstrap_settings>();
    s->c = loadgen::bootstrap_settings_from(e.name, e.fields, phases_of(e), where);
    return s;
  };
  k.build = [](const load_entry& e, const load_context& ctx) -> std::unique_ptr<load_instance> {
    loadgen::bootstrap_config c = settings_of<bootstrap_settings>(e).c;
    loadgen::bind_bootstrap(c, *ctx.target, ctx.http_base, ctx.run_tag, ctx.seed, true);
    return std::make_unique<bootstrap_load>(c);
  };
  k.describe = [](const load_entry&, const plan_context&) { return std::string(); };
  return k;
}

}  // namespace syncstorm::engine::models
