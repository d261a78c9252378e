// The lab's supervisor: one detached process per lab that is the parent of every long-running lab
// process (PostgreSQL, the pods, HAProxy, the relay), restarts what dies after the lab's
// `restart_delay` (as Kubernetes would), probes readiness, reads HAProxy's stats socket, and
// writes what happens to the events file.
//
// Units. The state file's `units.<name>` describe what to run: {"role", "kind" ("exec" or
// "relay"), "argv", "netns", "user", "log", "nofile", "stop_signal", "restart" (policy), "probe"};
// `unit_order` gives the start order (and, reversed, the shutdown order). The supervisor writes
// each unit's `runtime` ({"pid", "status", "restarts", "started_us", "ready_us", "last_exit"})
// back into the state file and a pidfile to lab_dir/run/<name>.pid. Statuses: stopped, starting
// (running, not ready yet), ready, stopping, restarting (dead, waiting restart_delay), dead (dead
// and not restarted).
//
// Probes: {"kind":"http","host","port","path"} (200 = ready), {"kind":"pg","host","port"}
// (accepting connections, as PQping), {"kind":"tcp","addrs":["ip:port"...]} (all connect),
// {"kind":"haproxy","socket"} (stats socket answers), or none (ready once started).
//
// Events (events.jsonl, see lab_state.hpp), prefixed by role (pod, db, lb, relay):
//   <p>_started {name, pid}             <p>_restarted {name, pid, restarts}
//   <p>_ready {name, pid, after_us}     <p>_stopped {name}
//   <p>_died {name, pid, exit_code | signal, restart, restart_in_us}
//   lb_server_down / lb_server_up {server, backend, status}   (be_http, from `show stat`)
//   lb_backend_down / lb_backend_up {backend}
//
// Control (unix socket lab_dir/supervisor.sock; one JSON line each way):
//   {"cmd":"ping"}                          → {"ok":true,"pid":N}
//   {"cmd":"status"}                        → {"ok":true,"units":{...},"lb":{server:{status,up}}}
//   {"cmd":"start","unit":U}                → (re-reads U from the state file) starts it
//   {"cmd":"kill","unit":U,"signal":S,"restart":B,"group":B}
//        → sends S to U (to its process group when group, the default); with restart false the
//          death that follows is not restarted.
//   {"cmd":"stop","unit":U,"grace_ms":N}    → stop_signal, SIGKILL after grace; not restarted
//   {"cmd":"reload"}                        → re-reads every unit's definition (roles, policies)
//   {"cmd":"shutdown","grace_ms":N}         → stops every unit (reverse order) and exits
// A process that kills a unit by pid (e.g. a `kill` fault with a pidfile) can ask for no restart
// by creating the file lab_dir/norestart/<unit> first; the supervisor removes it when it sees
// the death.
//
// Threading: the supervisor process is single-threaded (a poll loop over a signalfd and the
// control socket), so it can fork the relay safely. The client functions are blocking and can
// be called from any thread.
#pragma once

#include <sys/types.h>

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <string>

namespace syncstorm::lab {

// Starts the supervisor of the lab whose state file is `state_path` as a detached process (its
// own session, re-parented to init, stdout/stderr to lab_dir/supervisor.log) and returns its pid
// once its control socket answers. Works from any program: the supervisor is a fork of the
// caller that never returns into it. Throws std::runtime_error with the log tail on timeout.
pid_t start_supervisor(const std::string& state_path, std::chrono::milliseconds timeout = std::chrono::seconds(10));

// The supervisor loop itself (what start_supervisor runs in the detached process). Returns when
// shut down; the return value is an exit code.
int supervisor_main(const std::string& state_path);

// One control request (see above). Throws std::runtime_error naming the socket when the
// supervisor does not answer; an answer with "ok": false is returned as is.
nlohmann::json supervisor_request(const std::string& socket_path, const nlohmann::json& request,
                                  std::chrono::milliseconds timeout = std::chrono::seconds(5));

// Readiness probes (blocking, bounded by `timeout`), also used by `lab up` and the tests.
bool probe_http(const std::string& host, std::uint16_t port, const std::string& path, std::chrono::milliseconds timeout,
                int* status = nullptr);
bool probe_pg(const std::string& host, std::uint16_t port, std::chrono::milliseconds timeout);
bool probe_tcp(const std::string& host, std::uint16_t port, std::chrono::milliseconds timeout);

// The lab's relay unit: proxy::relay_run over the paths of the lab whose state file is
// `state_path` (`paths.<name>` = {listen, upstream, sources, http}; `relay.control`), until
// SIGTERM/SIGINT. Returns the process exit code (non-zero, the reason on stderr, when the state
// cannot be read or a listener cannot be opened).
int relay_main(const std::string& state_path);

}  // namespace syncstorm::lab
