// The http model's runtime: per worker, an arrival coroutine (open model) and a pool of
// connection coroutines that take arrivals from an idle stack or a FIFO of waiting ones, each
// connection an http_client (http_client.hpp). Everything here runs on one worker's thread; the
// model object only hands out per-worker state.
//
// Hot path, per request: no allocation (request bytes serialized once per model, the client's
// buffer per connection, its status-only parser), no exception, no timer: one deadline per
// exchange (connect, handshake, write, read) that a per-worker http_watchdog enforces by
// cancelling the socket. tcp_stream::expires_after arms and cancels a timer on every read and
// write, which cost more CPU per request than wrk spends in all (bench/README.md); the
// watchdog costs one timer per worker.
#include "loadgen/http_model.hpp"
#include "loadgen/http_client.hpp"
#include "loadgen/detail/tls_context.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <array>
#include <deque>
#include <stdexcept>

#include "loadgen/detail/arrival_loop.hpp"
#include "loadgen/detail/task_group.hpp"

namespace syncstorm::loadgen {
namespace {

constexpr auto use_tuple = net::as_tuple(net::use_awaitable);
constexpr auto closed_connect_backoff = std::chrono::milliseconds(10);

// What the model's workers share, read-only once built.
struct shared_state {
  http_model_config config;
  std::string request;  // serialized once
  bool head = false;
  std::int64_t end_us = 0;  // end of the phases (closed model: 0 = until stop())
  http_site site;           // resolved by the first start(); no headers (they are in `request`)
};

// An idle connection parks on `wake` (expiring never); the arrival coroutine hands it work by
// setting has_work and the times, then cancelling the wait.
struct connection_slot {
  explicit connection_slot(net::io_context& io) : wake(io) {}
  net::steady_timer wake;
  bool has_work = false;
  std::int64_t intended_us = 0, issued_us = 0;
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
        site(s_.site),
        latency(w.metrics().metric("http.latency@" + s.config.name)),
        uncorrected(w.metrics().metric("http.latency.uncorrected@" + s.config.name)),
        requests(w.metrics().metric("http.requests@" + s.config.name)),
        queue_wait(w.metrics().metric("http.queue_wait@" + s.config.name)),
        unsent(w.metrics().metric("http.unsent@" + s.config.name)) {
    detail::register_arrival_metrics(w);
    for (std::size_t b = 0; b < error_bucket_count; ++b)
      errors[b] = &w.metrics().metric("http.errors." + std::string(to_string(static_cast<error_bucket>(b))) + "@" +
                                      s.config.name);
    // A TLS context per worker: its session cache and locks are not shared between threads.
    if (s.site.url.tls) site.ssl = detail::make_client_ssl_context(s.config.tls);
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
  http_site site;
  http_watchdog watchdog;  // the deadlines of this worker's connections
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

// The arrival coroutine of the open model: issues this worker's arrivals on schedule.
net::awaitable<void> run_arrivals(http_worker& hw, arrival_schedule schedule) {
  co_await detail::run_arrival_loop(
      hw.w, std::move(schedule), hw.arrival_timer, [&hw] { return hw.stopping; },
      [&hw](std::int64_t due, std::int64_t now) { hw.dispatch(due, now); });
  hw.arrivals_done = true;
  hw.wake_idle();
}

// One pooled keep-alive connection: takes work, (re)connects when needed, sends, reads.
net::awaitable<void> run_connection(http_worker& hw) {
  co_await net::this_coro::throw_if_cancelled(false);
  const auto cs = co_await net::this_coro::cancellation_state;
  net::io_context& io = hw.w.io();
  const shared_state& s = hw.s;
  const bool open = s.config.open;
  connection_slot slot(io);
  hw.slots.push_back(&slot);
  http_client conn(io, hw.site, &hw.watchdog);

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

    // One deadline for the whole exchange, connect and handshake included (the watchdog's).
    const http_status reply = co_await conn.async_send(s.request, s.head, s.config.timeout_us);
    std::optional<error_bucket> failed = reply.failed;
    if (!failed) {
      const auto& expect = s.config.expect_status;
      const bool good = expect.empty() ? reply.status >= 200 && reply.status < 300
                                       : std::find(expect.begin(), expect.end(), reply.status) != expect.end();
      if (!good) failed = error_bucket::status;  // the connection stays: the reply was whole
    }
    // A cancelled run abandons the exchange: the server did nothing wrong, so nothing counts.
    if (cancelled(cs)) break;
    hw.outcome(intended, sent, failed);
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

// Per worker: enforces the request timeout of every connection (http_watchdog) while any
// connection lives; timeouts fire up to one tick (timeout/10, 1 to 100 ms) late.
net::awaitable<void> run_watchdog(http_worker& hw) {
  const auto tick = std::chrono::microseconds(std::clamp<std::int64_t>(hw.s.config.timeout_us / 10, 1000, 100'000));
  co_await hw.watchdog.run(tick, [&hw] { return hw.connections_alive > 0; });
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
    for (std::size_t i = 0; i < n; ++i) w.tasks().spawn(run_connection(hw));
    if (n != 0) w.tasks().spawn(run_watchdog(hw));
  }

  void stop() override {
    for (auto& hw : workers_)
      if (hw) net::post(hw->w.io(), [p = hw.get()] { p->begin_stop(); });
  }

 private:
  // Once, on the controller thread, before any worker runs: a name that does not resolve is a
  // setup failure, not a stream of connect errors.
  void resolve(net::io_context& io) { s_.site.resolve(io, s_.config.name); }

  shared_state s_;
  std::vector<std::unique_ptr<http_worker>> workers_;
};

}  // namespace

std::unique_ptr<load_model> make_http_model(const http_model_config& config) {
  shared_state s;
  s.config = config;
  const url_parts url = parse_url(config.url);
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
  s.request = serialize_request(config, url);
  s.head = config.method == "HEAD";
  s.site = http_site::make(config.url, {}, config.tls, "url");  // validates the TLS files now, with their field names
  return std::make_unique<http_model>(std::move(s));
}

}  // namespace syncstorm::loadgen
