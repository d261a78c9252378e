// The loadgen-internal HTTP/1.1 client (ws_http.hpp) on Beast: a tcp_stream (or an ssl_stream
// over one) per connection, its timer bounding each request, a string response parser.
#include "loadgen/detail/ws_http.hpp"
#include "loadgen/detail/tls_context.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include <openssl/ssl.h>

#include <stdexcept>
#include <variant>

namespace syncstorm::loadgen::detail {
namespace {

using tcp = net::ip::tcp;
using error_code = boost::system::error_code;
constexpr auto use_tuple = net::as_tuple(net::use_awaitable);
constexpr std::uint64_t body_limit = 256ull * 1024 * 1024;

bool closed_by_peer(const error_code& ec) {
  return ec == http::error::end_of_stream || ec == net::error::eof || ec == net::error::connection_reset ||
         ec == net::error::broken_pipe;
}

}  // namespace

http_site http_site::make(const std::string& base, std::vector<std::pair<std::string, std::string>> headers,
                          const tls_spec& tls, const std::string& field) {
  std::string u = base;
  if (u.starts_with("ws://"))
    u = "http://" + u.substr(5);
  else if (u.starts_with("wss://"))
    u = "https://" + u.substr(6);
  http_site s;
  try {
    s.url = parse_url(u);
  } catch (const std::invalid_argument&) {
    throw std::invalid_argument(field + ": found \"" + base + "\"; expected http(s)://host[:port][/path] or ws(s)://…");
  }
  s.prefix = s.url.target;
  if (auto q = s.prefix.find('?'); q != std::string::npos) s.prefix.resize(q);
  while (!s.prefix.empty() && s.prefix.back() == '/') s.prefix.pop_back();
  const bool v6 = s.url.host.find(':') != std::string::npos;
  s.host = (v6 ? "[" + s.url.host + "]" : s.url.host) + ":" + std::to_string(s.url.port);
  s.headers = std::move(headers);
  s.tls = tls;
  s.server_name = tls.server_name.empty() ? s.url.host : tls.server_name;
  error_code ec;
  net::ip::make_address(s.server_name, ec);
  s.sni = bool(ec);
  if (s.url.tls) s.ssl = make_client_ssl_context(tls);
  return s;
}

void http_site::resolve(net::io_context& io, const std::string& load_name) {
  if (!endpoints.empty()) return;
  tcp::resolver resolver(io);
  error_code ec;
  auto results = resolver.resolve(url.host, std::to_string(url.port), ec);
  if (ec || results.empty())
    throw std::runtime_error("load " + load_name + ": cannot resolve " + url.host + ": " + ec.message());
  for (const auto& r : results) endpoints.push_back(r.endpoint());
}

struct http_conn::impl {
  impl(net::io_context& io_, const http_site& s) : io(io_), site(s) {}
  net::io_context& io;
  const http_site& site;
  std::variant<std::monostate, beast::tcp_stream, net::ssl::stream<beast::tcp_stream>> stream;
  beast::flat_buffer buffer;

  beast::tcp_stream& lowest() {
    if (auto* p = std::get_if<beast::tcp_stream>(&stream)) return *p;
    return std::get<net::ssl::stream<beast::tcp_stream>>(stream).next_layer();
  }

  template <class Stream>
  net::awaitable<http_reply> exchange(Stream& st, bool fresh, const http::request<http::string_body>& req,
                                      bool& stale) {
    http_reply r;
    auto [wec, wn] = co_await http::async_write(st, req, use_tuple);
    if (wec) {
      r.failed = wec == beast::error::timeout ? error_bucket::timeout : error_bucket::write;
      stale = !fresh && closed_by_peer(wec);
      co_return r;
    }
    http::response_parser<http::string_body> parser;
    parser.body_limit(body_limit);
    auto [rec, rn] = co_await http::async_read(st, buffer, parser, use_tuple);
    if (rec) {
      if (rec == beast::error::timeout)
        r.failed = error_bucket::timeout;
      else if (rec.category() == net::error::get_ssl_category())
        r.failed = error_bucket::protocol;
      else if (rec.category() == http::make_error_code(http::error::need_more).category() &&
               rec != http::error::end_of_stream && rec != http::error::partial_message)
        r.failed = error_bucket::protocol;
      else
        r.failed = error_bucket::read;
      stale = !fresh && closed_by_peer(rec) && !parser.got_some();
      co_return r;
    }
    r.status = static_cast<int>(parser.get().result_int());
    r.body = std::move(parser.get().body());
    if (!parser.get().keep_alive()) stream.template emplace<std::monostate>();
    if (r.status < 200 || r.status > 299) r.failed = error_bucket::status;
    co_return r;
  }

  net::awaitable<http_reply> once(const http::request<http::string_body>& req, std::int64_t timeout_us, bool& stale) {
    http_reply r;
    bool fresh = false;
    if (std::holds_alternative<std::monostate>(stream)) {
      fresh = true;
      buffer.clear();
      if (site.url.tls)
        stream.emplace<net::ssl::stream<beast::tcp_stream>>(io, *site.ssl);
      else
        stream.emplace<beast::tcp_stream>(io);
    }
    beast::tcp_stream& conn = lowest();
    conn.expires_after(std::chrono::microseconds(timeout_us));
    if (fresh) {
      auto [ec, ep] = co_await conn.async_connect(site.endpoints, use_tuple);
      if (!ec) {
        error_code ignored;
        conn.socket().set_option(tcp::no_delay(true), ignored);
        if (auto* tls = std::get_if<net::ssl::stream<beast::tcp_stream>>(&stream)) {
          if (site.sni) SSL_set_tlsext_host_name(tls->native_handle(), site.server_name.c_str());
          if (site.tls.verify) tls->set_verify_callback(net::ssl::host_name_verification(site.server_name));
          std::tie(ec) = co_await tls->async_handshake(net::ssl::stream_base::client, use_tuple);
        }
      }
      if (ec) {
        r.failed = ec == beast::error::timeout ? error_bucket::timeout : error_bucket::connect;
        stream.emplace<std::monostate>();
        co_return r;
      }
    }
    if (auto* tls = std::get_if<net::ssl::stream<beast::tcp_stream>>(&stream))
      r = co_await exchange(*tls, fresh, req, stale);
    else
      r = co_await exchange(std::get<beast::tcp_stream>(stream), fresh, req, stale);
    if (!std::holds_alternative<std::monostate>(stream)) lowest().expires_never();
    if (r.failed && r.failed != error_bucket::status) stream.emplace<std::monostate>();
    co_return r;
  }
};

http_conn::http_conn(net::io_context& io, const http_site& site) : p_(std::make_unique<impl>(io, site)) {}
http_conn::~http_conn() = default;

void http_conn::close() { p_->stream.emplace<std::monostate>(); }

net::awaitable<http_reply> http_conn::async_request(std::string_view method, const std::string& target,
                                                    const std::string& body, std::int64_t timeout_us) {
  http::request<http::string_body> req;
  req.method_string(method);
  req.target(p_->site.prefix + target);
  req.version(11);
  req.set(http::field::host, p_->site.host);
  req.set(http::field::user_agent, "syncstorm");
  for (const auto& [k, v] : p_->site.headers) req.set(k, v);
  if (!body.empty() || method == "POST" || method == "PUT" || method == "PATCH") {
    req.set(http::field::content_type, "application/json");
    req.body() = body;
    req.prepare_payload();
  }
  bool stale = false;
  http_reply r = co_await p_->once(req, timeout_us, stale);
  if (stale) {
    stale = false;
    r = co_await p_->once(req, timeout_us, stale);
  }
  co_return r;
}

http_reply blocking_request(const http_site& site, std::string_view method, const std::string& target,
                            const std::string& body, std::int64_t timeout_us) {
  net::io_context io;
  http_conn conn(io, site);
  http_reply out;
  net::co_spawn(
      io, [&]() -> net::awaitable<void> { out = co_await conn.async_request(method, target, body, timeout_us); },
      net::detached);
  io.run();
  return out;
}

}  // namespace syncstorm::loadgen::detail
