// A group of coroutines on one worker's io_context that can all be cancelled together: every
// task the load models spawn goes through one, so a scenario can always stop its work (no bare
// `detached`). Each task gets its own cancellation signal bound to its completion handler;
// `emit` forwards a cancellation type to every live task.
//
// Threading: a task_group belongs to one worker. spawn() and emit() run on that worker's thread
// (or before it runs); live() may be read from any thread (the controller polls it while it
// waits for a graceful stop). A task that ends with an exception is a bug: the exception is kept
// and the worker_pool rethrows it from stop() on the controller thread.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include <atomic>
#include <exception>
#include <list>
#include <utility>

#include "core/net.hpp"

namespace syncstorm::loadgen::detail {

class task_group {
 public:
  explicit task_group(net::io_context& io) : io_(io) {}
  task_group(const task_group&) = delete;
  task_group& operator=(const task_group&) = delete;

  // Starts `task` on the worker's io_context. The task should disable throw_if_cancelled and
  // treat a cancelled wait as the signal to wind down; the group forgets it when it returns.
  void spawn(net::awaitable<void> task) {
    auto it = signals_.emplace(signals_.end());
    live_.fetch_add(1, std::memory_order_relaxed);
    net::co_spawn(io_, std::move(task), net::bind_cancellation_slot(it->slot(), [this, it](std::exception_ptr e) {
                    signals_.erase(it);
                    live_.fetch_sub(1, std::memory_order_release);
                    if (e && !error_) error_ = e;
                  }));
  }

  // Emits `type` to every live task (terminal: give up now; partial/total: finish gracefully
  // where the task supports it). Tasks see it at their current co_await.
  void emit(net::cancellation_type type) {
    // A cancelled operation completes through a posted handler, not inside emit(); the next
    // iterator is taken first anyway, so a task erased meanwhile cannot invalidate the walk.
    for (auto it = signals_.begin(); it != signals_.end();) {
      auto next = std::next(it);
      it->emit(type);
      it = next;
    }
  }

  std::size_t live() const noexcept { return live_.load(std::memory_order_acquire); }
  std::exception_ptr error() const noexcept { return error_; }

 private:
  net::io_context& io_;
  std::list<net::cancellation_signal> signals_;
  std::atomic<std::size_t> live_{0};
  std::exception_ptr error_;
};

}  // namespace syncstorm::loadgen::detail
