// What the network kinds (latency, jitter, bandwidth, reset, blackhole, http_error) share: the
// path and direction keys, where the fault can act (the lab's paths, the run's proxy, a
// kubernetes selector), the settings parse and the prepare (injectors/net_faults).
#include "injectors/kinds/builtin.hpp"

namespace syncstorm::injectors::kinds {

node_ptr path_node() {
  return enumeration(
      "which path the fault proxy acts on: the lab's clients-lb or pods-db, or clients-endpoints (the run's proxy in front of target.endpoints, with target.proxy)",
      {"clients-lb", "pods-db", "clients-endpoints"});
}

node_ptr direction_node() {
  return enumeration("up: toward the server; down: toward the client", {"up", "down", "both"});
}

fault_kind network_kind(std::string name, std::string doc, std::vector<field> fields, net_action action,
                        reference_check check) {
  fault_kind k = basic_kind(std::move(name), std::move(doc), std::move(fields), false);
  const std::string kind = k.info.name;
  k.info.check = [kind, check](const nlohmann::json& f, const reference_context& ctx, const std::string& p,
                               spec::errors& out) {
    const nlohmann::json tgt = f.value("target", nlohmann::json::object());
    if (tgt.contains("selector")) return;
    // Where the fault proxy acts: the lab's paths, or the run's proxy.
    const std::string path = str_or(f, "path");
    if ((path == "clients-lb" || path == "pods-db") && !ctx.lab) {
      out.push_back(p + ".path: found " + nlohmann::json(path).dump() + " without target.lab; expected " +
                    (ctx.proxied ? "\"clients-endpoints\" (the run's proxy in front of target.endpoints)"
                                 : "a lab target for the lab's paths"));
    } else if (path == "clients-endpoints" && !ctx.proxied) {
      out.push_back(
          p +
          ".path: found \"clients-endpoints\" without target.proxy; expected target.proxy (the run's proxy in front of target.endpoints)");
    } else if (path.empty() && !ctx.lab && !ctx.proxied) {
      out.push_back(
          p + ": found a " + kind +
          " fault on target.endpoints without target.proxy; expected target.proxy (the run puts its fault proxy in front of the endpoints), a lab target or a kubernetes selector");
    }
    if (check) check(f, ctx, p, out);
  };
  k.info.parse = [action](const fault_entry& f, const std::string&) { return parse_network(f, action); };
  k.prepare = network_fault;
  return k;
}

}  // namespace syncstorm::injectors::kinds
