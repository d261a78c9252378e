// The shared-nothing runtime: see workers.hpp. The controller never touches a worker's state
// while its thread runs except through a handler posted to that worker; futures carry the
// happens-before back.
#include "loadgen/workers.hpp"

#include <map>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include <pthread.h>
#include <time.h>

#include <algorithm>
#include <condition_variable>
#include <future>
#include <mutex>
#include <optional>
#include <thread>

#include "loadgen/detail/task_group.hpp"

namespace syncstorm::loadgen {

worker::worker(std::size_t index, std::size_t count, run_clock::time_point start, std::atomic<int>* writers)
    : index_(index),
      count_(count),
      start_(start),
      writers_(writers),
      // One thread runs it; its I/O objects are used only there, so the reactor needs no
      // per-descriptor locks. Posting from the controller stays safe (the scheduler locks).
      io_(std::make_unique<net::io_context>(BOOST_ASIO_CONCURRENCY_HINT_UNSAFE_IO)),
      metrics_(std::make_unique<metrics_shard>()),
      tasks_(std::make_unique<detail::task_group>(*io_)) {}

worker::~worker() {
  // The io_context goes first: destroying it destroys any coroutine frame still parked in it,
  // and those frames refer to the task group and the metrics.
  io_.reset();
}

struct worker_pool::threads {
  using guard = net::executor_work_guard<net::io_context::executor_type>;
  std::vector<std::thread> running;
  std::vector<guard> guards;
  std::vector<std::int64_t> final_cpu_us;
  std::mutex m;
  std::condition_variable cv;
  std::exception_ptr error;  // first exception that escaped a worker's handlers
};

namespace {

std::int64_t thread_cpu_us(std::thread& t) {
  clockid_t cid;
  timespec ts{};
  if (pthread_getcpuclockid(t.native_handle(), &cid) != 0 || clock_gettime(cid, &ts) != 0) return 0;
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000 + ts.tv_nsec / 1000;
}

}  // namespace

worker_pool::worker_pool(std::size_t n, run_clock::time_point start)
    : start_(start), threads_(std::make_unique<threads>()) {
  if (n == 0) n = 1;
  workers_.reserve(n);
  for (std::size_t i = 0; i < n; ++i) workers_.emplace_back(new worker(i, n, start, &writers_));
}

worker_pool::~worker_pool() {
  if (started_ && !stopped_) {
    try {
      stop(std::chrono::milliseconds(0));
    } catch (...) {
      // A task's exception surfaced during an implicit stop; nothing left to report it to.
    }
  }
}

void worker_pool::start(std::vector<load_model*> models) {
  if (started_) throw std::logic_error("worker_pool::start called twice");
  models_ = std::move(models);
  for (load_model* m : models_)
    for (auto& w : workers_) m->start(*w);
  started_ = true;
  threads& t = *threads_;
  for (auto& w : workers_) {
    t.guards.emplace_back(w->io().get_executor());
    net::io_context& io = w->io();
    t.running.emplace_back([&io, &t] {
      // A handler that throws is a bug; keep it for stop() and keep serving the others.
      for (;;) {
        try {
          io.run();
          return;
        } catch (...) {
          std::lock_guard lock(t.m);
          if (!t.error) t.error = std::current_exception();
        }
      }
    });
  }
}

std::size_t worker_pool::live_tasks() const noexcept {
  std::size_t n = 0;
  for (auto& w : workers_)
    if (w->tasks_) n += w->tasks_->live();
  return n;
}

worker_pool::run_end worker_pool::run_until(run_clock::time_point until, const progress_fn& progress,
                                            std::chrono::milliseconds every) {
  if (every <= std::chrono::milliseconds(0)) every = std::chrono::seconds(1);
  auto next_progress = run_clock::now() + every;
  std::int64_t since_us = 0;
  for (;;) {
    auto now = run_clock::now();
    if (now >= until) return run_end::deadline;
    if (live_tasks() == 0) return run_end::drained;
    if (now >= next_progress) {
      if (progress) {
        const auto at_us = std::chrono::duration_cast<std::chrono::microseconds>(run_clock::now() - start_).count();
        metrics_shard merged = snapshot(since_us);
        progress(merged, at_us);
        since_us = at_us;
      }
      // Keep the cadence on the clock, not on how long the merge took.
      while (next_progress <= run_clock::now()) next_progress += every;
    }
    // Wake at the next progress tick, the deadline, or every 50 ms to notice a drained pool.
    auto wake = std::min({next_progress, until, run_clock::now() + std::chrono::milliseconds(50)});
    std::unique_lock lock(threads_->m);
    if (threads_->cv.wait_until(lock, wake, [this] { return interrupted_.load(); })) return run_end::interrupted;
  }
}

void worker_pool::interrupt() noexcept {
  {
    std::lock_guard lock(threads_->m);
    interrupted_.store(true);
  }
  threads_->cv.notify_all();
}

// Models record per load entry ("http.latency@push"); merged views also hold each metric's
// whole ("http.latency"), rebuilt as the merge of its entries (so folding twice changes nothing;
// a name is recorded either per entry or whole, never both).
static void fold_load_views(metrics_shard& m) {
  std::map<std::string, std::vector<std::string>> parts;
  for (const auto& name : m.names()) {
    const auto at = name.find('@');
    if (at != std::string::npos) parts[name.substr(0, at)].push_back(name);
  }
  for (const auto& [base, names] : parts) {
    timed_metric whole;
    for (const auto& n : names) whole.merge(*m.find(n));
    m.metric(base) = std::move(whole);
  }
  std::map<std::string, std::vector<std::string>> gauge_parts;
  for (const auto& name : m.gauge_names()) {
    const auto at = name.find('@');
    if (at != std::string::npos) gauge_parts[name.substr(0, at)].push_back(name);
  }
  for (const auto& [base, names] : gauge_parts) {
    gauge_series whole;
    for (const auto& n : names) whole.merge(*m.find_gauge(n));
    m.gauge(base) = std::move(whole);
  }
}

metrics_shard worker_pool::snapshot(std::int64_t series_since_us) {
  auto copy = [series_since_us](const metrics_shard& m) {
    return series_since_us > 0 ? m.copy_since(series_since_us) : m;
  };
  std::vector<std::optional<metrics_shard>> copies(workers_.size());
  if (started_ && !stopped_) {
    std::vector<std::future<void>> done;
    done.reserve(workers_.size());
    for (std::size_t i = 0; i < workers_.size(); ++i) {
      auto p = std::make_shared<std::promise<void>>();
      done.push_back(p->get_future());
      worker& w = *workers_[i];
      net::post(w.io(), [&w, &slot = copies[i], p, &copy] {
        slot.emplace(copy(w.metrics()));
        p->set_value();
      });
    }
    for (auto& f : done) f.wait();
  } else {
    for (std::size_t i = 0; i < workers_.size(); ++i) copies[i].emplace(copy(workers_[i]->metrics()));
  }
  metrics_shard merged;
  for (auto& c : copies) merged.merge(*c);
  fold_load_views(merged);
  return merged;
}

bool worker_pool::wait_tasks(run_clock::time_point deadline) {
  while (live_tasks() != 0) {
    if (run_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return true;
}

metrics_shard worker_pool::stop(std::chrono::milliseconds grace, std::chrono::milliseconds cancel_wait) {
  if (!started_) {
    stopped_ = true;
    return snapshot();
  }
  if (stopped_) return snapshot();
  for (load_model* m : models_) m->stop();
  if (!wait_tasks(run_clock::now() + grace)) {
    for (auto& w : workers_) {
      detail::task_group& g = w->tasks();
      net::post(w->io(), [&g] { g.emit(net::cancellation_type::terminal); });
    }
    wait_tasks(run_clock::now() + cancel_wait);
  }
  threads& t = *threads_;
  for (auto& g : t.guards) g.reset();
  for (auto& w : workers_) w->io().stop();
  for (auto& th : t.running) {
    t.final_cpu_us.push_back(thread_cpu_us(th));
    th.join();
  }
  stopped_ = true;
  metrics_shard merged = snapshot();
  // Destroy what is still parked in each io_context (frames cancelled too late) while the
  // models, which those frames may refer to, are still alive.
  for (auto& w : workers_) w->io_.reset();
  for (auto& w : workers_) {
    if (auto e = w->tasks_->error(); e && !t.error) t.error = e;
  }
  if (t.error) std::rethrow_exception(t.error);
  fold_load_views(merged);
  return merged;
}

std::vector<std::int64_t> worker_pool::cpu_us() const {
  if (stopped_) return threads_->final_cpu_us;
  std::vector<std::int64_t> out;
  for (auto& th : threads_->running) out.push_back(thread_cpu_us(th));
  return out;
}

}  // namespace syncstorm::loadgen
