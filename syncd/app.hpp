// The state one syncd process shares between its parts: options, metrics, the database pool,
// the fanout hub and listener, the session registry used to drain on SIGTERM, and the bug-mode
// counters. Created once in main, outlives every session and thread. All members are
// thread-safe (atomics, or classes that lock inside).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include <boost/asio/io_context.hpp>

#include "core/net.hpp"
#include "syncd/db.hpp"
#include "syncd/fanout.hpp"
#include "syncd/metrics.hpp"
#include "syncd/options.hpp"

namespace syncstorm::syncd {

// A connection that can be asked to finish (SIGTERM drain). stop() may be called from any
// thread, more than once.
class stoppable {
 public:
  virtual ~stoppable() = default;
  virtual void stop() = 0;
};

class session_registry {
 public:
  std::uint64_t add(const std::shared_ptr<stoppable>& s) {
    std::lock_guard lock(mutex_);
    sessions_.emplace(++next_, s);
    return next_;
  }
  void remove(std::uint64_t id) {
    std::lock_guard lock(mutex_);
    sessions_.erase(id);
  }
  void stop_all() {
    std::vector<std::shared_ptr<stoppable>> live;
    {
      std::lock_guard lock(mutex_);
      for (auto& [_, w] : sessions_)
        if (auto s = w.lock()) live.push_back(std::move(s));
    }
    for (auto& s : live) s->stop();
  }
  std::size_t size() const {
    std::lock_guard lock(mutex_);
    return sessions_.size();
  }

 private:
  mutable std::mutex mutex_;
  std::unordered_map<std::uint64_t, std::weak_ptr<stoppable>> sessions_;
  std::uint64_t next_ = 0;
};

struct app {
  app(options o, net::io_context& io)
      : opts(std::move(o)),
        ioc(io),
        pool(opts.db, "syncd/" + opts.pod_name, opts.db_pool, stats),
        listener(opts.db, "syncd/" + opts.pod_name + "/listener", hub, stats) {}

  // Ready to take traffic: the database answers and we are not draining.
  bool ready() const { return listener.ready() && !draining.load(std::memory_order_acquire); }

  const options opts;
  net::io_context& ioc;
  metrics stats;
  db_pool pool;
  fanout_hub hub;
  fanout_listener listener;
  session_registry sessions;
  std::atomic<bool> draining{false};
  std::atomic<std::uint64_t> op_counter{0};      // drop-every / dup-every
  std::atomic<std::uint64_t> fanout_counter{0};  // fanout-skip-every
  std::atomic<std::int64_t> background{0};       // ack-before-commit commits not yet done
};

}  // namespace syncstorm::syncd
