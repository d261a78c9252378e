// The one open-model arrival loop: every model whose load has phases (http requests, terminal and
// offline ops, fanout pushes, bootstrap client starts) issues its arrivals through it, so every
// model measures the generator the same way. For each intended send time of the worker's share
// (loadgen/arrivals.hpp) it waits on the worker's clock, then records `generator.lag` (how late
// the arrival was issued, µs) and counts `generator.late` (an arrival issued 1 ms or more after
// its time, wrk2's "late" requests), then hands the arrival to the model.
//
// Threading: runs on its worker's thread, as one coroutine of the worker's task group; the
// metrics are the worker's shard (one writer, never locked).
#pragma once

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <chrono>
#include <cstdint>

#include "core/net.hpp"
#include "loadgen/arrivals.hpp"
#include "loadgen/workers.hpp"

namespace syncstorm::loadgen::detail {

// An arrival issued this late or later counts in generator.late.
inline constexpr std::int64_t late_threshold_us = 1000;

// Registers generator.lag and generator.late on `w` so a model's report carries them (at 0) even
// on a worker whose loop never runs (a closed model, a worker without a share of the arrivals).
inline void register_arrival_metrics(worker& w, bool with_lag = true) {
  if (with_lag) w.metrics().metric("generator.lag");
  w.metrics().metric("generator.late");
}

struct arrival_options {
  // Record generator.lag too (the histogram the saturation judgement reads). The bootstrap model
  // counts only generator.late: its arrivals start clients, whose own waits are not the
  // generator's delay.
  bool record_lag = true;
  // Every intended send time is shifted by this much (µs on the run clock).
  std::int64_t offset_us = 0;
};

// Issues `schedule`'s arrivals on `w`: `issue(due_us, now_us)` for each, in order. Ends when the
// schedule is over, when `stopping()` is true before or after a wait, or when the coroutine is
// cancelled. While it waits, `timer_slot` points at its timer so a stop on the worker's thread
// can cancel the wait; it is reset to null when the loop ends. `issue` must not suspend.
template <class Stopping, class Issue>
net::awaitable<void> run_arrival_loop(worker& w, arrival_schedule schedule, net::steady_timer*& timer_slot,
                                      Stopping stopping, Issue issue, arrival_options options = {}) {
  co_await net::this_coro::throw_if_cancelled(false);
  const auto cs = co_await net::this_coro::cancellation_state;
  auto cancelled = [&cs] { return cs.cancelled() != net::cancellation_type::none; };
  timed_metric* lag = options.record_lag ? &w.metrics().metric("generator.lag") : nullptr;
  timed_metric& late = w.metrics().metric("generator.late");
  net::steady_timer timer(w.io());
  timer_slot = &timer;
  while (!stopping() && !cancelled()) {
    auto next = schedule.next();
    if (!next) break;
    const std::int64_t due = *next + options.offset_us;
    timer.expires_at(w.start() + std::chrono::microseconds(due));
    if (timer.expiry() > run_clock::now()) {
      co_await timer.async_wait(net::as_tuple(net::use_awaitable));
      if (stopping() || cancelled()) break;
    }
    const std::int64_t now = w.now_us();
    if (lag) lag->record(now, now - due);
    if (now - due >= late_threshold_us) late.add(now);
    issue(due, now);
  }
  timer_slot = nullptr;
}

}  // namespace syncstorm::loadgen::detail
