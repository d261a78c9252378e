// The `http` load model (DESIGN §5): one request template sent over a keep-alive pool of
// HTTP/1.1 connections (https with a CA file, optional client certificate, SNI and host name
// verification), either at a planned rate (open model) or as fast as N connections allow
// (closed model).
//
// Scenario keys (engine/models/http.cpp maps them onto http_model_config):
//   load[]: {"name": "api", "model": "http", "mode": "open" | "closed", "connections": 64,
//            "request": {"method": "GET", "path": "/v1/x?y=1" | "url": "https://h:8443/p",
//                        "headers": {"k": "v"}, "body": "..."},
//            "timeout": "5s", "expect_status": [200],
//            "phases": [{"name": "warm", "for": "30s", "rate": 100}, {"name": "up", "for": "1m", "to": 500}]}
//   target: {"endpoints": {"http": "http://127.0.0.1:8080"}, "headers": {"authorization": "${env:TOKEN}"},
//            "tls": {"ca_file", "cert_file", "key_file", "server_name", "verify": true}}
// `path` is joined to target.endpoints.http; target.headers come before request.headers.
//
// Open model: arrivals follow the phases (arrivals.hpp), split round-robin across workers, and
// keep their schedule whatever the server does; a request that finds no free connection waits
// in its worker's queue and still counts from its intended time. Closed model: `connections`
// connections, each sending its next request as soon as the previous one completed, for the
// phases' total duration (rates are ignored) or until stop().
//
// `timeout` bounds each exchange from its actual send: connect and TLS handshake when the pooled
// connection needs them, the write and the whole response. A per-worker watchdog enforces it
// (up to timeout/10, at most 100 ms, late); a timed-out connection is closed and reconnects.
// Any failure closes the connection; the next request on it reconnects. A reply without
// keep-alive closes it too (not an error).
//
// Metrics (each worker's shard; `at` is when the outcome was known). The http.* ones are recorded
// per load entry as "<metric>@<load name>"; the pool's merged views add the whole "<metric>".
//   http.latency              intended send → outcome (wrk2's correction), ok = expected status;
//                             failures are recorded too (ok = false), a timeout as its wait
//   http.latency.uncorrected  actual send → outcome
//   http.requests             one count per request, ok or error
//   http.errors.<bucket>      per error bucket: connect, read, write, status, timeout, protocol
//   http.queue_wait           open model: how long a request waited for a free connection
//   http.unsent               open model: arrivals still queued when the load stopped
//   generator.lag             open model: arrival issued − intended time (the generator's own delay)
//   generator.late            open model: arrivals issued ≥ 1 ms after their intended time
// In the closed model the intended send time is the actual one (the two latencies agree).
// generator.lag is when the generator issued an arrival, not when a connection took it: the
// time it then waits for a pooled connection is http.queue_wait. Lag measures whether the
// generator keeps its schedule (its saturation, DESIGN §7); the wait is the server's doing and
// is in http.latency, where it belongs.
//
// Threading: the model object is shared by the workers read-only; each worker's connections,
// queue and TLS context live on that worker's thread. Header values are kept in memory only
// and never logged.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "loadgen/arrivals.hpp"
#include "loadgen/workers.hpp"

namespace syncstorm::loadgen {

// Where a failed request went wrong. A response that parsed but is not expected is `status`;
// a reply that is not HTTP is `protocol`; the TLS handshake belongs to `connect`; any step
// that outlived the request's timeout is `timeout`.
enum class error_bucket { connect, read, write, status, timeout, protocol };
inline constexpr std::size_t error_bucket_count = 6;
std::string_view to_string(error_bucket b) noexcept;

struct tls_spec {
  std::string ca_file;      // PEM; empty: the system's default verify paths
  std::string cert_file;    // client certificate chain (PEM), optional
  std::string key_file;     // its private key (PEM), required with cert_file
  std::string server_name;  // SNI and the name verified; empty: the URL's host
  bool verify = true;       // verify the server's certificate and host name
};

struct http_model_config {
  std::string name;  // the load entry's name
  std::string url;   // http(s)://host:port/path?query
  std::string method = "GET";
  std::vector<std::pair<std::string, std::string>> headers;  // resolved in memory; never log values
  std::string body;
  bool open = true;              // false: closed model
  std::size_t connections = 64;  // pool size (closed: concurrent connections)
  std::int64_t timeout_us = 5'000'000;
  std::vector<int> expect_status;  // empty: any 2xx is ok
  std::vector<phase_spec> phases;
  tls_spec tls;
};

// A URL split for connecting. parse_url accepts http:// and https:// with an optional port
// (default 80/443) and target (default "/"); IPv6 hosts in brackets. Throws
// std::invalid_argument ("url: found \"...\"; expected http(s)://host[:port][/path]").
struct url_parts {
  bool tls = false;
  std::string host;  // without brackets
  std::uint16_t port = 0;
  std::string target;  // path and query, starting with '/'
};
url_parts parse_url(std::string_view url);
// The Host header's value for `url`: an IPv6 host in brackets, the port left out when it is the
// scheme's default.
std::string host_header(const url_parts& url);

// The request bytes sent for every request: request line, Host, the headers in order,
// Content-Length when there is a body (or the method usually has one), then the body.
std::string serialize_request(const http_model_config& config, const url_parts& url);

// Validates the config (URL, phases, connections > 0, timeout > 0, TLS files readable) and
// returns the model; throws std::invalid_argument with one line naming the field. Host name
// resolution and TLS contexts happen in start(), per worker.
std::unique_ptr<load_model> make_http_model(const http_model_config& config);

}  // namespace syncstorm::loadgen
