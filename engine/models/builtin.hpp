// The built-in load models of DESIGN §5, one file each in this folder. Each file defines its
// model_kind (keys, defaults, typed settings, metrics, checks, factory, dry-run lines);
// register_builtin_models registers them all (engine::register_builtins calls it).
#pragma once

#include "engine/registry.hpp"
#include "loadgen/arrivals.hpp"

#include <stdexcept>
#include <vector>

namespace syncstorm::engine::models {

model_kind http_kind();
model_kind terminal_kind();
model_kind offline_kind();
model_kind bootstrap_kind();
model_kind fanout_kind();

void register_builtin_models();

// loadgen's phase list from the scenario's.
std::vector<loadgen::phase_spec> phases_of(const load_entry& e);
// An entry's typed settings as the model that parsed them; throws on a model mismatch (a bug).
template <typename T>
const T& settings_of(const load_entry& e) {
  auto* p = dynamic_cast<const T*>(e.settings.get());
  if (!p) throw std::logic_error("load " + e.name + ": its settings were not parsed by its model " + e.model);
  return *p;
}

}  // namespace syncstorm::engine::models
