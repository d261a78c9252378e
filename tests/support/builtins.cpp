// Linked into every test executable: the built-in load models and fault kinds are registered
// before any test runs, as the syncstorm CLI's main does (engine::register_builtins).
#include "engine/registry.hpp"

namespace {

[[maybe_unused]] const bool registered = [] {
  syncstorm::engine::register_builtins();
  return true;
}();

}  // namespace
