// HAProxy 2.6 for the lab: the generated configuration and a client for its stats socket.
//
// Layout of the generated configuration:
//   frontend fe_http  (HTTP API)       -> backend be_http  (roundrobin)
//   frontend fe_ws    (WebSocket /v1/ws) -> backend be_ws  (leastconn, `timeout tunnel`)
// Each pod appears in be_http as `pod-<i>` (health-checked: GET /readyz, expect 200, with the
// lab's interval/fall/rise) plus `pod-<i>.s<k>` copies that connect from the other source
// addresses and `track` it, so one pod is one health state however many source addresses carry
// its connections (each source address opens its own ~64k ephemeral ports toward the pod).
// be_ws has the same servers, all tracking be_http. Sized for 50,000 client connections:
// global and per-frontend maxconn 60,000 (HAProxy raises its own RLIMIT_NOFILE to fit when root).
//
// The stats socket (level admin) is where the supervisor reads server states into events;
// fault code may also use it (`disable server be_http/pod-0`).
//
// Threading: pure functions plus blocking socket calls with deadlines; no shared state.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace syncstorm::lab {

struct haproxy_server {
  std::string name;     // pod-<i>
  std::string address;  // the pod's address
  std::uint16_t port = 0;
};

struct haproxy_config {
  std::string stats_socket;  // unix socket path
  std::string http_bind;     // "127.0.0.1:port" of fe_http
  std::string ws_bind;       // "127.0.0.1:port" of fe_ws
  std::vector<haproxy_server> servers;
  std::vector<std::string> sources;  // source addresses toward the pods (at least one)
  int check_interval_ms = 1000;
  int fall = 3;
  int rise = 2;
  int maxconn = 60000;
};

// The haproxy.cfg text for `c`. Throws std::invalid_argument naming the field when a value is
// out of range (no servers, no source, interval < 10 ms, fall/rise < 1).
std::string render_haproxy_config(const haproxy_config& c);

// One row of `show stat` for a server (or the BACKEND row, server == "BACKEND").
struct haproxy_server_state {
  std::string backend;
  std::string server;
  std::string status;  // as HAProxy prints it: "UP", "DOWN", "UP 1/3", "MAINT", "no check"…
  bool up = false;     // UP (incl. going down), "no check", OPEN
  long current_sessions = 0;
  long total_sessions = 0;
};

// Sends one command on the stats socket and returns the whole answer. Throws std::runtime_error
// naming the socket when it cannot connect or the deadline passes.
std::string haproxy_command(const std::string& socket_path, const std::string& command,
                            std::chrono::milliseconds timeout = std::chrono::milliseconds(1000));

// `show stat` parsed (servers and BACKEND rows; FRONTEND rows dropped).
std::vector<haproxy_server_state> haproxy_show_stat(
    const std::string& socket_path, std::chrono::milliseconds timeout = std::chrono::milliseconds(1000));
std::vector<haproxy_server_state> parse_show_stat(const std::string& csv);

}  // namespace syncstorm::lab
