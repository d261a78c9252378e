// The injector interface (DESIGN §6): validate → apply → verify → revert → verify_reverted, and
// the fault kinds that build it: kill, pause, rolling_restart, disk_fill, db_failover,
// client_crash, journal_corrupt, each with its backends (lab, local process, docker, kubectl).
//
// A fault occurrence is *prepared* when it fires: its targets are resolved (and picked with the
// occurrence's seed), and it becomes two lists of steps (injectors/steps.hpp): `apply` and
// `undo`. The undo list is complete before anything is applied and goes into the ledger's apply
// intent, so a revert never needs the process that applied it. --dry-run prepares the same way
// without contacting anything (what cannot be known yet is shown as such).
// Thread-safe: prepare_fault is pure apart from reading the lab's state and running
// read-only commands (docker ps, kubectl get, df); an injector is used by one thread.
#pragma once

#include "core/scenario.hpp"
#include "injectors/client_control.hpp"
#include "injectors/steps.hpp"
#include "injectors/targets.hpp"

#include <nlohmann/json.hpp>

#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace syncstorm::lab {
class lab;
}

namespace syncstorm::injectors {

// What a fault may know about the lab: from a running lab, or (dry-run) from the scenario.
struct lab_facts {
  std::string id;  // "<lab id>" when planned
  std::string dir;
  std::vector<std::string> pods;
  std::string primary;
  std::optional<std::string> replica;
  struct proc {
    long pid = 0;
    unsigned long long start_time = 0;
  };
  std::map<std::string, proc> units;             // running units (empty when planned)
  std::map<std::string, std::string> data_dirs;  // db unit → data directory (the volume)
  bool planned = false;

  static lab_facts of(const lab::lab& l);
  static lab_facts from_scenario(const nlohmann::json& lab_target);
};

// The run's own fault proxy in front of the user's endpoints (target.proxy, run_proxy.hpp).
struct proxy_facts {
  std::string control;                  // its control socket
  std::vector<std::string> paths;       // relay paths: "http", "ws"
  std::vector<std::string> http_paths;  // those carrying HTTP/1.1 requests
};

struct fault_env {
  std::optional<lab_facts> lab;      // the run's lab, if it targets one
  std::optional<proxy_facts> proxy;  // the run's proxy, if target.proxy
  client_control* clients = nullptr;
  safety_policy safety;
  std::uint64_t seed = 1;
  std::string run_tag = "run";  // names fill files: .syncstorm-fill-<tag>-<id>
  bool dry_run = false;         // contact nothing; leave unknowns open
};

struct prepared_fault {
  std::string id, name, kind;  // id: "<name>#<occurrence>"
  int occurrence = 0;
  nlohmann::json targets = nlohmann::json::array();  // [{"backend", "name", ...}]
  std::vector<nlohmann::json> apply, undo, verify;   // verify: checks that it took (signal, file, command)
  bool heals = false;                    // the effect ends by itself (revert = wait for and check the recovery)
  bool irreversible = false;             // nothing to undo by design (db_failover: repair is separate)
  std::vector<std::string> target_keys;  // for the unreverted-ledger index
};

class fault_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Resolves and builds one occurrence. Throws fault_error with one line (target not found,
// refused by the allowlist, a backend command failed).
prepared_fault prepare_fault(const fault_entry& f, int occurrence, const fault_env& env);

// Keys of the targets a scenario's faults can touch ("lab", "pid-123", "docker-web",
// "kube-ctx/ns", "path-/mnt/x"): a run refuses to start while another run left faults
// unreverted on one of them.
std::vector<std::string> scenario_target_keys(const scenario& s);

// What the run would touch outside the operator's allowlist, known before it starts (issue
// #24): one line per refusal, naming the scenario path, the target and how to allow it. Local
// pids and pid files (the lab's own excepted), containers and DOCKER_HOST, kubectl contexts and
// namespaces, disk_fill directories (the lab's excepted), `pick: {"n": N}` over the cap, capture
// interfaces besides lo and the lab's. What resolves only when a fault fires is checked again then.
std::vector<std::string> refuse_scenario_targets(const scenario& s, const safety_policy& policy);

// The interface of DESIGN §6 over a prepared fault. Every method returns its outcome instead of
// throwing. revert() runs every undo step even after a failure; it is idempotent.
class injector {
 public:
  injector(prepared_fault p, client_control* clients) : p_(std::move(p)), clients_(clients) {}
  const prepared_fault& fault() const { return p_; }
  step_result apply();
  step_result verify();
  step_result revert();
  step_result verify_reverted();

 private:
  prepared_fault p_;
  client_control* clients_;
};

// revert + verify_reverted from undo steps alone (the reaper, `syncstorm revert`).
step_result revert_steps(const nlohmann::json& undo, client_control* clients = nullptr);
step_result verify_reverted_steps(const nlohmann::json& undo);

}  // namespace syncstorm::injectors
