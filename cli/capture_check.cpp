// Registers the capture's environment checks (CAP_NET_RAW, interfaces, BPF filter) with the
// scenario validator, so `validate` and `run` refuse a capture this process cannot do (exit 2,
// nothing ran). Runs at static initialisation, before main, single-threaded.
#include "capture/capture.hpp"
#include "core/scenario.hpp"

namespace syncstorm::cli {
namespace {

[[maybe_unused]] const bool capture_checks_registered = [] {
  scenario_registry::instance().add_environment_check(
      [](const json& doc) -> spec::errors { return capture::environment_problems(doc); });
  return true;
}();

}  // namespace
}  // namespace syncstorm::cli
