// `latency` (DESIGN §6): added delay on a path, through the fault proxy (or Chaos Mesh delay on a
// selector target).
#include "injectors/kinds/builtin.hpp"

namespace syncstorm::injectors::kinds {

fault_kind latency_kind() {
  return network_kind(
      "latency", "added delay on a path",
      {opt("path", path_node()), opt("direction", direction_node()), req("latency", duration("added delay")),
       opt("spread", duration("uniform ± spread around the delay"))},
      net_action::delay);
}

}  // namespace syncstorm::injectors::kinds
