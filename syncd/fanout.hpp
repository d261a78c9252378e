// Cross-pod fanout. A `fanout_listener` thread holds one dedicated PostgreSQL connection that
// LISTENs on `syncd_changes`; every push transaction NOTIFYs at commit, which wakes it (in every
// pod), and it reads the changes after the last cseq it delivered, in cseq order, and hands them
// to the `fanout_hub`. Because cseq order is commit order, that read never skips a change.
// The same connection's read (or a 1 s heartbeat) decides readiness: /readyz fails while the
// database does not answer it. The listener also creates the schema on each (re)connect.
//
// The hub maps streams to subscribers. `publish` runs on the listener thread and calls each
// subscriber's `deliver` with that subscriber's frames in cseq order; deliver must not block
// (WebSocket sessions post to their strand). subscribe/unsubscribe are thread-safe (one mutex).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "syncd/metrics.hpp"

namespace syncstorm::syncd {

struct change_frame {
  std::int64_t cseq = 0;
  std::string stream;
  std::string json;
};
using frame_ptr = std::shared_ptr<const change_frame>;

class subscriber {
 public:
  virtual ~subscriber() = default;
  // Called on the listener thread, frames in cseq order; must return quickly.
  virtual void deliver(std::vector<frame_ptr> frames) = 0;
};

class fanout_hub {
 public:
  // Registers `s` for `streams`. Returns the last cseq published before the registration:
  // every change with a higher cseq on those streams will be delivered to `s`.
  std::int64_t subscribe(const std::shared_ptr<subscriber>& s, const std::vector<std::string>& streams);
  void unsubscribe(const subscriber* s, const std::vector<std::string>& streams);
  // Delivers `frames` (ascending cseq) to the subscribers of their streams.
  void publish(const std::vector<frame_ptr>& frames);
  std::int64_t last_published() const;

 private:
  mutable std::mutex mutex_;
  std::unordered_map<std::string, std::vector<std::shared_ptr<subscriber>>> by_stream_;
  std::int64_t last_published_ = 0;
};

class fanout_listener {
 public:
  fanout_listener(std::string dsn, std::string application_name, fanout_hub& hub, metrics& m);
  ~fanout_listener();
  fanout_listener(const fanout_listener&) = delete;
  fanout_listener& operator=(const fanout_listener&) = delete;

  void start();
  void stop();  // wakes the thread and joins it
  // The database answered within the last heartbeat (and the schema exists).
  bool ready() const { return ready_.load(std::memory_order_acquire); }

 private:
  void thread_main();
  void set_ready(bool ready, const std::string& reason);

  std::string dsn_;
  std::string application_name_;
  fanout_hub& hub_;
  metrics& metrics_;
  int wake_fd_ = -1;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> ready_{false};
  std::thread thread_;
};

}  // namespace syncstorm::syncd
