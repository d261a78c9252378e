// See builtin.hpp.
#include "engine/models/builtin.hpp"

namespace syncstorm::engine::models {

std::vector<loadgen::phase_spec> phases_of(const load_entry& e) {
  std::vector<loadgen::phase_spec> out;
  for (const auto& ph : e.phases) out.push_back({ph.name, ph.for_us, ph.rate, ph.to});
  return out;
}

void register_builtin_models() {
  for (auto make : {http_kind, terminal_kind, offline_kind, bootstrap_kind, fanout_kind}) register_model(make());
}

}  // namespace syncstorm::engine::models
