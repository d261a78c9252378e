// The accept loop, HTTP/1.1 keep-alive sessions and the protocol v1 routes (push, changes,
// records, healthz, readyz, metrics); WebSocket upgrades on /v1/ws are handed to
// ws_session.cpp. Each session is a coroutine on its own strand; database work goes to the pool
// (db.hpp) and resumes on that strand, so nothing here blocks an io thread. Errors on the
// connection end the session; they are never thrown.
#include <chrono>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/websocket/rfc6455.hpp>

#include "syncd/log.hpp"
#include "syncd/protocol.hpp"
#include "syncd/server.hpp"

namespace syncstorm::syncd {
namespace {

using tcp = net::ip::tcp;
using clock_type = std::chrono::steady_clock;
constexpr auto use_tuple = net::as_tuple(net::use_awaitable);
constexpr auto idle_timeout = std::chrono::seconds(120);
constexpr auto write_timeout = std::chrono::seconds(30);
constexpr std::int64_t default_page = 1000;
constexpr std::int64_t max_page = 10000;

using request = http::request<http::string_body>;
using response = http::response<http::string_body>;

response make_response(const request& req, http::status status, std::string body,
                       const char* content_type = "application/json") {
  response res{status, req.version()};
  res.set(http::field::server, "syncd");
  res.set(http::field::content_type, content_type);
  res.set(http::field::cache_control, "no-store");
  res.body() = std::move(body);
  return res;
}

response error_response(const request& req, http::status status, std::string_view reason) {
  return make_response(req, status, error_body(reason));
}

http::status status_of(const db_result& r) {
  switch (r.status) {
    case db_status::ok:
      return http::status::ok;
    case db_status::unavailable:
      return http::status::service_unavailable;
    case db_status::storage_full:
      return http::status::insufficient_storage;
    case db_status::bad_input:
      return http::status::bad_request;
    case db_status::failed:
      break;
  }
  return http::status::internal_server_error;
}

route route_of(std::string_view path) {
  if (path == "/v1/push") return route::push;
  if (path == "/v1/changes") return route::changes;
  if (path == "/v1/records") return route::records;
  if (path == "/v1/ws") return route::ws;
  if (path == "/healthz") return route::healthz;
  if (path == "/readyz") return route::readyz;
  if (path == "/metrics") return route::metrics;
  return route::other;
}

// The bug modes that act per op: which ops to drop or store twice.
std::vector<op_action> assign_actions(app& a, std::size_t n) {
  const auto& b = a.opts.bugs;
  if (!b.drop_every && !b.dup_every && !b.corrupt_every) return {};
  std::vector<op_action> actions(n, op_action::store);
  const std::uint64_t first = a.op_counter.fetch_add(n, std::memory_order_relaxed) + 1;
  for (std::size_t i = 0; i < n; ++i) {
    const std::uint64_t k = first + i;
    if (b.drop_every && k % b.drop_every == 0)
      actions[i] = op_action::drop;
    else if (b.dup_every && k % b.dup_every == 0)
      actions[i] = op_action::dup;
    else if (b.corrupt_every && k % b.corrupt_every == 0)
      actions[i] = op_action::corrupt;
  }
  return actions;
}

std::string unready_reason(const app& a) {
  return a.draining.load() ? "not ready: draining (shutting down)" : "not ready: database unreachable";
}

// ack-before-commit: the reply has gone out; commit 500 ms later. A kill in between loses it.
void spawn_late_commit(app& a, std::string ops_json, std::string client, std::size_t op_count) {
  a.background.fetch_add(1);
  net::co_spawn(
      a.ioc,
      [&a, ops_json = std::move(ops_json), client = std::move(client), op_count]() -> net::awaitable<void> {
        net::steady_timer timer(co_await net::this_coro::executor, std::chrono::milliseconds(500));
        co_await timer.async_wait(use_tuple);
        auto commit = [&a, ops_json, client](db_session& s) {
          return s.push(ops_json, client, a.opts.pod_name, a.opts.bugs.dup_apply);
        };
        auto out = co_await a.pool.async_run<push_outcome>(std::move(commit));
        if (!out.result.ok()) log_event("late_commit_failed", {{"ops", op_count}, {"error", out.result.error}}, "warn");
        log_dropped(out.dropped);
        log_dropped(out.corrupted, "corrupted ");
        a.background.fetch_sub(1);
      },
      net::detached);
}

net::awaitable<response> handle_push(app& a, const request& req) {
  const auto started = clock_type::now();
  if (req.method() != http::verb::post) co_return error_response(req, http::status::method_not_allowed, "use POST");
  if (!a.ready()) co_return error_response(req, http::status::service_unavailable, unready_reason(a));
  push_batch batch;
  std::string error;
  if (!parse_push(req.body(), batch, error)) co_return error_response(req, http::status::bad_request, error);

  const auto& bugs = a.opts.bugs;
  auto actions = assign_actions(a, batch.ops.size());
  for (auto act : actions)
    if (act == op_action::dup) a.stats.bug_ops_duplicated.fetch_add(1, std::memory_order_relaxed);
  std::string ops_json = db_ops_param(batch, actions);
  a.stats.push_batches.fetch_add(1, std::memory_order_relaxed);

  if (bugs.ack_before_commit) {
    a.stats.push_ops_acked.fetch_add(batch.ids.size(), std::memory_order_relaxed);
    spawn_late_commit(a, std::move(ops_json), batch.client, batch.ids.size());
    a.stats.observe_push(std::chrono::duration_cast<std::chrono::microseconds>(clock_type::now() - started));
    co_return make_response(req, http::status::ok, ack_all_body(batch));
  }

  // Named, not a temporary inside the co_await: GCC 12 mishandles temporaries there.
  auto commit = [&a, ops_json = std::move(ops_json), client = batch.client](db_session& s) {
    return s.push(ops_json, client, a.opts.pod_name, a.opts.bugs.dup_apply);
  };
  auto out = co_await a.pool.async_run<push_outcome>(std::move(commit));
  if (!out.result.ok()) {
    log_event("push_failed", {{"error", out.result.error}, {"sqlstate", out.result.sqlstate}}, "warn");
    co_return error_response(req, status_of(out.result), out.result.error);
  }
  if (!out.dropped.empty()) {
    log_dropped(out.dropped);
    a.stats.bug_ops_dropped.fetch_add(out.dropped.size(), std::memory_order_relaxed);
  }
  if (!out.corrupted.empty()) {
    log_dropped(out.corrupted, "corrupted ");
    a.stats.bug_ops_corrupted.fetch_add(out.corrupted.size(), std::memory_order_relaxed);
  }
  a.stats.push_ops_acked.fetch_add(static_cast<std::uint64_t>(out.acked), std::memory_order_relaxed);
  a.stats.push_ops_conflict.fetch_add(static_cast<std::uint64_t>(out.conflicts), std::memory_order_relaxed);
  if (bugs.slow_ack_ms) {
    net::steady_timer timer(co_await net::this_coro::executor, std::chrono::milliseconds(bugs.slow_ack_ms));
    co_await timer.async_wait(use_tuple);
  }
  a.stats.observe_push(std::chrono::duration_cast<std::chrono::microseconds>(clock_type::now() - started));
  co_return make_response(req, http::status::ok, std::move(out.body));
}

net::awaitable<response> handle_changes(app& a, const request& req, const target& t) {
  if (req.method() != http::verb::get) co_return error_response(req, http::status::method_not_allowed, "use GET");
  std::string stream;
  if (const auto* s = t.param("stream")) {
    if (!valid_stream(*s))
      co_return error_response(req, http::status::bad_request,
                               "stream: found \"" + s->substr(0, 40) + "\"; expected a stream name");
    stream = *s;
  }
  std::int64_t after = 0, limit = default_page;
  if (const auto* s = t.param("after")) {
    auto v = parse_count(*s);
    if (!v)
      co_return error_response(req, http::status::bad_request,
                               "after: found \"" + s->substr(0, 40) + "\"; expected a cseq >= 0");
    after = *v;
  }
  if (const auto* s = t.param("limit")) {
    auto v = parse_count(*s);
    if (!v || *v < 1 || *v > max_page)
      co_return error_response(req, http::status::bad_request,
                               "limit: found \"" + s->substr(0, 40) + "\"; expected 1-" + std::to_string(max_page));
    limit = *v;
  }
  if (!a.ready()) co_return error_response(req, http::status::service_unavailable, unready_reason(a));
  auto read = [stream, after, limit](db_session& s) { return s.changes(stream, after, limit); };
  auto out = co_await a.pool.async_run<text_outcome>(std::move(read));
  if (!out.result.ok()) co_return error_response(req, status_of(out.result), out.result.error);
  co_return make_response(req, http::status::ok, std::move(out.body));
}

net::awaitable<response> handle_records(app& a, const request& req, const target& t) {
  if (req.method() != http::verb::get) co_return error_response(req, http::status::method_not_allowed, "use GET");
  const auto* s = t.param("stream");
  if (!s || !valid_stream(*s))
    co_return error_response(
        req, http::status::bad_request,
        "stream: found " + (s ? "\"" + s->substr(0, 40) + "\"" : std::string("nothing")) + "; expected ?stream=NAME");
  if (!a.ready()) co_return error_response(req, http::status::service_unavailable, unready_reason(a));
  auto read = [stream = *s](db_session& db) { return db.records(stream); };
  auto out = co_await a.pool.async_run<text_outcome>(std::move(read));
  if (!out.result.ok()) co_return error_response(req, status_of(out.result), out.result.error);
  co_return make_response(req, http::status::ok, std::move(out.body));
}

net::awaitable<response> handle(app& a, const request& req, const target& t, route r) {
  switch (r) {
    case route::push:
      co_return co_await handle_push(a, req);
    case route::changes:
      co_return co_await handle_changes(a, req, t);
    case route::records:
      co_return co_await handle_records(a, req, t);
    case route::healthz:
      co_return make_response(req, http::status::ok,
                              nlohmann::json{{"status", "ok"}, {"pod", a.opts.pod_name}}.dump(
                                  -1, ' ', false, nlohmann::json::error_handler_t::replace));
    case route::readyz:
      if (a.ready()) co_return make_response(req, http::status::ok, R"({"ready":true})");
      co_return make_response(req, http::status::service_unavailable,
                              nlohmann::json{{"ready", false}, {"reason", unready_reason(a)}}.dump());
    case route::metrics:
      co_return make_response(req, http::status::ok, a.stats.render(a.opts.pod_name),
                              "text/plain; version=0.0.4; charset=utf-8");
    case route::ws:
      co_return error_response(req, http::status::bad_request, "/v1/ws: expected a WebSocket upgrade");
    case route::other:
      break;
  }
  co_return error_response(req, http::status::not_found, "no route for " + t.path);
}

class http_session : public stoppable, public std::enable_shared_from_this<http_session> {
 public:
  http_session(app& a, tcp::socket socket) : app_(a), stream_(std::move(socket)) {}

  void start() {
    id_ = app_.sessions.add(shared_from_this());
    app_.stats.http_connections.fetch_add(1, std::memory_order_relaxed);
    net::co_spawn(stream_.get_executor(), run(shared_from_this()), net::detached);
  }

  void stop() override {
    net::post(stream_.get_executor(), [self = shared_from_this()] {
      self->stopping_ = true;
      // Idle between requests: close now. Busy: the loop closes after this reply.
      if (self->idle_) self->stream_.cancel();
    });
  }

 private:
  static net::awaitable<void> run(std::shared_ptr<http_session> self) { co_await self->loop(); }

  net::awaitable<void> loop() {
    beast::flat_buffer buffer;
    bool upgraded = false;
    for (;;) {
      http::request_parser<http::string_body> parser;
      parser.body_limit(max_push_body);
      stream_.expires_after(idle_timeout);
      idle_ = buffer.size() == 0;
      if (stopping_ && idle_) break;
      auto [ec, n] = co_await http::async_read(stream_, buffer, parser, use_tuple);
      idle_ = false;
      if (ec == http::error::body_limit) {
        request req;
        co_await write(error_response(req, http::status::payload_too_large,
                                      "body: larger than " + std::to_string(max_push_body) + " bytes"),
                       route::other, false);
        break;
      }
      if (ec) break;
      request req = parser.release();
      const target t = parse_target(req.target());
      const route r = route_of(t.path);

      if (r == route::ws && websocket::is_upgrade(req)) {
        std::vector<std::string> streams;
        std::string error;
        std::optional<std::int64_t> after;
        const auto* streams_param = t.param("streams");
        bool ok = parse_stream_list(streams_param ? *streams_param : std::string_view{}, streams, error);
        if (ok) {
          if (const auto* s = t.param("after")) {
            after = parse_count(*s);
            if (!after) {
              ok = false;
              error = "after: found \"" + s->substr(0, 40) + "\"; expected a cseq >= 0";
            }
          }
        }
        if (!ok || !app_.ready()) {
          auto res = ok ? error_response(req, http::status::service_unavailable, unready_reason(app_))
                        : error_response(req, http::status::bad_request, error);
          if (!co_await write(std::move(res), r, false)) break;
          break;
        }
        app_.stats.count_request(route::ws, 101);
        // The WebSocket registers itself for draining; this HTTP session is done.
        finish();
        upgraded = true;
        stream_.expires_never();
        co_await run_ws_session(app_, std::move(stream_), std::move(req), std::move(streams), after);
        break;
      }

      stream_.expires_never();  // the handler may wait on the database; the client has its own timeout
      response res = co_await handle(app_, req, t, r);
      const bool keep_alive = req.keep_alive() && !stopping_ && !app_.draining.load();
      res.keep_alive(keep_alive);
      if (!co_await write(std::move(res), r, keep_alive) || !keep_alive) break;
    }
    if (!upgraded) {
      beast::error_code ec;
      stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
      finish();
    }
  }

  net::awaitable<bool> write(response res, route r, bool keep_alive) {
    res.keep_alive(keep_alive);
    res.prepare_payload();
    app_.stats.count_request(r, res.result_int());
    stream_.expires_after(write_timeout);
    auto [ec, n] = co_await http::async_write(stream_, res, use_tuple);
    co_return !ec;
  }

  void finish() {
    if (finished_) return;
    finished_ = true;
    app_.sessions.remove(id_);
    app_.stats.http_connections.fetch_sub(1, std::memory_order_relaxed);
  }

  app& app_;
  beast::tcp_stream stream_;
  std::uint64_t id_ = 0;
  bool idle_ = false;
  bool stopping_ = false;
  bool finished_ = false;
};

net::awaitable<void> accept_loop(app& a, tcp::acceptor& acceptor) {
  for (;;) {
    auto [ec, socket] = co_await acceptor.async_accept(net::make_strand(a.ioc), use_tuple);
    if (ec) {
      if (!acceptor.is_open() || ec == net::error::operation_aborted) break;
      // Out of descriptors or similar: back off instead of spinning.
      log_event("accept_failed", {{"error", ec.message()}}, "warn");
      net::steady_timer timer(co_await net::this_coro::executor, std::chrono::milliseconds(50));
      co_await timer.async_wait(use_tuple);
      continue;
    }
    beast::error_code opt_ec;
    // At the cap a new connection is closed at once: descriptors stay for the database pool
    // and the connections already served (a flood of idle sockets cannot starve them).
    if (static_cast<std::uint64_t>(a.stats.http_connections.load(std::memory_order_relaxed)) >=
        a.opts.max_connections) {
      a.stats.connections_refused.fetch_add(1, std::memory_order_relaxed);
      socket.close(opt_ec);
      continue;
    }
    socket.set_option(tcp::no_delay(true), opt_ec);
    std::make_shared<http_session>(a, std::move(socket))->start();
  }
}

}  // namespace

// The acceptor has its own strand: the accept loop and the shutdown's close never race.
server::server(app& a, const std::string& address, std::uint16_t port) : app_(a), acceptor_(net::make_strand(a.ioc)) {
  tcp::endpoint ep(net::ip::make_address(address), port);
  acceptor_.open(ep.protocol());
  acceptor_.set_option(net::socket_base::reuse_address(true));
  acceptor_.bind(ep);
  acceptor_.listen(net::socket_base::max_listen_connections);
  port_ = acceptor_.local_endpoint().port();
}

void server::start() { net::co_spawn(acceptor_.get_executor(), accept_loop(app_, acceptor_), net::detached); }

void server::async_shutdown(std::chrono::milliseconds drain_timeout) {
  net::co_spawn(
      app_.ioc,
      [this, drain_timeout]() -> net::awaitable<void> {
        app_.draining.store(true);
        log_event("shutdown_begin", {{"sessions", app_.sessions.size()}, {"background", app_.background.load()}});
        net::post(acceptor_.get_executor(), [this] {
          beast::error_code ec;
          acceptor_.close(ec);
        });
        const auto deadline = clock_type::now() + drain_timeout;
        net::steady_timer timer(co_await net::this_coro::executor);
        // Ask again every second: a connection accepted just before the close registers late.
        for (int round = 0; (app_.sessions.size() > 0 || app_.background.load() > 0) && clock_type::now() < deadline;
             ++round) {
          if (round % 20 == 0) app_.sessions.stop_all();
          timer.expires_after(std::chrono::milliseconds(50));
          co_await timer.async_wait(use_tuple);
        }
        log_event("shutdown_drained",
                  {{"sessions_left", app_.sessions.size()}, {"background_left", app_.background.load()}});
        app_.ioc.stop();
      },
      net::detached);
}

}  // namespace syncstorm::syncd
