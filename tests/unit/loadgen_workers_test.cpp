// Unit tests of the shared-nothing worker pool (loadgen/workers.hpp) with socket-free models:
// per-worker threads and shards, the once-a-second merge, drain, interrupt, graceful stop,
// terminal cancellation after the grace period, and a task's exception reaching stop().
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <set>
#include <stdexcept>
#include <thread>

#include "loadgen/detail/arrival_loop.hpp"
#include "loadgen/detail/task_group.hpp"
#include "loadgen/workers.hpp"

namespace {

using namespace std::chrono_literals;
using namespace syncstorm::loadgen;
constexpr auto use_tuple = net::as_tuple(net::use_awaitable);

// Ticks every millisecond on each worker until stop() (graceful) or a cancellation.
class ticker final : public load_model {
 public:
  std::string_view name() const override { return "ticker"; }
  void start(worker& w) override { w.tasks().spawn(run(w)); }
  void stop() override { stopping_ = true; }

  std::atomic<bool> stopping_{false};
  std::atomic<int> cancelled{0};
  std::mutex m;
  std::set<std::pair<std::size_t, std::thread::id>> seen;  // (worker, thread)
  bool ignore_stop = false;
  std::chrono::milliseconds period = 1ms;
  std::int64_t ticks_before_exit = -1;  // < 0: until stopped

 private:
  net::awaitable<void> run(worker& w) {
    co_await net::this_coro::throw_if_cancelled(false);
    auto& ticks = w.metrics().metric("ticks");
    net::steady_timer t(w.io());
    for (std::int64_t n = 0; ticks_before_exit < 0 || n < ticks_before_exit; ++n) {
      if (stopping_ && !ignore_stop) co_return;
      {
        std::lock_guard lock(m);  // test bookkeeping only
        seen.insert({w.index(), std::this_thread::get_id()});
      }
      t.expires_after(period);
      auto [ec] = co_await t.async_wait(use_tuple);
      if (ec) {
        ++cancelled;
        co_return;
      }
      ticks.add(w.now_us());
    }
  }
};

TEST(worker_pool, workers_run_on_their_own_threads_and_merge) {
  ticker model;
  const auto start = run_clock::now();
  worker_pool pool(3, start);
  ASSERT_EQ(pool.size(), 3u);
  EXPECT_EQ(pool.at(2).index(), 2u);
  EXPECT_EQ(pool.at(2).count(), 3u);
  pool.start({&model});
  std::vector<std::uint64_t> progress;
  auto end = pool.run_until(start + 2500ms, [&](const syncstorm::metrics_shard& m, std::int64_t at_us) {
    EXPECT_GE(at_us, 900'000);
    progress.push_back(m.find("ticks") ? m.find("ticks")->count() : 0);
  });
  EXPECT_EQ(end, worker_pool::run_end::deadline);
  // At ~1 s and ~2 s; a badly loaded machine may skip a tick (the cadence stays on the clock).
  ASSERT_GE(progress.size(), 1u);
  ASSERT_LE(progress.size(), 2u);
  EXPECT_GT(progress.front(), 0u);
  if (progress.size() == 2) {
    EXPECT_GT(progress[1], progress[0]);
  }
  auto cpu = pool.cpu_us();
  EXPECT_EQ(cpu.size(), 3u);
  auto final_metrics = pool.stop(1s);
  EXPECT_GE(final_metrics.find("ticks")->count(), progress.back());
  EXPECT_EQ(model.cancelled.load(), 0);  // graceful: every task returned by itself
  // Each worker ran on exactly one thread, and no two workers shared one.
  std::set<std::size_t> workers;
  std::set<std::thread::id> threads;
  for (auto& [w, t] : model.seen) {
    workers.insert(w);
    threads.insert(t);
  }
  EXPECT_EQ(workers.size(), 3u);
  EXPECT_EQ(threads.size(), 3u);
  EXPECT_EQ(model.seen.size(), 3u);
  EXPECT_FALSE(threads.contains(std::this_thread::get_id()));
}

TEST(worker_pool, run_until_returns_when_the_models_are_done) {
  ticker model;
  model.ticks_before_exit = 20;
  const auto start = run_clock::now();
  worker_pool pool(2, start);
  pool.start({&model});
  EXPECT_EQ(pool.run_until(start + 10s), worker_pool::run_end::drained);
  EXPECT_LT(run_clock::now() - start, 2s);
  EXPECT_EQ(pool.stop(1s).find("ticks")->count(), 40u);
}

TEST(worker_pool, interrupt_from_another_thread) {
  ticker model;
  const auto start = run_clock::now();
  worker_pool pool(1, start);
  pool.start({&model});
  std::thread t([&] {
    std::this_thread::sleep_for(100ms);
    pool.interrupt();
  });
  EXPECT_EQ(pool.run_until(start + 10s), worker_pool::run_end::interrupted);
  t.join();
  EXPECT_LT(run_clock::now() - start, 2s);
  pool.stop(1s);
}

TEST(worker_pool, tasks_that_ignore_stop_are_cancelled_after_the_grace_period) {
  ticker model;
  model.ignore_stop = true;
  model.period = 1h;
  const auto start = run_clock::now();
  worker_pool pool(2, start);
  pool.start({&model});
  pool.run_until(start + 50ms);
  const auto before = run_clock::now();
  pool.stop(100ms);
  EXPECT_GE(run_clock::now() - before, 100ms);
  EXPECT_LT(run_clock::now() - before, 2s);
  EXPECT_EQ(model.cancelled.load(), 2);  // both tasks saw the terminal cancellation
  EXPECT_EQ(pool.live_tasks(), 0u);
}

class thrower final : public load_model {
 public:
  std::string_view name() const override { return "thrower"; }
  void start(worker& w) override {
    w.tasks().spawn([]() -> net::awaitable<void> {
      throw std::runtime_error("bug in a model");
      co_return;
    }());
  }
  void stop() override {}
};

TEST(worker_pool, a_task_exception_surfaces_in_stop) {
  thrower model;
  worker_pool pool(1, run_clock::now());
  pool.start({&model});
  pool.run_until(run_clock::now() + 200ms);
  EXPECT_THROW(pool.stop(100ms), std::runtime_error);
}

TEST(worker_pool, destructor_stops_a_running_pool) {
  ticker model;
  {
    worker_pool pool(2, run_clock::now());
    pool.start({&model});
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_TRUE(model.stopping_.load());
}

}  // namespace

// The one arrival loop (loadgen/detail/arrival_loop.hpp) on a real pool: every arrival of the
// schedule issued once, at or after its time; generator.late counts the arrivals issued 1 ms or
// more late, here made late by an issuer that blocks its worker for 3 ms at 1,000 arrivals/s.
class arrivals final : public load_model {
 public:
  explicit arrivals(std::vector<phase_spec> phases, std::chrono::milliseconds block, detail::arrival_options o = {})
      : phases_(std::move(phases)), block_(block), options_(o) {}
  std::string_view name() const override { return "arrivals"; }
  void start(worker& w) override {
    detail::register_arrival_metrics(w, options_.record_lag);
    w.tasks().spawn(run(w));
  }
  void stop() override {}
  std::atomic<int> issued{0}, early{0};

 private:
  net::awaitable<void> run(worker& w) {
    net::steady_timer* slot = nullptr;
    co_await detail::run_arrival_loop(
        w, arrival_schedule(phases_, w.index(), w.count()), slot, [] { return false; },
        [&](std::int64_t due, std::int64_t now) {
          if (now < due) ++early;
          ++issued;
          if (block_.count() > 0) std::this_thread::sleep_for(block_);
        },
        options_);
    EXPECT_EQ(slot, nullptr);
  }
  std::vector<phase_spec> phases_;
  std::chrono::milliseconds block_;
  detail::arrival_options options_;
};

TEST(arrival_loop, a_blocked_generator_counts_its_late_arrivals) {
  arrivals model({{"fast", 200'000, 1000.0, std::nullopt}}, 3ms);
  const auto start = run_clock::now();
  worker_pool pool(2, start);
  pool.start({&model});
  EXPECT_EQ(pool.run_until(start + 10s), worker_pool::run_end::drained);
  auto m = pool.stop(1s);
  EXPECT_EQ(model.issued.load(), 200);
  EXPECT_EQ(model.early.load(), 0);
  ASSERT_NE(m.find("generator.lag"), nullptr);
  EXPECT_EQ(m.find("generator.lag")->count(), 200u);
  ASSERT_NE(m.find("generator.late"), nullptr);
  // Each worker takes 100 arrivals 2 ms apart and spends 3 ms on each: from the second on, late.
  EXPECT_GE(m.find("generator.late")->count(), 150u);
  EXPECT_GE(m.find("generator.lag")->hist().percentile(99), 50'000);
}

TEST(arrival_loop, an_idle_generator_is_not_late_and_lag_can_be_left_out) {
  // 20 arrivals at 40/s, nothing blocking: a loaded machine may wake a timer late now and then,
  // never most of the time.
  arrivals model({{"slow", 500'000, 40.0, std::nullopt}}, 0ms, {.record_lag = false, .offset_us = 100'000});
  const auto start = run_clock::now();
  worker_pool pool(1, start);
  pool.start({&model});
  EXPECT_EQ(pool.run_until(start + 10s), worker_pool::run_end::drained);
  const auto elapsed = run_clock::now() - start;
  auto m = pool.stop(1s);
  EXPECT_EQ(model.issued.load(), 20);
  EXPECT_EQ(model.early.load(), 0);
  EXPECT_GE(elapsed, 100ms + 475ms);  // the offset, then the last arrival at 475 ms
  EXPECT_EQ(m.find("generator.lag"), nullptr);
  ASSERT_NE(m.find("generator.late"), nullptr);
  EXPECT_LE(m.find("generator.late")->count(), 10u);
}
