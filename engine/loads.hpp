// The loads stage: every load entry built through the model registry (engine/registry.hpp)
// against the run's target, and what the engine asks of them as a whole: the models for the
// pool, the longest drain, the sockets they will hold, the clients the client faults act on,
// the op records for the audit and the fanout judgements. Controller thread only; collect and
// delivery after the pool stopped.
#pragma once

#include "engine/registry.hpp"
#include "injectors/client_control.hpp"

#include <memory>
#include <string>
#include <vector>

namespace syncstorm::engine {

class load_stage {
 public:
  // Builds every entry of `s`; throws std::exception with one line on a setup failure or a
  // model this build does not run. `base` carries the target, run and event hook; each entry
  // gets its own seed (the scenario's + its index) and path.
  void build(const scenario& s, const load_context& base);

  std::vector<loadgen::load_model*> models() const;
  std::int64_t drain_us() const;
  std::size_t planned_connections(std::size_t threads) const;
  bool audited() const;
  // The client faults' view of every load's clients; null when no load has clients.
  injectors::client_control* clients();
  void collect(audit_input& in) const;
  delivery_totals delivery() const;

 private:
  class all_clients;
  std::vector<std::unique_ptr<load_instance>> loads_;
  std::shared_ptr<all_clients> clients_;
};

}  // namespace syncstorm::engine
