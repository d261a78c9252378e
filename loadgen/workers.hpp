// The shared-nothing load-generation runtime. A worker_pool owns N worker threads; each worker
// has its own io_context, its own metrics_shard and the connections its models open on it, so
// nothing is locked on a per-request path. The controller thread (the engine's) starts the
// models on every worker, then waits in run_until(): once a second it posts a copy request to
// each worker, merges the copies itself and hands the merged snapshot to a progress callback.
// stop() stops gracefully: each model stops issuing work, in-flight work gets until a deadline
// to finish, whatever remains is cancelled (terminal), the threads are joined and the shards
// merged one last time.
//
// Threading: worker_pool's members are called from one controller thread, except interrupt()
// (any thread, not a signal handler). A worker's io()/metrics()/tasks() are used on that
// worker's thread, or on the controller thread before the pool's threads run (load_model::start).
// A worker's sockets and timers must be used only on its thread: its io_context runs without
// the reactor's per-descriptor locks (BOOST_ASIO_CONCURRENCY_HINT_UNSAFE_IO); posting to it
// from any thread is safe.
// Beast stays out of this header; Asio appears only as a forward declaration.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string_view>
#include <vector>

#include "core/metrics.hpp"
#include "core/net.hpp"

namespace boost::asio {
class io_context;
}

namespace syncstorm::loadgen {

namespace detail {
class task_group;
}

using run_clock = std::chrono::steady_clock;

class worker {
 public:
  std::size_t index() const noexcept { return index_; }
  std::size_t count() const noexcept { return count_; }
  net::io_context& io() noexcept { return *io_; }
  // This worker's metrics; one writer (the worker's thread), never locked.
  metrics_shard& metrics() noexcept { return *metrics_; }
  // Every coroutine a model starts on this worker goes through this group (cancellable).
  detail::task_group& tasks() noexcept { return *tasks_; }
  // The run's start on the engine clock; times in metrics are µs since this instant.
  run_clock::time_point start() const noexcept { return start_; }
  std::int64_t now_us() const noexcept {
    return std::chrono::duration_cast<std::chrono::microseconds>(run_clock::now() - start_).count();
  }
  // Clients of any load on the pool that may still write to the target (a sync client that has
  // not ended its drain holds one, see writer_hold). Shared by every worker of the pool: a load
  // that reads what the others write (fanout views) waits for 0 before it decides it has seen
  // everything.
  int writers() const noexcept { return writers_->load(std::memory_order_acquire); }

  worker(const worker&) = delete;
  worker& operator=(const worker&) = delete;
  ~worker();

 private:
  friend class worker_pool;
  friend class writer_hold;
  worker(std::size_t index, std::size_t count, run_clock::time_point start, std::atomic<int>* writers);

  std::size_t index_, count_;
  run_clock::time_point start_;
  std::atomic<int>* writers_;  // the pool's
  std::unique_ptr<net::io_context> io_;
  std::unique_ptr<metrics_shard> metrics_;
  std::unique_ptr<detail::task_group> tasks_;
};

// Held by a client coroutine for as long as it may write to the target (worker::writers).
class writer_hold {
 public:
  explicit writer_hold(worker& w) : n_(*w.writers_) { n_.fetch_add(1, std::memory_order_acq_rel); }
  ~writer_hold() { n_.fetch_sub(1, std::memory_order_acq_rel); }
  writer_hold(const writer_hold&) = delete;
  writer_hold& operator=(const writer_hold&) = delete;

 private:
  std::atomic<int>& n_;
};

// A kind of load (DESIGN §5: terminal, offline, bootstrap, fanout, http). One object per load
// entry of the scenario, shared by all workers; whatever it keeps per worker is touched only on
// that worker's thread.
class load_model {
 public:
  virtual ~load_model() = default;
  // The load entry's name (scenario `load[].name`).
  virtual std::string_view name() const = 0;
  // Called once per worker, on the controller thread, before the pool's threads run. Spawns
  // the model's coroutines through w.tasks() and takes its share of the connections and of the
  // arrivals by w.index() out of w.count(). May throw on a setup failure (bad URL, TLS files).
  virtual void start(worker& w) = 0;
  // Called once on the controller thread when the run stops: stop issuing new work and let
  // in-flight work finish. Must not block; reach the workers by posting to them.
  virtual void stop() = 0;
};

class worker_pool {
 public:
  // Receives the merged metrics of every worker and the time of the merge (µs since start).
  using progress_fn = std::function<void(const metrics_shard& merged, std::int64_t at_us)>;
  enum class run_end { deadline, interrupted, drained };

  // Creates `threads` workers (at least 1); the threads start in start().
  worker_pool(std::size_t threads, run_clock::time_point start);
  // Stops (grace 0) and joins if stop() was not called. Models must outlive the pool's stop().
  ~worker_pool();
  worker_pool(const worker_pool&) = delete;
  worker_pool& operator=(const worker_pool&) = delete;

  std::size_t size() const noexcept { return workers_.size(); }
  worker& at(std::size_t i) { return *workers_.at(i); }

  // Calls model->start(w) for every model and worker, then starts the threads. Once.
  // The models must stay alive until stop() returned.
  void start(std::vector<load_model*> models);

  // Blocks until `until`, interrupt(), or every worker ran out of tasks (drained). Every
  // `every` it merges a snapshot and calls `progress` (if set) on this thread. The snapshot
  // has whole-run histograms and counts, but series and gauges only from the previous
  // snapshot's step on (metrics_shard::copy_since), so its cost does not grow with the run.
  run_end run_until(run_clock::time_point until, const progress_fn& progress = {},
                    std::chrono::milliseconds every = std::chrono::seconds(1));
  // Makes run_until return; callable from any thread (a signal-watching thread, not a handler).
  void interrupt() noexcept;

  // A merged copy of every worker's metrics now: each worker copies its own shard on its
  // thread (series from series_since_us on, see copy_since; 0: everything), the copies are
  // merged here.
  metrics_shard snapshot(std::int64_t series_since_us = 0);

  // Graceful stop: models' stop(), then up to `grace` for the workers' tasks to finish, then a
  // terminal cancellation and up to `cancel_wait` more, then the io_contexts stop and the threads
  // join. Returns the final merged metrics. Rethrows the first exception a task ended with.
  metrics_shard stop(std::chrono::milliseconds grace, std::chrono::milliseconds cancel_wait = std::chrono::seconds(1));

  // CPU time each worker thread used so far, µs (for the generator's self-watch).
  std::vector<std::int64_t> cpu_us() const;
  // Tasks still alive across the workers.
  std::size_t live_tasks() const noexcept;

 private:
  bool wait_tasks(run_clock::time_point deadline);

  run_clock::time_point start_;
  std::atomic<int> writers_{0};  // before workers_: their coroutine frames (writer_hold) die first
  std::vector<std::unique_ptr<worker>> workers_;
  std::vector<load_model*> models_;
  struct threads;
  std::unique_ptr<threads> threads_;
  std::atomic<bool> interrupted_{false};
  bool started_ = false, stopped_ = false;
};

}  // namespace syncstorm::loadgen
