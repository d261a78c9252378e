// The fault kinds a run can inject, one registration per kind. A kind's file
// (injectors/kinds/<kind>.cpp) declares its keys, typed settings (parsed once when the scenario
// loads), the checks the shape cannot state, whether it is a single blow, and how an occurrence
// is prepared (targets resolved, apply/undo/verify steps); register_fault_kind hands the
// contract part to the scenario registry, so validation, `syncstorm schema` and loading know it.
// Nothing else compares fault-kind names: prepare_fault and the engine ask the registry.
//
// Threading: registration happens before any run (static initialisation or
// register_builtin_fault_kinds), single-threaded; read-only afterwards.
#pragma once

#include "core/scenario.hpp"
#include "injectors/faults.hpp"

#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace syncstorm::injectors {

struct fault_kind {
  fault_kind_info info;  // the contract: keys, needs_target, instant, check, parse (core/scenario.hpp)
  // Fills p.targets, apply, undo, verify, heals, irreversible, target_keys for one occurrence;
  // `f.settings` holds this kind's parsed settings. Throws fault_error with one line.
  std::function<void(prepared_fault& p, const fault_entry& f, const fault_env& env)> prepare;
  // Keys beyond the target's own that a run of this fault touches (a local disk_fill path), for
  // the refusal to start over faults another run left: appended to `keys`.
  std::function<void(const fault_entry& f, std::vector<std::string>& keys)> target_keys;
};

void register_fault_kind(fault_kind kind);
const fault_kind* find_fault_kind(const std::string& name);

// The built-in kinds of DESIGN §6 (injectors/kinds/). Idempotent.
void register_builtin_fault_kinds();

// A registration from a file's static initialiser: `const fault_kind_registrar r{fault_kind{…}};`.
struct fault_kind_registrar {
  explicit fault_kind_registrar(fault_kind kind) { register_fault_kind(std::move(kind)); }
};

// A fault's settings as its kind parsed them when the scenario loaded, or parsed now when the
// entry was built by hand without them (as tests do); null for a kind without settings.
std::shared_ptr<const fault_settings> settings_or_parse(const fault_entry& f);

// settings_or_parse as the kind's own type. Throws std::logic_error on a kind mismatch (a bug).
template <typename T>
std::shared_ptr<const T> settings_of(const fault_entry& f) {
  auto t = std::dynamic_pointer_cast<const T>(settings_or_parse(f));
  if (!t) throw std::logic_error("fault " + f.name + ": its settings were not parsed by its kind " + f.kind);
  return t;
}

}  // namespace syncstorm::injectors
