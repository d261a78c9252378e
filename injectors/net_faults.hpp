// Network faults (DESIGN §6): latency, jitter, bandwidth, reset, blackhole, http_error on a path
// of the lab (clients-lb, pods-db) through the lab's fault proxy (the relay: labstack/lab_relay),
// partition as a directed graph between groups (pods, db, lb, clients, pod names) with iptables
// rules on the receiving side, and Chaos Mesh NetworkChaos manifests for the kubectl backend.
//
// Steps (ledger-replayable, run by steps.cpp):
//   proxy_fault {lab, path, id, fault}   set a fault on a relay path (relay "fault" command)
//   proxy_clear {lab, path, id}          undo: clear it (idempotent; a gone lab or relay is done);
//                                        check_undone: the relay no longer lists the id
//   iptables {netns, chain, rule[]}      insert a rule (`-I CHAIN 1 rule...`), in a namespace or
//                                        the host; rules carry `-m comment --comment syncstorm:<run>`
//   iptables_delete {netns, chain, rule[]}  undo: delete until none is left (a gone namespace is
//                                        done); check_undone: `iptables -C` finds none
//   write_file {path, text}              the Chaos Mesh manifest, before `kubectl apply -f`
// Thread-safe; blocking (runs ip/iptables, talks to the relay socket).
#pragma once

#include "injectors/faults.hpp"

#include <nlohmann/json.hpp>

#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace syncstorm::injectors {

// What a network fault does; each network kind (injectors/kinds/) names its own.
enum class net_action { delay, bandwidth, loss, reset, http_error, partition };

// The typed settings every network kind parses into (only its own keys are set).
struct network_settings final : fault_settings {
  net_action action = net_action::delay;
  std::string path;                // empty: the default path (clients-lb, or clients-endpoints)
  std::string direction = "both";  // up, down, both
  std::optional<std::int64_t> latency_us, spread_us;
  std::optional<double> rate_bps, percent;
  std::optional<int> status;
  bool via_tc = false;      // bandwidth through the kernel (tc htb)
  nlohmann::json from, to;  // partition: a group or an array of them, as written
  bool symmetric = true;
};

// Parses a validated network fault entry into network_settings for `action`.
std::shared_ptr<const fault_settings> parse_network(const fault_entry& f, net_action action);

// Builds apply/undo/verify for a network fault occurrence (every network kind's prepare).
// Throws fault_error with one line.
void network_fault(prepared_fault& p, const fault_entry& f, const fault_env& env);

// The network step ops above; nullopt when `op` is not one of them.
std::optional<step_result> run_net_step(const nlohmann::json& step, bool undoing);
std::optional<step_result> check_net_undone(const nlohmann::json& step);
std::optional<std::string> describe_net_step(const nlohmann::json& step);

// A Chaos Mesh NetworkChaos manifest (YAML) for a network fault on a kubectl selector target.
// `name` is the object name (DNS-1123), `ns` the namespace, `labels` the pod label selector.
// Throws fault_error for kinds NetworkChaos cannot express (reset, http_error).
std::string network_chaos_yaml(const fault_entry& f, const std::string& name, const std::string& ns,
                               const std::vector<std::pair<std::string, std::string>>& labels);

// iptables rules tagged `syncstorm:<tag>` in the host and in the lab namespaces (ss-*) whose tag
// is not `own_tag`: what a dead run left behind. One line each ("netns ss-x-pod0: -A INPUT ...").
std::vector<std::string> leftover_partition_rules(const std::string& own_tag);

// tc netem on this kernel: probed once in a scratch namespace (root only). Empty when it works,
// else one line saying why not and that the fault proxy does the job instead.
std::string netem_unavailable_reason();

}  // namespace syncstorm::injectors
