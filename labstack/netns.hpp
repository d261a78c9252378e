// The lab's network: where pods live and how the host reaches them.
//
// Privileged (root, and `ip netns` works): one bridge `ssb-<id>` on a /24 chosen from
// 10.200.0.0–10.254.255.0 that overlaps no existing route or address and no other lab; the
// bridge holds .1 (the gateway: the host side, where the pods reach the DB relay) and .2–.5 (the
// source addresses HAProxy connects to the pods from); pod i lives in namespace
// `ss-<id>-pod<i>`, reached through the veth pair `sv-<id>-<i>` (host side, on the bridge) /
// `eth0` (inside), at .(10+i). Two iptables rules (comment `syncstorm-lab-<id>`) accept the
// bridge's traffic on INPUT and FORWARD, for hosts whose policy drops it. The ephemeral port range
// is widened (net.ipv4.ip_local_port_range = 1024 65535) with the lab's own listening ports
// reserved (ip_local_reserved_ports); both are restored by destroy_network (the range only if it
// still holds what this lab set: with two labs up, the first one down restores the original).
//
// Unprivileged: every pod gets its own 127.0.0.x (a block no listener and no other lab uses),
// HAProxy's source addresses are 127.0.1.x, and nothing on the host changes.
//
// Every creation is recorded in the state file before it happens (see lab_state.hpp), and
// destroy_network also sweeps by name (namespaces `ss-<id>-*`, links `sv-<id>-*` and `ssb-<id>`,
// rules with the lab's comment), so it cleans up after a `lab up` killed at any point.
//
// Threading: blocking set-up code (runs `ip`, `iptables`); call from one thread per lab.
#pragma once

#include "labstack/lab_state.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace syncstorm::lab {

struct pod_network {
  std::string name;       // pod-<i>
  std::string netns;      // ss-<id>-pod<i>, empty when unprivileged
  std::string veth_host;  // sv-<id>-<i>, empty when unprivileged
  std::string address;    // the pod's own IPv4 address
};

struct network_layout {
  bool namespaces = false;
  std::string subnet;                   // "10.a.b.0/24" (namespaces only)
  std::string bridge;                   // ssb-<id> (namespaces only)
  std::string gateway;                  // host side: 10.a.b.1, or 127.0.0.1
  std::vector<std::string> lb_sources;  // HAProxy's source addresses toward the pods
  std::vector<pod_network> pods;
  std::string chain_comment;  // syncstorm-lab-<id>

  nlohmann::json to_json() const;
  static network_layout from_json(const nlohmann::json& j);
};

// Whether pods can get namespaces here: root and a probe namespace can be created (and is
// deleted again). When not, `why` says what was missing.
bool namespaces_supported(const std::string& probe_name, std::string* why);

// Chooses addresses for `pods` pods. `taken` holds the network sections of other labs' states
// (their subnets and loopback blocks are avoided). `pod_port` is the port pods listen on: in
// loopback mode a block is only chosen if nothing listens on its addresses at that port.
network_layout plan_network(const std::string& id, int pods, bool namespaces, const std::vector<nlohmann::json>& taken,
                            std::uint16_t pod_port);

// Creates the bridge, namespaces, veths, addresses, routes and rules of `n` (namespaces mode;
// a no-op otherwise), recording each in `st` under "created" before creating it. Throws on the
// first failure; what was created stays recorded for destroy_network.
void create_network(const std::string& id, const network_layout& n, const state_file& st);

// Widens ip_local_port_range and reserves `ports` (privileged only), recording the original
// values in `st` under "sysctls" first.
void tune_host(const std::vector<std::uint16_t>& ports, const state_file& st);

// Removes everything create_network and tune_host made for lab `id`, from the state's records
// and by name. Best effort: returns one message per thing it could not remove.
std::vector<std::string> destroy_network(const std::string& id, const nlohmann::json& state);

// What of lab `id` is still on the host: namespaces, links, iptables rules (one string each).
std::vector<std::string> network_leftovers(const std::string& id);

// IPv4 "a.b.c.d:port" pairs something listens on (TCP, from /proc/net/tcp of this namespace).
std::vector<std::pair<std::string, std::uint16_t>> tcp_listeners();

}  // namespace syncstorm::lab
