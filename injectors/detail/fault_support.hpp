// What the fault kinds (injectors/kinds/) share to prepare an occurrence: target resolution and
// picking, lab unit lookups, step builders, command-line helpers. Internal to injectors/.
// Pure apart from reading the lab's state and running read-only commands (kubectl config).
#pragma once

#include "injectors/faults.hpp"
#include "injectors/targets.hpp"

#include <nlohmann/json.hpp>

#include <initializer_list>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace syncstorm::injectors::detail {

// A resolved and picked target set.
struct resolved {
  std::string backend;               // lab, local, docker, kubectl, clients
  std::vector<std::string> names;    // units, pids, containers, pods, clients
  std::vector<std::string> kubectl;  // kubectl --context C -n NS
  std::string selector;              // k=v,k2=v2
  std::string key;                   // for the unreverted index
};

// The fault's target resolved now and picked with the occurrence's seed; `default_pick_for_many`
// applies to a glob, a role with several members or a selector. Throws fault_error.
resolved resolve(const fault_entry& f, int occ, const fault_env& env, const std::string& default_pick_for_many);
// A path inside the directory of a lab this host runs (<labs root>/lab-<id>/…, symbolic links
// resolved): syncstorm's own part, allowed without the operator's allowlist.
bool own_lab_path(const std::string& path);
// A pid file of a lab unit (…/lab-<id>/run/<unit>.pid) of a lab this host runs.
bool own_lab_pidfile(const std::string& pidfile);

int signal_number(const std::string& name);
std::string sanitize(const std::string& s);
const lab_facts& need_lab(const fault_env& env, const std::string& what);
std::vector<std::string> words(const std::string& s);
std::vector<std::string> concat(std::vector<std::string> a, std::initializer_list<std::string> b);
lab_facts::proc unit_proc(const lab_facts& lab, const std::string& unit, bool dry);

nlohmann::json signal_step(long pid, unsigned long long start, bool group, int sig, const std::string& sig_name,
                           const std::string& what);
nlohmann::json cmd(std::vector<std::string> argv, nlohmann::json extra = nlohmann::json::object());
// `docker exec C` or `kubectl … exec POD --`.
std::vector<std::string> exec_prefix(const resolved& r, const std::string& name);
void lab_kill_steps(prepared_fault& p, const lab_facts& lab, const std::vector<std::string>& units, int sig,
                    const std::string& sig_name, bool restart, bool dry);

// The kill of DESIGN §6 on any backend (kill's prepare, and db_failover's on a remote stack).
void kill_steps(prepared_fault& p, const fault_entry& f, const fault_env& env, const std::string& sig_name,
                bool restart);

}  // namespace syncstorm::injectors::detail
