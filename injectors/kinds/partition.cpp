// `partition` (DESIGN §6): cut traffic between groups as a directed graph: iptables rules on the
// receiving side in the lab's namespaces (a proxy blackhole where a path has no namespace), or a
// Chaos Mesh NetworkChaos partition on a selector target (injectors/net_faults).
#include "injectors/kinds/builtin.hpp"

namespace syncstorm::injectors::kinds {

namespace {

node_ptr groups_node(std::string doc) {
  return choice(
      doc, {spec::string("a group: pods, db, lb, clients, or a pod name"), array("groups", spec::string("a group"), 1)},
      "a group name or an array of them");
}

}  // namespace

fault_kind partition_kind() {
  fault_kind k = basic_kind("partition", "cut traffic between groups (directed)",
                            {req("from", groups_node("sending side")), req("to", groups_node("receiving side")),
                             opt("symmetric", boolean("cut both directions (default true)"))},
                            false);
  k.info.check = [](const nlohmann::json& f, const reference_context& ctx, const std::string& p, spec::errors& out) {
    const nlohmann::json tgt = f.value("target", nlohmann::json::object());
    if (!tgt.contains("selector") && !ctx.lab)
      out.push_back(
          p +
          ".kind: found \"partition\" without target.lab; expected a lab target (iptables on the lab's namespaces) or a kubernetes selector");
  };
  k.info.parse = [](const fault_entry& f, const std::string&) { return parse_network(f, net_action::partition); };
  k.prepare = network_fault;
  return k;
}

}  // namespace syncstorm::injectors::kinds
