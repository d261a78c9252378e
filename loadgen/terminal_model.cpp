// The terminal model's runtime on Beast: per worker, one arrival coroutine (the open model's
// schedule, dealt round-robin over the worker's terminals), one coroutine per terminal (its
// batcher, breaker, retries and its own keep-alive connection) and a ticker (queue.depth every
// 100 ms; the final count of ops that never got acked). Everything here runs on one worker's
// thread; the model object hands out per-worker state and posts the fault hooks to it.
//
// I/O objects (sockets, timers) live in coroutine frames, so they die with their coroutine,
// before the worker's io_context; the terminal state points at them while they live so that
// stop() and the fault hooks can wake or cut them.
#include "loadgen/target_access.hpp"
#include "loadgen/terminal_model.hpp"
#include "loadgen/http_client.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/http/verb.hpp>

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <array>
#include <deque>
#include <filesystem>
#include <limits>
#include <stdexcept>
#include <unordered_map>
#include <unordered_set>

#include "core/json_limits.hpp"
#include "core/scenario.hpp"
#include "loadgen/detail/arrival_loop.hpp"
#include "loadgen/detail/task_group.hpp"

namespace syncstorm::loadgen {
namespace {

// fdatasync on a small process-wide pool of blocking threads; the awaiting coroutine resumes on
// its own worker. Takes ownership of `fd` (closes it).
net::thread_pool& blocking_pool() {
  static net::thread_pool pool(2);
  return pool;
}

net::awaitable<bool> async_fdatasync(int fd) {
  co_return co_await net::co_spawn(
      blocking_pool().get_executor(),
      [fd]() -> net::awaitable<bool> {
        const bool ok = ::fdatasync(fd) == 0;
        ::close(fd);
        co_return ok;
      },
      net::use_awaitable);
}

using json = nlohmann::json;
constexpr auto use_tuple = net::as_tuple(net::use_awaitable);
constexpr std::int64_t tick_us = 100'000;
constexpr std::uint64_t body_limit = 16u << 20;  // a push reply

std::uint64_t mix64(std::uint64_t z) {
  z += 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

bool cancelled(const net::cancellation_state& cs) { return cs.cancelled() != net::cancellation_type::none; }

std::string client_name(const terminal_config& c, std::size_t i) {
  if (!c.client_prefix.empty()) return c.client_prefix + std::to_string(i);
  return "s" + std::to_string(i / c.terminals_per_store) + "-t" + std::to_string(i % c.terminals_per_store);
}

std::string journal_file(const terminal_config& c, std::size_t i) {
  return (std::filesystem::path(c.journal_dir) / (c.name + "-" + client_name(c, i) + ".journal")).string();
}

// What the workers share, read-only once built.
struct shared_state {
  terminal_config config;
  http_site site;  // the push endpoint's base, TLS and headers; resolved by the first start()
  std::size_t terminals = 0;
  std::int64_t horizon_us = 0;  // the phases' total: random offline windows cover it
};

struct queued_op {
  sync_op op;
  std::size_t audit = 0;  // index into the worker's audit records
};

struct terminal {
  terminal(std::size_t i, const shared_state& s)
      : index(i),
        retry(s.config.retry, mix64(s.config.seed ^ (0x5157ull + i))),
        breaker(s.config.breaker),
        rng(mix64(s.config.seed * 31 + i)) {}

  std::size_t index;
  std::string client, stream;
  std::unique_ptr<journal> jr;
  std::deque<queued_op> queue;  // not acked, not rejected; the first `inflight` are in the push
  std::size_t inflight = 0;
  std::int64_t not_before_us = 0;
  retry_state retry;
  circuit_breaker breaker;
  std::uint64_t rng;
  std::int64_t seq = 0;
  std::vector<std::int64_t> versions;  // last known version per set key
  std::int64_t next_period_us = 0;
  bool period_flushing = false;
  std::uint64_t generation = 0;  // bumped by a crash: a push in flight is abandoned
  online_gate gate;              // empty: always online
  bool offline = false;          // the gate was last seen closed
  bool cut = false;              // a window opened while a push was in flight
  std::int64_t gate_next_us = std::numeric_limits<std::int64_t>::max();  // next gate change
  std::optional<offline_window> window;  // the window the terminal is in (while offline)
  reconnect_tracker reconnect;
  // While the terminal's coroutine lives:
  bool running = false;
  net::steady_timer* wake = nullptr;
  http_client* conn = nullptr;  // while a push is in flight

  std::uint64_t next_rand() { return rng = mix64(rng); }
};

struct impl_worker;

}  // namespace

struct terminal_model::impl {
  shared_state s;
  std::vector<std::unique_ptr<impl_worker>> workers;
  // Per terminal: crash / corruption requests posted and not yet handled on its worker.
  std::unique_ptr<std::atomic<int>[]> pending;
  void emit(const std::string& event, json fields) const {
    if (!s.config.on_event) return;
    fields["load"] = s.config.name;
    s.config.on_event(event, fields);
  }
};

namespace {

// One worker's terminals, audit records and metrics. Only touched on the worker's thread.
struct impl_worker {
  impl_worker(worker& w_, terminal_model::impl& m_)
      : w(w_),
        m(m_),
        s(m_.s),
        local_write(metric("local.write")),
        local_fsync(metric("local.fsync")),
        push_latency(metric("push.latency")),
        push_e2e(metric("push.e2e")),
        push_requests(metric("push.requests")),
        attempts(metric("availability.attempts")),
        ops_fate(metric("availability.ops")),
        conflicts(metric("conflicts")),
        rejected(metric("push.rejected")),
        parked(metric("push.parked")),
        breaker_open(metric("breaker.open")),
        journal_corrupt(metric("journal.corrupt")),
        depth(w.metrics().gauge("queue.depth@" + s.config.name)) {
    detail::register_arrival_metrics(w);
    if (!s.config.offline.empty()) {
      resume_time = &metric("offline.resume_time");
      drain_time = &metric("offline.drain_time");
      peak_queue = &metric("offline.peak_queue");
      cut = &metric("offline.cut");
    }
    for (std::size_t b = 0; b < error_bucket_count; ++b)
      errors[b] = &metric("push.errors." + std::string(to_string(static_cast<error_bucket>(b))));
  }

  timed_metric& metric(const std::string& n) { return w.metrics().metric(n + "@" + s.config.name); }

  double at_s() const { return static_cast<double>(w.now_us()) / 1e6; }

  void event(const std::string& name, const terminal& t, json fields) {
    fields["terminal"] = t.client;
    fields["at_s"] = at_s();
    m.emit(name, std::move(fields));
  }

  // The first few failed pushes of each error bucket (per worker), as `push_error` events with
  // the reason and a truncated, printable sample of the reply (never the whole of it).
  static constexpr int samples_per_bucket = 3;
  std::array<int, error_bucket_count> samples{};
  void error_sample(const terminal& t, error_bucket b, int status, const std::string& reason, std::string_view body) {
    if (samples[static_cast<std::size_t>(b)]++ >= samples_per_bucket) return;
    json f = {{"bucket", std::string(to_string(b))}, {"reason", text_excerpt(reason, 240)}};
    if (status) f["status"] = status;
    if (!body.empty()) f["sample"] = text_excerpt(body, 200), f["bytes"] = body.size();
    event("push_error", t, std::move(f));
  }

  void breaker_event(const terminal& t, const breaker_transition& tr) {
    if (tr.to == breaker_state::open) breaker_open.add(tr.at_us);
    event("breaker_" + std::string(to_string(tr.to)), t, {{"from", std::string(to_string(tr.from))}});
  }

  std::size_t depth_now() const {
    std::size_t n = 0;
    for (const auto& t : terms) n += t->queue.size();
    return n;
  }

  void wake(terminal& t) {
    if (t.wake) t.wake->cancel();
  }

  // A transaction arrives at terminal t: one op by the mix, journaled, then queued.
  void create_op(terminal& t) {
    const std::int64_t now = w.now_us();
    queued_op q;
    sync_op& op = q.op;
    op.seq = ++t.seq;
    // The load's name keeps ids unique when a run has several terminal loads.
    op.id = s.config.run_tag + "-" + s.config.name + "-" + t.client + "-" + std::to_string(op.seq);
    op.stream = t.stream;
    op.t_us = now;
    const auto roll = static_cast<int>(t.next_rand() % 100);
    const std::size_t k = static_cast<std::size_t>(t.next_rand() % s.config.keys);
    if (roll < s.config.pct_append) {
      op.kind = op_kind::append;
      op.value = json{{"total_cents", static_cast<int>(100 + t.next_rand() % 9900)}};
    } else if (roll < s.config.pct_append + s.config.pct_add) {
      op.kind = op_kind::add;
      op.key = "c" + std::to_string(k);
      const int d = static_cast<int>(t.next_rand() % 6);  // 0..5 → -3..-1, 1..3
      op.delta = d < 3 ? d - 3 : d - 2;
    } else {
      op.kind = op_kind::set;
      op.key = "v" + std::to_string(k);
      // Its own earlier sets on the key, still queued, come first: the base chains on them
      // (a client that writes twice offline expects its second write on top of its first).
      op.base_version = t.versions[k]++;
      op.value = json{{"by", t.client}, {"seq", op.seq}};
    }
    audit_op a;
    a.id = op.id;
    a.client = t.client;
    a.stream = op.stream;
    a.key = op.key;
    a.seq = op.seq;
    a.kind = op.kind == op_kind::append ? 'a' : op.kind == op_kind::add ? 'd' : 's';
    a.delta = op.delta;
    if (op.kind == op_kind::set) a.value = op.value;
    if (op.kind != op_kind::add) a.digest = payload_digest(op.value);
    a.created_us = now;
    q.audit = audit.size();
    audit_index.emplace(op.id, audit.size());
    audit.push_back(std::move(a));
    counted.push_back(false);
    bool ok = true;
    if (t.jr) ok = t.jr->append_op(op);
    const std::int64_t after = w.now_us();
    local_write.record(after, after - now, ok);
    const bool was_empty = t.queue.empty();
    t.queue.push_back(std::move(q));
    // The terminal re-decides when its batch could now be complete or its first op arrived.
    if (!s.config.periodic && (was_empty || t.queue.size() >= s.config.batch.max_ops)) wake(t);
  }

  void final_fate(std::size_t audit_i, std::int64_t now, bool ok) {
    if (counted[audit_i]) return;
    counted[audit_i] = true;
    ops_fate.add(now, 1, ok);
  }

  // A crash: memory gone, the journal replayed (and checked) into a new queue.
  void crash(terminal& t) {
    const std::int64_t now = w.now_us();
    ++t.generation;
    t.queue.clear();
    t.inflight = 0;
    t.not_before_us = 0;
    t.retry = retry_state(s.config.retry, mix64(s.config.seed ^ t.generation ^ (t.index << 20)));
    t.breaker = circuit_breaker(s.config.breaker);
    std::fill(t.versions.begin(), t.versions.end(), 0);
    t.period_flushing = false;
    if (t.conn) t.conn->cancel();
    const auto path = t.jr ? t.jr->path() : std::filesystem::path(journal_path(t.index));
    t.jr.reset();
    journal_replay r = journal::replay(path);
    if (r.corrupt) {
      journal_corrupt.add(now, 1, false);
      event("journal_corrupt", t,
            {{"detected_on", "crash_replay"},
             {"good_bytes", r.good_bytes},
             {"file_bytes", r.file_bytes},
             {"reason", r.reason}});
    }
    try {
      t.jr = std::make_unique<journal>(path, s.config.fsync);
      // Cut to the good prefix: a fresh journal of the pending ops (acked ones are done).
      if (r.corrupt || r.records != r.pending.size()) t.jr->rewrite(r.pending);
    } catch (const std::exception&) {
      t.jr.reset();  // keep going without a journal; local.write will show the failures
    }
    for (auto& op : r.pending) {
      auto it = audit_index.find(op.id);
      if (it == audit_index.end()) continue;  // not an op of this run
      if (audit[it->second].state == audit_op_state::acked) continue;
      t.queue.push_back({std::move(op), it->second});
    }
    check_drained(t, now);
    event("client_crash", t, {{"replayed", t.queue.size()}, {"journal_corrupt", r.corrupt}});
    wake(t);
    ensure_running(t);
  }

  void corrupt(terminal& t, std::size_t bytes, std::uint64_t n) {
    const std::int64_t now = w.now_us();
    if (!t.jr) return;
    t.jr->sync();
    const auto offset = corrupt_file(t.jr->path(), bytes, mix64(s.config.seed ^ (t.index * 977) ^ n));
    // Verify at once, as a terminal that checks its journal after every fault would.
    journal_replay r = journal::replay(t.jr->path());
    const bool detected = r.corrupt;
    if (detected) journal_corrupt.add(now, 1, false);
    event("journal_corrupt", t,
          {{"detected_on", "verify"},
           {"detected", detected},
           {"bytes", bytes},
           {"offset", offset ? json(*offset) : json(nullptr)},
           {"good_bytes", r.good_bytes},
           {"file_bytes", r.file_bytes},
           {"reason", r.reason}});
    if (!detected) return;
    std::vector<sync_op> ops;
    for (const auto& q : t.queue) ops.push_back(q.op);
    t.jr->rewrite(ops);
  }

  std::string journal_path(std::size_t i) const { return journal_file(s.config, i); }

  bool gated() const { return cut != nullptr; }  // an offline plan: the offline metrics exist

  void offline_outcome(const reconnect_tracker::outcome& o, std::int64_t now) {
    if (!drain_time) return;
    if (o.resume_us) resume_time->record(now, *o.resume_us, true);
    if (o.drain_us) drain_time->record(now, *o.drain_us, o.drain_ok);
  }

  // Whether the backlog held at t's last reconnect is gone: nothing queued was created before.
  bool backlog_gone(const terminal& t) const {
    return t.queue.empty() || audit[t.queue.front().audit].created_us >= t.reconnect.reconnected_at();
  }

  void check_drained(terminal& t, std::int64_t now) {
    if (t.reconnect.draining() && backlog_gone(t)) offline_outcome(t.reconnect.on_drained(now), now);
  }

  // The online gate: is t online at now? Carries out a change since it last looked: going
  // offline drops the connection (cutting a push in flight); coming back forgets the backoff,
  // arms the reconnect measurements and wakes the terminal. Stopping opens every gate.
  bool gate(terminal& t, std::int64_t now) {
    if (t.gate.empty()) return true;
    std::optional<offline_window> w = stopping ? std::nullopt : t.gate.window_at(now);
    t.gate_next_us = stopping ? std::numeric_limits<std::int64_t>::max() : t.gate.next_change(now);
    if (w && !t.offline) {
      t.offline = true;
      t.window = w;
      offline_outcome(t.reconnect.abandon(now), now);
      if (t.conn) {
        t.cut = true;
        t.conn->cancel();
      }
      event("client_offline", t,
            {{"window_start_s", static_cast<double>(w->start_us) / 1e6},
             {"window_end_s", static_cast<double>(w->end_us) / 1e6},
             {"queued", t.queue.size()}});
    } else if (!w && t.offline) {
      t.offline = false;
      // The network came back when the window ended, or when the run's drain began.
      const bool by_stop = stopping && now < t.window->end_us;
      const std::int64_t at = by_stop ? std::max(stop_us, t.window->start_us) : t.window->end_us;
      bool backlog = false;
      for (const auto& q : t.queue) backlog = backlog || audit[q.audit].created_us < at;
      offline_outcome(t.reconnect.reconnect(at, backlog), now);
      if (!t.queue.empty()) peak_queue->record(now, static_cast<std::int64_t>(t.queue.size()), true);
      t.not_before_us = 0;
      t.retry.on_success();
      event("client_online", t,
            {{"window_start_s", static_cast<double>(t.window->start_us) / 1e6},
             {"window_end_s", static_cast<double>(t.window->end_us) / 1e6},
             {"queued", t.queue.size()},
             {"reason", by_stop ? "stop" : "window_end"}});
      t.window.reset();
      wake(t);
    }
    return !t.offline;
  }

  void ensure_running(terminal& t);
  void ensure_ticker();

  void begin_stop() {
    if (stopping) return;
    stopping = true;
    stop_us = w.now_us();
    drain_deadline_us = w.now_us() + s.config.drain_us;
    if (arrival_timer) arrival_timer->cancel();
    for (auto& t : terms) wake(*t);
    if (ticker_timer) ticker_timer->cancel();
  }

  worker& w;
  terminal_model::impl& m;
  const shared_state& s;
  std::vector<std::unique_ptr<terminal>> terms;
  std::vector<audit_op> audit;
  std::vector<bool> counted;  // availability.ops already recorded for this audit record
  std::unordered_map<std::string, std::size_t> audit_index;
  timed_metric &local_write, &local_fsync, &push_latency, &push_e2e, &push_requests, &attempts, &ops_fate, &conflicts,
      &rejected, &parked, &breaker_open, &journal_corrupt;
  gauge_series& depth;
  std::array<timed_metric*, error_bucket_count> errors{};
  timed_metric *resume_time = nullptr, *drain_time = nullptr, *peak_queue = nullptr, *cut = nullptr;  // with a gate
  std::int64_t stop_us = 0;
  net::steady_timer* arrival_timer = nullptr;
  net::steady_timer* ticker_timer = nullptr;
  bool arrivals_done = false, stopping = false, ticker_running = false;
  std::int64_t drain_deadline_us = 0;
  std::size_t running = 0;
  std::uint64_t corruptions = 0;
};

// Applies a successful reply to the batch at the front of t's queue; returns the ops acked.
std::size_t apply_reply(impl_worker& iw, terminal& t, std::size_t n, const push_reply& reply, std::int64_t now) {
  std::unordered_set<std::string> acked(reply.acked.begin(), reply.acked.end());
  std::unordered_map<std::string, const push_conflict*> conflicts;
  for (const auto& c : reply.conflicts) conflicts.emplace(c.id, &c);
  std::unordered_set<std::string> rejected(reply.rejected.begin(), reply.rejected.end());
  std::vector<std::string> acked_ids, rejected_ids;
  std::unordered_map<std::string, std::int64_t> rebased;  // key → the next rebased set's base
  std::deque<queued_op> keep;
  const std::size_t batch = std::min(n, t.queue.size());
  for (std::size_t i = 0; i < batch; ++i) {
    queued_op& q = t.queue[i];
    audit_op& a = iw.audit[q.audit];
    if (acked.count(q.op.id)) {
      if (a.state != audit_op_state::acked) {
        a.state = audit_op_state::acked;
        a.acked_us = now;
        iw.push_e2e.record(now, now - a.created_us, true);
        iw.final_fate(q.audit, now, true);
      }
      if (q.op.kind == op_kind::set) {
        const std::size_t k = static_cast<std::size_t>(std::stoul(q.op.key.substr(1)));
        if (k < t.versions.size()) t.versions[k] = std::max(t.versions[k], q.op.base_version + 1);
      }
      acked_ids.push_back(q.op.id);
    } else if (auto c = conflicts.find(q.op.id); c != conflicts.end()) {
      iw.conflicts.add(now);
      conflict_action act = on_conflict(iw.s.config.conflict, c->second->version);
      if (q.op.kind == op_kind::set && !q.op.key.empty()) {
        const std::size_t k = static_cast<std::size_t>(std::stoul(q.op.key.substr(1)));
        if (act.retry) {
          // Several of this batch's sets on one key rebase in their order, each on the one before.
          auto [it, first] = rebased.try_emplace(q.op.key, act.base_version);
          if (!first) act.base_version = std::max(act.base_version, it->second);
          it->second = act.base_version + 1;
        }
        if (k < t.versions.size()) t.versions[k] = act.retry ? act.base_version + 1 : c->second->version;
      }
      if (act.retry) {
        a.rebased = true;
        q.op.base_version = act.base_version;
        if (t.jr) t.jr->append_rebase(q.op.id, act.base_version);
        keep.push_back(std::move(q));
      } else {
        a.state = audit_op_state::rejected;
        iw.final_fate(q.audit, now, false);
        rejected_ids.push_back(q.op.id);
      }
    } else if (rejected.count(q.op.id)) {
      iw.rejected.add(now, 1, false);
      a.state = audit_op_state::rejected;
      iw.final_fate(q.audit, now, false);
      rejected_ids.push_back(q.op.id);
    } else {
      keep.push_back(std::move(q));  // the server said nothing about it: pushed again
    }
  }
  for (std::size_t i = batch; i < t.queue.size(); ++i) keep.push_back(std::move(t.queue[i]));
  t.queue = std::move(keep);
  if (t.jr) {
    t.jr->append_acks(acked_ids);
    t.jr->append_rejects(rejected_ids);
  }
  return acked_ids.size();
}

// Sleeps until at_us, the drain's deadline or t's next gate change, whichever comes first (or
// until woken).
net::awaitable<void> wait_until(impl_worker& iw, const terminal& t, net::steady_timer& timer, std::int64_t at_us) {
  if (iw.stopping) at_us = std::min(at_us, iw.drain_deadline_us);
  at_us = std::min(at_us, t.gate_next_us);
  if (at_us == std::numeric_limits<std::int64_t>::max())
    timer.expires_at(net::steady_timer::time_point::max());
  else
    timer.expires_at(iw.w.start() + std::chrono::microseconds(at_us));
  co_await timer.async_wait(use_tuple);
}

// One terminal: decides when to push, pushes, applies the reply, retries, parks, breaks.
// GCC 12 takes the coroutine frame's sized operator delete (Asio's recycling allocator) for a
// mismatch with the frame's allocation in this function (-Wmismatched-new-delete); it pairs.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
net::awaitable<void> run_terminal(impl_worker& iw, terminal& t) {
  const writer_hold writing(iw.w);  // until the drain ends (fanout views wait for it)
  co_await net::this_coro::throw_if_cancelled(false);
  const auto cs = co_await net::this_coro::cancellation_state;
  const shared_state& s = iw.s;
  const auto& cfg = s.config;
  net::steady_timer timer(iw.w.io());
  t.wake = &timer;
  http_client conn(iw.w.io(), s.site);
  std::uint64_t gen = t.generation;
  constexpr std::int64_t never = std::numeric_limits<std::int64_t>::max();

  while (!cancelled(cs)) {
    if (gen != t.generation) {  // crashed: a new life, a new connection
      conn.close();
      gen = t.generation;
    }
    const std::int64_t now = iw.w.now_us();
    if (iw.stopping && now >= iw.drain_deadline_us) break;
    if (!iw.gate(t, now)) {  // offline: ops are journaled and queued; the network is not touched
      co_await wait_until(iw, t, timer, t.gate_next_us);
      continue;
    }
    if (t.queue.empty()) {
      t.period_flushing = false;
      if (iw.arrivals_done || iw.stopping) break;
      co_await wait_until(iw, t, timer, never);
      continue;
    }
    if (now < t.not_before_us) {
      co_await wait_until(iw, t, timer, t.not_before_us);
      continue;
    }
    const bool flush = iw.stopping || iw.arrivals_done;
    std::size_t n = 0;
    if (cfg.periodic) {
      if (!flush && !t.period_flushing) {
        if (now < t.next_period_us) {
          co_await wait_until(iw, t, timer, t.next_period_us);
          continue;
        }
        t.period_flushing = true;
        while (t.next_period_us <= now) t.next_period_us += cfg.every_us;
      }
      n = std::min(t.queue.size(), cfg.batch.max_ops);
    } else {
      const batch_decision d =
          decide_batch(cfg.batch, t.queue.size(), iw.audit[t.queue.front().audit].created_us, now, flush);
      if (!d.send) {
        co_await wait_until(iw, t, timer, d.wake_at_us);
        continue;
      }
      n = d.ops;
    }
    std::optional<breaker_transition> tr;
    if (!t.breaker.allow(now, tr)) {
      t.not_before_us = t.breaker.retry_at();
      continue;
    }
    if (tr) iw.breaker_event(t, *tr);
    if (t.jr && t.jr->dirty()) {
      // The fsync runs on the blocking pool: a slow disk delays this terminal's push, as on a
      // real device, but never the other terminals sharing the worker.
      const std::int64_t t0 = iw.w.now_us();
      const int fd = t.jr->begin_sync();
      const bool ok = fd >= 0 && co_await async_fdatasync(fd);
      const std::int64_t t1 = iw.w.now_us();
      iw.local_fsync.record(t1, t1 - t0, ok);
      if (cancelled(cs)) break;
      if (!iw.gate(t, iw.w.now_us())) continue;  // the window opened during the fsync
    }

    std::vector<sync_op> ops;
    ops.reserve(n);
    const std::int64_t sent = iw.w.now_us();
    for (std::size_t i = 0; i < n; ++i) {
      ops.push_back(t.queue[i].op);
      audit_op& a = iw.audit[t.queue[i].audit];
      if (a.first_sent_us < 0) a.first_sent_us = sent;
      if (a.state == audit_op_state::unsent) a.state = audit_op_state::in_doubt;
    }
    t.inflight = n;
    // One deadline for the exchange; a reused connection the server had closed is retried once,
    // fresh, inside it (not the server's failure). A crash or a cut cancels it (t.conn).
    t.conn = &conn;
    http_reply r = co_await conn.async_request(cfg.profile.push_method, push_target(cfg.profile),
                                               render_push(cfg.profile, t.client, ops), cfg.timeout_us);
    t.conn = nullptr;
    if (cancelled(cs)) break;
    if (gen != t.generation) continue;  // crashed meanwhile: the queue is a new one
    t.inflight = 0;
    const std::int64_t done = iw.w.now_us();
    const bool was_cut = std::exchange(t.cut, false);
    if (was_cut && r.failed) {
      // The network went away under the push: not the server's failure; the ops stay queued
      // (in doubt) and go again after the reconnect.
      iw.cut->add(done, 1, false);
      conn.close();
      continue;
    }
    push_reply reply;
    if (!r.failed) {
      reply = parse_push_reply(cfg.profile, r.body);
      if (reply.malformed) r.failed = error_bucket::protocol;
    }
    if (r.failed && *r.failed != error_bucket::timeout && done - sent >= cfg.timeout_us)
      r.failed = error_bucket::timeout;
    const bool ok = !r.failed;
    iw.push_latency.record(done, done - sent, ok);
    iw.push_requests.add(done, 1, ok);
    iw.attempts.add(done, 1, ok);
    if (!ok) {
      iw.errors[static_cast<std::size_t>(*r.failed)]->add(done, 1, false);
      iw.error_sample(t, *r.failed, r.status, reply.malformed ? reply.reason : r.error, r.body);
      conn.close();
      if (auto b = t.breaker.on_failure(done)) iw.breaker_event(t, *b);
      const retry_action ra = t.retry.on_failure(done);
      t.not_before_us = ra.retry_at_us;
      if (ra.parked) {
        iw.parked.add(done);
        iw.event("batch_parked", t,
                 {{"ops", n},
                  {"attempts", ra.attempt},
                  {"until_s", static_cast<double>(ra.retry_at_us) / 1e6},
                  {"error", std::string(to_string(*r.failed))}});
      }
      if (t.breaker.state() == breaker_state::open) t.not_before_us = std::max(t.not_before_us, t.breaker.retry_at());
      continue;
    }
    if (auto b = t.breaker.on_success(done)) iw.breaker_event(t, *b);
    t.retry.on_success();
    t.not_before_us = 0;
    if (apply_reply(iw, t, n, reply, done) > 0) iw.offline_outcome(t.reconnect.on_ack(done), done);
    iw.check_drained(t, done);
  }
  // A backlog still held when the terminal stops: its drain did not finish.
  const std::int64_t end = iw.w.now_us();
  iw.check_drained(t, end);
  iw.offline_outcome(t.reconnect.abandon(end), end);
  t.wake = nullptr;
  t.conn = nullptr;
  t.running = false;
  --iw.running;
}
#pragma GCC diagnostic pop

// Issues the worker's arrivals on schedule, round-robin over its terminals.
net::awaitable<void> run_arrivals(impl_worker& iw, arrival_schedule schedule) {
  std::size_t next = 0;
  co_await detail::run_arrival_loop(
      iw.w, std::move(schedule), iw.arrival_timer, [&iw] { return iw.stopping; },
      [&iw, &next](std::int64_t, std::int64_t) {
        terminal& t = *iw.terms[next];
        next = (next + 1) % iw.terms.size();
        iw.create_op(t);
      });
  iw.arrivals_done = true;
  for (auto& t : iw.terms) iw.wake(*t);
}

// queue.depth every 100 ms while terminals run; at the end, every op without a final fate
// counts in availability.ops as not ok.
net::awaitable<void> run_ticker(impl_worker& iw) {
  co_await net::this_coro::throw_if_cancelled(false);
  const auto cs = co_await net::this_coro::cancellation_state;
  net::steady_timer timer(iw.w.io());
  iw.ticker_timer = &timer;
  iw.ticker_running = true;
  for (;;) {
    const std::int64_t now = iw.w.now_us();
    // Gates change on time even for a terminal busy in a push or idle with an empty queue.
    if (iw.gated())
      for (auto& t : iw.terms) iw.gate(*t, now);
    iw.depth.set(now, static_cast<double>(iw.depth_now()));
    if (cancelled(cs)) break;
    if (iw.running == 0 && (iw.arrivals_done || iw.stopping)) break;
    timer.expires_after(std::chrono::microseconds(tick_us));
    co_await timer.async_wait(use_tuple);
  }
  iw.ticker_timer = nullptr;
  iw.ticker_running = false;
  if (iw.stopping || iw.arrivals_done) {
    const std::int64_t now = iw.w.now_us();
    for (std::size_t i = 0; i < iw.audit.size(); ++i)
      if (iw.audit[i].state != audit_op_state::acked && iw.audit[i].state != audit_op_state::rejected)
        iw.final_fate(i, now, false);
    iw.depth.set(now, static_cast<double>(iw.depth_now()));
  }
}

void impl_worker::ensure_running(terminal& t) {
  if (t.running) return;
  if (stopping && w.now_us() >= drain_deadline_us) return;
  t.running = true;
  ++running;
  w.tasks().spawn(run_terminal(*this, t));
  ensure_ticker();
}

void impl_worker::ensure_ticker() {
  if (ticker_running) return;
  ticker_running = true;
  w.tasks().spawn(run_ticker(*this));
}

}  // namespace

terminal_model::terminal_model(std::unique_ptr<impl> p) : impl_(std::move(p)) {}
terminal_model::~terminal_model() = default;

std::string_view terminal_model::name() const { return impl_->s.config.name; }
std::size_t terminal_model::terminals() const noexcept { return impl_->s.terminals; }

std::string terminal_model::client(std::size_t i) const { return client_name(impl_->s.config, i); }

std::string terminal_model::journal_path(std::size_t i) const { return journal_file(impl_->s.config, i); }

std::vector<offline_window> terminal_model::offline_windows(std::size_t i) const {
  const auto& s = impl_->s;
  if (s.config.offline.empty() || i >= s.terminals) return {};
  return client_windows(s.config.offline, i, s.config.seed, s.horizon_us);
}

void terminal_model::start(worker& w) {
  auto& m = *impl_;
  if (m.workers.empty()) {
    m.workers.resize(w.count());
    m.s.site.resolve(w.io(), m.s.config.name);
  }
  auto& iw = *(m.workers.at(w.index()) = std::make_unique<impl_worker>(w, m));
  const auto& cfg = m.s.config;
  for (std::size_t g = w.index(); g < m.s.terminals; g += w.count()) {
    auto t = std::make_unique<terminal>(g, m.s);
    t->client = client(g);
    t->stream = cfg.stream_prefix + std::to_string(g / cfg.terminals_per_store);
    t->versions.assign(cfg.keys, 0);
    t->gate = online_gate(offline_windows(g));
    // Periodic terminals spread their ticks over the period (seeded), as real lanes do.
    t->next_period_us =
        cfg.periodic
            ? static_cast<std::int64_t>(mix64(cfg.seed ^ (g * 7919)) % static_cast<std::uint64_t>(cfg.every_us))
            : 0;
    const auto path = journal_path(g);
    std::error_code rm;
    std::filesystem::remove(path, rm);  // a journal from an earlier run with the same dir
    t->jr = std::make_unique<journal>(path, cfg.fsync);
    iw.terms.push_back(std::move(t));
  }
  iw.counted.reserve(1024);
  if (iw.terms.empty()) return;
  // This worker's share of the total rate: its terminals' fraction.
  const double share = static_cast<double>(iw.terms.size()) / static_cast<double>(m.s.terminals);
  std::vector<phase_spec> phases = cfg.phases;
  for (auto& p : phases) {
    if (p.rate) *p.rate *= share;
    if (p.to) *p.to *= share;
  }
  w.tasks().spawn(run_arrivals(iw, arrival_schedule(phases)));
  for (auto& t : iw.terms) iw.ensure_running(*t);
}

void terminal_model::stop() {
  for (auto& iw : impl_->workers)
    if (iw) net::post(iw->w.io(), [p = iw.get()] { p->begin_stop(); });
}

void terminal_model::crash(std::size_t i) {
  if (i >= impl_->s.terminals || impl_->workers.empty()) return;
  auto* iw = impl_->workers[i % impl_->workers.size()].get();
  if (!iw) return;
  impl_->pending[i].fetch_add(1);
  net::post(iw->w.io(), [iw, i, pending = &impl_->pending[i]] {
    for (auto& t : iw->terms)
      if (t->index == i) iw->crash(*t);
    pending->fetch_sub(1);
  });
}

bool terminal_model::settled(std::size_t i) const { return i >= impl_->s.terminals || impl_->pending[i].load() == 0; }

void terminal_model::journal_corrupt(std::size_t i, std::size_t bytes) {
  if (i >= impl_->s.terminals || impl_->workers.empty()) return;
  auto* iw = impl_->workers[i % impl_->workers.size()].get();
  if (!iw) return;
  impl_->pending[i].fetch_add(1);
  net::post(iw->w.io(), [iw, i, bytes, pending = &impl_->pending[i]] {
    for (auto& t : iw->terms)
      if (t->index == i) iw->corrupt(*t, bytes, ++iw->corruptions);
    pending->fetch_sub(1);
  });
}

void terminal_model::collect(std::vector<audit_op>& out) const {
  for (const auto& iw : impl_->workers)
    if (iw) out.insert(out.end(), iw->audit.begin(), iw->audit.end());
}

std::unique_ptr<terminal_model> make_terminal_model(const terminal_config& config) {
  auto m = std::make_unique<terminal_model::impl>();
  shared_state& s = m->s;
  s.config = config;
  const std::string where = "load " + config.name + ": ";
  parse_url(config.url);  // "url: found …" first, as every model says it
  if (config.stores == 0) throw std::invalid_argument(where + "stores: found 0; expected an integer >= 1");
  if (config.terminals_per_store == 0)
    throw std::invalid_argument(where + "terminals_per_store: found 0; expected an integer >= 1");
  if (config.keys == 0) throw std::invalid_argument(where + "keys: found 0; expected an integer >= 1");
  if (config.pct_append < 0 || config.pct_add < 0 || config.pct_set < 0 ||
      config.pct_append + config.pct_add + config.pct_set != 100)
    throw std::invalid_argument(where + "ops: found percentages summing to " +
                                std::to_string(config.pct_append + config.pct_add + config.pct_set) + "; expected 100");
  if (config.batch.max_ops == 0)
    throw std::invalid_argument(where + "batch.max_ops: found 0; expected an integer >= 1");
  if (config.timeout_us <= 0)
    throw std::invalid_argument(where + "timeout: found " + std::to_string(config.timeout_us) +
                                " µs; expected a positive duration");
  if (config.periodic && config.every_us <= 0)
    throw std::invalid_argument(where + "sync.every: found nothing; expected a positive duration for periodic sync");
  if (config.phases.empty()) throw std::invalid_argument(where + "phases: found none; expected at least one phase");
  if (config.run_tag.empty())
    throw std::invalid_argument(where + "run tag: found \"\"; expected a tag that makes op ids unique");
  arrival_schedule check(config.phases);  // throws on bad phases
  s.terminals = config.stores * config.terminals_per_store;
  for (const auto& p : config.phases) s.horizon_us += p.for_us;
  if (config.offline.duty_cycle < 0 || config.offline.duty_cycle > 1)
    throw std::invalid_argument(where + "random.duty_cycle: found " + std::to_string(config.offline.duty_cycle * 100) +
                                "%; expected 0% to 100%");
  if (config.offline.duty_cycle > 0 && config.offline.period_us < min_offline_period_us)
    throw std::invalid_argument(where + "random.period: found " + std::to_string(config.offline.period_us) +
                                " µs; expected a duration >= 1s");
  if (http::string_to_verb(config.profile.push_method) == http::verb::unknown)
    throw std::invalid_argument("scenario.target.profile.push.method: found \"" + config.profile.push_method +
                                "\"; expected an HTTP method");
  // Validates the TLS files now, with their field names.
  s.site = http_site::make(config.url, config.headers, config.tls, "url");
  s.site.body_limit = body_limit;
  std::error_code fec;
  std::filesystem::create_directories(config.journal_dir, fec);
  if (fec)
    throw std::invalid_argument(where + "journal.dir: found \"" + config.journal_dir +
                                "\"; expected a writable directory (" + fec.message() + ")");
  m->pending = std::make_unique<std::atomic<int>[]>(s.terminals);
  return std::make_unique<terminal_model>(std::move(m));
}

terminal_config terminal_config_from(const std::string& name, const nlohmann::json& f,
                                     const std::vector<phase_spec>& phases, const nlohmann::json& target,
                                     const std::string& base_url, const std::string& run_dir,
                                     const std::string& run_tag, std::uint64_t seed, bool resolve,
                                     const std::string& where) {
  terminal_config c = terminal_settings_from(name, f, phases, where);
  bind_terminal(c, target, base_url, run_dir, run_tag, seed, resolve);
  return c;
}

void bind_terminal(terminal_config& c, const nlohmann::json& target, const std::string& base_url,
                   const std::string& run_dir, const std::string& run_tag, std::uint64_t seed, bool resolve) {
  c.run_tag = run_tag;
  c.seed = seed;
  c.journal_dir = c.journal_dir_setting.empty()
                      ? (std::filesystem::path(run_dir.empty() ? std::string(".") : run_dir) / "journals").string()
                  : resolve ? resolve_env(c.journal_dir_setting)
                            : c.journal_dir_setting;
  c.url = target_http_url(target, base_url, c.name, resolve);
  auto access = target_access_from(target, resolve);
  c.headers = std::move(access.headers);
  c.tls = std::move(access.tls);
  c.profile = std::move(access.profile);
}

terminal_config terminal_settings_from(const std::string& name, const nlohmann::json& f,
                                       const std::vector<phase_spec>& phases, const std::string& where) {
  terminal_config c;
  c.name = name;
  auto bad = [&](const std::string& key, const json& found, const std::string& expected) {
    throw std::invalid_argument(where + "." + key + ": found " + found.dump() + "; expected " + expected);
  };
  auto get_int = [&](const json& o, const char* key, const std::string& path, std::int64_t def,
                     std::int64_t min) -> std::int64_t {
    if (!o.contains(key)) return def;
    if (!o[key].is_number_integer() || o[key].get<std::int64_t>() < min)
      bad(path, o[key], "an integer >= " + std::to_string(min));
    return o[key].get<std::int64_t>();
  };
  auto get_dur = [&](const json& o, const char* key, const std::string& path, std::int64_t def) -> std::int64_t {
    if (!o.contains(key)) return def;
    const std::int64_t v = duration_us(o[key]);
    if (v <= 0) bad(path, o[key], "a positive duration like \"5s\"");
    return v;
  };
  c.stores = static_cast<std::size_t>(get_int(f, "stores", "stores", 1, 1));
  c.terminals_per_store = static_cast<std::size_t>(get_int(f, "terminals_per_store", "terminals_per_store", 1, 1));
  const double terminals = static_cast<double>(c.stores * c.terminals_per_store);
  std::optional<double> per_terminal;
  if (f.contains("rate")) per_terminal = rate_value(f["rate"]);
  for (std::size_t i = 0; i < phases.size(); ++i) {
    phase_spec p = phases[i];
    if (!p.rate && !p.to) {
      if (!per_terminal)
        bad("phases[" + std::to_string(i) + "]", json(p.name), "a phase with a rate, or the entry's per-terminal rate");
      p.rate = *per_terminal * terminals;
    }
    c.phases.push_back(p);
  }
  if (f.contains("ops")) {
    const json& o = f["ops"];
    c.pct_append = o.contains("append") ? static_cast<int>(std::lround(percent_value(o["append"]))) : 0;
    c.pct_add = o.contains("add") ? static_cast<int>(std::lround(percent_value(o["add"]))) : 0;
    c.pct_set = o.contains("set") ? static_cast<int>(std::lround(percent_value(o["set"]))) : 0;
    if (c.pct_append + c.pct_add + c.pct_set != 100)
      throw std::invalid_argument(where + ".ops: found percentages summing to " +
                                  std::to_string(c.pct_append + c.pct_add + c.pct_set) + "; expected 100");
  }
  c.keys = static_cast<std::size_t>(get_int(f, "keys", "keys", 8, 1));
  if (f.contains("batch")) {
    const json& b = f["batch"];
    c.batch.max_ops = static_cast<std::size_t>(get_int(b, "max_ops", "batch.max_ops", 50, 1));
    c.batch.max_wait_us = get_dur(b, "max_wait", "batch.max_wait", c.batch.max_wait_us);
  }
  c.timeout_us = get_dur(f, "timeout", "timeout", c.timeout_us);
  if (f.contains("retry")) {
    const json& r = f["retry"];
    c.retry.base_us = get_dur(r, "base", "retry.base", c.retry.base_us);
    c.retry.max_us = get_dur(r, "max", "retry.max", c.retry.max_us);
    c.retry.limit = static_cast<int>(get_int(r, "limit", "retry.limit", c.retry.limit, 0));
    c.retry.park_for_us = get_dur(r, "park_for", "retry.park_for", c.retry.park_for_us);
    if (c.retry.max_us < c.retry.base_us) bad("retry.max", r.value("max", json()), "a duration >= retry.base");
  }
  if (f.contains("breaker")) {
    const json& b = f["breaker"];
    c.breaker.threshold = static_cast<int>(get_int(b, "threshold", "breaker.threshold", c.breaker.threshold, 1));
    c.breaker.open_for_us = get_dur(b, "open_for", "breaker.open_for", c.breaker.open_for_us);
    c.breaker.half_open_probes =
        static_cast<int>(get_int(b, "half_open_probes", "breaker.half_open_probes", c.breaker.half_open_probes, 1));
  }
  if (f.contains("sync")) {
    const json& sy = f["sync"];
    c.periodic = sy.value("mode", "continuous") == "periodic";
    c.every_us = get_dur(sy, "every", "sync.every", c.every_us);
  }
  c.conflict = f.value("conflict", "lww") == "queue" ? conflict_policy::queue : conflict_policy::lww;
  if (f.contains("journal")) {
    const json& j = f["journal"];
    const std::string fs = j.value("fsync", "batch");
    c.fsync = fs == "always" ? fsync_policy::always : fs == "never" ? fsync_policy::never : fsync_policy::batch;
    if (j.contains("dir")) c.journal_dir_setting = j["dir"].get<std::string>();
  }
  c.drain_us = get_dur(f, "drain", "drain", c.drain_us);
  if (f.contains("stream_prefix") && f["stream_prefix"].is_string()) c.stream_prefix = f["stream_prefix"];
  return c;
}

}  // namespace syncstorm::loadgen
