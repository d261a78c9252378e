// The fanout hub and the LISTEN/NOTIFY listener thread (see fanout.hpp). The listener uses
// libpq's asynchronous calls with deadlines so a partitioned database is noticed in seconds and
// stop() never waits on the network; an eventfd wakes it for shutdown.
#include "syncd/fanout.hpp"

#include <algorithm>
#include <chrono>
#include <unordered_map>

#include <libpq-fe.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "syncd/db.hpp"
#include "syncd/log.hpp"

namespace syncstorm::syncd {

std::int64_t fanout_hub::subscribe(const std::shared_ptr<subscriber>& s, const std::vector<std::string>& streams) {
  std::lock_guard lock(mutex_);
  for (const auto& stream : streams) {
    auto& v = by_stream_[stream];
    if (std::find(v.begin(), v.end(), s) == v.end()) v.push_back(s);
  }
  return last_published_;
}

void fanout_hub::unsubscribe(const subscriber* s, const std::vector<std::string>& streams) {
  std::vector<std::shared_ptr<subscriber>> released;  // destroyed outside the lock
  std::lock_guard lock(mutex_);
  for (const auto& stream : streams) {
    auto it = by_stream_.find(stream);
    if (it == by_stream_.end()) continue;
    auto& v = it->second;
    for (auto i = v.begin(); i != v.end();) {
      if (i->get() == s) {
        released.push_back(std::move(*i));
        i = v.erase(i);
      } else {
        ++i;
      }
    }
    if (v.empty()) by_stream_.erase(it);
  }
}

void fanout_hub::publish(const std::vector<frame_ptr>& frames) {
  if (frames.empty()) return;
  std::unordered_map<subscriber*, std::pair<std::shared_ptr<subscriber>, std::vector<frame_ptr>>> out;
  {
    std::lock_guard lock(mutex_);
    for (const auto& f : frames) {
      auto it = by_stream_.find(f->stream);
      if (it == by_stream_.end()) continue;
      for (const auto& s : it->second) {
        auto& slot = out[s.get()];
        if (!slot.first) slot.first = s;
        slot.second.push_back(f);
      }
    }
    last_published_ = std::max(last_published_, frames.back()->cseq);
  }
  // Only this (listener) thread publishes, so deliveries stay in cseq order per subscriber.
  for (auto& [_, slot] : out) slot.first->deliver(std::move(slot.second));
}

std::int64_t fanout_hub::last_published() const {
  std::lock_guard lock(mutex_);
  return last_published_;
}

namespace {

using clock_type = std::chrono::steady_clock;
constexpr int fetch_limit = 1000;
constexpr auto query_deadline = std::chrono::seconds(3);
constexpr const char* fetch_sql =
    "SELECT c.cseq, c.stream, syncd_change_json(c)::text FROM syncd_changes c WHERE c.cseq > $1::bigint "
    "ORDER BY c.cseq LIMIT $2::bigint";

// Waits until `conn`'s socket is readable, the wake fd fires, or the deadline passes.
// Returns false on deadline or wake (the caller checks stopping).
bool wait_readable(PGconn* conn, int wake_fd, clock_type::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock_type::now()).count();
  if (left <= 0) return false;
  pollfd fds[2] = {{PQsocket(conn), POLLIN, 0}, {wake_fd, POLLIN, 0}};
  int n = poll(fds, 2, static_cast<int>(left));
  if (n <= 0) return false;
  if (fds[1].revents) return false;
  return true;
}

// Sends a query and collects its last result within the deadline; nullptr on timeout, wake or
// a broken connection. The caller PQclear()s the result.
PGresult* exec_with_deadline(PGconn* conn, int wake_fd, const std::atomic<bool>& stopping, const char* sql,
                             std::initializer_list<const char*> params, clock_type::time_point deadline) {
  std::vector<const char*> values(params);
  if (!PQsendQueryParams(conn, sql, static_cast<int>(values.size()), nullptr, values.data(), nullptr, nullptr, 0))
    return nullptr;
  PGresult* last = nullptr;
  for (;;) {
    while (!PQisBusy(conn)) {
      PGresult* r = PQgetResult(conn);
      if (r == nullptr) return last;
      if (last) PQclear(last);
      last = r;
    }
    if (stopping.load() || !wait_readable(conn, wake_fd, deadline) || !PQconsumeInput(conn)) {
      if (last) PQclear(last);
      return nullptr;
    }
  }
}

}  // namespace

fanout_listener::fanout_listener(std::string dsn, std::string application_name, fanout_hub& hub, metrics& m)
    : dsn_(std::move(dsn)), application_name_(std::move(application_name)), hub_(hub), metrics_(m) {
  wake_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
}

fanout_listener::~fanout_listener() {
  stop();
  if (wake_fd_ >= 0) close(wake_fd_);
}

void fanout_listener::start() {
  thread_ = std::thread([this] { thread_main(); });
}

void fanout_listener::stop() {
  stopping_.store(true);
  std::uint64_t one = 1;
  if (wake_fd_ >= 0) {
    [[maybe_unused]] auto n = write(wake_fd_, &one, sizeof one);
  }
  if (thread_.joinable()) thread_.join();
}

void fanout_listener::set_ready(bool ready, const std::string& reason) {
  bool was = ready_.exchange(ready, std::memory_order_acq_rel);
  metrics_.db_ready.store(ready ? 1 : 0, std::memory_order_relaxed);
  if (was != ready) {
    if (ready)
      log_event("db_ready");
    else
      log_event("db_unreachable", {{"reason", reason}}, "warn");
  }
}

void fanout_listener::thread_main() {
  PGconn* conn = nullptr;
  std::int64_t last = -1;  // unknown until the first connection reads the counter
  auto backoff = std::chrono::milliseconds(100);
  auto drop = [&](const std::string& reason) {
    if (conn) PQfinish(conn);
    conn = nullptr;
    metrics_.count_db_error(db_error_class::connection);
    set_ready(false, reason);
  };
  auto sleep_or_wake = [&](std::chrono::milliseconds d) {
    pollfd fd{wake_fd_, POLLIN, 0};
    poll(&fd, 1, static_cast<int>(d.count()));
  };

  while (!stopping_.load()) {
    if (!conn) {
      std::string error;
      conn = db_connect(dsn_, application_name_, error);
      if (!conn) {
        metrics_.count_db_error(db_error_class::connection);
        set_ready(false, "connect: " + error);
        sleep_or_wake(backoff);
        backoff = std::min(backoff * 2, std::chrono::milliseconds(1000));
        continue;
      }
      metrics_.db_connects.fetch_add(1, std::memory_order_relaxed);
      db_result r = ensure_schema(conn);
      PGresult* listen = r.ok() ? PQexec(conn, "LISTEN syncd_changes") : nullptr;
      bool listening = listen && PQresultStatus(listen) == PGRES_COMMAND_OK;
      if (listen) PQclear(listen);
      if (r.ok() && listening && last < 0) {
        if (auto c = db_current_cseq(conn, r)) last = *c;
      }
      if (!r.ok() || !listening || last < 0) {
        drop(r.ok() ? "LISTEN failed" : r.error);
        sleep_or_wake(backoff);
        continue;
      }
      log_event("fanout_listening", {{"after", last}});
    }

    // Catch up: everything committed after the last delivered cseq, in cseq order.
    bool ok = true;
    for (;;) {
      const std::string after = std::to_string(last), limit = std::to_string(fetch_limit);
      PGresult* res = exec_with_deadline(conn, wake_fd_, stopping_, fetch_sql, {after.c_str(), limit.c_str()},
                                         clock_type::now() + query_deadline);
      if (!res || PQresultStatus(res) != PGRES_TUPLES_OK) {
        std::string why = res ? std::string(PQresultErrorMessage(res)) : std::string("no answer within 3 s");
        if (res) PQclear(res);
        if (!stopping_.load()) drop("fanout read: " + why);
        ok = false;
        break;
      }
      const int n = PQntuples(res);
      std::vector<frame_ptr> frames;
      frames.reserve(static_cast<std::size_t>(n));
      for (int i = 0; i < n; ++i) {
        auto f = std::make_shared<change_frame>();
        f->cseq = std::stoll(PQgetvalue(res, i, 0));
        f->stream = PQgetvalue(res, i, 1);
        f->json = PQgetvalue(res, i, 2);
        frames.push_back(std::move(f));
      }
      PQclear(res);
      if (n > 0) {
        last = frames.back()->cseq;
        hub_.publish(frames);
        metrics_.fanout_changes_read.fetch_add(static_cast<std::uint64_t>(n), std::memory_order_relaxed);
        metrics_.fanout_last_cseq.store(last, std::memory_order_relaxed);
      }
      set_ready(true, {});
      backoff = std::chrono::milliseconds(100);
      if (n < fetch_limit) break;
    }
    if (!ok) continue;

    // Sleep until a NOTIFY, the heartbeat (1 s) or stop.
    pollfd fds[2] = {{PQsocket(conn), POLLIN, 0}, {wake_fd_, POLLIN, 0}};
    int n = poll(fds, 2, 1000);
    if (n > 0 && fds[0].revents) {
      if (!PQconsumeInput(conn)) {
        drop("listener connection: " + std::string(PQerrorMessage(conn)));
        continue;
      }
      while (PGnotify* note = PQnotifies(conn)) PQfreemem(note);
    }
  }
  if (conn) PQfinish(conn);
  // Stopping is not an outage: no db_unreachable event.
  ready_.store(false, std::memory_order_release);
  metrics_.db_ready.store(0, std::memory_order_relaxed);
}

}  // namespace syncstorm::syncd
