// The run's target stage (DESIGN §9 `target`): an endpoints target gets a TCP preflight; a lab
// is started for the run (and removed after it unless `keep`) or, with target.lab.id, attached
// to (neither started nor stopped); target.proxy puts the run's own fault proxy in front of the
// endpoints, recorded in the ledger first. The stage owns what it started: its destructor stops
// the proxy and takes a started lab down if the run did not. Controller thread only.
#pragma once

#include "core/scenario.hpp"
#include "engine/events.hpp"

#include <nlohmann/json.hpp>

#include <memory>
#include <string>

namespace syncstorm::lab {
class lab;
}
namespace syncstorm::injectors {
class run_proxy;
}

namespace syncstorm::engine {

class target_stage {
 public:
  // `s` and `events` must outlive the stage.
  target_stage(const scenario& s, std::string run_dir, event_log& events);
  ~target_stage();
  target_stage(const target_stage&) = delete;
  target_stage& operator=(const target_stage&) = delete;

  // Preflight, lab, proxy; the proxy only when `proceed()` still holds after the lab (no
  // signal). Returns an error line (a runtime error, exit 3) or empty.
  std::string open(const std::function<bool()>& proceed);

  // The target as the models reach it (the proxy's URLs in place of the endpoints').
  const nlohmann::json& model_target() const { return model_target_; }
  lab::lab* lab() const { return lab_.get(); }
  const std::string& http_base() const { return http_base_; }  // the lab's LB; empty for endpoints
  std::string ws_base() const;
  injectors::run_proxy* proxy() const { return proxy_.get(); }
  bool ledger_started() const { return ledger_started_; }

  // Stops the run's proxy through the ledger and ends the ledger. Error line or empty.
  std::string stop_proxy();
  // The lab's events since the run attached, placed on the run's axis (`start`: its origin).
  nlohmann::json lab_events(run_clock::time_point start) const;
  // Takes a started lab down unless kept. Error line or empty.
  std::string close_lab();

 private:
  std::string preflight_endpoints();
  std::string attach_lab();
  std::string start_lab();
  std::string start_proxy();

  const scenario& s_;
  std::string run_dir_;
  event_log& events_;
  nlohmann::json model_target_;
  std::unique_ptr<lab::lab> lab_;
  std::string http_base_;
  std::int64_t attached_mono_us_ = 0;  // target.lab.id: when the run attached (older lab events are not its)
  bool lab_closed_ = false;
  std::unique_ptr<injectors::run_proxy> proxy_;
  bool ledger_started_ = false;
};

}  // namespace syncstorm::engine
