// The http model's runtime on Beast: per worker, an arrival coroutine (open model) and a pool
// of connection coroutines that take arrivals from an idle stack or a FIFO of waiting ones.
// Everything here runs on one worker's thread; the model object only hands out per-worker state.
//
// Hot path, per request: no allocation (request bytes serialized once per model, a flat_buffer
// per connection, a response parser that keeps no fields and drops the body), no exception
// (`as_tuple`), no timer: one deadline per exchange (connect, handshake, write, read) that a
// per-worker watchdog enforces by cancelling the socket. tcp_stream::expires_after arms and
// cancels a timer on every read and write, which cost more CPU per request than wrk spends in
// all (bench/README.md); the watchdog costs one timer per worker.
#include "loadgen/http_model.hpp"
#include "core/discarding_parser.hpp"
#include "loadgen/detail/tls_context.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/basic_parser.hpp>
#include <boost/beast/http/error.hpp>

#include <openssl/ssl.h>

#include <algorithm>
#include <array>
#include <deque>
#include <stdexcept>

#include "loadgen/detail/arrival_loop.hpp"
#include "loadgen/detail/task_group.hpp"

namespace syncstorm::loadgen {
namespace {

using tcp = net::ip::tcp;
using error_code = boost::system::error_code;
constexpr auto use_tuple = net::as_tuple(net::use_awaitable);
constexpr auto closed_connect_backoff = std::chrono::milliseconds(10);
constexpr std::size_t read_chunk = 8 * 1024;

// Parses a response keeping only the status line: no field storage, the body is counted and
// dropped. basic_parser cannot be reset, so one is constructed per response (on the stack).
class response_sink final : public discarding_parser<false> {
 public:
  int status() const noexcept { return status_; }

 private:
  void on_request_impl(http::verb, beast::string_view, beast::string_view, int, error_code& ec) override {
    ec = http::error::bad_method;  // unreachable for a response parser
  }
  void on_response_impl(int code, beast::string_view, int, error_code&) override { status_ = code; }

  int status_ = 0;
};

// What the model's workers share, read-only once built.
struct shared_state {
  http_model_config config;
  url_parts url;
  std::string request;  // serialized once
  std::string server_name;
  bool sni = false;  // server_name is a DNS name (SNI must not carry an IP literal)
  bool head = false;
  std::int64_t end_us = 0;  // end of the phases (closed model: 0 = until stop())
  std::vector<tcp::endpoint> endpoints;
};

// An idle connection parks on `wake` (expiring never); the arrival coroutine hands it work by
// setting has_work and the times, then cancelling the wait.
struct connection_slot {
  explicit connection_slot(net::io_context& io) : wake(io) {}
  net::steady_timer wake;
  bool has_work = false;
  std::int64_t intended_us = 0, issued_us = 0;
  // While an exchange runs: when it times out (µs since start, 0 when none) and the socket
  // the watchdog cancels then.
  std::int64_t deadline_us = 0;
  tcp::socket* socket = nullptr;
  bool timed_out = false;
};

struct waiting_arrival {
  std::int64_t intended_us, issued_us;
};

// One worker's share of the model: its connections, its queue, its metrics. Only touched on
// the worker's thread once start() returned.
struct http_worker {
  http_worker(worker& w_, const shared_state& s_)
      : w(w_),
        s(s_),
        latency(w.metrics().metric("http.latency@" + s.config.name)),
        uncorrected(w.metrics().metric("http.latency.uncorrected@" + s.config.name)),
        requests(w.metrics().metric("http.requests@" + s.config.name)),
        queue_wait(w.metrics().metric("http.queue_wait@" + s.config.name)),
        unsent(w.metrics().metric("http.unsent@" + s.config.name)) {
    detail::register_arrival_metrics(w);
    for (std::size_t b = 0; b < error_bucket_count; ++b)
      errors[b] = &w.metrics().metric("http.errors." + std::string(to_string(static_cast<error_bucket>(b))) + "@" +
                                      s.config.name);
    if (s.url.tls) ssl = detail::make_client_ssl_context(s.config.tls);
  }

  void outcome(std::int64_t intended_us, std::int64_t sent_us, std::optional<error_bucket> err) {
    const std::int64_t now = w.now_us();
    const bool ok = !err;
    latency.record(now, now - intended_us, ok);
    uncorrected.record(now, now - sent_us, ok);
    requests.add(now, 1, ok);
    if (err) errors[static_cast<std::size_t>(*err)]->add(now, 1, false);
  }

  // Hands an arrival to an idle connection, or queues it until one frees up.
  void dispatch(std::int64_t intended_us, std::int64_t issued_us) {
    if (idle.empty()) {
      waiting.push_back({intended_us, issued_us});
      return;
    }
    connection_slot* c = idle.back();  // LIFO: the warmest connection
    idle.pop_back();
    c->has_work = true;
    c->intended_us = intended_us;
    c->issued_us = issued_us;
    c->wake.cancel();
  }

  void wake_idle() {
    for (connection_slot* c : idle) c->wake.cancel();
    idle.clear();
  }

  void begin_stop() {
    stopping = true;
    if (arrival_timer) arrival_timer->cancel();
    if (!waiting.empty()) unsent.add(w.now_us(), waiting.size(), false);
    waiting.clear();
    wake_idle();
    for (connection_slot* c : slots) c->wake.cancel();
  }

  worker& w;
  const shared_state& s;
  std::unique_ptr<net::ssl::context> ssl;
  timed_metric &latency, &uncorrected, &requests, &queue_wait, &unsent;
  std::array<timed_metric*, error_bucket_count> errors{};
  std::deque<waiting_arrival> waiting;
  std::vector<connection_slot*> idle;
  std::vector<connection_slot*> slots;
  // I/O objects live in the coroutine frames (they must die before the io_context); these
  // point into the live frames so that stop can wake them.
  net::steady_timer* arrival_timer = nullptr;
  std::size_t connections_alive = 0;
  bool arrivals_done = false, stopping = false;
};

bool cancelled(const net::cancellation_state& cs) { return cs.cancelled() != net::cancellation_type::none; }

error_bucket classify_read(const error_code& ec) {
  // A TLS alert instead of a reply (e.g. a required client certificate, under TLS 1.3).
  if (ec.category() == net::error::get_ssl_category()) return error_bucket::protocol;
  return error_bucket::read;  // reset, eof, truncated TLS stream, ...
}

// The arrival coroutine of the open model: issues this worker's arrivals on schedule.
net::awaitable<void> run_arrivals(http_worker& hw, arrival_schedule schedule) {
  co_await detail::run_arrival_loop(
      hw.w, std::move(schedule), hw.arrival_timer, [&hw] { return hw.stopping; },
      [&hw](std::int64_t due, std::int64_t now) { hw.dispatch(due, now); });
  hw.arrivals_done = true;
  hw.wake_idle();
}

template <bool Tls>
using stream_type = std::conditional_t<Tls, net::ssl::stream<tcp::socket>, tcp::socket>;

template <bool Tls>
tcp::socket& socket_of(stream_type<Tls>& s) {
  if constexpr (Tls)
    return s.next_layer();
  else
    return s;
}

// Reads one response into `parser` through `buffer` (bytes past the response stay there).
// A plain read_some/put loop rather than http::async_read: one operation layer per read.
template <class Stream>
net::awaitable<std::optional<error_bucket>> async_read_response(Stream& stream, beast::flat_buffer& buffer,
                                                                response_sink& parser) {
  error_code ec;
  for (;;) {
    if (buffer.size() != 0) {
      const std::size_t used = parser.put(buffer.data(), ec);
      buffer.consume(used);
      if (parser.is_done()) co_return std::nullopt;
      if (ec == http::error::need_more)
        ec = {};
      else if (ec)
        co_return error_bucket::protocol;
      else if (used != 0)
        continue;
    }
    // Asio first tries a recv that usually finds nothing yet (the reply is on its way); that
    // measured cheaper than async_wait + read_some, whose re-arm costs an epoll_ctl each time.
    auto [rec, n] = co_await stream.async_read_some(buffer.prepare(read_chunk), use_tuple);
    buffer.commit(n);
    if (rec == net::error::eof) {
      if (buffer.size() != 0) continue;  // parse what came with the close first
      if (!parser.got_some()) co_return error_bucket::read;
      parser.put_eof(ec);
      if (ec || !parser.is_done()) co_return error_bucket::read;
      co_return std::nullopt;
    }
    if (rec) co_return classify_read(rec);
  }
}

// One pooled keep-alive connection: takes work, (re)connects when needed, sends, reads.
template <bool Tls>
net::awaitable<void> run_connection(http_worker& hw) {
  co_await net::this_coro::throw_if_cancelled(false);
  const auto cs = co_await net::this_coro::cancellation_state;
  net::io_context& io = hw.w.io();
  const shared_state& s = hw.s;
  const bool open = s.config.open;
  connection_slot slot(io);
  hw.slots.push_back(&slot);
  std::optional<stream_type<Tls>> stream;
  beast::flat_buffer buffer;
  buffer.reserve(16 * 1024);

  for (;;) {
    if (hw.stopping || cancelled(cs)) break;
    std::int64_t intended, issued, sent;
    bool waited = false;
    if (open) {
      if (!hw.waiting.empty()) {
        intended = hw.waiting.front().intended_us;
        issued = hw.waiting.front().issued_us;
        hw.waiting.pop_front();
        waited = true;
      } else if (hw.arrivals_done) {
        break;
      } else {
        hw.idle.push_back(&slot);
        slot.wake.expires_at(net::steady_timer::time_point::max());
        co_await slot.wake.async_wait(use_tuple);
        if (!slot.has_work) {
          // Woken to stop or cancelled: make sure no arrival is handed to this slot.
          std::erase(hw.idle, &slot);
          continue;
        }
        slot.has_work = false;
        intended = slot.intended_us;
        issued = slot.issued_us;
      }
      sent = hw.w.now_us();
      if (waited) hw.queue_wait.record(sent, sent - issued);
    } else {
      intended = issued = sent = hw.w.now_us();
      if (s.end_us != 0 && intended >= s.end_us) break;
    }

    if (!stream) {
      if constexpr (Tls)
        stream.emplace(io, *hw.ssl);
      else
        stream.emplace(io);
    }
    tcp::socket& socket = socket_of<Tls>(*stream);
    // One deadline for the whole exchange, connect and handshake included; the worker's
    // watchdog cancels the socket's operations when it passes.
    slot.socket = &socket;
    slot.timed_out = false;
    slot.deadline_us = sent + s.config.timeout_us;
    std::optional<error_bucket> failed;
    error_code ec;

    if (!socket.is_open()) {
      std::tie(ec, std::ignore) = co_await net::async_connect(socket, s.endpoints, use_tuple);
      if (!ec) {
        error_code ignored;
        socket.set_option(tcp::no_delay(true), ignored);
        socket.non_blocking(true, ignored);  // for the direct send below
        if constexpr (Tls) {
          if (s.sni) SSL_set_tlsext_host_name(stream->native_handle(), s.server_name.c_str());
          if (s.config.tls.verify) stream->set_verify_callback(net::ssl::host_name_verification(s.server_name));
          std::tie(ec) = co_await stream->async_handshake(net::ssl::stream_base::client, use_tuple);
        }
      }
      if (ec) failed = error_bucket::connect;
    }
    if (!failed) {
      // The request is small: one write_some almost always takes it whole. Over plain TCP
      // the first attempt is a direct non-blocking send (no operation to schedule).
      std::size_t at = 0;
      if constexpr (!Tls) {
        at = socket.write_some(net::buffer(s.request), ec);
        if (ec == net::error::would_block || ec == net::error::try_again) ec = {};
        if (ec) failed = error_bucket::write;
      }
      while (!failed && at < s.request.size()) {
        std::size_t n;
        std::tie(ec, n) =
            co_await stream->async_write_some(net::buffer(s.request.data() + at, s.request.size() - at), use_tuple);
        if (ec) {
          failed = error_bucket::write;
          break;
        }
        at += n;
      }
    }
    bool keep = false;
    if (!failed) {
      response_sink parser;
      parser.eager(true);
      parser.body_limit(boost::none);
      if (s.head) parser.skip(true);
      failed = co_await async_read_response(*stream, buffer, parser);
      if (!failed) {
        keep = parser.keep_alive();
        const int status = parser.status();
        const auto& expect = s.config.expect_status;
        const bool good = expect.empty() ? status >= 200 && status < 300
                                         : std::find(expect.begin(), expect.end(), status) != expect.end();
        if (!good) failed = error_bucket::status;
      }
    }
    slot.deadline_us = 0;
    slot.socket = nullptr;
    // A cancelled run abandons the exchange: the server did nothing wrong, so nothing counts.
    if (cancelled(cs)) break;
    if (failed && slot.timed_out) failed = error_bucket::timeout;
    hw.outcome(intended, sent, failed);
    if (!keep || failed) {
      stream.reset();
      buffer.clear();
    }
    if (!open && failed == error_bucket::connect) {
      // Closed model against a refusing server: do not spin on connect.
      slot.wake.expires_after(closed_connect_backoff);
      co_await slot.wake.async_wait(use_tuple);
    }
  }
  std::erase(hw.idle, &slot);
  std::erase(hw.slots, &slot);
  --hw.connections_alive;
}

// Per worker: enforces the request timeout of every connection by cancelling the socket
// operations of an exchange past its deadline. One timer per worker instead of one armed and
// cancelled per read and write (tcp_stream's way), which the hot path cannot afford; timeouts
// fire up to one tick (timeout/10, 1 to 100 ms) late.
net::awaitable<void> run_watchdog(http_worker& hw) {
  co_await net::this_coro::throw_if_cancelled(false);
  const auto cs = co_await net::this_coro::cancellation_state;
  const auto tick = std::chrono::microseconds(std::clamp<std::int64_t>(hw.s.config.timeout_us / 10, 1000, 100'000));
  net::steady_timer timer(hw.w.io());
  while (hw.connections_alive > 0 && !cancelled(cs)) {
    timer.expires_after(tick);
    co_await timer.async_wait(use_tuple);
    const std::int64_t now = hw.w.now_us();
    for (connection_slot* c : hw.slots) {
      if (c->deadline_us != 0 && now >= c->deadline_us && c->socket && !c->timed_out) {
        c->timed_out = true;
        error_code ignored;
        c->socket->cancel(ignored);
      }
    }
  }
}

class http_model final : public load_model {
 public:
  explicit http_model(shared_state s) : s_(std::move(s)) {}

  std::string_view name() const override { return s_.config.name; }

  void start(worker& w) override {
    if (workers_.empty()) {
      workers_.resize(w.count());
      resolve(w.io());
    }
    auto& hw = *(workers_.at(w.index()) = std::make_unique<http_worker>(w, s_));
    // With fewer connections than workers, only the workers that hold a connection take
    // arrivals (an arrival on a worker without one would wait forever).
    const std::size_t senders = std::min(w.count(), s_.config.connections);
    const std::size_t n = split_count(s_.config.connections, w.index(), w.count());
    if (s_.config.open && !s_.config.phases.empty() && n != 0)
      w.tasks().spawn(run_arrivals(hw, arrival_schedule(s_.config.phases, w.index(), senders)));
    else
      hw.arrivals_done = true;
    hw.connections_alive = n;
    for (std::size_t i = 0; i < n; ++i)
      w.tasks().spawn(s_.url.tls ? run_connection<true>(hw) : run_connection<false>(hw));
    if (n != 0) w.tasks().spawn(run_watchdog(hw));
  }

  void stop() override {
    for (auto& hw : workers_)
      if (hw) net::post(hw->w.io(), [p = hw.get()] { p->begin_stop(); });
  }

 private:
  // Once, on the controller thread, before any worker runs: a name that does not resolve is a
  // setup failure, not a stream of connect errors.
  void resolve(net::io_context& io) {
    tcp::resolver resolver(io);
    error_code ec;
    auto results = resolver.resolve(s_.url.host, std::to_string(s_.url.port), ec);
    if (ec || results.empty())
      throw std::runtime_error("load " + s_.config.name + ": cannot resolve " + s_.url.host + ": " + ec.message());
    for (const auto& r : results) s_.endpoints.push_back(r.endpoint());
  }

  shared_state s_;
  std::vector<std::unique_ptr<http_worker>> workers_;
};

}  // namespace

std::unique_ptr<load_model> make_http_model(const http_model_config& config) {
  shared_state s;
  s.config = config;
  s.url = parse_url(config.url);
  const std::string where = "load " + config.name + ": ";
  if (config.connections == 0) throw std::invalid_argument(where + "connections: found 0; expected at least 1");
  if (config.timeout_us <= 0)
    throw std::invalid_argument(where + "timeout: found " + std::to_string(config.timeout_us) +
                                " µs; expected a positive duration");
  if (config.method.empty() || config.method.find_first_of(" \r\n") != std::string::npos)
    throw std::invalid_argument(where + "request.method: found \"" + config.method +
                                "\"; expected an HTTP method token");
  // Throws on bad phases; also gives the phases' end.
  arrival_schedule schedule(config.phases);
  s.end_us = schedule.end_us();
  s.request = serialize_request(config, s.url);
  s.head = config.method == "HEAD";
  s.server_name = config.tls.server_name.empty() ? s.url.host : config.tls.server_name;
  error_code ec;
  net::ip::make_address(s.server_name, ec);
  s.sni = bool(ec);                                            // not an IP literal
  if (s.url.tls) detail::make_client_ssl_context(config.tls);  // validates the files now, with their field names
  return std::make_unique<http_model>(std::move(s));
}

}  // namespace syncstorm::loadgen
