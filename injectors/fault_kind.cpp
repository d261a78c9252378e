// See fault_kind.hpp.
#include "injectors/fault_kind.hpp"

#include <map>

namespace syncstorm::injectors {
namespace {

std::map<std::string, fault_kind>& registered() {
  static std::map<std::string, fault_kind> m;
  return m;
}

}  // namespace

void register_fault_kind(fault_kind kind) {
  kind.info.available = true;
  scenario_registry::instance().add_fault_kind(kind.info);
  std::string name = kind.info.name;
  registered()[name] = std::move(kind);
}

const fault_kind* find_fault_kind(const std::string& name) {
  auto it = registered().find(name);
  return it == registered().end() ? nullptr : &it->second;
}

std::shared_ptr<const fault_settings> settings_or_parse(const fault_entry& f) {
  if (f.settings) return f.settings;
  const fault_kind* k = find_fault_kind(f.kind);
  return k && k->info.parse ? k->info.parse(f, "scenario.faults[]") : nullptr;
}

}  // namespace syncstorm::injectors
