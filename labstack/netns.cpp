// The lab's network (see netns.hpp): planning, creation through `ip` and `iptables`, and teardown.
#include "labstack/netns.hpp"

#include "labstack/lab_process.hpp"

#include <arpa/inet.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <functional>
#include <iterator>
#include <set>
#include <sstream>
#include <stdexcept>

namespace syncstorm::lab {
namespace {

using json = nlohmann::json;

std::uint32_t parse_ipv4(const std::string& s) {
  in_addr a{};
  if (::inet_pton(AF_INET, s.c_str(), &a) != 1) return 0;
  return ntohl(a.s_addr);
}

std::string format_ipv4(std::uint32_t v) {
  in_addr a{};
  a.s_addr = htonl(v);
  char buf[INET_ADDRSTRLEN];
  ::inet_ntop(AF_INET, &a, buf, sizeof buf);
  return buf;
}

struct cidr {
  std::uint32_t base = 0;
  int len = 32;
  bool overlaps(const cidr& o) const {
    int l = std::min(len, o.len);
    std::uint32_t mask = l == 0 ? 0 : ~std::uint32_t{0} << (32 - l);
    return (base & mask) == (o.base & mask);
  }
};

std::optional<cidr> parse_cidr(const std::string& s) {
  auto slash = s.find('/');
  std::string a = s.substr(0, slash);
  if (a.find('.') == std::string::npos) return std::nullopt;
  std::uint32_t v = parse_ipv4(a);
  if (v == 0 && a != "0.0.0.0") return std::nullopt;
  int len = slash == std::string::npos ? 32 : std::atoi(s.c_str() + slash + 1);
  return cidr{v, len};
}

spawn_options cmd(std::vector<std::string> argv) {
  spawn_options o;
  o.argv = std::move(argv);
  return o;
}

// Every IPv4 prefix the host already routes or owns (all tables, all links), default excluded.
std::vector<cidr> host_prefixes() {
  std::vector<cidr> out;
  for (auto args : {std::vector<std::string>{"ip", "-4", "route", "show", "table", "all"},
                    std::vector<std::string>{"ip", "-4", "-o", "addr", "show"}}) {
    run_result r;
    try {
      r = run_command(cmd(args), std::chrono::seconds(10));
    } catch (const std::exception&) {
      continue;
    }
    std::istringstream in(r.output);
    std::string tok;
    while (in >> tok)
      if (auto c = parse_cidr(tok); c && tok.find('.') != std::string::npos) out.push_back(*c);
  }
  return out;
}

void record(const state_file& st, const std::string& kind, const json& what) {
  st.update([&](json& j) {
    auto& list = j["created"][kind];
    if (!list.is_array()) list = json::array();
    if (std::find(list.begin(), list.end(), what) == list.end()) list.push_back(what);
  });
}

// `ip ARGS` for lab `id`: carries the lab's marker, so a `down` racing a killed `up` finds it.
void ip(const std::string& id, const std::string& what, std::vector<std::string> args) {
  args.insert(args.begin(), "ip");
  spawn_options o = cmd(std::move(args));
  o.lab_id = id;
  run_command_checked(what, o, std::chrono::seconds(20));
}

std::vector<std::string> rule_args(const json& rule) {
  std::vector<std::string> a;
  for (auto& x : rule.at("args")) a.push_back(x.get<std::string>());
  return a;
}

// Splits an iptables-save rule line ("-A INPUT -i x -m comment --comment "a b" -j ACCEPT").
std::vector<std::string> split_rule(const std::string& line) {
  std::vector<std::string> out;
  std::string cur;
  bool quoted = false, have = false;
  for (char c : line) {
    if (c == '"') {
      quoted = !quoted;
      have = true;
    } else if (c == ' ' && !quoted) {
      if (have) out.push_back(cur);
      cur.clear();
      have = false;
    } else {
      cur += c;
      have = true;
    }
  }
  if (have) out.push_back(cur);
  return out;
}

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

bool write_text(const std::string& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
  out.flush();
  return static_cast<bool>(out);
}

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ' || s.back() == '\t')) s.pop_back();
  return s;
}

// "1,2,10-12" -> {1,2,10,11,12}
std::set<int> parse_port_list(const std::string& s) {
  std::set<int> out;
  std::stringstream in(s);
  std::string part;
  while (std::getline(in, part, ',')) {
    part = trim(part);
    if (part.empty()) continue;
    auto dash = part.find('-');
    int lo = std::atoi(part.c_str());
    int hi = dash == std::string::npos ? lo : std::atoi(part.c_str() + dash + 1);
    for (int p = lo; p <= hi && p - lo < 70000; ++p) out.insert(p);
  }
  return out;
}

std::string format_port_list(const std::set<int>& ports) {
  std::string s;
  auto it = ports.begin();
  while (it != ports.end()) {
    int lo = *it, hi = *it;
    ++it;
    while (it != ports.end() && *it == hi + 1) hi = *it++;
    if (!s.empty()) s += ',';
    s += lo == hi ? std::to_string(lo) : std::to_string(lo) + "-" + std::to_string(hi);
  }
  return s;
}

constexpr const char* port_range_path = "/proc/sys/net/ipv4/ip_local_port_range";
constexpr const char* reserved_path = "/proc/sys/net/ipv4/ip_local_reserved_ports";
constexpr const char* wide_range = "1024 65535";

}  // namespace

json network_layout::to_json() const {
  json pods_j = json::array();
  for (auto& p : pods)
    pods_j.push_back({{"name", p.name}, {"netns", p.netns}, {"veth_host", p.veth_host}, {"address", p.address}});
  return {{"namespaces", namespaces},
          {"subnet", subnet},
          {"bridge", bridge},
          {"gateway", gateway},
          {"lb_sources", lb_sources},
          {"pods", pods_j},
          {"chain_comment", chain_comment}};
}

network_layout network_layout::from_json(const json& j) {
  network_layout n;
  n.namespaces = j.value("namespaces", false);
  n.subnet = j.value("subnet", "");
  n.bridge = j.value("bridge", "");
  n.gateway = j.value("gateway", "");
  n.chain_comment = j.value("chain_comment", "");
  for (auto& s : j.value("lb_sources", json::array())) n.lb_sources.push_back(s.get<std::string>());
  for (auto& p : j.value("pods", json::array()))
    n.pods.push_back({p.value("name", ""), p.value("netns", ""), p.value("veth_host", ""), p.value("address", "")});
  return n;
}

bool namespaces_supported(const std::string& probe_name, std::string* why) {
  if (::geteuid() != 0) {
    if (why) *why = "not root (euid " + std::to_string(::geteuid()) + ")";
    return false;
  }
  run_result r;
  try {
    r = run_command(cmd({"ip", "netns", "add", probe_name}), std::chrono::seconds(10));
  } catch (const std::exception& e) {
    if (why) *why = e.what();
    return false;
  }
  if (r.exit_code != 0) {
    if (why) *why = "`ip netns add` failed: " + trim(r.output);
    return false;
  }
  run_command(cmd({"ip", "netns", "del", probe_name}), std::chrono::seconds(10));
  return true;
}

network_layout plan_network(const std::string& id, int pods, bool namespaces, const std::vector<json>& taken,
                            std::uint16_t pod_port) {
  if (pods < 1 || pods > 200)
    throw std::runtime_error("lab: pods: found " + std::to_string(pods) + "; expected 1 to 200");
  network_layout n;
  n.namespaces = namespaces;
  n.chain_comment = "syncstorm-lab-" + id;
  const std::uint32_t h = static_cast<std::uint32_t>(std::hash<std::string>{}(id));
  if (namespaces) {
    std::vector<cidr> used = host_prefixes();
    for (auto& t : taken)
      if (auto c = parse_cidr(t.value("subnet", ""))) used.push_back(*c);
    // 10.200.0.0 – 10.254.255.0: 55 × 256 candidate /24s, starting where the id hashes to.
    const std::uint32_t count = 55 * 256;
    std::optional<std::uint32_t> base;
    for (std::uint32_t k = 0; k < count && !base; ++k) {
      std::uint32_t idx = (h + k) % count;
      std::uint32_t b = (10u << 24) | ((200u + idx / 256) << 16) | ((idx % 256) << 8);
      cidr c{b, 24};
      bool clash = std::any_of(used.begin(), used.end(), [&](const cidr& u) { return u.overlaps(c); });
      if (!clash) base = b;
    }
    if (!base)
      throw std::runtime_error(
          "lab network: found every /24 in 10.200.0.0/16–10.254.0.0/16 in use; "
          "expected a free one for the lab's bridge");
    n.subnet = format_ipv4(*base) + "/24";
    n.bridge = "ssb-" + id;
    n.gateway = format_ipv4(*base + 1);
    for (std::uint32_t s = 2; s <= 5; ++s) n.lb_sources.push_back(format_ipv4(*base + s));
    for (int i = 0; i < pods; ++i)
      n.pods.push_back({"pod-" + std::to_string(i), "ss-" + id + "-pod" + std::to_string(i),
                        "sv-" + id + "-" + std::to_string(i), format_ipv4(*base + 10 + static_cast<std::uint32_t>(i))});
    return n;
  }
  // Loopback: a block of `pods` addresses 127.0.0.x with no listener and no other lab on them.
  std::set<std::uint32_t> busy;
  for (auto& [addr, port] : tcp_listeners())
    if (port == pod_port) busy.insert(parse_ipv4(addr));
  bool any_wildcard = busy.count(0) > 0;
  for (auto& t : taken)
    for (auto& p : t.value("pods", json::array())) busy.insert(parse_ipv4(p.value("address", "")));
  if (any_wildcard)
    throw std::runtime_error("lab network: found a listener on 0.0.0.0:" + std::to_string(pod_port) +
                             "; expected the pod port free on loopback");
  const std::uint32_t lo = (127u << 24);
  const int first = 10 + static_cast<int>(h % 100);
  std::optional<int> start;
  for (int k = 0; k < 240 && !start; ++k) {
    int x = 10 + (first - 10 + k) % 240;
    if (x + pods - 1 > 254) continue;
    bool ok = true;
    for (int i = 0; i < pods && ok; ++i) ok = !busy.count(lo | static_cast<std::uint32_t>(x + i));
    if (ok) start = x;
  }
  if (!start)
    throw std::runtime_error("lab network: found no block of " + std::to_string(pods) +
                             " free addresses in 127.0.0.10–127.0.0.254; expected one for the pods");
  n.gateway = "127.0.0.1";
  for (std::uint32_t s = 1; s <= 4; ++s)
    n.lb_sources.push_back(format_ipv4(lo | (1u << 8) | (static_cast<std::uint32_t>(*start) + s - 1)));
  for (int i = 0; i < pods; ++i)
    n.pods.push_back({"pod-" + std::to_string(i), "", "", format_ipv4(lo | static_cast<std::uint32_t>(*start + i))});
  return n;
}

void create_network(const std::string& id, const network_layout& n, const state_file& st) {
  if (!n.namespaces) return;
  const std::string pfx = std::to_string(24);
  record(st, "links", n.bridge);
  ip(id, "create the lab bridge", {"link", "add", n.bridge, "type", "bridge"});
  ip(id, "bring the lab bridge up", {"link", "set", n.bridge, "up"});
  ip(id, "give the bridge its gateway address", {"addr", "add", n.gateway + "/" + pfx, "dev", n.bridge});
  for (auto& s : n.lb_sources) ip(id, "add an LB source address", {"addr", "add", s + "/" + pfx, "dev", n.bridge});
  for (std::size_t i = 0; i < n.pods.size(); ++i) {
    const auto& p = n.pods[i];
    record(st, "namespaces", p.netns);
    ip(id, "create the namespace of " + p.name, {"netns", "add", p.netns});
    record(st, "links", p.veth_host);
    const std::string peer = "sp-" + id + "-" + std::to_string(i);
    ip(id, "create the veth pair of " + p.name,
       {"link", "add", p.veth_host, "type", "veth", "peer", "name", peer, "netns", p.netns});
    ip(id, "attach " + p.veth_host + " to the bridge", {"link", "set", p.veth_host, "master", n.bridge, "up"});
    ip(id, "name the pod's interface eth0", {"-n", p.netns, "link", "set", peer, "name", "eth0"});
    ip(id, "address " + p.name, {"-n", p.netns, "addr", "add", p.address + "/" + pfx, "dev", "eth0"});
    ip(id, "bring up eth0 of " + p.name, {"-n", p.netns, "link", "set", "eth0", "up"});
    ip(id, "bring up lo of " + p.name, {"-n", p.netns, "link", "set", "lo", "up"});
    ip(id, "route " + p.name + " via the bridge", {"-n", p.netns, "route", "add", "default", "via", n.gateway});
  }
  const std::vector<json> rules = {
      {{"table", "filter"},
       {"chain", "INPUT"},
       {"args", {"-i", n.bridge, "-m", "comment", "--comment", n.chain_comment, "-j", "ACCEPT"}}},
      {{"table", "filter"},
       {"chain", "FORWARD"},
       {"args", {"-i", n.bridge, "-o", n.bridge, "-m", "comment", "--comment", n.chain_comment, "-j", "ACCEPT"}}},
  };
  for (auto& r : rules) {
    record(st, "rules", r);
    std::vector<std::string> a = {"iptables", "-w", "-t", r["table"], "-I", r["chain"]};
    for (auto& x : rule_args(r)) a.push_back(x);
    spawn_options o = cmd(a);
    o.lab_id = id;
    run_command_checked("add the lab's iptables rule", o, std::chrono::seconds(20));
  }
}

void tune_host(const std::vector<std::uint16_t>& ports, const state_file& st) {
  if (::geteuid() != 0) return;
  const std::string range = trim(read_text(port_range_path));
  const std::string reserved = trim(read_text(reserved_path));
  st.update([&](json& j) {
    j["sysctls"]["ip_local_port_range"] = {{"path", port_range_path}, {"original", range}, {"set", wide_range}};
    json ports_j = json::array();
    for (auto p : ports) ports_j.push_back(p);
    j["sysctls"]["reserved_ports"] = {{"path", reserved_path}, {"ports", ports_j}};
  });
  std::set<int> res = parse_port_list(reserved);
  for (auto p : ports) res.insert(p);
  if (!write_text(reserved_path, format_port_list(res)))
    throw std::runtime_error("lab: cannot write " + std::string(reserved_path));
  if (!write_text(port_range_path, wide_range))
    throw std::runtime_error("lab: cannot write " + std::string(port_range_path) + " = " + wide_range);
}

std::vector<std::string> destroy_network(const std::string& id, const json& state) {
  std::vector<std::string> errors;
  if (!valid_lab_id(id)) return {"lab id \"" + id + "\" is not valid"};
  const json created = state.value("created", json::object());
  auto quiet = [](std::vector<std::string> argv) {
    try {
      return run_command(cmd(std::move(argv)), std::chrono::seconds(20));
    } catch (const std::exception& e) {
      run_result r;
      r.output = e.what();
      return r;
    }
  };

  // Namespaces: the recorded ones and any named like ours (a veth dies with its namespace).
  std::set<std::string> namespaces;
  for (auto& x : created.value("namespaces", json::array())) namespaces.insert(x.get<std::string>());
  {
    auto r = quiet({"ip", "netns", "list"});
    std::istringstream in(r.output);
    std::string line;
    while (std::getline(in, line)) {
      std::string name = line.substr(0, line.find(' '));
      if (name.rfind("ss-" + id + "-", 0) == 0) namespaces.insert(name);
    }
  }
  for (auto& ns : namespaces) {
    if (!std::ifstream("/run/netns/" + ns)) continue;
    auto r = quiet({"ip", "netns", "del", ns});
    if (r.exit_code != 0) errors.push_back("namespace " + ns + ": " + trim(r.output));
  }

  // Links: recorded ones, and sv-<id>-* / ssb-<id> by name.
  std::set<std::string> links;
  for (auto& x : created.value("links", json::array())) links.insert(x.get<std::string>());
  {
    auto r = quiet({"ip", "-o", "link", "show"});
    std::istringstream in(r.output);
    std::string line;
    while (std::getline(in, line)) {
      // "7: sv-abc-0@if2: <...>"
      auto c1 = line.find(": ");
      if (c1 == std::string::npos) continue;
      auto c2 = line.find(": ", c1 + 2);
      std::string name = line.substr(c1 + 2, c2 - c1 - 2);
      name = name.substr(0, name.find('@'));
      if (name.rfind("sv-" + id + "-", 0) == 0 || name == "ssb-" + id) links.insert(name);
    }
  }
  // Veths before the bridge.
  std::vector<std::string> ordered(links.begin(), links.end());
  std::stable_partition(ordered.begin(), ordered.end(), [](const std::string& l) { return l.rfind("sv-", 0) == 0; });
  for (auto& l : ordered) {
    auto show = quiet({"ip", "link", "show", l});
    if (show.exit_code != 0) continue;
    auto r = quiet({"ip", "link", "del", l});
    // A veth goes away by itself shortly after its peer's namespace: gone is what we wanted.
    if (r.exit_code != 0 && quiet({"ip", "link", "show", l}).exit_code == 0)
      errors.push_back("link " + l + ": " + trim(r.output));
  }

  // iptables: recorded rules, then any rule still carrying our comment.
  const std::string comment = "syncstorm-lab-" + id;
  for (auto& rule : created.value("rules", json::array())) {
    for (int i = 0; i < 10; ++i) {
      std::vector<std::string> a = {
          "iptables", "-w", "-t", rule.value("table", "filter"), "-D", rule.value("chain", "INPUT")};
      for (auto& x : rule_args(rule)) a.push_back(x);
      if (quiet(a).exit_code != 0) break;
    }
  }
  if (::geteuid() == 0) {
    auto save = quiet({"iptables-save"});
    std::istringstream in(save.output);
    std::string line, table = "filter";
    while (std::getline(in, line)) {
      if (!line.empty() && line[0] == '*') table = line.substr(1);
      if (line.rfind("-A ", 0) != 0 || line.find(comment) == std::string::npos) continue;
      auto parts = split_rule(line);
      // Our comment exactly, not a longer id that starts with ours.
      if (std::find(parts.begin(), parts.end(), comment) == parts.end()) continue;
      parts[0] = "-D";
      std::vector<std::string> a = {"iptables", "-w", "-t", table};
      a.insert(a.end(), parts.begin(), parts.end());
      auto r = quiet(a);
      if (r.exit_code != 0) errors.push_back("iptables rule `" + line + "`: " + trim(r.output));
    }
  }

  // Host rules that runs' partition faults left on this lab (comment "syncstorm:<run>", naming a
  // pod's or the bridge gateway's address): a run whose controller and reaper were killed and
  // never reverted. Rules inside the pods' namespaces went with them above.
  const json net = state.value("network", json::object());
  if (::geteuid() == 0 && net.value("namespaces", false)) {
    std::set<std::string> addresses;
    if (!net.value("gateway", "").empty()) addresses.insert(net.value("gateway", "") + "/32");
    for (auto& p : net.value("pods", json::array()))
      if (!p.value("address", "").empty()) addresses.insert(p.value("address", "") + "/32");
    auto save = quiet({"iptables-save"});
    std::istringstream in(save.output);
    std::string line, table = "filter";
    while (std::getline(in, line)) {
      if (!line.empty() && line[0] == '*') table = line.substr(1);
      if (line.rfind("-A ", 0) != 0 || line.find("syncstorm:") == std::string::npos) continue;
      auto parts = split_rule(line);
      bool run_rule = false, ours = false;
      for (std::size_t i = 0; i + 1 < parts.size(); ++i) {
        if (parts[i] == "--comment" && parts[i + 1].rfind("syncstorm:", 0) == 0) run_rule = true;
        if ((parts[i] == "-s" || parts[i] == "-d") && addresses.count(parts[i + 1])) ours = true;
      }
      if (!run_rule || !ours) continue;
      parts[0] = "-D";
      std::vector<std::string> a = {"iptables", "-w", "-t", table};
      a.insert(a.end(), parts.begin(), parts.end());
      auto r = quiet(a);
      if (r.exit_code != 0) errors.push_back("iptables rule `" + line + "`: " + trim(r.output));
    }
  }

  // sysctls: restore the range if it is still what we set; drop our reserved ports.
  const json sys = state.value("sysctls", json::object());
  if (sys.contains("ip_local_port_range") && ::geteuid() == 0) {
    auto& s = sys["ip_local_port_range"];
    std::string now = trim(read_text(port_range_path));
    auto norm = [](std::string v) {
      std::replace(v.begin(), v.end(), '\t', ' ');
      return v;
    };
    if (norm(now) == norm(s.value("set", "")) && !s.value("original", "").empty()) {
      if (!write_text(port_range_path, norm(s.value("original", ""))))
        errors.push_back(std::string("cannot restore ") + port_range_path);
    }
  }
  if (sys.contains("reserved_ports") && ::geteuid() == 0) {
    std::set<int> res = parse_port_list(read_text(reserved_path));
    for (auto& p : sys["reserved_ports"].value("ports", json::array())) res.erase(p.get<int>());
    if (!write_text(reserved_path, format_port_list(res)))
      errors.push_back(std::string("cannot restore ") + reserved_path);
  }
  return errors;
}

std::vector<std::string> network_leftovers(const std::string& id) {
  std::vector<std::string> out;
  auto quiet = [](std::vector<std::string> argv) {
    try {
      return run_command(cmd(std::move(argv)), std::chrono::seconds(20)).output;
    } catch (const std::exception&) {
      return std::string();
    }
  };
  {
    std::istringstream in(quiet({"ip", "netns", "list"}));
    std::string line;
    while (std::getline(in, line))
      if (line.rfind("ss-" + id + "-", 0) == 0) out.push_back("namespace " + line);
  }
  {
    std::istringstream in(quiet({"ip", "-o", "link", "show"}));
    std::string line;
    while (std::getline(in, line))
      if (line.find(" sv-" + id + "-") != std::string::npos || line.find(" ssb-" + id + ":") != std::string::npos ||
          line.find(" ssb-" + id + "@") != std::string::npos)
        out.push_back("link " + line.substr(0, line.find('<')));
  }
  if (::geteuid() == 0) {
    std::istringstream in(quiet({"iptables-save"}));
    std::string line;
    while (std::getline(in, line)) {
      auto parts = split_rule(line);
      if (std::find(parts.begin(), parts.end(), "syncstorm-lab-" + id) != parts.end())
        out.push_back("iptables " + line);
    }
  }
  return out;
}

std::vector<std::pair<std::string, std::uint16_t>> tcp_listeners() {
  std::vector<std::pair<std::string, std::uint16_t>> out;
  std::ifstream in("/proc/net/tcp");
  std::string line;
  std::getline(in, line);  // header
  while (std::getline(in, line)) {
    std::istringstream l(line);
    std::string sl, local, remote, st;
    l >> sl >> local >> remote >> st;
    if (st != "0A") continue;  // LISTEN
    auto colon = local.find(':');
    if (colon == std::string::npos) continue;
    std::uint32_t raw = static_cast<std::uint32_t>(std::stoul(local.substr(0, colon), nullptr, 16));
    std::uint16_t port = static_cast<std::uint16_t>(std::stoul(local.substr(colon + 1), nullptr, 16));
    // /proc/net/tcp prints the address in host byte order of the in_addr (network-order bytes).
    in_addr a{};
    a.s_addr = raw;
    char buf[INET_ADDRSTRLEN];
    ::inet_ntop(AF_INET, &a, buf, sizeof buf);
    out.emplace_back(buf, port);
  }
  return out;
}

}  // namespace syncstorm::lab
