// `blackhole` (DESIGN §6): drop everything on a path (the fault proxy, or Chaos Mesh loss on a
// selector target).
#include "injectors/kinds/builtin.hpp"

namespace syncstorm::injectors::kinds {

fault_kind blackhole_kind() {
  return network_kind("blackhole", "drop everything on a path",
                      {opt("path", path_node()), opt("direction", direction_node())}, net_action::loss);
}

}  // namespace syncstorm::injectors::kinds
