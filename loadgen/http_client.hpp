// The one HTTP/1.1 client of syncstorm's load: every model (http, terminal, fanout, bootstrap)
// and the audit reader send their requests through it. One http_client is one keep-alive
// connection (plain TCP, or TLS with the target's settings: CA file, client certificate, SNI,
// host name verification); it connects when it has no connection, sends, reads the reply and
// classifies a failure into the error buckets of http_model.hpp. A bad reply is a counted
// failure, never an exception.
//
// Two ways to read a reply: async_request keeps the status and the body (a string, bounded by
// the site's body_limit); async_send sends bytes serialized once by the caller and keeps only
// the status (an allocation-free parser that drops the body), the http model's hot path.
//
// One deadline per request, connect, handshake, write and read together. It is enforced either
// by the client's own timer (armed once per request) or, when the client was given one, by an
// http_watchdog that sweeps all of a worker's clients on one timer (one timer for thousands of
// connections; a timeout fires up to one tick late).
//
// Threading: an http_site is built once (setup) and then shared read-only; an http_client
// and an http_watchdog belong to one io_context's thread and serve one request at a time.
// Asio appears here; Beast stays in http_client.cpp.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/net.hpp"
#include "loadgen/http_model.hpp"

namespace boost::asio::ssl {
class context;
}

namespace syncstorm::loadgen {

// Where requests go and what each carries.
struct http_site {
  url_parts url;       // the base URL (http or https); ws:// and wss:// are accepted as http(s)
  std::string prefix;  // the base URL's path without a trailing '/', prepended to every target
  std::string host;    // the Host header value (the port left out when it is the scheme's default)
  std::vector<std::pair<std::string, std::string>> headers;  // sent on every request; values never logged
  std::string user_agent = "syncstorm";
  std::uint64_t body_limit = 256ull << 20;  // async_request: a longer body is a `protocol` failure
  tls_spec tls;
  std::string server_name;  // SNI and the verified name
  bool sni = false;         // server_name is a DNS name (SNI never carries an IP literal)
  std::vector<net::ip::tcp::endpoint> endpoints;
  std::shared_ptr<net::ssl::context> ssl;  // https only

  // Parses and validates (URL, TLS files); throws std::invalid_argument naming `field`. The base
  // URL's query, if any, is dropped from the prefix.
  static http_site make(const std::string& base, std::vector<std::pair<std::string, std::string>> headers,
                        const tls_spec& tls, const std::string& field);
  // Resolves the host once (blocking); throws std::runtime_error ("load NAME: cannot resolve …").
  void resolve(net::io_context& io, const std::string& load_name);
  // The same, returning the failure ("" when resolved).
  std::string try_resolve(net::io_context& io);
};

struct http_reply {
  std::optional<error_bucket> failed;  // `status`: the reply parsed but is not a 2xx (status, body kept)
  int status = 0;
  std::string body;
  // Set when failed is not `status`: the step and the reason, one line ("connect: Connection
  // refused", "TLS handshake: certificate verify failed", "read: timeout").
  std::string error;
};

// What async_send keeps of a reply.
struct http_status {
  std::optional<error_bucket> failed;  // never `status`: the caller judges the status
  int status = 0;
};

class http_watchdog;

class http_client {
 public:
  // Without a watchdog the client arms its own timer per request; with one, the watchdog
  // enforces the deadlines (it must outlive the client).
  http_client(net::io_context& io, const http_site& site, http_watchdog* watchdog = nullptr);
  ~http_client();
  http_client(const http_client&) = delete;
  http_client& operator=(const http_client&) = delete;

  // One request built from the site (prefix + target, Host, User-Agent, the site's headers, a
  // JSON body with its Content-Length when there is a body or the method usually has one); the
  // whole reply read within timeout_us. A reused connection the server had closed before
  // answering anything is retried once on a fresh one.
  net::awaitable<http_reply> async_request(std::string_view method, std::string_view target, std::string_view body,
                                           std::int64_t timeout_us);

  // The hot path: sends `request` (complete request bytes, which must outlive the call), reads
  // the reply keeping its status only (`head`: the reply to a HEAD has no body). No allocation
  // per request, no retry.
  net::awaitable<http_status> async_send(std::string_view request, bool head, std::int64_t timeout_us);

  // Fails the request in flight now (its pending operations are cancelled; the failure is
  // whatever step was cut, or `timeout` past the deadline). No effect between requests.
  void cancel();
  // Drops the connection; the next request connects again. Never while a request is in flight.
  void close();

  struct impl;

 private:
  std::shared_ptr<impl> p_;
};

// Enforces the deadlines of many clients on one timer: every tick, each client whose request is
// past its deadline has its operations cancelled and fails with `timeout`.
class http_watchdog {
 public:
  http_watchdog();
  ~http_watchdog();
  http_watchdog(const http_watchdog&) = delete;
  http_watchdog& operator=(const http_watchdog&) = delete;

  // Sweeps every `tick` while keep_going() holds and the coroutine is not cancelled. Its timer
  // lives in the coroutine's frame; the watchdog itself holds no I/O object.
  net::awaitable<void> run(std::chrono::microseconds tick, std::function<bool()> keep_going);
  // Stops a run() now (same thread).
  void stop();

 private:
  friend class http_client;
  struct state;
  std::unique_ptr<state> s_;
};

// One request on a private io_context, blocking (setup and audit code on the controller thread).
http_reply blocking_request(const http_site& site, std::string_view method, std::string_view target,
                            std::string_view body, std::int64_t timeout_us);

// blocking_request for a poller that keeps its site across requests (a scraper, a remote-write
// sender): the host is resolved when the site has no endpoints (a failure is a `connect` reply
// with the reason), and forgotten after a failure other than a status (the server may come up
// later, or move). An empty target is the site's own URL path ("/" when it has none).
http_reply polling_request(http_site& site, std::string_view method, std::string_view target, std::string_view body,
                           std::int64_t timeout_us);

}  // namespace syncstorm::loadgen
