// `bandwidth` (DESIGN §6): a limit on a path: the fault proxy's token bucket, or the kernel's
// htb shaper on the pods' interfaces (`via: tc`, pods-db of a lab with namespaces).
#include "injectors/kinds/builtin.hpp"

namespace syncstorm::injectors::kinds {

fault_kind bandwidth_kind() {
  return network_kind(
      "bandwidth", "a token-bucket bandwidth limit on a path",
      {opt("path", path_node()), opt("direction", direction_node()), req("rate", bandwidth("the limit")),
       opt("via",
           enumeration(
               "what enforces it: the fault proxy's token bucket (default), or the kernel (tc htb on the pods' interfaces, pods-db on a lab with namespaces)",
               {"proxy", "tc"}))},
      net_action::bandwidth,
      [](const nlohmann::json& f, const reference_context& ctx, const std::string& p, spec::errors& out) {
        const std::string path = str_or(f, "path");
        if (str_or(f, "via") == "tc" && (path != "pods-db" || !ctx.lab))
          out.push_back(
              p + ".via: found \"tc\" on " +
              (path.empty() ? std::string("the default path") : nlohmann::json(path).dump()) +
              (ctx.lab ? "" : " without target.lab") +
              "; expected path \"pods-db\" of a lab (the kernel shaper sits on the pods' interfaces), or via \"proxy\"");
      });
}

}  // namespace syncstorm::injectors::kinds
