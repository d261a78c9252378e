// A small HTTP/1.1 client shared by the fanout model (its pushes, its records snapshot) and the
// bootstrap model (its pulls): one keep-alive connection per http_conn, https with the target's
// TLS settings, the target's headers on every request (values never logged), one deadline per
// request, failures classified into the error buckets of http_model.hpp and never thrown.
//
// Threading: an http_site is built once (it resolves the host) and then shared read-only by
// every worker; an http_conn belongs to one worker's io_context and serves one request at a time.
// Asio appears here (this header is internal to loadgen); Beast stays in ws_http.cpp.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <cstdint>
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

namespace syncstorm::loadgen::detail {

struct http_site {
  url_parts url;       // the base URL (http or https); ws:// and wss:// are accepted as http(s)
  std::string prefix;  // the base URL's path without a trailing '/', prepended to every target
  std::string host;    // the Host header value
  std::vector<std::pair<std::string, std::string>> headers;
  tls_spec tls;
  std::string server_name;  // SNI / verified name
  bool sni = false;
  std::vector<net::ip::tcp::endpoint> endpoints;
  std::shared_ptr<net::ssl::context> ssl;  // https only

  // Parses and validates (URL, TLS files); throws std::invalid_argument naming `field`.
  static http_site make(const std::string& base, std::vector<std::pair<std::string, std::string>> headers,
                        const tls_spec& tls, const std::string& field);
  // Resolves the host once (blocking); throws std::runtime_error ("cannot resolve …").
  void resolve(net::io_context& io, const std::string& load_name);
};

struct http_reply {
  std::optional<error_bucket> failed;  // set: no usable reply (status holds a non-2xx when `status`)
  int status = 0;
  std::string body;
};

class http_conn {
 public:
  http_conn(net::io_context& io, const http_site& site);
  ~http_conn();
  http_conn(const http_conn&) = delete;
  http_conn& operator=(const http_conn&) = delete;

  // One request: (re)connects when needed, sends, reads the whole reply within timeout_us. A
  // non-2xx status sets failed = status (the body is kept). A reused connection the server had
  // closed is retried once on a fresh one. `target` is appended to the site's prefix.
  net::awaitable<http_reply> async_request(std::string_view method, const std::string& target, const std::string& body,
                                           std::int64_t timeout_us);
  // Drops the connection (same thread); a request in flight fails.
  void close();

 private:
  struct impl;
  std::unique_ptr<impl> p_;
};

// The same, blocking on a private io_context (setup code on the controller thread).
http_reply blocking_request(const http_site& site, std::string_view method, const std::string& target,
                            const std::string& body, std::int64_t timeout_us);

}  // namespace syncstorm::loadgen::detail
