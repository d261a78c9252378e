// A load model that only the tests know: `pulse` ticks every `every` on worker 0 and records
// pulse.tick; while the file `<watch>` exists it also counts pulse.seen. It lives in this file
// alone (keys, settings, metrics, factory, registration) and is registered from here, with no
// edit anywhere in the engine: the proof that a model is one file.
#include "engine/registry.hpp"
#include "loadgen/detail/task_group.hpp"
#include "loadgen/workers.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <atomic>
#include <filesystem>

namespace syncstorm::tests {
namespace {

using namespace spec;

struct pulse_settings final : load_settings {
  std::int64_t every_us = 50'000;
  std::string watch;
};

class pulse_model final : public loadgen::load_model {
 public:
  pulse_model(std::string name, pulse_settings s) : name_(std::move(name)), s_(std::move(s)) {}
  std::string_view name() const override { return name_; }
  void start(loadgen::worker& w) override {
    if (w.index() != 0) return;
    w.tasks().spawn(tick(w));
  }
  void stop() override { stopped_ = true; }

 private:
  net::awaitable<void> tick(loadgen::worker& w) {
    net::steady_timer timer(w.io());
    auto& ticks = w.metrics().metric("pulse.tick@" + name_);
    auto& seen = w.metrics().metric("pulse.seen@" + name_);
    while (!stopped_) {
      timer.expires_after(std::chrono::microseconds(s_.every_us));
      auto [ec] = co_await timer.async_wait(net::as_tuple(net::use_awaitable));
      if (ec) co_return;
      ticks.record(w.now_us(), 1000);
      std::error_code fe;
      if (!s_.watch.empty() && std::filesystem::exists(s_.watch, fe)) seen.add(w.now_us());
    }
  }
  std::string name_;
  pulse_settings s_;
  std::atomic<bool> stopped_{false};
};

class pulse_load final : public engine::load_instance {
 public:
  pulse_load(const std::string& name, const pulse_settings& s) : model_(name, s) {}
  loadgen::load_model& model() override { return model_; }

 private:
  pulse_model model_;
};

engine::model_kind pulse_kind() {
  engine::model_kind k;
  k.info.name = "pulse";
  k.info.doc = "a tick on worker 0 (tests only)";
  k.info.fields = {opt("every", duration("tick period")),
                   opt("watch", spec::string("a file whose presence pulse.seen counts"))};
  k.info.metrics = {{"pulse.tick", metric_unit::time, "one tick"},
                    {"pulse.seen", metric_unit::count, "ticks that saw the watched file"}};
  k.info.progress_latency = "pulse.tick";
  k.info.parse = [](const load_entry& e, const std::string&) -> std::shared_ptr<const load_settings> {
    auto s = std::make_shared<pulse_settings>();
    if (e.fields.contains("every")) s->every_us = duration_us(e.fields["every"]);
    s->watch = e.fields.value("watch", "");
    return s;
  };
  k.build = [](const load_entry& e, const engine::load_context&) -> std::unique_ptr<engine::load_instance> {
    return std::make_unique<pulse_load>(e.name, dynamic_cast<const pulse_settings&>(*e.settings));
  };
  k.describe = [](const load_entry& e, const engine::plan_context&) { return "  load " + e.name + ": pulse\n"; };
  return k;
}

const engine::model_registrar registered{pulse_kind()};

}  // namespace
}  // namespace syncstorm::tests
