// `reset` (DESIGN §6): TCP resets on a share of the connections of a path (the fault proxy).
#include "injectors/kinds/builtin.hpp"

namespace syncstorm::injectors::kinds {

fault_kind reset_kind() {
  return network_kind(
      "reset", "TCP resets on a share of connections",
      {opt("path", path_node()), opt("direction", direction_node()), opt("percent", percent("share of connections"))},
      net_action::reset);
}

}  // namespace syncstorm::injectors::kinds
