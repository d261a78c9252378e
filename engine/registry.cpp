// See registry.hpp.
#include "engine/registry.hpp"

#include "engine/models/builtin.hpp"
#include "injectors/fault_kind.hpp"

#include <map>

namespace syncstorm::engine {
namespace {

std::map<std::string, model_kind>& registered() {
  static std::map<std::string, model_kind> m;
  return m;
}

}  // namespace

void register_model(model_kind kind) {
  kind.info.available = true;
  scenario_registry::instance().add_model(kind.info);
  std::string name = kind.info.name;
  registered()[name] = std::move(kind);
}

const model_kind* find_model(const std::string& name) {
  auto it = registered().find(name);
  return it == registered().end() ? nullptr : &it->second;
}

void register_builtins() {
  static const bool done = [] {
    models::register_builtin_models();
    injectors::register_builtin_fault_kinds();
    return true;
  }();
  (void)done;
}

}  // namespace syncstorm::engine
