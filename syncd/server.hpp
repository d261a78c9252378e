// syncd's network side: the accept loop, HTTP/1.1 sessions (http_session.cpp) and WebSocket
// subscribers (ws_session.cpp). One io_context run by N threads; each connection lives on its
// own strand, so a session's state is touched by one thread at a time without locks.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include "core/net.hpp"
#include "syncd/app.hpp"

namespace syncstorm::syncd {

// Binds and starts accepting; throws std::system_error when the address cannot be bound.
// The acceptor is owned by the returned server; `shutdown` closes it.
class server {
 public:
  server(app& a, const std::string& address, std::uint16_t port);
  void start();
  // SIGTERM: stop accepting, drain sessions (WebSockets close with 1012) and background
  // commits for at most `drain_timeout`, then stop the io_context.
  void async_shutdown(std::chrono::milliseconds drain_timeout);
  std::uint16_t port() const { return port_; }

 private:
  app& app_;
  net::ip::tcp::acceptor acceptor_;
  std::uint16_t port_ = 0;
};

// Runs one WebSocket subscriber on `stream` (already on its strand) for an upgrade request that
// named `streams` and optionally `after`. Returns when the connection is closed.
net::awaitable<void> run_ws_session(app& a, beast::tcp_stream stream, http::request<http::string_body> req,
                                    std::vector<std::string> streams, std::optional<std::int64_t> after);

}  // namespace syncstorm::syncd
