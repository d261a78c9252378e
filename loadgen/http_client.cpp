// The one HTTP/1.1 client (http_client.hpp) on Asio sockets and Beast's parsers: a tcp::socket,
// or an ssl::stream over one, per connection; reads are a read_some/put loop (one operation
// layer per read, not http::async_read's composed operations); requests are serialized by hand
// (async_request) or by the caller (async_send). Deadlines: the client's own timer or an
// http_watchdog, either of which cancels the socket's operations.
#include "loadgen/http_client.hpp"
#include "core/discarding_parser.hpp"
#include "loadgen/detail/reply_feed.hpp"
#include "loadgen/detail/tls_context.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>

#include <openssl/ssl.h>

#include <algorithm>
#include <stdexcept>

namespace syncstorm::loadgen {
namespace {

using tcp = net::ip::tcp;
using error_code = boost::system::error_code;
using steady = std::chrono::steady_clock;
constexpr auto use_tuple = net::as_tuple(net::use_awaitable);
constexpr std::size_t read_chunk = 8 * 1024;

// Parses a response keeping only the status line: no field storage, the body is counted and
// dropped. basic_parser cannot be reset, so one is constructed per response (on the stack).
class status_sink final : public discarding_parser<false> {
 public:
  int status() const noexcept { return status_; }

 private:
  void on_request_impl(http::verb, beast::string_view, beast::string_view, int, error_code& ec) override {
    ec = http::error::bad_method;  // unreachable for a response parser
  }
  void on_response_impl(int code, beast::string_view, int, error_code&) override { status_ = code; }

  int status_ = 0;
};

bool closed_by_peer(const error_code& ec) {
  return ec == net::error::eof || ec == net::error::connection_reset || ec == net::error::broken_pipe ||
         ec == http::error::end_of_stream;
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() &&
         std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) { return (x | 0x20) == (y | 0x20); });
}

}  // namespace

// ---- the site ---------------------------------------------------------------------------------

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
  s.host = host_header(s.url);
  s.headers = std::move(headers);
  s.tls = tls;
  s.server_name = tls.server_name.empty() ? s.url.host : tls.server_name;
  error_code ec;
  net::ip::make_address(s.server_name, ec);
  s.sni = bool(ec);
  if (s.url.tls) s.ssl = detail::make_client_ssl_context(tls);
  return s;
}

std::string http_site::try_resolve(net::io_context& io) {
  if (!endpoints.empty()) return {};
  tcp::resolver resolver(io);
  error_code ec;
  auto results = resolver.resolve(url.host, std::to_string(url.port), ec);
  if (!ec && results.empty()) ec = net::error::host_not_found;
  if (ec) return "cannot resolve " + url.host + ": " + ec.message();
  for (const auto& r : results) endpoints.push_back(r.endpoint());
  return {};
}

void http_site::resolve(net::io_context& io, const std::string& load_name) {
  if (std::string why = try_resolve(io); !why.empty()) throw std::runtime_error("load " + load_name + ": " + why);
}

// ---- one connection ---------------------------------------------------------------------------

struct http_watchdog::state {
  std::vector<http_client::impl*> clients;
  net::steady_timer* timer = nullptr;  // while run() waits
  bool stopped = false;
};

struct http_client::impl : std::enable_shared_from_this<impl> {
  impl(net::io_context& io_, const http_site& s, http_watchdog::state* wd) : io(io_), site(s), watchdog(wd) {
    if (watchdog) watchdog->clients.push_back(this);
  }
  ~impl() {
    if (watchdog) std::erase(watchdog->clients, this);
  }

  net::io_context& io;
  const http_site& site;
  http_watchdog::state* watchdog;
  std::optional<tcp::socket> plain;
  std::optional<net::ssl::stream<tcp::socket>> tls;
  beast::flat_buffer buffer;
  std::optional<net::steady_timer> timer;  // without a watchdog
  steady::time_point deadline = steady::time_point::max();
  std::uint64_t requests = 0;  // a timer that fired late never cuts a later request
  bool busy = false, timed_out = false;
  std::string bytes;  // async_request's serialized request (its capacity reused)

  bool connected() const { return plain.has_value() || tls.has_value(); }
  tcp::socket* socket() {
    if (tls) return &tls->next_layer();
    return plain ? &*plain : nullptr;
  }
  void drop() {
    tls.reset();
    plain.reset();
    buffer.clear();  // nothing of an old connection is read on a new one
  }
  void cancel_ops() {
    if (tcp::socket* s = socket()) {
      error_code ignored;
      s->cancel(ignored);
    }
  }
  void expire() {
    timed_out = true;
    cancel_ops();
  }
  std::string failure(const char* step, const error_code& ec) const {
    return std::string(step) + ": " + (timed_out ? std::string("timeout") : ec.message());
  }

  void begin(std::int64_t timeout_us) {
    busy = true;
    timed_out = false;
    ++requests;
    deadline = steady::now() + std::chrono::microseconds(timeout_us);
    if (watchdog) return;
    if (!timer) timer.emplace(io);
    timer->expires_at(deadline);
    timer->async_wait([self = weak_from_this(), n = requests](const error_code& ec) {
      if (ec) return;
      if (auto p = self.lock(); p && p->busy && p->requests == n) p->expire();
    });
  }
  void end() {
    busy = false;
    deadline = steady::time_point::max();
    if (timer) timer->cancel();
  }

  // TCP (each resolved address in turn), then the TLS handshake.
  net::awaitable<std::optional<error_bucket>> connect(std::string* why) {
    if (site.url.tls)
      tls.emplace(io, *site.ssl);
    else
      plain.emplace(io);
    tcp::socket& s = *socket();
    error_code ec = net::error::host_not_found;
    for (const auto& ep : site.endpoints) {
      if (timed_out) break;
      if (s.is_open()) {
        error_code ignored;
        s.close(ignored);
      }
      std::tie(ec) = co_await s.async_connect(ep, use_tuple);
      if (!ec || ec == net::error::operation_aborted) break;
    }
    const char* step = "connect";
    if (!ec) {
      error_code ignored;
      s.set_option(tcp::no_delay(true), ignored);
      if (plain) s.non_blocking(true, ignored);  // for write_direct
      if (tls) {
        step = "TLS handshake";
        if (site.sni) SSL_set_tlsext_host_name(tls->native_handle(), site.server_name.c_str());
        if (site.tls.verify) tls->set_verify_callback(net::ssl::host_name_verification(site.server_name));
        std::tie(ec) = co_await tls->async_handshake(net::ssl::stream_base::client, use_tuple);
      }
    }
    if (!ec) co_return std::nullopt;
    if (why) *why = failure(step, ec);
    drop();
    co_return timed_out ? error_bucket::timeout : error_bucket::connect;
  }

  // The request is small: one write_some almost always takes it whole. Over plain TCP the
  // first attempt is a direct non-blocking send (no operation to schedule, no coroutine frame);
  // `out` keeps what it did not take, for write_rest.
  std::optional<error_bucket> write_direct(std::string_view& out, bool fresh, bool& stale, std::string* why) {
    if (!plain) return std::nullopt;
    error_code ec;
    const std::size_t n = plain->write_some(net::buffer(out), ec);
    if (ec == net::error::would_block || ec == net::error::try_again) return std::nullopt;
    if (!ec) {
      out.remove_prefix(n);
      return std::nullopt;
    }
    stale = !fresh && closed_by_peer(ec);
    if (why) *why = failure("write", ec);
    return error_bucket::write;
  }

  net::awaitable<std::optional<error_bucket>> write_rest(std::string_view out, bool fresh, bool& stale,
                                                         std::string* why) {
    error_code ec;
    while (!ec && !out.empty()) {
      std::size_t n = 0;
      if (tls)
        std::tie(ec, n) = co_await tls->async_write_some(net::buffer(out), use_tuple);
      else
        std::tie(ec, n) = co_await plain->async_write_some(net::buffer(out), use_tuple);
      out.remove_prefix(n);
    }
    if (!ec) co_return std::nullopt;
    stale = !fresh && closed_by_peer(ec);
    if (why) *why = failure("write", ec);
    co_return timed_out ? error_bucket::timeout : error_bucket::write;
  }

  // One exchange within timeout_us: connects when there is no connection, sends `out`, reads one
  // response into `parser` through the buffer (bytes past the response stay there). The
  // connection is dropped after a failure or a reply without keep-alive. `stale`: a reused
  // connection the server had closed before any reply byte.
  template <class Parser>
  net::awaitable<std::optional<error_bucket>> exchange(std::string_view out, Parser& parser, std::int64_t timeout_us,
                                                       bool& stale, std::string* why) {
    begin(timeout_us);
    const bool fresh = !connected();
    std::optional<error_bucket> failed;
    if (fresh) failed = co_await connect(why);
    if (!failed) failed = write_direct(out, fresh, stale, why);
    if (!failed && !out.empty()) failed = co_await write_rest(out, fresh, stale, why);
    if (!failed) failed = co_await read(parser, fresh, stale, why);
    end();
    if (failed || !parser.keep_alive()) drop();
    co_return failed;
  }

  template <class Parser>
  net::awaitable<std::optional<error_bucket>> read(Parser& parser, bool fresh, bool& stale, std::string* why) {
    error_code ec;
    bool eof = false;
    for (;;) {
      switch (detail::feed_reply(parser, buffer, eof, ec)) {
        case detail::feed_state::done:
          co_return std::nullopt;
        case detail::feed_state::bad:
          if (why) *why = "read: " + ec.message();  // not HTTP, or over the body limit
          co_return error_bucket::protocol;
        case detail::feed_state::closed_empty:
          stale = !fresh;
          if (why) *why = "read: the server closed the connection without a reply";
          co_return error_bucket::read;
        case detail::feed_state::closed_mid:
          if (why) *why = "read: the server closed the connection mid-reply";
          co_return error_bucket::read;
        case detail::feed_state::need_more:
          break;
      }
      // Asio first tries a recv that usually finds nothing yet (the reply is on its way); that
      // measured cheaper than async_wait + read_some, whose re-arm costs an epoll_ctl each time.
      error_code rec;
      std::size_t n = 0;
      if (tls)
        std::tie(rec, n) = co_await tls->async_read_some(buffer.prepare(read_chunk), use_tuple);
      else
        std::tie(rec, n) = co_await plain->async_read_some(buffer.prepare(read_chunk), use_tuple);
      buffer.commit(n);
      if (rec == net::error::eof) {
        eof = true;
        continue;
      }
      if (rec) {
        stale = !fresh && closed_by_peer(rec) && !parser.got_some();
        if (why) *why = failure("read", rec);
        if (timed_out) co_return error_bucket::timeout;
        // A TLS alert instead of a reply (e.g. a required client certificate, under TLS 1.3).
        if (rec.category() == net::error::get_ssl_category()) co_return error_bucket::protocol;
        co_return error_bucket::read;  // reset, truncated TLS stream, ...
      }
    }
  }

  void serialize(std::string_view method, std::string_view target, std::string_view body) {
    std::string& b = bytes;
    b.clear();
    const auto& hs = site.headers;
    auto given = [&hs](std::string_view name) {
      return std::any_of(hs.begin(), hs.end(), [name](const auto& h) { return iequals(h.first, name); });
    };
    b += method;
    b += ' ';
    b += site.prefix;
    b += target;
    if (site.prefix.empty() && target.empty()) b += '/';
    b += " HTTP/1.1\r\n";
    if (!given("host")) b += "Host: " + site.host + "\r\n";
    if (!given("user-agent") && !site.user_agent.empty()) b += "User-Agent: " + site.user_agent + "\r\n";
    for (std::size_t i = 0; i < hs.size(); ++i) {
      const std::string& k = hs[i].first;  // not a structured binding: clang 14 cannot capture one
      const std::string& v = hs[i].second;
      // The framing is the client's; a header given twice is sent once, its last value.
      if (iequals(k, "content-length") || iequals(k, "transfer-encoding")) continue;
      if (std::any_of(hs.begin() + static_cast<std::ptrdiff_t>(i) + 1, hs.end(),
                      [&k](const auto& h) { return iequals(h.first, k); }))
        continue;
      b += k;
      b += ": ";
      b += v;
      b += "\r\n";
    }
    if (!body.empty() || method == "POST" || method == "PUT" || method == "PATCH") {
      if (!given("content-type")) b += "Content-Type: application/json\r\n";
      b += "Content-Length: " + std::to_string(body.size()) + "\r\n";
    }
    b += "\r\n";
    b += body;
  }

  net::awaitable<http_reply> request_once(bool head, std::int64_t timeout_us, bool& stale) {
    http_reply r;
    http::response_parser<http::string_body> parser;
    parser.eager(true);
    parser.body_limit(site.body_limit);
    if (head) parser.skip(true);
    r.failed = co_await exchange(bytes, parser, timeout_us, stale, &r.error);
    if (r.failed) co_return r;
    r.status = static_cast<int>(parser.get().result_int());
    r.body = std::move(parser.get().body());
    if (r.status < 200 || r.status > 299) r.failed = error_bucket::status;
    co_return r;
  }
};

http_client::http_client(net::io_context& io, const http_site& site, http_watchdog* watchdog)
    : p_(std::make_shared<impl>(io, site, watchdog ? watchdog->s_.get() : nullptr)) {}

http_client::~http_client() = default;

net::awaitable<http_reply> http_client::async_request(std::string_view method, std::string_view target,
                                                      std::string_view body, std::int64_t timeout_us) {
  impl& m = *p_;
  m.serialize(method, target, body);
  bool stale = false;
  http_reply r = co_await m.request_once(method == "HEAD", timeout_us, stale);
  if (stale) {
    // The server closed the idle keep-alive connection: not its failure; once more, fresh.
    stale = false;
    r = co_await m.request_once(method == "HEAD", timeout_us, stale);
  }
  co_return r;
}

net::awaitable<http_status> http_client::async_send(std::string_view request, bool head, std::int64_t timeout_us) {
  status_sink parser;
  parser.eager(true);
  parser.body_limit(boost::none);
  if (head) parser.skip(true);
  bool stale = false;  // not retried here
  http_status out;
  out.failed = co_await p_->exchange(request, parser, timeout_us, stale, nullptr);
  out.status = parser.status();
  co_return out;
}

void http_client::cancel() {
  if (p_->busy) p_->cancel_ops();
}

void http_client::close() { p_->drop(); }

// ---- the watchdog -----------------------------------------------------------------------------

http_watchdog::http_watchdog() : s_(std::make_unique<state>()) {}
http_watchdog::~http_watchdog() = default;

net::awaitable<void> http_watchdog::run(std::chrono::microseconds tick, std::function<bool()> keep_going) {
  co_await net::this_coro::throw_if_cancelled(false);
  const auto cs = co_await net::this_coro::cancellation_state;
  net::steady_timer timer(co_await net::this_coro::executor);
  s_->timer = &timer;
  while (!s_->stopped && keep_going() && cs.cancelled() == net::cancellation_type::none) {
    timer.expires_after(tick);
    co_await timer.async_wait(use_tuple);
    const auto now = steady::now();
    for (http_client::impl* c : s_->clients)
      if (c->busy && !c->timed_out && now >= c->deadline) c->expire();
  }
  s_->timer = nullptr;
}

void http_watchdog::stop() {
  s_->stopped = true;
  if (s_->timer) s_->timer->cancel();
}

// ---- blocking ---------------------------------------------------------------------------------

http_reply blocking_request(const http_site& site, std::string_view method, std::string_view target,
                            std::string_view body, std::int64_t timeout_us) {
  net::io_context io;
  http_reply out;
  {
    http_client conn(io, site);
    net::co_spawn(
        io, [&]() -> net::awaitable<void> { out = co_await conn.async_request(method, target, body, timeout_us); },
        net::detached);
    io.run();
  }
  return out;
}

http_reply polling_request(http_site& site, std::string_view method, std::string_view target, std::string_view body,
                           std::int64_t timeout_us) {
  http_reply r;
  if (site.endpoints.empty()) {
    net::io_context io;
    if (std::string why = site.try_resolve(io); !why.empty()) {
      r.failed = error_bucket::connect;
      r.error = why;
      return r;
    }
  }
  if (target.empty() && site.prefix.empty()) target = "/";
  r = blocking_request(site, method, target, body, timeout_us);
  if (r.failed && r.failed != error_bucket::status) site.endpoints.clear();
  return r;
}

}  // namespace syncstorm::loadgen
