// The fanout model's runtime on Beast (fanout_model.hpp). Per worker: its subscribers (one
// coroutine each, a WebSocket stream only while connected), the pusher of its streams (an
// arrival coroutine and a few push connections), and one watchdog timer for everything that
// needs a deadline: connect/handshake timeouts, holes older than gap_grace, the drain, the
// ws.connected gauge. Everything here runs on one worker's thread, except the ack table
// (atomics, written by the pushing worker and read by every subscriber's worker).
#include "loadgen/target_access.hpp"
#include "loadgen/fanout_model.hpp"

#include "core/digest.hpp"
#include "core/json_limits.hpp"
#include <boost/asio/as_tuple.hpp>
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
#include <boost/beast/websocket/error.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <boost/beast/websocket/stream.hpp>

#include <netinet/in.h>
#include <openssl/ssl.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <charconv>
#include <deque>
#include <map>
#include <set>
#include <stdexcept>
#include <thread>
#include <unordered_map>

#include "core/scenario.hpp"
#include "loadgen/detail/arrival_loop.hpp"
#include "loadgen/detail/task_group.hpp"
#include "loadgen/http_client.hpp"
#include "loadgen/detail/ws_logic.hpp"
#include "loadgen/limits.hpp"

namespace syncstorm::loadgen {

using json = nlohmann::json;

namespace {

using tcp = net::ip::tcp;
using error_code = boost::system::error_code;
constexpr auto use_tuple = net::as_tuple(net::use_awaitable);
constexpr auto tick = std::chrono::milliseconds(100);

bool cancelled(const net::cancellation_state& cs) { return cs.cancelled() != net::cancellation_type::none; }

std::int64_t wall_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::optional<std::int64_t> to_int(std::string_view s) {
  std::int64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return v;
}

enum class ws_bucket { connect, status, read, timeout, protocol, closed };
constexpr std::size_t ws_bucket_count = 6;
constexpr std::array<const char*, ws_bucket_count> ws_bucket_names = {"connect", "status",   "read",
                                                                      "timeout", "protocol", "closed"};

enum class op_state : std::uint8_t { created, sent, acked, rejected };

struct op_meta {
  std::int64_t created_us = 0, first_sent_us = -1;
  op_state state = op_state::created;
};

// One stream: names, the ack table every subscriber reads, and (pusher-owned) its ops.
struct stream_state {
  std::string name, client, id_prefix;
  std::size_t cap = 0;
  std::unique_ptr<std::atomic<std::int64_t>[]> ack_us;  // [seq-1]: µs since run start, -1 until acked
  std::atomic<std::int64_t> created{0};                 // highest seq created
  std::atomic<std::int64_t> resolved{0};                // 1..resolved acked or rejected
  std::int64_t snapshot_cursor = 0;
  std::vector<audit_record> snapshot;
  // Pusher-owned (the stream's worker):
  std::vector<op_meta> ops;
  bool queued = false, in_flight = false;

  bool acked(std::int64_t seq) const {
    return seq >= 1 && static_cast<std::size_t>(seq) <= cap && ack_us[seq - 1].load(std::memory_order_acquire) >= 0;
  }
};

struct shared_state {
  fanout_config config;
  http_site api, ws;
  std::string ws_host;
  std::vector<std::unique_ptr<stream_state>> streams;
  std::size_t cap_per_stream = 0;
  std::size_t view_stride = 1;
  bool spread = false;
  std::atomic<int> pushers_active{0};

  char kind_of(std::int64_t seq) const { return seq % 2 == 1 ? 'a' : 'd'; }
  std::string key_of(std::int64_t seq) const {
    return seq % 2 == 1 ? std::string()
                        : "fanout-c" + std::to_string((seq / 2) % static_cast<std::int64_t>(config.keys));
  }
  double delta_of(std::int64_t seq) const { return seq % 2 == 1 ? 0.0 : static_cast<double>(1 + (seq / 2) % 3); }
};

// A sampled subscriber's materialized view: per slot, key → (value, cursor of the last change).
struct view_state {
  std::vector<std::map<std::string, std::pair<json, std::int64_t>>> slots;
};

enum class kick { none, timeout, repair, stop };

struct subscriber {
  subscriber(std::uint32_t i, std::vector<std::uint32_t> s, const std::vector<std::int64_t>& snap)
      : index(i), streams(std::move(s)), tracker(snap) {}
  std::uint32_t index;
  std::vector<std::uint32_t> streams;  // slot → stream index
  detail::delivery_tracker tracker;
  std::unique_ptr<view_state> view;
  tcp::socket* socket = nullptr;          // while a connection attempt or connection is alive
  net::steady_timer* sleeping = nullptr;  // while waiting to (re)connect
  std::int64_t deadline_us = 0;           // connect + handshake deadline (0: none)
  kick kicked = kick::none;
  std::int64_t first_connected_us = -1, first_connected_wall_us = -1;  // the subscription's start
  bool connected = false, ever_connected = false, done = false;
  int attempt = 0;
  std::uint16_t server = 0;  // the connection's server: fanout_worker::servers index (0: unnamed)
};

struct fanout_worker {
  fanout_worker(worker& w_, shared_state& s_)
      : w(w_),
        s(s_),
        pacer(s_.config.connect_rate / static_cast<double>(w_.count())),
        delivery(m("fanout.delivery")),
        delivery_commit(m("fanout.delivery.commit")),
        early(m("fanout.early")),
        catchup(m("fanout.catchup")),
        frames(m("fanout.frames")),
        foreign(m("fanout.foreign")),
        duplicates(m("fanout.duplicates")),
        out_of_order(m("fanout.out_of_order")),
        gaps(m("fanout.gaps")),
        repaired(m("fanout.repaired")),
        reconnects(m("fanout.reconnects")),
        dropped(m("ws.dropped")),
        missing_metric(m("fanout.missing")),
        stale(m("fanout.stale")),
        ws_connect(m("ws.connect")),
        push_latency(m("push.latency")),
        push_requests(m("push.requests")),
        connected_gauge(w_.metrics().gauge("ws.connected@" + s_.config.name)) {
    detail::register_arrival_metrics(w);
    for (std::size_t b = 0; b < ws_bucket_count; ++b) ws_errors[b] = &m(std::string("ws.errors.") + ws_bucket_names[b]);
    for (std::size_t b = 0; b < error_bucket_count; ++b)
      push_errors[b] = &m("push.errors." + std::string(to_string(static_cast<error_bucket>(b))));
  }
  timed_metric& m(const std::string& n) { return w.metrics().metric(n + "@" + s.config.name); }

  std::array<int, ws_bucket_count> ws_samples{};
  std::array<int, error_bucket_count> push_samples{};
  void sample(const char* event, const char* bucket, int& taken, const std::string& reason, std::string_view body) {
    if (!s.config.on_event || taken++ >= 3) return;
    json f = {{"load", s.config.name},
              {"bucket", bucket},
              {"reason", text_excerpt(reason, 240)},
              {"at_s", static_cast<double>(w.now_us()) / 1e6}};
    if (!body.empty()) f["sample"] = text_excerpt(body, 200), f["bytes"] = body.size();
    s.config.on_event(event, f);
  }
  void ws_error(ws_bucket b, const std::string& reason, std::string_view frame = {}) {
    sample("ws_error", ws_bucket_names[static_cast<std::size_t>(b)], ws_samples[static_cast<std::size_t>(b)], reason,
           frame);
  }

  worker& w;
  shared_state& s;
  detail::connect_pacer pacer;
  timed_metric &delivery, &delivery_commit, &early, &catchup, &frames, &foreign, &duplicates, &out_of_order, &gaps,
      &repaired, &reconnects, &dropped, &missing_metric, &stale, &ws_connect, &push_latency, &push_requests;
  gauge_series& connected_gauge;
  std::array<timed_metric*, ws_bucket_count> ws_errors{};
  std::array<timed_metric*, error_bucket_count> push_errors{};

  std::vector<std::unique_ptr<subscriber>> subs;
  std::size_t subs_alive = 0, connected = 0;
  // Per stream index: cursor → the digests (raw frame text, parsed change) of the first frame
  // received at it; a later frame with other text whose change differs is a disagreement.
  struct seen_change {
    std::uint64_t raw = 0, change = 0;
  };
  std::vector<std::unordered_map<std::int64_t, seen_change>> delivered;
  std::uint64_t disagreements = 0;
  // The servers connections named (config.server_header), interned: [0] is "" (unnamed); and
  // every established connection lost other than by this model's own doing.
  std::vector<std::string> servers{std::string()};
  std::vector<std::pair<std::int64_t, std::uint16_t>> drops;  // (µs, servers index)

  std::uint16_t server_index(std::string_view name) {
    if (name.empty()) return 0;
    for (std::size_t i = 1; i < servers.size(); ++i)
      if (servers[i] == name) return static_cast<std::uint16_t>(i);
    if (servers.size() >= 0xffff) return 0;
    servers.emplace_back(name);
    return static_cast<std::uint16_t>(servers.size() - 1);
  }
  // pusher
  std::vector<std::size_t> my_streams;
  std::size_t rr = 0;
  std::deque<std::size_t> ready;
  std::vector<net::steady_timer*> push_idle;  // idle pushers' wake timers
  net::steady_timer* arrival_timer = nullptr;
  std::size_t pushers_alive = 0;
  bool arrivals_done = false, pushing_done = false;
  // stop
  bool stopping = false, closing = false;
  std::int64_t drain_deadline_us = 0;
  // Views: once every writer of the pool ended its drain (worker::writers() == 0), the records
  // are final; this worker closes only when each of its views equals them (or the deadline).
  bool has_views = false, views_settled = false;
  std::int64_t writers_quiet_us = -1;
  std::uint64_t missing = 0;
  bool missing_recorded = false;
  std::uint64_t rng = 0;

  std::uint64_t random() { return detail::mix64(rng++); }

  bool pusher_idle() const {
    for (std::size_t i : my_streams) {
      const auto& st = *s.streams[i];
      if (st.in_flight || st.resolved.load(std::memory_order_relaxed) < st.created.load(std::memory_order_relaxed))
        return false;
    }
    return true;
  }

  std::uint64_t missing_of(const subscriber& sub) const {
    std::uint64_t n = 0;
    for (std::size_t slot = 0; slot < sub.streams.size(); ++slot) {
      const stream_state& st = *s.streams[sub.streams[slot]];
      n += detail::count_missing(sub.tracker.received(slot), st.created.load(std::memory_order_acquire),
                                 [&](std::int64_t q) { return st.acked(q); });
    }
    return n;
  }

  void kick_all(kick why) {
    for (auto& sub : subs) {
      if (sub->done) continue;
      sub->kicked = why;
      if (sub->sleeping) sub->sleeping->cancel();
      if (sub->socket) {
        error_code ignored;
        sub->socket->cancel(ignored);
      }
    }
  }

  void begin_stop() {
    if (stopping) return;
    stopping = true;
    drain_deadline_us = w.now_us() + s.config.drain_us;
    if (arrival_timer) arrival_timer->cancel();
    wake_pushers();
  }

  void wake_pushers() {
    for (auto* t : push_idle) t->cancel();
    push_idle.clear();
  }
};

// --- pusher ---------------------------------------------------------------------------------

void enqueue_stream(fanout_worker& fw, std::size_t i) {
  stream_state& st = *fw.s.streams[i];
  if (st.queued || st.in_flight) return;
  st.queued = true;
  fw.ready.push_back(i);
  if (!fw.push_idle.empty()) {
    fw.push_idle.back()->cancel();
    fw.push_idle.pop_back();
  }
}

net::awaitable<void> run_push_arrivals(fanout_worker& fw, arrival_schedule schedule) {
  co_await detail::run_arrival_loop(
      fw.w, std::move(schedule), fw.arrival_timer, [&fw] { return fw.stopping || fw.my_streams.empty(); },
      [&fw](std::int64_t due, std::int64_t) {
        const std::size_t i = fw.my_streams[fw.rr++ % fw.my_streams.size()];
        stream_state& st = *fw.s.streams[i];
        const std::int64_t seq = st.created.load(std::memory_order_relaxed) + 1;
        if (static_cast<std::size_t>(seq) > st.cap)
          return;  // beyond the plan's count (cannot happen with exact phases)
        st.ops.push_back(op_meta{due, -1, op_state::created});
        st.created.store(seq, std::memory_order_release);
        enqueue_stream(fw, i);
      });
  fw.arrivals_done = true;
  fw.wake_pushers();
}

// Applies a push reply to the batch seqs [first, last] of stream `st`. Returns false when some
// op got no definitive answer (retry the batch).
bool apply_push_reply(stream_state& st, std::int64_t first, std::int64_t last, const push_reply& reply,
                      std::int64_t now) {
  auto seq_of = [&](const std::string& id) -> std::int64_t {
    if (!id.starts_with(st.id_prefix)) return 0;
    auto v = to_int(std::string_view(id).substr(st.id_prefix.size()));
    return v && *v >= first && *v <= last ? *v : 0;
  };
  for (const auto& id : reply.acked)
    if (auto q = seq_of(id)) {
      auto& slot = st.ack_us[q - 1];
      if (slot.load(std::memory_order_relaxed) < 0) slot.store(now, std::memory_order_release);
      st.ops[q - 1].state = op_state::acked;
    }
  for (const auto& c : reply.conflicts)
    if (auto q = seq_of(c.id); q && st.ops[q - 1].state != op_state::acked) st.ops[q - 1].state = op_state::rejected;
  for (const auto& id : reply.rejected)
    if (auto q = seq_of(id); q && st.ops[q - 1].state != op_state::acked) st.ops[q - 1].state = op_state::rejected;
  std::int64_t r = st.resolved.load(std::memory_order_relaxed);
  while (r < last && (st.ops[r].state == op_state::acked || st.ops[r].state == op_state::rejected)) ++r;
  st.resolved.store(r, std::memory_order_release);
  return r >= last;
}

net::awaitable<void> run_pusher(fanout_worker& fw) {
  co_await net::this_coro::throw_if_cancelled(false);
  const auto cs = co_await net::this_coro::cancellation_state;
  const shared_state& s = fw.s;
  const auto& cfg = s.config;
  http_client conn(fw.w.io(), s.api);
  net::steady_timer wake(fw.w.io());
  int failures = 0;
  for (;;) {
    if (cancelled(cs)) break;
    if (fw.stopping && fw.w.now_us() >= fw.drain_deadline_us) break;
    if (fw.ready.empty()) {
      if (fw.arrivals_done && fw.pusher_idle()) break;
      fw.push_idle.push_back(&wake);
      wake.expires_at(fw.stopping ? fw.w.start() + std::chrono::microseconds(fw.drain_deadline_us)
                                  : net::steady_timer::time_point::max());
      co_await wake.async_wait(use_tuple);
      std::erase(fw.push_idle, &wake);
      continue;
    }
    const std::size_t i = fw.ready.front();
    fw.ready.pop_front();
    stream_state& st = *s.streams[i];
    st.queued = false;
    const std::int64_t first = st.resolved.load(std::memory_order_relaxed) + 1;
    const std::int64_t last = std::min<std::int64_t>(st.created.load(std::memory_order_relaxed),
                                                     first + static_cast<std::int64_t>(cfg.max_batch) - 1);
    if (last < first) continue;
    st.in_flight = true;
    std::vector<sync_op> ops;
    ops.reserve(static_cast<std::size_t>(last - first + 1));
    const std::int64_t sent = fw.w.now_us();
    for (std::int64_t q = first; q <= last; ++q) {
      auto& meta = st.ops[q - 1];
      if (meta.first_sent_us < 0) meta.first_sent_us = sent;
      if (meta.state == op_state::created) meta.state = op_state::sent;
      if (meta.state == op_state::acked || meta.state == op_state::rejected) continue;
      sync_op op;
      op.id = st.id_prefix + std::to_string(q);
      op.stream = st.name;
      op.seq = q;
      op.t_us = meta.created_us;
      op.kind = s.kind_of(q) == 'a' ? op_kind::append : op_kind::add;
      op.key = s.key_of(q);
      op.delta = s.delta_of(q);
      ops.push_back(std::move(op));
    }
    const std::string body = render_push(cfg.profile, st.client, ops);
    auto reply = co_await conn.async_request(cfg.profile.push_method, push_target(cfg.profile), body, cfg.timeout_us);
    const std::int64_t now = fw.w.now_us();
    std::optional<error_bucket> failed = reply.failed;
    bool complete = false;
    std::string why;
    if (!failed) {
      auto pr = parse_push_reply(cfg.profile, reply.body);
      if (pr.malformed)
        failed = error_bucket::protocol, why = pr.reason;
      else
        complete = apply_push_reply(st, first, last, pr, now);
    } else {
      why = reply.status ? "HTTP " + std::to_string(reply.status) : std::string(to_string(*failed));
    }
    fw.push_latency.record(now, now - sent, !failed);
    fw.push_requests.add(now, 1, !failed);
    if (failed) {
      fw.push_errors[static_cast<std::size_t>(*failed)]->add(now, 1, false);
      fw.sample("push_error", std::string(to_string(*failed)).c_str(),
                fw.push_samples[static_cast<std::size_t>(*failed)], why, reply.body);
    }
    st.in_flight = false;
    if (failed || !complete) {
      // Back off (full jitter), then retry this stream's unresolved ops first.
      const std::int64_t d = detail::backoff_us(failures++, 50'000, 2'000'000, fw.random());
      wake.expires_after(std::chrono::microseconds(d));
      co_await wake.async_wait(use_tuple);
    } else {
      failures = 0;
    }
    if (st.resolved.load(std::memory_order_relaxed) < st.created.load(std::memory_order_relaxed)) enqueue_stream(fw, i);
  }
  std::erase(fw.push_idle, &wake);
  if (--fw.pushers_alive == 0) {
    fw.pushing_done = true;
    fw.wake_pushers();
    fw.s.pushers_active.fetch_sub(1, std::memory_order_acq_rel);
    for (std::size_t i : fw.my_streams) fw.s.streams[i]->in_flight = false;
  }
}

// --- subscribers ----------------------------------------------------------------------------

template <bool Tls>
using ws_stream =
    std::conditional_t<Tls, websocket::stream<net::ssl::stream<tcp::socket>>, websocket::stream<tcp::socket>>;

// Keeps the change received at (stream, cursor) for the audit; the same frame text again costs
// one hash of the text.
void note_delivery(fanout_worker& fw, std::size_t stream, std::int64_t cursor, std::string_view text,
                   const server_change& c) {
  if (fw.delivered.size() <= stream) fw.delivered.resize(fw.s.streams.size());
  const std::uint64_t raw = fnv1a(text);
  auto [it, fresh] = fw.delivered[stream].try_emplace(cursor);
  if (fresh) {
    it->second = {raw, change_digest(c.id, c.kind, c.key, c.delta, c.value)};
  } else if (it->second.raw != raw && change_digest(c.id, c.kind, c.key, c.delta, c.value) != it->second.change) {
    ++fw.disagreements;
    it->second.raw = raw;
  }
}

void handle_frame(fanout_worker& fw, subscriber& sub, std::string_view text) {
  const shared_state& s = fw.s;
  const std::int64_t now = fw.w.now_us();
  std::string reason;
  auto c = parse_change_frame(s.config.profile, text, reason);
  std::optional<std::int64_t> cursor;
  if (c) cursor = to_int(c->cursor);
  std::size_t slot = sub.streams.size();
  if (c && cursor)
    for (std::size_t k = 0; k < sub.streams.size(); ++k)
      if (s.streams[sub.streams[k]]->name == c->stream) slot = k;
  if (!c || !cursor || slot == sub.streams.size()) {
    fw.ws_errors[static_cast<std::size_t>(ws_bucket::protocol)]->add(now, 1, false);
    fw.ws_error(ws_bucket::protocol,
                !c        ? reason
                : !cursor ? "the cursor is not an integer"
                          : "a stream this subscriber did not ask for",
                text);
    return;
  }
  const stream_state& st = *s.streams[sub.streams[slot]];
  std::int64_t own = 0;
  if (c->id.size() > st.id_prefix.size() && c->id.starts_with(st.id_prefix) && c->seq >= 1) own = c->seq;
  auto r = sub.tracker.on_frame(slot, *cursor, own, now);
  if (r.out_of_order) fw.out_of_order.add(now);
  if (r.backwards) fw.stale.add(now);
  note_delivery(fw, sub.streams[slot], *cursor, text, *c);
  using v = detail::delivery_tracker::verdict;
  if (r.v == v::duplicate) fw.duplicates.add(now, 1, false);
  if (r.v != v::fresh && r.v != v::repaired) return;
  if (r.v == v::repaired) fw.repaired.add(now);
  fw.frames.add(now);
  if (own == 0) fw.foreign.add(now);
  if (sub.view && !c->key.empty()) {
    auto& e = sub.view->slots[slot][c->key];
    if (*cursor > e.second) e = {c->value, *cursor};
  }
  // Changes made before the subscriber first connected reach it in the first replay: that wait
  // is the ramp's, not the fanout's, so it is counted (fanout.catchup), not timed.
  if (c->commit_us > 0 && c->commit_us < sub.first_connected_wall_us) {
    fw.catchup.add(now);
    return;
  }
  if (c->commit_us > 0) fw.delivery_commit.record(now, std::max<std::int64_t>(0, wall_us() - c->commit_us));
  if (own > 0) {
    const std::int64_t ack =
        static_cast<std::size_t>(own) <= st.cap ? st.ack_us[own - 1].load(std::memory_order_acquire) : -1;
    if (ack >= 0 && ack < sub.first_connected_us) {
      fw.catchup.add(now);
    } else if (ack >= 0 && ack <= now) {
      fw.delivery.record(now, now - ack);
    } else {
      fw.delivery.record(now, 0);
      fw.early.add(now);
    }
  }
}

ws_bucket classify(const error_code& ec, kick k) {
  if (k == kick::timeout || ec == beast::error::timeout) return ws_bucket::timeout;
  if (ec == websocket::error::closed) return ws_bucket::closed;
  if (ec.category() == net::error::get_ssl_category()) return ws_bucket::protocol;
  return ws_bucket::read;
}

template <bool Tls>
net::awaitable<void> run_subscriber(fanout_worker& fw, subscriber& sub) {
  co_await net::this_coro::throw_if_cancelled(false);
  const auto cs = co_await net::this_coro::cancellation_state;
  const shared_state& s = fw.s;
  const auto& cfg = s.config;
  net::io_context& io = fw.w.io();
  bool first = true, immediate = false;
  while (!fw.closing && !cancelled(cs)) {
    // When to connect: the pacer (first connects, and reconnects unless a storm), plus backoff.
    std::int64_t now = fw.w.now_us();
    std::int64_t at = now;
    if (!immediate) {
      if (first || !cfg.storm) at = fw.pacer.reserve(now);
      if (!first && !cfg.storm)
        at += detail::backoff_us(sub.attempt, cfg.reconnect_base_us, cfg.reconnect_max_us, fw.random());
    }
    immediate = false;
    if (at > now) {
      auto timer = std::make_unique<net::steady_timer>(io, fw.w.start() + std::chrono::microseconds(at));
      sub.sleeping = timer.get();
      co_await timer->async_wait(use_tuple);
      sub.sleeping = nullptr;
      if (fw.closing || cancelled(cs)) break;
    }
    if (!first) fw.reconnects.add(fw.w.now_us());
    first = false;

    std::unique_ptr<ws_stream<Tls>> ws;
    if constexpr (Tls)
      ws = std::make_unique<ws_stream<Tls>>(io, *s.ws.ssl);
    else
      ws = std::make_unique<ws_stream<Tls>>(io);
    tcp::socket& sock = beast::get_lowest_layer(*ws);
    const tcp::endpoint& ep = s.ws.endpoints[sub.index % s.ws.endpoints.size()];
    const std::int64_t t0 = fw.w.now_us();
    sub.socket = &sock;
    sub.kicked = kick::none;
    sub.deadline_us = t0 + cfg.timeout_us;
    error_code ec;
    sock.open(ep.protocol(), ec);
    if (!ec && s.spread && ep.address().is_v4()) {
      int one = 1;
      ::setsockopt(sock.native_handle(), IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
      const auto src = net::ip::address_v4((127u << 24) | (2u + sub.index % 253u));
      sock.bind(tcp::endpoint(src, 0), ec);
    }
    if (!ec) std::tie(ec) = co_await sock.async_connect(ep, use_tuple);
    std::optional<ws_bucket> failed;
    if (ec) failed = ws_bucket::connect;
    if (!failed) {
      error_code ignored;
      sock.set_option(tcp::no_delay(true), ignored);
      if constexpr (Tls) {
        if (s.ws.sni) SSL_set_tlsext_host_name(ws->next_layer().native_handle(), s.ws.server_name.c_str());
        if (s.ws.tls.verify) ws->next_layer().set_verify_callback(net::ssl::host_name_verification(s.ws.server_name));
        std::tie(ec) = co_await ws->next_layer().async_handshake(net::ssl::stream_base::client, use_tuple);
        if (ec) failed = ws_bucket::connect;
      }
    }
    if (!failed) {
      websocket::stream_base::timeout to{};
      to.handshake_timeout = std::chrono::microseconds(cfg.timeout_us);
      to.idle_timeout = std::chrono::microseconds(cfg.idle_timeout_us);
      to.keep_alive_pings = true;
      ws->set_option(to);
      websocket::permessage_deflate pmd;
      pmd.client_enable = false;
      ws->set_option(pmd);
      ws->read_message_max(4 * 1024 * 1024);
      ws->auto_fragment(false);
      if (!s.api.headers.empty())
        ws->set_option(websocket::stream_base::decorator([&s](websocket::request_type& req) {
          for (const auto& [k, v] : s.ws.headers) req.set(k, v);
        }));
      sub.tracker.on_connect();
      std::vector<std::string> names;
      for (auto i : sub.streams) names.push_back(s.streams[i]->name);
      const std::string target =
          s.ws.prefix + ws_target(cfg.profile, names, std::to_string(sub.tracker.resume_cursor()));
      websocket::response_type reply;
      std::tie(ec) = co_await ws->async_handshake(reply, s.ws_host, target, use_tuple);
      if (!ec && !cfg.server_header.empty()) sub.server = fw.server_index(reply[cfg.server_header]);
      if (ec)
        failed = ec == websocket::error::upgrade_declined                     ? ws_bucket::status
                 : sub.kicked == kick::timeout || ec == beast::error::timeout ? ws_bucket::timeout
                                                                              : ws_bucket::connect;
    }
    sub.deadline_us = 0;
    if (failed && sub.kicked == kick::timeout) failed = ws_bucket::timeout;
    if (failed) {
      sub.socket = nullptr;
      if (fw.closing || cancelled(cs)) break;
      const std::int64_t t = fw.w.now_us();
      fw.ws_errors[static_cast<std::size_t>(*failed)]->add(t, 1, false);
      fw.ws_error(*failed, "connect: " + (ec ? ec.message() : std::string("failed")));
      fw.ws_connect.record(t, t - t0, false);
      ++sub.attempt;
      continue;
    }
    {
      const std::int64_t t = fw.w.now_us();
      fw.ws_connect.record(t, t - t0);
    }
    sub.attempt = 0;
    if (!sub.ever_connected) {
      sub.first_connected_us = fw.w.now_us();
      sub.first_connected_wall_us = wall_us();
    }
    sub.connected = sub.ever_connected = true;
    ++fw.connected;
    beast::flat_buffer buffer;
    for (;;) {
      auto [rec, n] = co_await ws->async_read(buffer, use_tuple);
      if (rec) {
        ec = rec;
        break;
      }
      handle_frame(fw, sub, std::string_view(static_cast<const char*>(buffer.data().data()), buffer.size()));
      buffer.consume(buffer.size());
      if (sub.kicked != kick::none) {
        ec = net::error::operation_aborted;
        break;
      }
    }
    --fw.connected;
    sub.connected = false;
    sub.socket = nullptr;
    const kick why = sub.kicked;
    ws.reset();
    if (fw.closing || cancelled(cs) || why == kick::stop) break;
    if (why == kick::repair) {
      immediate = true;  // a hole: reconnect now with after=<resume cursor>
      continue;
    }
    // Dropped: the server closed it, a read failed or it went idle.
    const std::int64_t t = fw.w.now_us();
    fw.ws_errors[static_cast<std::size_t>(classify(ec, why))]->add(t, 1, false);
    fw.ws_error(classify(ec, why), "dropped: " + ec.message());
    fw.dropped.add(t, 1, false);
    fw.drops.emplace_back(t, sub.server);
  }
  sub.done = true;
  --fw.subs_alive;
}

// Whether every view of this worker equals `records` (stream index → the server's records).
bool views_match(const fanout_worker& fw, const std::map<std::size_t, std::vector<server_record>>& records) {
  for (const auto& sub : fw.subs) {
    if (!sub->view) continue;
    for (std::size_t slot = 0; slot < sub->streams.size(); ++slot) {
      auto r = records.find(sub->streams[slot]);
      if (r == records.end()) return false;
      const auto& view = sub->view->slots[slot];
      if (view.size() != r->second.size()) return false;
      for (const auto& rec : r->second) {
        auto v = view.find(rec.key);
        if (v == view.end() || !same_value(v->second.first, rec.value)) return false;
      }
    }
  }
  return true;
}

// After the stop, once the writers are quiet and this worker's own pushes all arrived: reads
// the records of the streams its views cover and compares, every tick, until they agree (then
// views_settled) or the worker closes. A failed or malformed read is simply read again.
net::awaitable<void> run_view_check(fanout_worker& fw) {
  co_await net::this_coro::throw_if_cancelled(false);
  const auto cs = co_await net::this_coro::cancellation_state;
  const auto& cfg = fw.s.config;
  std::set<std::size_t> viewed;
  for (const auto& sub : fw.subs)
    if (sub->view) viewed.insert(sub->streams.begin(), sub->streams.end());
  http_client conn(fw.w.io(), fw.s.api);
  net::steady_timer timer(fw.w.io());
  while (!fw.closing && !cancelled(cs)) {
    timer.expires_after(tick);
    co_await timer.async_wait(use_tuple);
    if (fw.closing || cancelled(cs)) break;
    if (!fw.stopping || fw.writers_quiet_us < 0 || fw.s.pushers_active.load(std::memory_order_acquire) != 0) continue;
    std::map<std::size_t, std::vector<server_record>> records;
    bool read_all = true;
    for (std::size_t i : viewed) {
      auto r =
          co_await conn.async_request("GET", records_target(cfg.profile, fw.s.streams[i]->name), "", cfg.timeout_us);
      if (fw.closing || cancelled(cs)) co_return;
      records_page page;
      if (!r.failed) page = parse_records(cfg.profile, r.body);
      if (r.failed || page.malformed) {
        read_all = false;
        break;
      }
      records[i] = std::move(page.records);
    }
    if (read_all && views_match(fw, records)) {
      fw.views_settled = true;
      break;
    }
  }
}

// Per worker: deadlines, holes, the gauge, the drain and the final count.
net::awaitable<void> run_watchdog(fanout_worker& fw) {
  co_await net::this_coro::throw_if_cancelled(false);
  const auto cs = co_await net::this_coro::cancellation_state;
  const auto& cfg = fw.s.config;
  net::steady_timer timer(fw.w.io());
  for (;;) {
    timer.expires_after(tick);
    co_await timer.async_wait(use_tuple);
    const std::int64_t now = fw.w.now_us();
    fw.connected_gauge.set(now, static_cast<double>(fw.connected));
    if (cancelled(cs)) break;
    for (auto& sub : fw.subs) {
      if (sub->done) continue;
      if (sub->deadline_us != 0 && now >= sub->deadline_us && sub->socket && sub->kicked == kick::none) {
        sub->kicked = kick::timeout;
        error_code ignored;
        sub->socket->cancel(ignored);
      }
      if (sub->connected) {
        auto since = sub->tracker.hole_since();
        if (since && now - *since >= cfg.gap_grace_us && sub->tracker.count_gap()) {
          fw.gaps.add(now, 1, false);
          if (cfg.repair && !fw.closing && sub->kicked == kick::none) {
            sub->kicked = kick::repair;
            error_code ignored;
            sub->socket->cancel(ignored);
          }
        }
      }
    }
    if (fw.stopping && !fw.closing && fw.writers_quiet_us < 0 && fw.w.writers() == 0) {
      // The records are final now: the views get their own drain from here.
      fw.writers_quiet_us = now;
      if (fw.has_views) fw.drain_deadline_us = std::max(fw.drain_deadline_us, now + cfg.drain_us);
    }
    if (fw.stopping && !fw.closing) {
      bool settled = now >= fw.drain_deadline_us;
      if (!settled && fw.s.pushers_active.load(std::memory_order_acquire) == 0 && fw.writers_quiet_us >= 0 &&
          (!fw.has_views || fw.views_settled)) {
        settled = true;
        for (auto& sub : fw.subs)
          if (!sub->done && fw.missing_of(*sub) != 0) {
            settled = false;
            break;
          }
      }
      if (settled) {
        fw.closing = true;
        fw.kick_all(kick::stop);
      }
    }
    if (fw.closing && fw.subs_alive == 0) break;
  }
  // The final count: acked own ops each subscriber never received.
  std::uint64_t missing = 0;
  for (auto& sub : fw.subs) missing += fw.missing_of(*sub);
  fw.missing = missing;
  fw.missing_metric.add(fw.w.now_us(), missing, missing == 0);
  fw.missing_recorded = true;
  fw.connected_gauge.set(fw.w.now_us(), 0);
}

}  // namespace

struct fanout_model::impl {
  shared_state s;
  std::vector<std::unique_ptr<fanout_worker>> workers;
  bool snapshot_done = false;

  void take_snapshot() {
    const auto& cfg = s.config;
    for (auto& stp : s.streams) {
      stream_state& st = *stp;
      // A failed or malformed reply is tried again (a server restarting, a proxy's error page):
      // 20 attempts within 30 s, then the load cannot start.
      http_reply r;
      records_page page;
      const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(30);
      for (int attempt = 0; attempt < 20; ++attempt) {
        r = blocking_request(s.api, "GET", records_target(cfg.profile, st.name), "", cfg.timeout_us);
        if (!r.failed) {
          page = parse_records(cfg.profile, r.body);
          if (!page.malformed) break;
        }
        if (std::chrono::steady_clock::now() >= give_up) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(250));
      }
      if (r.failed)
        throw std::runtime_error("load " + cfg.name + ": cannot read the records of stream " + st.name + " (" +
                                 std::string(to_string(*r.failed)) + (r.status ? " " + std::to_string(r.status) : "") +
                                 ")");
      if (page.malformed)
        throw std::runtime_error("load " + cfg.name + ": records of stream " + st.name + ": " + page.reason);
      const json doc = parse_bounded(r.body);
      const json* cseq = nullptr;
      if (doc.is_object() && doc.contains("cseq") && doc["cseq"].is_number_integer()) cseq = &doc["cseq"];
      if (cseq) {
        st.snapshot_cursor = cseq->get<std::int64_t>();
        for (auto& rec : page.records) st.snapshot.push_back(audit_record{st.name, rec.key, rec.value, rec.version});
      } else {
        st.snapshot_cursor = 0;  // no consistent cursor: replay the whole stream into an empty view
      }
    }
  }
};

fanout_model::fanout_model(std::unique_ptr<impl> p) : impl_(std::move(p)) {}
fanout_model::~fanout_model() = default;

std::string_view fanout_model::name() const { return impl_->s.config.name; }

std::size_t fanout_model::planned_connections(std::size_t workers) const noexcept {
  const auto& c = impl_->s.config;
  return c.subscribers + c.push_connections * std::max<std::size_t>(workers, 1);
}

void fanout_model::start(worker& w) {
  auto& m = *impl_;
  shared_state& s = m.s;
  const auto& cfg = s.config;
  if (m.workers.empty()) {
    m.workers.resize(w.count());
    raise_nofile();
    s.api.resolve(w.io(), cfg.name);
    s.ws.resolve(w.io(), cfg.name);
    s.spread = cfg.spread_sources && s.ws.endpoints.size() == 1 && s.ws.endpoints[0].address().is_v4() &&
               s.ws.endpoints[0].address().to_v4() == net::ip::address_v4::loopback();
    m.take_snapshot();
    int owners = 0;
    for (std::size_t i = 0; i < w.count(); ++i)
      if (i < cfg.streams) ++owners;
    s.pushers_active.store(owners, std::memory_order_release);
  }
  auto& fw = *(m.workers.at(w.index()) = std::make_unique<fanout_worker>(w, s));
  fw.rng = detail::mix64(cfg.seed ^ (0x5157 + w.index()));
  for (std::size_t i = w.index(); i < cfg.subscribers; i += w.count()) {
    std::vector<std::uint32_t> streams;
    std::vector<std::int64_t> snap;
    for (std::size_t j = 0; j < cfg.streams_per_subscriber; ++j) {
      const auto st = static_cast<std::uint32_t>((i + j) % cfg.streams);
      streams.push_back(st);
      snap.push_back(s.streams[st]->snapshot_cursor);
    }
    auto sub = std::make_unique<subscriber>(static_cast<std::uint32_t>(i), std::move(streams), snap);
    if (cfg.views > 0 && i % s.view_stride == 0 && i / s.view_stride < cfg.views) {
      sub->view = std::make_unique<view_state>();
      sub->view->slots.resize(sub->streams.size());
      for (std::size_t k = 0; k < sub->streams.size(); ++k) {
        const stream_state& st = *s.streams[sub->streams[k]];
        for (const auto& rec : st.snapshot) sub->view->slots[k][rec.key] = {rec.value, st.snapshot_cursor};
      }
    }
    fw.subs.push_back(std::move(sub));
  }
  fw.subs_alive = fw.subs.size();
  for (auto& sub : fw.subs) fw.has_views = fw.has_views || sub->view != nullptr;
  if (fw.has_views) w.tasks().spawn(run_view_check(fw));
  for (auto& sub : fw.subs)
    w.tasks().spawn(s.ws.url.tls ? run_subscriber<true>(fw, *sub) : run_subscriber<false>(fw, *sub));
  // The pusher of this worker's streams.
  for (std::size_t i = w.index(); i < cfg.streams; i += w.count()) fw.my_streams.push_back(i);
  if (!fw.my_streams.empty()) {
    const double share = static_cast<double>(fw.my_streams.size()) / static_cast<double>(cfg.streams);
    std::vector<phase_spec> phases = cfg.phases;
    for (auto& p : phases) {
      if (p.rate) *p.rate *= share;
      if (p.to) *p.to *= share;
    }
    w.tasks().spawn(run_push_arrivals(fw, arrival_schedule(phases)));
    fw.pushers_alive = cfg.push_connections;
    for (std::size_t k = 0; k < cfg.push_connections; ++k) w.tasks().spawn(run_pusher(fw));
  } else {
    fw.arrivals_done = fw.pushing_done = true;
  }
  w.tasks().spawn(run_watchdog(fw));
}

void fanout_model::stop() {
  for (auto& fw : impl_->workers)
    if (fw) net::post(fw->w.io(), [p = fw.get()] { p->begin_stop(); });
}

void fanout_model::collect(std::vector<audit_op>& out) const {
  const shared_state& s = impl_->s;
  for (const auto& stp : s.streams) {
    const stream_state& st = *stp;
    for (std::size_t k = 0; k < st.ops.size(); ++k) {
      const auto q = static_cast<std::int64_t>(k + 1);
      const op_meta& meta = st.ops[k];
      audit_op op;
      op.id = st.id_prefix + std::to_string(q);
      op.client = st.client;
      op.stream = st.name;
      op.key = s.key_of(q);
      op.seq = q;
      op.kind = s.kind_of(q);
      op.delta = s.delta_of(q);
      op.created_us = meta.created_us;
      op.first_sent_us = meta.first_sent_us;
      const std::int64_t ack = st.ack_us[k].load(std::memory_order_acquire);
      op.acked_us = ack;
      op.state = ack >= 0                           ? audit_op_state::acked
                 : meta.state == op_state::rejected ? audit_op_state::rejected
                 : meta.first_sent_us >= 0          ? audit_op_state::in_doubt
                                                    : audit_op_state::unsent;
      out.push_back(std::move(op));
    }
  }
}

void fanout_model::collect_views(std::vector<audit_view>& out) const {
  const shared_state& s = impl_->s;
  for (const auto& fw : impl_->workers) {
    if (!fw) continue;
    for (const auto& sub : fw->subs) {
      if (!sub->view) continue;
      for (std::size_t k = 0; k < sub->streams.size(); ++k) {
        audit_view v;
        v.subscriber = s.config.name + "-sub" + std::to_string(sub->index);
        v.stream = s.streams[sub->streams[k]]->name;
        for (const auto& [key, e] : sub->view->slots[k]) v.records.push_back(audit_record{v.stream, key, e.first, 0});
        out.push_back(std::move(v));
      }
    }
  }
}

void fanout_model::collect_deliveries(std::vector<audit_delivery>& out, std::uint64_t& disagreements) const {
  const shared_state& s = impl_->s;
  std::vector<std::unordered_map<std::int64_t, std::uint64_t>> merged(s.streams.size());
  for (const auto& fw : impl_->workers) {
    if (!fw) continue;
    disagreements += fw->disagreements;
    for (std::size_t i = 0; i < fw->delivered.size(); ++i)
      for (const auto& [cursor, seen] : fw->delivered[i]) {
        auto [it, fresh] = merged[i].try_emplace(cursor, seen.change);
        if (!fresh && it->second != seen.change) ++disagreements;  // two workers got different changes
      }
  }
  for (std::size_t i = 0; i < merged.size(); ++i) {
    std::vector<std::pair<std::int64_t, std::uint64_t>> sorted(merged[i].begin(), merged[i].end());
    std::sort(sorted.begin(), sorted.end());
    for (const auto& [cursor, digest] : sorted) out.push_back(audit_delivery{s.streams[i]->name, cursor, digest});
  }
}

void fanout_model::collect_drops(std::vector<ws_drop>& out) const {
  for (const auto& fw : impl_->workers) {
    if (!fw) continue;
    for (const auto& [t, server] : fw->drops) out.push_back(ws_drop{t, fw->servers[server]});
  }
}

std::vector<std::string> fanout_model::stream_names() const {
  std::vector<std::string> out;
  for (const auto& st : impl_->s.streams) out.push_back(st->name);
  return out;
}

std::uint64_t fanout_model::missing() const noexcept {
  std::uint64_t n = 0;
  for (const auto& fw : impl_->workers)
    if (fw) n += fw->missing;
  return n;
}

std::unique_ptr<fanout_model> make_fanout_model(const fanout_config& config) {
  auto m = std::make_unique<fanout_model::impl>();
  shared_state& s = m->s;
  s.config = config;
  const std::string where = "load " + config.name + ": ";
  auto bad = [&](const std::string& key, const std::string& found, const std::string& expected) {
    throw std::invalid_argument(where + key + ": found " + found + "; expected " + expected);
  };
  if (config.subscribers == 0) bad("subscribers", "0", "an integer >= 1");
  if (config.streams == 0) bad("streams", "0", "an integer >= 1");
  if (config.streams_per_subscriber == 0 || config.streams_per_subscriber > config.streams)
    bad("streams_per_subscriber", std::to_string(config.streams_per_subscriber),
        "1 to streams (" + std::to_string(config.streams) + ")");
  if (config.keys == 0) bad("keys", "0", "an integer >= 1");
  if (config.push_connections == 0) bad("push_connections", "0", "an integer >= 1");
  if (config.max_batch == 0) bad("max_batch", "0", "an integer >= 1");
  if (!(config.connect_rate > 0)) bad("connect_rate", std::to_string(config.connect_rate), "a rate > 0");
  if (config.timeout_us <= 0) bad("timeout", std::to_string(config.timeout_us) + " µs", "a positive duration");
  if (config.idle_timeout_us <= 0)
    bad("idle_timeout", std::to_string(config.idle_timeout_us) + " µs", "a positive duration");
  if (config.reconnect_base_us <= 0 || config.reconnect_max_us < config.reconnect_base_us)
    bad("reconnect", std::to_string(config.reconnect_base_us) + "/" + std::to_string(config.reconnect_max_us) + " µs",
        "a positive base and a max >= base");
  if (config.phases.empty()) bad("phases", "none", "at least one phase");
  if (config.run_tag.empty()) bad("run tag", "\"\"", "a tag that makes op ids unique");
  arrival_schedule plan(config.phases);  // throws on bad phases
  s.api = http_site::make(config.http_url, config.headers, config.tls, "scenario.target.endpoints.http");
  s.ws = http_site::make(config.ws_url, config.headers, config.tls, "scenario.target.endpoints.ws");
  s.ws_host = s.ws.host;
  const std::uint64_t total = plan.total_before(plan.end_us()) + 1;
  s.cap_per_stream = static_cast<std::size_t>(total / config.streams + 2);
  s.view_stride = std::max<std::size_t>(1, config.views == 0 ? 1 : config.subscribers / config.views);
  for (std::size_t i = 0; i < config.streams; ++i) {
    auto st = std::make_unique<stream_state>();
    st->name = config.stream_prefix + std::to_string(i);
    st->client = config.name + "-" + std::to_string(i);
    st->id_prefix = config.run_tag + "-" + config.name + "-" + std::to_string(i) + "-";
    st->cap = s.cap_per_stream;
    st->ack_us = std::make_unique<std::atomic<std::int64_t>[]>(st->cap);
    for (std::size_t k = 0; k < st->cap; ++k) st->ack_us[k].store(-1, std::memory_order_relaxed);
    st->ops.reserve(std::min<std::size_t>(st->cap, 1 << 16));
    s.streams.push_back(std::move(st));
  }
  return std::make_unique<fanout_model>(std::move(m));
}

fanout_config fanout_config_from(const std::string& name, const json& f, const std::vector<phase_spec>& phases,
                                 const json& target, const std::string& base_http_url, const std::string& base_ws_url,
                                 const std::string& run_tag, std::uint64_t seed, bool resolve,
                                 const std::string& where) {
  fanout_config c = fanout_settings_from(name, f, phases, where);
  bind_fanout(c, target, base_http_url, base_ws_url, run_tag, seed, resolve);
  return c;
}

fanout_config fanout_settings_from(const std::string& name, const json& f, const std::vector<phase_spec>& phases,
                                   const std::string& where) {
  fanout_config c;
  c.name = name;
  auto bad = [&](const std::string& key, const json& found, const std::string& expected) {
    throw std::invalid_argument(where + "." + key + ": found " + found.dump() + "; expected " + expected);
  };
  auto get_int = [&](const json& o, const char* key, std::int64_t def, std::int64_t min) -> std::int64_t {
    if (!o.contains(key)) return def;
    if (!o[key].is_number_integer() || o[key].get<std::int64_t>() < min)
      bad(key, o[key], "an integer >= " + std::to_string(min));
    return o[key].get<std::int64_t>();
  };
  auto get_dur = [&](const json& o, const char* key, const std::string& path, std::int64_t def) -> std::int64_t {
    if (!o.contains(key)) return def;
    const std::int64_t v = duration_us(o[key]);
    if (v <= 0) bad(path, o[key], "a positive duration like \"5s\"");
    return v;
  };
  auto get_bool = [&](const char* key, bool def) {
    if (!f.contains(key)) return def;
    if (!f[key].is_boolean()) bad(key, f[key], "true or false");
    return f[key].get<bool>();
  };
  c.subscribers = static_cast<std::size_t>(get_int(f, "subscribers", 1, 1));
  c.streams = static_cast<std::size_t>(get_int(f, "streams", 1, 1));
  c.streams_per_subscriber = static_cast<std::size_t>(get_int(f, "streams_per_subscriber", 1, 1));
  if (c.streams_per_subscriber > c.streams)
    bad("streams_per_subscriber", f["streams_per_subscriber"], "at most streams (" + std::to_string(c.streams) + ")");
  std::optional<double> rate;
  if (f.contains("rate")) rate = rate_value(f["rate"]);
  for (const auto& p0 : phases) {
    phase_spec p = p0;
    if (!p.rate && !p.to) p.rate = rate.value_or(0.0);
    c.phases.push_back(p);
  }
  if (f.contains("connect_rate")) {
    c.connect_rate = rate_value(f["connect_rate"]);
    if (!(c.connect_rate > 0)) bad("connect_rate", f["connect_rate"], "a rate > 0");
  }
  if (f.contains("reconnect")) {
    const json& r = f["reconnect"];
    c.reconnect_base_us = get_dur(r, "base", "reconnect.base", c.reconnect_base_us);
    c.reconnect_max_us = get_dur(r, "max", "reconnect.max", c.reconnect_max_us);
    if (c.reconnect_max_us < c.reconnect_base_us)
      bad("reconnect.max", r.value("max", json()), "a duration >= reconnect.base");
  }
  c.storm = get_bool("storm", c.storm);
  c.repair = get_bool("repair", c.repair);
  c.spread_sources = get_bool("spread_sources", c.spread_sources);
  if (f.contains("server_header")) {
    if (!f["server_header"].is_string()) bad("server_header", f["server_header"], "a header name, or \"\" for none");
    c.server_header = f["server_header"].get<std::string>();
  }
  c.gap_grace_us = get_dur(f, "gap_grace", "gap_grace", c.gap_grace_us);
  c.drain_us = get_dur(f, "drain", "drain", c.drain_us);
  c.timeout_us = get_dur(f, "timeout", "timeout", c.timeout_us);
  c.idle_timeout_us = get_dur(f, "idle_timeout", "idle_timeout", c.idle_timeout_us);
  c.views = static_cast<std::size_t>(get_int(f, "views", static_cast<std::int64_t>(c.views), 0));
  c.keys = static_cast<std::size_t>(get_int(f, "keys", static_cast<std::int64_t>(c.keys), 1));
  c.push_connections =
      static_cast<std::size_t>(get_int(f, "push_connections", static_cast<std::int64_t>(c.push_connections), 1));
  c.max_batch = static_cast<std::size_t>(get_int(f, "max_batch", static_cast<std::int64_t>(c.max_batch), 1));
  if (f.contains("stream_prefix")) {
    if (!f["stream_prefix"].is_string()) bad("stream_prefix", f["stream_prefix"], "a string");
    c.stream_prefix = f["stream_prefix"];
  }
  return c;
}

void bind_fanout(fanout_config& c, const json& target, const std::string& base_http_url, const std::string& base_ws_url,
                 const std::string& run_tag, std::uint64_t seed, bool resolve) {
  c.run_tag = run_tag;
  c.seed = seed;
  const std::string& name = c.name;
  std::string http_base = base_http_url, ws_base = base_ws_url;
  if (target.contains("endpoints") && target["endpoints"].is_object()) {
    if (http_base.empty()) http_base = target["endpoints"].value("http", "");
    if (ws_base.empty()) ws_base = target["endpoints"].value("ws", "");
  }
  if (http_base.empty())
    throw std::invalid_argument("scenario.target.endpoints.http: found nothing; expected the sync API's URL for load " +
                                name);
  if (ws_base.empty()) {
    if (http_base.starts_with("https://"))
      ws_base = "wss://" + http_base.substr(8);
    else if (http_base.starts_with("http://"))
      ws_base = "ws://" + http_base.substr(7);
  }
  c.http_url = resolve ? resolve_env(http_base) : http_base;
  c.ws_url = resolve ? resolve_env(ws_base) : ws_base;
  auto access = target_access_from(target, resolve);
  c.headers = std::move(access.headers);
  c.tls = std::move(access.tls);
  c.profile = std::move(access.profile);
}

}  // namespace syncstorm::loadgen
