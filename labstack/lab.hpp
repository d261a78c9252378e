// The lab: the reference sync stack (DESIGN §3) on this machine, for `syncstorm lab` and for
// scenarios with `target.lab`. PostgreSQL 15 (a primary, optionally a synchronous streaming
// replica), N syncd pods, HAProxy 2.6 in front, a pass-through relay on each path a network
// fault may need (clients→LB, pods→DB), and a supervisor that restarts what dies.
//
// Layout (docs/lab.md has the full picture):
//   clients ──► relay lb_http / lb_ws (127.0.0.1) ──► HAProxy fe_http / fe_ws (127.0.0.1)
//           ──► pods (own netns on bridge ssb-<id>, 10.a.b.10+i:8080; or 127.0.0.x:port)
//           ──► relay db (bridge gateway 10.a.b.1, or 127.0.0.1) ──► PostgreSQL primary (127.0.0.1)
// State: lab_dir(id) = /var/tmp/syncstorm/lab-<id>/ (state.json, events.jsonl, logs, data).
//
// Units (what the supervisor runs; names are stable for the life of the lab):
//   db-0 (initial primary), db-1 (replica, with `replica`), relay, pod-0 … pod-N-1, lb (HAProxy).
// Roles: db-primary, db-replica, db-fenced (an old primary after a promote: never restarted),
// relay, pod, lb.
//
// Kill without restart: kill_pod/kill_unit with restart = false, or — for code that signals a pid
// itself (a `kill` fault with a pidfile, lab_dir/run/<unit>.pid) — create the empty file
// lab_dir/norestart/<unit> before the signal; the supervisor consumes it when it sees the death.
//
// Inserting a fault proxy on a path: start the proxy forwarding to path_upstream(path), then
// set_path_upstream(path, proxy_address, reset); to remove it, set the old upstream back. Clients
// and pods keep the addresses they have (lb_http_url, lb_ws_url, pod_db_dsn) throughout.
//
// Threading: a `lab` object is a handle on the state file; its methods block (set-up code) and
// may be called from any thread, but not concurrently on the same lab for up/down/promote.
// Processes outlive the object: only down() (or `syncstorm lab down`) stops them.
#pragma once

#include <sys/types.h>

#include <nlohmann/json.hpp>

#include <chrono>
#include <csignal>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace syncstorm::lab {

struct lab_options {
  int pods = 2;                                  // 1..200
  bool replica = false;                          // add a synchronous streaming replica (db-1)
  std::optional<std::uint64_t> db_volume_bytes;  // data dirs on a tmpfs of this size (root only)
  std::string bug;                               // syncd --bug MODE for every pod ("" = none)
  std::int64_t restart_delay_us = 1'000'000;     // supervisor: death → restart
  int check_interval_ms = 1000;                  // HAProxy health checks on /readyz
  int check_fall = 3;
  int check_rise = 2;
  bool keep = false;             // for `run`: leave the lab up after the run (recorded; not used here)
  std::string id;                // [a-z0-9]{1,8}; empty: a random one
  std::string network = "auto";  // auto | namespaces | loopback
  std::string syncd_path;        // empty: $SYNCSTORM_SYNCD, next to this program, $SYNCSTORM_BUILD_DIR
  std::chrono::milliseconds ready_timeout{std::chrono::seconds(90)};  // bound on `up`

  nlohmann::json to_json() const;
};

struct pod_info {
  std::string name;     // pod-<i> (also the HAProxy server name)
  pid_t pid = 0;        // 0 while down
  std::string address;  // the pod's own address
  std::uint16_t port = 0;
  std::string netns;   // empty when unprivileged
  std::string status;  // supervisor status: starting, ready, restarting, dead, stopped…
  int restarts = 0;
};

class lab {
 public:
  // Creates and starts a lab; returns once every part is ready (the LB answers /healthz and every
  // pod is UP in HAProxy). On failure everything made so far is removed and std::runtime_error
  // says which step failed and what was found (with the failing part's log tail).
  static lab up(const lab_options& options);
  // A handle on a running lab: an id ("abc123"), a lab dir, or a state.json path. Throws when no
  // such lab exists.
  static lab attach(const std::string& id_or_path);

  // Stops and removes everything the lab made: processes, namespaces, bridge, iptables rules,
  // sysctl changes, mounts, files. Safe to run twice and after a `lab up` killed halfway.
  // Returns what could not be removed (empty on success).
  std::vector<std::string> down();
  static std::vector<std::string> down(const std::string& id);

  const std::string& id() const { return id_; }
  std::string dir() const;
  std::string state_path() const;
  std::string events_path() const;
  nlohmann::json state() const;  // state.json as it is now
  // Everything a user or the harness needs: addresses, ports, pids, unit statuses, HAProxy
  // server states, relay counters, files (the `lab status --json` document).
  nlohmann::json status() const;

  std::string lb_http_url() const;                 // "http://127.0.0.1:P" (through the lb_http relay)
  std::string lb_ws_url() const;                   // "ws://127.0.0.1:Q" (through the lb_ws relay); path /v1/ws
  std::string db_dsn() const;                      // straight to the current primary (audits)
  std::optional<std::string> replica_dsn() const;  // straight to the replica; nullopt without one
  std::string pod_db_dsn() const;                  // what the pods use: through the db relay
  std::vector<pod_info> pods() const;
  std::string primary_unit() const;  // db-0, or db-1 after a promote
  std::optional<std::string> replica_unit() const;

  // Sends `signal` to a unit's process group through the supervisor; returns the pid signalled.
  // With restart false the death that follows is not restarted (start_unit brings it back).
  pid_t kill_pod(const std::string& name, int signal = SIGKILL, bool restart = true);
  pid_t kill_unit(const std::string& unit, int signal = SIGKILL, bool restart = true);
  void start_unit(const std::string& unit);
  // Waits until the supervisor reports `unit` ready; false on timeout. While the lab is still
  // coming up (phase not "ready") a death or a timeout throws instead, with the unit's log tail.
  bool wait_ready(const std::string& unit, std::chrono::milliseconds timeout) const;

  // Failover: fences the current primary (killed if alive, never restarted), promotes the
  // replica, repoints the db path at it (resetting open connections) and records the new roles.
  // Throws when there is no replica.
  void promote_replica();

  // The relay paths: "lb_http", "lb_ws", "db".
  std::string path_listen(const std::string& path) const;
  std::string path_upstream(const std::string& path) const;
  void set_path_upstream(const std::string& path, const std::string& upstream, bool reset_open = false);

  std::vector<nlohmann::json> events() const;

 private:
  explicit lab(std::string id) : id_(std::move(id)) {}
  nlohmann::json supervisor(const nlohmann::json& request) const;
  std::string id_;
};

}  // namespace syncstorm::lab
