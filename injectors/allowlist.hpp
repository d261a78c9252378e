// The operator's allowlist (issue #24): what faults and capture may touch beyond syncstorm's own
// parts (the lab's units, volumes and interfaces, the run's terminals and fault proxy, loopback).
// It comes from outside the scenario being judged: `run` flags, $SYNCSTORM_ALLOW_* and an allow
// file (--allow-file, $SYNCSTORM_ALLOW_FILE or /etc/syncstorm/allow.json), never the scenario. A
// scenario's `safety.allow_*` keys may only narrow it. Every entry is a glob (`*`, `?`, `[...]`).
// Pure apart from reading the environment and the allow file. Thread-safe.
#pragma once

#include <nlohmann/json.hpp>

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

namespace syncstorm::injectors {

// The allowlist in force for a run. Empty lists allow nothing of their kind.
struct safety_policy {
  std::vector<std::string> pids;           // local process ids, e.g. "4242"
  std::vector<std::string> pidfiles;       // absolute paths of pid files
  std::vector<std::string> containers;     // docker container names
  std::vector<std::string> docker_hosts;   // non-local DOCKER_HOST values
  std::vector<std::string> kube_contexts;  // kubectl contexts
  std::vector<std::string> namespaces;     // kubectl namespaces: "shop" or "kind-lab/shop"
  std::vector<std::string> paths;          // directories disk_fill may fill (each with what is below it)
  std::vector<std::string> interfaces;     // capture interfaces besides lo and the lab's
  std::size_t max_targets = 10;            // targets one fault occurrence may hit outside the lab
  std::vector<std::string> sources;        // where it came from: "--allow-*", "$SYNCSTORM_ALLOW_PIDS", "file …"
  bool narrowed = false;                   // the scenario's safety keys narrowed it

  // report.json's `safety`: {"allow": {kind: [...]}, "max_fault_targets", "sources", "narrowed_by_scenario"}.
  nlohmann::json to_json() const;
};

// What `run` was given on its command line (each list may also hold comma-separated items).
struct allow_flags {
  std::vector<std::string> pids, pidfiles, containers, docker_hosts, contexts, namespaces, paths, interfaces;
  std::string file;                        // --allow-file
  std::optional<std::size_t> max_targets;  // --max-fault-targets
};

// The operator's allowlist: the flags, then $SYNCSTORM_ALLOW_{PIDS,PIDFILES,CONTAINERS,
// DOCKER_HOSTS,CONTEXTS,NAMESPACES,PATHS,INTERFACES} (comma-separated) and
// $SYNCSTORM_MAX_FAULT_TARGETS, then the allow file: --allow-file, else $SYNCSTORM_ALLOW_FILE, else
// /etc/syncstorm/allow.json when it exists. The file is JSON ({"pids": [4242], "pidfiles": [...],
// "containers", "docker_hosts", "contexts", "namespaces", "paths", "interfaces",
// "max_fault_targets": N}), a regular file owned by root or by this user and writable by nobody
// else. Problems go to `errors`, one line each naming the flag, variable or key.
safety_policy operator_policy(const allow_flags& flags, std::vector<std::string>& errors);

// The scenario's `safety.allow_contexts` and `safety.allow_docker_hosts` narrow `p` to what they
// list; an entry the operator did not allow is an error naming the flag that would allow it.
void narrow_by_scenario(safety_policy& p, const nlohmann::json& document, std::vector<std::string>& errors);

// Each returns empty when allowed, else one line: the target, "refused", and how to allow it.
std::string refuse_pid_target(const std::string& pid, const safety_policy& p);
std::string refuse_pidfile(const std::string& path, const safety_policy& p);
std::string refuse_container(const std::string& name, const safety_policy& p);
std::string refuse_context(const std::string& context, const safety_policy& p);
std::string refuse_namespace(const std::string& context, const std::string& ns, const safety_policy& p);
std::string refuse_path(const std::string& dir, const safety_policy& p);
std::string refuse_interface(const std::string& name, const safety_policy& p);
// DOCKER_HOST as set now: local (unset, unix://, tcp://127.*, localhost, [::1]) or listed.
std::string refuse_docker_host(const safety_policy& p);
// More than max_targets targets for one occurrence.
std::string refuse_target_count(std::size_t n, const safety_policy& p);

// A pid file under a lab's run/ directory (…/lab-<id>/run/<unit>.pid) names one of syncstorm's
// own lab units: {lab id, unit}.
std::optional<std::pair<std::string, std::string>> lab_unit_of_pidfile(const std::string& pidfile);

}  // namespace syncstorm::injectors
