// `jitter` (DESIGN §6): random delay on a path, through the fault proxy (or Chaos Mesh delay
// with jitter on a selector target).
#include "injectors/kinds/builtin.hpp"

namespace syncstorm::injectors::kinds {

fault_kind jitter_kind() {
  return network_kind("jitter", "random delay on a path",
                      {opt("path", path_node()), opt("direction", direction_node()),
                       opt("latency", duration("base delay")), req("spread", duration("uniform ± spread"))},
                      net_action::delay);
}

}  // namespace syncstorm::injectors::kinds
