// One WebSocket subscriber: GET /v1/ws?streams=S1,S2[&after=CSEQ]. One JSON text frame per
// committed change of the subscribed streams, in cseq order, each once.
//
// Gap-free replay: the session registers with the hub first (live frames from then on are held
// in `pending_`), then reads the changes after `after` from the database page by page, then
// releases the held frames. Every frame goes through `enqueue`, which only passes a cseq higher
// than the last one queued, so the overlap between the replay and the live feed is sent once.
//
// Threading: everything runs on the connection's strand. The hub calls deliver() on the fanout
// listener thread, which only posts to the strand. Two coroutines share the stream: the writer
// (drains the queue; performs the close) and the reader (answers control frames, notices the
// peer's close). A subscriber that falls more than max_queue frames behind is closed with 1013
// so it reconnects with after=.
#include <chrono>
#include <deque>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/websocket/stream.hpp>

#include "syncd/log.hpp"
#include "syncd/protocol.hpp"
#include "syncd/server.hpp"

namespace syncstorm::syncd {
namespace {

using clock_type = std::chrono::steady_clock;
constexpr auto use_tuple = net::as_tuple(net::use_awaitable);
constexpr std::size_t max_queue = 50000;
constexpr std::int64_t replay_page = 1000;
constexpr auto reorder_hold = std::chrono::milliseconds(100);
constexpr std::size_t max_inbound_message = 64 * 1024;

class ws_session : public subscriber, public stoppable, public std::enable_shared_from_this<ws_session> {
 public:
  ws_session(app& a, beast::tcp_stream stream, std::vector<std::string> streams, std::optional<std::int64_t> after)
      : app_(a), ws_(std::move(stream)), wake_(ws_.get_executor()), streams_(std::move(streams)), after_(after) {}

  net::awaitable<void> run(http::request<http::string_body> req) {
    websocket::stream_base::timeout timeouts{};
    timeouts.handshake_timeout = std::chrono::seconds(5);
    timeouts.idle_timeout = std::chrono::seconds(60);
    timeouts.keep_alive_pings = true;
    ws_.set_option(timeouts);
    // X-Served-By names the pod, so a client can tell which server a dropped connection was on.
    ws_.set_option(websocket::stream_base::decorator([pod = app_.opts.pod_name](websocket::response_type& res) {
      res.set(http::field::server, "syncd");
      if (!pod.empty()) res.set("X-Served-By", pod);
    }));
    ws_.text(true);
    // Subscribers do not talk: a message larger than this closes the connection (1009)
    // instead of being buffered (Beast's default allows 16 MiB).
    ws_.read_message_max(max_inbound_message);
    auto [ec] = co_await ws_.async_accept(req, use_tuple);
    if (ec) co_return;

    auto self = shared_from_this();
    registry_id_ = app_.sessions.add(self);
    app_.stats.ws_subscribers.fetch_add(1, std::memory_order_relaxed);
    app_.stats.ws_connections.fetch_add(1, std::memory_order_relaxed);

    const std::int64_t live_from = app_.hub.subscribe(self, streams_);
    if (after_) {
      last_queued_ = *after_;
      replaying_ = true;
    } else {
      last_queued_ = live_from;
    }
    net::co_spawn(ws_.get_executor(), writer(self), net::detached);
    if (replaying_) co_await replay();
    co_await reader();

    // The connection is over (peer close, error, or our close completed).
    done_ = true;
    wake_.cancel();
    app_.hub.unsubscribe(this, streams_);
    app_.sessions.remove(registry_id_);
    app_.stats.ws_subscribers.fetch_sub(1, std::memory_order_relaxed);
  }

  void deliver(std::vector<frame_ptr> frames) override {
    net::post(ws_.get_executor(), [self = shared_from_this(), frames = std::move(frames)] {
      if (self->replaying_) {
        self->pending_.insert(self->pending_.end(), frames.begin(), frames.end());
        if (self->pending_.size() > max_queue) self->overflow();
        return;
      }
      for (const auto& f : frames) self->enqueue(f);
    });
  }

  void stop() override {
    net::post(ws_.get_executor(), [self = shared_from_this()] {
      self->request_close(websocket::close_code::service_restart, "server shutting down");
    });
  }

 private:
  net::awaitable<void> replay() {
    const std::string streams = pg_text_array(streams_);
    if (app_.opts.bugs.fanout_stale_replay && last_queued_ > 0) co_await send_stale(streams);
    while (!done_ && !close_) {
      auto read = [streams, after = last_queued_](db_session& s) { return s.replay(streams, after, replay_page); };
      auto out = co_await app_.pool.async_run<rows_outcome>(std::move(read));
      if (!out.result.ok()) {
        log_event("ws_replay_failed", {{"error", out.result.error}}, "warn");
        request_close(websocket::close_code::try_again_later, "replay failed");
        break;
      }
      for (auto& row : out.rows)
        enqueue(
            std::make_shared<const change_frame>(change_frame{row.cseq, std::move(row.stream), std::move(row.json)}));
      if (static_cast<std::int64_t>(out.rows.size()) < replay_page) break;
      // Backpressure on a long history: read the next page once the writer caught up, so
      // a replay never overflows the queue by itself.
      while (queue_.size() > static_cast<std::size_t>(2 * replay_page) && !done_ && !close_) {
        net::steady_timer pause(ws_.get_executor(), std::chrono::milliseconds(5));
        co_await pause.async_wait(use_tuple);
      }
    }
    replaying_ = false;
    auto held = std::move(pending_);
    pending_.clear();
    for (const auto& f : held) enqueue(f);
  }

  // fanout-stale-replay: the oldest change of the subscribed streams goes out first, although
  // the subscriber asked for what came after a later one (it bypasses enqueue's order guard).
  net::awaitable<void> send_stale(const std::string& streams) {
    auto read = [streams](db_session& s) { return s.replay(streams, 0, 1); };
    auto out = co_await app_.pool.async_run<rows_outcome>(std::move(read));
    if (!out.result.ok() || out.rows.empty() || out.rows[0].cseq > last_queued_ || done_ || close_) co_return;
    auto& row = out.rows[0];
    queue_.push_back(
        std::make_shared<const change_frame>(change_frame{row.cseq, std::move(row.stream), std::move(row.json)}));
    app_.stats.fanout_frames_stale.fetch_add(1, std::memory_order_relaxed);
    wake_.cancel();
  }

  net::awaitable<void> reader() {
    beast::flat_buffer buffer;
    for (;;) {
      auto [ec, n] = co_await ws_.async_read(buffer, use_tuple);
      if (ec) break;
      buffer.consume(buffer.size());  // subscribers do not talk; ignore what they send
    }
  }

  static net::awaitable<void> writer(std::shared_ptr<ws_session> self) { co_await self->write_loop(); }

  net::awaitable<void> write_loop() {
    while (!done_) {
      if (close_) {
        co_await ws_.async_close(*close_, use_tuple);
        break;
      }
      if (queue_.empty()) {
        // fanout-reorder: a held frame with no successor goes out alone after a moment.
        if (held_ && clock_type::now() - held_since_ >= reorder_hold) {
          queue_.push_back(std::move(held_));
          held_.reset();
          continue;
        }
        if (held_)
          wake_.expires_at(held_since_ + reorder_hold);
        else
          wake_.expires_at(clock_type::time_point::max());
        co_await wake_.async_wait(use_tuple);
        continue;
      }
      frame_ptr f = std::move(queue_.front());
      queue_.pop_front();
      auto [ec, n] = co_await ws_.async_write(net::buffer(f->json), use_tuple);
      if (ec) break;
      app_.stats.fanout_frames_sent.fetch_add(1, std::memory_order_relaxed);
    }
    queue_.clear();
  }

  void enqueue(const frame_ptr& f) {
    if (f->cseq <= last_queued_ || close_ || done_) return;
    last_queued_ = f->cseq;
    const auto& bugs = app_.opts.bugs;
    if (bugs.fanout_skip_every &&
        (app_.fanout_counter.fetch_add(1, std::memory_order_relaxed) + 1) % bugs.fanout_skip_every == 0) {
      app_.stats.fanout_frames_skipped.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    if (bugs.fanout_reorder) {
      if (!held_) {
        held_ = f;
        held_since_ = clock_type::now();
      } else {
        queue_.push_back(f);
        queue_.push_back(std::move(held_));
        held_.reset();
      }
    } else {
      queue_.push_back(f);
    }
    if (queue_.size() > max_queue) overflow();
    wake_.cancel();
  }

  void overflow() {
    app_.stats.ws_closed_slow.fetch_add(1, std::memory_order_relaxed);
    log_event("ws_slow_subscriber_closed", {{"queued", queue_.size() + pending_.size()}}, "warn");
    queue_.clear();
    pending_.clear();
    request_close(websocket::close_code::try_again_later, "subscriber too slow");
  }

  void request_close(websocket::close_code code, const char* reason) {
    if (close_ || done_) return;
    close_ = websocket::close_reason(code, reason);
    wake_.cancel();
  }

  app& app_;
  websocket::stream<beast::tcp_stream> ws_;
  net::steady_timer wake_;  // the writer sleeps on it; cancel() wakes it
  std::vector<std::string> streams_;
  std::optional<std::int64_t> after_;
  std::uint64_t registry_id_ = 0;
  std::int64_t last_queued_ = 0;
  bool replaying_ = false;
  bool done_ = false;
  std::optional<websocket::close_reason> close_;
  std::deque<frame_ptr> queue_;
  std::vector<frame_ptr> pending_;
  frame_ptr held_;
  clock_type::time_point held_since_{};
};

}  // namespace

net::awaitable<void> run_ws_session(app& a, beast::tcp_stream stream, http::request<http::string_body> req,
                                    std::vector<std::string> streams, std::optional<std::int64_t> after) {
  auto session = std::make_shared<ws_session>(a, std::move(stream), std::move(streams), after);
  co_await session->run(std::move(req));
}

}  // namespace syncstorm::syncd
