// Network fault kinds and their steps. See net_faults.hpp.
#include "injectors/net_faults.hpp"

#include "injectors/fault_kind.hpp"

#include "core/units.hpp"
#include "injectors/command.hpp"
#include "injectors/files.hpp"
#include "labstack/lab.hpp"
#include "proxy/relay.hpp"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <functional>
#include <fstream>
#include <mutex>
#include <set>
#include <sstream>

namespace syncstorm::injectors {
namespace {

using json = nlohmann::json;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

std::string sanitize(const std::string& s) {
  std::string o;
  for (char c : s) o += (std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-') ? c : '_';
  return o;
}

// DNS-1123 label: lower case alphanumerics and '-', at most 63, alphanumeric at both ends.
std::string dns_name(const std::string& s) {
  std::string o;
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    if (std::isalnum(u))
      o += static_cast<char>(std::tolower(u));
    else if (!o.empty() && o.back() != '-')
      o += '-';
  }
  if (o.size() > 63) o = o.substr(0, 63);
  while (!o.empty() && o.back() == '-') o.pop_back();
  return o.empty() ? "syncstorm" : o;
}

// ---- proxy faults --------------------------------------------------------------------------------

std::vector<std::string> relay_paths(const std::string& path, const network_settings& x) {
  if (path == "pods-db") return {"db"};
  if (x.action == net_action::http_error) return {"lb_http"};
  return {"lb_http", "lb_ws"};
}

// The relay's fault: its kind is the scenario's (the relay knows the same names).
json proxy_spec(const fault_entry& f, const network_settings& x, std::uint64_t seed) {
  json s = {{"kind", f.kind},
            {"direction", x.action == net_action::http_error ? std::string("up") : x.direction},
            {"seed", seed}};
  if (x.latency_us) s["latency_us"] = *x.latency_us;
  if (x.spread_us) s["spread_us"] = *x.spread_us;
  if (x.rate_bps) s["rate_bps"] = *x.rate_bps;
  if (x.percent) s["percent"] = *x.percent;
  if (x.status) s["status"] = *x.status;
  return s;
}

// True when nothing listens on the unix socket (no file, or connection refused): the relay
// that owned it is gone, and so are its faults.
bool socket_gone(const std::string& path) {
  if (!fs::exists(path)) return true;
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::snprintf(a.sun_path, sizeof a.sun_path, "%s", path.c_str());
  bool refused =
      ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 && (errno == ECONNREFUSED || errno == ENOENT);
  ::close(fd);
  return refused;
}

json relay_request(const json& step, const json& req, std::string& error, bool& lab_gone) {
  lab_gone = false;
  if (step.contains("control")) {
    // The run's own proxy (target.proxy): its control socket is in the step.
    const std::string control = step["control"];
    try {
      return proxy::relay_control(control, req);
    } catch (const std::exception& e) {
      lab_gone = socket_gone(control);
      error = e.what();
      return nullptr;
    }
  }
  std::optional<lab::lab> l;
  try {
    l = lab::lab::attach(step.at("lab").get<std::string>());
  } catch (const std::exception& e) {
    lab_gone = true;
    error = e.what();
    return nullptr;
  }
  try {
    return proxy::relay_control(l->state().at("relay").at("control").get<std::string>(), req);
  } catch (const std::exception& e) {
    error = e.what();
    return nullptr;
  }
}

std::string proxy_name(const json& step) {
  return step.contains("control") ? "fault proxy (the run's, in front of the endpoints)" : "fault proxy (lab relay)";
}

// ---- partition -------------------------------------------------------------------------------

struct lab_net {
  bool namespaces = false, planned = false;
  std::string gateway;
  std::vector<std::string> lb_sources;
  struct pod {
    std::string netns, address, veth_host;
  };
  std::map<std::string, pod> pods;
  int db_relay_port = 0;
};

lab_net lab_network(const lab_facts& facts) {
  lab_net n;
  if (facts.planned) {
    n.planned = true;
    n.namespaces = ::geteuid() == 0;
    n.gateway = "<bridge gateway>";
    n.lb_sources = {"<HAProxy source addresses>"};
    for (auto& p : facts.pods)
      n.pods[p] = {"ss-<id>-pod" + p.substr(p.find('-') + 1), "<" + p + " address>", "<veth of " + p + ">"};
    return n;
  }
  json net = lab::lab::attach(facts.id).state().value("network", json::object());
  n.namespaces = net.value("namespaces", false);
  n.gateway = net.value("gateway", "");
  for (auto& s : net.value("lb_sources", json::array())) n.lb_sources.push_back(s.get<std::string>());
  for (auto& p : net.value("pods", json::array()))
    n.pods[p.value("name", "")] = {p.value("netns", ""), p.value("address", ""), p.value("veth_host", "")};
  n.db_relay_port = lab::lab::attach(facts.id).state().value("ports", json::object()).value("db_relay", 0);
  return n;
}

std::vector<std::string> group_list(const json& v) {
  std::vector<std::string> out;
  if (v.is_string())
    out.push_back(v.get<std::string>());
  else
    for (auto& x : v) out.push_back(x.get<std::string>());
  return out;
}

std::vector<std::string> iptables_argv(const std::string& netns, const std::string& action, const std::string& chain,
                                       const std::vector<std::string>& rule) {
  std::vector<std::string> a;
  if (!netns.empty()) a = {"ip", "netns", "exec", netns};
  a.insert(a.end(), {"iptables", "-w", "5", action, chain});
  if (action == "-I") a.push_back("1");
  a.insert(a.end(), rule.begin(), rule.end());
  return a;
}

bool absent_output(const std::string& out) {
  return out.find("does a matching rule exist") != std::string::npos || out.find("Bad rule") != std::string::npos ||
         out.find("Cannot open network namespace") != std::string::npos ||
         out.find("No such file") != std::string::npos;
}

struct partition_plan {
  std::vector<json> rules;                                  // {netns, chain, rule[]}
  std::map<std::string, std::set<std::string>> blackholes;  // relay path → directions
  std::vector<std::string> edges;                           // "pod-0→db" as shown in targets
};

void plan_edge(partition_plan& pl, const lab_net& n, const std::string& from, const std::string& to, bool all_pods_from,
               bool all_pods_to, const std::string& tag) {
  auto is_pod = [&](const std::string& g) { return n.pods.count(g) > 0; };
  auto drop = [&](const std::string& netns, const std::string& chain, std::vector<std::string> match) {
    match.insert(match.end(), {"-m", "comment", "--comment", tag, "-j", "DROP"});
    pl.rules.push_back({{"netns", netns}, {"chain", chain}, {"rule", match}});
  };
  const bool root = ::geteuid() == 0;
  const std::string edge = from + "→" + to;
  pl.edges.push_back(edge);
  if (from == "clients" && to == "lb") {
    pl.blackholes["lb_http"].insert("up");
    pl.blackholes["lb_ws"].insert("up");
    return;
  }
  if (from == "lb" && to == "clients") {
    pl.blackholes["lb_http"].insert("down");
    pl.blackholes["lb_ws"].insert("down");
    return;
  }
  if ((is_pod(from) && to == "db") || (from == "db" && is_pod(to))) {
    const std::string pod = is_pod(from) ? from : to;
    if (n.namespaces) {
      if (is_pod(from))
        drop("", "INPUT", {"-s", n.pods.at(pod).address, "-d", n.gateway});
      else
        drop(n.pods.at(pod).netns, "INPUT", {"-s", n.gateway});
      return;
    }
    // Loopback lab: every pod reaches the DB through the one db relay path, so the fallback
    // (a proxy blackhole) cuts all pods at once.
    if (!(is_pod(from) ? all_pods_from : all_pods_to))
      throw fault_error(
          "partition " + edge +
          ": the lab runs on loopback, where the fallback (a blackhole on the db path of the fault proxy) "
          "cuts every pod; found one pod; expected \"pods\" (or a lab with network namespaces: run as root)");
    pl.blackholes["db"].insert(is_pod(from) ? "up" : "down");
    return;
  }
  if ((from == "lb" && is_pod(to)) || (is_pod(from) && to == "lb")) {
    const std::string pod = is_pod(from) ? from : to;
    if (!root)
      throw fault_error("partition " + edge +
                        ": needs root for iptables (no proxy sits between HAProxy and the pods); found uid " +
                        std::to_string(::geteuid()));
    for (const auto& src : n.lb_sources) {
      if (from == "lb") {
        if (n.namespaces)
          drop(n.pods.at(pod).netns, "INPUT", {"-s", src});
        else
          drop("", "INPUT", {"-s", src, "-d", n.pods.at(pod).address});
      } else {
        drop("", "INPUT", {"-s", n.pods.at(pod).address, "-d", src});
      }
    }
    return;
  }
  if (is_pod(from) && is_pod(to)) {
    if (from == to) return;
    if (!root)
      throw fault_error("partition " + edge + ": needs root for iptables; found uid " + std::to_string(::geteuid()));
    if (n.namespaces) {
      drop(n.pods.at(to).netns, "INPUT", {"-s", n.pods.at(from).address});
      // Bridged traffic meets FORWARD too when br_netfilter is loaded.
      drop("", "FORWARD", {"-s", n.pods.at(from).address, "-d", n.pods.at(to).address});
    } else {
      drop("", "INPUT", {"-s", n.pods.at(from).address, "-d", n.pods.at(to).address});
    }
    return;
  }
  pl.edges.pop_back();
  throw fault_error("partition: found no traffic from " + from + " to " + to +
                    " in the lab; expected an edge among clients→lb, lb→pods, pods→db, pod→pod (or their reverse)");
}

void partition_fault(prepared_fault& p, const fault_entry& f, const fault_env& env) {
  if (!env.lab)
    throw fault_error("partition: found no lab in this run; expected target.lab (or a selector target for Chaos Mesh)");
  const lab_facts& facts = *env.lab;
  lab_net n = lab_network(facts);
  auto expand = [&](const std::vector<std::string>& groups, bool& all_pods, const std::string& key) {
    std::vector<std::string> out;
    all_pods = false;
    for (const auto& g : groups) {
      if (g == "pods") {
        all_pods = true;
        for (auto& [name, pod] : n.pods) out.push_back(name);
      } else if (g == "db" || g == "lb" || g == "clients" || n.pods.count(g)) {
        out.push_back(g);
      } else {
        throw fault_error("partition." + key + ": found \"" + g +
                          "\"; expected pods, db, lb, clients or a pod of the lab (pod-0 … pod-" +
                          std::to_string(n.pods.size() - 1) + ")");
      }
    }
    return out;
  };
  const auto x = settings_of<network_settings>(f);
  bool all_from = false, all_to = false;
  auto from = expand(group_list(x->from), all_from, "from");
  auto to = expand(group_list(x->to), all_to, "to");
  const bool symmetric = x->symmetric;
  const std::string tag = "syncstorm:" + env.run_tag;
  partition_plan pl;
  for (const auto& a : from)
    for (const auto& b : to) {
      plan_edge(pl, n, a, b, all_from, all_to, tag);
      if (symmetric) plan_edge(pl, n, b, a, all_to, all_from, tag);
    }
  p.target_keys = {"lab-" + env.lab->id};
  for (const auto& r : pl.rules) {
    json apply = r;
    apply["op"] = "iptables";
    json undo = r;
    undo["op"] = "iptables_delete";
    p.apply.push_back(apply);
    p.undo.push_back(undo);
  }
  for (const auto& [path, dirs] : pl.blackholes) {
    std::string dir = dirs.size() == 2 ? "both" : *dirs.begin();
    std::string id = env.run_tag + "/" + p.id;
    p.apply.push_back({{"op", "proxy_fault"},
                       {"lab", facts.id},
                       {"path", path},
                       {"id", id},
                       {"fault", {{"kind", "blackhole"}, {"direction", dir}}}});
    p.undo.push_back({{"op", "proxy_clear"}, {"lab", facts.id}, {"path", path}, {"id", id}});
  }
  // The undo list runs in full even when one step fails; deleting rules first, then clearing
  // blackholes, keeps no order dependency.
  p.targets.push_back({{"backend", "lab"},
                       {"name", "partition"},
                       {"lab", facts.id},
                       {"edges", pl.edges},
                       {"mechanism", pl.rules.empty()        ? "proxy blackhole"
                                     : pl.blackholes.empty() ? "iptables"
                                                             : "iptables + proxy blackhole"},
                       {"tag", tag}});
}

// ---- tc (kernel shaping) ------------------------------------------------------------------------

// `bandwidth` with "via": "tc" on pods-db: an htb qdisc (the kernel here has htb and tbf, no
// netem) whose one class holds the limit and whose u32 filter sends it only the DB traffic, so
// the pods' other traffic (HAProxy's requests and their answers) is untouched. Up (pods → db):
// each pod's eth0 inside its namespace, packets to the gateway's db relay port; down (db →
// pods): each pod's host-side veth, packets from that port. The root qdisc carries a handle
// derived from the occurrence, so the undo deletes only its own.
void tc_bandwidth_fault(prepared_fault& p, const fault_entry& f, const fault_env& env, const json& spec,
                        const std::string& id) {
  const lab_facts& facts = *env.lab;
  lab_net n = lab_network(facts);
  if (!n.planned && !n.namespaces)
    throw fault_error(
        "bandwidth.via: found \"tc\" on a loopback lab; expected a lab with network namespaces (run as root), or \"proxy\"");
  const double bps = spec.value("rate_bps", 0.0);
  const std::string rate = std::to_string(static_cast<std::uint64_t>(bps)) + "bit";
  // Burst: 10 ms of rate, at least 16 KiB (an MTU-sized packet must always fit).
  const std::string burst =
      std::to_string(std::max<std::uint64_t>(16384, static_cast<std::uint64_t>(bps / 8 / 100))) + "b";
  char handle[8];
  std::snprintf(handle, sizeof handle, "%x", static_cast<unsigned>(std::hash<std::string>{}(id) % 0xfff0 + 0x10));
  const std::string dir = settings_of<network_settings>(f)->direction;
  const std::string port = n.planned ? "<db relay port>" : std::to_string(n.db_relay_port);
  json shaped = json::array();
  for (const auto& [name, pod] : n.pods) {
    auto add = [&](const std::string& netns, const std::string& dev, const std::vector<std::string>& match) {
      json step = {{"netns", netns}, {"dev", dev},     {"handle", handle},
                   {"rate", rate},   {"burst", burst}, {"match", match}};
      json apply = step;
      apply["op"] = "tc_shape";
      json undo = {{"op", "tc_unshape"}, {"netns", netns}, {"dev", dev}, {"handle", handle}};
      p.apply.push_back(apply);
      p.undo.push_back(undo);
      shaped.push_back((netns.empty() ? "host " : netns + " ") + dev);
    };
    if (dir == "up" || dir == "both")
      add(pod.netns, "eth0", {"match", "ip", "dst", n.gateway + "/32", "match", "ip", "dport", port, "0xffff"});
    if (dir == "down" || dir == "both")
      add("", n.planned ? "<veth of " + name + ">" : pod.veth_host,
          {"match", "ip", "src", n.gateway + "/32", "match", "ip", "sport", port, "0xffff"});
  }
  p.target_keys = {"lab-" + facts.id};
  p.targets.push_back({{"backend", "lab"},
                       {"name", "pods-db"},
                       {"lab", facts.id},
                       {"mechanism", "tc htb"},
                       {"devices", shaped},
                       {"rate", rate}});
}

std::vector<std::string> in_netns(const std::string& netns, std::vector<std::string> argv) {
  if (netns.empty()) return argv;
  std::vector<std::string> a = {"ip", "netns", "exec", netns};
  a.insert(a.end(), argv.begin(), argv.end());
  return a;
}

std::vector<std::vector<std::string>> tc_shape_argvs(const json& s) {
  const std::string dev = s.at("dev"), h = s.at("handle"), netns = s.value("netns", "");
  std::vector<std::string> filter = {"tc",    "filter",   "add", "dev",  dev, "parent",
                                     h + ":", "protocol", "ip",  "prio", "1", "u32"};
  for (auto& m : s.at("match")) filter.push_back(m.get<std::string>());
  filter.insert(filter.end(), {"flowid", h + ":1"});
  return {in_netns(netns, {"tc", "qdisc", "add", "dev", dev, "root", "handle", h + ":", "htb", "default", "0"}),
          in_netns(netns, {"tc", "class", "add", "dev", dev, "parent", h + ":", "classid", h + ":1", "htb", "rate",
                           s.at("rate"), "ceil", s.at("rate"), "burst", s.at("burst")}),
          in_netns(netns, filter)};
}

// Whether `dev` has our root qdisc: "yes", "no", or "gone" (namespace or device gone).
std::string tc_has_root(const json& s, std::string& error) {
  auto r = run_command(in_netns(s.value("netns", ""), {"tc", "qdisc", "show", "dev", s.at("dev")}), 15s);
  if (!r.ok()) {
    if (r.output.find("Cannot find device") != std::string::npos || absent_output(r.output)) return "gone";
    error = r.error;
    return "error";
  }
  return r.output.find("qdisc htb " + s.at("handle").get<std::string>() + ": root") != std::string::npos ? "yes" : "no";
}

// ---- Chaos Mesh ----------------------------------------------------------------------------------

std::string yaml_str(const std::string& s) { return json(s).dump(); }  // a JSON string is a YAML string

std::string chaos_rate(double bps) {
  // NetworkChaos bandwidth.rate: a number with bps, kbps, mbps, gbps (bits per second).
  if (bps >= 1e9 && static_cast<std::uint64_t>(bps) % 1000000000 == 0)
    return std::to_string(static_cast<std::uint64_t>(bps / 1e9)) + "gbps";
  if (bps >= 1e6 && static_cast<std::uint64_t>(bps) % 1000000 == 0)
    return std::to_string(static_cast<std::uint64_t>(bps / 1e6)) + "mbps";
  if (bps >= 1e3 && static_cast<std::uint64_t>(bps) % 1000 == 0)
    return std::to_string(static_cast<std::uint64_t>(bps / 1e3)) + "kbps";
  return std::to_string(static_cast<std::uint64_t>(bps)) + "bps";
}

std::string chaos_duration(std::int64_t us) {
  if (us % 1000000 == 0) return std::to_string(us / 1000000) + "s";
  return std::to_string(std::max<std::int64_t>(1, us / 1000)) + "ms";
}

}  // namespace

std::string network_chaos_yaml(const fault_entry& f, const std::string& name, const std::string& ns,
                               const std::vector<std::pair<std::string, std::string>>& labels) {
  const auto settings = settings_of<network_settings>(f);
  const network_settings& x = *settings;
  std::ostringstream y;
  auto selector = [&](const std::string& indent, const std::vector<std::pair<std::string, std::string>>& ls) {
    y << indent << "selector:\n" << indent << "  namespaces:\n" << indent << "    - " << yaml_str(ns) << "\n";
    y << indent << "  labelSelectors:\n";
    for (auto& [k, v] : ls) y << indent << "    " << yaml_str(k) << ": " << yaml_str(v) << "\n";
  };
  std::string action;
  if (x.action == net_action::delay)
    action = "delay";
  else if (x.action == net_action::bandwidth)
    action = "bandwidth";
  else if (x.action == net_action::loss)
    action = "loss";
  else if (x.action == net_action::partition)
    action = "partition";
  else
    throw fault_error(f.kind +
                      ": found a selector target; expected a lab target (Chaos Mesh NetworkChaos has no action for " +
                      f.kind + ")");
  // mode from the target's pick
  std::string mode = "all", value;
  const json pick = f.target.value("pick", json());
  if (pick.is_string())
    mode = pick == "all" ? "all" : "one";
  else if (pick.is_object() && pick.contains("n")) {
    mode = "fixed";
    value = std::to_string(pick["n"].get<long>());
  } else if (pick.is_object() && pick.contains("percent")) {
    mode = "fixed-percent";
    value = std::to_string(static_cast<long>(percent_value(pick["percent"])));
  }
  // direction: the selected pods are the servers; "down" (toward clients) is their egress ("to").
  std::string dir = x.direction;
  std::string chaos_dir = dir == "up" ? "from" : dir == "down" ? "to" : "both";
  y << "apiVersion: chaos-mesh.org/v1alpha1\n"
    << "kind: NetworkChaos\n"
    << "metadata:\n"
    << "  name: " << yaml_str(name) << "\n"
    << "  namespace: " << yaml_str(ns) << "\n"
    << "  labels:\n"
    << "    app.kubernetes.io/managed-by: \"syncstorm\"\n"
    << "spec:\n"
    << "  action: " << action << "\n"
    << "  mode: " << mode << "\n";
  if (!value.empty()) y << "  value: " << yaml_str(value) << "\n";
  selector("  ", labels);
  if (x.action == net_action::partition) {
    auto to = group_list(x.to);
    std::vector<std::pair<std::string, std::string>> target_labels;
    for (const auto& g : to) {
      auto eq = g.find('=');
      if (eq == std::string::npos)
        throw fault_error("partition.to: found \"" + g +
                          "\"; expected a pod label like \"app=postgres\" for a selector target");
      target_labels.emplace_back(g.substr(0, eq), g.substr(eq + 1));
    }
    y << "  direction: " << (x.symmetric ? "both" : "to") << "\n";
    y << "  target:\n    mode: all\n";
    selector("    ", target_labels);
  } else {
    y << "  direction: " << chaos_dir << "\n";
  }
  if (x.action == net_action::delay) {
    std::int64_t lat = x.latency_us.value_or(0);
    std::int64_t spread = x.spread_us.value_or(0);
    y << "  delay:\n    latency: " << yaml_str(chaos_duration(lat))
      << "\n    correlation: \"0\"\n    jitter: " << yaml_str(chaos_duration(spread)) << "\n";
  } else if (x.action == net_action::bandwidth) {
    double bps = x.rate_bps.value_or(0);
    // limit: bytes that may wait in the queue; buffer: the bucket (burst) in bytes. Both
    // required by the CRD; sized from the rate (100 ms of queue, 10 ms of burst, sane floors).
    auto limit = std::max<std::uint64_t>(20000, static_cast<std::uint64_t>(bps / 8 / 10));
    auto buffer = std::max<std::uint64_t>(10000, static_cast<std::uint64_t>(bps / 8 / 100));
    y << "  bandwidth:\n    rate: " << yaml_str(chaos_rate(bps)) << "\n    limit: " << limit
      << "\n    buffer: " << buffer << "\n";
  } else if (x.action == net_action::loss) {
    y << "  loss:\n    loss: \"100\"\n    correlation: \"0\"\n";
  }
  if (f.for_us) y << "  duration: " << yaml_str(chaos_duration(*f.for_us)) << "\n";
  return y.str();
}

std::shared_ptr<const fault_settings> parse_network(const fault_entry& f, net_action action) {
  const json& x = f.fields;
  auto s = std::make_shared<network_settings>();
  s->action = action;
  s->path = x.value("path", "");
  s->direction = x.value("direction", "both");
  if (x.contains("latency")) s->latency_us = duration_us(x["latency"]);
  if (x.contains("spread")) s->spread_us = duration_us(x["spread"]);
  if (x.contains("rate"))
    s->rate_bps = (x["rate"].is_number() ? std::optional<double>(x["rate"].get<double>())
                                         : units::parse_bandwidth_bps(x["rate"].get<std::string>()))
                      .value_or(0);
  if (x.contains("percent")) s->percent = percent_value(x["percent"]);
  if (x.contains("status")) s->status = x["status"].get<int>();
  s->via_tc = x.value("via", "proxy") == "tc";
  if (x.contains("from")) s->from = x["from"];
  if (x.contains("to")) s->to = x["to"];
  s->symmetric = x.value("symmetric", true);
  return s;
}

void network_fault(prepared_fault& p, const fault_entry& f, const fault_env& env) {
  const std::uint64_t seed = occurrence_seed(env.seed, f.name, p.occurrence);
  if (f.target.contains("selector")) {
    const json& sel = f.target["selector"];
    std::string ctx = sel.value("context", "");
    if (ctx.empty()) {
      if (env.dry_run)
        ctx = "<current context>";
      else {
        auto r = run_command({"kubectl", "config", "current-context"}, 15s);
        if (!r.ok()) throw fault_error("kubectl config current-context: " + r.error);
        ctx = r.output.substr(0, r.output.find_first_of("\r\n"));
      }
    }
    if (ctx.front() != '<') {
      std::string why = refuse_context(ctx, env.safety);
      if (!why.empty()) throw fault_error("target.selector.context: " + why);
    }
    std::string ns = sel.value("namespace", "default");
    if (ctx.front() != '<') {
      std::string why = refuse_namespace(ctx, ns, env.safety);
      if (!why.empty()) throw fault_error("target.selector.namespace: " + why);
    }
    std::vector<std::pair<std::string, std::string>> labels;
    for (auto& [k, v] : sel.value("labels", json::object()).items()) labels.emplace_back(k, v.get<std::string>());
    std::string name = dns_name("syncstorm-" + env.run_tag + "-" + p.id);
    std::string yaml = network_chaos_yaml(f, name, ns, labels);
    std::string file = "/var/tmp/syncstorm/chaos/" + name + ".yaml";
    std::vector<std::string> kubectl = {"kubectl", "--context", ctx, "-n", ns};
    p.target_keys = {"kube-" + sanitize(ctx) + "-" + sanitize(ns)};
    p.targets.push_back(
        {{"backend", "kubectl"}, {"name", "NetworkChaos/" + name}, {"namespace", ns}, {"manifest", yaml}});
    p.apply.push_back({{"op", "write_file"}, {"path", file}, {"text", yaml}});
    auto apply = kubectl;
    apply.insert(apply.end(), {"apply", "-f", file});
    p.apply.push_back({{"op", "command"}, {"argv", apply}});
    auto del = kubectl;
    del.insert(del.end(), {"delete", "networkchaos", name, "--ignore-not-found"});
    p.undo.push_back({{"op", "command"}, {"argv", del}});
    p.undo.push_back({{"op", "remove_file"}, {"path", file}});
    return;
  }
  const auto settings = settings_of<network_settings>(f);
  const network_settings& x = *settings;
  if (x.action == net_action::partition) return partition_fault(p, f, env);
  const bool http_only = x.action == net_action::http_error;
  std::string path = !x.path.empty() ? x.path : env.lab ? "clients-lb" : env.proxy ? "clients-endpoints" : "";
  if (path == "clients-endpoints") {
    // The run's proxy in front of the user's endpoints (target.proxy).
    if (!env.proxy)
      throw fault_error(
          f.kind +
          ".path: found \"clients-endpoints\" without target.proxy; expected target.proxy (the run's proxy in front of the endpoints)");
    std::vector<std::string> paths = http_only ? env.proxy->http_paths : env.proxy->paths;
    if (paths.empty())
      throw fault_error(f.kind + ": found no " + std::string(http_only ? "plain HTTP " : "") +
                        "path through the run's proxy; expected target.endpoints.http");
    json spec = proxy_spec(f, x, seed);
    std::string id = env.run_tag + "/" + p.id;
    for (const auto& rp : paths) {
      p.apply.push_back(
          {{"op", "proxy_fault"}, {"control", env.proxy->control}, {"path", rp}, {"id", id}, {"fault", spec}});
      p.undo.push_back({{"op", "proxy_clear"}, {"control", env.proxy->control}, {"path", rp}, {"id", id}});
    }
    // No refusal key: the proxy is this run's own, so no other run can have left faults on it.
    p.targets.push_back({{"backend", "proxy"}, {"name", path}, {"relay_paths", paths}, {"fault", spec}});
    return;
  }
  if (!env.lab)
    throw fault_error(
        f.kind +
        ": found no lab in this run; expected target.lab (the fault proxy sits on the lab's paths), target.proxy or a selector target");
  json spec = proxy_spec(f, x, seed);
  std::string id = env.run_tag + "/" + p.id;
  if (x.via_tc) return tc_bandwidth_fault(p, f, env, spec, id);
  p.target_keys = {"lab-" + env.lab->id};
  for (const auto& rp : relay_paths(path, x)) {
    p.apply.push_back({{"op", "proxy_fault"}, {"lab", env.lab->id}, {"path", rp}, {"id", id}, {"fault", spec}});
    p.undo.push_back({{"op", "proxy_clear"}, {"lab", env.lab->id}, {"path", rp}, {"id", id}});
  }
  p.targets.push_back({{"backend", "lab"},
                       {"name", path},
                       {"lab", env.lab->id},
                       {"relay_paths", relay_paths(path, x)},
                       {"fault", spec}});
}

std::optional<step_result> run_net_step(const json& s, bool undoing) {
  const std::string op = s.value("op", "");
  if (op == "proxy_fault" || op == "proxy_clear") {
    const bool set = op == "proxy_fault";
    json req = {{"cmd", set ? "fault" : "clear"}, {"path", s.at("path")}, {"id", s.at("id")}};
    if (set) req["fault"] = s.at("fault");
    std::string err;
    bool gone = false;
    json a = relay_request(s, req, err, gone);
    const std::string what = s.at("path").get<std::string>() + " " + s.at("id").get<std::string>();
    if (a.is_null()) {
      if (undoing && gone)
        return step_done((s.contains("control") ? std::string("the run's proxy") : "lab " + s.value("lab", "")) +
                         " is gone: no proxy fault left on " + what);
      return step_failed(proxy_name(s) + " " + what + ": " + err);
    }
    if (!a.value("ok", false)) return step_failed(proxy_name(s) + " " + what + ": " + a.value("error", a.dump()));
    if (set)
      return step_done("fault proxy " + s.at("path").get<std::string>() + ": " + s["fault"].value("kind", "") + " " +
                       s["fault"].dump());
    return step_done("fault proxy " + s.at("path").get<std::string>() + ": cleared " + s.at("id").get<std::string>() +
                     " (" + std::to_string(a.value("cleared", 0)) + ")");
  }
  if (op == "iptables" || op == "iptables_delete") {
    const std::string netns = s.value("netns", "");
    const std::string chain = s.at("chain");
    const auto rule = s.at("rule").get<std::vector<std::string>>();
    const std::string where = netns.empty() ? "host" : "netns " + netns;
    if (op == "iptables") {
      auto r = run_command(iptables_argv(netns, "-I", chain, rule), 15s);
      if (!r.ok()) return step_failed("iptables in " + where + ": " + r.error);
      return step_done(where + ": " + command_line(iptables_argv(netns, "-I", chain, rule)));
    }
    // Delete every copy (an apply retried after a crash may have inserted it twice).
    for (int i = 0; i < 16; ++i) {
      auto r = run_command(iptables_argv(netns, "-D", chain, rule), 15s);
      if (!r.ok()) {
        if (absent_output(r.output)) return step_done(where + ": rule gone (" + std::to_string(i) + " deleted)");
        return step_failed("iptables -D in " + where + ": " + r.error);
      }
    }
    return step_failed("iptables -D in " + where + ": the rule is still there after 16 deletions");
  }
  if (op == "tc_shape") {
    const std::string where =
        (s.value("netns", "").empty() ? std::string("host") : "netns " + s["netns"].get<std::string>()) + " " +
        s.at("dev").get<std::string>();
    for (const auto& argv : tc_shape_argvs(s)) {
      auto r = run_command(argv, 15s);
      if (!r.ok()) return step_failed("tc on " + where + ": " + r.error);
    }
    return step_done(where + ": htb " + s.at("handle").get<std::string>() + ": " + s.at("rate").get<std::string>() +
                     " for the DB traffic");
  }
  if (op == "tc_unshape") {
    const std::string where =
        (s.value("netns", "").empty() ? std::string("host") : "netns " + s["netns"].get<std::string>()) + " " +
        s.at("dev").get<std::string>();
    std::string err;
    std::string has = tc_has_root(s, err);
    if (has == "error") return step_failed("tc qdisc show on " + where + ": " + err);
    if (has != "yes") return step_done(where + ": no htb " + s.at("handle").get<std::string>() + ": left");
    auto r = run_command(in_netns(s.value("netns", ""), {"tc", "qdisc", "del", "dev", s.at("dev"), "root", "handle",
                                                         s.at("handle").get<std::string>() + ":"}),
                         15s);
    if (!r.ok()) return step_failed("tc qdisc del on " + where + ": " + r.error);
    return step_done(where + ": removed htb " + s.at("handle").get<std::string>() + ":");
  }
  if (op == "write_file") {
    std::string path = s.at("path");
    std::error_code ec;
    fs::create_directories(fs::path(path).parent_path(), ec);
    // Replaced whole (a retried apply writes the same text).
    if (std::string err = replace_file(path, s.at("text").get<std::string>()); !err.empty()) return step_failed(err);
    return step_done("wrote " + path);
  }
  return std::nullopt;
}

std::optional<step_result> check_net_undone(const json& s) {
  const std::string op = s.value("op", "");
  if (op == "proxy_clear") {
    std::string err;
    bool gone = false;
    json a = relay_request(s, {{"cmd", "status"}}, err, gone);
    if (gone) return step_done(s.contains("control") ? "the run's proxy is gone" : "lab gone");
    if (a.is_null()) return step_failed(proxy_name(s) + ": " + err);
    const json faults =
        a["paths"].value(s.at("path").get<std::string>(), json::object()).value("faults", json::object());
    if (faults.contains(s.at("id").get<std::string>()))
      return step_failed("fault proxy " + s.at("path").get<std::string>() + " still holds " +
                         s.at("id").get<std::string>());
    return step_done("pass-through");
  }
  if (op == "tc_unshape") {
    std::string err;
    std::string has = tc_has_root(s, err);
    if (has == "error") return step_failed("tc qdisc show: " + err);
    if (has == "yes")
      return step_failed(s.at("dev").get<std::string>() + ": htb " + s.at("handle").get<std::string>() +
                         ": is still the root qdisc");
    return step_done("unshaped");
  }
  if (op == "iptables_delete") {
    const std::string netns = s.value("netns", "");
    auto r = run_command(iptables_argv(netns, "-C", s.at("chain"), s.at("rule").get<std::vector<std::string>>()), 15s);
    if (r.ok())
      return step_failed((netns.empty() ? std::string("host") : "netns " + netns) +
                         ": rule still present: " + command_line(s.at("rule").get<std::vector<std::string>>()));
    if (absent_output(r.output)) return step_done("rule gone");
    return step_failed("iptables -C: " + r.error);
  }
  return std::nullopt;
}

std::optional<std::string> describe_net_step(const json& s) {
  const std::string op = s.value("op", "");
  const std::string where = s.contains("control") ? "the run's proxy (" + s["control"].get<std::string>() + ") path "
                                                  : "lab " + s.value("lab", "<lab>") + ": fault proxy (relay) path ";
  if (op == "proxy_fault")
    return where + s.value("path", "") + ": " + s.value("fault", json::object()).dump() + " as " + s.value("id", "");
  if (op == "proxy_clear") return where + s.value("path", "") + ": clear " + s.value("id", "");
  if (op == "iptables" || op == "iptables_delete")
    return command_line(iptables_argv(s.value("netns", ""), op == "iptables" ? "-I" : "-D", s.value("chain", ""),
                                      s.value("rule", std::vector<std::string>{})));
  if (op == "tc_shape") {
    std::string out;
    for (const auto& argv : tc_shape_argvs(s)) out += (out.empty() ? "" : "; ") + command_line(argv);
    return out;
  }
  if (op == "tc_unshape")
    return command_line(in_netns(s.value("netns", ""), {"tc", "qdisc", "del", "dev", s.value("dev", ""), "root",
                                                        "handle", s.value("handle", "") + ":"}));
  if (op == "write_file") return "write " + s.value("path", "") + ":\n" + s.value("text", "");
  return std::nullopt;
}

std::vector<std::string> leftover_partition_rules(const std::string& own_tag) {
  std::vector<std::string> out;
  if (::geteuid() != 0) return out;
  std::vector<std::string> namespaces = {""};
  auto list = run_command({"ip", "netns", "list"}, 10s);
  if (list.ok()) {
    std::istringstream in(list.output);
    std::string line;
    while (std::getline(in, line)) {
      std::string name = line.substr(0, line.find(' '));
      if (name.rfind("ss-", 0) == 0) namespaces.push_back(name);
    }
  }
  const std::string own = "syncstorm:" + own_tag;
  for (const auto& ns : namespaces) {
    std::vector<std::string> argv;
    if (!ns.empty()) argv = {"ip", "netns", "exec", ns};
    argv.push_back("iptables-save");
    auto r = run_command(argv, 10s);
    if (!r.ok()) continue;
    std::istringstream in(r.output);
    std::string line;
    while (std::getline(in, line)) {
      auto at = line.find("syncstorm:");
      if (at == std::string::npos) continue;
      auto end = line.find_first_of(" \"", at);
      if (line.substr(at, end == std::string::npos ? std::string::npos : end - at) == own) continue;
      out.push_back((ns.empty() ? std::string("host") : "netns " + ns) + ": " + line);
    }
  }
  return out;
}

std::string netem_unavailable_reason() {
  static std::once_flag once;
  static std::string reason;
  std::call_once(once, [] {
    const std::string proxy =
        "; latency, jitter, bandwidth and blackhole go through syncstorm's fault proxy instead (the lab relay, or the run's proxy in front of the endpoints)";
    if (::geteuid() != 0) {
      reason = "tc netem: not probed (needs root)" + proxy;
      return;
    }
    // In an anonymous network namespace (`unshare --net`): it ends with the probe's process, so a
    // controller killed mid-probe leaves no namespace behind (a named one did, issue #24).
    auto q = run_command({"unshare", "--net", "tc", "qdisc", "add", "dev", "lo", "root", "netem", "delay", "1ms"}, 10s);
    if (!q.ok()) {
      std::string why = q.output;
      while (!why.empty() && (why.back() == '\n' || why.back() == ' ')) why.pop_back();
      if (why.empty()) why = q.error;
      // unshare's own failure (no namespaces here) is not the kernel lacking netem.
      const bool unshared = why.find("unshare") == std::string::npos;
      reason = std::string(unshared ? "tc netem: absent on this kernel" : "tc netem: cannot probe") +
               " (`unshare --net tc qdisc add dev lo root netem delay 1ms`: " + why + ")" + proxy;
    }
  });
  return reason;
}

}  // namespace syncstorm::injectors
