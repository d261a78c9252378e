// The fault proxy: pass-through TCP relays on which network faults are set at run time (delay,
// jitter, bandwidth, blackhole, resets, HTTP errors: fault_proxy.hpp). In the lab they are the
// listeners that sit on each path a network fault may need (clients→LB: `lb_http` and `lb_ws`;
// pods→DB: `db`), so a fault is put on a path without restarting anything; the lab also repoints
// a path's upstream to fail the DB path over to a promoted replica.
//
// One relay process per lab (unit `relay`, supervised like the pods: lab::relay_main) serves every
// path with one Asio thread. Its paths come from the lab's state file (`paths.<name>` = {listen,
// upstream, sources}), where the lab records every upstream change, so a restarted relay resumes
// them. Buffers are
// taken from a pool only while bytes are in flight, so an idle connection (a WebSocket subscriber)
// costs two sockets and no buffer. Each direction of a connection is a reader that stamps what it
// reads with the time it may leave and a writer that sends it then (queued bytes bounded at 4 MiB
// per direction, so a slowed path pushes back on its sender). Half-closes are forwarded; an error on either side closes both.
// While a direction has no byte-shaping fault (no delay, jitter, bandwidth or blackhole) and
// nothing queued, its bytes move with splice(2) through a pipe (socket → pipe → socket, no copy
// into userspace), one round (≤ the pipe's size, up to 1 MiB) at a time; a fault set at run time
// takes effect at the next round, on the same connection. The up direction of an HTTP path
// stays in userspace, where the request tracker that http_error needs keeps count.
// The same code is `syncstorm proxy` (one path, foreground) and a scenario's proxy in front of
// the user's endpoints (relay_run over an explicit config).
//
// Control: a unix socket (`relay.control` in the state; path lab_dir/relay.sock), one JSON request
// line, one JSON answer line:
//   {"cmd":"status"}  → {"ok":true,"paths":{NAME:{"listen","upstream","active","accepted",
//                        "upstream_failures","bytes_up","bytes_down","faults","injected_errors",
//                        "injected_resets","held_connects"}}}
//   {"cmd":"set_upstream","path":NAME,"upstream":"IP:PORT","reset":BOOL}
//        → new connections go to IP:PORT; with reset, the path's open connections are closed
//          (RST) so clients reconnect through the new upstream. Answers {"ok":true,"reset":N}.
//   {"cmd":"reset","path":NAME} → closes the path's open connections.
//   {"cmd":"fault","path":NAME,"id":ID,"fault":SPEC} → applies a network fault (fault_proxy.hpp
//        has SPEC) under ID, replacing one with the same ID, without dropping connections:
//        delays apply to bytes read from then on (bytes in flight on open connections too), a
//        bandwidth limit to every byte written, a blackhole holds bytes and new connections, a
//        reset closes that share of open connections (RST) and of new ones, http_error answers
//        that share of the HTTP/1.1 requests on lb_http itself. Answers {"ok":true,"faults"}.
//   {"cmd":"clear","path":NAME,"id":ID|"*"} → removes it (idempotent); {"ok":true,"cleared":N}.
// So the relay is the lab's fault proxy (DESIGN §3): it sits on every path, is supervised and
// outlives runs. Faults live in the relay's memory only: a relay that restarts comes back in
// pass-through (the reaper's clear then finds nothing, which is what it wants).
// In a lab, prefer lab::set_path_upstream (labstack/lab.hpp), which also records the change in
// the lab's state file.
//
// Threading: relay_run runs its own io_context on the calling thread and returns on SIGTERM or
// SIGINT. relay_control is a blocking client usable from any thread.
#pragma once

#include <nlohmann/json.hpp>

#include <chrono>
#include <functional>
#include <string>
#include <vector>

namespace syncstorm::proxy {

// One path of a relay process. `listen` may have port 0 (a free port is taken; `status` shows
// it). `upstream` is IP:PORT. `http`: HTTP/1.1 requests flow up this path, so http_error
// applies (the lab's lb_http; a scenario proxy's http path; `syncstorm proxy --http`).
struct relay_path_config {
  std::string name, listen, upstream;
  std::vector<std::string> sources;  // source addresses for upstream connections (round robin)
  bool http = false;
};

struct relay_config {
  std::vector<relay_path_config> paths;
  std::string control;  // the control socket's path (created; an old one is replaced)
  // Called once every listener is open, with the `status` answer (actual listen addresses).
  std::function<void(const nlohmann::json& status)> on_listening;
  bool splice = true;  // zero-copy forwarding while a direction has no byte-shaping fault
};

// Runs the relay over `config` until SIGTERM/SIGINT (the lab's relay unit: lab::relay_main in
// labstack/supervisor.hpp, from the lab's state file; `syncstorm proxy`; a scenario's proxy; the
// bench). Returns the process exit code (non-zero when a listener cannot be opened; the reason
// goes to stderr).
int relay_run(const relay_config& config);

// The relay takes numeric addresses: the first address `host` resolves to (TCP), or empty with
// the resolver's message in `*error` (when given).
std::string numeric_address(const std::string& host, std::string* error = nullptr);

// One request on a relay control socket. Throws std::runtime_error naming the socket when it
// cannot connect, the deadline passes or the answer is not JSON.
nlohmann::json relay_control(const std::string& socket_path, const nlohmann::json& request,
                             std::chrono::milliseconds timeout = std::chrono::seconds(3));

}  // namespace syncstorm::proxy
